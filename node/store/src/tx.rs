//! A write transaction: where a record's document, its projection rows and its change-log
//! entries are written together, or not at all.

use chrono::{DateTime, Utc};
use healsync_domain::SiteCode;
use healsync_records::{
    AnyRecord, Record, heads_hex, load_document, new_document, resolve_field, write_record,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::audit::{AuditContext, Touched};
use crate::{Identity, StoreError, projection};
use healsync_domain::audit::Access;

pub struct WriteTx<'c> {
    tx: Transaction<'c>,
    identity: &'c Identity,
    now: DateTime<Utc>,
    channels: crate::outbox::Channels,
    changed: Vec<AnyRecord>,
    /// Who writes: each record of health data the write changes leaves an audit event
    /// in this transaction.
    who: &'c AuditContext,
    /// Accesses the write names beyond the records it changes (a break-glass).
    noted: Vec<Touched>,
}

impl<'c> WriteTx<'c> {
    pub(crate) fn new(
        tx: Transaction<'c>,
        identity: &'c Identity,
        now: DateTime<Utc>,
        channels: crate::outbox::Channels,
        who: &'c AuditContext,
    ) -> Self {
        WriteTx {
            tx,
            identity,
            now,
            channels,
            changed: Vec::new(),
            who,
            noted: Vec::new(),
        }
    }

    /// Adds an audit event for an access this write stands for beyond the records it
    /// changes (opening a patient's record by break-glass), in this transaction, as
    /// the writer's.
    pub fn note_access(&mut self, kind: &str, id: uuid::Uuid, patient: healsync_domain::PatientId) {
        self.noted.push(Touched {
            kind: kind.to_string(),
            id,
            patient: Some(patient),
        });
    }

    /// The channels this node delivers messages on.
    pub fn channels(&self) -> crate::outbox::Channels {
        self.channels
    }

    /// The transaction's connection, for the checks a write needs (they see the
    /// transaction's own earlier writes).
    pub fn conn(&self) -> &Connection {
        &self.tx
    }

    pub fn site(&self) -> &SiteCode {
        &self.identity.site
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Writes `record` into its document (creating it if new), appends the new automerge
    /// changes to the change log and refreshes the projection from the document (so the
    /// projection is always what a rebuild would produce). A record equal to what the
    /// document holds writes nothing.
    pub fn put<R>(&mut self, record: &R) -> Result<(), StoreError>
    where
        R: Record,
    {
        let id = record.id().to_string();
        let existing: Option<Vec<u8>> = self
            .tx
            .query_row("SELECT bytes FROM documents WHERE id = ?1", [&id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(StoreError::sqlite("load a document"))?;
        let mut doc = match &existing {
            Some(bytes) => {
                load_document(bytes, &self.identity.actor).map_err(StoreError::record(&id))?
            }
            None => new_document(&self.identity.actor),
        };
        let written = write_record(&mut doc, record).map_err(StoreError::record(&id))?;
        if written.changes.is_empty() {
            return Ok(());
        }
        self.finish_document(&id, R::KIND.as_str(), &mut doc, written.changes)
    }

    /// Saves a changed document, appends its new changes to the change log, and
    /// refreshes its projection and conflict rows.
    fn finish_document(
        &mut self,
        id: &str,
        kind: &str,
        doc: &mut automerge::AutoCommit,
        changes: Vec<(automerge::ChangeHash, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let now_ms = self.now.timestamp_millis();
        let heads = heads_hex(doc);
        save_document(&self.tx, id, kind, &doc.save(), &heads, now_ms)?;
        {
            let mut insert = self
                .tx
                .prepare_cached(
                    "INSERT INTO change_log(doc_id, kind, hash, bytes, local, recorded_at)
                     VALUES (?1, ?2, ?3, ?4, 1, ?5)",
                )
                .map_err(StoreError::sqlite("prepare the change log"))?;
            for (hash, change) in &changes {
                insert
                    .execute(params![id, kind, hash.as_ref(), change, now_ms])
                    .map_err(StoreError::sqlite("append to the change log"))?;
            }
        }
        let current = AnyRecord::read(doc).map_err(StoreError::record(id))?;
        projection::project(&self.tx, &current)?;
        projection::project_conflicts(&self.tx, id, kind, doc)?;
        let uid = current.id();
        self.changed.retain(|r| r.id() != uid);
        self.changed.push(current);
        Ok(())
    }

    /// Settles a conflicting field of a document by choosing one of its current values.
    /// Returns false when the document has no such field or value.
    pub fn resolve_conflict(
        &mut self,
        doc_id: uuid::Uuid,
        field: &str,
        value: &str,
    ) -> Result<bool, StoreError> {
        let id = doc_id.to_string();
        let row: Option<(String, Vec<u8>)> = self
            .tx
            .query_row(
                "SELECT kind, bytes FROM documents WHERE id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(StoreError::sqlite("load a document"))?;
        let Some((kind, bytes)) = row else {
            return Ok(false);
        };
        let mut doc =
            load_document(&bytes, &self.identity.actor).map_err(StoreError::record(&id))?;
        let Some(written) =
            resolve_field(&mut doc, field, value).map_err(StoreError::record(&id))?
        else {
            return Ok(false);
        };
        self.finish_document(&id, &kind, &mut doc, written.changes)?;
        Ok(true)
    }

    /// Records that the one-time step `name` has run, with the rest of the write.
    pub fn mark_done(&mut self, name: &str) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES (?1, ?2)",
                params![format!("done.{name}"), self.now.to_rfc3339()],
            )
            .map_err(StoreError::sqlite("record a one-time step"))?;
        Ok(())
    }

    /// The next value of a named counter kept in this node's metadata (for example the
    /// medical record number sequence). Counters belong to this node: numbers built from
    /// them carry the site code, so two sites never mint the same one.
    pub fn next_counter(&mut self, name: &str) -> Result<u64, StoreError> {
        let key = format!("counter.{name}");
        let current: Option<String> = self
            .tx
            .query_row("SELECT value FROM meta WHERE key = ?1", [&key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(StoreError::sqlite("read a counter"))?;
        let next = match current {
            Some(v) => {
                v.parse::<u64>()
                    .map_err(|_| StoreError::Corrupt(format!("counter {name} is {v:?}")))?
                    + 1
            }
            None => 1,
        };
        self.tx
            .execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, next.to_string()],
            )
            .map_err(StoreError::sqlite("advance a counter"))?;
        Ok(next)
    }

    pub(crate) fn commit(mut self) -> Result<Vec<AnyRecord>, StoreError> {
        let mut touched: Vec<Touched> = self
            .changed
            .iter()
            .filter_map(|r| {
                r.health_subject().map(|p| Touched {
                    kind: r.kind().as_str().to_string(),
                    id: r.id(),
                    patient: Some(p),
                })
            })
            .collect();
        touched.append(&mut self.noted);
        crate::audit::append(
            &self.tx,
            self.identity.site.as_str(),
            self.now,
            self.who,
            Access::Write,
            &touched,
        )?;
        self.tx
            .commit()
            .map_err(StoreError::sqlite("commit a write"))?;
        Ok(self.changed)
    }
}

/// Inserts or replaces a document's saved bytes and heads.
pub(crate) fn save_document(
    conn: &Connection,
    id: &str,
    kind: &str,
    bytes: &[u8],
    heads: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO documents(id, kind, bytes, heads, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(id) DO UPDATE SET bytes = excluded.bytes, heads = excluded.heads,
                                       updated_at = excluded.updated_at",
    )
    .map_err(StoreError::sqlite("prepare storing a document"))?
    .execute(params![id, kind, bytes, heads, now_ms])
    .map_err(StoreError::sqlite("store a document"))?;
    Ok(())
}
