//! Projections: the relational rows derived from each record's document, and the proof
//! that they can be rebuilt from the documents alone.

use healsync_domain::Sex;
use healsync_records::AnyRecord;
use rusqlite::types::Value;
use rusqlite::{Connection, params};
use serde_json::json;
use uuid::Uuid;

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

pub fn record_id(r: &AnyRecord) -> Uuid {
    match r {
        AnyRecord::Patient(x) => x.id.0,
        AnyRecord::Doctor(x) => x.id.0,
        AnyRecord::Schedule(x) => x.id.0,
        AnyRecord::Leave(x) => x.id.0,
        AnyRecord::Appointment(x) => x.id.0,
        AnyRecord::Notification(x) => x.id.0,
        AnyRecord::User(x) => x.id.0,
        AnyRecord::PatientRequest(x) => x.id.0,
        AnyRecord::MedicalRecord(x) => x.id.0,
        AnyRecord::Invoice(x) => x.id.0,
        AnyRecord::InvoiceVoid(x) => x.id.0,
        AnyRecord::Payment(x) => x.id.0,
        AnyRecord::PriceItem(x) => x.id.0,
        AnyRecord::Coverage(x) => x.id.0,
        AnyRecord::Claim(x) => x.id.0,
        AnyRecord::MessagePreference(x) => x.id.0,
    }
}

fn sql(action: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    StoreError::sqlite(action)
}

/// Writes (inserts or replaces) the projection rows of one record.
pub fn project(conn: &Connection, record: &AnyRecord) -> Result<(), StoreError> {
    match record {
        AnyRecord::Patient(p) => {
            let a = &p.address;
            let ec = p.emergency_contact.as_ref();
            conn.prepare_cached(
                "INSERT INTO patients(id, mrn, site, name, email, phone, phone_digits, date_of_birth,
                    sex, address_line1, address_line2, address_city, address_region,
                    address_postal_code, address_country, ec_name, ec_phone, ec_relationship,
                    allergies, active, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                         ?17, ?18, ?19, ?20, ?21, ?22)
                 ON CONFLICT(id) DO UPDATE SET mrn = excluded.mrn, site = excluded.site,
                    name = excluded.name, email = excluded.email, phone = excluded.phone,
                    phone_digits = excluded.phone_digits, date_of_birth = excluded.date_of_birth,
                    sex = excluded.sex, address_line1 = excluded.address_line1,
                    address_line2 = excluded.address_line2, address_city = excluded.address_city,
                    address_region = excluded.address_region,
                    address_postal_code = excluded.address_postal_code,
                    address_country = excluded.address_country, ec_name = excluded.ec_name,
                    ec_phone = excluded.ec_phone, ec_relationship = excluded.ec_relationship,
                    allergies = excluded.allergies, active = excluded.active,
                    created_at = excluded.created_at, updated_at = excluded.updated_at",
            )
            .map_err(sql("prepare the patient projection"))?
            .execute(params![
                p.id.to_string(),
                p.mrn,
                p.site,
                p.name,
                p.email,
                p.phone,
                p.phone.as_deref().map(healsync_domain::patient::phone_digits),
                p.date_of_birth.map(|d| d.format("%Y-%m-%d").to_string()),
                p.sex.map(Sex::as_str),
                a.line1,
                a.line2,
                a.city,
                a.region,
                a.postal_code,
                a.country,
                ec.map(|c| c.name.as_str()),
                ec.map(|c| c.phone.as_str()),
                ec.and_then(|c| c.relationship.as_deref()),
                json!(p.allergies).to_string(),
                p.active,
                p.created_at.timestamp_millis(),
                p.updated_at.timestamp_millis(),
            ])
            .map_err(sql("project a patient"))?;
        }
        AnyRecord::Doctor(d) => {
            let id = d.id.to_string();
            conn.prepare_cached(
                "INSERT OR REPLACE INTO doctors(id, name, specializations, licence_number, email,
                    phone, active, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(sql("prepare the doctor projection"))?
            .execute(params![
                id,
                d.name,
                json!(d.specializations).to_string(),
                d.licence_number,
                d.email,
                d.phone,
                d.active,
                d.created_at.timestamp_millis(),
                d.updated_at.timestamp_millis(),
            ])
            .map_err(sql("project a doctor"))?;
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
        AnyRecord::Schedule(s) => {
            let weekly = serde_json::to_string(&s.rules)
                .map_err(|e| StoreError::Corrupt(format!("schedule {}: {e}", s.id)))?;
            conn.prepare_cached(
                "INSERT OR REPLACE INTO schedules(id, doctor_id, site, slot_minutes,
                    utc_offset_minutes, weekly, active, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(sql("prepare the schedule projection"))?
            .execute(params![
                s.id.to_string(),
                s.doctor_id.to_string(),
                s.site,
                s.slot_minutes,
                s.utc_offset_minutes,
                weekly,
                s.active,
                s.updated_at.timestamp_millis(),
            ])
            .map_err(sql("project a schedule"))?;
        }
        AnyRecord::Leave(l) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO leaves(id, doctor_id, site, start_at, end_at, reason, cancelled)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(sql("prepare the leave projection"))?
            .execute(params![
                l.id.to_string(),
                l.doctor_id.to_string(),
                l.site,
                l.start.timestamp_millis(),
                l.end.timestamp_millis(),
                l.reason,
                l.cancelled,
            ])
            .map_err(sql("project a leave"))?;
        }
        AnyRecord::Appointment(a) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO appointments(id, patient_id, doctor_id, site, start_at, end_at,
                    status, reason, notes, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .map_err(sql("prepare the appointment projection"))?
            .execute(params![
                a.id.to_string(),
                a.patient_id.to_string(),
                a.doctor_id.to_string(),
                a.site,
                a.start.timestamp_millis(),
                a.end.timestamp_millis(),
                a.status.as_str(),
                a.reason,
                a.notes,
                a.created_at.timestamp_millis(),
                a.updated_at.timestamp_millis(),
            ])
            .map_err(sql("project an appointment"))?;
        }
        AnyRecord::Notification(n) => {
            let (kind, audience) = n.audience.parts();
            conn.prepare_cached(
                "INSERT OR REPLACE INTO notifications(id, audience_kind, audience_id, type, title,
                    body, appointment_id, created_at, read)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(sql("prepare the notification projection"))?
            .execute(params![
                n.id.to_string(),
                kind,
                audience.to_string(),
                n.kind,
                n.title,
                n.body,
                n.appointment_id.map(|a| a.to_string()),
                n.created_at.timestamp_millis(),
                n.read,
            ])
            .map_err(sql("project a notification"))?;
        }
        AnyRecord::User(u) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO users(id, username, role, password_hash, patient_id,
                    doctor_id, active, sites, credentials_changed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(sql("prepare the user projection"))?
            .execute(params![
                u.id.to_string(),
                u.username,
                u.role.as_str(),
                u.password_hash,
                u.patient_id.map(|p| p.to_string()),
                u.doctor_id.map(|d| d.to_string()),
                u.active,
                serde_json::to_string(&u.sites).unwrap_or_else(|_| "[]".into()),
                u.credentials_changed_at.map(|t| t.timestamp_millis()),
            ])
            .map_err(sql("project a user"))?;
        }
        AnyRecord::PatientRequest(q) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO patient_requests(id, mrn, status, patient_id, answer,
                    created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(sql("prepare the patient request projection"))?
            .execute(params![
                q.id.to_string(),
                q.mrn,
                q.status.as_str(),
                q.patient_id.map(|p| p.to_string()),
                q.answer,
                q.created_at.timestamp_millis(),
                q.updated_at.timestamp_millis(),
            ])
            .map_err(sql("project a patient request"))?;
        }
        AnyRecord::MedicalRecord(m) => {
            let c = m.correction.as_ref();
            conn.prepare_cached(
                "INSERT OR REPLACE INTO medical_records(id, patient_id, site, type, status,
                    details, recorded_at, author, author_doctor_id, appointment_id, corrects,
                    correction, correction_reason, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )
            .map_err(sql("prepare the medical record projection"))?
            .execute(params![
                m.id.to_string(),
                m.patient_id.to_string(),
                m.site,
                m.entry_type().as_str(),
                m.details.status(),
                m.details.to_json().to_string(),
                m.recorded_at.timestamp_millis(),
                m.author,
                m.author_doctor_id.map(|d| d.to_string()),
                m.appointment_id.map(|a| a.to_string()),
                c.map(|c| c.of.to_string()),
                c.map(|c| c.kind.as_str()),
                c.map(|c| c.reason.as_str()),
                m.created_at.timestamp_millis(),
            ])
            .map_err(sql("project a medical record"))?;
        }
        AnyRecord::Invoice(i) => {
            let t = i.totals();
            let lines = serde_json::to_string(&i.lines)
                .map_err(|e| StoreError::Corrupt(format!("invoice {}: {e}", i.id)))?;
            conn.prepare_cached(
                "INSERT OR REPLACE INTO invoices(id, number, patient_id, site, currency, lines,
                    appointment_id, notes, gross, discount, tax, total, issued_by, issued_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )
            .map_err(sql("prepare the invoice projection"))?
            .execute(params![
                i.id.to_string(),
                i.number,
                i.patient_id.to_string(),
                i.site,
                i.currency.as_str(),
                lines,
                i.appointment_id.map(|a| a.to_string()),
                i.notes,
                t.gross,
                t.discount,
                t.tax,
                t.total,
                i.issued_by,
                i.issued_at.timestamp_millis(),
            ])
            .map_err(sql("project an invoice"))?;
        }
        AnyRecord::InvoiceVoid(v) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO invoice_voids(id, invoice_id, patient_id, site, reason,
                    voided_by, voided_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(sql("prepare the invoice void projection"))?
            .execute(params![
                v.id.to_string(),
                v.invoice_id.to_string(),
                v.patient_id.to_string(),
                v.site,
                v.reason,
                v.voided_by,
                v.voided_at.timestamp_millis(),
            ])
            .map_err(sql("project an invoice void"))?;
        }
        AnyRecord::Payment(p) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO payments(id, invoice_id, patient_id, site, amount,
                    currency, method, reference, received_by, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .map_err(sql("prepare the payment projection"))?
            .execute(params![
                p.id.to_string(),
                p.invoice_id.to_string(),
                p.patient_id.to_string(),
                p.site,
                p.amount,
                p.currency.as_str(),
                p.method.as_str(),
                p.reference,
                p.received_by,
                p.received_at.timestamp_millis(),
            ])
            .map_err(sql("project a payment"))?;
        }
        AnyRecord::PriceItem(p) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO price_items(id, site, code, name, unit_price, currency,
                    tax_rate, active, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(sql("prepare the price list projection"))?
            .execute(params![
                p.id.to_string(),
                p.site,
                p.code,
                p.name,
                p.unit_price,
                p.currency.as_str(),
                p.tax_rate,
                p.active,
                p.updated_at.timestamp_millis(),
            ])
            .map_err(sql("project a price list item"))?;
        }
        AnyRecord::Coverage(c) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO coverages(id, patient_id, site, payer, member_id, plan,
                    valid_from, valid_to, active, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .map_err(sql("prepare the coverage projection"))?
            .execute(params![
                c.id.to_string(),
                c.patient_id.to_string(),
                c.site,
                c.payer,
                c.member_id,
                c.plan,
                c.valid_from.format("%Y-%m-%d").to_string(),
                c.valid_to.map(|d| d.format("%Y-%m-%d").to_string()),
                c.active,
                c.updated_at.timestamp_millis(),
            ])
            .map_err(sql("project a coverage"))?;
        }
        AnyRecord::Claim(c) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO claims(id, number, invoice_id, invoice_number, patient_id,
                    coverage_id, payer, member_id, site, amount, currency, status,
                    payer_reference, response, paid_amount, created_by, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, ?18)",
            )
            .map_err(sql("prepare the claim projection"))?
            .execute(params![
                c.id.to_string(),
                c.number,
                c.invoice_id.to_string(),
                c.invoice_number,
                c.patient_id.to_string(),
                c.coverage_id.to_string(),
                c.payer,
                c.member_id,
                c.site,
                c.amount,
                c.currency.as_str(),
                c.status.as_str(),
                c.payer_reference,
                c.response,
                c.paid_amount,
                c.created_by,
                c.created_at.timestamp_millis(),
                c.updated_at.timestamp_millis(),
            ])
            .map_err(sql("project a claim"))?;
        }
        AnyRecord::MessagePreference(m) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO message_preferences(id, patient_id, site, email, sms,
                    updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(sql("prepare the message preference projection"))?
            .execute(params![
                m.id.to_string(),
                m.patient_id.to_string(),
                m.site,
                m.email,
                m.sms,
                m.updated_at.timestamp_millis(),
            ])
            .map_err(sql("project a message preference"))?;
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

pub fn rebuild(conn: &mut Connection) -> Result<usize, StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql("begin the projection rebuild"))?;
    let n = clear_and_project_all(&tx)?;
    tx.commit().map_err(sql("commit the projection rebuild"))?;
    Ok(n)
}
