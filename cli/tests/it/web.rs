//! The clinic web app in a real browser: Debian's headless Chromium, driven by
//! `node/web/e2e/run.mjs` (playwright-core), against a real node serving the demo
//! clinic and enrolled with a real hub, which this test stops and starts when the
//! script asks (the sync banner must follow). The script's steps are the issue's:
//! log in, register, book, live updates, double booking, chart, billing, a patient's
//! limits, the banner, no request off loopback. Screenshots: target/web-screenshots.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use healsync_test_support::{ADMIN_PASSWORD, HubProcess, NodeProcess};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::{TestHub, binary};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clinic_web_app_works_end_to_end_in_a_real_browser() -> Result<()> {
    let web = repo().join("node/web");
    if !web.join("node_modules/playwright-core").exists() {
        bail!("run `npm ci --prefix node/web` first (tests/run.sh does)");
    }
    let started = TestHub::start("web", &[("NBO", "Nairobi")]).await?;
    let clinic_dir = started.enroll("NBO").await?;
    let TestHub {
        process: hub,
        bin,
        db,
        dir: hub_dir,
    } = started;
    let sync_addr = hub.sync_addr.clone();
    let node = NodeProcess::start(
        binary(),
        clinic_dir.path(),
        &["--demo", "--sync-interval", "1"],
    )
    .await?;

    let mut script = tokio::process::Command::new("node")
        .arg(web.join("e2e/run.mjs"))
        .arg(&node.base)
        .env("HEALSYNC_E2E_PASSWORD", ADMIN_PASSWORD)
        .env("HEALSYNC_SHOTS", repo().join("target/web-screenshots"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("start node e2e/run.mjs (Node.js is required)")?;
    let mut to_script = script.stdin.take().context("the script's stdin")?;
    let mut from_script =
        BufReader::new(script.stdout.take().context("the script's stdout")?).lines();

    let mut hub = Some(hub);
    let mut passed = false;
    let run = async {
        while let Some(line) = from_script.next_line().await? {
            println!("e2e: {line}");
            match line.as_str() {
                "HUB_DOWN" => {
                    if let Some(h) = hub.take() {
                        h.kill().await?;
                    }
                    to_script.write_all(b"ok\n").await?;
                }
                "HUB_UP" => {
                    hub = Some(HubProcess::start(&bin, &db.url, hub_dir.path(), &sync_addr).await?);
                    to_script.write_all(b"ok\n").await?;
                }
                "E2E PASSED" => passed = true,
                _ => {}
            }
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .context("the browser run took over 10 minutes")??;
    let status = script.wait().await?;
    assert!(
        status.success() && passed,
        "the browser run failed: {status}"
    );
    drop(node);
    Ok(())
}
