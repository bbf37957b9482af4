//! Drivers: perform the actions of the protocol's session state machines over one QUIC
//! bidirectional stream, against the side's storage. All durable state lives in the
//! storage; a cut connection just ends the round, and the next round resumes.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use healsync_sync_protocol::session::{
    Admitted, HubAction, HubSession, NodeAction, NodeSession, SessionError, Summary,
};
use healsync_sync_protocol::{
    AuditRecord, Change, Decoder, FrameError, Message, Refusal, RefusalCode, Rejection,
    RemoteChange, encode,
};
use uuid::Uuid;

use crate::HUB_NAME;
use crate::config::peer_is_node;

pub type StorageError = Box<dyn std::error::Error + Send + Sync>;

/// Upload batches and pulls are bounded by these sizes (bytes of change data). Pulls
/// are larger: a node merges a pulled batch in one transaction, and the more of a
/// document's changes one batch holds, the fewer times the document is loaded, saved
/// and projected (a new node's first download ran 2.2x faster at 4 MiB than at 1 MiB;
/// BENCHMARKS.md). Uploads are committed by the hub as raw log rows and gain nothing.
pub const BATCH_BYTES: usize = 1024 * 1024;
pub const PULL_BYTES: u32 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    #[error("cannot reach the hub: {0}")]
    Connect(String),
    #[error("the hub refused this node: {}", .0.message)]
    Refused(Refusal),
    #[error("the connection was lost: {0}")]
    Link(String),
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("storage: {}", chain(.0.as_ref()))]
    Storage(StorageError),
}

impl From<SessionError> for SyncError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Refused(r) => SyncError::Refused(r),
            other => SyncError::Protocol(other.to_string()),
        }
    }
}

/// An error with its causes, `outer: inner`: the technician sees why, not only what.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

fn link(e: impl std::fmt::Display) -> SyncError {
    SyncError::Link(e.to_string())
}

/// What the node's driver needs from the node's storage.
pub trait NodeStorage: Send {
    /// Local changes past `after`, ascending, about `max_bytes`.
    fn upload_batch(
        &mut self,
        after: u64,
        max_bytes: usize,
    ) -> impl Future<Output = Result<Vec<Change>, StorageError>> + Send;
    /// The audit trail's events past `after`, ascending from `after + 1` without a
    /// gap, about `max_bytes`.
    fn audit_batch(
        &mut self,
        after: u64,
        max_bytes: usize,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StorageError>> + Send;
    /// The hub committed through `through`; record it (forward only) with the refusals.
    fn record_ack(
        &mut self,
        through: u64,
        rejected: Vec<Rejection>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Merge the changes and persist `through` as the download cursor, atomically.
    fn apply(
        &mut self,
        changes: Vec<RemoteChange>,
        through: u64,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// What the hub's driver needs from the hub's storage.
pub trait HubStorage: Send + Sync + 'static {
    fn authenticate(
        &self,
        node_id: Uuid,
        site: &str,
        node_upload_acked: u64,
    ) -> impl Future<Output = Result<Result<Admitted, Refusal>, StorageError>> + Send;
    /// Stores the node's audit events (once per node and number) with the time they
    /// arrived, in one transaction.
    fn commit_audit(
        &self,
        node_id: Uuid,
        events: &[AuditRecord],
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    fn commit(
        &self,
        node_id: Uuid,
        changes: &[Change],
        through: u64,
    ) -> impl Future<Output = Result<Vec<Rejection>, StorageError>> + Send;
    fn load(
        &self,
        node_id: Uuid,
        site: &str,
        after: u64,
        max_bytes: usize,
    ) -> impl Future<Output = Result<(Vec<RemoteChange>, u64, bool), StorageError>> + Send;
    /// Spends an enrollment secret for `node_id` and issues its credentials, or says
    /// why not (the sentence reaches the technician).
    fn enroll(
        &self,
        secret: String,
        node_id: Uuid,
    ) -> impl Future<Output = Result<crate::enroll::Grant, String>> + Send;
}

/// Reads the next message from the stream.
async fn next_message(
    recv: &mut quinn::RecvStream,
    decoder: &mut Decoder,
) -> Result<Message, SyncError> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Some(m) = decoder.next_message()? {
            return Ok(m);
        }
        match recv.read(&mut buf).await.map_err(link)? {
            Some(n) => decoder.push(&buf[..n]),
            None => return Err(SyncError::Link("the peer closed the stream".into())),
        }
    }
}

/// The node's durable positions a round starts from.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodePositions {
    pub upload_acked: u64,
    pub download_cursor: u64,
}

/// One full sync round from a node: connect, upload, download, done.
pub async fn sync_node<S: NodeStorage>(
    endpoint: &quinn::Endpoint,
    hub: SocketAddr,
    node_id: Uuid,
    site: &str,
    positions: NodePositions,
    storage: &mut S,
) -> Result<Summary, SyncError> {
    let conn = endpoint
        .connect(hub, HUB_NAME)
        .map_err(|e| SyncError::Connect(e.to_string()))?
        .await
        .map_err(|e| SyncError::Connect(e.to_string()))?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(link)?;
    let (mut session, first) = NodeSession::start(
        *node_id.as_bytes(),
        site,
        positions.upload_acked,
        positions.download_cursor,
        BATCH_BYTES,
        PULL_BYTES,
    );
    let mut actions: VecDeque<NodeAction> = first.into();
    let mut decoder = Decoder::new();
    loop {
        while let Some(action) = actions.pop_front() {
            match action {
                NodeAction::Send(m) => send.write_all(&encode(&m)).await.map_err(link)?,
                NodeAction::LoadUpload { after, max_bytes } => {
                    let batch = storage
                        .upload_batch(after, max_bytes)
                        .await
                        .map_err(SyncError::Storage)?;
                    actions.extend(session.upload_loaded(batch)?);
                }
                NodeAction::LoadAudit { after, max_bytes } => {
                    let batch = storage
                        .audit_batch(after, max_bytes)
                        .await
                        .map_err(SyncError::Storage)?;
                    actions.extend(session.audit_loaded(batch)?);
                }
                NodeAction::UploadAcked { through, rejected } => {
                    storage
                        .record_ack(through, rejected)
                        .await
                        .map_err(SyncError::Storage)?;
                }
                NodeAction::Apply { changes, through } => {
                    storage
                        .apply(changes, through)
                        .await
                        .map_err(SyncError::Storage)?;
                    actions.extend(session.applied()?);
                }
                NodeAction::Finished(summary) => {
                    let _ = send.finish();
                    // Give the Done frame a moment to leave; nothing depends on it.
                    let _ =
                        tokio::time::timeout(std::time::Duration::from_millis(200), send.stopped())
                            .await;
                    conn.close(0u32.into(), b"done");
                    return Ok(summary);
                }
            }
        }
        let msg = match next_message(&mut recv, &mut decoder).await {
            Ok(m) => m,
            // The hub may refuse in the handshake's wake by closing the connection with
            // a reason: show that reason.
            Err(e) => {
                return Err(conn
                    .close_reason()
                    .map_or(e, |r| SyncError::Connect(r.to_string())));
            }
        };
        actions.extend(session.on_message(msg)?);
    }
}

/// Serves one node connection on the hub.
pub async fn serve_connection<S: HubStorage>(
    conn: quinn::Connection,
    storage: &S,
) -> Result<(), SyncError> {
    let (mut send, mut recv) = conn.accept_bi().await.map_err(link)?;
    let mut session = HubSession::new();
    let mut decoder = Decoder::new();
    let mut who: Option<(Uuid, String)> = None;
    let mut actions: VecDeque<HubAction> = VecDeque::new();
    loop {
        while let Some(action) = actions.pop_front() {
            match action {
                HubAction::Authenticate {
                    node_id,
                    site,
                    node_upload_acked,
                    ..
                } => {
                    let node = Uuid::from_bytes(node_id);
                    let result = if !peer_is_node(&conn, node) {
                        Err(Refusal {
                            code: RefusalCode::UnknownNode,
                            message: format!(
                                "this node's certificate does not belong to node {node}"
                            ),
                        })
                    } else {
                        storage
                            .authenticate(node, &site, node_upload_acked)
                            .await
                            .map_err(SyncError::Storage)?
                    };
                    if result.is_ok() {
                        who = Some((node, site));
                    }
                    actions.extend(session.authenticated(result)?);
                }
                HubAction::Commit { changes, through } => {
                    let (node, _) = who.as_ref().ok_or_else(|| {
                        SyncError::Protocol("commit before authentication".into())
                    })?;
                    let rejected = storage
                        .commit(*node, &changes, through)
                        .await
                        .map_err(SyncError::Storage)?;
                    actions.extend(session.committed(rejected)?);
                }
                HubAction::CommitAudit { events, .. } => {
                    let (node, _) = who
                        .as_ref()
                        .ok_or_else(|| SyncError::Protocol("audit before authentication".into()))?;
                    storage
                        .commit_audit(*node, &events)
                        .await
                        .map_err(SyncError::Storage)?;
                    actions.extend(session.audit_committed()?);
                }
                HubAction::Load { after, max_bytes } => {
                    let (node, site) = who
                        .as_ref()
                        .ok_or_else(|| SyncError::Protocol("pull before authentication".into()))?;
                    let (changes, through, more) = storage
                        .load(*node, site, after, max_bytes as usize)
                        .await
                        .map_err(SyncError::Storage)?;
                    actions.extend(session.loaded(changes, through, more)?);
                }
                HubAction::Send(m) => send.write_all(&encode(&m)).await.map_err(link)?,
                HubAction::Finished => {
                    let _ = send.finish();
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), conn.closed())
                        .await;
                    return Ok(());
                }
            }
        }
        match next_message(&mut recv, &mut decoder).await {
            Ok(msg) => actions.extend(session.on_message(msg)?),
            Err(SyncError::Frame(FrameError::UnsupportedVersion { ours, theirs })) => {
                // Answer in the frame layout every version reads, then stop.
                let refusal = Refusal {
                    code: RefusalCode::UnsupportedVersion,
                    message: format!(
                        "this hub speaks sync protocol version {ours}; the node speaks {theirs}"
                    ),
                };
                let _ = send.write_all(&encode(&Message::Refused(refusal))).await;
                let _ = send.finish();
                return Err(SyncError::Frame(FrameError::UnsupportedVersion {
                    ours,
                    theirs,
                }));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Accepts node connections until the endpoint closes, serving at most
/// `max_concurrent` at once: after an outage every node reconnects together, and the
/// rest wait their turn (their handshake completes; their session starts later).
pub async fn run_hub<S: HubStorage>(
    endpoint: quinn::Endpoint,
    storage: Arc<S>,
    max_concurrent: usize,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(max_concurrent.max(1)));
    while let Some(incoming) = endpoint.accept().await {
        let (storage, permits) = (storage.clone(), permits.clone());
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            // Enrollment (no client certificate yet) and sync share the endpoint; the
            // ALPN tells them apart. Enrollment takes no session permit.
            if crate::config::negotiated_alpn(&conn).as_deref() == Some(crate::enroll::ALPN_ENROLL)
            {
                let s = storage.clone();
                let _ = crate::enroll::serve_enrollment(conn, move |secret, node| async move {
                    s.enroll(secret, node).await
                })
                .await;
                return;
            }
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            let _ = serve_connection(conn, storage.as_ref()).await;
        });
    }
}
