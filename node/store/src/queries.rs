//! Read-side queries over the projections. Nothing here loads an automerge document:
//! lists, searches and look-ups are answered from indexed relational rows.

use chrono::{DateTime, NaiveDate, Utc};
use healsync_domain::*;
use healsync_records::{Record, RecordError, ScalarValue};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params_from_iter};

use crate::StoreError;

pub mod billing;

/// Runs a query built at run time with its boxed arguments.
pub(crate) fn boxed<T>(
    conn: &Connection,
    action: &'static str,
    sql: &str,
    args: &[Box<dyn ToSql>],
    f: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let args: Vec<&dyn ToSql> = args.iter().map(|b| b.as_ref()).collect();
    all(conn, action, sql, &args, f)
}

type Result<T> = std::result::Result<T, StoreError>;

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn time(row: &Row<'_>, idx: &str) -> rusqlite::Result<DateTime<Utc>> {
    let v: i64 = row.get(idx)?;
    DateTime::from_timestamp_millis(v).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Integer,
            "time out of range".into(),
        )
    })
}

pub(crate) fn conv_err(e: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.to_string().into())
}

pub(crate) fn id<T: std::str::FromStr<Err = DomainError>>(
    row: &Row<'_>,
    idx: &str,
) -> rusqlite::Result<T> {
    let s: String = row.get(idx)?;
    s.parse::<T>().map_err(conv_err)
}

pub(crate) fn opt_id<T: std::str::FromStr<Err = DomainError>>(
    row: &Row<'_>,
    idx: &str,
) -> rusqlite::Result<Option<T>> {
    let s: Option<String> = row.get(idx)?;
    s.map(|s| s.parse::<T>().map_err(conv_err)).transpose()
}

/// Reads a record of kind `R` from its projection row (which `projection::project`
/// wrote from the same fields), through the kind's own `read`.
pub fn record_row<R: Record>(row: &Row<'_>) -> rusqlite::Result<R> {
    let (_, renames) = crate::projection::table(R::KIND);
    let lookup = |key: &'static str| -> std::result::Result<Option<ScalarValue>, RecordError> {
        let column = crate::projection::column(renames, key);
        let bad = |reason: String| RecordError::Invalid { field: key, reason };
        Ok(Some(
            match row
                .get_ref(column.as_ref())
                .map_err(|e| bad(e.to_string()))?
            {
                ValueRef::Null => ScalarValue::Null,
                ValueRef::Integer(i) => ScalarValue::Int(i),
                ValueRef::Real(f) => ScalarValue::F64(f),
                ValueRef::Text(t) => ScalarValue::Str(
                    std::str::from_utf8(t)
                        .map_err(|e| bad(e.to_string()))?
                        .into(),
                ),
                ValueRef::Blob(_) => return Err(RecordError::WrongType(key)),
            },
        ))
    };
    healsync_records::read_fields(&lookup).map_err(conv_err)
}

pub(crate) fn all<T>(
    conn: &Connection,
    action: &'static str,
    sql: &str,
    args: &[&dyn ToSql],
    f: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(StoreError::sqlite(action))?;
    let rows = stmt
        .query_map(args, f)
        .map_err(StoreError::sqlite(action))?
        .collect::<rusqlite::Result<Vec<T>>>()
        .map_err(StoreError::sqlite(action))?;
    Ok(rows)
}

pub(crate) fn one<T>(
    conn: &Connection,
    action: &'static str,
    sql: &str,
    args: &[&dyn ToSql],
    f: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>> {
    conn.prepare_cached(sql)
        .map_err(StoreError::sqlite(action))?
        .query_row(args, f)
        .optional()
        .map_err(StoreError::sqlite(action))
}

fn by_ids<T>(
    conn: &Connection,
    action: &'static str,
    select: &str,
    column: &str,
    extra: &str,
    ids: &[String],
    f: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(",");
        let sql = format!("{select} WHERE {column} IN ({marks}){extra}");
        let mut stmt = conn.prepare(&sql).map_err(StoreError::sqlite(action))?;
        let rows = stmt
            .query_map(params_from_iter(chunk.iter()), f)
            .map_err(StoreError::sqlite(action))?;
        for r in rows {
            out.push(r.map_err(StoreError::sqlite(action))?);
        }
    }
    Ok(out)
}

// ---- patients ----

/// What a patient list asks for. `search` matches name, MRN, e-mail and phone digits by
/// word prefix; `seen_by` limits to the patients in that doctor's care at that time.
#[derive(Debug, Clone, Default)]
pub struct PatientFilter {
    pub search: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub include_inactive: bool,
    pub seen_by: Option<(DoctorId, DateTime<Utc>)>,
    pub limit: u32,
    pub offset: u32,
}

/// Turns free text into an FTS5 query of prefix terms, keeping only letters and digits
/// so that user input can never be FTS syntax.
pub fn fts_query(text: &str) -> Option<String> {
    let terms: Vec<String> = healsync_domain::patient::search_words(text)
        .into_iter()
        .map(|t| format!("\"{t}\"*"))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

pub fn patients(conn: &Connection, f: &PatientFilter) -> Result<Vec<Patient>> {
    let mut sql = String::from("SELECT * FROM patients p WHERE 1 = 1");
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    if let Some(q) = f.search.as_deref().and_then(fts_query) {
        sql.push_str(" AND p.rowid IN (SELECT rowid FROM patients_fts WHERE patients_fts MATCH ?)");
        args.push(Box::new(q));
    }
    if let Some(d) = f.date_of_birth {
        sql.push_str(" AND p.date_of_birth = ?");
        args.push(Box::new(d.format("%Y-%m-%d").to_string()));
    }
    if !f.include_inactive {
        sql.push_str(" AND p.active = 1");
    }
    if let Some((d, now)) = f.seen_by {
        let (from, to) = healsync_domain::care::window(now);
        sql.push_str(&format!(
            " AND p.id IN (SELECT a.patient_id FROM appointments a WHERE a.doctor_id = ? AND {})",
            care_sql()
        ));
        args.push(Box::new(d.to_string()));
        args.push(Box::new(from.timestamp_millis()));
        args.push(Box::new(to.timestamp_millis()));
    }
    sql.push_str(" ORDER BY p.name COLLATE NOCASE, p.id LIMIT ? OFFSET ?");
    args.push(Box::new(f.limit));
    args.push(Box::new(f.offset));
    let refs: Vec<&dyn ToSql> = args.iter().map(|b| b.as_ref()).collect();
    all(conn, "list patients", &sql, &refs, record_row::<Patient>)
}

pub fn patient(conn: &Connection, id: PatientId) -> Result<Option<Patient>> {
    one(
        conn,
        "load a patient",
        "SELECT * FROM patients WHERE id = ?1",
        &[&id.to_string()],
        record_row::<Patient>,
    )
}

pub fn patients_by_ids(conn: &Connection, ids: &[PatientId]) -> Result<Vec<Patient>> {
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    by_ids(
        conn,
        "load patients",
        "SELECT * FROM patients",
        "id",
        "",
        &ids,
        record_row::<Patient>,
    )
}

pub fn patient_by_email(conn: &Connection, email: &str) -> Result<Option<Patient>> {
    one(
        conn,
        "find a patient by e-mail",
        "SELECT * FROM patients WHERE email = ?1 AND active = 1 LIMIT 1",
        &[&email],
        record_row::<Patient>,
    )
}

/// Whether the doctor has (or had) any appointment with the patient.
/// The SQL condition on `appointments` (aliased `a`) of `healsync_domain::care`: a
/// kept or coming appointment inside the care window. Binds `?from`, `?to` (millis).
fn care_sql() -> String {
    let statuses: Vec<String> = healsync_domain::care::CARE_STATUSES
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!(
        "a.status IN ({}) AND a.start_at BETWEEN ? AND ?",
        statuses.join(", ")
    )
}

/// Whether `doctor` treats `patient` at `now` (`healsync_domain::care`).
pub fn is_patient_of(
    conn: &Connection,
    patient: PatientId,
    doctor: DoctorId,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(!patients_in_care(conn, doctor, &[patient], now)?.is_empty())
}

/// Of `patients`, those `doctor` treats at `now` (`healsync_domain::care`): one query
/// per 500, for the clinical fields of a list.
pub fn patients_in_care(
    conn: &Connection,
    doctor: DoctorId,
    patients: &[PatientId],
    now: DateTime<Utc>,
) -> Result<Vec<PatientId>> {
    let action = "check care relationships";
    let (from, to) = healsync_domain::care::window(now);
    let mut out = Vec::new();
    for chunk in patients.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(",");
        let sql = format!(
            "SELECT DISTINCT a.patient_id FROM appointments a
             WHERE a.doctor_id = ? AND {} AND a.patient_id IN ({marks})",
            care_sql()
        );
        let mut args: Vec<Box<dyn ToSql>> = vec![
            Box::new(doctor.to_string()),
            Box::new(from.timestamp_millis()),
            Box::new(to.timestamp_millis()),
        ];
        args.extend(
            chunk
                .iter()
                .map(|p| Box::new(p.to_string()) as Box<dyn ToSql>),
        );
        let mut stmt = conn
            .prepare_cached(&sql)
            .map_err(StoreError::sqlite(action))?;
        let rows = stmt
            .query_map(params_from_iter(args.iter().map(|b| b.as_ref())), |r| {
                id(r, "patient_id")
            })
            .map_err(StoreError::sqlite(action))?;
        for r in rows {
            out.push(r.map_err(StoreError::sqlite(action))?);
        }
    }
    Ok(out)
}

// ---- doctors, schedules, leave ----

#[derive(Debug, Clone, Default)]
pub struct DoctorFilter {
    pub specialization: Option<String>,
    pub search: Option<String>,
    pub include_inactive: bool,
    pub limit: u32,
    pub offset: u32,
}

pub fn doctors(conn: &Connection, f: &DoctorFilter) -> Result<Vec<Doctor>> {
    let mut sql = String::from("SELECT * FROM doctors d WHERE 1 = 1");
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    if let Some(s) = &f.specialization {
        sql.push_str(
            " AND d.id IN (SELECT doctor_id FROM doctor_specializations WHERE specialization = ?)",
        );
        args.push(Box::new(s.trim().to_string()));
    }
    if let Some(s) = &f.search {
        sql.push_str(" AND d.name LIKE ? ESCAPE '\\'");
        let escaped = s
            .trim()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        args.push(Box::new(format!("%{escaped}%")));
    }
    if !f.include_inactive {
        sql.push_str(" AND d.active = 1");
    }
    sql.push_str(" ORDER BY d.name COLLATE NOCASE, d.id LIMIT ? OFFSET ?");
    args.push(Box::new(f.limit));
    args.push(Box::new(f.offset));
    let refs: Vec<&dyn ToSql> = args.iter().map(|b| b.as_ref()).collect();
    all(conn, "list doctors", &sql, &refs, record_row::<Doctor>)
}

pub fn doctor(conn: &Connection, id: DoctorId) -> Result<Option<Doctor>> {
    one(
        conn,
        "load a doctor",
        "SELECT * FROM doctors WHERE id = ?1",
        &[&id.to_string()],
        record_row::<Doctor>,
    )
}

pub fn doctors_by_ids(conn: &Connection, ids: &[DoctorId]) -> Result<Vec<Doctor>> {
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    by_ids(
        conn,
        "load doctors",
        "SELECT * FROM doctors",
        "id",
        "",
        &ids,
        record_row::<Doctor>,
    )
}

pub fn schedules_of(conn: &Connection, doctor: DoctorId) -> Result<Vec<Schedule>> {
    all(
        conn,
        "load schedules",
        "SELECT * FROM schedules WHERE doctor_id = ?1 ORDER BY site, id",
        &[&doctor.to_string()],
        record_row::<Schedule>,
    )
}

pub fn schedule(conn: &Connection, id: ScheduleId) -> Result<Option<Schedule>> {
    one(
        conn,
        "load a schedule",
        "SELECT * FROM schedules WHERE id = ?1",
        &[&id.to_string()],
        record_row::<Schedule>,
    )
}

/// The doctor's leave that overlaps `[from, to)`, cancelled leave included.
pub fn leaves_of(
    conn: &Connection,
    doctor: DoctorId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Leave>> {
    all(
        conn,
        "load leave",
        "SELECT * FROM leaves WHERE doctor_id = ?1 AND end_at > ?2 AND start_at < ?3 ORDER BY start_at, id",
        &[&doctor.to_string(), &ms(from), &ms(to)],
        record_row::<Leave>,
    )
}

pub fn leave(conn: &Connection, id: LeaveId) -> Result<Option<Leave>> {
    one(
        conn,
        "load a leave",
        "SELECT * FROM leaves WHERE id = ?1",
        &[&id.to_string()],
        record_row::<Leave>,
    )
}

// ---- appointments ----

#[derive(Debug, Clone, Default)]
pub struct AppointmentFilter {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub doctor: Option<DoctorId>,
    pub patient: Option<PatientId>,
    pub status: Option<AppointmentStatus>,
    pub limit: u32,
    pub offset: u32,
}

pub fn appointments(conn: &Connection, f: &AppointmentFilter) -> Result<Vec<Appointment>> {
    let mut sql = String::from("SELECT * FROM appointments a WHERE 1 = 1");
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    if let Some(t) = f.from {
        sql.push_str(" AND a.start_at >= ?");
        args.push(Box::new(ms(t)));
    }
    if let Some(t) = f.to {
        sql.push_str(" AND a.start_at < ?");
        args.push(Box::new(ms(t)));
    }
    if let Some(d) = f.doctor {
        sql.push_str(" AND a.doctor_id = ?");
        args.push(Box::new(d.to_string()));
    }
    if let Some(p) = f.patient {
        sql.push_str(" AND a.patient_id = ?");
        args.push(Box::new(p.to_string()));
    }
    if let Some(s) = f.status {
        sql.push_str(" AND a.status = ?");
        args.push(Box::new(s.as_str()));
    }
    sql.push_str(" ORDER BY a.start_at, a.id LIMIT ? OFFSET ?");
    args.push(Box::new(f.limit));
    args.push(Box::new(f.offset));
    let refs: Vec<&dyn ToSql> = args.iter().map(|b| b.as_ref()).collect();
    all(
        conn,
        "list appointments",
        &sql,
        &refs,
        record_row::<Appointment>,
    )
}

pub fn appointment(conn: &Connection, id: AppointmentId) -> Result<Option<Appointment>> {
    one(
        conn,
        "load an appointment",
        "SELECT * FROM appointments WHERE id = ?1",
        &[&id.to_string()],
        record_row::<Appointment>,
    )
}

pub fn appointments_of_patients(conn: &Connection, ids: &[PatientId]) -> Result<Vec<Appointment>> {
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    by_ids(
        conn,
        "load appointments",
        "SELECT * FROM appointments",
        "patient_id",
        "",
        &ids,
        record_row::<Appointment>,
    )
}

pub fn appointments_of_doctors(
    conn: &Connection,
    ids: &[DoctorId],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Appointment>> {
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    // The bounds are integers formatted here, never user text.
    let range = format!(" AND start_at >= {} AND start_at < {}", ms(from), ms(to));
    by_ids(
        conn,
        "load appointments",
        "SELECT * FROM appointments",
        "doctor_id",
        &range,
        &ids,
        record_row::<Appointment>,
    )
}

/// Appointments that hold time (not cancelled, not no-show) and overlap `[start, end)`,
/// for one doctor or one patient, leaving out `except` (the appointment being moved).
pub fn holding_overlaps(
    conn: &Connection,
    who: Who,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    except: Option<AppointmentId>,
) -> Result<Vec<Appointment>> {
    let (column, id) = match who {
        Who::Doctor(d) => ("doctor_id", d.to_string()),
        Who::Patient(p) => ("patient_id", p.to_string()),
    };
    let sql = format!(
        "SELECT * FROM appointments WHERE {column} = ?1 AND start_at < ?2 AND end_at > ?3
         AND status IN ('BOOKED', 'CHECKED_IN', 'COMPLETED') AND id != ?4"
    );
    let except = except.map(|e| e.to_string()).unwrap_or_default();
    all(
        conn,
        "check overlapping appointments",
        &sql,
        &[&id, &ms(end), &ms(start), &except],
        record_row::<Appointment>,
    )
}

#[derive(Debug, Clone, Copy)]
pub enum Who {
    Doctor(DoctorId),
    Patient(PatientId),
}

// ---- notifications ----

pub fn notifications_for(
    conn: &Connection,
    audience: Audience,
    unread_only: bool,
    limit: u32,
    offset: u32,
) -> Result<Vec<Notification>> {
    let (kind, id) = audience.parts();
    let id = id.to_string();
    let sql = if unread_only {
        "SELECT * FROM notifications WHERE audience_kind = ?1 AND audience_id = ?2 AND read = 0 ORDER BY created_at DESC, id DESC LIMIT ?3 OFFSET ?4"
    } else {
        "SELECT * FROM notifications WHERE audience_kind = ?1 AND audience_id = ?2 ORDER BY created_at DESC, id DESC LIMIT ?3 OFFSET ?4"
    };
    all(
        conn,
        "list notifications",
        sql,
        &[&kind, &id, &limit, &offset],
        record_row::<Notification>,
    )
}

/// The notices about one appointment, oldest first.
pub fn notifications_about(
    conn: &Connection,
    appointment: AppointmentId,
) -> Result<Vec<Notification>> {
    all(
        conn,
        "list an appointment's notices",
        "SELECT * FROM notifications WHERE appointment_id = ?1 ORDER BY created_at, id",
        &[&appointment.to_string()],
        record_row::<Notification>,
    )
}

pub fn notification(conn: &Connection, id: NotificationId) -> Result<Option<Notification>> {
    one(
        conn,
        "load a notification",
        "SELECT * FROM notifications WHERE id = ?1",
        &[&id.to_string()],
        record_row::<Notification>,
    )
}

// ---- requests for patients of other clinics ----

/// The clinic's requests for patients held elsewhere, newest first.
pub fn patient_requests(conn: &Connection, limit: u32, offset: u32) -> Result<Vec<PatientRequest>> {
    all(
        conn,
        "list patient requests",
        "SELECT * FROM patient_requests ORDER BY created_at DESC, id DESC LIMIT ?1 OFFSET ?2",
        &[&limit, &offset],
        record_row::<PatientRequest>,
    )
}

pub fn patient_request(conn: &Connection, id: PatientRequestId) -> Result<Option<PatientRequest>> {
    one(
        conn,
        "load a patient request",
        "SELECT * FROM patient_requests WHERE id = ?1",
        &[&id.to_string()],
        record_row::<PatientRequest>,
    )
}

/// The unanswered request for this medical record number, if there is one.
pub fn pending_request(conn: &Connection, mrn: &str) -> Result<Option<PatientRequest>> {
    one(
        conn,
        "look up a pending request",
        "SELECT * FROM patient_requests WHERE mrn = ?1 AND status = 'PENDING' LIMIT 1",
        &[&mrn],
        record_row::<PatientRequest>,
    )
}

/// The patient with this medical record number, if the clinic holds it.
pub fn patient_by_mrn(conn: &Connection, mrn: &str) -> Result<Option<Patient>> {
    one(
        conn,
        "look up a medical record number",
        "SELECT * FROM patients WHERE mrn = ?1",
        &[&mrn],
        record_row::<Patient>,
    )
}

// ---- users ----

/// Active accounts with this user name (normally one; two sites could each have created
/// one while offline).
pub fn users_named(conn: &Connection, username: &str) -> Result<Vec<User>> {
    all(
        conn,
        "find a user",
        "SELECT * FROM users WHERE username = ?1 AND active = 1 ORDER BY id",
        &[&username],
        record_row::<User>,
    )
}

/// Every account with whether this node wrote its first version (`created_here`, what
/// [`User::admitted_at`] asks of an account older than site-scoped roles). The node's
/// session gate holds this in memory; a clinic has hundreds of accounts, not millions.
pub fn accounts(conn: &Connection) -> Result<Vec<(User, bool)>> {
    all(
        conn,
        "list accounts",
        "SELECT u.*, coalesce((SELECT c.local FROM change_log c WHERE c.doc_id = u.id
                                ORDER BY c.seq LIMIT 1), 0) AS created_here
         FROM users u",
        &[],
        |row| Ok((record_row::<User>(row)?, row.get("created_here")?)),
    )
}

/// The ids of the sessions ended one by one that have not expired yet.
pub fn ended_sessions(conn: &Connection, now: DateTime<Utc>) -> Result<Vec<String>> {
    all(
        conn,
        "list ended sessions",
        "SELECT id FROM ended_sessions WHERE expires_at >= ?1",
        &[&now.timestamp()],
        |row| row.get(0),
    )
}

pub fn user(conn: &Connection, id: UserId) -> Result<Option<User>> {
    one(
        conn,
        "load a user",
        "SELECT * FROM users WHERE id = ?1",
        &[&id.to_string()],
        record_row::<User>,
    )
}

pub fn count_users(conn: &Connection) -> Result<i64> {
    conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .map_err(StoreError::sqlite("count users"))
}

pub fn count_doctors(conn: &Connection) -> Result<i64> {
    conn.query_row("SELECT count(*) FROM doctors", [], |r| r.get(0))
        .map_err(StoreError::sqlite("count doctors"))
}

/// Change-log entries written since `after` (exclusive).
pub fn change_log_len(conn: &Connection) -> Result<i64> {
    conn.query_row("SELECT count(*) FROM change_log WHERE local = 1", [], |r| {
        r.get(0)
    })
    .map_err(StoreError::sqlite("count the change log"))
}

// ---- conflicts ----

/// A field of a record that holds several different values after concurrent edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub doc_id: uuid::Uuid,
    pub kind: String,
    pub field: String,
    pub values: Vec<String>,
    /// The patient the record is about, when it is about one: showing its values is a
    /// read of health data.
    pub patient_id: Option<PatientId>,
}

/// The conflicts' columns and the patient each record is about (from the
/// projections of the kinds about a patient that can conflict).
const CONFLICT_COLUMNS: &str = "c.*, COALESCE(
        (SELECT id FROM patients WHERE id = c.doc_id),
        (SELECT patient_id FROM appointments WHERE id = c.doc_id),
        (SELECT patient_id FROM invoices WHERE id = c.doc_id),
        (SELECT patient_id FROM payments WHERE id = c.doc_id),
        (SELECT patient_id FROM coverages WHERE id = c.doc_id),
        (SELECT patient_id FROM claims WHERE id = c.doc_id)) AS subject";

fn conflict_row(row: &Row<'_>) -> rusqlite::Result<Conflict> {
    let id: String = row.get("doc_id")?;
    let values: String = row.get("values")?;
    Ok(Conflict {
        doc_id: uuid::Uuid::parse_str(&id).map_err(conv_err)?,
        kind: row.get("kind")?,
        field: row.get("field")?,
        values: serde_json::from_str(&values).map_err(conv_err)?,
        patient_id: opt_id(row, "subject")?,
    })
}

/// Open conflicts, by record then field.
pub fn conflicts(conn: &Connection, limit: u32, offset: u32) -> Result<Vec<Conflict>> {
    all(
        conn,
        "list conflicts",
        &format!(
            "SELECT {CONFLICT_COLUMNS} FROM conflicts c ORDER BY doc_id, field LIMIT ?1 OFFSET ?2"
        ),
        &[&limit, &offset],
        conflict_row,
    )
}

/// The open conflicts of one record.
pub fn conflicts_of(conn: &Connection, doc_id: uuid::Uuid) -> Result<Vec<Conflict>> {
    all(
        conn,
        "list a record's conflicts",
        &format!("SELECT {CONFLICT_COLUMNS} FROM conflicts c WHERE doc_id = ?1 ORDER BY field"),
        &[&doc_id.to_string()],
        conflict_row,
    )
}

pub fn count_conflicts(conn: &Connection) -> Result<i64> {
    conn.query_row("SELECT count(*) FROM conflicts", [], |r| r.get(0))
        .map_err(StoreError::sqlite("count conflicts"))
}

// ---- medical records ----

/// A clinical entry with the entries that correct it (amend or retract it).
#[derive(Debug, Clone, PartialEq)]
pub struct EntryRow {
    pub entry: MedicalRecord,
    pub corrected_by: Vec<MedicalRecordId>,
}

impl EntryRow {
    /// Whether the entry states a current fact (`healsync_domain::clinical::is_current`).
    pub fn is_current(&self) -> bool {
        clinical::is_current(&self.entry, !self.corrected_by.is_empty())
    }
}

/// Selects entries (aliased `m`) with their correcting entries' ids.
const ENTRY_SELECT: &str = "SELECT m.*, (SELECT group_concat(c.id) FROM medical_records c
     WHERE c.corrects = m.id) AS corrected_by FROM medical_records m";

/// The SQL form of `clinical::is_current` on `m`: nothing corrects it and it is not a
/// retraction.
const CURRENT_SQL: &str = "NOT EXISTS (SELECT 1 FROM medical_records c WHERE c.corrects = m.id)
     AND (m.correction IS NULL OR m.correction <> 'RETRACTS')";

fn entry_row(row: &Row<'_>) -> rusqlite::Result<EntryRow> {
    let corrected_by: Option<String> = row.get("corrected_by")?;
    let mut corrected_by = corrected_by
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<MedicalRecordId>().map_err(conv_err))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    corrected_by.sort();
    Ok(EntryRow {
        entry: record_row(row)?,
        corrected_by,
    })
}

/// What a history asks for: entry types (all when empty), a `recordedAt` range, the
/// latest `limit` entries, and whether corrected and retracted entries are left out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct HistoryFilter {
    pub types: Vec<&'static str>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub current_only: bool,
    pub limit: u32,
}

/// The histories of several patients under one filter, with one query: each
/// patient's latest `limit` entries, oldest first.
pub fn medical_histories(
    conn: &Connection,
    patients: &[PatientId],
    f: &HistoryFilter,
) -> Result<Vec<EntryRow>> {
    let action = "read medical histories";
    let mut out = Vec::new();
    for chunk in patients.chunks(200) {
        let marks = vec!["?"; chunk.len()].join(",");
        let mut cond = format!("m.patient_id IN ({marks})");
        let mut args: Vec<Box<dyn ToSql>> = chunk
            .iter()
            .map(|p| Box::new(p.to_string()) as Box<dyn ToSql>)
            .collect();
        if !f.types.is_empty() {
            cond.push_str(&format!(
                " AND m.type IN ({})",
                vec!["?"; f.types.len()].join(",")
            ));
            args.extend(f.types.iter().map(|t| Box::new(*t) as Box<dyn ToSql>));
        }
        if let Some(from) = f.from {
            cond.push_str(" AND m.recorded_at >= ?");
            args.push(Box::new(ms(from)));
        }
        if let Some(to) = f.to {
            cond.push_str(" AND m.recorded_at < ?");
            args.push(Box::new(ms(to)));
        }
        if f.current_only {
            cond.push_str(&format!(" AND {CURRENT_SQL}"));
        }
        args.push(Box::new(i64::from(f.limit)));
        // One patient (a chart): walk the (patient, recorded_at) index from the newest
        // entry and stop at `limit`, so a long chart costs its last `limit` entries.
        // Several (a list): one window over their entries.
        let sql = if chunk.len() == 1 {
            format!(
                "SELECT * FROM ({ENTRY_SELECT} WHERE {cond}
                     ORDER BY m.recorded_at DESC, m.id DESC LIMIT ?)
                 ORDER BY recorded_at, id"
            )
        } else {
            format!(
                "SELECT * FROM (
                     SELECT x.*, row_number() OVER (PARTITION BY x.patient_id
                         ORDER BY x.recorded_at DESC, x.id DESC) AS nth
                     FROM ({ENTRY_SELECT} WHERE {cond}) x
                 ) WHERE nth <= ? ORDER BY patient_id, recorded_at, id"
            )
        };
        let mut stmt = conn
            .prepare_cached(&sql)
            .map_err(StoreError::sqlite(action))?;
        let rows = stmt
            .query_map(params_from_iter(args.iter().map(|b| b.as_ref())), entry_row)
            .map_err(StoreError::sqlite(action))?;
        for r in rows {
            out.push(r.map_err(StoreError::sqlite(action))?);
        }
    }
    Ok(out)
}

/// One entry, with its corrections.
pub fn medical_record(conn: &Connection, id: MedicalRecordId) -> Result<Option<EntryRow>> {
    one(
        conn,
        "read a medical record",
        &format!("{ENTRY_SELECT} WHERE m.id = ?1"),
        &[&id.to_string()],
        entry_row,
    )
}

/// A patient's current entries of one type (and status, where given), newest first:
/// what a summary shows.
pub fn current_entries(
    conn: &Connection,
    patient: PatientId,
    entry_type: EntryType,
    status: Option<&str>,
    limit: u32,
) -> Result<Vec<EntryRow>> {
    all(
        conn,
        "read current medical records",
        &format!(
            "{ENTRY_SELECT} WHERE m.patient_id = ?1 AND m.type = ?2
               AND (?3 IS NULL OR m.status = ?3) AND {CURRENT_SQL}
             ORDER BY m.recorded_at DESC, m.id DESC LIMIT ?4"
        ),
        &[
            &patient.to_string(),
            &entry_type.as_str(),
            &status,
            &i64::from(limit),
        ],
        entry_row,
    )
}

/// The substances every allergy entry of a patient names, current or not.
pub fn allergy_substances(conn: &Connection, patient: PatientId) -> Result<Vec<String>> {
    all(
        conn,
        "read a patient's allergy entries",
        "SELECT json_extract(details, '$.substance') AS s FROM medical_records
         WHERE patient_id = ?1 AND type = 'ALLERGY' AND s IS NOT NULL",
        &[&patient.to_string()],
        |r| r.get("s"),
    )
}

/// Patients of `site` with an intake allergy list, by id after `after`, `limit` at a time.
pub fn patients_with_intake_allergies(
    conn: &Connection,
    site: &str,
    after: Option<PatientId>,
    limit: u32,
) -> Result<Vec<Patient>> {
    all(
        conn,
        "find patients with intake allergies",
        "SELECT * FROM patients WHERE site = ?1 AND allergies <> '[]' AND id > ?2
         ORDER BY id LIMIT ?3",
        &[
            &site,
            &after.map(|a| a.to_string()).unwrap_or_default(),
            &limit,
        ],
        record_row::<Patient>,
    )
}

/// Whether the one-time step `name` (a data migration done in Rust, recorded with
/// `WriteTx::mark_done`) has run on this node.
pub fn step_done(conn: &Connection, name: &str) -> Result<bool> {
    Ok(one(
        conn,
        "read a one-time step",
        "SELECT 1 FROM meta WHERE key = ?1",
        &[&format!("done.{name}")],
        |_| Ok(()),
    )?
    .is_some())
}
