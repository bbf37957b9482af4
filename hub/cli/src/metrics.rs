//! The hub's `GET /metrics`: the GraphQL transport's figures (requests, errors by code,
//! latency by operation, WebSockets, subscriptions) and, read from PostgreSQL at each
//! scrape, each site's sync state: how long since its freshest node last synced, how
//! far its nodes are behind the hub's log, changes refused and conflicts open. Kept
//! with `prometheus-client`; every name starts `healsync_hub_`.

use std::sync::atomic::AtomicU64;

use chrono::{DateTime, Utc};
use healsync_graphql_http::metrics::HttpMetrics;
use healsync_hub_store::SiteInfo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Sites are registered by central admins (short codes), so one series per site is a
/// bounded set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SiteLabel {
    site: String,
}

pub struct Metrics {
    registry: Registry,
    pub http: HttpMetrics,
    nodes: Family<SiteLabel, Gauge>,
    sync_lag: Family<SiteLabel, Gauge<f64, AtomicU64>>,
    log_lag: Family<SiteLabel, Gauge>,
    refused: Family<SiteLabel, Gauge>,
    conflicts: Family<SiteLabel, Gauge>,
    database_up: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("healsync_hub");
        let http = HttpMetrics::register(&mut registry);
        let nodes = Family::<SiteLabel, Gauge>::default();
        let sync_lag = Family::<SiteLabel, Gauge<f64, AtomicU64>>::default();
        let log_lag = Family::<SiteLabel, Gauge>::default();
        let refused = Family::<SiteLabel, Gauge>::default();
        let conflicts = Family::<SiteLabel, Gauge>::default();
        let database_up = Gauge::default();
        registry.register(
            "site_nodes",
            "Enrolled, unrevoked nodes of a site",
            nodes.clone(),
        );
        registry.register(
            "site_sync_lag_seconds",
            "Seconds since a site's most recently synced node last completed a round (NaN if none ever did)",
            sync_lag.clone(),
        );
        registry.register(
            "site_log_lag_changes",
            "Hub log entries the site's furthest-behind node has not applied yet",
            log_lag.clone(),
        );
        registry.register(
            "site_changes_refused",
            "Changes from a site's nodes the hub refused to store",
            refused.clone(),
        );
        registry.register(
            "site_conflicts_open",
            "Conflicts open at a site (concurrent edits and cross-site bookings)",
            conflicts.clone(),
        );
        registry.register(
            "database_up",
            "1 when PostgreSQL answered this scrape",
            database_up.clone(),
        );
        Metrics {
            registry,
            http,
            nodes,
            sync_lag,
            log_lag,
            refused,
            conflicts,
            database_up,
        }
    }
}

impl Metrics {
    /// Sets the sites' figures (`None`: PostgreSQL did not answer, the last scrape's
    /// stand) and renders everything.
    pub fn render(&self, sites: Option<&[SiteInfo]>, now: DateTime<Utc>) -> String {
        self.database_up.set(i64::from(sites.is_some()));
        for s in sites.unwrap_or_default() {
            let label = SiteLabel {
                site: s.code.clone(),
            };
            let live = s.nodes.iter().filter(|n| !n.revoked);
            let n = i64::try_from(live.clone().count()).unwrap_or(i64::MAX);
            self.nodes.get_or_create(&label).set(n);
            let freshest = live.clone().filter_map(|n| n.last_sync).max();
            self.sync_lag.get_or_create(&label).set(match freshest {
                Some(t) => (now - t).num_milliseconds().max(0) as f64 / 1000.0,
                None => f64::NAN,
            });
            let behind = live.clone().map(|n| n.lag).max().unwrap_or(0);
            self.log_lag
                .get_or_create(&label)
                .set(i64::try_from(behind).unwrap_or(i64::MAX));
            let refused: u64 = s.nodes.iter().map(|n| n.refused).sum();
            self.refused
                .get_or_create(&label)
                .set(i64::try_from(refused).unwrap_or(i64::MAX));
            self.conflicts.get_or_create(&label).set(s.open_conflicts);
        }
        healsync_graphql_http::metrics::render(&self.registry)
    }
}
