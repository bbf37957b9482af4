//! Sync rounds over real QUIC on loopback with mutual TLS, against in-memory storage.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use healsync_sync_protocol::session::Admitted;
use healsync_sync_protocol::{AuditRecord, Change, Refusal, RefusalCode, Rejection, RemoteChange};
use healsync_sync_transport::ca::{Credentials, HubCa};
use healsync_sync_transport::config;
use healsync_sync_transport::driver::{
    self, HubStorage, NodePositions, NodeStorage, StorageError, SyncError,
};
use uuid::Uuid;

#[derive(Default)]
struct MemHub {
    log: Mutex<Vec<(RemoteChange, Uuid)>>,
    acked: Mutex<BTreeMap<Uuid, u64>>,
    revoked: Mutex<Vec<Uuid>>,
    ca: Mutex<Option<HubCa>>,
    audit: Mutex<BTreeMap<(Uuid, u64), AuditRecord>>,
}

impl HubStorage for MemHub {
    async fn enroll(
        &self,
        secret: String,
        node: Uuid,
    ) -> Result<healsync_sync_transport::enroll::Grant, String> {
        if secret != "good-secret" {
            return Err("the enrollment token is unknown or already used".into());
        }
        let ca = self.ca.lock().map_err(|_| "poisoned")?;
        let ca = ca.as_ref().ok_or("no CA")?;
        Ok(healsync_sync_transport::enroll::Grant {
            site: "NBO".into(),
            ca_pem: ca.cert_pem().to_string(),
            node: ca.issue_node(node, "NBO").map_err(|e| e.to_string())?,
        })
    }

    async fn authenticate(
        &self,
        node: Uuid,
        _site: &str,
        _known: u64,
    ) -> Result<Result<Admitted, Refusal>, StorageError> {
        if self.revoked.lock().map_err(|_| "poisoned")?.contains(&node) {
            return Ok(Err(Refusal {
                code: RefusalCode::Revoked,
                message: format!("node {node} has been revoked"),
            }));
        }
        let audit_acked = self
            .audit
            .lock()
            .map_err(|_| "poisoned")?
            .keys()
            .filter(|(n, _)| *n == node)
            .map(|(_, seq)| *seq)
            .max()
            .unwrap_or(0);
        Ok(Ok(Admitted {
            upload_acked: self
                .acked
                .lock()
                .map_err(|_| "poisoned")?
                .get(&node)
                .copied()
                .unwrap_or(0),
            rejected: vec![],
            audit_acked,
        }))
    }
    async fn commit_audit(&self, node: Uuid, events: &[AuditRecord]) -> Result<(), StorageError> {
        let mut audit = self.audit.lock().map_err(|_| "poisoned")?;
        for e in events {
            audit.entry((node, e.seq)).or_insert_with(|| e.clone());
        }
        Ok(())
    }
    async fn commit(
        &self,
        node: Uuid,
        changes: &[Change],
        through: u64,
    ) -> Result<Vec<Rejection>, StorageError> {
        let mut log = self.log.lock().map_err(|_| "poisoned")?;
        for c in changes {
            if !log.iter().any(|(r, _)| r.hash == c.hash) {
                let cursor = log.len() as u64 + 1;
                log.push((
                    RemoteChange {
                        cursor,
                        doc_id: c.doc_id,
                        kind: c.kind.clone(),
                        hash: c.hash,
                        bytes: c.bytes.clone(),
                    },
                    node,
                ));
            }
        }
        self.acked
            .lock()
            .map_err(|_| "poisoned")?
            .insert(node, through);
        Ok(vec![])
    }
    async fn load(
        &self,
        node: Uuid,
        _site: &str,
        after: u64,
        _max: usize,
    ) -> Result<(Vec<RemoteChange>, u64, bool), StorageError> {
        let log = self.log.lock().map_err(|_| "poisoned")?;
        let out = log
            .iter()
            .filter(|(c, origin)| c.cursor > after && *origin != node)
            .map(|(c, _)| c.clone())
            .collect();
        Ok((out, log.len() as u64, false))
    }
}

#[derive(Default)]
struct MemNode {
    log: Vec<Change>,
    acked: u64,
    cursor: u64,
    applied: Vec<RemoteChange>,
    audit: Vec<AuditRecord>,
}

impl NodeStorage for MemNode {
    async fn upload_batch(&mut self, after: u64, _max: usize) -> Result<Vec<Change>, StorageError> {
        Ok(self.log.iter().filter(|c| c.seq > after).cloned().collect())
    }
    async fn audit_batch(
        &mut self,
        after: u64,
        _max: usize,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        Ok(self
            .audit
            .iter()
            .filter(|e| e.seq > after)
            .cloned()
            .collect())
    }
    async fn record_ack(
        &mut self,
        through: u64,
        _rejected: Vec<Rejection>,
    ) -> Result<(), StorageError> {
        self.acked = self.acked.max(through);
        Ok(())
    }
    async fn apply(
        &mut self,
        changes: Vec<RemoteChange>,
        through: u64,
    ) -> Result<(), StorageError> {
        self.applied.extend(changes);
        self.cursor = through;
        Ok(())
    }
}

fn changes(tag: u8, n: u64) -> Vec<Change> {
    (1..=n)
        .map(|seq| {
            let mut hash = [tag; 32];
            hash[..8].copy_from_slice(&seq.to_le_bytes());
            Change {
                seq,
                doc_id: [tag; 16],
                kind: "patient".into(),
                hash,
                bytes: vec![tag; 200],
            }
        })
        .collect()
}

struct Hub {
    addr: SocketAddr,
    ca: HubCa,
    storage: Arc<MemHub>,
    _dir: tempfile::TempDir,
}

fn start_hub() -> Hub {
    let dir = tempfile::tempdir().expect("dir");
    let ca = HubCa::load_or_create(dir.path()).expect("ca");
    let hub_creds = ca.issue_hub().expect("hub cert");
    let server = config::server(ca.cert_pem(), &hub_creds).expect("server config");
    let endpoint =
        quinn::Endpoint::server(server, "127.0.0.1:0".parse().expect("addr")).expect("endpoint");
    let addr = endpoint.local_addr().expect("addr");
    let storage = Arc::new(MemHub::default());
    if let Ok(mut slot) = storage.ca.lock() {
        *slot = Some(HubCa::load_or_create(dir.path()).expect("the same CA, loaded again"));
    }
    tokio::spawn(driver::run_hub(endpoint, storage.clone(), 4));
    Hub {
        addr,
        ca,
        storage,
        _dir: dir,
    }
}

fn client(ca_pem: &str, creds: &Credentials) -> quinn::Endpoint {
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("client");
    ep.set_default_client_config(config::client(ca_pem, creds).expect("client config"));
    ep
}

async fn round(
    hub: &Hub,
    ep: &quinn::Endpoint,
    node: Uuid,
    store: &mut MemNode,
) -> Result<healsync_sync_protocol::session::Summary, SyncError> {
    let pos = NodePositions {
        upload_acked: store.acked,
        download_cursor: store.cursor,
    };
    driver::sync_node(ep, hub.addr, node, "NBO", pos, store).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_exchange_changes_over_mutual_tls() {
    let hub = start_hub();
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let ep_a = client(
        hub.ca.cert_pem(),
        &hub.ca.issue_node(a, "NBO").expect("cert a"),
    );
    let ep_b = client(
        hub.ca.cert_pem(),
        &hub.ca.issue_node(b, "MSA").expect("cert b"),
    );
    let trail = |n: u64| {
        (1..=n)
            .map(|seq| AuditRecord {
                seq,
                event: vec![seq as u8; 40],
                hash: [seq as u8; 32],
            })
            .collect::<Vec<_>>()
    };
    let mut na = MemNode {
        log: changes(1, 50),
        audit: trail(12),
        ..Default::default()
    };
    let mut nb = MemNode {
        log: changes(2, 30),
        ..Default::default()
    };

    let s = round(&hub, &ep_a, a, &mut na).await.expect("round a");
    assert_eq!((s.uploaded, s.downloaded, s.audit_uploaded), (50, 0, 12));
    let s = round(&hub, &ep_b, b, &mut nb).await.expect("round b");
    assert_eq!((s.uploaded, s.downloaded), (30, 50));
    na.audit = trail(15);
    let s = round(&hub, &ep_a, a, &mut na).await.expect("round a again");
    assert_eq!((s.uploaded, s.downloaded, s.audit_uploaded), (0, 30, 3));
    assert_eq!(
        hub.storage.audit.lock().expect("audit").len(),
        15,
        "each event once"
    );
    assert_eq!(hub.storage.log.lock().expect("log").len(), 80);
    assert_eq!((na.acked, nb.acked), (50, 30));
    // A further round moves nothing.
    let s = round(&hub, &ep_b, b, &mut nb).await.expect("idle round");
    assert_eq!((s.uploaded, s.downloaded), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_and_impostors_are_refused() {
    let hub = start_hub();
    let node = Uuid::now_v7();

    // A certificate from another CA: the handshake fails, nothing is stored.
    let other_dir = tempfile::tempdir().expect("dir");
    let other_ca = HubCa::load_or_create(other_dir.path()).expect("other ca");
    let foreign = client(
        hub.ca.cert_pem(),
        &other_ca.issue_node(node, "NBO").expect("cert"),
    );
    let mut store = MemNode {
        log: changes(3, 5),
        ..Default::default()
    };
    let err = round(&hub, &foreign, node, &mut store)
        .await
        .expect_err("foreign CA");
    assert!(
        matches!(err, SyncError::Connect(_) | SyncError::Link(_)),
        "{err}"
    );
    eprintln!("foreign CA: {err}");
    assert!(hub.storage.log.lock().expect("log").is_empty());

    // A valid certificate of node X speaking as node Y.
    let x = Uuid::now_v7();
    let impostor = client(
        hub.ca.cert_pem(),
        &hub.ca.issue_node(x, "NBO").expect("cert"),
    );
    let err = round(&hub, &impostor, Uuid::now_v7(), &mut store)
        .await
        .expect_err("impostor");
    match err {
        SyncError::Refused(r) => assert!(r.message.contains("does not belong"), "{}", r.message),
        other => panic!("expected a refusal, got {other}"),
    }

    // A revoked node is told so.
    hub.storage.revoked.lock().expect("revoked").push(x);
    let err = round(&hub, &impostor, x, &mut store)
        .await
        .expect_err("revoked");
    assert!(err.to_string().contains("revoked"), "{err}");
    assert!(hub.storage.log.lock().expect("log").is_empty());

    // A node that trusts another CA refuses the hub.
    let creds = hub.ca.issue_node(node, "NBO").expect("cert");
    let distrustful = client(other_ca.cert_pem(), &creds);
    let err = round(&hub, &distrustful, node, &mut store)
        .await
        .expect_err("distrust");
    eprintln!("node distrusts the hub: {err}");
    assert!(matches!(err, SyncError::Connect(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_nodes_at_once_all_complete_under_the_concurrency_bound() {
    // After an outage every clinic reconnects together: 50 nodes against a hub that
    // serves a few sessions at a time all finish, nothing lost, nothing doubled.
    const NODES: u8 = 50;
    let hub = start_hub();
    let mut tasks = Vec::new();
    for i in 0..NODES {
        let node = Uuid::now_v7();
        let ep = client(
            hub.ca.cert_pem(),
            &hub.ca.issue_node(node, "NBO").expect("cert"),
        );
        let addr = hub.addr;
        tasks.push(tokio::spawn(async move {
            let mut store = MemNode {
                log: changes(10 + i, 40),
                ..Default::default()
            };
            driver::sync_node(&ep, addr, node, "NBO", NodePositions::default(), &mut store)
                .await
                .map(|s| s.uploaded)
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task").expect("round"), 40);
    }
    assert_eq!(
        hub.storage.log.lock().expect("log").len(),
        usize::from(NODES) * 40
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_pins_the_hub_and_grants_working_credentials() {
    use healsync_sync_transport::enroll::{Token, enroll};
    let hub = start_hub();
    let node = Uuid::now_v7();
    let token = Token::new("good-secret", hub.ca.cert_pem(), "NBO").expect("token");
    let parsed = Token::parse(&token.to_string()).expect("parse");
    assert_eq!(parsed, token);
    let grant = enroll(hub.addr, &token, node).await.expect("enroll");
    assert_eq!(grant.site, "NBO");
    // The credentials work for sync.
    let ep = client(&grant.ca_pem, &grant.node);
    let mut store = MemNode {
        log: changes(7, 3),
        ..Default::default()
    };
    assert_eq!(
        round(&hub, &ep, node, &mut store)
            .await
            .expect("round")
            .uploaded,
        3
    );
    // A wrong secret is refused with the hub's reason.
    let bad = Token::new("wrong", hub.ca.cert_pem(), "NBO").expect("token");
    let err = enroll(hub.addr, &bad, Uuid::now_v7())
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("unknown or already used"), "{err}");
    // A token pinning another CA never reaches the hub's enrollment (handshake refused).
    let other = tempfile::tempdir().expect("dir");
    let other_ca = HubCa::load_or_create(other.path()).expect("ca");
    let pinned_elsewhere = Token::new("good-secret", other_ca.cert_pem(), "NBO").expect("token");
    let err = enroll(hub.addr, &pinned_elsewhere, Uuid::now_v7())
        .await
        .expect_err("not this hub");
    assert!(matches!(err, SyncError::Connect(_)), "{err}");
    assert!(Token::parse("garbage").is_err());
}
