//! `/metrics` of a node and of its hub say what an operator is paged for: how long
//! operations take (by operation, with labels no client can invent), WebSockets and
//! subscriptions open, sync lag and changes waiting, and whether the hub's PostgreSQL
//! answers — with `/readyz` turning 503 while it does not, and `/healthz` staying 200.

use anyhow::Result;
use healsync_test_support::{Gql, NodeProcess, Ws};
use serde_json::json;

use crate::common::{Clinic, TestHub, binary, eventually};

/// The value of the series `series` (name and labels exactly as rendered).
fn figure(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split(' ').next()?.parse().ok()
    })
}

async fn metrics(gql: &Gql) -> Result<String> {
    let (status, text) = gql.get("/metrics").await?;
    anyhow::ensure!(status == 200, "/metrics answered {status}: {text}");
    Ok(text)
}

/// Waits until `series` of `gql`'s `/metrics` satisfies `ok`; returns its value.
async fn until(gql: &Gql, series: &str, ok: impl Fn(f64) -> bool) -> Result<f64> {
    eventually(series, || async {
        let text = metrics(gql).await?;
        Ok(figure(&text, series).filter(|v| ok(*v)))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_hub_metrics_follow_traffic_sync_and_the_database() -> Result<()> {
    let hub = TestHub::start("metrics", &[("NBO", "Nairobi")]).await?;
    let dir = hub.enroll("NBO").await?;
    let node = NodeProcess::start(binary(), dir.path(), &["--sync-interval", "1"]).await?;
    let c = Clinic::on(node, dir).await?;
    let a = &c.admin;

    // Operations are timed by kind and root field; a refused document is `invalid`,
    // and neither an operation's name nor an unknown field becomes a label.
    for _ in 0..3 {
        a.ok("{ patients { id } }", json!({})).await?;
    }
    a.ok("query Zq7OperatorPage { doctors { id } }", json!({}))
        .await?;
    c.patient("Amina Njoroge").await?;
    let r = a.query("{ zq7Nonsense { id } }", json!({})).await?;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
    let text = metrics(a).await?;
    let count = |kind: &str, field: &str| {
        figure(
            &text,
            &format!(
                "healsync_graphql_operation_seconds_count{{kind=\"{kind}\",field=\"{field}\"}}"
            ),
        )
    };
    assert!(count("query", "patients") >= Some(3.0), "{text}");
    assert!(count("query", "doctors") >= Some(1.0), "{text}");
    assert!(count("mutation", "createPatient") >= Some(1.0), "{text}");
    assert!(count("query", "invalid") >= Some(1.0), "{text}");
    assert!(!text.contains("zq7") && !text.contains("Zq7"), "{text}");
    assert!(
        figure(
            &text,
            "healsync_graphql_errors_total{code=\"BAD_USER_INPUT\"}"
        ) >= Some(1.0),
        "{text}"
    );
    assert_eq!(
        figure(&text, "healsync_graphql_errors_total{code=\"INTERNAL\"}"),
        Some(0.0),
        "{text}"
    );

    // A subscription counts while it runs, and stops counting when its socket goes.
    let token = a.token.clone().unwrap_or_default();
    let mut ws = Ws::connect_with_token(&c.node.base, &token).await?;
    ws.subscribe("s", "subscription { patientUpdated { id } }", json!({}))
        .await?;
    until(a, "healsync_subscriptions_open", |v| v == 1.0).await?;
    until(a, "healsync_websockets_open", |v| v == 1.0).await?;
    drop(ws);
    until(a, "healsync_subscriptions_open", |v| v == 0.0).await?;
    until(a, "healsync_websockets_open", |v| v == 0.0).await?;

    // Synced: the hub was reached, nothing waits, the lag is small.
    until(a, "healsync_hub_reachable", |v| v == 1.0).await?;
    until(a, "healsync_sync_changes_waiting", |v| v == 0.0).await?;
    until(a, "healsync_sync_lag_seconds", |v| v < 30.0).await?;
    assert_eq!(
        figure(&metrics(a).await?, "healsync_conflicts_open"),
        Some(0.0)
    );

    // The hub: its site, its node, its sync lag, and its own operations.
    let central = hub.process.admin().await?;
    central.ok("{ sites { code } }", json!({})).await?;
    let h = metrics(&central).await?;
    assert_eq!(
        figure(&h, "healsync_hub_site_nodes{site=\"NBO\"}"),
        Some(1.0),
        "{h}"
    );
    assert_eq!(figure(&h, "healsync_hub_database_up"), Some(1.0), "{h}");
    assert!(
        figure(
            &h,
            "healsync_hub_graphql_operation_seconds_count{kind=\"query\",field=\"sites\"}"
        ) >= Some(1.0),
        "{h}"
    );
    // Every figure the operators' Grafana dashboard plots is one the hub serves.
    let dashboard = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../packaging/grafana/healsync-hub.json"),
    )?;
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard)?;
    let mut plotted = 0;
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            for (i, _) in expr.match_indices("healsync_hub_") {
                let name: String = expr[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                plotted += 1;
                assert!(
                    h.lines().any(|l| l.starts_with(&name)),
                    "the dashboard plots {name}, which the hub does not serve:\n{h}"
                );
            }
        }
    }
    assert!(plotted >= 9, "{plotted}");
    until(
        &central,
        "healsync_hub_site_sync_lag_seconds{site=\"NBO\"}",
        |v| v < 30.0,
    )
    .await?;

    // PostgreSQL goes away from the hub: the hub stays alive but not ready, its figures
    // say so; the node cannot sync, keeps working, and counts what waits.
    hub.db.accept_connections(false).await?;
    eventually("the hub to be unready", || async {
        let (status, _) = central.get("/readyz").await?;
        Ok((status == 503).then_some(()))
    })
    .await?;
    let (status, _) = central.get("/healthz").await?;
    assert_eq!(status, 200);
    until(&central, "healsync_hub_database_up", |v| v == 0.0).await?;
    c.patient("Baraka Otieno").await?;
    until(a, "healsync_hub_reachable", |v| v == 0.0).await?;
    until(a, "healsync_sync_changes_waiting", |v| v >= 1.0).await?;

    // Back: ready again, and what waited goes.
    hub.db.accept_connections(true).await?;
    eventually("the hub to be ready again", || async {
        let (status, _) = central.get("/readyz").await?;
        Ok((status == 200).then_some(()))
    })
    .await?;
    until(a, "healsync_sync_changes_waiting", |v| v == 0.0).await?;
    until(a, "healsync_hub_reachable", |v| v == 1.0).await?;
    until(&central, "healsync_hub_database_up", |v| v == 1.0).await?;
    Ok(())
}
