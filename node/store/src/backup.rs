//! Backups and restores of a node's database.
//!
//! A backup is SQLite's online backup of the database, taken through a reader
//! connection: one consistent snapshot while `serve` keeps writing. It is the whole
//! node (documents, change log, projections, accounts), private to the service
//! account like the database itself (0600).
//!
//! A restore makes the backup a *new* node of the same site: it takes a new node id
//! and a new automerge actor id (a copy that reused the old actor would write changes
//! with sequence numbers its former self already used, which automerge refuses), and
//! forgets the hub it was enrolled with and every sync position. Nothing is lost by
//! that: once enrolled again, it uploads its whole change log (the hub stores each
//! change once, by hash) and downloads its site's documents (merging is idempotent).

use std::path::Path;
use std::time::Duration;

use automerge::ActorId;
use rusqlite::{Connection, OpenFlags, params};
use uuid::Uuid;

use crate::{DB_FILE, StoreError};

/// What a restore made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub site: String,
    pub previous_node_id: String,
    pub node_id: Uuid,
    pub actor: ActorId,
}

/// Why a file cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0} is not a HealSync backup: {1}")]
    NotABackup(String, String),
    #[error("{0} already holds a node's database: restore into an empty data directory")]
    Occupied(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::Store {
    /// Writes a consistent copy of the database to `out`, which must not exist yet.
    /// Returns its size in bytes.
    pub fn backup(&self, out: &Path) -> Result<u64, StoreError> {
        let io = |action| move |source| StoreError::Io { action, source };
        create_private(out).map_err(io("create the backup file"))?;
        let mut dest = Connection::open(out).map_err(StoreError::sqlite("open the backup file"))?;
        self.read(|src| {
            let b = rusqlite::backup::Backup::new(src, &mut dest)
                .map_err(StoreError::sqlite("start the backup"))?;
            b.run_to_completion(256, Duration::from_millis(2), None)
                .map_err(StoreError::sqlite("copy the database"))
        })?;
        // The copy is one self-contained file (no WAL beside it).
        dest.pragma_update(None, "journal_mode", "DELETE")
            .map_err(StoreError::sqlite("finish the backup file"))?;
        drop(dest);
        std::fs::metadata(out)
            .map(|m| m.len())
            .map_err(io("read the backup's size"))
    }

    /// Restores `backup` into `data_dir` (which must hold no database) as a new node
    /// of the backup's site (see the module documentation).
    pub fn restore(backup: &Path, data_dir: &Path) -> Result<Restored, RestoreError> {
        let shown = backup.display().to_string();
        let not = |why: &str| RestoreError::NotABackup(shown.clone(), why.to_string());
        let target = data_dir.join(DB_FILE);
        if target.exists() {
            return Err(RestoreError::Occupied(data_dir.display().to_string()));
        }
        // Read the backup before anything is written.
        let (site, previous) = {
            let conn = Connection::open_with_flags(backup, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|_| not("it does not open as a database"))?;
            let ok: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .map_err(|_| not("it is not an SQLite database"))?;
            if ok != "ok" {
                return Err(not(&format!("its integrity check says {ok:?}")));
            }
            let meta = |key: &str| -> Option<String> {
                conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                    .ok()
            };
            match (meta("site"), meta("node_id"), meta("actor_id")) {
                (Some(site), Some(node), Some(_)) => (site, node),
                _ => return Err(not("it holds no HealSync node identity")),
            }
        };
        crate::private_dir(data_dir).map_err(|source| StoreError::Io {
            action: "create the data directory",
            source,
        })?;
        let io = |action| move |source| StoreError::Io { action, source };
        create_private(&target).map_err(io("create the database file"))?;
        std::fs::copy(backup, &target).map_err(io("copy the backup into place"))?;
        let node_id = Uuid::now_v7();
        let actor = ActorId::random();
        let mut conn =
            Connection::open(&target).map_err(StoreError::sqlite("open the restored database"))?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("begin the restore"))?;
        for (k, v) in [
            ("node_id", node_id.to_string()),
            ("actor_id", actor.to_hex_string()),
        ] {
            tx.execute("UPDATE meta SET value = ?2 WHERE key = ?1", params![k, v])
                .map_err(StoreError::sqlite("give the restored node its identity"))?;
        }
        // A new node: no hub yet, and every position starts again.
        tx.execute("DELETE FROM meta WHERE key LIKE 'sync.%'", [])
            .map_err(StoreError::sqlite("forget the old sync positions"))?;
        tx.execute("DELETE FROM sync_rejections", [])
            .map_err(StoreError::sqlite("forget the old node's refusals"))?;
        tx.commit()
            .map_err(StoreError::sqlite("commit the restore"))?;
        Ok(Restored {
            site,
            previous_node_id: previous,
            node_id,
            actor,
        })
    }
}

/// Creates `path` (which must not exist) readable by this account only.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).map(drop)
}
