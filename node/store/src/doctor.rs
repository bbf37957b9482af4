//! Checks a technician runs on a node's database (`healsync-node doctor`). They only
//! read: [`integrity`] opens the file read-only before anything else may touch it, and
//! [`Store::check_change_log`] reads the log; the projection check
//! (`Store::check_projections`) rebuilds inside a transaction it rolls back.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use uuid::Uuid;

use crate::{Store, StoreError};

/// What SQLite's own integrity check says of the database file at `path`, opened
/// read-only: empty when it is sound, else its findings (at most `limit`). A file that
/// is not a database at all is one finding.
pub fn integrity(path: &Path, limit: u32) -> Result<Vec<String>, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(StoreError::sqlite("open the database read-only"))?;
    let found = (|| -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare(&format!("PRAGMA integrity_check({})", limit.max(1)))?;
        let lines = stmt.query_map([], |r| r.get::<_, String>(0))?;
        lines.collect()
    })();
    match found {
        Ok(lines) if lines.len() == 1 && lines[0] == "ok" => Ok(vec![]),
        Ok(lines) => Ok(lines),
        // Damage that stops the check itself (a header that is not SQLite's, a page
        // that cannot be read) is what it found.
        Err(e) => Ok(vec![e.to_string()]),
    }
}

/// The schema version the database at `path` is at (read-only), and the version this
/// build migrates to.
pub fn schema_versions(path: &Path) -> Result<(i64, i64), StoreError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(StoreError::sqlite("open the database read-only"))?;
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(StoreError::sqlite("read the schema version"))?;
    Ok((found, crate::schema::latest_version()))
}

/// The change log, checked for what sync relies on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeLogReport {
    /// Changes in the log (this node's and merged ones).
    pub changes: u64,
    /// Ranges of sequence numbers missing inside the log (`(first, last)` missing).
    pub gaps: Vec<(u64, u64)>,
    /// Documents whose latest change (a head) is not in the log: a change that would
    /// never be uploaded (at most 20 named; `unlogged_count` counts them all).
    pub unlogged: Vec<Uuid>,
    pub unlogged_count: u64,
    /// The highest sequence number the hub acknowledged, and the log's highest.
    pub upload_acked: u64,
    pub last_seq: u64,
}

impl ChangeLogReport {
    pub fn is_sound(&self) -> bool {
        self.gaps.is_empty() && self.unlogged_count == 0 && self.upload_acked <= self.last_seq
    }
}

impl Store {
    /// Checks the change log: numbered without holes (nothing is ever removed from it),
    /// holding every document's latest changes, and not behind what the hub says it
    /// has acknowledged.
    pub fn check_change_log(&self) -> Result<ChangeLogReport, StoreError> {
        self.read(|c| {
            let sql = || StoreError::sqlite("check the change log");
            let (changes, last_seq): (i64, Option<i64>) = c
                .query_row("SELECT count(*), max(seq) FROM change_log", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(sql())?;
            let mut gaps = Vec::new();
            {
                let mut stmt = c
                    .prepare(
                        "SELECT prev + 1, seq - 1 FROM (
                             SELECT seq, lag(seq, 1, 0) OVER (ORDER BY seq) AS prev FROM change_log
                         ) WHERE seq > prev + 1 LIMIT 20",
                    )
                    .map_err(sql())?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                    .map_err(sql())?;
                for row in rows {
                    let (a, b) = row.map_err(sql())?;
                    gaps.push((a as u64, b as u64));
                }
            }
            let mut unlogged = Vec::new();
            let mut unlogged_count = 0u64;
            {
                let mut docs = c
                    .prepare("SELECT id, heads FROM documents")
                    .map_err(sql())?;
                let mut logged = c
                    .prepare_cached("SELECT 1 FROM change_log WHERE hash = ?1")
                    .map_err(sql())?;
                let mut rows = docs.query([]).map_err(sql())?;
                while let Some(row) = rows.next().map_err(sql())? {
                    let id: String = row.get(0).map_err(sql())?;
                    let heads: String = row.get(1).map_err(sql())?;
                    let mut missing = false;
                    for head in heads.split(',').filter(|h| !h.is_empty()) {
                        let found = match head.parse::<automerge::ChangeHash>() {
                            Ok(hash) => logged
                                .query_row([hash.as_ref()], |_| Ok(()))
                                .optional()
                                .map_err(sql())?
                                .is_some(),
                            Err(_) => false,
                        };
                        missing |= !found;
                    }
                    if missing {
                        unlogged_count += 1;
                        if unlogged.len() < 20 {
                            unlogged.push(Uuid::parse_str(&id).unwrap_or_default());
                        }
                    }
                }
            }
            Ok(ChangeLogReport {
                changes: changes as u64,
                gaps,
                unlogged,
                unlogged_count,
                upload_acked: crate::sync::upload_acked(c)?,
                last_seq: last_seq.unwrap_or(0) as u64,
            })
        })
    }
}
