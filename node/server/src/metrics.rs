//! Counters for `GET /metrics`, in the Prometheus text format.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use healsync_store::Stats;

#[derive(Default)]
pub struct Metrics {
    graphql_requests: AtomicU64,
    graphql_errors: Mutex<Vec<(String, u64)>>,
    websockets_open: AtomicI64,
    websockets_total: AtomicU64,
}

impl Metrics {
    pub fn graphql_request(&self) {
        self.graphql_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn graphql_error(&self, code: &str) {
        if let Ok(mut errors) = self.graphql_errors.lock() {
            match errors.iter_mut().find(|(c, _)| c == code) {
                Some((_, n)) => *n += 1,
                None => errors.push((code.to_string(), 1)),
            }
        }
    }

    /// A WebSocket opened (`true`) or closed (`false`).
    pub fn websocket(&self, open: bool) {
        if open {
            self.websockets_open.fetch_add(1, Ordering::Relaxed);
            self.websockets_total.fetch_add(1, Ordering::Relaxed);
        } else {
            self.websockets_open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub fn render(&self, stats: Option<&Stats>) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, lines: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in lines {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        metric(
            "healsync_graphql_requests_total",
            "counter",
            "GraphQL requests over HTTP.",
            vec![(
                String::new(),
                self.graphql_requests.load(Ordering::Relaxed).to_string(),
            )],
        );
        let errors = self
            .graphql_errors
            .lock()
            .map(|e| {
                e.iter()
                    .map(|(c, n)| (format!("{{code=\"{c}\"}}"), n.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        metric(
            "healsync_graphql_errors_total",
            "counter",
            "GraphQL errors by code.",
            errors,
        );
        metric(
            "healsync_websockets_open",
            "gauge",
            "Open GraphQL WebSocket connections.",
            vec![(
                String::new(),
                self.websockets_open.load(Ordering::Relaxed).to_string(),
            )],
        );
        metric(
            "healsync_websockets_total",
            "counter",
            "GraphQL WebSocket connections accepted.",
            vec![(
                String::new(),
                self.websockets_total.load(Ordering::Relaxed).to_string(),
            )],
        );
        if let Some(s) = stats {
            metric(
                "healsync_documents",
                "gauge",
                "Record documents in the store.",
                vec![(String::new(), s.documents.to_string())],
            );
            metric(
                "healsync_change_log_entries",
                "gauge",
                "Entries in the change log.",
                vec![(String::new(), s.change_log_entries.to_string())],
            );
            metric(
                "healsync_database_bytes",
                "gauge",
                "Size of the SQLite database.",
                vec![(String::new(), s.database_bytes.to_string())],
            );
            // Every status is listed, at 0 when none stands in it, so an alert on
            // FAILED > 0 has a series to watch from the start.
            let outbox = s
                .outbox
                .iter()
                .map(|(status, n)| (format!("{{status=\"{status}\"}}"), n.to_string()))
                .collect();
            metric(
                "healsync_outbox_messages",
                "gauge",
                "Outgoing e-mail and SMS messages in the outbox, by status.",
                outbox,
            );
        }
        out
    }
}
