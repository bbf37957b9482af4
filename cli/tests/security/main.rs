//! The security review's findings, one case each, against real `healsync-node` and
//! `healsync-hub` processes over HTTP and WebSocket (the hub on a real PostgreSQL).
//! Every refusal is asserted together with the absence of the protected bytes; the
//! denial-of-service cases also assert that `/readyz` (a read of the database) keeps
//! answering within 200 ms while the attack runs and that the server's memory grows by
//! less than 100 MB.

#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod conformance;
mod dos;
mod surface;
mod tls;
mod trust;

pub use common::*;

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use healsync_test_support::Gql;
use serde_json::Value;

/// The denial-of-service cases measure latency on a 2-core machine: they run alone
/// (`alone`), every other case of this suite beside the others (`beside`).
static LOAD: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

pub async fn alone() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    LOAD.write().await
}

pub async fn beside() -> tokio::sync::RwLockReadGuard<'static, ()> {
    LOAD.read().await
}

/// Asserts that none of `secrets` appears anywhere in `body`.
pub fn leaks_nothing(what: &str, body: &Value, secrets: &[&str]) {
    let text = body.to_string();
    for s in secrets {
        assert!(
            !text.contains(s),
            "{what}: the response carries {s:?}: {text}"
        );
    }
}

/// Runs `attack` (again and again, for at least two seconds) while polling `/readyz`
/// and sampling memory; fails if health checks take 200 ms or more (the 95th
/// percentile: one sample may meet a hiccup of the shared machine; none may take a
/// second), or if memory grows by 100 MB or more.
pub async fn under_attack<F, Fut>(
    base: &str,
    rss: impl Fn() -> Option<u64>,
    attack: F,
) -> Result<()>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let http = Gql::new(base);
    let before = rss().unwrap_or(0);
    let task = tokio::spawn(async move {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(2) {
            attack().await?;
        }
        Ok::<_, anyhow::Error>(())
    });
    let mut health = vec![];
    let mut peak = before;
    while !task.is_finished() {
        let t = Instant::now();
        let (status, _) = http.get("/readyz").await?;
        health.push(t.elapsed());
        assert_eq!(status, 200, "readyz during the attack");
        peak = peak.max(rss().unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.await??;
    peak = peak.max(rss().unwrap_or(0));
    health.sort();
    let p95 = health[(health.len() * 95 / 100).min(health.len().saturating_sub(1))];
    let worst = health.last().copied().unwrap_or_default();
    if p95 >= Duration::from_millis(200) || worst >= Duration::from_secs(1) {
        bail!(
            "/readyz during the attack: p95 {p95:?}, worst {worst:?} over {} checks",
            health.len()
        );
    }
    let grew = peak.saturating_sub(before);
    if grew >= 100 * 1024 * 1024 {
        bail!(
            "memory grew by {} MB during the attack",
            grew / (1024 * 1024)
        );
    }
    Ok(())
}
