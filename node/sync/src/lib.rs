//! The node's side of sync as storage: [`NodeSyncStorage`] answers the transport's node
//! driver from the node's store, and merges what arrives through
//! [`Node::apply_remote`], so open subscriptions see changes made elsewhere.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use healsync_node_api::{ApiError, Node};
use healsync_store::Incoming;
use healsync_sync_protocol::session::Summary;
use healsync_sync_protocol::{AuditRecord, Change, Rejection, RemoteChange};
use healsync_sync_transport::driver::{self, NodePositions, NodeStorage, StorageError, SyncError};
use uuid::Uuid;

/// How far a round has got, for a progress display.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Local changes waiting to upload when the round began.
    pub to_upload: u64,
    /// Of those, how many the hub has acknowledged so far.
    pub uploaded: u64,
    /// Changes received from the hub and merged so far.
    pub downloaded: u64,
}

/// Called after every acknowledged upload batch and every merged download batch.
pub type OnProgress = std::sync::Arc<dyn Fn(Progress) + Send + Sync>;

pub struct NodeSyncStorage {
    node: Node,
    progress: Progress,
    in_flight: u64,
    on_progress: Option<OnProgress>,
}

fn api(e: ApiError) -> StorageError {
    format!("{} ({})", e.message(), e.code()).into()
}

impl NodeSyncStorage {
    pub fn new(node: Node) -> Self {
        NodeSyncStorage {
            node,
            progress: Progress::default(),
            in_flight: 0,
            on_progress: None,
        }
    }

    fn report(&self) {
        if let Some(f) = &self.on_progress {
            f(self.progress);
        }
    }
}

impl NodeStorage for NodeSyncStorage {
    async fn upload_batch(
        &mut self,
        after: u64,
        max_bytes: usize,
    ) -> Result<Vec<Change>, StorageError> {
        let store = self.node.store().clone();
        let out =
            tokio::task::spawn_blocking(move || store.pending_upload(after, max_bytes)).await??;
        self.in_flight = out.len() as u64;
        Ok(out
            .into_iter()
            .map(|o| Change {
                seq: o.seq,
                doc_id: *o.doc_id.as_bytes(),
                kind: o.kind,
                hash: o.hash,
                bytes: o.bytes,
            })
            .collect())
    }

    async fn audit_batch(
        &mut self,
        after: u64,
        max_bytes: usize,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        let store = self.node.store().clone();
        let out = tokio::task::spawn_blocking(move || {
            store.read(|c| healsync_store::audit::shipment(c, after, max_bytes))
        })
        .await??;
        Ok(out
            .into_iter()
            .map(|e| AuditRecord {
                seq: e.seq,
                event: e.canonical,
                hash: e.hash,
            })
            .collect())
    }

    async fn record_ack(
        &mut self,
        through: u64,
        rejected: Vec<Rejection>,
    ) -> Result<(), StorageError> {
        let store = self.node.store().clone();
        let now = self.node.now();
        let rejected: Vec<(u64, Uuid, String)> = rejected
            .into_iter()
            .map(|r| (r.seq, Uuid::from_bytes(r.doc_id), r.reason))
            .collect();
        tokio::task::spawn_blocking(move || store.record_upload_ack(now, through, &rejected))
            .await??;
        self.progress.uploaded += std::mem::take(&mut self.in_flight);
        self.report();
        Ok(())
    }

    async fn apply(
        &mut self,
        changes: Vec<RemoteChange>,
        through: u64,
    ) -> Result<(), StorageError> {
        self.progress.downloaded += changes.len() as u64;
        let incoming = changes
            .into_iter()
            .map(|c| Incoming {
                doc_id: Uuid::from_bytes(c.doc_id),
                kind: c.kind,
                hash: c.hash,
                bytes: c.bytes,
            })
            .collect();
        self.node
            .apply_remote(incoming, through)
            .await
            .map_err(api)?;
        self.report();
        Ok(())
    }
}

/// One sync round for `node` with the hub at `hub`, from the node's durable positions.
pub async fn sync_once(
    node: &Node,
    endpoint: &quinn::Endpoint,
    hub: SocketAddr,
    on_progress: Option<OnProgress>,
) -> Result<Summary, SyncError> {
    // Changes held back before this process started may merge now (a newer version
    // of this node reads them). Only a storage failure is an error here: what still
    // does not merge stays held.
    node.retry_held()
        .await
        .map_err(|e| SyncError::Storage(api(e)))?;
    let store = node.store().clone();
    let (state, waiting) = tokio::task::spawn_blocking(move || {
        Ok::<_, healsync_store::StoreError>((
            store.sync_state()?,
            store.status()?.waiting_to_upload,
        ))
    })
    .await
    .map_err(|e| SyncError::Storage(e.into()))?
    .map_err(|e| SyncError::Storage(e.into()))?;
    let identity = node.store().identity().clone();
    let mut storage = NodeSyncStorage::new(node.clone());
    storage.progress.to_upload = u64::try_from(waiting).unwrap_or(0);
    storage.on_progress = on_progress;
    storage.report();
    let summary = driver::sync_node(
        endpoint,
        hub,
        identity.node_id,
        identity.site.as_str(),
        NodePositions {
            upload_acked: state.upload_acked,
            download_cursor: state.download_cursor,
        },
        &mut storage,
    )
    .await?;
    let (store, now) = (node.store().clone(), node.now());
    tokio::task::spawn_blocking(move || store.record_sync_success(now))
        .await
        .map_err(|e| SyncError::Storage(e.into()))?
        .map_err(|e| SyncError::Storage(e.into()))?;
    Ok(summary)
}

/// Where a node keeps its sync credentials, inside its data directory.
pub const CREDENTIALS_DIR: &str = "sync";

/// Why enrolling or syncing from the command line failed, in a technician's words.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeSyncError {
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(
        "this node is not enrolled with a hub: run `healsync-node enroll --hub HOST:PORT --token TOKEN`"
    )]
    NotEnrolled,
    #[error("cannot resolve the hub address {0:?}")]
    Address(String),
    #[error("could not {action}")]
    Io {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

fn io(action: &'static str) -> impl FnOnce(std::io::Error) -> NodeSyncError {
    move |source| NodeSyncError::Io { action, source }
}

async fn resolve(hub: &str) -> Result<SocketAddr, NodeSyncError> {
    tokio::net::lookup_host(hub)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| NodeSyncError::Address(hub.to_string()))
}

fn write_file(path: &Path, text: &str, private: bool) -> Result<(), NodeSyncError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io("write the sync credentials"))?;
    f.write_all(text.as_bytes())
        .map_err(io("write the sync credentials"))?;
    f.sync_all().map_err(io("sync the sync credentials"))
}

fn credentials_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(CREDENTIALS_DIR)
}

/// Enrolls the node whose store is open at `data_dir` with the hub at `hub`
/// (`HOST:PORT`) using `token`, and keeps the credentials in the data directory.
/// Returns the site the hub enrolled it for.
pub async fn enroll(
    store: &healsync_store::Store,
    data_dir: &Path,
    hub: &str,
    token: &healsync_sync_transport::enroll::Token,
) -> Result<String, NodeSyncError> {
    let addr = resolve(hub).await?;
    let identity = store.identity().clone();
    if identity.site.as_str() != token.site {
        return Err(NodeSyncError::Other(format!(
            "this token is for site {}, but this data directory belongs to site {}",
            token.site, identity.site
        )));
    }
    let grant = healsync_sync_transport::enroll::enroll(addr, token, identity.node_id).await?;
    let dir = credentials_dir(data_dir);
    healsync_store::private_dir(&dir).map_err(io("create the credentials directory"))?;
    write_file(&dir.join("ca.pem"), &grant.ca_pem, false)?;
    write_file(&dir.join("node-cert.pem"), &grant.node.cert_pem, false)?;
    write_file(&dir.join("node-key.pem"), &grant.node.key_pem, true)?;
    store
        .set_hub(hub)
        .map_err(|e| NodeSyncError::Other(e.to_string()))?;
    Ok(grant.site)
}

/// One sync round with the hub this node is enrolled with, using the credentials in
/// `data_dir`.
/// The outcome is noted on `node` ([`Node::record_sync_round`]) for the staff's banner.
pub async fn sync_enrolled(
    node: &Node,
    data_dir: &Path,
    on_progress: Option<OnProgress>,
) -> Result<Summary, NodeSyncError> {
    let outcome = enrolled_round(node, data_dir, on_progress).await;
    match &outcome {
        Err(NodeSyncError::NotEnrolled) => {}
        Ok(_) => node.record_sync_round(None),
        Err(e) => node.record_sync_round(Some(e.to_string())),
    }
    outcome
}

async fn enrolled_round(
    node: &Node,
    data_dir: &Path,
    on_progress: Option<OnProgress>,
) -> Result<Summary, NodeSyncError> {
    let status = node
        .store()
        .status()
        .map_err(|e| NodeSyncError::Other(e.to_string()))?;
    let hub = status.hub.ok_or(NodeSyncError::NotEnrolled)?;
    let dir = credentials_dir(data_dir);
    let read =
        |f: &str| std::fs::read_to_string(dir.join(f)).map_err(|_| NodeSyncError::NotEnrolled);
    let (ca, cert, key) = (
        read("ca.pem")?,
        read("node-cert.pem")?,
        read("node-key.pem")?,
    );
    let creds = healsync_sync_transport::ca::Credentials {
        cert_pem: cert,
        key_pem: key,
    };
    let client = healsync_sync_transport::config::client(&ca, &creds)
        .map_err(|e| NodeSyncError::Other(e.to_string()))?;
    let addr = resolve(&hub).await?;
    let bind: SocketAddr = if addr.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    }
    .parse()
    .map_err(|_| NodeSyncError::Address(hub.clone()))?;
    let mut endpoint = quinn::Endpoint::client(bind).map_err(io("open a UDP socket"))?;
    endpoint.set_default_client_config(client);
    let summary = sync_once(node, &endpoint, addr, on_progress).await?;
    // Let the closing handshake finish, but never hold the technician up for it.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), endpoint.wait_idle()).await;
    Ok(summary)
}
