//! The hub's side of sync as storage: [`HubSyncStorage`] answers the transport's hub
//! driver from the PostgreSQL store.

use healsync_hub_store::HubStore;
use healsync_sync_protocol::{Change, Refusal, Rejection, RemoteChange};
use healsync_sync_transport::driver::{HubStorage, StorageError};
use uuid::Uuid;

#[derive(Clone)]
pub struct HubSyncStorage(pub HubStore);

impl HubStorage for HubSyncStorage {
    async fn authenticate(
        &self,
        node_id: Uuid,
        site: &str,
        node_upload_acked: u64,
    ) -> Result<Result<(u64, Vec<Rejection>), Refusal>, StorageError> {
        Ok(self
            .0
            .authenticate(node_id, site, node_upload_acked)
            .await?)
    }

    async fn commit(
        &self,
        node_id: Uuid,
        changes: &[Change],
        through: u64,
    ) -> Result<Vec<Rejection>, StorageError> {
        Ok(self.0.commit_upload(node_id, changes, through).await?)
    }

    async fn load(
        &self,
        node_id: Uuid,
        site: &str,
        after: u64,
        max_bytes: usize,
    ) -> Result<(Vec<RemoteChange>, u64, bool), StorageError> {
        Ok(self.0.load_changes(node_id, site, after, max_bytes).await?)
    }
}
