//! The technician's command line beside a running clinic: `healsync-node sync` while
//! `serve` is busy on the same data directory, and what `sync` says when the hub is
//! not there.

use anyhow::Result;
use healsync_test_support::{NodeProcess, run};
use serde_json::{Value, json};

use crate::{TestHub, binary, command};

/// A front desk registering patients without pause until stopped.
struct FrontDesk {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Result<u32>>,
}

impl FrontDesk {
    fn start(admin: healsync_test_support::Gql, prefix: &'static str) -> FrontDesk {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut n = 0u32;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                admin
                    .ok(
                        "mutation($n: String!, $e: String!) { createPatient(input: {name: $n, email: $e}) { id } }",
                        json!({ "n": format!("{prefix} {n}"), "e": format!("{}{n}@example.org", prefix.to_lowercase().replace(' ', ".")) }),
                    )
                    .await?;
                n += 1;
            }
            Ok(n)
        });
        FrontDesk { stop, task }
    }

    /// Stops and returns how many patients were registered.
    async fn stop(self) -> Result<u32> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await?
    }
}

/// Registers the patients `{prefix} {n}` for every `n` of `numbers`, one by one.
async fn register(
    admin: &healsync_test_support::Gql,
    prefix: &str,
    numbers: std::ops::Range<u32>,
) -> Result<()> {
    for n in numbers {
        admin
            .ok(
                "mutation($n: String!, $e: String!) { createPatient(input: {name: $n, email: $e}) { id } }",
                json!({ "n": format!("{prefix} {n}"), "e": format!("{}{n}@example.org", prefix.to_lowercase().replace(' ', ".")) }),
            )
            .await?;
    }
    Ok(())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_beside_a_busy_serve_never_fails_and_a_missing_hub_is_said_once() -> Result<()> {
    let hub = TestHub::start("technician", &[("NBO", "Nairobi")]).await?;
    let dir = hub.enroll("NBO").await?;
    let d = dir.path().to_str().unwrap_or_default().to_string();
    let node = NodeProcess::start(binary(), dir.path(), &["--sync-interval", "1"]).await?;
    let admin = node.admin().await?;

    // The front desk registers patients without pause while the technician syncs
    // fifty times over.
    let front_desk = FrontDesk::start(admin.clone(), "Patient");
    for round in 0..50 {
        let out = run(binary(), &["sync", "--data-dir", &d, "--json"], None).await?;
        assert!(
            out.status.success(),
            "round {round}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    let written = front_desk.stop().await?;
    assert!(written > 0);

    // The hub goes away: one clear sentence with the address, the reassurance, and a
    // JSON error for scripts.
    let addr = hub.process.sync_addr.clone();
    let TestHub { process, db, .. } = hub;
    process.kill().await?;
    let out = run(binary(), &["sync", "--data-dir", &d], None).await?;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains(&addr), "{err}");
    assert!(err.contains("Nothing is lost"), "{err}");
    assert_eq!(err.matches("cannot reach the hub").count(), 1, "{err}");
    let out = run(binary(), &["sync", "--data-dir", &d, "--json"], None).await?;
    assert!(!out.status.success());
    let answer: Value = serde_json::from_str(text(&out.stdout).trim())?;
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot reach the hub")),
        "{answer}"
    );
    assert_eq!(answer["hub"], addr.as_str());
    assert!(answer["changesWaitingToUpload"].is_number(), "{answer}");
    drop(node);
    db.drop_database().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_demo_clinics_of_one_hub_are_both_seeded() -> Result<()> {
    let hub = TestHub::start("technician_demo", &[("NBO", "Nairobi"), ("MSA", "Mombasa")]).await?;
    let mut nodes = vec![];
    let mut dirs = vec![];
    for site in ["NBO", "MSA"] {
        let dir = hub.enroll(site).await?;
        let d = dir.path().to_str().unwrap_or_default().to_string();
        let node =
            NodeProcess::start(binary(), dir.path(), &["--demo", "--sync-interval", "1"]).await?;
        // The first clinic's demo reaches the hub before the second one starts.
        command(binary(), &["sync", "--data-dir", &d], None).await?;
        nodes.push(node);
        dirs.push(dir);
    }
    for node in &nodes {
        assert!(
            node.banner.iter().any(|l| l.contains("Demo accounts")),
            "{:?}",
            node.banner
        );
        let admin = node.admin().await?;
        let site = admin.ok("{ node { site } }", json!({})).await?;
        let mine = admin
            .ok("{ appointments(limit: 500) { site } }", json!({}))
            .await?;
        let own = mine["appointments"].as_array().map_or(0, |l| {
            l.iter()
                .filter(|a| a["site"] == site["node"]["site"])
                .count()
        });
        assert!(own > 0, "{site}: no demo appointments of its own");
        node.gql()
            .login("reception", healsync_test_support::ADMIN_PASSWORD)
            .await?;
    }
    // A restart does not seed again, and says nothing about it.
    let again = nodes.pop().ok_or_else(|| anyhow::anyhow!("no node"))?;
    again.terminate().await?;
    let restarted = NodeProcess::start(binary(), dirs[1].path(), &["--demo"]).await?;
    assert!(
        !restarted.banner.iter().any(|l| l.contains("demo data")),
        "{:?}",
        restarted.banner
    );
    drop(restarted);
    drop(nodes);
    let TestHub { process, db, .. } = hub;
    drop(process);
    db.drop_database().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_as_a_new_node() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = NodeProcess::start(binary(), dir.path(), &["--site", "NBO"]).await?;
    let admin = node.admin().await?;
    register(&admin, "Before", 0..20).await?;
    // The front desk keeps registering while the backup runs.
    let front_desk = FrontDesk::start(admin.clone(), "During");
    let files = tempfile::tempdir()?;
    let file = files.path().join("nbo.backup");
    let (d, f) = (
        dir.path().to_str().unwrap_or_default(),
        file.to_str().unwrap_or_default(),
    );
    command(binary(), &["backup", "--data-dir", d, "--out", f], None).await?;
    let during = front_desk.stop().await?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the backup is private");
    }
    // A second backup never overwrites the first.
    assert!(
        !run(binary(), &["backup", "--data-dir", d, "--out", f], None)
            .await?
            .status
            .success()
    );

    let original: Value = serde_json::from_str(
        &command(binary(), &["status", "--data-dir", d, "--json"], None).await?,
    )?;
    let restored_dir = tempfile::tempdir()?;
    let r = restored_dir.path().join("restored");
    let r = r.to_str().unwrap_or_default();
    let said = command(binary(), &["restore", "--data-dir", r, "--from", f], None).await?;
    assert!(said.contains("new CRDT actor id"), "{said}");
    let restored: Value = serde_json::from_str(
        &command(binary(), &["status", "--data-dir", r, "--json"], None).await?,
    )?;
    assert_eq!(restored["site"], "NBO");
    assert_ne!(restored["nodeId"], original["nodeId"]);
    assert_ne!(restored["actorId"], original["actorId"]);
    assert!(restored["hub"].is_null(), "{restored}");
    command(binary(), &["projections", "check", "--data-dir", r], None).await?;

    // The restored node serves what the backup held: every patient from before, some
    // of those registered during, and writes anew under its own actor.
    let again = NodeProcess::start(binary(), std::path::Path::new(r), &[]).await?;
    let admin = again.admin().await?;
    let list = admin
        .ok("{ patients(limit: 500) { name } }", json!({}))
        .await?;
    let names: Vec<&str> = list["patients"]
        .as_array()
        .map(|l| l.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names.iter().filter(|n| n.starts_with("Before")).count(), 20);
    assert!(names.iter().filter(|n| n.starts_with("During")).count() <= during as usize);
    register(&admin, "After restore", 0..1).await?;

    // What cannot be restored is refused, and nothing is written.
    let garbage = files.path().join("garbage");
    std::fs::write(&garbage, b"this is not a database")?;
    let empty = restored_dir.path().join("empty");
    let (g, e) = (
        garbage.to_str().unwrap_or_default(),
        empty.to_str().unwrap_or_default(),
    );
    for (what, from, into, message) in [
        (
            "a file that is not a backup",
            g,
            e,
            "is not a HealSync backup",
        ),
        (
            "a data directory that holds a node",
            f,
            d,
            "already holds a node",
        ),
    ] {
        let out = run(
            binary(),
            &["restore", "--data-dir", into, "--from", from],
            None,
        )
        .await?;
        assert!(!out.status.success(), "{what}");
        assert!(
            text(&out.stderr).contains(message),
            "{what}: {}",
            text(&out.stderr)
        );
    }
    assert!(!empty.join(healsync_store::DB_FILE).exists());
    drop((node, again));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_node_syncs_again_without_duplicates_or_actor_collisions() -> Result<()> {
    let hub = TestHub::start("technician_restore", &[("NBO", "Nairobi")]).await?;
    let dir = hub.enroll("NBO").await?;
    let d = dir.path().to_str().unwrap_or_default().to_string();
    let node = NodeProcess::start(binary(), dir.path(), &["--sync-interval", "3600"]).await?;
    let admin = node.admin().await?;
    register(&admin, "Synced", 0..15).await?;
    command(binary(), &["sync", "--data-dir", &d], None).await?;
    let files = tempfile::tempdir()?;
    let file = files.path().join("nbo.backup");
    let f = file.to_str().unwrap_or_default();
    command(binary(), &["backup", "--data-dir", &d, "--out", f], None).await?;
    // The clinic box dies after more work that reached the hub: the backup is older
    // than that work, which must come back from the hub.
    register(&admin, "Synced", 15..40).await?;
    let registered: usize = 40;
    command(binary(), &["sync", "--data-dir", &d], None).await?;
    node.kill().await?;

    let new_box = tempfile::tempdir()?;
    let r = new_box.path().join("data");
    let r = r.to_str().unwrap_or_default().to_string();
    command(binary(), &["restore", "--data-dir", &r, "--from", f], None).await?;
    let data = hub.dir.path().to_str().unwrap_or_default();
    let token = command(
        &hub.bin,
        &[
            "nodes",
            "token",
            "--site",
            "NBO",
            "--data-dir",
            data,
            "--database-url",
            &hub.db.url,
        ],
        None,
    )
    .await?;
    command(
        binary(),
        &[
            "enroll",
            "--hub",
            &hub.process.sync_addr,
            "--token",
            token.trim(),
            "--data-dir",
            &r,
        ],
        None,
    )
    .await?;
    let restored = NodeProcess::start(
        binary(),
        std::path::Path::new(&r),
        &["--sync-interval", "3600"],
    )
    .await?;
    restored
        .admin()
        .await?
        .ok(
            "mutation { createPatient(input: {name: \"After restore\", email: \"after@example.org\"}) { id } }",
            json!({}),
        )
        .await?;
    let summary: Value = serde_json::from_str(
        &command(binary(), &["sync", "--data-dir", &r, "--json"], None).await?,
    )?;
    assert_eq!(summary["refused"], 0, "{summary}");
    // Everything the dead box had synced comes back down; the restored node's own
    // new change went up; nothing is stored twice and no change was refused for
    // reusing a sequence number.
    let pool = sqlx::PgPool::connect(&hub.db.url).await?;
    let (all, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT hash) FROM changes")
            .fetch_one(&pool)
            .await?;
    assert_eq!(all, distinct);
    let refused: i64 = sqlx::query_scalar("SELECT count(*) FROM rejections")
        .fetch_one(&pool)
        .await?;
    assert_eq!(refused, 0);
    pool.close().await;
    let again: Value = serde_json::from_str(
        &command(binary(), &["sync", "--data-dir", &r, "--json"], None).await?,
    )?;
    assert_eq!(again["uploaded"], 0, "{again}");
    let names = restored
        .admin()
        .await?
        .ok("{ patients(limit: 500) { name } }", json!({}))
        .await?;
    let list = names["patients"].as_array().cloned().unwrap_or_default();
    let synced = list
        .iter()
        .filter(|p| p["name"].as_str().is_some_and(|n| n.starts_with("Synced")))
        .count();
    assert_eq!(
        synced, registered,
        "every patient the old box synced is back"
    );
    assert!(list.iter().any(|p| p["name"] == "After restore"));
    let status: Value = serde_json::from_str(
        &command(binary(), &["status", "--data-dir", &r, "--json"], None).await?,
    )?;
    assert_eq!(status["changesWaitingToUpload"], 0, "{status}");
    drop(restored);
    let TestHub { process, db, .. } = hub;
    drop(process);
    db.drop_database().await?;
    Ok(())
}

#[tokio::test]
async fn logs_are_json_when_asked_and_never_carry_colour_codes_off_a_terminal() -> Result<()> {
    for (format, json_lines) in [("json", true), ("", false)] {
        // A new data directory: opening it logs its migrations.
        let dir = tempfile::tempdir()?;
        let d = dir.path().join("data");
        let out = tokio::process::Command::new(binary())
            .args(["projections", "check", "--data-dir"])
            .arg(&d)
            .env("HEALSYNC_LOG", "info")
            .env("HEALSYNC_LOG_FORMAT", format)
            .output()
            .await?;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(!err.contains('\u{1b}'), "colour codes in {err:?}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.is_empty()).collect();
        assert!(!lines.is_empty(), "no log lines");
        for line in lines {
            let parsed = serde_json::from_str::<Value>(line);
            assert_eq!(parsed.is_ok(), json_lines, "{format:?}: {line}");
        }
    }
    Ok(())
}
