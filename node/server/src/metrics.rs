//! The node's `GET /metrics`: the GraphQL transport's figures (requests, errors by code,
//! latency by operation, WebSockets, subscriptions) and the clinic's state read from
//! the store at each scrape (sync lag, changes waiting, held and refused, conflicts
//! open, outbox depth by status, database size). Kept with `prometheus-client`; every
//! name starts `healsync_`.

use std::sync::atomic::AtomicU64;

use chrono::{DateTime, Utc};
use healsync_graphql_http::metrics::HttpMetrics;
use healsync_node_api::SyncRound;
use healsync_store::{NodeStatus, Stats};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

/// The node's registry: the transport's figures and the store's.
pub struct Metrics {
    registry: Registry,
    pub http: HttpMetrics,
    store: StoreFigures,
}

/// The figures read from the store at each scrape.
#[derive(Default)]
struct StoreFigures {
    last_sync: Gauge<f64, AtomicU64>,
    sync_lag: Gauge<f64, AtomicU64>,
    hub_reachable: Gauge,
    waiting: Gauge,
    held: Gauge,
    refused: Gauge,
    conflicts: Gauge,
    outbox: Family<StatusLabel, Gauge>,
    documents: Gauge,
    change_log: Gauge,
    database_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("healsync");
        let http = HttpMetrics::register(&mut registry);
        let f = StoreFigures::default();
        let r = &mut registry;
        r.register(
            "sync_last_success_timestamp_seconds",
            "When the last sync round with the hub completed (Unix time; NaN before the first)",
            f.last_sync.clone(),
        );
        r.register(
            "sync_lag_seconds",
            "Seconds since the last completed sync round with the hub",
            f.sync_lag.clone(),
        );
        r.register(
            "hub_reachable",
            "1 when the last sync round this process made reached the hub",
            f.hub_reachable.clone(),
        );
        r.register(
            "sync_changes_waiting",
            "Local changes not yet acknowledged by the hub",
            f.waiting.clone(),
        );
        r.register(
            "sync_changes_held",
            "Changes from the hub held back until they can be merged",
            f.held.clone(),
        );
        r.register(
            "sync_changes_refused",
            "Local changes the hub refused to store",
            f.refused.clone(),
        );
        r.register(
            "conflicts_open",
            "Concurrent edits waiting for a person to decide",
            f.conflicts.clone(),
        );
        r.register(
            "outbox_messages",
            "Outgoing e-mail and SMS messages in the outbox, by status",
            f.outbox.clone(),
        );
        r.register(
            "documents",
            "Record documents in the store",
            f.documents.clone(),
        );
        r.register(
            "change_log_entries",
            "Entries in the change log",
            f.change_log.clone(),
        );
        r.register(
            "database_bytes",
            "Size of the SQLite database",
            f.database_bytes.clone(),
        );
        Metrics {
            registry,
            http,
            store: f,
        }
    }
}

impl Metrics {
    /// Sets the store's figures, then renders everything. A store that did not answer
    /// leaves its figures as the last scrape saw them (the transport's still count).
    pub fn render(
        &self,
        store: Option<(&Stats, &NodeStatus)>,
        round: Option<&SyncRound>,
        now: DateTime<Utc>,
    ) -> String {
        if let Some((stats, status)) = store {
            let last = status
                .last_sync
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            match last {
                Some(t) => {
                    self.store
                        .last_sync
                        .set(t.timestamp_millis() as f64 / 1000.0);
                    let lag = (now - t).num_milliseconds().max(0) as f64 / 1000.0;
                    self.store.sync_lag.set(lag);
                }
                // Never synced (or not enrolled): no figure rather than a fake zero lag.
                None => {
                    self.store.last_sync.set(f64::NAN);
                    self.store.sync_lag.set(f64::NAN);
                }
            }
            self.store.waiting.set(status.waiting_to_upload);
            self.store.held.set(status.held_changes);
            self.store.refused.set(status.refused_changes);
            self.store.conflicts.set(status.open_conflicts);
            self.store.database_bytes.set(status.database_bytes);
            self.store.documents.set(stats.documents);
            self.store.change_log.set(stats.change_log_entries);
            // Every status is listed, at 0 when none stands in it, so an alert on
            // FAILED > 0 has a series to watch from the start.
            for (status, n) in &stats.outbox {
                self.store
                    .outbox
                    .get_or_create(&StatusLabel { status })
                    .set(*n);
            }
        }
        self.store
            .hub_reachable
            .set(i64::from(round.is_some_and(|r| r.error.is_none())));
        healsync_graphql_http::metrics::render(&self.registry)
    }
}
