//! The node's one stream of committed changes. Local writes publish here after their
//! transaction commits; sync will publish the records it merges. Subscriptions filter it.

use std::sync::Arc;

use healsync_records::AnyRecord;
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it skips ahead.
const CAPACITY: usize = 4096;

#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<AnyRecord>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        EventBus {
            tx: broadcast::channel(CAPACITY).0,
        }
    }

    pub fn publish(&self, records: Vec<AnyRecord>) {
        for r in records {
            // No subscriber is not an error: nobody is watching.
            let _ = self.tx.send(Arc::new(r));
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AnyRecord>> {
        self.tx.subscribe()
    }
}
