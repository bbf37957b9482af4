//! `healsync-node doctor` on an enrolled clinic: sound beside its running server, then
//! the damage a technician meets, each found and named with what to do: a projection
//! that drifted from its documents, a lost certificate, a database file with damaged
//! pages, a file that is not a database at all.

use std::path::Path;

use anyhow::{Result, anyhow};
use healsync_test_support::{NodeProcess, run};
use serde_json::Value;

use crate::{TestHub, binary, command, eventually};

/// Runs doctor with `--json`: whether it exited 0, and its checks by name (level, todo).
async fn doctor(dir: &Path) -> Result<(bool, Vec<(String, String, String)>)> {
    let d = dir.to_str().unwrap_or_default();
    let out = run(binary(), &["doctor", "--data-dir", d, "--json"], None).await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| anyhow!("doctor printed no JSON ({e}): {stderr}"))?;
    assert_eq!(v["healthy"].as_bool(), Some(out.status.success()), "{v}");
    let checks = v["checks"]
        .as_array()
        .ok_or_else(|| anyhow!("no checks: {v}"))?
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("check"), s("level"), s("todo"))
        })
        .collect();
    Ok((out.status.success(), checks))
}

/// The level of each check, for comparing with a table.
fn levels(checks: &[(String, String, String)]) -> Vec<(&str, &str)> {
    checks
        .iter()
        .map(|(c, l, _)| (c.as_str(), l.as_str()))
        .collect()
}

fn todo<'a>(checks: &'a [(String, String, String)], check: &str) -> &'a str {
    checks
        .iter()
        .find(|(c, _, _)| c == check)
        .map_or("", |(_, _, t)| t.as_str())
}

/// Doctor finds only `check` failing, and its advice mentions `advice`.
async fn fails_only(dir: &Path, check: &str, advice: &str) -> Result<()> {
    let (healthy, checks) = doctor(dir).await?;
    assert!(!healthy);
    let expected: Vec<(&str, &str)> = SOUND
        .iter()
        .map(|&(c, l)| if c == check { (c, "fail") } else { (c, l) })
        .collect();
    assert_eq!(levels(&checks), expected, "{checks:?}");
    assert!(todo(&checks, check).contains(advice), "{checks:?}");
    Ok(())
}

/// A copy of a stopped node's data directory (the WAL checkpointed first).
fn copy_of(dir: &Path) -> Result<tempfile::TempDir> {
    fn copy(from: &Path, to: &Path) -> Result<()> {
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let target = to.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                std::fs::create_dir(&target)?;
                copy(&entry.path(), &target)?;
            } else {
                std::fs::copy(entry.path(), target)?;
            }
        }
        Ok(())
    }
    let to = tempfile::tempdir()?;
    copy(dir, to.path())?;
    Ok(to)
}

const SOUND: &[(&str, &str)] = &[
    ("disk", "ok"),
    ("database", "ok"),
    ("schema", "ok"),
    ("projections", "ok"),
    ("change log", "ok"),
    ("audit trail", "ok"),
    ("sync", "ok"),
    ("certificate", "ok"),
    ("conflicts", "ok"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_finds_each_kind_of_damage_and_says_what_to_do() -> Result<()> {
    let hub = TestHub::start("doctor", &[("NBO", "Nairobi")]).await?;
    let dir = hub.enroll("NBO").await?;
    let node =
        NodeProcess::start(binary(), dir.path(), &["--demo", "--sync-interval", "1"]).await?;
    let d = dir.path().to_str().unwrap_or_default().to_string();
    eventually("a completed sync", || async {
        let s: Value = serde_json::from_str(
            &command(binary(), &["status", "--data-dir", &d, "--json"], None).await?,
        )?;
        Ok(s["lastSuccessfulSync"].is_string().then_some(()))
    })
    .await?;

    // Sound, beside the running server.
    let (healthy, checks) = doctor(dir.path()).await?;
    assert!(healthy, "{checks:?}");
    assert_eq!(levels(&checks), SOUND, "{checks:?}");
    node.kill().await?;

    // A projection row changed behind the documents' back.
    let db = dir.path().join(healsync_store::DB_FILE);
    let sql = |s: &str| -> Result<()> {
        healsync_store::Connection::open(&db)?.execute_batch(s)?;
        Ok(())
    };
    sql(
        "UPDATE patients SET name = 'Changed Behind Its Back' WHERE id = (SELECT min(id) FROM patients)",
    )?;
    fails_only(dir.path(), "projections", "projections rebuild").await?;
    command(
        binary(),
        &["projections", "rebuild", "--data-dir", &d],
        None,
    )
    .await?;
    assert_eq!(levels(&doctor(dir.path()).await?.1), SOUND);

    // The node's certificate lost: it cannot sync until enrolled again.
    let cert = dir
        .path()
        .join(healsync_node_sync::CREDENTIALS_DIR)
        .join("node-cert.pem");
    let kept = std::fs::read(&cert)?;
    std::fs::remove_file(&cert)?;
    fails_only(dir.path(), "certificate", "Enroll again").await?;
    std::fs::write(&cert, kept)?;

    // A change cut out of the log (on a copy): it would never reach the hub.
    sql("PRAGMA wal_checkpoint(TRUNCATE)")?;
    let cut = copy_of(dir.path())?;
    healsync_store::Connection::open(cut.path().join(healsync_store::DB_FILE))?.execute_batch(
        "DELETE FROM change_log WHERE seq = (SELECT max(seq) FROM change_log WHERE local = 1)",
    )?;
    fails_only(cut.path(), "change log", "backup").await?;

    // Pages in the middle of the file overwritten (a failing disk): the first check
    // says so, and nothing that needs a sound file runs.
    let damaged = copy_of(dir.path())?;
    let file = damaged.path().join(healsync_store::DB_FILE);
    let mut bytes = std::fs::read(&file)?;
    let middle = bytes.len() / 2 / 4096 * 4096;
    let mut x: u32 = 0x9e37_79b9;
    for b in bytes.iter_mut().skip(middle).take(16 * 4096) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    // Then not a database at all.
    for damage in [bytes, b"this is a shopping list, not a clinic".to_vec()] {
        std::fs::write(&file, damage)?;
        let (healthy, checks) = doctor(damaged.path()).await?;
        assert!(!healthy);
        assert_eq!(
            levels(&checks),
            [("disk", "ok"), ("database", "fail")],
            "{checks:?}"
        );
        assert!(todo(&checks, "database").contains("restore"), "{checks:?}");
    }

    // And no node here at all.
    let empty = tempfile::tempdir()?;
    let (healthy, checks) = doctor(empty.path()).await?;
    assert!(!healthy);
    assert_eq!(levels(&checks), [("database", "fail")], "{checks:?}");

    // The same findings for a person, without --json.
    let out = run(binary(), &["doctor", "--data-dir", &d], None).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Nothing needs repair."), "{text}");

    let TestHub { process, db, .. } = hub;
    drop(process);
    db.drop_database().await?;
    Ok(())
}
