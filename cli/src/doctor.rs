//! `healsync-node doctor`: checks a node's data directory and says, for each finding,
//! what to do. Safe beside a running `serve`: everything is read, except the projection
//! check, which rebuilds inside a transaction it rolls back (holding the write lock
//! while it runs: seconds on a small clinic, minutes on a very large one).
//!
//! A damaged database file stops the checks that need a sound one. Exit 0 when nothing
//! failed (warnings included), 1 when something did.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, Utc};
use healsync_store::doctor::{self, ChangeLogReport};
use healsync_store::{NodeStatus, Store};
use serde_json::json;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

/// One check's outcome: what it found and, unless all is well, what to do.
struct Finding {
    check: &'static str,
    level: Level,
    detail: String,
    todo: Option<String>,
}

fn ok(check: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        check,
        level: Level::Ok,
        detail: detail.into(),
        todo: None,
    }
}

fn bad(check: &'static str, level: Level, detail: impl Into<String>, todo: &str) -> Finding {
    Finding {
        check,
        level,
        detail: detail.into(),
        todo: Some(todo.into()),
    }
}

/// Free space below which the node is close to refusing writes.
const LOW_DISK_BYTES: u64 = 1 << 30;
/// A sync older than this, on an enrolled node, is worth a look.
const SYNC_STALE_HOURS: i64 = 24;
/// A certificate ending within this many days must be renewed now.
const CERT_RENEW_DAYS: i64 = 30;

const RESTORE: &str = "Stop the node and keep this data directory as it is. Restore the latest backup into a new, empty directory (`healsync-node restore --from BACKUP --data-dir NEW_DIR`), enroll it with a token from the hub (`healsync-hub nodes token`), and serve from it: what reached the hub comes back by sync.";

pub fn run(data_dir: &Path, json: bool) -> Result<ExitCode> {
    let now = Utc::now();
    let findings = check(data_dir, now);
    let failed = findings.iter().any(|f| f.level == Level::Fail);
    if json {
        let checks: Vec<_> = findings
            .iter()
            .map(|f| {
                json!({
                    "check": f.check,
                    "level": f.level.as_str(),
                    "detail": f.detail,
                    "todo": f.todo,
                })
            })
            .collect();
        println!("{}", json!({ "healthy": !failed, "checks": checks }));
    } else {
        println!("Checking {}", data_dir.display());
        for f in &findings {
            println!("  {:<5} {:<14} {}", f.level.as_str(), f.check, f.detail);
            if let Some(todo) = &f.todo {
                println!("        {:<14} → {todo}", "");
            }
        }
        println!(
            "{}",
            if failed {
                "Something needs repair: see the steps above."
            } else {
                "Nothing needs repair."
            }
        );
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Every check, in the order a technician would want them: the file, then what is in it.
fn check(data_dir: &Path, now: DateTime<Utc>) -> Vec<Finding> {
    let mut out = Vec::new();
    let db = data_dir.join(healsync_store::DB_FILE);
    if !db.exists() {
        out.push(bad(
            "database",
            Level::Fail,
            format!("{} holds no HealSync node", data_dir.display()),
            "Check --data-dir (the unit's HEALSYNC_DATA_DIR); a new node starts with `healsync-node serve`.",
        ));
        return out;
    }
    out.push(disk(data_dir));
    let started = std::time::Instant::now();
    match doctor::integrity(&db, 20) {
        Ok(problems) if problems.is_empty() => out.push(ok(
            "database",
            format!(
                "integrity check passed ({}, {:.1} s)",
                size(std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)),
                started.elapsed().as_secs_f64()
            ),
        )),
        Ok(problems) => {
            out.push(bad(
                "database",
                Level::Fail,
                format!("the file is damaged: {}", first(&problems, 3)),
                RESTORE,
            ));
            return out;
        }
        Err(e) => {
            out.push(bad(
                "database",
                Level::Fail,
                format!("the file cannot be read: {e}"),
                RESTORE,
            ));
            return out;
        }
    }
    match doctor::schema_versions(&db) {
        Ok((found, latest)) if found == latest => {
            out.push(ok("schema", format!("version {found}, current")))
        }
        Ok((found, latest)) if found < latest => {
            out.push(bad(
                "schema",
                Level::Warn,
                format!("version {found}; this program migrates it to {latest} when it serves"),
                "Start `healsync-node serve` with this program once (it migrates, then serves), and run doctor again for the remaining checks.",
            ));
            return out;
        }
        Ok((found, latest)) => {
            out.push(bad(
                "schema",
                Level::Fail,
                format!("version {found}, written by a newer HealSync than this one ({latest})"),
                "Run the HealSync version that serves this node (`healsync-node --version` of the installed package).",
            ));
            return out;
        }
        Err(e) => {
            out.push(bad("schema", Level::Fail, e.to_string(), RESTORE));
            return out;
        }
    }
    let store = match Store::open(data_dir, None) {
        Ok(s) => s,
        Err(e) => {
            out.push(bad(
                "database",
                Level::Fail,
                format!("does not open: {e}"),
                RESTORE,
            ));
            return out;
        }
    };
    out.push(projections(&store));
    out.push(change_log(&store));
    out.push(audit(&store));
    match store.status() {
        Ok(status) => {
            out.extend(sync(&status, now));
            out.push(certificate(&store, &status, data_dir, now));
            out.push(conflicts(&status));
        }
        Err(e) => out.push(bad(
            "sync",
            Level::Fail,
            format!("the sync state could not be read: {e}"),
            RESTORE,
        )),
    }
    out
}

fn projections(store: &Store) -> Finding {
    match store.check_projections() {
        Ok(r) if r.is_consistent() => ok(
            "projections",
            format!("match the {} documents", r.documents),
        ),
        Ok(r) => bad(
            "projections",
            Level::Fail,
            format!(
                "differ from the documents in {}",
                r.mismatched
                    .iter()
                    .map(|(table, live, rebuilt)| format!(
                        "{table} ({live} live rows, {rebuilt} rebuilt)"
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "Run `healsync-node projections rebuild --data-dir DIR` (the documents are the truth; the tables are rebuilt from them).",
        ),
        Err(e) => bad(
            "projections",
            Level::Fail,
            format!("could not be checked: {e}"),
            "Run doctor again with the node stopped; if it fails again, restore (see the database check).",
        ),
    }
}

fn change_log(store: &Store) -> Finding {
    match store.check_change_log() {
        Ok(r) if r.is_sound() => ok(
            "change log",
            format!(
                "{} changes, numbered without gaps, every document's latest change logged",
                r.changes
            ),
        ),
        Ok(r) => bad(
            "change log",
            Level::Fail,
            change_log_detail(&r),
            "Take a backup now (`healsync-node backup --out FILE`) and keep it: changes missing from the log never reach the hub. Report it with the output of `healsync-node doctor --json`.",
        ),
        Err(e) => bad(
            "change log",
            Level::Fail,
            format!("could not be read: {e}"),
            RESTORE,
        ),
    }
}

fn change_log_detail(r: &ChangeLogReport) -> String {
    let mut parts = Vec::new();
    if !r.gaps.is_empty() {
        parts.push(format!(
            "changes missing from the log: {}",
            r.gaps
                .iter()
                .map(|(a, b)| if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if r.unlogged_count > 0 {
        parts.push(format!(
            "{} documents whose latest change is not logged (first: {})",
            r.unlogged_count,
            r.unlogged
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if r.upload_acked > r.last_seq {
        parts.push(format!(
            "the hub acknowledged change {} but the log ends at {}",
            r.upload_acked, r.last_seq
        ));
    }
    parts.join("; ")
}

fn audit(store: &Store) -> Finding {
    match store.read(healsync_store::audit::verify) {
        Ok(Ok(v)) => ok("audit trail", format!("intact, {} events", v.events)),
        Ok(Err(broken)) => bad(
            "audit trail",
            Level::Fail,
            format!(
                "tampered with: {broken}; first bad event {}",
                broken.first_bad()
            ),
            "Keep this data directory and a backup of it as evidence, tell the clinic's privacy officer, and compare with the copy at the hub (events synced before the change are held there).",
        ),
        Err(e) => bad(
            "audit trail",
            Level::Fail,
            format!("could not be read: {e}"),
            RESTORE,
        ),
    }
}

fn sync(s: &NodeStatus, now: DateTime<Utc>) -> Vec<Finding> {
    let Some(hub) = &s.hub else {
        return vec![ok("sync", "not enrolled with a hub (a clinic on its own)")];
    };
    let mut out = Vec::new();
    let last = s
        .last_sync
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.to_utc());
    let stale = last.is_none_or(|t| now - t > chrono::Duration::hours(SYNC_STALE_HOURS));
    let when = last.map_or("never".to_string(), |t| ago(now, t));
    let detail = format!(
        "hub {hub}; last successful sync {when}; {} changes waiting to upload",
        s.waiting_to_upload
    );
    out.push(if stale {
        bad(
            "sync",
            Level::Warn,
            detail,
            "The clinic keeps working and nothing waiting is lost. Check the internet link, then run `healsync-node sync --data-dir DIR`: it says what stops it.",
        )
    } else {
        ok("sync", detail)
    });
    if s.held_changes > 0 {
        out.push(bad(
            "held changes",
            Level::Warn,
            format!(
                "{} changes from the hub are held back, not merged (`healsync-node status` lists them)",
                s.held_changes
            ),
            "Usually written by a newer HealSync elsewhere: upgrade this node; they merge on its next start.",
        ));
    }
    if s.refused_changes > 0 {
        out.push(bad(
            "refused changes",
            Level::Warn,
            format!(
                "the hub refused {} of this node's changes (`healsync-node status` gives each reason)",
                s.refused_changes
            ),
            "They stay here and in the audit; the records they touched keep the hub's version. Have an administrator look at each reason.",
        ));
    }
    out
}

fn certificate(store: &Store, s: &NodeStatus, data_dir: &Path, now: DateTime<Utc>) -> Finding {
    if s.hub.is_none() {
        return ok("certificate", "none needed (not enrolled)");
    }
    let dir = data_dir.join(healsync_node_sync::CREDENTIALS_DIR);
    let read = |f: &str| std::fs::read_to_string(dir.join(f));
    let (ca, cert) = match (read("ca.pem"), read("node-cert.pem")) {
        (Ok(ca), Ok(cert)) => (ca, cert),
        _ => {
            return bad(
                "certificate",
                Level::Fail,
                format!("the node's certificate is missing from {}", dir.display()),
                "Enroll again with a new token from the hub (`healsync-hub nodes token --site SITE`, then `healsync-node enroll`).",
            );
        }
    };
    let node = store.identity().node_id;
    let at = u64::try_from(now.timestamp()).unwrap_or(0);
    match healsync_sync_transport::config::check_node_certificate(&ca, &cert, node, at) {
        Ok(until) => {
            let until = DateTime::from_timestamp(i64::try_from(until).unwrap_or(i64::MAX), 0)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            let days = (until - now).num_days();
            let detail = format!(
                "issued by the hub for this node, valid until {} ({days} days)",
                until.format("%Y-%m-%d")
            );
            if days < CERT_RENEW_DAYS {
                bad(
                    "certificate",
                    Level::Warn,
                    detail,
                    "Enroll again with a new token from the hub before it ends; the node keeps its data.",
                )
            } else {
                ok("certificate", detail)
            }
        }
        Err(problem) => bad(
            "certificate",
            Level::Fail,
            problem.to_string(),
            "Enroll again with a new token from the hub (`healsync-hub nodes token --site SITE`, then `healsync-node enroll`); until then the node works on its own.",
        ),
    }
}

fn conflicts(s: &NodeStatus) -> Finding {
    if s.open_conflicts == 0 {
        return ok("conflicts", "none open");
    }
    bad(
        "conflicts",
        Level::Warn,
        format!("{} conflicts wait for a person", s.open_conflicts),
        "Staff resolve them on the web app's Conflicts page (an ADMIN); nothing is lost meanwhile.",
    )
}

fn disk(data_dir: &Path) -> Finding {
    match rustix::fs::statvfs(data_dir) {
        Ok(v) => {
            let free = v.f_bavail.saturating_mul(v.f_frsize);
            if free < LOW_DISK_BYTES {
                bad(
                    "disk",
                    Level::Warn,
                    format!("{} free where the data lives", size(free)),
                    "Free space or move the data directory to a larger disk: a full disk refuses new work (nothing saved is lost).",
                )
            } else {
                ok("disk", format!("{} free", size(free)))
            }
        }
        Err(e) => bad(
            "disk",
            Level::Warn,
            format!("free space unknown: {e}"),
            "Check the disk with `df -h`.",
        ),
    }
}

fn first(lines: &[String], n: usize) -> String {
    let shown: Vec<&str> = lines.iter().take(n).map(String::as_str).collect();
    let more = lines.len().saturating_sub(n);
    if more > 0 {
        format!("{} (and {more} more)", shown.join("; "))
    } else {
        shown.join("; ")
    }
}

fn size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (MIB * 1024.0))
    } else {
        format!("{:.1} MiB", bytes as f64 / MIB)
    }
}

fn ago(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let d = now - then;
    let text = if d.num_days() >= 1 {
        format!("{} days ago", d.num_days())
    } else if d.num_hours() >= 1 {
        format!("{} hours ago", d.num_hours())
    } else {
        format!("{} minutes ago", d.num_minutes().max(0))
    };
    format!("{} ({text})", then.format("%Y-%m-%d %H:%M UTC"))
}
