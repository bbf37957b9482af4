//! `healsync-hub` as an operator meets it: real processes, a real PostgreSQL database.

use std::path::Path;
use std::process::Stdio;

use anyhow::Result;
use healsync_test_support::{TestDatabase, run};
use tokio::io::{AsyncBufReadExt, BufReader};

fn hub() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_healsync-hub"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_tokens_and_nodes_from_the_command_line() -> Result<()> {
    let db = TestDatabase::create("hubcli").await?;
    let url = db.url.as_str();

    let out = run(
        hub(),
        &[
            "sites",
            "add",
            "nbo",
            "--name",
            "Nairobi clinic",
            "--database-url",
            url,
        ],
        None,
    )
    .await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Added site NBO"));
    let dup = run(
        hub(),
        &[
            "sites",
            "add",
            "NBO",
            "--name",
            "Again",
            "--database-url",
            url,
        ],
        None,
    )
    .await?;
    assert!(!dup.status.success());
    assert!(
        text(&dup.stderr).contains("already exists"),
        "{}",
        text(&dup.stderr)
    );
    let bad = run(
        hub(),
        &[
            "sites",
            "add",
            "N-B-O",
            "--name",
            "Bad",
            "--database-url",
            url,
        ],
        None,
    )
    .await?;
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("letters or digits"));

    let ca_dir = tempfile_dir()?;
    let ca = ca_dir.to_str().unwrap_or_default();
    let token = run(
        hub(),
        &[
            "nodes",
            "token",
            "--site",
            "NBO",
            "--data-dir",
            ca,
            "--database-url",
            url,
        ],
        None,
    )
    .await?;
    assert!(token.status.success(), "{}", text(&token.stderr));
    // SECRET.PIN.SITE: the one-time secret, the CA's fingerprint, the site.
    let token = text(&token.stdout).trim().to_string();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(
        (parts.len(), parts[0].len(), parts[1].len(), parts[2]),
        (3, 48, 32, "NBO"),
        "{token}"
    );
    assert!(std::path::Path::new(ca).join("ca-cert.pem").exists());
    let none = run(
        hub(),
        &[
            "nodes",
            "token",
            "--site",
            "XYZ",
            "--data-dir",
            ca,
            "--database-url",
            url,
        ],
        None,
    )
    .await?;
    assert!(!none.status.success());
    assert!(text(&none.stderr).contains("no site XYZ"));

    let list = run(
        hub(),
        &["nodes", "list", "--json", "--database-url", url],
        None,
    )
    .await?;
    assert_eq!(text(&list.stdout).trim(), "[]");
    let revoke = run(
        hub(),
        &[
            "nodes",
            "revoke",
            "01930000-0000-7000-8000-000000000000",
            "--database-url",
            url,
        ],
        None,
    )
    .await?;
    assert!(!revoke.status.success());
    assert!(text(&revoke.stderr).contains("no node"));
    let garbage = run(
        hub(),
        &["nodes", "revoke", "not-an-id", "--database-url", url],
        None,
    )
    .await?;
    assert!(!garbage.status.success());
    let unreachable = run(
        hub(),
        &[
            "nodes",
            "list",
            "--database-url",
            "postgres://postgres@127.0.0.1:1/none",
        ],
        None,
    )
    .await?;
    assert!(!unreachable.status.success());
    assert!(text(&unreachable.stderr).contains("open the hub database"));

    std::fs::remove_dir_all(&ca_dir)?;
    db.drop_database().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_migrates_listens_answers_health_and_stops_on_sigterm() -> Result<()> {
    let db = TestDatabase::create("hubserve").await?;
    let dir = tempfile_dir()?;
    let mut child = tokio::process::Command::new(hub())
        .args([
            "serve",
            "--database-url",
            &db.url,
            "--listen",
            "127.0.0.1:0",
            "--sync-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&dir)
        .env("HEALSYNC_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let banner = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
        .await??
        .unwrap_or_default();
    let http = banner
        .split("HTTP on ")
        .nth(1)
        .map(|s| s.trim().trim_end_matches('/').to_string())
        .unwrap_or_default();
    assert!(banner.contains("(QUIC)"), "{banner}");
    let health = reqwest::get(format!("{http}/healthz"))
        .await?
        .text()
        .await?;
    assert!(health.contains("\"ok\""), "{health}");
    // The CA was created in the data directory, key private.
    assert!(dir.join("ca-cert.pem").exists() && dir.join("ca-key.pem").exists());

    let pid = child.id().ok_or_else(|| anyhow::anyhow!("exited"))?;
    tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await?;
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait()).await??;
    assert!(status.success());
    std::fs::remove_dir_all(&dir)?;
    db.drop_database().await?;
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("healsync-hub-test-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
