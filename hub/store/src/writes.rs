//! Storing merged documents with their projections, and writes made at the hub itself
//! (users, settled conflicts, bookings into a site's schedule, notifications).
//!
//! A write at the hub is an automerge change by the hub's actor, appended to the log
//! like an upload (origin `HUB_ORIGIN`), so nodes receive it by the ordinary download;
//! the hub's document and projections are updated in the same transaction. Writes to
//! one document are serialised by its row lock, which is what makes one actor shared by
//! every hub replica safe.

use std::collections::HashMap;

use automerge::{ActorId, AutoCommit};
use healsync_hub_projection::{Merged, derive, load};
use healsync_records::{Record, RecordError, Written, write_record};
use healsync_sync_protocol::Change;
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use crate::error::db;
use crate::ingest::append_changes;
use crate::rows::HUB_ORIGIN;
use crate::{HubStoreError, SHARED_KINDS};

/// Who owns a document, and whether other sites that hold it may edit it.
pub(crate) struct Owner {
    pub site: String,
    pub kind: String,
    pub shared: bool,
}

pub(crate) async fn owners(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Owner>, HubStoreError> {
    sqlx::query("SELECT doc_id, site, kind, shared FROM document_owners WHERE doc_id = ANY($1)")
        .bind(ids)
        .fetch_all(&mut **tx)
        .await
        .map_err(db("read document owners"))?
        .into_iter()
        .map(|r| {
            Ok((
                r.try_get("doc_id")?,
                Owner {
                    site: r.try_get("site")?,
                    kind: r.try_get("kind")?,
                    shared: r.try_get("shared")?,
                },
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db("read document owners"))
}

/// Upserts documents (bytes, heads, JSON record) and refreshes their field conflicts,
/// appointment rows, patients' search words and billing facts.
pub(crate) async fn store_documents(
    tx: &mut Transaction<'_, Postgres>,
    docs: &[(Uuid, String, Merged)],
) -> Result<(), HubStoreError> {
    if docs.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = docs.iter().map(|(id, _, _)| *id).collect();
    sqlx::query(
        "INSERT INTO documents (doc_id, kind, site, bytes, heads, record, complete)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::jsonb[], $7::bool[])
         ON CONFLICT (doc_id) DO UPDATE SET kind = EXCLUDED.kind, bytes = EXCLUDED.bytes,
             heads = EXCLUDED.heads, record = EXCLUDED.record, complete = EXCLUDED.complete,
             updated_at = now()",
    )
    .bind(&ids)
    .bind(docs.iter().map(|(_, _, m)| m.kind.clone()).collect::<Vec<_>>())
    .bind(docs.iter().map(|(_, s, _)| s.clone()).collect::<Vec<_>>())
    .bind(docs.iter().map(|(_, _, m)| m.bytes.clone()).collect::<Vec<_>>())
    .bind(docs.iter().map(|(_, _, m)| m.heads.clone()).collect::<Vec<_>>())
    .bind(docs.iter().map(|(_, _, m)| m.record.clone()).collect::<Vec<_>>())
    .bind(docs.iter().map(|(_, _, m)| m.complete).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await
    .map_err(db("store documents"))?;
    crate::events::documents_changed(tx, &ids).await?;

    let mut c_doc = Vec::new();
    let mut c_field = Vec::new();
    let mut c_vals = Vec::new();
    for (id, _, m) in docs {
        for c in &m.conflicts {
            c_doc.push(*id);
            c_field.push(c.field.clone());
            c_vals.push(serde_json::json!(c.values));
        }
    }
    sqlx::query(
        "DELETE FROM field_conflicts f WHERE f.doc_id = ANY($1)
         AND NOT EXISTS (SELECT 1 FROM UNNEST($2::uuid[], $3::text[]) AS k(d, f2)
                         WHERE k.d = f.doc_id AND k.f2 = f.field)",
    )
    .bind(&ids)
    .bind(&c_doc)
    .bind(&c_field)
    .execute(&mut **tx)
    .await
    .map_err(db("clear settled conflicts"))?;
    if !c_doc.is_empty() {
        sqlx::query(
            "INSERT INTO field_conflicts (doc_id, field, vals)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::jsonb[])
             ON CONFLICT (doc_id, field) DO UPDATE SET vals = EXCLUDED.vals",
        )
        .bind(&c_doc)
        .bind(&c_field)
        .bind(&c_vals)
        .execute(&mut **tx)
        .await
        .map_err(db("record conflicts"))?;
    }

    let terms: Vec<(Uuid, Vec<String>)> = docs
        .iter()
        .filter_map(|(id, _, m)| m.patient_terms.clone().map(|t| (*id, t)))
        .collect();
    store_patient_terms(tx, &terms).await?;

    let billing: Vec<&healsync_records::AnyRecord> = docs
        .iter()
        .filter_map(|(_, _, m)| m.billing.as_ref())
        .collect();
    crate::billing::store_billing(tx, &billing).await?;

    let appts: Vec<&healsync_domain::Appointment> = docs
        .iter()
        .filter_map(|(_, _, m)| m.appointment.as_ref())
        .collect();
    if !appts.is_empty() {
        sqlx::query(
            "INSERT INTO appointments (doc_id, site, doctor_id, patient_id, start_at, end_at, status)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::timestamptz[], $6::timestamptz[], $7::text[])
             ON CONFLICT (doc_id) DO UPDATE SET site = EXCLUDED.site, doctor_id = EXCLUDED.doctor_id,
                 patient_id = EXCLUDED.patient_id, start_at = EXCLUDED.start_at,
                 end_at = EXCLUDED.end_at, status = EXCLUDED.status",
        )
        .bind(appts.iter().map(|a| a.id.0).collect::<Vec<_>>())
        .bind(appts.iter().map(|a| a.site.clone()).collect::<Vec<_>>())
        .bind(appts.iter().map(|a| a.doctor_id.0).collect::<Vec<_>>())
        .bind(appts.iter().map(|a| a.patient_id.0).collect::<Vec<_>>())
        .bind(appts.iter().map(|a| a.start).collect::<Vec<_>>())
        .bind(appts.iter().map(|a| a.end).collect::<Vec<_>>())
        .bind(appts.iter().map(|a| a.status.as_str().to_string()).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .map_err(db("store appointments"))?;
    }
    Ok(())
}

/// Replaces the search words of these patients (see `patient_terms`).
pub(crate) async fn store_patient_terms(
    tx: &mut Transaction<'_, Postgres>,
    patients: &[(Uuid, Vec<String>)],
) -> Result<(), HubStoreError> {
    if patients.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = patients.iter().map(|(id, _)| *id).collect();
    sqlx::query("DELETE FROM patient_terms WHERE doc_id = ANY($1)")
        .bind(&ids)
        .execute(&mut **tx)
        .await
        .map_err(db("clear patients' search words"))?;
    let (mut term, mut doc) = (Vec::new(), Vec::new());
    for (id, words) in patients {
        for w in words {
            term.push(w.clone());
            doc.push(*id);
        }
    }
    sqlx::query(
        "INSERT INTO patient_terms (term, doc_id) SELECT * FROM UNNEST($1::text[], $2::uuid[])
         ON CONFLICT DO NOTHING",
    )
    .bind(&term)
    .bind(&doc)
    .execute(&mut **tx)
    .await
    .map_err(db("store patients' search words"))?;
    Ok(())
}

/// Edits one document at the hub: locks it, applies `edit` with the hub's actor,
/// appends the new changes to the log, records the owner of a new document, and stores
/// the document with its projections. `None` when the edit changed nothing.
pub(crate) async fn write_at_hub<F>(
    tx: &mut Transaction<'_, Postgres>,
    actor: &ActorId,
    doc_id: Uuid,
    owner_site: &str,
    shared: bool,
    edit: F,
) -> Result<Option<Merged>, HubStoreError>
where
    F: FnOnce(&mut AutoCommit) -> Result<Option<Written>, RecordError>,
{
    let saved: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT bytes FROM documents WHERE doc_id = $1 FOR UPDATE")
            .bind(doc_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db("lock a document"))?;
    let mut doc =
        load(saved.as_deref(), actor).map_err(|e| HubStoreError::Corrupt(e.to_string()))?;
    let Some(written) = edit(&mut doc).map_err(HubStoreError::Record)? else {
        return Ok(None);
    };
    if written.changes.is_empty() {
        return Ok(None);
    }
    let merged = derive(&mut doc, true).map_err(|e| HubStoreError::Corrupt(e.to_string()))?;
    let changes: Vec<Change> = written
        .changes
        .into_iter()
        .map(|(hash, bytes)| Change {
            seq: 0,
            doc_id: *doc_id.as_bytes(),
            kind: merged.kind.clone(),
            hash: hash.0,
            bytes,
        })
        .collect();
    let refs: Vec<&Change> = changes.iter().collect();
    append_changes(tx, HUB_ORIGIN, &refs).await?;
    let existing = owners(tx, &[doc_id]).await?;
    let site = match existing.get(&doc_id) {
        Some(owner) => owner.site.clone(),
        None => {
            sqlx::query(
                "INSERT INTO document_owners (doc_id, kind, site, shared) VALUES ($1, $2, $3, $4)",
            )
            .bind(doc_id)
            .bind(&merged.kind)
            .bind(owner_site)
            .bind(shared && SHARED_KINDS.contains(&merged.kind.as_str()))
            .execute(&mut **tx)
            .await
            .map_err(db("record a document owner"))?;
            owner_site.to_string()
        }
    };
    store_documents(tx, &[(doc_id, site, merged.clone())]).await?;
    Ok(Some(merged))
}

/// Writes a whole record at the hub (a new document, or only its changed fields).
pub(crate) async fn write_record_at_hub<R: Record>(
    tx: &mut Transaction<'_, Postgres>,
    actor: &ActorId,
    owner_site: &str,
    shared: bool,
    record: &R,
) -> Result<Option<Merged>, HubStoreError> {
    write_at_hub(tx, actor, record.id(), owner_site, shared, |doc| {
        write_record(doc, record).map(Some)
    })
    .await
}
