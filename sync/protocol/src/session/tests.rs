//! Deterministic simulation of sync rounds between a node and the hub, through the real
//! frame codec, with the connection cut at random points (mid-frame included) and the
//! hub crashing between commit and acknowledgement. Every seed must converge with each
//! node change stored at the hub exactly once, every hub change applied at the node
//! exactly once, and the node's whole audit trail at the hub, in order, once.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::frame::{Decoder, encode};
use crate::message::RefusalCode;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

const NODE: [u8; 16] = [1; 16];
const FOREIGN_DOC: [u8; 16] = [9; 16];

fn hash(origin: u8, n: u64) -> [u8; 32] {
    let mut h = [origin; 32];
    h[..8].copy_from_slice(&n.to_le_bytes());
    h
}

/// The node's durable state.
struct NodeStore {
    log: Vec<Change>,
    upload_acked: u64,
    cursor: u64,
    applied: BTreeMap<[u8; 32], u64>,
    rejected: BTreeSet<u64>,
    audit: Vec<AuditRecord>,
}

/// The hub's durable state.
struct HubStore {
    log: Vec<(RemoteChange, bool)>, // (change, uploaded by our node)
    by_hash: BTreeSet<[u8; 32]>,
    acked: u64,
    rejections: Vec<Rejection>,
    /// The node's audit events by number (a second copy of one is ignored).
    audit: BTreeMap<u64, AuditRecord>,
}

impl HubStore {
    fn commit(&mut self, changes: &[Change]) -> Vec<Rejection> {
        let mut rejected = Vec::new();
        for c in changes {
            if c.doc_id == FOREIGN_DOC {
                let r = Rejection {
                    seq: c.seq,
                    doc_id: c.doc_id,
                    reason: "document of another site".into(),
                };
                if !self.rejections.contains(&r) {
                    self.rejections.push(r.clone());
                }
                rejected.push(r);
                continue;
            }
            if self.by_hash.insert(c.hash) {
                let cursor = self.log.len() as u64 + 1;
                self.log.push((
                    RemoteChange {
                        cursor,
                        doc_id: c.doc_id,
                        kind: c.kind.clone(),
                        hash: c.hash,
                        bytes: c.bytes.clone(),
                    },
                    true,
                ));
            }
        }
        rejected
    }

    fn load(&self, after: u64, max_bytes: u32) -> (Vec<RemoteChange>, u64, bool) {
        let mut out = Vec::new();
        let mut through = after;
        let mut budget = max_bytes as usize;
        for (c, ours) in self.log.iter().filter(|(c, _)| c.cursor > after) {
            if *ours {
                through = c.cursor;
                continue;
            }
            if !out.is_empty() && c.bytes.len() > budget {
                return (out, through, true);
            }
            budget = budget.saturating_sub(c.bytes.len());
            through = c.cursor;
            out.push(c.clone());
        }
        (out, through, false)
    }
}

fn load_audit(node: &NodeStore, after: u64, max_bytes: usize) -> Vec<AuditRecord> {
    let mut out = Vec::new();
    let mut size = 0;
    for e in node.audit.iter().filter(|e| e.seq > after) {
        if !out.is_empty() && size + e.event.len() > max_bytes {
            break;
        }
        size += e.event.len();
        out.push(e.clone());
    }
    out
}

fn load_upload(node: &NodeStore, after: u64, max_bytes: usize) -> Vec<Change> {
    let mut out = Vec::new();
    let mut size = 0;
    for c in node.log.iter().filter(|c| c.seq > after) {
        if !out.is_empty() && size + c.bytes.len() > max_bytes {
            break;
        }
        size += c.bytes.len();
        out.push(c.clone());
    }
    out
}

/// Delivers a frame, or a prefix of it and a cut. Returns false if the link was cut.
fn deliver(frame: Vec<u8>, to: &mut Decoder, rng: &mut Rng, cut: u64) -> bool {
    if rng.chance(cut) {
        let keep = (rng.next() as usize) % (frame.len() + 1);
        to.push(&frame[..keep]);
        return false;
    }
    to.push(&frame);
    true
}

/// One connection's worth of round; `Ok(Some)` when it completed, `Ok(None)` on a cut.
fn attempt(
    node: &mut NodeStore,
    hub: &mut HubStore,
    rng: &mut Rng,
    cut: u64,
) -> Result<Option<Summary>, SessionError> {
    let (mut ns, mut node_actions) =
        NodeSession::start(NODE, "NBO", node.upload_acked, node.cursor, 300, 400);
    let mut hs = HubSession::new();
    let (mut to_hub, mut to_node) = (Decoder::new(), Decoder::new());
    let mut hub_actions: Vec<HubAction> = Vec::new();
    loop {
        let mut progress = false;
        while let Some(a) = (!node_actions.is_empty()).then(|| node_actions.remove(0)) {
            progress = true;
            match a {
                NodeAction::Send(m) => {
                    if !deliver(encode(&m), &mut to_hub, rng, cut) {
                        return Ok(None);
                    }
                }
                NodeAction::LoadUpload { after, max_bytes } => {
                    let batch = load_upload(node, after, max_bytes);
                    node_actions.extend(ns.upload_loaded(batch)?);
                }
                NodeAction::LoadAudit { after, max_bytes } => {
                    let batch = load_audit(node, after, max_bytes);
                    node_actions.extend(ns.audit_loaded(batch)?);
                }
                NodeAction::UploadAcked { through, rejected } => {
                    assert!(
                        through > node.upload_acked,
                        "an acknowledgement always moves forward"
                    );
                    node.upload_acked = through;
                    node.rejected.extend(rejected.iter().map(|r| r.seq));
                }
                NodeAction::Apply { changes, through } => {
                    for c in changes {
                        assert!(
                            node.applied.insert(c.hash, c.cursor).is_none(),
                            "applied twice"
                        );
                    }
                    node.cursor = through;
                    node_actions.extend(ns.applied()?);
                }
                NodeAction::Finished(s) => return Ok(Some(s)),
            }
        }
        while let Some(m) = to_hub
            .next_message()
            .map_err(|e| violation(e.to_string()))?
        {
            progress = true;
            hub_actions.extend(hs.on_message(m)?);
        }
        while let Some(a) = (!hub_actions.is_empty()).then(|| hub_actions.remove(0)) {
            progress = true;
            match a {
                HubAction::Authenticate {
                    node_id,
                    node_upload_acked,
                    ..
                } => {
                    assert_eq!(node_id, NODE);
                    let unreported = hub
                        .rejections
                        .iter()
                        .filter(|r| r.seq > node_upload_acked)
                        .cloned()
                        .collect();
                    let audit_acked = hub.audit.keys().next_back().copied().unwrap_or(0);
                    hub_actions.extend(hs.authenticated(Ok(Admitted {
                        upload_acked: hub.acked,
                        rejected: unreported,
                        audit_acked,
                    }))?);
                }
                HubAction::CommitAudit { events, .. } => {
                    for e in events {
                        hub.audit.entry(e.seq).or_insert(e);
                    }
                    if rng.chance(cut) {
                        return Ok(None); // stored, not acknowledged
                    }
                    hub_actions.extend(hs.audit_committed()?);
                }
                HubAction::Commit { changes, through } => {
                    let rejected = hub.commit(&changes);
                    hub.acked = hub.acked.max(through);
                    if rng.chance(cut) {
                        return Ok(None); // the hub crashed after committing, before acking
                    }
                    hub_actions.extend(hs.committed(rejected)?);
                }
                HubAction::Load { after, max_bytes } => {
                    let (changes, through, more) = hub.load(after, max_bytes);
                    hub_actions.extend(hs.loaded(changes, through, more)?);
                }
                HubAction::Send(m) => {
                    if !deliver(encode(&m), &mut to_node, rng, cut) {
                        return Ok(None);
                    }
                }
                HubAction::Finished => {}
            }
        }
        while let Some(m) = to_node
            .next_message()
            .map_err(|e| violation(e.to_string()))?
        {
            progress = true;
            node_actions.extend(ns.on_message(m)?);
        }
        if !progress {
            return Err(violation("the round stalled"));
        }
    }
}

fn world(seed: u64) -> (NodeStore, HubStore) {
    let mut rng = Rng(seed | 1);
    let n = 20 + rng.next() % 60;
    let log = (1..=n)
        .map(|seq| Change {
            seq,
            doc_id: if seq % 17 == 0 {
                FOREIGN_DOC
            } else {
                [(seq % 5) as u8 + 2; 16]
            },
            kind: "patient".into(),
            hash: hash(1, seq),
            bytes: vec![seq as u8; 20 + (rng.next() % 120) as usize],
        })
        .collect();
    let audit = (1..=(rng.next() % 90))
        .map(|seq| AuditRecord {
            seq,
            event: vec![seq as u8; 30 + (rng.next() % 60) as usize],
            hash: hash(3, seq),
        })
        .collect();
    let mut hub = HubStore {
        log: Vec::new(),
        by_hash: BTreeSet::new(),
        acked: 0,
        rejections: Vec::new(),
        audit: BTreeMap::new(),
    };
    // Changes from other sites, already at the hub.
    for i in 0..(10 + rng.next() % 50) {
        let cursor = hub.log.len() as u64 + 1;
        hub.by_hash.insert(hash(2, i));
        hub.log.push((
            RemoteChange {
                cursor,
                doc_id: [3; 16],
                kind: "doctor".into(),
                hash: hash(2, i),
                bytes: vec![7; 50 + (i as usize % 90)],
            },
            false,
        ));
    }
    (
        NodeStore {
            log,
            upload_acked: 0,
            cursor: 0,
            applied: BTreeMap::new(),
            rejected: BTreeSet::new(),
            audit,
        },
        hub,
    )
}

/// Runs rounds until one completes; returns how many connections it took.
fn converge(seed: u64, cut: u64) -> usize {
    let (mut node, mut hub) = world(seed);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut summary = None;
    let mut connections = 0;
    for _ in 0..10_000 {
        connections += 1;
        match attempt(&mut node, &mut hub, &mut rng, cut) {
            Ok(Some(s)) => {
                summary = Some(s);
                break;
            }
            Ok(None) => continue,
            Err(e) => panic!("seed {seed}: {e}"),
        }
    }
    let summary = summary.unwrap_or_else(|| panic!("seed {seed}: never completed"));
    // Every node change is at the hub exactly once, except those refused (and reported).
    let uploaded: Vec<&RemoteChange> = hub
        .log
        .iter()
        .filter(|(_, ours)| *ours)
        .map(|(c, _)| c)
        .collect();
    let expected: BTreeSet<[u8; 32]> = node
        .log
        .iter()
        .filter(|c| c.doc_id != FOREIGN_DOC)
        .map(|c| c.hash)
        .collect();
    let stored: BTreeSet<[u8; 32]> = uploaded.iter().map(|c| c.hash).collect();
    assert_eq!(
        uploaded.len(),
        stored.len(),
        "seed {seed}: a change stored twice"
    );
    assert_eq!(stored, expected, "seed {seed}");
    let refused: BTreeSet<u64> = node
        .log
        .iter()
        .filter(|c| c.doc_id == FOREIGN_DOC)
        .map(|c| c.seq)
        .collect();
    assert_eq!(node.rejected, refused, "seed {seed}: refusals reported");
    // Every other site's change reached the node exactly once (insert asserted).
    let foreign: BTreeSet<[u8; 32]> = hub
        .log
        .iter()
        .filter(|(_, ours)| !*ours)
        .map(|(c, _)| c.hash)
        .collect();
    assert_eq!(
        node.applied.keys().copied().collect::<BTreeSet<_>>(),
        foreign,
        "seed {seed}"
    );
    assert_eq!(node.upload_acked, node.log.last().map_or(0, |c| c.seq));
    assert_eq!(summary.upload_acked, node.upload_acked);
    assert_eq!(node.cursor, hub.log.len() as u64);
    // The whole audit trail is at the hub, each event as the node chained it.
    assert_eq!(
        hub.audit.values().cloned().collect::<Vec<_>>(),
        node.audit,
        "seed {seed}: the audit trail"
    );
    connections
}

#[test]
fn a_clean_round_converges() {
    for seed in 1..20 {
        assert_eq!(converge(seed, 0), 1);
    }
}

#[test]
fn rounds_cut_at_random_points_converge_exactly_once() {
    // 300 seeds, each cutting about one frame in ten (mid-frame included) and crashing
    // the hub between commit and acknowledgement as often.
    let connections: usize = (1..=300).map(|seed| converge(seed, 100)).sum();
    // The faults really happened: most rounds needed several connections.
    assert!(
        connections > 900,
        "only {connections} connections for 300 rounds"
    );
}

#[test]
fn a_refusal_reaches_the_node_with_its_reason() {
    let (mut ns, actions) = NodeSession::start(NODE, "NBO", 0, 0, 100, 100);
    let NodeAction::Send(hello) = &actions[0] else {
        panic!("hello first")
    };
    let mut hs = HubSession::new();
    let a = hs.on_message(hello.clone()).expect("hello");
    assert!(matches!(a[0], HubAction::Authenticate { .. }));
    let refusal = Refusal {
        code: RefusalCode::Revoked,
        message: "node 0101 was revoked on 2026-11-20".into(),
    };
    let a = hs.authenticated(Err(refusal.clone())).expect("refuse");
    let HubAction::Send(msg) = &a[0] else {
        panic!("send refusal")
    };
    let err = ns.on_message(msg.clone()).expect_err("refused");
    assert_eq!(err, SessionError::Refused(refusal));
    assert!(err.to_string().contains("revoked"));
    assert!(hs.is_done() && ns.is_done());
}

#[test]
fn out_of_order_messages_are_protocol_errors() {
    let (mut ns, _) = NodeSession::start(NODE, "NBO", 0, 0, 100, 100);
    assert!(
        ns.on_message(Message::Changes {
            changes: vec![],
            through: 0,
            more: false
        })
        .is_err()
    );
    let mut hs = HubSession::new();
    assert!(hs.on_message(Message::Upload { changes: vec![] }).is_err());
    let (mut ns, _) = NodeSession::start(NODE, "NBO", 0, 5, 100, 100);
    ns.on_message(Message::Welcome {
        upload_acked: 0,
        rejected: vec![],
        audit_acked: 3,
    })
    .expect("welcome");
    ns.upload_loaded(vec![]).expect("nothing to upload");
    // Audit events must follow the hub's last one without a gap.
    let event = |seq| AuditRecord {
        seq,
        event: vec![1],
        hash: [0; 32],
    };
    assert!(ns.clone().audit_loaded(vec![event(5)]).is_err());
    assert!(ns.clone().audit_loaded(vec![event(4), event(6)]).is_err());
    let sent = ns
        .clone()
        .audit_loaded(vec![event(4), event(5)])
        .expect("in order");
    assert!(
        matches!(&sent[0], NodeAction::Send(Message::AuditUpload { events }) if events.len() == 2)
    );
    ns.audit_loaded(vec![]).expect("nothing to ship");
    let mut hs = HubSession::new();
    assert!(
        hs.on_message(Message::AuditUpload {
            events: vec![event(1)]
        })
        .is_err()
    );
    // The hub may not move the cursor backwards or send changes at or before it.
    let stale = RemoteChange {
        cursor: 5,
        doc_id: [0; 16],
        kind: "x".into(),
        hash: [0; 32],
        bytes: vec![],
    };
    assert!(
        ns.on_message(Message::Changes {
            changes: vec![stale],
            through: 6,
            more: false
        })
        .is_err()
    );
}

#[test]
fn a_pull_is_capped_whatever_the_node_asks() {
    let (_, actions) = NodeSession::start(NODE, "NBO", 0, 0, 100, 100);
    let NodeAction::Send(hello) = &actions[0] else {
        panic!("hello first")
    };
    let mut hs = HubSession::new();
    hs.on_message(hello.clone()).expect("hello");
    hs.authenticated(Ok(Admitted::default())).expect("welcome");
    for (asked, loaded) in [
        (1000, 1000),
        (MAX_PULL_BYTES, MAX_PULL_BYTES),
        (u32::MAX, MAX_PULL_BYTES),
    ] {
        let a = hs
            .on_message(Message::Pull {
                after: 0,
                max_bytes: asked,
            })
            .expect("pull");
        assert_eq!(
            a,
            vec![HubAction::Load {
                after: 0,
                max_bytes: loaded
            }]
        );
        hs.loaded(vec![], 0, false).expect("loaded");
    }
}
