//! Folding the hub's log into documents and projections.
//!
//! Uploads are acknowledged as soon as their raw changes are committed to the log (that
//! is what lets a month of offline work ingest in under 3 s); [`HubStore::materialize`]
//! then folds the log, past `hub_meta.projected_cursor`, into the hub's copy of each
//! document and its projections, in one transaction per step: documents, field
//! conflicts, appointments, and cross-site collisions (each new one is recorded and a
//! notification document is written for each of the two sites), and the clinics'
//! requests for patients of other clinics (answered, and the patients granted; see
//! `scope`). Steps are serialised by the `hub_meta` row lock, so any number of hub
//! replicas may run the loop.

use std::collections::{BTreeMap, HashMap};

use automerge::ActorId;
use chrono::{DateTime, Utc};
use healsync_domain::{AppointmentStatus, Audience, Notification};
use healsync_hub_projection::{Booking, Merged, collision, merge};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use crate::error::db;
use crate::rows::lock_meta;
use crate::{HubStore, HubStoreError, writes};

/// What one materialize step did.
#[derive(Debug, Default)]
pub struct Materialized {
    /// Log entries folded in.
    pub changes: usize,
    /// New cross-site collisions found.
    pub collisions: usize,
    /// More of the log waits past this step.
    pub more: bool,
}

/// Log entries folded per step by [`HubStore::materialize_all`] (and the projector):
/// large enough that the changes a catching-up node sent to one document are mostly
/// merged together (each document loaded and saved once per step), small enough that a
/// step's documents fit comfortably in memory.
pub const MATERIALIZE_STEP: i64 = 25_000;

async fn full_logs(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[Uuid],
    head: i64,
) -> Result<HashMap<Uuid, Vec<Vec<u8>>>, HubStoreError> {
    let mut out: HashMap<Uuid, Vec<Vec<u8>>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows = sqlx::query(
        "SELECT doc_id, bytes FROM changes WHERE doc_id = ANY($1) AND cursor <= $2 ORDER BY cursor",
    )
    .bind(ids)
    .bind(head)
    .fetch_all(&mut **tx)
    .await
    .map_err(db("read a document's whole log"))?;
    for r in rows {
        let id: Uuid = r.try_get("doc_id").map_err(db("read a change"))?;
        out.entry(id)
            .or_default()
            .push(r.try_get("bytes").map_err(db("read a change"))?);
    }
    Ok(out)
}

/// One document to merge: its id, its saved bytes (none: rebuild from the changes), and
/// the raw changes to fold in.
type MergeJob = (Uuid, Option<Vec<u8>>, Vec<Vec<u8>>);
type MergeResult = (
    Uuid,
    Result<Merged, healsync_hub_projection::ProjectionError>,
);

/// Merges on blocking threads, one share of the documents per core (automerge is the
/// CPU cost here, and documents merge independently).
async fn merge_all(jobs: Vec<MergeJob>) -> Result<Vec<MergeResult>, HubStoreError> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let share = jobs.len().div_ceil(cores).max(64);
    let mut jobs = jobs;
    let mut tasks = Vec::new();
    while !jobs.is_empty() {
        let rest = jobs.split_off(share.min(jobs.len()));
        let mine = std::mem::replace(&mut jobs, rest);
        tasks.push(tokio::task::spawn_blocking(move || {
            mine.into_iter()
                .map(|(id, saved, changes)| {
                    let refs: Vec<&[u8]> = changes.iter().map(Vec::as_slice).collect();
                    (id, merge(saved.as_deref(), &refs))
                })
                .collect::<Vec<_>>()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.extend(
            t.await
                .map_err(|e| HubStoreError::Corrupt(format!("a merge task failed: {e}")))?,
        );
    }
    Ok(out)
}

impl HubStore {
    /// Folds up to `max_changes` log entries into documents and projections, in one
    /// transaction. Call until `more` is false.
    pub async fn materialize(&self, max_changes: i64) -> Result<Materialized, HubStoreError> {
        let mut tx = self.pool.begin().await.map_err(db("begin materializing"))?;
        let (projected, actor) = lock_meta(&mut tx).await?;
        let head: i64 = sqlx::query_scalar("SELECT last_cursor FROM log_head")
            .fetch_one(&mut *tx)
            .await
            .map_err(db("read the log head"))?;
        let rows = sqlx::query(
            "SELECT cursor, doc_id, bytes FROM changes
             WHERE cursor > $1 AND cursor <= $2 ORDER BY cursor LIMIT $3",
        )
        .bind(projected)
        .bind(head)
        .bind(max_changes.max(1))
        .fetch_all(&mut *tx)
        .await
        .map_err(db("read the log"))?;
        let Some(last) = rows.last() else {
            // Only grants' blocks (which hold no new changes) lie past the fold.
            if projected < head {
                sqlx::query("UPDATE hub_meta SET projected_cursor = $1")
                    .bind(head)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("record the fold's position"))?;
                tx.commit()
                    .await
                    .map_err(db("commit the fold's position"))?;
            }
            return Ok(Materialized::default());
        };
        let last: i64 = last.try_get("cursor").map_err(db("read a change"))?;
        let mut out = Materialized {
            changes: rows.len(),
            more: last < head,
            ..Materialized::default()
        };
        let mut batch: BTreeMap<Uuid, Vec<Vec<u8>>> = BTreeMap::new();
        for r in rows {
            let id: Uuid = r.try_get("doc_id").map_err(db("read a change"))?;
            batch
                .entry(id)
                .or_default()
                .push(r.try_get("bytes").map_err(db("read a change"))?);
        }
        let ids: Vec<Uuid> = batch.keys().copied().collect();
        let mut saved: HashMap<Uuid, (Vec<u8>, bool)> = HashMap::new();
        for r in sqlx::query(
            "SELECT doc_id, bytes, complete FROM documents WHERE doc_id = ANY($1) FOR UPDATE",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(db("lock documents"))?
        {
            saved.insert(
                r.try_get("doc_id").map_err(db("read a document"))?,
                (
                    r.try_get("bytes").map_err(db("read a document"))?,
                    r.try_get("complete").map_err(db("read a document"))?,
                ),
            );
        }
        let owners = writes::owners(&mut tx, &ids).await?;

        // A document that was waiting for a dependency is rebuilt from its whole log.
        let waiting: Vec<Uuid> = saved
            .iter()
            .filter(|(_, (_, complete))| !complete)
            .map(|(id, _)| *id)
            .collect();
        let mut logs = full_logs(&mut tx, &waiting, head).await?;
        let jobs = batch
            .into_iter()
            .map(|(id, changes)| match logs.remove(&id) {
                Some(all) => (id, None, all),
                None => (id, saved.remove(&id).map(|(b, _)| b), changes),
            })
            .collect();
        let mut merged = Vec::new();
        let mut retry = Vec::new();
        for (id, result) in merge_all(jobs).await? {
            match result {
                Ok(m) if m.complete || waiting.contains(&id) => merged.push((id, m)),
                Ok(_) => retry.push(id),
                Err(e) => tracing::warn!(doc = %id, error = %e, "a document could not be merged"),
            }
        }
        if !retry.is_empty() {
            let logs = full_logs(&mut tx, &retry, head).await?;
            let jobs = logs.into_iter().map(|(id, all)| (id, None, all)).collect();
            for (id, result) in merge_all(jobs).await? {
                match result {
                    Ok(m) => merged.push((id, m)),
                    Err(e) => {
                        tracing::warn!(doc = %id, error = %e, "a document could not be merged")
                    }
                }
            }
        }
        let docs: Vec<(Uuid, String, Merged)> = merged
            .into_iter()
            .map(|(id, m)| {
                let site = owners.get(&id).map(|o| o.site.clone()).unwrap_or_default();
                (id, site, m)
            })
            .collect();
        writes::store_documents(&mut tx, &docs).await?;
        out.collisions = detect_collisions(&mut tx, &actor, &docs).await?;
        crate::scope::answer_requests(&mut tx, &actor, &docs).await?;
        crate::scope::follow_patients(&mut tx, &docs).await?;

        sqlx::query("UPDATE hub_meta SET projected_cursor = $1")
            .bind(last)
            .execute(&mut *tx)
            .await
            .map_err(db("advance the projection cursor"))?;
        tx.commit().await.map_err(db("commit materializing"))?;
        Ok(out)
    }

    /// Folds the whole log in; returns how many entries were folded.
    pub async fn materialize_all(&self) -> Result<usize, HubStoreError> {
        let mut total = 0;
        loop {
            let step = self.materialize(MATERIALIZE_STEP).await?;
            total += step.changes;
            if !step.more {
                return Ok(total);
            }
        }
    }
}

/// Records new cross-site collisions among the merged appointments (one row per pair
/// and kind), announces them, and writes a notification for each site; marks
/// collisions whose appointments no longer hold their time as resolved. Returns how
/// many were new.
async fn detect_collisions(
    tx: &mut Transaction<'_, Postgres>,
    actor: &ActorId,
    docs: &[(Uuid, String, Merged)],
) -> Result<usize, HubStoreError> {
    let appts: Vec<&healsync_domain::Appointment> = docs
        .iter()
        .filter_map(|(_, _, m)| m.appointment.as_ref())
        .collect();
    let holds: Vec<String> = AppointmentStatus::ALL
        .into_iter()
        .filter(|s| s.holds_time())
        .map(|s| s.as_str().to_string())
        .collect();
    // A collision ends when either booking is cancelled, missed, or moved so that the
    // two no longer overlap.
    let touched: Vec<Uuid> = appts.iter().map(|a| a.id.0).collect();
    if !touched.is_empty() {
        sqlx::query(
            "UPDATE cross_site_conflicts x SET resolved_at = now()
             WHERE x.resolved_at IS NULL
               AND (x.first_appointment = ANY($1) OR x.second_appointment = ANY($1))
               AND NOT EXISTS (
                   SELECT 1 FROM appointments a, appointments b
                   WHERE a.doc_id = x.first_appointment AND b.doc_id = x.second_appointment
                     AND a.start_at < b.end_at AND b.start_at < a.end_at
                     AND a.status = ANY($2) AND b.status = ANY($2))",
        )
        .bind(&touched)
        .bind(&holds)
        .execute(&mut **tx)
        .await
        .map_err(db("settle cross-site conflicts"))?;
    }
    let holding: Vec<Booking> = appts
        .iter()
        .filter(|a| a.status.holds_time())
        .map(|a| Booking::from(*a))
        .collect();
    if holding.is_empty() {
        return Ok(0);
    }
    // One indexed look-up by doctor and one by patient (an OR of the two would scan
    // every appointment for every new one); no appointment is longer than a day (slots
    // are at most four hours), which bounds each look-up's range.
    let rows = sqlx::query(
        "WITH n(id, site, doctor, patient, s, e) AS (
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[],
                                  $5::timestamptz[], $6::timestamptz[]))
         SELECT n.id AS new_id, a.doc_id, a.site, a.doctor_id, a.patient_id, a.start_at, a.end_at
         FROM n JOIN appointments a ON a.doctor_id = n.doctor AND a.doc_id <> n.id
              AND a.start_at < n.e AND a.start_at > n.s - interval '1 day' AND a.end_at > n.s
              AND a.status = ANY($7)
         UNION
         SELECT n.id, a.doc_id, a.site, a.doctor_id, a.patient_id, a.start_at, a.end_at
         FROM n JOIN appointments a ON a.patient_id = n.patient AND a.doc_id <> n.id
              AND a.start_at < n.e AND a.start_at > n.s - interval '1 day' AND a.end_at > n.s
              AND a.status = ANY($7)",
    )
    .bind(holding.iter().map(|b| b.id).collect::<Vec<_>>())
    .bind(holding.iter().map(|b| b.site.clone()).collect::<Vec<_>>())
    .bind(holding.iter().map(|b| b.doctor_id).collect::<Vec<_>>())
    .bind(holding.iter().map(|b| b.patient_id).collect::<Vec<_>>())
    .bind(holding.iter().map(|b| b.start).collect::<Vec<_>>())
    .bind(holding.iter().map(|b| b.end).collect::<Vec<_>>())
    .bind(&holds)
    .fetch_all(&mut **tx)
    .await
    .map_err(db("look for cross-site collisions"))?;
    let by_id: HashMap<Uuid, &Booking> = holding.iter().map(|b| (b.id, b)).collect();
    let mut found = Vec::new();
    for r in rows {
        let new_id: Uuid = r.try_get("new_id").map_err(db("read a collision"))?;
        let other = Booking {
            id: r.try_get("doc_id").map_err(db("read a collision"))?,
            site: r.try_get("site").map_err(db("read a collision"))?,
            doctor_id: r.try_get("doctor_id").map_err(db("read a collision"))?,
            patient_id: r.try_get("patient_id").map_err(db("read a collision"))?,
            start: r.try_get("start_at").map_err(db("read a collision"))?,
            end: r.try_get("end_at").map_err(db("read a collision"))?,
        };
        let Some(new) = by_id.get(&new_id) else {
            continue;
        };
        let Some(kind) = collision(new, &other) else {
            continue;
        };
        let (first, second) = if new.id < other.id {
            (*new, &other)
        } else {
            (&other, *new)
        };
        let id = Uuid::now_v7();
        let inserted = sqlx::query(
            "INSERT INTO cross_site_conflicts
                 (id, kind, first_appointment, second_appointment, first_site, second_site)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (first_appointment, second_appointment, kind) DO NOTHING
             RETURNING detected_at",
        )
        .bind(id)
        .bind(kind.as_str())
        .bind(first.id)
        .bind(second.id)
        .bind(&first.site)
        .bind(&second.site)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db("record a cross-site conflict"))?;
        let Some(row) = inserted else { continue };
        let detected_at: DateTime<Utc> =
            row.try_get("detected_at").map_err(db("read a collision"))?;
        for (mine, theirs) in [(first, second), (second, first)] {
            let who = match kind {
                healsync_hub_projection::CollisionKind::Doctor => "The doctor",
                healsync_hub_projection::CollisionKind::Patient => "The patient",
            };
            let note = Notification {
                id: Uuid::now_v7().into(),
                audience: Audience::Doctor(mine.doctor_id.into()),
                kind: "CROSS_SITE_CONFLICT".into(),
                title: "Booked at two sites at once".into(),
                body: format!(
                    "{who} of the appointment at {} on {} is also booked at {} from {} to {}. \
                     Agree with {} which appointment stays.",
                    mine.site,
                    mine.start.format("%Y-%m-%d %H:%M UTC"),
                    theirs.site,
                    theirs.start.format("%H:%M"),
                    theirs.end.format("%H:%M UTC"),
                    theirs.site,
                ),
                appointment_id: Some(mine.id.into()),
                created_at: detected_at,
                read: false,
            };
            writes::write_record_at_hub(tx, actor, &mine.site, false, &note).await?;
        }
        found.push(id);
    }
    crate::events::collisions_found(tx, &found).await?;
    Ok(found.len())
}
