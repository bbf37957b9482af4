//! Projections: the relational rows derived from each record's document, and the proof
//! that they can be rebuilt from the documents alone.

use std::borrow::Cow;

use healsync_records::{AnyRecord, RecordKind, ScalarValue};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use crate::StoreError;

/// Every projection table, each with the column that orders it for comparison.
const TABLES: &[(&str, &str)] = &[
    ("patients", "id"),
    ("doctors", "id"),
    ("doctor_specializations", "doctor_id, specialization"),
    ("schedules", "id"),
    ("leaves", "id"),
    ("appointments", "id"),
    ("notifications", "id"),
    ("users", "id"),
    ("patient_requests", "id"),
    ("medical_records", "id"),
    ("invoices", "id"),
    ("invoice_voids", "id"),
    ("payments", "id"),
    ("price_items", "id"),
    ("coverages", "id"),
    ("claims", "id"),
    ("message_preferences", "id"),
    ("conflicts", "doc_id, field"),
];

fn sql(action: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    StoreError::sqlite(action)
}

/// Each kind's projection table, and the document keys whose column is not the key in
/// snake case (`dateOfBirth` → `date_of_birth`, `address.line1` → `address_line1`).
/// With each kind's `write`/`read` (in `healsync-records`), this is all a kind needs:
/// the row is written from the record's fields and read back through the same `read`
/// as its document.
pub(crate) fn table(kind: RecordKind) -> (&'static str, &'static [(&'static str, &'static str)]) {
    const PATIENT: &[(&str, &str)] = &[
        ("emergencyContact.name", "ec_name"),
        ("emergencyContact.phone", "ec_phone"),
        ("emergencyContact.relationship", "ec_relationship"),
    ];
    const SPAN: &[(&str, &str)] = &[("start", "start_at"), ("end", "end_at")];
    match kind {
        RecordKind::Patient => ("patients", PATIENT),
        RecordKind::Doctor => ("doctors", &[]),
        RecordKind::Schedule => ("schedules", &[]),
        RecordKind::Leave => ("leaves", SPAN),
        RecordKind::Appointment => ("appointments", SPAN),
        RecordKind::Notification => ("notifications", &[]),
        RecordKind::User => ("users", &[]),
        RecordKind::PatientRequest => ("patient_requests", &[]),
        RecordKind::MedicalRecord => ("medical_records", &[]),
        RecordKind::Invoice => ("invoices", &[]),
        RecordKind::InvoiceVoid => ("invoice_voids", &[]),
        RecordKind::Payment => ("payments", &[]),
        RecordKind::PriceItem => ("price_items", &[]),
        RecordKind::Coverage => ("coverages", &[]),
        RecordKind::Claim => ("claims", &[]),
        RecordKind::MessagePreference => ("message_preferences", &[]),
    }
}

/// The column that holds the document field `key`.
pub(crate) fn column(
    renames: &[(&'static str, &'static str)],
    key: &'static str,
) -> Cow<'static, str> {
    if let Some((_, c)) = renames.iter().find(|(k, _)| *k == key) {
        return Cow::Borrowed(c);
    }
    if !key.bytes().any(|b| b == b'.' || b.is_ascii_uppercase()) {
        return Cow::Borrowed(key);
    }
    let mut out = String::with_capacity(key.len() + 4);
    for ch in key.chars() {
        match ch {
            '.' => out.push('_'),
            c if c.is_ascii_uppercase() => {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn sql_value(key: &str, v: ScalarValue) -> Result<Value, StoreError> {
    Ok(match v {
        ScalarValue::Null => Value::Null,
        ScalarValue::Str(s) => Value::Text(s.to_string()),
        ScalarValue::Int(i) | ScalarValue::Timestamp(i) => Value::Integer(i),
        ScalarValue::Uint(u) => Value::Integer(
            i64::try_from(u)
                .map_err(|_| StoreError::Corrupt(format!("field {key}: {u} is out of range")))?,
        ),
        ScalarValue::Boolean(b) => Value::Integer(i64::from(b)),
        ScalarValue::F64(f) => Value::Real(f),
        other => {
            return Err(StoreError::Corrupt(format!(
                "field {key}: {other:?} has no column type"
            )));
        }
    })
}

/// Inserts or updates the row of `kind` from the record's fields plus `extra` columns
/// derived for queries (a search key, totals, a status).
fn upsert(
    conn: &Connection,
    kind: RecordKind,
    fields: Vec<(&'static str, ScalarValue)>,
    extra: Vec<(&'static str, Value)>,
) -> Result<(), StoreError> {
    let (table, renames) = table(kind);
    let mut columns = Vec::with_capacity(fields.len() + extra.len());
    let mut values = Vec::with_capacity(fields.len() + extra.len());
    for (key, v) in fields {
        columns.push(column(renames, key));
        values.push(sql_value(key, v)?);
    }
    for (c, v) in extra {
        columns.push(Cow::Borrowed(c));
        values.push(v);
    }
    let list = columns
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let slots = (1..=columns.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    // `id` comes first; an existing row is updated in place (its rowid, which the
    // patients' full-text index follows, stays).
    let updates = columns
        .iter()
        .skip(1)
        .map(|c| format!("\"{c}\" = excluded.\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    conn.prepare_cached(&format!(
        "INSERT INTO {table}({list}) VALUES ({slots}) ON CONFLICT(id) DO UPDATE SET {updates}"
    ))
    .map_err(sql("prepare a projection"))?
    .execute(rusqlite::params_from_iter(values))
    .map_err(sql("project a record"))?;
    Ok(())
}

/// Writes (inserts or replaces) the projection rows of one record: its fields, and the
/// few columns and rows derived from them for queries.
pub fn project(conn: &Connection, record: &AnyRecord) -> Result<(), StoreError> {
    let fields = record
        .fields()
        .map_err(StoreError::record(&record.id().to_string()))?;
    let extra = match record {
        AnyRecord::Patient(p) => vec![(
            "phone_digits",
            p.phone
                .as_deref()
                .map(healsync_domain::patient::phone_digits)
                .map_or(Value::Null, Value::Text),
        )],
        AnyRecord::MedicalRecord(m) => vec![(
            "status",
            m.details
                .status()
                .map_or(Value::Null, |s| Value::Text(s.to_string())),
        )],
        AnyRecord::Invoice(i) => {
            let t = i.totals();
            vec![
                ("gross", Value::Integer(t.gross)),
                ("discount", Value::Integer(t.discount)),
                ("tax", Value::Integer(t.tax)),
                ("total", Value::Integer(t.total)),
            ]
        }
        _ => vec![],
    };
    upsert(conn, record.kind(), fields, extra)?;
    if let AnyRecord::Doctor(d) = record {
        let id = d.id.to_string();
        conn.execute(
            "DELETE FROM doctor_specializations WHERE doctor_id = ?1",
            [&id],
        )
        .map_err(sql("project specializations"))?;
        for s in &d.specializations {
            conn.execute(
                "INSERT OR IGNORE INTO doctor_specializations(doctor_id, specialization) VALUES (?1, ?2)",
                params![id, s],
            )
            .map_err(sql("project specializations"))?;
        }
    }
    Ok(())
}

/// Replaces the conflict rows of one document with what the document holds now.
pub fn project_conflicts(
    conn: &Connection,
    doc_id: &str,
    kind: &str,
    doc: &automerge::AutoCommit,
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM conflicts WHERE doc_id = ?1")
        .map_err(sql("prepare clearing conflicts"))?
        .execute([doc_id])
        .map_err(sql("clear conflicts"))?;
    for c in healsync_records::conflicts(doc).map_err(StoreError::record(doc_id))? {
        conn.prepare_cached(
            "INSERT INTO conflicts(doc_id, kind, field, \"values\") VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(sql("prepare recording a conflict"))?
        .execute(params![doc_id, kind, c.field, json!(c.values).to_string()])
        .map_err(sql("record a conflict"))?;
    }
    Ok(())
}

/// The outcome of comparing the live projections with a rebuild from the documents.
#[derive(Debug, Clone, Default)]
pub struct ProjectionReport {
    pub documents: usize,
    /// Tables whose rebuilt rows differ from the live rows, with row counts (live, rebuilt).
    pub mismatched: Vec<(String, usize, usize)>,
}

impl ProjectionReport {
    pub fn is_consistent(&self) -> bool {
        self.mismatched.is_empty()
    }
}

type Snapshot = Vec<Vec<Vec<Value>>>;

fn snapshot(conn: &Connection) -> Result<Snapshot, StoreError> {
    let mut out = Vec::new();
    for (table, order) in TABLES {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))
            .map_err(sql("read a projection"))?;
        let cols = stmt.column_count();
        let rows = stmt
            .query_map([], |r| (0..cols).map(|i| r.get::<_, Value>(i)).collect())
            .map_err(sql("read a projection"))?
            .collect::<Result<Vec<Vec<Value>>, _>>()
            .map_err(sql("read a projection"))?;
        out.push(rows);
    }
    Ok(out)
}

fn clear_and_project_all(conn: &Connection) -> Result<usize, StoreError> {
    for (table, _) in TABLES {
        conn.execute(&format!("DELETE FROM {table}"), [])
            .map_err(sql("clear a projection"))?;
    }
    let mut stmt = conn
        .prepare("SELECT id, bytes FROM documents ORDER BY id")
        .map_err(sql("list documents"))?;
    let mut rows = stmt.query([]).map_err(sql("list documents"))?;
    let mut n = 0;
    while let Some(row) = rows.next().map_err(sql("list documents"))? {
        let id: String = row.get(0).map_err(sql("read a document"))?;
        let bytes: Vec<u8> = row.get(1).map_err(sql("read a document"))?;
        let doc =
            automerge::AutoCommit::load(&bytes).map_err(|e| StoreError::record(&id)(e.into()))?;
        let record = AnyRecord::read(&doc).map_err(StoreError::record(&id))?;
        project(conn, &record)?;
        project_conflicts(conn, &id, record.kind().as_str(), &doc)?;
        n += 1;
    }
    Ok(n)
}

pub fn check(conn: &mut Connection) -> Result<ProjectionReport, StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql("begin the projection check"))?;
    let live = snapshot(&tx)?;
    let documents = clear_and_project_all(&tx)?;
    let rebuilt = snapshot(&tx)?;
    tx.rollback()
        .map_err(sql("roll back the projection check"))?;
    let mismatched = TABLES
        .iter()
        .zip(live.iter().zip(rebuilt.iter()))
        .filter(|(_, (l, r))| l != r)
        .map(|((t, _), (l, r))| (t.to_string(), l.len(), r.len()))
        .collect();
    Ok(ProjectionReport {
        documents,
        mismatched,
    })
}

/// Writes again, from their documents, the rows of the kinds a migration named in
/// [`crate::schema::REPROJECT`], then forgets the request (one transaction).
pub fn reproject_pending(conn: &mut Connection) -> Result<usize, StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql("begin re-projecting"))?;
    let kinds: Option<String> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [crate::schema::REPROJECT],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("read the kinds to re-project"))?;
    let Some(kinds) = kinds else {
        return Ok(0);
    };
    let mut n = 0;
    for kind in kinds.split(',').filter(|k| !k.is_empty()) {
        let mut stmt = tx
            .prepare("SELECT id, bytes FROM documents WHERE kind = ?1 ORDER BY id")
            .map_err(sql("list documents"))?;
        let mut rows = stmt.query([kind]).map_err(sql("list documents"))?;
        while let Some(row) = rows.next().map_err(sql("list documents"))? {
            let id: String = row.get(0).map_err(sql("read a document"))?;
            let bytes: Vec<u8> = row.get(1).map_err(sql("read a document"))?;
            let doc = automerge::AutoCommit::load(&bytes)
                .map_err(|e| StoreError::record(&id)(e.into()))?;
            project(
                &tx,
                &AnyRecord::read(&doc).map_err(StoreError::record(&id))?,
            )?;
            n += 1;
        }
    }
    tx.execute(
        "DELETE FROM meta WHERE key = ?1",
        [crate::schema::REPROJECT],
    )
    .map_err(sql("forget the kinds to re-project"))?;
    tx.commit().map_err(sql("commit re-projecting"))?;
    if n > 0 {
        tracing::info!(
            records = n,
            "projection rows written again after a migration"
        );
    }
    Ok(n)
}

pub fn rebuild(conn: &mut Connection) -> Result<usize, StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql("begin the projection rebuild"))?;
    let n = clear_and_project_all(&tx)?;
    tx.commit().map_err(sql("commit the projection rebuild"))?;
    Ok(n)
}
