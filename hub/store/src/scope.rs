//! What each node receives (partial replication) and what each site may write.
//!
//! A site's nodes receive the documents the site owns, the shared kinds that every site
//! holds (doctors), and the patients registered elsewhere that have business at the
//! site and the accounts of other clinics that also work at it: those it was
//! *granted*. A grant takes a block of cursors in the hub's log,
//! one per change the patient had when it was granted; when a node's download reaches
//! the block it receives that earlier history at those cursors, in log order, and after
//! the block the patient's new changes come in the ordinary way. The node's download
//! cursor passes the block only in the transaction that applied it, so a crash cannot
//! skip a patient's history, and the protocol needs no new message: the block is just
//! more of the log. A site may edit a shared document only if it holds it.
//!
//! Records about one patient ([`PATIENT_RECORD_KINDS`]: medical record entries,
//! invoices, their voids and payments, coverages, claims, message preferences) follow
//! the patient: when a patient is granted to a site, so are the records about it the
//! hub holds; and when a record is folded in, it is granted to every site that holds
//! its patient (the patient's own site and its grants), provided the site that wrote
//! it holds the patient too. A record about a patient its writer does not hold reaches
//! nobody else, so a stolen node cannot write into another clinic's charts.

use std::collections::HashSet;

use automerge::ActorId;
use healsync_domain::patient_request::REQUESTS_PER_SITE_PER_DAY;
use healsync_domain::{PatientRequest, RequestStatus};
use healsync_hub_projection::Merged;
use healsync_records::{read_record, write_record};
use healsync_sync_protocol::RemoteChange;
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use crate::error::{db, to_i64, to_u64};
use crate::writes::{write_at_hub, write_record_at_hub};
use crate::{HubStore, HubStoreError, site_exists};

/// Shared kinds that reach a site only by a grant (the others reach every site): a
/// patient registered elsewhere, and an account of another clinic that also works at
/// this one (its password hash stays off the nodes of clinics it does not work at).
pub const GRANTED_KINDS: &[&str] = &["patient", "user"];

/// Kinds owned by the site that wrote them whose documents are about one patient
/// (their record's `patientId`) and reach every site holding that patient, by grants.
pub const PATIENT_RECORD_KINDS: &[&str] = &[
    "medical_record",
    "invoice",
    "invoice_void",
    "payment",
    "coverage",
    "claim",
    "message_preference",
];

/// Why a site was granted a document (kept with the grant for admins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantReason {
    /// The hub booked the patient into the site's schedule.
    Booking,
    /// A person asked for the patient to be available at the site.
    Request,
    /// A record about a patient the site holds.
    Patient,
    /// An account that works at the site (`users update --sites`).
    Account,
}

impl GrantReason {
    fn as_str(self) -> &'static str {
        match self {
            GrantReason::Booking => "booking",
            GrantReason::Request => "request",
            GrantReason::Patient => "patient",
            GrantReason::Account => "account",
        }
    }
}

/// Lets `site` see the document `doc_id` from now on, with its whole history, and, for a
/// patient, the records about it ([`PATIENT_RECORD_KINDS`]). `Ok(false)` when the site
/// already holds it (it owns it, it is a kind every site holds, or it was granted
/// before). Takes the log lock, like an append.
pub(crate) async fn grant(
    tx: &mut Transaction<'_, Postgres>,
    doc_id: Uuid,
    site: &str,
    reason: GrantReason,
) -> Result<bool, HubStoreError> {
    let fresh = grant_one(tx, doc_id, site, reason).await?;
    if fresh {
        let kinds: Vec<String> = PATIENT_RECORD_KINDS.iter().map(|k| k.to_string()).collect();
        let records: Vec<Uuid> = sqlx::query_scalar(
            "SELECT doc_id FROM documents WHERE kind = ANY($1) AND record->>'patientId' = $2
             ORDER BY doc_id",
        )
        .bind(&kinds)
        .bind(doc_id.to_string())
        .fetch_all(&mut **tx)
        .await
        .map_err(db("find a patient's records"))?;
        for record in records {
            grant_one(tx, record, site, reason).await?;
        }
    }
    Ok(fresh)
}

/// Grants the records among `docs` (just folded) about a patient to every site that
/// holds the patient, when the site that wrote the record holds it too.
pub(crate) async fn follow_patients(
    tx: &mut Transaction<'_, Postgres>,
    docs: &[(Uuid, String, Merged)],
) -> Result<(), HubStoreError> {
    for (id, writer, m) in docs {
        if !PATIENT_RECORD_KINDS.contains(&m.kind.as_str()) {
            continue;
        }
        let Some(patient) = m
            .record
            .get("patientId")
            .and_then(|p| p.as_str())
            .and_then(|p| Uuid::parse_str(p).ok())
        else {
            continue;
        };
        let holders: Vec<String> = sqlx::query_scalar(
            "SELECT site FROM document_owners WHERE doc_id = $1 AND kind = 'patient'
             UNION SELECT site FROM grants WHERE doc_id = $1 ORDER BY 1",
        )
        .bind(patient)
        .fetch_all(&mut **tx)
        .await
        .map_err(db("find the sites holding a patient"))?;
        if !holders.contains(writer) {
            tracing::warn!(doc = %id, site = %writer, patient = %patient,
                "a record about a patient its site does not hold stays with that site");
            continue;
        }
        for site in holders.iter().filter(|s| *s != writer) {
            grant_one(tx, *id, site, GrantReason::Patient).await?;
        }
    }
    Ok(())
}

async fn grant_one(
    tx: &mut Transaction<'_, Postgres>,
    doc_id: Uuid,
    site: &str,
    reason: GrantReason,
) -> Result<bool, HubStoreError> {
    let owner = sqlx::query("SELECT kind, site FROM document_owners WHERE doc_id = $1")
        .bind(doc_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db("look up a document's owner"))?
        .ok_or(HubStoreError::UnknownDocument(doc_id))?;
    let kind: String = owner.try_get("kind").map_err(db("read an owner"))?;
    let owner_site: String = owner.try_get("site").map_err(db("read an owner"))?;
    let grantable =
        GRANTED_KINDS.contains(&kind.as_str()) || PATIENT_RECORD_KINDS.contains(&kind.as_str());
    if owner_site == site || !grantable {
        return Ok(false);
    }
    // Holding the log lock, every change with a cursor up to the head is committed and
    // visible: the block's size is the document's history, and no later change of it
    // can take a cursor inside the block.
    let head: i64 = sqlx::query_scalar("SELECT last_cursor FROM log_head FOR UPDATE")
        .fetch_one(&mut **tx)
        .await
        .map_err(db("lock the log"))?;
    let history: i64 = sqlx::query_scalar("SELECT count(*) FROM changes WHERE doc_id = $1")
        .bind(doc_id)
        .fetch_one(&mut **tx)
        .await
        .map_err(db("count a document's changes"))?;
    let block = history.max(1);
    let done = sqlx::query(
        "INSERT INTO grants (site, doc_id, first_cursor, last_cursor, reason)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(site)
    .bind(doc_id)
    .bind(head + 1)
    .bind(head + block)
    .bind(reason.as_str())
    .execute(&mut **tx)
    .await
    .map_err(db("record a grant"))?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("UPDATE log_head SET last_cursor = $1")
        .bind(head + block)
        .execute(&mut **tx)
        .await
        .map_err(db("advance the log head"))?;
    Ok(true)
}

/// Answers the clinics' pending requests for patients among `docs` (just folded): the
/// patients with the asked-for medical record number are granted to the requesting
/// site (the site that owns the request, whatever the request says), and the request
/// is edited at the hub with the answer. Both reach the clinic by its next download,
/// the patient's history first.
pub(crate) async fn answer_requests(
    tx: &mut Transaction<'_, Postgres>,
    actor: &ActorId,
    docs: &[(Uuid, String, Merged)],
) -> Result<(), HubStoreError> {
    let pending = docs.iter().filter(|(_, _, m)| {
        m.kind == "patient_request"
            && m.record.get("status").and_then(|s| s.as_str())
                == Some(RequestStatus::Pending.as_str())
    });
    for (id, site, m) in pending {
        // A request that does not read as one (a damaged or forged document) is left
        // unanswered rather than stopping the fold for everyone.
        let request = automerge::AutoCommit::load(&m.bytes)
            .map_err(|e| e.to_string())
            .and_then(|doc| read_record::<PatientRequest>(&doc).map_err(|e| e.to_string()));
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(doc = %id, error = %e, "a patient request does not read; left unanswered");
                continue;
            }
        };
        if !site_exists(tx, site).await? {
            continue;
        }
        let mrn = request.mrn.as_str();
        // A clinic's requests are answered a limited number of times a day: guessing
        // numbers and dates must not be a way to copy another clinic's patients.
        let answered_today: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM documents WHERE kind = 'patient_request' AND site = $1
             AND record->>'status' <> 'PENDING' AND updated_at > now() - interval '1 day'",
        )
        .bind(site)
        .fetch_one(&mut **tx)
        .await
        .map_err(db("count a site's patient requests"))?;
        let found: Vec<(Uuid, String)> = match request.date_of_birth {
            Some(dob) if answered_today < REQUESTS_PER_SITE_PER_DAY => sqlx::query_as(
                "SELECT doc_id, site FROM documents WHERE kind = 'patient' AND record->>'mrn' = $1
                 AND record->>'dateOfBirth' = $2 ORDER BY doc_id",
            )
            .bind(mrn)
            .bind(dob.format("%Y-%m-%d").to_string())
            .fetch_all(&mut **tx)
            .await
            .map_err(db("look up a medical record number"))?,
            _ => vec![],
        };
        for (patient, owner) in &found {
            grant(tx, *patient, site, GrantReason::Request).await?;
            // The patient hears of it (at their own clinic, and wherever they log in).
            let note = healsync_domain::Notification {
                id: Uuid::now_v7().into(),
                audience: healsync_domain::Audience::Patient((*patient).into()),
                kind: "RECORD_SHARED".into(),
                title: "Your record was shared".into(),
                body: format!(
                    "Clinic {site} asked for your record ({mrn}){} and the central office shared it with them.",
                    request
                        .requested_by
                        .as_deref()
                        .map(|u| format!(" through {u}"))
                        .unwrap_or_default()
                ),
                appointment_id: None,
                created_at: chrono::Utc::now(),
                read: false,
            };
            write_record_at_hub(tx, actor, owner, false, &note).await?;
            // And the clinic that holds the record: its administrators see who took
            // a copy of their patient, and when.
            let to_owner = healsync_domain::Notification {
                id: Uuid::now_v7().into(),
                audience: healsync_domain::Audience::Admins,
                kind: "PATIENT_SHARED".into(),
                title: format!("Patient {mrn} shared with {site}"),
                body: format!(
                    "Clinic {site} asked for patient {mrn}{} with a matching date of birth; the record is now shared with them.",
                    request
                        .requested_by
                        .as_deref()
                        .map(|u| format!(" (asked by {u})"))
                        .unwrap_or_default()
                ),
                ..note
            };
            write_record_at_hub(tx, actor, owner, false, &to_owner).await?;
        }
        tracing::info!(
            site = %site, mrn = %mrn, matched = found.len(), requested_by = ?request.requested_by,
            "a clinic asked for another clinic's patient"
        );
        let found: Vec<Uuid> = found.into_iter().map(|(id, _)| id).collect();
        let (status, answer) = match found.len() {
            _ if answered_today >= REQUESTS_PER_SITE_PER_DAY => (
                RequestStatus::Refused,
                format!(
                    "this clinic has asked for {REQUESTS_PER_SITE_PER_DAY} patients today; ask the central office to share the patient"
                ),
            ),
            0 if request.date_of_birth.is_none() => (
                RequestStatus::NotFound,
                "the request carries no date of birth; ask again with the patient's date of birth"
                    .into(),
            ),
            0 => (
                RequestStatus::NotFound,
                format!(
                    "no patient matches {mrn} with that date of birth; check both with the patient, or, if they registered recently, their clinic may not have synced yet"
                ),
            ),
            1 => (
                RequestStatus::Shared,
                format!("patient {mrn} is shared with site {site}"),
            ),
            n => (
                RequestStatus::Shared,
                format!("{n} patients carry the number {mrn}; all are shared with site {site}"),
            ),
        };
        let patient_id = found.first().copied();
        let now = chrono::Utc::now();
        let reply = PatientRequest {
            status,
            patient_id: patient_id.map(Into::into),
            answer: Some(answer),
            updated_at: now,
            ..request
        };
        write_at_hub(tx, actor, *id, site, false, move |doc| {
            write_record(doc, &reply).map(Some)
        })
        .await?;
    }
    Ok(())
}

/// Of `ids`, the documents granted to `site`.
pub(crate) async fn granted(
    tx: &mut Transaction<'_, Postgres>,
    site: &str,
    ids: &[Uuid],
) -> Result<HashSet<Uuid>, HubStoreError> {
    // Most upload batches touch no other site's patient: no query for them.
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    sqlx::query_scalar("SELECT doc_id FROM grants WHERE site = $1 AND doc_id = ANY($2)")
        .bind(site)
        .bind(ids)
        .fetch_all(&mut **tx)
        .await
        .map_err(db("read grants"))
        .map(|v| v.into_iter().collect())
}

impl HubStore {
    /// Makes a patient registered at another site available at `site` (with its whole
    /// history, by the next sync). `Ok(false)` when the site already holds it.
    pub async fn share(
        &self,
        doc_id: Uuid,
        site: &str,
        reason: GrantReason,
    ) -> Result<bool, HubStoreError> {
        let mut tx = self.pool.begin().await.map_err(db("begin a grant"))?;
        if !site_exists(&mut tx, site).await? {
            return Err(HubStoreError::UnknownSite(site.to_string()));
        }
        let fresh = grant(&mut tx, doc_id, site, reason).await?;
        tx.commit().await.map_err(db("commit a grant"))?;
        Ok(fresh)
    }

    /// The sites other than its owner that hold a granted document.
    pub async fn granted_sites(&self, doc_id: Uuid) -> Result<Vec<String>, HubStoreError> {
        sqlx::query_scalar("SELECT site FROM grants WHERE doc_id = $1 ORDER BY site")
            .bind(doc_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db("read grants"))
    }

    /// Changes for a node after `after`: those of documents in its site's scope, not
    /// uploaded by the node itself, and the history of documents granted to the site at
    /// their grant's cursors; about `max_bytes` at most (at least one change if any is
    /// due). Returns the changes, the cursor they reach, and whether more are waiting.
    pub async fn load_changes(
        &self,
        node_id: Uuid,
        site: &str,
        after: u64,
        max_bytes: usize,
    ) -> Result<(Vec<RemoteChange>, u64, bool), HubStoreError> {
        // Rows read per pull (the byte budget usually ends a page first). Large pages
        // let a node catching up merge several changes of a document at once.
        const PAGE: i64 = 40_000;
        // The node asks after what it has applied: that is its sync position.
        sqlx::query(
            "UPDATE nodes SET download_cursor = GREATEST(download_cursor, $2), last_sync_at = now() WHERE id = $1",
        )
        .bind(node_id)
        .bind(to_i64(after))
        .execute(&self.pool)
        .await
        .map_err(db("record the node's download position"))?;
        // One snapshot for the head and the rows: everything at or below the head it
        // reads is committed and visible.
        let mut tx: Transaction<'_, Postgres> = self
            .pool
            .begin()
            .await
            .map_err(db("begin loading changes"))?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db("set the snapshot"))?;
        let head: i64 = sqlx::query_scalar("SELECT last_cursor FROM log_head")
            .fetch_one(&mut *tx)
            .await
            .map_err(db("read the log head"))?;
        let granted_kinds: Vec<String> = GRANTED_KINDS.iter().map(|k| k.to_string()).collect();
        // The ordinary changes in scope, then the history blocks of the site's grants
        // that lie past `after` (each change of the granted document older than the
        // grant, numbered into the block in log order).
        let rows = sqlx::query(
            "SELECT * FROM (
                 SELECT c.cursor, c.doc_id, c.kind, c.hash, c.bytes
                 FROM changes c JOIN document_owners o ON o.doc_id = c.doc_id
                 WHERE c.cursor > $1 AND c.cursor <= $2 AND c.origin_node <> $3
                   AND (o.site = $4
                        OR (o.shared AND o.kind <> ALL($6))
                        OR EXISTS (SELECT 1 FROM grants g WHERE g.site = $4 AND g.doc_id = c.doc_id
                                   AND g.first_cursor < c.cursor))
                 UNION ALL
                 SELECT b.cursor, b.doc_id, b.kind, b.hash, b.bytes FROM (
                     SELECT g.first_cursor - 1 + row_number() OVER (PARTITION BY g.doc_id ORDER BY c.cursor)
                                AS cursor,
                            c.doc_id, c.kind, c.hash, c.bytes
                     FROM grants g JOIN changes c ON c.doc_id = g.doc_id AND c.cursor < g.first_cursor
                     WHERE g.site = $4 AND g.last_cursor > $1 AND g.first_cursor <= $2
                 ) b WHERE b.cursor > $1
             ) x ORDER BY cursor LIMIT $5",
        )
        .bind(to_i64(after))
        .bind(head)
        .bind(node_id)
        .bind(site)
        .bind(PAGE)
        .bind(&granted_kinds)
        .fetch_all(&mut *tx)
        .await
        .map_err(db("load changes"))?;
        tx.commit().await.map_err(db("end loading changes"))?;
        let full_page = rows.len() as i64 == PAGE;
        let mut out = Vec::new();
        let mut size = 0;
        let mut more = false;
        for r in rows {
            let bytes: Vec<u8> = r.try_get("bytes").map_err(db("read a change"))?;
            if !out.is_empty() && size + bytes.len() > max_bytes {
                more = true;
                break;
            }
            size += bytes.len();
            let hash: Vec<u8> = r.try_get("hash").map_err(db("read a change"))?;
            let doc: Uuid = r.try_get("doc_id").map_err(db("read a change"))?;
            out.push(RemoteChange {
                cursor: to_u64(r.try_get("cursor").map_err(db("read a change"))?),
                doc_id: *doc.as_bytes(),
                kind: r.try_get("kind").map_err(db("read a change"))?,
                hash: hash
                    .try_into()
                    .map_err(|_| HubStoreError::Corrupt("a change hash is not 32 bytes".into()))?,
                bytes,
            });
        }
        let through = if more || full_page {
            out.last().map_or(after, |c| c.cursor)
        } else {
            to_u64(head).max(after)
        };
        Ok((out, through, more || full_page))
    }
}
