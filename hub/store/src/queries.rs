//! Reads for central admins: sites and nodes with their sync state, records across
//! sites (typed, or from the generic JSON projection), appointments, schedules,
//! conflicts. The writes an admin makes are in `central`.

use chrono::{DateTime, Utc};
use healsync_domain::{Appointment, Leave, Schedule, User};
use healsync_records::AnyRecord;
use serde_json::Value as Json;
use sqlx::Row;
use uuid::Uuid;

use crate::error::{db, to_u64};
use crate::rows::CrossSiteConflict;
use crate::rows::HUB_ONLY;
use crate::{HubStore, HubStoreError};

/// A site with its nodes' sync state and open conflicts.
#[derive(Debug, Clone)]
pub struct SiteInfo {
    pub code: String,
    pub name: String,
    pub nodes: Vec<NodeState>,
    pub open_conflicts: i64,
}

#[derive(Debug, Clone)]
pub struct NodeState {
    pub id: Uuid,
    pub revoked: bool,
    pub last_sync: Option<DateTime<Utc>>,
    pub upload_acked: u64,
    /// Hub log entries past what the node has applied.
    pub lag: u64,
    /// Changes from this node the hub refused to store.
    pub refused: u64,
}

/// An uploaded change the hub refused, and why.
#[derive(Debug, Clone)]
pub struct RefusalRow {
    pub node_id: Uuid,
    pub site: String,
    pub seq: u64,
    pub doc_id: Uuid,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// One document as the generic projection holds it.
#[derive(Debug, Clone)]
pub struct DocumentRow {
    pub doc_id: Uuid,
    pub kind: String,
    pub site: String,
    pub heads: String,
    pub record: Json,
}

/// A field with concurrent values, at the hub.
#[derive(Debug, Clone)]
pub struct FieldConflictRow {
    pub doc_id: Uuid,
    pub kind: String,
    pub site: String,
    pub field: String,
    pub values: Vec<String>,
    pub detected_at: DateTime<Utc>,
}

/// Filters for [`HubStore::documents`].
#[derive(Debug, Clone, Default)]
pub struct DocumentFilter {
    pub kind: String,
    pub site: Option<String>,
    /// Patients whose search words (name, MRN, e-mail, phone digits) each word of this
    /// text starts (`patient_terms`).
    pub search: Option<String>,
    /// `(field, value)`: the field holds a list (JSON text) with this element, compared
    /// case-insensitively (a doctor's specializations).
    pub element: Option<(String, String)>,
    pub limit: i64,
    pub offset: i64,
    /// Only documents these sites hold (own, or were granted); `None`: every site.
    pub visible_to: Option<Vec<String>>,
}

/// A record read whole from its document, with the site that owns it.
#[derive(Debug, Clone)]
pub struct Typed {
    pub site: String,
    pub record: AnyRecord,
}

/// The SQL condition "the sites in `$n` hold document `d`" (they own it or were
/// granted it), true when `$n` is NULL.
/// The end of the range of terms that start with `word`: under the "C" collation every
/// such term sorts before `word` followed by the last code point (which no search term
/// holds: terms are letters and digits).
fn prefix_end(word: &str) -> String {
    format!("{word}\u{10FFFF}")
}

fn held_by(n: u8) -> String {
    format!(
        "(${n}::text[] IS NULL OR d.site = ANY(${n}) OR EXISTS
          (SELECT 1 FROM grants g WHERE g.doc_id = d.doc_id AND g.site = ANY(${n})))"
    )
}

fn document_row(r: sqlx::postgres::PgRow) -> Result<DocumentRow, sqlx::Error> {
    Ok(DocumentRow {
        doc_id: r.try_get("doc_id")?,
        kind: r.try_get("kind")?,
        site: r.try_get("site")?,
        heads: r.try_get("heads")?,
        record: r.try_get("record")?,
    })
}

pub(crate) fn cross_site_conflict(
    r: sqlx::postgres::PgRow,
) -> Result<CrossSiteConflict, sqlx::Error> {
    Ok(CrossSiteConflict {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        first_appointment: r.try_get("first_appointment")?,
        second_appointment: r.try_get("second_appointment")?,
        first_site: r.try_get("first_site")?,
        second_site: r.try_get("second_site")?,
        detected_at: r.try_get("detected_at")?,
        resolved_at: r.try_get("resolved_at")?,
    })
}

/// `%`, `_` and the escape character itself, escaped for `LIKE ... ESCAPE '\'`.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Which appointments [`HubStore::appointments`] lists.
#[derive(Debug, Clone, Copy)]
pub struct AppointmentQuery<'a> {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub doctors: Option<&'a [Uuid]>,
    pub patient: Option<Uuid>,
    /// One site, as asked for.
    pub site: Option<&'a str>,
    /// The sites the asker may see; `None`: every site.
    pub sites: Option<&'a [String]>,
    /// At most this many (and never more than 2000).
    pub limit: i64,
}

fn appointment_rows(rows: Vec<sqlx::postgres::PgRow>) -> Result<Vec<Appointment>, HubStoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let bytes: Vec<u8> = r.try_get("bytes").map_err(db("read an appointment"))?;
        if let Some(a) = read_typed(&bytes, |r| match r {
            AnyRecord::Appointment(a) => Some(a),
            _ => None,
        })? {
            out.push(a);
        }
    }
    Ok(out)
}

fn typed_rows(rows: Vec<sqlx::postgres::PgRow>) -> Result<Vec<Typed>, HubStoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let site: String = r.try_get("site").map_err(db("read a record"))?;
        let bytes: Vec<u8> = r.try_get("bytes").map_err(db("read a record"))?;
        if let Some(record) = read_typed(&bytes, Some)? {
            out.push(Typed { site, record });
        }
    }
    Ok(out)
}

pub(crate) fn read_typed<T>(
    bytes: &[u8],
    pick: impl Fn(AnyRecord) -> Option<T>,
) -> Result<Option<T>, HubStoreError> {
    let doc = automerge::AutoCommit::load(bytes)
        .map_err(|e| HubStoreError::Corrupt(format!("a stored document does not load: {e}")))?;
    Ok(AnyRecord::read(&doc).ok().and_then(pick))
}

impl HubStore {
    pub async fn sites(&self) -> Result<Vec<SiteInfo>, HubStoreError> {
        let head: i64 = sqlx::query_scalar("SELECT last_cursor FROM log_head")
            .fetch_one(&self.pool)
            .await
            .map_err(db("read the log head"))?;
        let sites = sqlx::query(
            "SELECT s.code, s.name,
                (SELECT count(*) FROM field_conflicts f JOIN documents d USING (doc_id) WHERE d.site = s.code)
              + (SELECT count(*) FROM cross_site_conflicts x
                 WHERE x.resolved_at IS NULL AND (x.first_site = s.code OR x.second_site = s.code)) AS open
             FROM sites s ORDER BY s.code",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("list sites"))?;
        let nodes = sqlx::query(
            "SELECT id, site, revoked_at IS NOT NULL AS revoked, last_sync_at, upload_acked, download_cursor,
                    (SELECT count(*) FROM rejections r WHERE r.node_id = n.id) AS refused
             FROM nodes n ORDER BY enrolled_at",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("list nodes"))?;
        let mut out = Vec::new();
        for s in sites {
            let code: String = s.try_get("code").map_err(db("read a site"))?;
            let mut states = Vec::new();
            for n in &nodes {
                if n.try_get::<String, _>("site").map_err(db("read a node"))? != code {
                    continue;
                }
                let down: i64 = n.try_get("download_cursor").map_err(db("read a node"))?;
                states.push(NodeState {
                    id: n.try_get("id").map_err(db("read a node"))?,
                    revoked: n.try_get("revoked").map_err(db("read a node"))?,
                    last_sync: n.try_get("last_sync_at").map_err(db("read a node"))?,
                    upload_acked: to_u64(n.try_get("upload_acked").map_err(db("read a node"))?),
                    lag: to_u64(head - down),
                    refused: to_u64(n.try_get("refused").map_err(db("read a node"))?),
                });
            }
            out.push(SiteInfo {
                name: s.try_get("name").map_err(db("read a site"))?,
                open_conflicts: s.try_get("open").map_err(db("read a site"))?,
                code,
                nodes: states,
            });
        }
        Ok(out)
    }

    /// Changes the hub refused, newest first (of one node, or of all).
    pub async fn refusals(
        &self,
        node: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<RefusalRow>, HubStoreError> {
        sqlx::query(
            "SELECT r.node_id, n.site, r.seq, r.doc_id, r.reason, r.rejected_at
             FROM rejections r JOIN nodes n ON n.id = r.node_id
             WHERE $1::uuid IS NULL OR r.node_id = $1
             ORDER BY r.rejected_at DESC, r.seq DESC LIMIT $2",
        )
        .bind(node)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list refusals"))?
        .into_iter()
        .map(|r| {
            Ok(RefusalRow {
                node_id: r.try_get("node_id")?,
                site: r.try_get("site")?,
                seq: to_u64(r.try_get("seq")?),
                doc_id: r.try_get("doc_id")?,
                reason: r.try_get("reason")?,
                at: r.try_get("rejected_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db("read a refusal"))
    }

    /// Documents of one kind across sites, newest first.
    pub async fn documents(&self, f: &DocumentFilter) -> Result<Vec<DocumentRow>, HubStoreError> {
        self.filtered(f, "doc_id, kind, site, heads, record")
            .await?
            .into_iter()
            .map(document_row)
            .collect::<Result<_, _>>()
            .map_err(db("read a document"))
    }

    /// [`HubStore::documents`], read whole as typed records (documents that do not
    /// read as a record of their kind are left out).
    pub async fn typed(&self, f: &DocumentFilter) -> Result<Vec<Typed>, HubStoreError> {
        let rows = self.filtered(f, "site, bytes").await?;
        typed_rows(rows)
    }

    /// Records by id, typed, with their sites (for loaders: one query for a page's
    /// patients or doctors). Ids that are not stored are absent.
    pub async fn typed_by_ids(&self, ids: &[Uuid]) -> Result<Vec<Typed>, HubStoreError> {
        let rows = sqlx::query("SELECT site, bytes FROM documents WHERE doc_id = ANY($1)")
            .bind(ids)
            .fetch_all(&self.pool)
            .await
            .map_err(db("read records"))?;
        typed_rows(rows)
    }

    async fn filtered(
        &self,
        f: &DocumentFilter,
        columns: &str,
    ) -> Result<Vec<sqlx::postgres::PgRow>, HubStoreError> {
        // The element as it appears, quoted, inside the list's JSON text; LIKE's own
        // wildcards escaped.
        let (list_field, element) = match &f.element {
            Some((field, value)) => {
                let quoted = serde_json::to_string(&value.trim().to_lowercase())
                    .map_err(|e| HubStoreError::Corrupt(e.to_string()))?;
                (
                    Some(field.clone()),
                    Some(format!("%{}%", like_escape(&quoted))),
                )
            }
            None => (None, None),
        };
        // Each word of a search must start one of the patient's search words. A prefix
        // is the range [word, word + U+10FFFF) under the terms' "C" collation (code
        // point order): unlike `LIKE $n`, a range stays an index range in the generic
        // plan PostgreSQL switches a prepared statement to.
        let words = match f.search.as_deref() {
            Some(search) => {
                let words = healsync_domain::patient::search_words(search);
                match self.rarest_first(&words).await? {
                    Some(words) => words,
                    // A word no patient has: nothing to find.
                    None => return Ok(Vec::new()),
                }
            }
            None => Vec::new(),
        };
        // The matching patients' ids are found in `patient_terms` alone (the rarest
        // word's matches, each kept if the other words start one of its terms too) and
        // sorted newest first there; documents are then read by key for the page only.
        // The `OFFSET 0` keeps the planner from turning the look-up into a walk of the
        // whole documents table in id order (patients are a fraction of it, and the
        // newest documents are rarely patients).
        let (from, order) = match words.split_first() {
            None => ("documents d".to_string(), "d.doc_id"),
            Some((_, others)) => {
                let also: String = (0..others.len())
                    .map(|k| {
                        let n = 10 + 2 * k;
                        format!(
                            " AND EXISTS (SELECT 1 FROM patient_terms o WHERE o.doc_id = t.doc_id
                               AND o.term >= ${n} AND o.term < ${})",
                            n + 1
                        )
                    })
                    .collect();
                (
                    format!(
                        "(SELECT DISTINCT t.doc_id AS found FROM patient_terms t
                           WHERE t.term >= $8 AND t.term < $9{also} ORDER BY t.doc_id DESC) m
                         CROSS JOIN LATERAL
                           (SELECT * FROM documents x WHERE x.doc_id = m.found OFFSET 0) d"
                    ),
                    "m.found",
                )
            }
        };
        let sql = format!(
            "SELECT {columns} FROM {from}
             WHERE kind = $1 AND ($2::text IS NULL OR site = $2)
               AND ($3::text IS NULL OR lower(d.record->>$3) LIKE $4 ESCAPE '\\')
               AND {}
             ORDER BY {order} DESC LIMIT $5 OFFSET $6",
            held_by(7)
        );
        // Built from this function's constants only (`columns` is one of two literals,
        // the word conditions name parameters); every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&f.kind)
            .bind(&f.site)
            .bind(&list_field)
            .bind(&element)
            .bind(f.limit.clamp(1, 500))
            .bind(f.offset.max(0))
            .bind(&f.visible_to);
        for w in &words {
            q = q.bind(w).bind(prefix_end(w));
        }
        q.fetch_all(&self.pool).await.map_err(db("list documents"))
    }

    /// The words of a search, the one that starts the fewest patients' terms first
    /// (counted up to a cap, by index); `None` when one of them starts none.
    async fn rarest_first(&self, words: &[String]) -> Result<Option<Vec<String>>, HubStoreError> {
        if words.len() < 2 {
            return Ok(Some(words.to_vec()));
        }
        // Past this many matches a word is "common"; counting further buys nothing.
        const CAP: i64 = 5_000;
        let counts: String = (0..words.len())
            .map(|k| {
                format!(
                    "(SELECT count(*) FROM (SELECT 1 FROM patient_terms
                       WHERE term >= ${} AND term < ${} LIMIT {CAP}) c)",
                    2 * k + 1,
                    2 * k + 2
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        // Built from this function's constants; every word is bound.
        let mut q = sqlx::query_scalar::<_, Vec<i64>>(sqlx::AssertSqlSafe(format!(
            "SELECT ARRAY[{counts}]"
        )));
        for w in words {
            q = q.bind(w).bind(prefix_end(w));
        }
        let counts = q
            .fetch_one(&self.pool)
            .await
            .map_err(db("count search words"))?;
        if counts.contains(&0) {
            return Ok(None);
        }
        let mut ranked: Vec<(i64, &String)> = counts.into_iter().zip(words).collect();
        ranked.sort_by_key(|(n, _)| *n);
        Ok(Some(ranked.into_iter().map(|(_, w)| w.clone()).collect()))
    }

    /// The newest notifications for one audience (a patient's or a doctor's, or a
    /// site's administrators'), at the sites given or at every site.
    pub async fn notifications(
        &self,
        audience: healsync_domain::Audience,
        sites: Option<&[String]>,
        limit: i64,
    ) -> Result<Vec<Typed>, HubStoreError> {
        let (kind, id) = audience.parts();
        let rows = sqlx::query(
            "SELECT site, bytes FROM documents d
             WHERE kind = 'notification' AND record->>'audienceKind' = $1
               AND record->>'audienceId' = $2 AND ($3::text[] IS NULL OR d.site = ANY($3))
             ORDER BY record->>'createdAt' DESC, doc_id DESC LIMIT $4",
        )
        .bind(kind)
        .bind(id.to_string())
        .bind(sites)
        .bind(limit.clamp(1, 500))
        .fetch_all(&self.pool)
        .await
        .map_err(db("list notifications"))?;
        typed_rows(rows)
    }

    pub async fn document(&self, id: Uuid) -> Result<Option<DocumentRow>, HubStoreError> {
        sqlx::query("SELECT doc_id, kind, site, heads, record FROM documents WHERE doc_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read a document"))?
            .map(document_row)
            .transpose()
            .map_err(db("read a document"))
    }

    /// Heads of every document the hub holds (for convergence checks).
    pub async fn all_heads(&self) -> Result<Vec<(Uuid, String)>, HubStoreError> {
        sqlx::query("SELECT doc_id, heads FROM documents ORDER BY doc_id")
            .fetch_all(&self.pool)
            .await
            .map_err(db("read heads"))?
            .into_iter()
            .map(|r| Ok((r.try_get("doc_id")?, r.try_get("heads")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db("read heads"))
    }

    /// Appointments across sites in `[from, to)`, by start time (at most 2000).
    pub async fn appointments(
        &self,
        q: &AppointmentQuery<'_>,
    ) -> Result<Vec<Appointment>, HubStoreError> {
        let rows = sqlx::query(
            "SELECT d.bytes FROM appointments a JOIN documents d USING (doc_id)
             WHERE a.start_at < $2 AND a.end_at > $1
               AND ($3::uuid[] IS NULL OR a.doctor_id = ANY($3))
               AND ($4::uuid IS NULL OR a.patient_id = $4)
               AND ($5::text IS NULL OR a.site = $5) AND ($6::text[] IS NULL OR a.site = ANY($6))
             ORDER BY a.start_at LIMIT $7",
        )
        .bind(q.from)
        .bind(q.to)
        .bind(q.doctors)
        .bind(q.patient)
        .bind(q.site)
        .bind(q.sites)
        .bind(q.limit.clamp(1, 2000))
        .fetch_all(&self.pool)
        .await
        .map_err(db("list appointments"))?;
        appointment_rows(rows)
    }

    /// One doctor's appointments at the sites given (or every site) in `[from, to)`.
    pub async fn doctor_appointments(
        &self,
        doctor: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        sites: Option<&[String]>,
        limit: i64,
    ) -> Result<Vec<Appointment>, HubStoreError> {
        let doctors = [doctor];
        self.appointments(&AppointmentQuery {
            from,
            to,
            doctors: Some(&doctors),
            patient: None,
            site: None,
            sites,
            limit,
        })
        .await
    }

    /// The latest `per_patient` appointments of each patient, at the sites given (or
    /// every site), oldest first: one query for a page of patients.
    pub async fn appointments_of_patients(
        &self,
        patients: &[Uuid],
        sites: Option<&[String]>,
        per_patient: i64,
    ) -> Result<Vec<Appointment>, HubStoreError> {
        let rows = sqlx::query(
            "SELECT d.bytes FROM (
                 SELECT doc_id, start_at, row_number() OVER
                     (PARTITION BY patient_id ORDER BY start_at DESC) AS n
                 FROM appointments
                 WHERE patient_id = ANY($1) AND ($2::text[] IS NULL OR site = ANY($2))
             ) a JOIN documents d USING (doc_id) WHERE a.n <= $3 ORDER BY a.start_at",
        )
        .bind(patients)
        .bind(sites)
        .bind(per_patient)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list patients' appointments"))?;
        appointment_rows(rows)
    }

    /// A doctor's schedules and leave at every site.
    pub async fn doctor_calendar(
        &self,
        doctor: Uuid,
    ) -> Result<(Vec<Schedule>, Vec<Leave>), HubStoreError> {
        let rows = sqlx::query(
            "SELECT bytes FROM documents WHERE kind IN ('schedule', 'leave') AND record->>'doctorId' = $1",
        )
        .bind(doctor.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db("read a doctor's schedules"))?;
        let (mut schedules, mut leaves) = (Vec::new(), Vec::new());
        for r in rows {
            let bytes: Vec<u8> = r.try_get("bytes").map_err(db("read a schedule"))?;
            match read_typed(&bytes, Some)? {
                Some(AnyRecord::Schedule(s)) if s.active => schedules.push(s),
                Some(AnyRecord::Leave(l)) if !l.cancelled => leaves.push(l),
                _ => {}
            }
        }
        Ok((schedules, leaves))
    }

    pub async fn field_conflicts(
        &self,
        site: Option<&str>,
    ) -> Result<Vec<FieldConflictRow>, HubStoreError> {
        sqlx::query(
            "SELECT f.doc_id, d.kind, d.site, f.field, f.vals, f.detected_at
             FROM field_conflicts f JOIN documents d USING (doc_id)
             WHERE ($1::text IS NULL OR d.site = $1) ORDER BY f.detected_at, f.doc_id, f.field",
        )
        .bind(site)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list conflicts"))?
        .into_iter()
        .map(|r| {
            let vals: Json = r.try_get("vals")?;
            Ok(FieldConflictRow {
                doc_id: r.try_get("doc_id")?,
                kind: r.try_get("kind")?,
                site: r.try_get("site")?,
                field: r.try_get("field")?,
                values: serde_json::from_value(vals).unwrap_or_default(),
                detected_at: r.try_get("detected_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db("read a conflict"))
    }

    pub async fn cross_site_conflicts(
        &self,
        open_only: bool,
    ) -> Result<Vec<CrossSiteConflict>, HubStoreError> {
        sqlx::query(
            "SELECT id, kind, first_appointment, second_appointment, first_site, second_site,
                    detected_at, resolved_at
             FROM cross_site_conflicts WHERE NOT $1 OR resolved_at IS NULL ORDER BY detected_at",
        )
        .bind(open_only)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list cross-site conflicts"))?
        .into_iter()
        .map(cross_site_conflict)
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db("read a cross-site conflict"))
    }

    pub async fn count_users(&self) -> Result<i64, HubStoreError> {
        sqlx::query_scalar("SELECT count(*) FROM documents WHERE kind = 'user'")
            .fetch_one(&self.pool)
            .await
            .map_err(db("count users"))
    }

    /// The accounts with this user name, read from their documents (with their hashes).
    /// Usually one; two sites working offline can each create the same name.
    /// Accounts of this name made at the hub for the hub (not for a site): the only
    /// ones that may log in at the hub. Ownership is the hub's own record of who
    /// created the document, which no node can claim.
    pub async fn hub_accounts_named(&self, username: &str) -> Result<Vec<User>, HubStoreError> {
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT d.bytes FROM documents d JOIN document_owners o ON o.doc_id = d.doc_id
             WHERE d.kind = 'user' AND d.record->>'username' = $1 AND o.site = $2
             ORDER BY d.doc_id",
        )
        .bind(username)
        .bind(HUB_ONLY)
        .fetch_all(&self.pool)
        .await
        .map_err(db("look up a user"))?;
        let mut out = Vec::new();
        for b in rows {
            if let Some(u) = read_typed(&b, |r| match r {
                AnyRecord::User(u) => Some(u),
                _ => None,
            })? {
                out.push(u);
            }
        }
        Ok(out)
    }
}
