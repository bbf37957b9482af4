//! The crate dependency direction, checked by machine: pure crates stay pure, and each
//! outside technology is known by one crate only.

use std::collections::{BTreeSet, HashMap};

use anyhow::{Context, Result, anyhow};
use serde_json::Value;

/// Every crate the named workspace crate depends on, directly or not (normal deps).
fn closure(meta: &Value, name: &str) -> Result<BTreeSet<String>> {
    let packages = meta["packages"]
        .as_array()
        .ok_or_else(|| anyhow!("no packages"))?;
    let names: HashMap<&str, &str> = packages
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let nodes: HashMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .ok_or_else(|| anyhow!("no resolve"))?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let root = names
        .iter()
        .find(|(_, n)| **n == name)
        .map(|(id, _)| *id)
        .ok_or_else(|| anyhow!("no crate {name}"))?;
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        let Some(node) = nodes.get(id) else { continue };
        for dep in node["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()));
            let Some(dep_id) = dep["pkg"].as_str() else {
                continue;
            };
            if normal && seen.insert(names.get(dep_id).copied().unwrap_or(dep_id).to_string()) {
                stack.push(dep_id);
            }
        }
    }
    Ok(seen)
}

/// Crates that exist for tests and benchmarks only; they may drive any technology.
const TEST_ONLY: &[&str] = &["healsync-test-support", "healsync-bench"];

#[test]
fn dependency_direction() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .context("run cargo metadata")?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout)?;
    // (crate, what it must never depend on, even indirectly)
    let rules: &[(&str, &[&str])] = &[
        (
            "healsync-domain",
            &[
                "tokio",
                "rusqlite",
                "automerge",
                "axum",
                "async-graphql",
                "healsync-store",
            ],
        ),
        (
            "healsync-records",
            &[
                "tokio",
                "rusqlite",
                "axum",
                "async-graphql",
                "healsync-store",
            ],
        ),
        (
            "healsync-store",
            &["tokio", "axum", "async-graphql", "hyper"],
        ),
        // The login procedure bounds concurrent password checks with tokio's
        // semaphore and runs them on blocking threads; auth still does no I/O of its
        // own beyond the session key file.
        (
            "healsync-auth",
            &[
                "rusqlite",
                "sqlx",
                "axum",
                "hyper",
                "async-graphql",
                "quinn",
            ],
        ),
        (
            "healsync-graphql-guard",
            &["tokio", "rusqlite", "sqlx", "axum", "hyper", "quinn"],
        ),
        (
            "healsync-graphql-batch",
            &["rusqlite", "sqlx", "axum", "hyper", "quinn"],
        ),
        ("healsync-node-api", &["axum", "hyper"]),
        ("healsync-hub-api", &["axum", "hyper", "quinn", "rusqlite"]),
        (
            "healsync-hub-projection",
            &[
                "tokio",
                "sqlx",
                "rusqlite",
                "axum",
                "async-graphql",
                "quinn",
            ],
        ),
        (
            "healsync-graphql-http",
            &[
                "healsync-store",
                "healsync-hub-store",
                "rusqlite",
                "sqlx",
                "quinn",
            ],
        ),
        (
            "healsync-sync-protocol",
            &[
                "tokio",
                "rusqlite",
                "automerge",
                "quinn",
                "sqlx",
                "healsync-domain",
                "healsync-store",
            ],
        ),
    ];
    for (krate, banned) in rules {
        let deps = closure(&meta, krate)?;
        for b in *banned {
            assert!(!deps.contains(*b), "{krate} must not depend on {b}");
        }
    }
    // Each outside technology is named directly by its owners only. The shared GraphQL
    // transport and the two servers know axum; the hub binary owns its QUIC endpoint.
    for (tech, owners) in [
        ("rusqlite", &["healsync-store"][..]),
        (
            "axum",
            &[
                "healsync-graphql-http",
                "healsync-node-server",
                "healsync-hub",
            ][..],
        ),
        ("sqlx", &["healsync-hub-store"][..]),
        (
            "quinn",
            &[
                "healsync-sync-transport",
                "healsync-node-sync",
                "healsync-hub",
            ][..],
        ),
        // Sync's mutual TLS, and the LAN's HTTPS.
        (
            "rustls",
            &["healsync-sync-transport", "healsync-graphql-http"][..],
        ),
    ] {
        for p in meta["packages"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap_or_default();
            if !name.starts_with("healsync") || owners.contains(&name) || TEST_ONLY.contains(&name)
            {
                continue;
            }
            let direct = p["dependencies"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["name"] == tech && d["kind"].is_null()));
            assert!(
                !direct,
                "{name} depends on {tech} directly; only {owners:?} may"
            );
        }
    }
    Ok(())
}
