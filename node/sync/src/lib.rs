//! The node's side of sync as storage: [`NodeSyncStorage`] answers the transport's node
//! driver from the node's store, and merges what arrives through
//! [`Node::apply_remote`], so open subscriptions see changes made elsewhere.

use std::net::SocketAddr;

use healsync_node_api::{ApiError, Node};
use healsync_store::Incoming;
use healsync_sync_protocol::session::Summary;
use healsync_sync_protocol::{Change, Rejection, RemoteChange};
use healsync_sync_transport::driver::{self, NodePositions, NodeStorage, StorageError, SyncError};
use uuid::Uuid;

pub struct NodeSyncStorage {
    node: Node,
}

fn api(e: ApiError) -> StorageError {
    format!("{} ({})", e.message(), e.code()).into()
}

impl NodeSyncStorage {
    pub fn new(node: Node) -> Self {
        NodeSyncStorage { node }
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
        Ok(())
    }

    async fn apply(
        &mut self,
        changes: Vec<RemoteChange>,
        through: u64,
    ) -> Result<(), StorageError> {
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
        Ok(())
    }
}

/// One sync round for `node` with the hub at `hub`, from the node's durable positions.
pub async fn sync_once(
    node: &Node,
    endpoint: &quinn::Endpoint,
    hub: SocketAddr,
) -> Result<Summary, SyncError> {
    let store = node.store().clone();
    let state = tokio::task::spawn_blocking(move || store.sync_state())
        .await
        .map_err(|e| SyncError::Storage(e.into()))?
        .map_err(|e| SyncError::Storage(e.into()))?;
    let identity = node.store().identity().clone();
    let mut storage = NodeSyncStorage::new(node.clone());
    driver::sync_node(
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
    .await
}
