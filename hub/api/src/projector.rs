//! The projector loop: folds the hub's log into documents and projections as soon as
//! uploads commit (and on a slow tick, for writes from other hub replicas), and
//! publishes what changed to the subscriptions.

use std::time::Duration;

use crate::{Hub, HubEvent};

/// Runs until the task is dropped.
pub async fn run(hub: Hub) {
    loop {
        match hub
            .store()
            .materialize(healsync_hub_store::MATERIALIZE_STEP)
            .await
        {
            Ok(step) => {
                for d in step.documents {
                    hub.publish(HubEvent::Document(d));
                }
                for c in step.collisions {
                    hub.publish(HubEvent::CrossSite(c));
                }
                if step.more {
                    continue;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "materializing the log failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), hub.wake().notified()).await;
    }
}
