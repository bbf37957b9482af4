//! The node's side of replication, as storage: what to upload next, what the hub has
//! acknowledged, and merging changes that arrive from the hub. Each operation is one
//! transaction, so the durable positions and the data they describe never disagree.

use std::collections::BTreeMap;

use automerge::{AutoCommit, Change, ChangeHash};
use chrono::{DateTime, Utc};
use healsync_records::{AnyRecord, heads_hex};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::tx::save_document;
use crate::{Store, StoreError, projection};

/// One local change to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub seq: u64,
    pub doc_id: Uuid,
    pub kind: String,
    pub hash: [u8; 32],
    pub bytes: Vec<u8>,
}

/// One change received from the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub doc_id: Uuid,
    pub kind: String,
    pub hash: [u8; 32],
    pub bytes: Vec<u8>,
}

/// The node's durable sync positions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncState {
    /// Every local change with `seq` at or below this is committed at the hub.
    pub upload_acked: u64,
    /// The hub log position the node has merged through.
    pub download_cursor: u64,
}

/// What `healsync-node status` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    /// The hub this node is enrolled with, if any.
    pub hub: Option<String>,
    /// When the last sync round completed (RFC 3339), if ever.
    pub last_sync: Option<String>,
    pub waiting_to_upload: i64,
    pub open_conflicts: i64,
    pub database_bytes: i64,
}

const UPLOAD_ACKED: &str = "sync.upload_acked";
const HUB: &str = "sync.hub";
const LAST_SYNC: &str = "sync.last_success";
const DOWNLOAD_CURSOR: &str = "sync.download_cursor";

fn get_u64(conn: &Connection, key: &str) -> Result<u64, StoreError> {
    let v: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .map_err(StoreError::sqlite("read a sync position"))?;
    match v {
        None => Ok(0),
        Some(v) => v
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("{key} is {v:?}"))),
    }
}

fn set_u64(conn: &Connection, key: &str, value: u64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value.to_string()],
    )
    .map_err(StoreError::sqlite("store a sync position"))?;
    Ok(())
}

fn hash_array(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a change hash is not 32 bytes".into()))
}

fn get_text(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .map_err(StoreError::sqlite("read node metadata"))
}

impl Store {
    pub fn status(&self) -> Result<NodeStatus, StoreError> {
        let database_bytes = self.stats()?.database_bytes;
        self.read(|c| {
            let acked = i64::try_from(get_u64(c, UPLOAD_ACKED)?).unwrap_or(i64::MAX);
            Ok(NodeStatus {
                hub: get_text(c, HUB)?,
                last_sync: get_text(c, LAST_SYNC)?,
                waiting_to_upload: c
                    .query_row(
                        "SELECT count(*) FROM change_log WHERE local = 1 AND seq > ?1",
                        [acked],
                        |r| r.get(0),
                    )
                    .map_err(StoreError::sqlite("count waiting changes"))?,
                open_conflicts: crate::queries::count_conflicts(c)?,
                database_bytes,
            })
        })
    }

    /// Records the hub this node is enrolled with (`HOST:PORT`).
    pub fn set_hub(&self, hub: &str) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![HUB, hub],
        )
        .map_err(StoreError::sqlite("record the hub"))?;
        Ok(())
    }

    /// Records a completed sync round (for `status`).
    pub fn record_sync_success(&self, at: DateTime<Utc>) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![LAST_SYNC, at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)],
        )
        .map_err(StoreError::sqlite("record a sync"))?;
        Ok(())
    }

    pub fn sync_state(&self) -> Result<SyncState, StoreError> {
        self.read(|c| {
            Ok(SyncState {
                upload_acked: get_u64(c, UPLOAD_ACKED)?,
                download_cursor: get_u64(c, DOWNLOAD_CURSOR)?,
            })
        })
    }

    /// Local changes with `seq > after`, ascending, about `max_bytes` at most (always at
    /// least one if any is left).
    pub fn pending_upload(
        &self,
        after: u64,
        max_bytes: usize,
    ) -> Result<Vec<Outgoing>, StoreError> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT seq, doc_id, kind, hash, bytes FROM change_log
                     WHERE local = 1 AND seq > ?1 ORDER BY seq",
                )
                .map_err(StoreError::sqlite("read the change log"))?;
            let mut rows = stmt
                .query([i64::try_from(after).unwrap_or(i64::MAX)])
                .map_err(StoreError::sqlite("read the change log"))?;
            let mut out = Vec::new();
            let mut size = 0;
            while let Some(r) = rows
                .next()
                .map_err(StoreError::sqlite("read the change log"))?
            {
                let bytes: Vec<u8> = r.get(4).map_err(StoreError::sqlite("read a change"))?;
                if !out.is_empty() && size + bytes.len() > max_bytes {
                    break;
                }
                size += bytes.len();
                let seq: i64 = r.get(0).map_err(StoreError::sqlite("read a change"))?;
                let doc: String = r.get(1).map_err(StoreError::sqlite("read a change"))?;
                let hash: Vec<u8> = r.get(3).map_err(StoreError::sqlite("read a change"))?;
                out.push(Outgoing {
                    seq: u64::try_from(seq)
                        .map_err(|_| StoreError::Corrupt("negative seq".into()))?,
                    doc_id: Uuid::parse_str(&doc)
                        .map_err(|_| StoreError::Corrupt(format!("doc id {doc:?}")))?,
                    kind: r.get(2).map_err(StoreError::sqlite("read a change"))?,
                    hash: hash_array(&hash)?,
                    bytes,
                });
            }
            Ok(out)
        })
    }

    /// Records that the hub committed everything through `through`, with the changes it
    /// refused in that range (kept for the technician). Positions only move forward.
    pub fn record_upload_ack(
        &self,
        now: DateTime<Utc>,
        through: u64,
        rejected: &[(u64, Uuid, String)],
    ) -> Result<(), StoreError> {
        let mut conn = self.writer()?;
        let tx = conn
            .transaction()
            .map_err(StoreError::sqlite("begin recording an ack"))?;
        if through > get_u64(&tx, UPLOAD_ACKED)? {
            set_u64(&tx, UPLOAD_ACKED, through)?;
        }
        for (seq, doc, reason) in rejected {
            tx.execute(
                "INSERT OR REPLACE INTO sync_rejections(seq, doc_id, reason, recorded_at) VALUES (?1, ?2, ?3, ?4)",
                params![i64::try_from(*seq).unwrap_or(i64::MAX), doc.to_string(), reason, now.timestamp_millis()],
            )
            .map_err(StoreError::sqlite("record a refused change"))?;
        }
        tx.commit().map_err(StoreError::sqlite("commit an ack"))
    }

    /// Merges changes from the hub and advances the download cursor to `through`, in
    /// one transaction. Changes already present are skipped (applying twice is
    /// harmless). Returns the records whose documents changed, for the event bus. A
    /// change whose dependencies are missing fails the whole batch and leaves the
    /// cursor where it was, so nothing is skipped.
    pub fn apply_remote(
        &self,
        now: DateTime<Utc>,
        changes: Vec<Incoming>,
        through: u64,
    ) -> Result<Vec<AnyRecord>, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn
            .transaction()
            .map_err(StoreError::sqlite("begin applying remote changes"))?;
        let mut by_doc: BTreeMap<Uuid, Vec<Incoming>> = BTreeMap::new();
        for c in changes {
            by_doc.entry(c.doc_id).or_default().push(c);
        }
        let mut changed = Vec::new();
        for (doc_id, incoming) in by_doc {
            let id = doc_id.to_string();
            let existing: Option<Vec<u8>> = tx
                .query_row("SELECT bytes FROM documents WHERE id = ?1", [&id], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(StoreError::sqlite("load a document"))?;
            let mut doc = match &existing {
                Some(b) => AutoCommit::load(b).map_err(|e| StoreError::record(&id)(e.into()))?,
                None => AutoCommit::new(),
            };
            let before = heads_hex(&mut doc);
            let mut parsed = Vec::with_capacity(incoming.len());
            for c in &incoming {
                let change = Change::from_bytes(c.bytes.clone()).map_err(|e| {
                    StoreError::Corrupt(format!("a remote change of {id} does not load: {e}"))
                })?;
                if change.hash().0 != c.hash {
                    return Err(StoreError::Corrupt(format!(
                        "a remote change of {id} does not match its hash"
                    )));
                }
                parsed.push(change);
            }
            doc.apply_changes(parsed)
                .map_err(|e| StoreError::record(&id)(e.into()))?;
            for c in &incoming {
                if doc.get_change_by_hash(&ChangeHash(c.hash)).is_none() {
                    return Err(StoreError::Corrupt(format!(
                        "a remote change of {id} arrived before the changes it depends on"
                    )));
                }
                tx.execute(
                    "INSERT OR IGNORE INTO change_log(doc_id, kind, hash, bytes, local, recorded_at)
                     VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                    params![id, c.kind, c.hash.as_slice(), c.bytes, now.timestamp_millis()],
                )
                .map_err(StoreError::sqlite("record a remote change"))?;
            }
            let heads = heads_hex(&mut doc);
            if heads == before {
                continue;
            }
            let record = AnyRecord::read(&doc).map_err(StoreError::record(&id))?;
            let kind = record.kind().as_str();
            save_document(&tx, &id, kind, &doc.save(), &heads, now.timestamp_millis())?;
            projection::project(&tx, &record)?;
            projection::project_conflicts(&tx, &id, kind, &doc)?;
            changed.push(record);
        }
        if through > get_u64(&tx, DOWNLOAD_CURSOR)? {
            set_u64(&tx, DOWNLOAD_CURSOR, through)?;
        }
        tx.commit()
            .map_err(StoreError::sqlite("commit remote changes"))?;
        Ok(changed)
    }

    /// Every document's kind and heads, to compare replicas.
    pub fn all_heads(&self) -> Result<BTreeMap<Uuid, (String, String)>, StoreError> {
        self.read(|c| {
            let mut stmt = c
                .prepare("SELECT id, kind, heads FROM documents")
                .map_err(StoreError::sqlite("list documents"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(StoreError::sqlite("list documents"))?;
            let mut out = BTreeMap::new();
            for row in rows {
                let (id, kind, heads) = row.map_err(StoreError::sqlite("list documents"))?;
                let id = Uuid::parse_str(&id)
                    .map_err(|_| StoreError::Corrupt(format!("document id {id:?}")))?;
                out.insert(id, (kind, heads));
            }
            Ok(out)
        })
    }

    /// The heads of one document (sorted, hex), to compare replicas.
    pub fn document_heads(&self, id: Uuid) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT heads FROM documents WHERE id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sqlite("read document heads"))
        })
    }
}
