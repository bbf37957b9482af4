//! Writing a patient's medical record: append-only clinical entries.
//!
//! Only a DOCTOR treating the patient (`healsync_domain::care`) writes entries, and
//! nothing here edits or deletes one: a correction is a new entry that amends or
//! retracts an earlier one (`healsync_domain::clinical::check_correction`). The care
//! check runs inside the write transaction, so an appointment cancelled a moment
//! before cannot be used to write.

use chrono::{DateTime, Duration, Utc};
use healsync_domain::clinical::{Correction, CorrectionKind, MAX_SHORT, MedicationStatus};
use healsync_domain::patient::parse_text;
use healsync_domain::{
    AppointmentId, Audience, Details, DoctorId, DomainError, MedicalRecord, MedicalRecordId,
    Notification, PatientId, Role,
};
use healsync_store::audit::AuditContext;
use healsync_store::{WriteTx, queries};

use super::{load_appointment, load_patient, new_id};
use crate::{ApiError, Node, Session};

/// How far ahead of the node's clock an entry's `recordedAt` may be (clock skew
/// between a device and the node), and how far back.
const FUTURE_SLACK_MINUTES: i64 = 10;
const EARLIEST_YEAR: i32 = 1900;

/// A new entry, parsed: what it says, about whom, and what it corrects if anything.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub patient_id: PatientId,
    pub appointment_id: Option<AppointmentId>,
    pub recorded_at: Option<DateTime<Utc>>,
    pub details: Details,
    pub amends: Option<MedicalRecordId>,
    pub reason: Option<String>,
}

/// The doctor record of a session that may write clinical entries.
fn clinician(session: &Session) -> Result<DoctorId, ApiError> {
    match (session.role, session.doctor_id) {
        (Role::Doctor, Some(d)) => Ok(d),
        _ => Err(ApiError::Forbidden(format!(
            "a {} may not write medical records",
            session.role.as_str()
        ))),
    }
}

/// Checks, inside the transaction, that `doctor` treats `patient` now; a patient not
/// in their care looks like a missing one.
fn check_care(tx: &WriteTx<'_>, doctor: DoctorId, patient: PatientId) -> Result<(), ApiError> {
    load_patient(tx, patient)?;
    if !queries::is_patient_of(tx.conn(), patient, doctor, tx.now())? {
        return Err(ApiError::not_found("patient"));
    }
    Ok(())
}

fn check_recorded_at(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), DomainError> {
    use chrono::Datelike;
    if at > now + Duration::minutes(FUTURE_SLACK_MINUTES) {
        return Err(DomainError::invalid(
            "recordedAt",
            "must not be in the future",
        ));
    }
    if at.year() < EARLIEST_YEAR {
        return Err(DomainError::invalid(
            "recordedAt",
            format!("must be in {EARLIEST_YEAR} or later"),
        ));
    }
    Ok(())
}

/// Writes one entry (and, for a final lab result, the patient's notification) in the
/// caller's transaction, after every check.
fn append(
    tx: &mut WriteTx<'_>,
    session: &Session,
    doctor: DoctorId,
    input: NewEntry,
    kind: CorrectionKind,
) -> Result<MedicalRecord, ApiError> {
    let now = tx.now();
    let details = input.details.validate()?;
    check_care(tx, doctor, input.patient_id)?;
    if let Some(a) = input.appointment_id {
        let appointment = load_appointment(tx, a)?;
        if appointment.patient_id != input.patient_id {
            return Err(ApiError::BadInput(
                "the appointment is another patient's".into(),
            ));
        }
    }
    let recorded_at = input.recorded_at.unwrap_or(now);
    check_recorded_at(recorded_at, now)?;
    if let Details::LabResult(r) = &details
        && let Some(order) = r.order_id
    {
        let is_order = queries::medical_record(tx.conn(), order)?.is_some_and(|o| {
            o.entry.patient_id == input.patient_id
                && o.entry.entry_type() == healsync_domain::EntryType::LabOrder
        });
        if !is_order {
            return Err(ApiError::BadInput(
                "orderId is not a lab order of this patient".into(),
            ));
        }
    }
    let correction = match input.amends {
        None => None,
        Some(of) => {
            let original = queries::medical_record(tx.conn(), of)?
                .filter(|o| o.entry.patient_id == input.patient_id);
            let original = original.ok_or_else(|| ApiError::not_found("medical record"))?;
            healsync_domain::clinical::check_correction(
                &original.entry,
                input.patient_id,
                &details,
                kind,
            )?;
            if let Some(later) = original.corrected_by.first() {
                return Err(ApiError::Conflict(format!(
                    "this entry was already corrected by {later}: correct the latest version"
                )));
            }
            let reason = input
                .reason
                .as_deref()
                .ok_or_else(|| DomainError::invalid("reason", "say why the entry is corrected"))?;
            Some(Correction {
                of,
                kind,
                reason: parse_text("reason", reason, MAX_SHORT)?,
            })
        }
    };
    let entry = MedicalRecord {
        id: new_id(),
        patient_id: input.patient_id,
        site: tx.site().to_string(),
        details,
        recorded_at,
        author: session.username.clone(),
        author_doctor_id: Some(doctor),
        appointment_id: input.appointment_id,
        correction,
        created_at: now,
    };
    tx.put(&entry)?;
    if let Details::LabResult(r) = &entry.details
        && r.status == healsync_domain::clinical::ResultStatus::Final
        && kind == CorrectionKind::Amends
    {
        super::messages::notify(
            tx,
            Notification {
                id: new_id(),
                audience: Audience::Patient(entry.patient_id),
                kind: "LAB_RESULT_FINAL".into(),
                title: "Lab result ready".into(),
                body: format!("Your {} result is ready.", r.test_name),
                appointment_id: entry.appointment_id,
                created_at: now,
                read: false,
            },
        )?;
    }
    Ok(entry)
}

/// Adds an entry, or an amendment of an earlier one when `amends` is given.
pub async fn add(
    node: &Node,
    session: &Session,
    input: NewEntry,
) -> Result<MedicalRecord, ApiError> {
    let doctor = clinician(session)?;
    if input.amends.is_none() && input.reason.is_some() {
        return Err(ApiError::BadInput(
            "a reason goes with amends (the entry it corrects)".into(),
        ));
    }
    let session = session.clone();
    node.write(session.acting("add"), move |tx| {
        append(tx, &session, doctor, input, CorrectionKind::Amends)
    })
    .await
}

/// Which correction [`correct`] makes of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawal {
    /// The entry was wrong: it no longer counts (it stays in the history).
    Retract,
    /// An active prescription is stopped: an amendment with status STOPPED.
    StopPrescription,
}

/// Retracts an entry, or stops a prescription, by a new entry with `reason`.
pub async fn correct(
    node: &Node,
    session: &Session,
    id: MedicalRecordId,
    how: Withdrawal,
    reason: String,
) -> Result<MedicalRecord, ApiError> {
    let doctor = clinician(session)?;
    let session = session.clone();
    node.write(session.acting("correct"), move |tx| {
        // Looks like a missing entry unless the doctor treats its patient.
        let original = queries::medical_record(tx.conn(), id)?
            .ok_or_else(|| ApiError::not_found("medical record"))?;
        if !queries::is_patient_of(tx.conn(), original.entry.patient_id, doctor, tx.now())? {
            return Err(ApiError::not_found("medical record"));
        }
        let (details, kind) = match (how, &original.entry.details) {
            (Withdrawal::Retract, d) => (d.clone(), CorrectionKind::Retracts),
            (Withdrawal::StopPrescription, Details::Prescription(p)) => {
                if p.status == MedicationStatus::Stopped {
                    return Err(ApiError::Conflict(
                        "the prescription is already stopped".into(),
                    ));
                }
                let mut stopped = p.clone();
                stopped.status = MedicationStatus::Stopped;
                (Details::Prescription(stopped), CorrectionKind::Amends)
            }
            (Withdrawal::StopPrescription, _) => {
                return Err(ApiError::BadInput("the entry is not a prescription".into()));
            }
        };
        let input = NewEntry {
            patient_id: original.entry.patient_id,
            appointment_id: None,
            recorded_at: None,
            details,
            amends: Some(id),
            reason: Some(reason),
        };
        append(tx, &session, doctor, input, kind)
    })
    .await
}

/// Records, in the caller's transaction, an ALLERGY entry (severity unknown, by
/// `author`) for each substance of the patient's intake list that no allergy entry
/// names yet (`clinical::intake_allergies_to_record`). A substance too long for an
/// entry stays in the intake list only.
pub(crate) fn record_intake_allergies(
    tx: &mut WriteTx<'_>,
    patient: &healsync_domain::Patient,
    author: &str,
) -> Result<usize, ApiError> {
    let recorded = queries::allergy_substances(tx.conn(), patient.id)?;
    let mut made = 0;
    for substance in
        healsync_domain::clinical::intake_allergies_to_record(&patient.allergies, &recorded)
    {
        let details = Details::Allergy(healsync_domain::clinical::Allergy {
            substance,
            reaction: None,
            severity: healsync_domain::clinical::Severity::Unknown,
        });
        let Ok(details) = details.validate() else {
            continue;
        };
        tx.put(&MedicalRecord {
            id: new_id(),
            patient_id: patient.id,
            site: tx.site().to_string(),
            details,
            recorded_at: tx.now(),
            author: author.to_string(),
            author_doctor_id: None,
            appointment_id: None,
            correction: None,
            created_at: tx.now(),
        })?;
        made += 1;
    }
    Ok(made)
}

/// The one-time step of [`migrate_intake_allergies`].
const INTAKE_MIGRATION: &str = "intake_allergies";

/// Migrates the intake allergy lists of this site's patients into allergy entries, a
/// hundred patients per transaction, once per node: run at start, it does nothing
/// after its first complete pass (registrations and edits record their lists as they
/// happen, and other sites migrate their own patients). A substance already named by
/// an entry is skipped, so a pass cut short by a crash resumes without repeats.
pub async fn migrate_intake_allergies(node: &Node) -> Result<usize, ApiError> {
    if node
        .read(|c| queries::step_done(c, INTAKE_MIGRATION))
        .await?
    {
        return Ok(0);
    }
    let site = node.store().identity().site.to_string();
    let mut after = None;
    let mut made = 0;
    loop {
        let s = site.clone();
        let batch = node
            .read(move |c| queries::patients_with_intake_allergies(c, &s, after, 100))
            .await?;
        let last = batch.last().map(|p| p.id);
        made += node
            .write(AuditContext::system("intake allergies"), move |tx| {
                let mut n = 0;
                for p in &batch {
                    n += record_intake_allergies(tx, p, "intake")?;
                }
                if batch.is_empty() {
                    tx.mark_done(INTAKE_MIGRATION)?;
                }
                Ok::<_, ApiError>(n)
            })
            .await?;
        match last {
            Some(l) => after = Some(l),
            None => return Ok(made),
        }
    }
}

/// Opens `patient`'s record outside the doctor's care, for
/// [`healsync_domain::audit::BREAK_GLASS_HOURS`], with a reason: in one transaction, an
/// audit event naming the reason (the grant: what later reads look up) and a notice to
/// the site's administrators. Works with no hub; the notice and the event sync. Returns
/// until when it holds.
pub async fn break_glass(
    node: &Node,
    session: &Session,
    patient: PatientId,
    reason: &str,
) -> Result<DateTime<Utc>, ApiError> {
    if clinician(session).is_err() {
        return Err(ApiError::Forbidden(format!(
            "break-glass is for clinicians; a {} may not open records outside their role",
            session.role.as_str()
        )));
    }
    let reason = healsync_domain::audit::parse_break_glass_reason(reason)?;
    let session = session.clone();
    let who = AuditContext {
        reason: Some(reason.clone()),
        ..session.acting("breakGlass")
    };
    node.write(who, move |tx| {
        let p =
            queries::patient(tx.conn(), patient)?.ok_or_else(|| ApiError::not_found("patient"))?;
        let now = tx.now();
        let until = healsync_domain::audit::break_glass_until(now);
        let notice = Notification {
            id: new_id(),
            audience: Audience::Admins,
            kind: "BREAK_GLASS".into(),
            title: "Break-glass access".into(),
            body: format!(
                "{} opened the record of {} ({}) outside their care until {} UTC: {reason}",
                session.username,
                p.name,
                p.mrn,
                until.format("%Y-%m-%d %H:%M")
            ),
            appointment_id: None,
            created_at: now,
            read: false,
        };
        let id = notice.id.0;
        super::messages::notify(tx, notice)?;
        tx.note_access(healsync_domain::audit::BREAK_GLASS, id, patient);
        Ok(until)
    })
    .await
}

/// The reason of `session`'s break-glass on `patient` while it holds, if it has one:
/// the access it grants is flagged with it in the audit.
pub async fn break_glass_reason(
    node: &Node,
    session: &Session,
    patient: PatientId,
) -> Result<Option<String>, ApiError> {
    if clinician(session).is_err() {
        return Ok(None);
    }
    let user = session.user_id;
    let now = node.now();
    let since = now - Duration::hours(healsync_domain::audit::BREAK_GLASS_HOURS);
    let found = node
        .read(move |c| healsync_store::audit::break_glass(c, user, patient, since))
        .await?;
    Ok(found
        .filter(|(opened, _)| healsync_domain::audit::break_glass_holds(*opened, now))
        .map(|(_, reason)| reason))
}
