//! The hub's side of sync as storage: [`HubSyncStorage`] answers the transport's hub
//! driver from the PostgreSQL store.

use healsync_hub_store::HubStore;
use healsync_sync_protocol::{Change, Refusal, Rejection, RemoteChange};
use healsync_sync_transport::driver::{HubStorage, StorageError};
use uuid::Uuid;

use std::sync::Arc;

use healsync_hub_store::HubStoreError;
use healsync_sync_transport::ca::HubCa;
use healsync_sync_transport::enroll::Grant;

/// The hub store, the CA that certifies enrolled nodes, and the projector's wake-up
/// (notified after every committed upload).
#[derive(Clone)]
pub struct HubSyncStorage {
    pub store: HubStore,
    pub ca: Arc<HubCa>,
    pub committed: Arc<tokio::sync::Notify>,
}

impl HubStorage for HubSyncStorage {
    async fn enroll(&self, secret: String, node_id: Uuid) -> Result<Grant, String> {
        let site = self
            .store
            .enroll(&secret, node_id)
            .await
            .map_err(|e| match e {
                HubStoreError::InvalidToken => {
                    "the enrollment token is unknown or already used".to_string()
                }
                other => format!("the hub could not enroll this node: {other}"),
            })?;
        let node = self
            .ca
            .issue_node(node_id, &site)
            .map_err(|e| format!("the hub could not issue a certificate: {e}"))?;
        Ok(Grant {
            site,
            ca_pem: self.ca.cert_pem().to_string(),
            node,
        })
    }

    async fn authenticate(
        &self,
        node_id: Uuid,
        site: &str,
        node_upload_acked: u64,
    ) -> Result<Result<(u64, Vec<Rejection>), Refusal>, StorageError> {
        Ok(self
            .store
            .authenticate(node_id, site, node_upload_acked)
            .await?)
    }

    async fn commit(
        &self,
        node_id: Uuid,
        changes: &[Change],
        through: u64,
    ) -> Result<Vec<Rejection>, StorageError> {
        let rejected = self.store.commit_upload(node_id, changes, through).await?;
        self.committed.notify_one();
        Ok(rejected)
    }

    async fn load(
        &self,
        node_id: Uuid,
        site: &str,
        after: u64,
        max_bytes: usize,
    ) -> Result<(Vec<RemoteChange>, u64, bool), StorageError> {
        Ok(self
            .store
            .load_changes(node_id, site, after, max_bytes)
            .await?)
    }
}
