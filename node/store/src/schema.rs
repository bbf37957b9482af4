//! Versioned schema migrations (`PRAGMA user_version`) and the node's stored identity.
//!
//! A migration is appended, never edited: version N is the N-th entry of [`MIGRATIONS`].
//! Projection tables carry no constraints that documents could violate (no foreign keys
//! or unique indexes between records): merged documents from two sites must always
//! project, and uniqueness rules are checked by the write path instead.

use automerge::ActorId;
use healsync_domain::SiteCode;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::{Identity, StoreError};

const MIGRATIONS: &[&str] = &[
    // 1: documents, change log, projections of the scheduling domains.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;

    CREATE TABLE documents (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        bytes BLOB NOT NULL,
        heads TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX documents_kind ON documents(kind);

    CREATE TABLE change_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        doc_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        hash BLOB NOT NULL UNIQUE,
        bytes BLOB NOT NULL,
        local INTEGER NOT NULL,
        recorded_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX change_log_doc ON change_log(doc_id);

    CREATE TABLE patients (
        id TEXT PRIMARY KEY,
        mrn TEXT NOT NULL,
        site TEXT NOT NULL,
        name TEXT NOT NULL,
        email TEXT NOT NULL,
        phone TEXT,
        phone_digits TEXT,
        date_of_birth TEXT,
        sex TEXT,
        address_line1 TEXT, address_line2 TEXT, address_city TEXT,
        address_region TEXT, address_postal_code TEXT, address_country TEXT,
        ec_name TEXT, ec_phone TEXT, ec_relationship TEXT,
        allergies TEXT NOT NULL,
        active INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX patients_name ON patients(name COLLATE NOCASE, id);
    CREATE INDEX patients_mrn ON patients(mrn);
    CREATE INDEX patients_dob ON patients(date_of_birth);
    CREATE VIRTUAL TABLE patients_fts USING fts5(
        name, mrn, email, phone_digits, tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER patients_fts_insert AFTER INSERT ON patients BEGIN
        INSERT INTO patients_fts(rowid, name, mrn, email, phone_digits)
        VALUES (new.rowid, new.name, new.mrn, new.email, new.phone_digits);
    END;
    CREATE TRIGGER patients_fts_update AFTER UPDATE ON patients BEGIN
        DELETE FROM patients_fts WHERE rowid = old.rowid;
        INSERT INTO patients_fts(rowid, name, mrn, email, phone_digits)
        VALUES (new.rowid, new.name, new.mrn, new.email, new.phone_digits);
    END;
    CREATE TRIGGER patients_fts_delete AFTER DELETE ON patients BEGIN
        DELETE FROM patients_fts WHERE rowid = old.rowid;
    END;

    CREATE TABLE doctors (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        specializations TEXT NOT NULL,
        licence_number TEXT NOT NULL,
        email TEXT,
        phone TEXT,
        active INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX doctors_name ON doctors(name COLLATE NOCASE, id);
    CREATE TABLE doctor_specializations (
        doctor_id TEXT NOT NULL,
        specialization TEXT NOT NULL COLLATE NOCASE,
        PRIMARY KEY (doctor_id, specialization)
    ) STRICT;
    CREATE INDEX doctor_specializations_name ON doctor_specializations(specialization);

    CREATE TABLE schedules (
        id TEXT PRIMARY KEY,
        doctor_id TEXT NOT NULL,
        site TEXT NOT NULL,
        slot_minutes INTEGER NOT NULL,
        utc_offset_minutes INTEGER NOT NULL,
        weekly TEXT NOT NULL,
        active INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX schedules_doctor ON schedules(doctor_id, site);

    CREATE TABLE leaves (
        id TEXT PRIMARY KEY,
        doctor_id TEXT NOT NULL,
        site TEXT NOT NULL,
        start_at INTEGER NOT NULL,
        end_at INTEGER NOT NULL,
        reason TEXT,
        cancelled INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX leaves_doctor ON leaves(doctor_id, end_at);

    CREATE TABLE appointments (
        id TEXT PRIMARY KEY,
        patient_id TEXT NOT NULL,
        doctor_id TEXT NOT NULL,
        site TEXT NOT NULL,
        start_at INTEGER NOT NULL,
        end_at INTEGER NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        notes TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX appointments_doctor ON appointments(doctor_id, start_at);
    CREATE INDEX appointments_patient ON appointments(patient_id, start_at);
    CREATE INDEX appointments_start ON appointments(start_at);

    CREATE TABLE notifications (
        id TEXT PRIMARY KEY,
        audience_kind TEXT NOT NULL,
        audience_id TEXT NOT NULL,
        type TEXT NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        appointment_id TEXT,
        created_at INTEGER NOT NULL,
        read INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX notifications_audience ON notifications(audience_id, created_at);

    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        patient_id TEXT,
        doctor_id TEXT,
        active INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX users_username ON users(username);
    "#,
    // 2: sync bookkeeping: changes the hub refused to store, for the technician.
    r#"
    CREATE TABLE sync_rejections (
        seq INTEGER PRIMARY KEY,
        doc_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        recorded_at INTEGER NOT NULL
    ) STRICT;
    "#,
    // 3: conflicts, a projection: fields of a document that hold several different
    // values after concurrent edits, until a person settles them.
    r#"
    CREATE TABLE conflicts (
        doc_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        field TEXT NOT NULL,
        "values" TEXT NOT NULL,
        PRIMARY KEY (doc_id, field)
    ) STRICT;
    "#,
    // 4: requests to the hub for patients registered at another clinic, a projection.
    r#"
    CREATE TABLE patient_requests (
        id TEXT PRIMARY KEY,
        mrn TEXT NOT NULL,
        status TEXT NOT NULL,
        patient_id TEXT,
        answer TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX patient_requests_created ON patient_requests(created_at);
    "#,
    // 5: changes from the hub that could not be merged yet (a missing dependency, a
    // record this version cannot read, damaged bytes), kept verbatim with the reason
    // and tried again whenever their document changes and at every sync round.
    r#"
    CREATE TABLE held_changes (
        hash BLOB PRIMARY KEY,
        doc_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        bytes BLOB NOT NULL,
        reason TEXT NOT NULL,
        held_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX held_changes_doc ON held_changes(doc_id);
    "#,
    // 6: medical record entries, a projection. Append-only: an entry is never updated,
    // a correction is another row whose `corrects` names the entry it amends or
    // retracts, so what is current is found by the absence of a correcting row.
    r#"
    CREATE TABLE medical_records (
        id TEXT PRIMARY KEY,
        patient_id TEXT NOT NULL,
        site TEXT NOT NULL,
        type TEXT NOT NULL,
        status TEXT,
        details TEXT NOT NULL,
        recorded_at INTEGER NOT NULL,
        author TEXT NOT NULL,
        author_doctor_id TEXT,
        appointment_id TEXT,
        corrects TEXT,
        correction TEXT,
        correction_reason TEXT,
        created_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX medical_records_patient ON medical_records(patient_id, recorded_at, id);
    CREATE INDEX medical_records_type ON medical_records(patient_id, type, recorded_at);
    CREATE INDEX medical_records_corrects ON medical_records(corrects) WHERE corrects IS NOT NULL;
    "#,
    // 7: billing, projections. Invoices, voids and payments are written once; what an
    // invoice still owes is derived from its payments and void at read time. The
    // invoice's totals are kept beside its lines (derived from them by the domain's
    // one rule) so reports add integers instead of parsing lines.
    r#"
    CREATE TABLE invoices (
        id TEXT PRIMARY KEY,
        number TEXT NOT NULL,
        patient_id TEXT NOT NULL,
        site TEXT NOT NULL,
        currency TEXT NOT NULL,
        lines TEXT NOT NULL,
        appointment_id TEXT,
        notes TEXT,
        gross INTEGER NOT NULL,
        discount INTEGER NOT NULL,
        tax INTEGER NOT NULL,
        total INTEGER NOT NULL,
        issued_by TEXT NOT NULL,
        issued_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX invoices_site_issued ON invoices(site, issued_at);
    CREATE INDEX invoices_issued ON invoices(issued_at, id);
    CREATE INDEX invoices_patient ON invoices(patient_id, issued_at);
    CREATE INDEX invoices_number ON invoices(number);
    CREATE INDEX invoices_appointment ON invoices(appointment_id) WHERE appointment_id IS NOT NULL;
    CREATE TABLE invoice_voids (
        id TEXT PRIMARY KEY,
        invoice_id TEXT NOT NULL,
        patient_id TEXT NOT NULL,
        site TEXT NOT NULL,
        reason TEXT NOT NULL,
        voided_by TEXT NOT NULL,
        voided_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX invoice_voids_invoice ON invoice_voids(invoice_id);
    CREATE TABLE payments (
        id TEXT PRIMARY KEY,
        invoice_id TEXT NOT NULL,
        patient_id TEXT NOT NULL,
        site TEXT NOT NULL,
        amount INTEGER NOT NULL,
        currency TEXT NOT NULL,
        method TEXT NOT NULL,
        reference TEXT,
        received_by TEXT NOT NULL,
        received_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX payments_invoice ON payments(invoice_id);
    CREATE INDEX payments_patient ON payments(patient_id);
    CREATE INDEX payments_site_received ON payments(site, received_at);
    CREATE TABLE price_items (
        id TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        code TEXT NOT NULL,
        name TEXT NOT NULL,
        unit_price INTEGER NOT NULL,
        currency TEXT NOT NULL,
        tax_rate INTEGER NOT NULL,
        active INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX price_items_code ON price_items(site, code);
    "#,
    // 8: insurance, projections: a patient's coverages, and claims on invoices.
    r#"
    CREATE TABLE coverages (
        id TEXT PRIMARY KEY,
        patient_id TEXT NOT NULL,
        site TEXT NOT NULL,
        payer TEXT NOT NULL,
        member_id TEXT NOT NULL,
        plan TEXT,
        valid_from TEXT NOT NULL,
        valid_to TEXT,
        active INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX coverages_patient ON coverages(patient_id);
    CREATE TABLE claims (
        id TEXT PRIMARY KEY,
        number TEXT NOT NULL,
        invoice_id TEXT NOT NULL,
        invoice_number TEXT NOT NULL,
        patient_id TEXT NOT NULL,
        coverage_id TEXT NOT NULL,
        payer TEXT NOT NULL,
        member_id TEXT NOT NULL,
        site TEXT NOT NULL,
        amount INTEGER NOT NULL,
        currency TEXT NOT NULL,
        status TEXT NOT NULL,
        payer_reference TEXT,
        response TEXT,
        paid_amount INTEGER,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX claims_site_status ON claims(site, status, created_at);
    CREATE INDEX claims_created ON claims(created_at, id);
    CREATE INDEX claims_invoice ON claims(invoice_id);
    CREATE INDEX claims_patient ON claims(patient_id);
    "#,
    // 9: messages to patients. `message_preferences` is a projection; `outbox` and
    // `reminders` are this node's own delivery state (never rebuilt, never synced): a
    // message is sent by the node whose write caused it, and each appointment's
    // reminder is generated once.
    r#"
    CREATE TABLE message_preferences (
        id TEXT PRIMARY KEY,
        patient_id TEXT NOT NULL,
        site TEXT NOT NULL,
        email INTEGER NOT NULL,
        sms INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX message_preferences_patient ON message_preferences(patient_id, updated_at);
    CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        recipient TEXT NOT NULL,
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        patient_id TEXT,
        notification_id TEXT,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        sent_at INTEGER
    ) STRICT;
    CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
    CREATE INDEX outbox_created ON outbox(created_at, id);
    CREATE TABLE reminders (
        appointment_id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL
    ) STRICT;
    "#,
    // 10: a chart's current entries of one type, newest first, read straight off an
    // index: with `id` in it the planner no longer prefers walking the whole chart by
    // date (5,000 vitals scanned to find three diagnoses; the clinic-day bench).
    r#"
    DROP INDEX medical_records_type;
    CREATE INDEX medical_records_type ON medical_records(patient_id, type, recorded_at, id);
    "#,
    // 11: the audit trail of health data, hash-chained (`audit.rs`). `at` is
    // microseconds since the epoch; `hash` follows the previous event's.
    r#"
    CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        user_id TEXT,
        username TEXT NOT NULL,
        role TEXT,
        site TEXT NOT NULL,
        access TEXT NOT NULL,
        kind TEXT NOT NULL,
        record_id TEXT NOT NULL,
        patient_id TEXT,
        operation TEXT NOT NULL,
        peer TEXT,
        reason TEXT,
        hash BLOB NOT NULL
    ) STRICT;
    CREATE INDEX audit_patient ON audit_log(patient_id, seq);
    CREATE INDEX audit_user ON audit_log(username, seq);
    "#,
    // 12: break-glass grants looked up without walking a patient's whole trail (the
    // common answer, "no grant", otherwise read every event about the patient).
    r#"
    CREATE INDEX audit_break_glass ON audit_log(patient_id, user_id, at)
        WHERE kind = 'break_glass';
    "#,
    // 13: roles scoped to sites, and the moment an account's credentials last changed
    // (sessions opened before it end). Accounts written before have no sites: '[]'.
    r#"
    ALTER TABLE users ADD COLUMN sites TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE users ADD COLUMN credentials_changed_at INTEGER;
    "#,
    // 14: sessions ended one by one (logout, an administrator), kept until they would
    // have expired: this node's own state, never synced.
    r#"
    CREATE TABLE ended_sessions (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    ) STRICT;
    "#,
    // 15: a projection row holds every field of its record (rows are read through the
    // kind's own `read`); patient requests lacked their evidence. Their rows are
    // written again from the documents when the store opens (`REPROJECT`).
    r#"
    ALTER TABLE patient_requests ADD COLUMN date_of_birth TEXT;
    ALTER TABLE patient_requests ADD COLUMN requested_by TEXT;
    INSERT OR REPLACE INTO meta(key, value) VALUES ('projections.reproject', 'patient_request');
    "#,
    // 16: the notices about an appointment, found when the appointment arrives by sync
    // after them (a notice merged before its appointment is sent then).
    r#"
    CREATE INDEX notifications_appointment ON notifications(appointment_id)
        WHERE appointment_id IS NOT NULL;
    "#,
];

/// The meta key naming record kinds (comma-separated) whose projection rows a migration
/// left incomplete: they are written again from their documents at the next open.
pub const REPROJECT: &str = "projections.reproject";

/// The schema version this build migrates to.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database to the newest schema, one migration per transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(StoreError::sqlite("read the schema version"))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("begin a migration"))?;
        tx.execute_batch(sql)
            .map_err(StoreError::sqlite("apply a migration"))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(StoreError::sqlite("record the schema version"))?;
        tx.commit()
            .map_err(StoreError::sqlite("commit a migration"))?;
        tracing::info!(version = i + 1, "database migrated");
    }
    Ok(())
}

/// The schema version this database is at, if it is the one this build migrates to
/// (what a readiness probe asks: the database answers and is migrated); `None` when it
/// is behind or ahead.
pub fn current_version(conn: &Connection) -> Result<Option<i64>, StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(StoreError::sqlite("read the schema version"))?;
    Ok((version == MIGRATIONS.len() as i64).then_some(version))
}

fn get_meta(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .map_err(StoreError::sqlite("read node metadata"))
}

/// Reads the node's identity, creating it on first open.
pub fn identity(conn: &mut Connection, site: Option<&SiteCode>) -> Result<Identity, StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite("begin reading the identity"))?;
    let stored_site = get_meta(&tx, "site")?;
    let identity = match stored_site {
        Some(stored) => {
            if let Some(requested) = site
                && requested.as_str() != stored
            {
                return Err(StoreError::SiteMismatch {
                    stored,
                    requested: requested.to_string(),
                });
            }
            let corrupt = |what: &str| StoreError::Corrupt(format!("node metadata: bad {what}"));
            let node_id = get_meta(&tx, "node_id")?
                .and_then(|s| Uuid::parse_str(&s).ok())
                .ok_or_else(|| corrupt("node_id"))?;
            let actor = get_meta(&tx, "actor_id")?
                .and_then(|s| s.parse::<ActorId>().ok())
                .ok_or_else(|| corrupt("actor_id"))?;
            let site = SiteCode::parse(&stored).map_err(|_| corrupt("site"))?;
            Identity {
                node_id,
                site,
                actor,
            }
        }
        None => {
            let site = match site {
                Some(s) => s.clone(),
                None => SiteCode::parse("DEV").map_err(|e| StoreError::Corrupt(e.to_string()))?,
            };
            let identity = Identity {
                node_id: Uuid::now_v7(),
                site,
                actor: ActorId::random(),
            };
            for (k, v) in [
                ("site", identity.site.to_string()),
                ("node_id", identity.node_id.to_string()),
                ("actor_id", identity.actor.to_hex_string()),
            ] {
                tx.execute(
                    "INSERT INTO meta(key, value) VALUES (?1, ?2)",
                    params![k, v],
                )
                .map_err(StoreError::sqlite("store the node identity"))?;
            }
            identity
        }
    };
    tx.commit()
        .map_err(StoreError::sqlite("commit the identity"))?;
    Ok(identity)
}
