//! The hub's side of sync as storage: [`HubSyncStorage`] answers the transport's hub
//! driver from the PostgreSQL store, and says in the protocol's terms why a node the
//! store does not admit is refused.

use healsync_hub_store::{Admission, HubStore};
use healsync_sync_protocol::session::Admitted;
use healsync_sync_protocol::{AuditRecord, Change, Refusal, RefusalCode, Rejection, RemoteChange};
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
    ) -> Result<Result<Admitted, Refusal>, StorageError> {
        let admission = self
            .store
            .authenticate(node_id, site, node_upload_acked)
            .await?;
        Ok(refusal_of(node_id, site, admission))
    }

    async fn commit_audit(
        &self,
        node_id: Uuid,
        events: &[AuditRecord],
    ) -> Result<(), StorageError> {
        Ok(self.store.commit_audit(node_id, events).await?)
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

/// What the protocol tells a node the store did not admit, in the technician's words.
fn refusal_of(node_id: Uuid, site: &str, admission: Admission) -> Result<Admitted, Refusal> {
    let refuse = |code, message| Err(Refusal { code, message });
    match admission {
        Admission::Admitted {
            upload_acked,
            rejected,
            audit_acked,
        } => Ok(Admitted {
            upload_acked,
            rejected,
            audit_acked,
        }),
        Admission::Unknown => refuse(
            RefusalCode::UnknownNode,
            format!("node {node_id} is not enrolled at this hub; enroll it with a token"),
        ),
        Admission::Revoked => refuse(
            RefusalCode::Revoked,
            format!("node {node_id} has been revoked; ask the central admin to enroll a new one"),
        ),
        Admission::WrongSite { enrolled } => refuse(
            RefusalCode::WrongSite,
            format!("node {node_id} is enrolled for site {enrolled}, not {site}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_not_admitted_is_told_why_in_the_protocols_terms() {
        let node = Uuid::nil();
        for (admission, code, words) in [
            (Admission::Unknown, RefusalCode::UnknownNode, "not enrolled"),
            (Admission::Revoked, RefusalCode::Revoked, "revoked"),
            (
                Admission::WrongSite {
                    enrolled: "MSA".into(),
                },
                RefusalCode::WrongSite,
                "enrolled for site MSA, not NBO",
            ),
        ] {
            let refusal = refusal_of(node, "NBO", admission).expect_err("refused");
            assert_eq!(refusal.code, code);
            assert!(refusal.message.contains(words), "{}", refusal.message);
        }
        let admitted = Admission::Admitted {
            upload_acked: 7,
            rejected: vec![],
            audit_acked: 3,
        };
        assert_eq!(
            refusal_of(node, "NBO", admitted).ok(),
            Some(Admitted {
                upload_acked: 7,
                rejected: vec![],
                audit_acked: 3
            })
        );
    }
}
