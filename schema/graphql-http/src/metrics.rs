//! The GraphQL transport's own figures, kept with `prometheus-client` and rendered in
//! the Prometheus text format: requests, errors by contract code, how long each kind of
//! operation took (a histogram per root field), open WebSockets and subscriptions.
//!
//! Every label value comes from a closed set, never from what a client typed: error
//! codes are the contract's seven (anything else counts as `INTERNAL`), and an
//! operation is labelled by its root field only once the schema has validated it (a
//! refused document is `invalid`). A client sending a thousand made-up operation
//! names therefore cannot grow the server's memory.
//!
//! A server owns one [`prometheus_client::registry::Registry`], registers these beside
//! its own figures (sync, outbox, database) and renders them with [`render`].

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The contract's error codes: the only values the `code` label takes.
pub const CODES: [&str; 7] = [
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "CONFLICT",
    "RATE_LIMITED",
    "INTERNAL",
];

/// Upper bounds (seconds) of the operation-latency buckets: half a millisecond (a
/// cached read on the clinic box) to ten seconds (beyond the query time limit).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    /// `query`, `mutation` or `subscription`.
    kind: &'static str,
    /// The operation's first root field (`patients`, `bookAppointment`, ...), or
    /// `invalid` when the document was refused before it ran.
    field: String,
}

/// The transport's figures; cheap to clone (shared handles).
#[derive(Clone)]
pub struct HttpMetrics {
    requests: Counter,
    errors: Family<CodeLabel, Counter>,
    operations: Family<OperationLabels, Histogram>,
    websockets_open: Gauge,
    websockets_total: Counter,
    subscriptions_open: Gauge,
}

impl HttpMetrics {
    /// Creates the figures and registers them in `registry` (names get the registry's
    /// prefix, if it has one).
    pub fn register(registry: &mut Registry) -> HttpMetrics {
        let m = HttpMetrics {
            requests: Counter::default(),
            errors: Family::default(),
            operations: Family::new_with_constructor(|| {
                Histogram::new(LATENCY_BUCKETS.iter().copied())
            }),
            websockets_open: Gauge::default(),
            websockets_total: Counter::default(),
            subscriptions_open: Gauge::default(),
        };
        // Every code has a series from the start, so an alert on INTERNAL > 0 has
        // something to watch before the first failure.
        for code in CODES {
            let _ = m.errors.get_or_create(&CodeLabel { code });
        }
        registry.register(
            "graphql_requests",
            "GraphQL requests over HTTP",
            m.requests.clone(),
        );
        registry.register(
            "graphql_errors",
            "GraphQL errors returned, by contract code",
            m.errors.clone(),
        );
        registry.register(
            "graphql_operation_seconds",
            "Time to run a GraphQL operation over HTTP, by kind and root field",
            m.operations.clone(),
        );
        registry.register(
            "websockets_open",
            "Open GraphQL WebSocket connections",
            m.websockets_open.clone(),
        );
        registry.register(
            "websockets",
            "GraphQL WebSocket connections accepted",
            m.websockets_total.clone(),
        );
        registry.register(
            "subscriptions_open",
            "GraphQL subscriptions running over WebSockets",
            m.subscriptions_open.clone(),
        );
        m
    }

    pub fn request(&self) {
        self.requests.inc();
    }

    /// One error returned; a code outside the contract counts as `INTERNAL`.
    pub fn error(&self, code: &str) {
        let code = CODES
            .iter()
            .copied()
            .find(|c| *c == code)
            .unwrap_or("INTERNAL");
        self.errors.get_or_create(&CodeLabel { code }).inc();
    }

    /// An operation ran (`field` is `None` when the document was refused unrun).
    pub fn operation(&self, kind: &'static str, field: Option<&str>, took: Duration) {
        let labels = OperationLabels {
            kind,
            field: field.unwrap_or("invalid").to_string(),
        };
        self.operations
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// A WebSocket opened (`true`) or closed (`false`).
    pub fn websocket(&self, open: bool) {
        if open {
            self.websockets_open.inc();
            self.websockets_total.inc();
        } else {
            self.websockets_open.dec();
        }
    }

    /// Counts a subscription as running until the returned guard is dropped (when its
    /// stream ends, the client completes it, or the connection goes).
    pub fn subscription(&self) -> Running {
        self.subscriptions_open.inc();
        Running(self.subscriptions_open.clone())
    }
}

/// A running subscription, counted while it lives.
pub struct Running(Gauge);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The registry in the Prometheus text format, as `/metrics` serves it.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail; an encoding error would be a bug in a metric
    // and must not take `/metrics` down, so what was written stands.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// The media type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_closed_sets() {
        let mut r = Registry::with_prefix("t");
        let m = HttpMetrics::register(&mut r);
        m.error("FORBIDDEN");
        m.error("made-up code from somewhere");
        m.operation("query", Some("patients"), Duration::from_millis(3));
        m.operation("query", None, Duration::from_millis(1));
        let text = render(&r);
        assert!(
            text.contains("t_graphql_errors_total{code=\"FORBIDDEN\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("t_graphql_errors_total{code=\"INTERNAL\"} 1"),
            "{text}"
        );
        assert!(!text.contains("made-up"), "{text}");
        assert!(
            text.contains("t_graphql_errors_total{code=\"CONFLICT\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("t_graphql_operation_seconds_bucket{le=\"0.005\",kind=\"query\",field=\"patients\"} 1"),
            "{text}"
        );
        assert!(text.contains("field=\"invalid\""), "{text}");
    }

    #[test]
    fn a_subscription_counts_while_it_runs() {
        let mut r = Registry::with_prefix("t");
        let m = HttpMetrics::register(&mut r);
        let a = m.subscription();
        let b = m.subscription();
        assert!(render(&r).contains("t_subscriptions_open 2"));
        drop(a);
        drop(b);
        assert!(render(&r).contains("t_subscriptions_open 0"));
    }
}
