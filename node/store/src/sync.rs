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

/// A change as the hub relays it to another node (tests and tools carry one node's
/// log to another without a hub).
impl From<Outgoing> for Incoming {
    fn from(o: Outgoing) -> Incoming {
        Incoming {
            doc_id: o.doc_id,
            kind: o.kind,
            hash: o.hash,
            bytes: o.bytes,
        }
    }
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
    /// Changes from the hub held back because they could not be merged yet.
    pub held_changes: i64,
    /// Local changes the hub refused to store (see [`Store::refusals`]).
    pub refused_changes: i64,
    pub open_conflicts: i64,
    pub database_bytes: i64,
}

const UPLOAD_ACKED: &str = "sync.upload_acked";
const HUB: &str = "sync.hub";
const LAST_SYNC: &str = "sync.last_success";
const DOWNLOAD_CURSOR: &str = "sync.download_cursor";

/// The highest sequence of this node's log the hub has acknowledged.
pub(crate) fn upload_acked(conn: &Connection) -> Result<u64, StoreError> {
    get_u64(conn, UPLOAD_ACKED)
}

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

/// Whether and when this node last completed a sync round with its hub: the last
/// time the hub confirmed the clinic's accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubContact {
    /// A node on its own: there is no hub to confirm anything.
    NotEnrolled,
    Never,
    Last(DateTime<Utc>),
}

/// A local change the hub refused to store, and why (for the technician).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub seq: i64,
    pub doc_id: String,
    pub reason: String,
    pub recorded_at_ms: i64,
}

/// A change from the hub held back, as the technician sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub doc_id: String,
    pub kind: String,
    pub reason: String,
    pub held_at_ms: i64,
}

/// The documents with held changes.
fn held_documents(conn: &Connection) -> Result<Vec<Uuid>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT DISTINCT doc_id FROM held_changes")
        .map_err(StoreError::sqlite("read held changes"))?;
    let ids = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(StoreError::sqlite("read held changes"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite("read held changes"))?;
    ids.into_iter()
        .map(|d| Uuid::parse_str(&d).map_err(|_| StoreError::Corrupt(format!("held doc id {d:?}"))))
        .collect()
}

/// Held changes (of one document, or all), as they arrived.
fn held_changes(conn: &Connection, doc: Option<&str>) -> Result<Vec<Incoming>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT doc_id, kind, hash, bytes FROM held_changes
             WHERE ?1 IS NULL OR doc_id = ?1 ORDER BY held_at, rowid",
        )
        .map_err(StoreError::sqlite("read held changes"))?;
    let mut rows = stmt
        .query([doc])
        .map_err(StoreError::sqlite("read held changes"))?;
    let mut out = Vec::new();
    while let Some(r) = rows
        .next()
        .map_err(StoreError::sqlite("read held changes"))?
    {
        let doc: String = r.get(0).map_err(StoreError::sqlite("read a held change"))?;
        let hash: Vec<u8> = r.get(2).map_err(StoreError::sqlite("read a held change"))?;
        out.push(Incoming {
            doc_id: Uuid::parse_str(&doc)
                .map_err(|_| StoreError::Corrupt(format!("held doc id {doc:?}")))?,
            kind: r.get(1).map_err(StoreError::sqlite("read a held change"))?,
            hash: hash_array(&hash)?,
            bytes: r.get(3).map_err(StoreError::sqlite("read a held change"))?,
        });
    }
    Ok(out)
}

fn hold(conn: &Connection, c: &Incoming, reason: &str, now_ms: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO held_changes(hash, doc_id, kind, bytes, reason, held_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(hash) DO UPDATE SET kind = excluded.kind, bytes = excluded.bytes,
                                         reason = excluded.reason",
    )
    .map_err(StoreError::sqlite("hold a change"))?
    .execute(params![
        c.hash.as_slice(),
        c.doc_id.to_string(),
        c.kind,
        c.bytes,
        reason,
        now_ms
    ])
    .map_err(StoreError::sqlite("hold a change"))?;
    Ok(())
}

fn release(conn: &Connection, hash: &[u8; 32]) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM held_changes WHERE hash = ?1")
        .map_err(StoreError::sqlite("release a held change"))?
        .execute([hash.as_slice()])
        .map_err(StoreError::sqlite("release a held change"))?;
    Ok(())
}

/// Loads a stored document (an empty one when there is none).
fn load(id: &str, saved: Option<&[u8]>) -> Result<AutoCommit, StoreError> {
    match saved {
        Some(b) => AutoCommit::load(b).map_err(|e| StoreError::record(id)(e.into())),
        None => Ok(AutoCommit::new()),
    }
}

/// Applies `changes` to `doc` (loaded from `saved`). If automerge refuses the batch,
/// the document is loaded again and the changes go in one at a time on copies, so each
/// refused change is returned with its error and leaves the document as it was.
fn apply_each(
    id: &str,
    doc: &mut AutoCommit,
    saved: Option<&[u8]>,
    changes: Vec<(usize, Change)>,
) -> Result<Vec<(usize, automerge::AutomergeError)>, StoreError> {
    if doc
        .apply_changes(changes.iter().map(|(_, c)| c.clone()))
        .is_ok()
    {
        return Ok(Vec::new());
    }
    *doc = load(id, saved)?;
    let mut failed = Vec::new();
    for (i, change) in changes {
        let mut trial = doc.clone();
        match trial.apply_changes([change]) {
            Ok(()) => *doc = trial,
            Err(e) => failed.push((i, e)),
        }
    }
    Ok(failed)
}

/// Merges each document's changes: what applies and reads is saved with its
/// projections and logged; the rest is held (see [`Store::apply_remote`]).
/// What a record merged from the hub makes this node send, given whether the merge
/// created its document here (`true`) or changed one this node held. Asked inside the
/// merge's transaction, after every document of the batch is merged and projected.
pub type OnMerged<'a> =
    &'a dyn Fn(&Connection, &AnyRecord, bool) -> Result<Vec<crate::outbox::NewMessage>, StoreError>;

/// Enqueues what `on_merged` asks for; returns the records, for the event bus.
fn enqueue_for(
    tx: &Connection,
    now: DateTime<Utc>,
    changed: Vec<(AnyRecord, bool)>,
    on_merged: OnMerged<'_>,
) -> Result<Vec<AnyRecord>, StoreError> {
    let mut records = Vec::with_capacity(changed.len());
    for (record, created) in changed {
        for m in on_merged(tx, &record, created)? {
            crate::outbox::enqueue(tx, now, &m)?;
        }
        records.push(record);
    }
    Ok(records)
}

fn merge(
    tx: &Connection,
    now: DateTime<Utc>,
    by_doc: BTreeMap<Uuid, Vec<Incoming>>,
) -> Result<Vec<(AnyRecord, bool)>, StoreError> {
    let now_ms = now.timestamp_millis();
    // Each changed record, and whether this merge created its document here.
    let mut changed = Vec::new();
    for (doc_id, incoming) in by_doc {
        let id = doc_id.to_string();
        let existing: Option<Vec<u8>> = tx
            .query_row("SELECT bytes FROM documents WHERE id = ?1", [&id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(StoreError::sqlite("load a document"))?;
        let mut doc = load(&id, existing.as_deref())?;
        let before = heads_hex(&mut doc);
        // Each hash once; a sound copy of a change wins over a damaged one.
        let mut candidates: Vec<&Incoming> = Vec::new();
        let mut parsed = Vec::new();
        let mut damaged = Vec::new();
        let mut sound = std::collections::HashSet::new();
        for c in &incoming {
            if doc.get_change_by_hash(&ChangeHash(c.hash)).is_some() {
                release(tx, &c.hash)?;
                continue;
            }
            match Change::from_bytes(c.bytes.clone()) {
                Err(e) => damaged.push((c, format!("the change does not load: {e}"))),
                Ok(change) if change.hash().0 != c.hash => {
                    damaged.push((c, "the change does not match its hash".to_string()))
                }
                Ok(change) => {
                    if sound.insert(c.hash) {
                        parsed.push((candidates.len(), change));
                        candidates.push(c);
                    }
                }
            }
        }
        for (c, reason) in damaged {
            if !sound.contains(&c.hash) {
                hold(tx, c, &reason, now_ms)?;
            }
        }
        let mut rejected = std::collections::HashSet::new();
        for (i, e) in apply_each(&id, &mut doc, existing.as_deref(), parsed)? {
            hold(
                tx,
                candidates[i],
                &format!("automerge refused it: {e}"),
                now_ms,
            )?;
            rejected.insert(i);
        }
        let mut applied = Vec::new();
        for (i, c) in candidates.into_iter().enumerate() {
            if rejected.contains(&i) {
                continue;
            }
            if doc.get_change_by_hash(&ChangeHash(c.hash)).is_none() {
                // Queued by automerge until its dependencies arrive: it is not in the
                // document (nor in what `save` writes), so it waits here.
                hold(
                    tx,
                    c,
                    "waiting for the changes it depends on, which have not arrived",
                    now_ms,
                )?;
            } else {
                applied.push(c);
            }
        }
        let heads = heads_hex(&mut doc);
        if heads == before || applied.is_empty() {
            continue;
        }
        let record = match AnyRecord::read(&doc) {
            Ok(r) if applied.iter().any(|c| c.kind != r.kind().as_str()) => {
                // Scope and sharing follow the kind a change is labelled with; one that
                // lies about it must not slip a record in (a patient labelled as a
                // doctor would reach every clinic).
                let reason = format!(
                    "the change is labelled with another kind than the {} it holds",
                    r.kind().as_str()
                );
                for c in applied {
                    hold(tx, c, &reason, now_ms)?;
                }
                continue;
            }
            Ok(r) => r,
            Err(e) => {
                // Kept as it was; the changes wait until the record reads (a newer
                // node's kind or field, once this node is upgraded).
                let reason = format!("the record does not read in this version: {e}");
                for c in applied {
                    hold(tx, c, &reason, now_ms)?;
                }
                continue;
            }
        };
        for c in &applied {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO change_log(doc_id, kind, hash, bytes, local, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5)",
            )
            .map_err(StoreError::sqlite("record a remote change"))?
            .execute(params![id, c.kind, c.hash.as_slice(), c.bytes, now_ms])
            .map_err(StoreError::sqlite("record a remote change"))?;
            release(tx, &c.hash)?;
        }
        let kind = record.kind().as_str();
        save_document(tx, &id, kind, &doc.save(), &heads, now_ms)?;
        projection::project(tx, &record)?;
        projection::project_conflicts(tx, &id, kind, &doc)?;
        changed.push((record, existing.is_none()));
    }
    Ok(changed)
}

impl Store {
    /// Cheap enough to ask every few seconds (the staff app's banner does): indexed
    /// counts and the page count, never a scan of the documents or the whole log.
    pub fn status(&self) -> Result<NodeStatus, StoreError> {
        self.read(|c| {
            let acked = i64::try_from(get_u64(c, UPLOAD_ACKED)?).unwrap_or(i64::MAX);
            let database_bytes = c
                .query_row(
                    "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                    [],
                    |r| r.get(0),
                )
                .map_err(StoreError::sqlite("read the database size"))?;
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
                held_changes: c
                    .query_row("SELECT count(*) FROM held_changes", [], |r| r.get(0))
                    .map_err(StoreError::sqlite("count held changes"))?,
                refused_changes: c
                    .query_row("SELECT count(*) FROM sync_rejections", [], |r| r.get(0))
                    .map_err(StoreError::sqlite("count refused changes"))?,
                open_conflicts: crate::queries::count_conflicts(c)?,
                database_bytes,
            })
        })
    }

    /// See [`HubContact`].
    pub fn hub_contact(&self) -> Result<HubContact, StoreError> {
        self.read(|c| {
            if get_text(c, HUB)?.is_none() {
                return Ok(HubContact::NotEnrolled);
            }
            Ok(match get_text(c, LAST_SYNC)? {
                None => HubContact::Never,
                Some(at) => DateTime::parse_from_rfc3339(&at)
                    .map(|t| HubContact::Last(t.with_timezone(&Utc)))
                    .unwrap_or(HubContact::Never),
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
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
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
    /// harmless). Returns the records whose documents changed, for the event bus.
    ///
    /// A change that cannot be merged does not stop the others, and is never dropped:
    /// it is *held* (kept verbatim in `held_changes`, with the reason, in the same
    /// transaction) and tried again whenever its document receives changes, and once
    /// after the node starts ([`Store::retry_held`], for a newer version that reads it). That covers a change whose
    /// dependencies have not arrived, a record this version of the node cannot read
    /// (a newer node's kind or field, until this node is upgraded), and damaged bytes.
    /// Held changes show in `status`.
    pub fn apply_remote(
        &self,
        now: DateTime<Utc>,
        changes: Vec<Incoming>,
        through: u64,
    ) -> Result<Vec<AnyRecord>, StoreError> {
        self.apply_remote_with(now, changes, through, &|_, _, _| Ok(Vec::new()))
    }

    /// [`Store::apply_remote`], asking `on_merged` what each changed record makes this
    /// node send, and enqueuing that in the same transaction.
    pub fn apply_remote_with(
        &self,
        now: DateTime<Utc>,
        changes: Vec<Incoming>,
        through: u64,
        on_merged: OnMerged<'_>,
    ) -> Result<Vec<AnyRecord>, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("begin applying remote changes"))?;
        let mut by_doc: BTreeMap<Uuid, Vec<Incoming>> = BTreeMap::new();
        for c in changes {
            by_doc.entry(c.doc_id).or_default().push(c);
        }
        // What is held for these documents is tried again with what arrived.
        for doc in held_documents(&tx)? {
            if let Some(list) = by_doc.get_mut(&doc) {
                let mut held = held_changes(&tx, Some(&doc.to_string()))?;
                held.append(list);
                *list = held;
            }
        }
        let changed = enqueue_for(&tx, now, merge(&tx, now, by_doc)?, on_merged)?;
        if through > get_u64(&tx, DOWNLOAD_CURSOR)? {
            set_u64(&tx, DOWNLOAD_CURSOR, through)?;
        }
        tx.commit()
            .map_err(StoreError::sqlite("commit remote changes"))?;
        Ok(changed)
    }

    /// Tries every held change again (after an upgrade, a record may now read; a
    /// dependency may have arrived). Returns the records whose documents changed.
    pub fn retry_held(&self, now: DateTime<Utc>) -> Result<Vec<AnyRecord>, StoreError> {
        self.retry_held_with(now, &|_, _, _| Ok(Vec::new()))
    }

    /// [`Store::retry_held`] with `on_merged` as in [`Store::apply_remote_with`].
    pub fn retry_held_with(
        &self,
        now: DateTime<Utc>,
        on_merged: OnMerged<'_>,
    ) -> Result<Vec<AnyRecord>, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("begin retrying held changes"))?;
        let mut by_doc: BTreeMap<Uuid, Vec<Incoming>> = BTreeMap::new();
        for held in held_changes(&tx, None)? {
            by_doc.entry(held.doc_id).or_default().push(held);
        }
        if by_doc.is_empty() {
            return Ok(Vec::new());
        }
        let changed = enqueue_for(&tx, now, merge(&tx, now, by_doc)?, on_merged)?;
        tx.commit()
            .map_err(StoreError::sqlite("commit retried changes"))?;
        Ok(changed)
    }

    /// The local changes the hub refused, newest first, with its reasons.
    pub fn refusals(&self) -> Result<Vec<Refused>, StoreError> {
        self.read(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT seq, doc_id, reason, recorded_at FROM sync_rejections ORDER BY seq DESC",
                )
                .map_err(StoreError::sqlite("list refused changes"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(Refused {
                        seq: r.get(0)?,
                        doc_id: r.get(1)?,
                        reason: r.get(2)?,
                        recorded_at_ms: r.get(3)?,
                    })
                })
                .map_err(StoreError::sqlite("list refused changes"))?;
            rows.collect::<Result<_, _>>()
                .map_err(StoreError::sqlite("list refused changes"))
        })
    }

    /// The changes held back, oldest first, with why (for the technician).
    pub fn held(&self) -> Result<Vec<Held>, StoreError> {
        self.read(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT doc_id, kind, reason, held_at FROM held_changes ORDER BY held_at, doc_id",
                )
                .map_err(StoreError::sqlite("list held changes"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(Held {
                        doc_id: r.get(0)?,
                        kind: r.get(1)?,
                        reason: r.get(2)?,
                        held_at_ms: r.get(3)?,
                    })
                })
                .map_err(StoreError::sqlite("list held changes"))?;
            rows.collect::<Result<_, _>>()
                .map_err(StoreError::sqlite("list held changes"))
        })
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
