//! The projector loop: folds the hub's log into documents and projections as soon as
//! uploads commit (and on a slow tick, for uploads to other hub replicas). What a fold
//! stores is announced by its transaction and reaches subscriptions through `fanout`.

use std::time::Duration;

use crate::Hub;

/// Runs until the task is dropped.
pub async fn run(hub: Hub) {
    loop {
        match hub
            .store()
            .materialize(healsync_hub_store::MATERIALIZE_STEP)
            .await
        {
            Ok(step) => {
                if step.collisions > 0 {
                    tracing::info!(
                        collisions = step.collisions,
                        "found bookings that collide across sites"
                    );
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
