//! Feeds this replica's subscriptions from the hub's announcements (`NOTIFY`), so a
//! central admin watching any replica sees what every replica folded or wrote.
//!
//! The announcements carry ids; the current rows are read only while this replica has
//! subscribers. A lost listening connection is re-established by the feed and logged:
//! what was announced meanwhile is not delivered to open subscriptions (they are live
//! views; the records themselves are in the database).

use std::time::Duration;

use healsync_hub_store::HubStoreError;
use healsync_hub_store::events::Announcement;

use crate::{Hub, HubEvent};

/// Runs until the task is dropped.
pub async fn run(hub: Hub) {
    loop {
        let mut feed = match hub.store().listen().await {
            Ok(feed) => feed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for the hub's events; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        loop {
            let announced = match feed.next().await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "listening for the hub's events failed; reconnecting");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    break;
                }
            };
            if let Err(e) = deliver(&hub, announced).await {
                tracing::warn!(error = %e, "an announced change could not be read for subscribers");
            }
        }
    }
}

async fn deliver(hub: &Hub, announced: Announcement) -> Result<(), HubStoreError> {
    match announced {
        Announcement::Lost => {
            tracing::warn!(
                "the connection that hears the hub's events was lost and re-established; \
                 open subscriptions may have missed changes"
            );
        }
        _ if !hub.has_subscribers() => {}
        Announcement::Documents(ids) => {
            for d in hub.store().changed_documents(&ids).await? {
                hub.publish(HubEvent::Document(d));
            }
        }
        Announcement::Collisions(ids) => {
            for c in hub.store().collisions(&ids).await? {
                hub.publish(HubEvent::CrossSite(c));
            }
        }
    }
    Ok(())
}
