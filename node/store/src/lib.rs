//! The clinic node's record store: the only crate that knows SQLite.
//!
//! Ground truth is the `documents` table: one automerge document per record. The
//! relational tables (`patients`, `appointments`, ...) are projections derived from the
//! documents and written in the same transaction; [`Store::check_projections`] proves
//! they can be rebuilt. Every local write also appends its automerge changes to
//! `change_log` with a local sequence number: the outbox that sync ships to the hub.
//!
//! Concurrency: one writer connection behind a mutex (SQLite has one writer anyway, and
//! serialising writes here is what makes "check the slot, then book it" atomic), and a
//! few read-only connections for queries; WAL lets them read while the writer commits.
//! Durability: `synchronous=FULL`, so a write acknowledged to a user survives power loss.

pub mod audit;
pub mod backup;
pub mod doctor;
mod error;
pub mod outbox;
mod projection;
pub mod queries;
mod schema;
mod sync;
mod tx;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use automerge::ActorId;
use chrono::{DateTime, Utc};
use healsync_domain::SiteCode;
use healsync_records::AnyRecord;
use rusqlite::{OpenFlags, TransactionBehavior};
use uuid::Uuid;

pub use error::StoreError;
pub use projection::ProjectionReport;
/// The connection type read closures receive.
pub use rusqlite::Connection;
pub use schema::current_version as schema_version;
pub use sync::{HubContact, Incoming, NodeStatus, OnMerged, Outgoing, SyncState};
pub use tx::WriteTx;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "healsync.sqlite3";

/// Who this node is: persistent across restarts, created when the data dir is new.
#[derive(Debug, Clone)]
pub struct Identity {
    pub node_id: Uuid,
    pub site: SiteCode,
    /// The automerge actor id of every change this node writes. Never reused by another
    /// copy of the database (a restored backup takes a new one).
    pub actor: ActorId,
}

/// Figures for `status` and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub documents: i64,
    pub change_log_entries: i64,
    pub database_bytes: i64,
    /// Outgoing messages by status, every status listed (`PENDING`, `SENT`, `FAILED`):
    /// a queue that grows, or failures, are what a technician is paged for.
    pub outbox: Vec<(&'static str, i64)>,
}

pub struct Store {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    identity: Identity,
    path: PathBuf,
    /// The channels this node delivers messages on (`outbox::Channels`).
    channels: std::sync::atomic::AtomicU8,
}

const READERS: usize = 4;

/// Creates `dir` readable by this account only (0700), and narrows an existing one:
/// the database holds password hashes and health records, and other local users of the
/// clinic box must not read it.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        b.mode(0o700);
        b.create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    b.create(dir)
}

/// Creates the database file 0600 before SQLite does (SQLite gives its WAL and
/// shared-memory files the database file's mode), and narrows existing ones.
fn private_files(db: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(db)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            match std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    let _ = db;
    Ok(())
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(StoreError::sqlite("set busy timeout"))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(StoreError::sqlite("enable foreign keys"))?;
    Ok(())
}

impl Store {
    /// Opens (creating and migrating if needed) the store in `data_dir`. `site` is taken
    /// for a new store; for an existing one it must match the stored site, if given.
    pub fn open(data_dir: &Path, site: Option<&SiteCode>) -> Result<Store, StoreError> {
        let io = |action| move |source| StoreError::Io { action, source };
        private_dir(data_dir).map_err(io("create the data directory"))?;
        let path = data_dir.join(DB_FILE);
        private_files(&path).map_err(io("make the database private"))?;
        let mut writer =
            Connection::open(&path).map_err(StoreError::sqlite("open the database"))?;
        configure(&writer)?;
        writer
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(StoreError::sqlite("enable WAL"))?;
        writer
            .pragma_update(None, "synchronous", "FULL")
            .map_err(StoreError::sqlite("set synchronous=FULL"))?;
        schema::migrate(&mut writer)?;
        projection::reproject_pending(&mut writer)?;
        let identity = schema::identity(&mut writer, site)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(StoreError::sqlite("open a reader"))?;
            configure(&r)?;
            readers.push(Mutex::new(r));
        }
        Ok(Store {
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
            identity,
            path,
            channels: std::sync::atomic::AtomicU8::new(0),
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn writer(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.writer.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Runs `f` in one IMMEDIATE transaction on the writer and commits it. Returns what
    /// `f` returned and every record the transaction changed (as read back from its
    /// document), for the caller to publish once the commit is durable. If `f` fails,
    /// nothing is written.
    ///
    /// The node itself is the writer in its audit trail (`system:store`); a write made
    /// for someone is [`Store::write_as`].
    pub fn write<T, E: From<StoreError>>(
        &self,
        now: DateTime<Utc>,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<T, E>,
    ) -> Result<(T, Vec<AnyRecord>), E> {
        self.write_as(now, &audit::AuditContext::system("store"), f)
    }

    /// [`Store::write`] for `who`: each record of health data it changes leaves an
    /// audit event naming them, in the same transaction.
    pub fn write_as<T, E: From<StoreError>>(
        &self,
        now: DateTime<Utc>,
        who: &audit::AuditContext,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<T, E>,
    ) -> Result<(T, Vec<AnyRecord>), E> {
        let mut conn = self.writer()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("begin a write"))?;
        let channels = outbox::Channels::from_bits(self.channels.load(Ordering::Relaxed));
        let mut wtx = WriteTx::new(tx, &self.identity, now, channels, who);
        let value = f(&mut wtx)?;
        let changed = wtx.commit()?;
        Ok((value, changed))
    }

    /// Appends the audit events of reads (many requests' at once), in one transaction
    /// of their own: see [`audit::record_reads`].
    pub fn record_reads(
        &self,
        now: DateTime<Utc>,
        batches: &[audit::Reads],
    ) -> Result<(), StoreError> {
        if batches.iter().all(|b| b.records.is_empty()) {
            return Ok(());
        }
        let mut conn = self.writer()?;
        audit::record_reads(&mut conn, self.identity.site.as_str(), now, batches)
    }

    /// Ends a session (by id) for good: kept until `expires_at` (unix seconds), when
    /// its token stops verifying anyway; the expired ones are forgotten here.
    pub fn end_session(
        &self,
        id: &str,
        user: healsync_domain::UserId,
        expires_at: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "DELETE FROM ended_sessions WHERE expires_at < ?1",
            [now.timestamp()],
        )
        .map_err(StoreError::sqlite("forget expired sessions"))?;
        conn.execute(
            "INSERT OR IGNORE INTO ended_sessions (id, user_id, expires_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![id, user.to_string(), expires_at],
        )
        .map_err(StoreError::sqlite("end a session"))?;
        Ok(())
    }

    /// Runs a read-only query on one of the reader connections.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        // Take the first free reader, starting from a rotating position; wait on one if
        // all are busy.
        for i in 0..self.readers.len() {
            if let Ok(conn) = self.readers[(start + i) % self.readers.len()].try_lock() {
                return f(&conn);
            }
        }
        let conn = self.readers[start % self.readers.len()]
            .lock()
            .map_err(|_| StoreError::Poisoned)?;
        f(&conn)
    }

    /// Rebuilds every projection from the documents inside a transaction, compares the
    /// result with the live tables, and rolls back: the live data is not touched.
    pub fn check_projections(&self) -> Result<ProjectionReport, StoreError> {
        let mut conn = self.writer()?;
        projection::check(&mut conn)
    }

    /// Drops and rebuilds every projection from the documents; returns how many
    /// documents were projected.
    pub fn rebuild_projections(&self) -> Result<usize, StoreError> {
        let mut conn = self.writer()?;
        projection::rebuild(&mut conn)
    }

    pub fn stats(&self) -> Result<Stats, StoreError> {
        self.read(|c| {
            let count = |sql: &str| -> Result<i64, StoreError> {
                c.query_row(sql, [], |r| r.get(0))
                    .map_err(StoreError::sqlite("count rows"))
            };
            Ok(Stats {
                documents: count("SELECT count(*) FROM documents")?,
                change_log_entries: count("SELECT count(*) FROM change_log")?,
                database_bytes: count(
                    "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                )?,
                outbox: {
                    let counts = outbox::counts(c)?;
                    healsync_domain::messaging::MessageStatus::ALL
                        .iter()
                        .map(|status| {
                            let n = counts.iter().find(|(s, _)| s == status);
                            (status.as_str(), n.map_or(0, |(_, n)| *n))
                        })
                        .collect()
                },
            })
        })
    }
}

#[cfg(test)]
mod tests;
