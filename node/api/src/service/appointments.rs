//! Booking, the appointment lifecycle, rescheduling, and which slots are still free.
//!
//! Every check ("is this a slot of the doctor's schedule here", "is it free", "is the
//! patient free then") runs inside the same write transaction as the booking, and the
//! store serialises writes: two requests for one slot can never both succeed.

use chrono::{DateTime, Duration, Utc};
use healsync_domain::schedule::MAX_RANGE_DAYS;
use healsync_domain::{
    Appointment, AppointmentId, AppointmentStatus, DoctorId, DomainError, PatientId, Role, Slot,
};
use healsync_store::queries::{self, Who};
use healsync_store::{Connection, StoreError, WriteTx};

use super::notifications::notify_appointment;
use super::{load_appointment, load_doctor, load_patient, new_id};
use crate::{ApiError, Node, Session};

#[derive(Debug, Clone)]
pub struct NewAppointment {
    pub patient_id: PatientId,
    pub doctor_id: DoctorId,
    pub start: DateTime<Utc>,
    pub reason: Option<String>,
    pub notes: Option<String>,
}

/// Who may book or move an appointment for this patient with this doctor.
fn check_booker(session: &Session, patient: PatientId, doctor: DoctorId) -> Result<(), ApiError> {
    let ok = match session.role {
        Role::Admin | Role::Receptionist => true,
        Role::Patient => session.patient_id == Some(patient),
        Role::Doctor => session.doctor_id == Some(doctor),
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// The slot of this site's schedule for the doctor that starts at `start`, if it is free
/// for the doctor and the patient.
fn free_slot(
    tx: &WriteTx<'_>,
    doctor_id: DoctorId,
    patient_id: PatientId,
    start: DateTime<Utc>,
    moving: Option<AppointmentId>,
) -> Result<Slot, ApiError> {
    let site = tx.site().to_string();
    let schedule = queries::schedules_of(tx.conn(), doctor_id)?
        .into_iter()
        .find(|s| s.site == site && s.active)
        .ok_or_else(|| {
            ApiError::BadInput("this doctor has no active schedule at this site".into())
        })?;
    let leaves = queries::leaves_of(
        tx.conn(),
        doctor_id,
        start - Duration::days(1),
        start + Duration::days(1),
    )?;
    let slot = schedule.slot_at(&leaves, start)?;
    if !queries::holding_overlaps(
        tx.conn(),
        Who::Doctor(doctor_id),
        slot.start,
        slot.end,
        moving,
    )?
    .is_empty()
    {
        return Err(ApiError::Conflict("this slot is already booked".into()));
    }
    if !queries::holding_overlaps(
        tx.conn(),
        Who::Patient(patient_id),
        slot.start,
        slot.end,
        moving,
    )?
    .is_empty()
    {
        return Err(ApiError::Conflict(
            "the patient already has an appointment at that time".into(),
        ));
    }
    Ok(slot)
}

pub async fn book(
    node: &Node,
    session: &Session,
    input: NewAppointment,
) -> Result<Appointment, ApiError> {
    check_booker(session, input.patient_id, input.doctor_id)?;
    let doctor_booking = session.role == Role::Doctor;
    node.write(move |tx| {
        // A doctor books follow-ups of their own patients, never a stranger: a booking
        // makes a care relationship, and nobody widens their own access.
        if doctor_booking {
            let in_care =
                queries::is_patient_of(tx.conn(), input.patient_id, input.doctor_id, tx.now())?;
            if !healsync_domain::care::may_doctor_book(in_care) {
                return Err(ApiError::Forbidden(
                    "a doctor books patients already in their care; the front desk books new ones"
                        .into(),
                ));
            }
        }
        let doctor = load_doctor(tx, input.doctor_id)?;
        let patient = load_patient(tx, input.patient_id)?;
        if !doctor.active {
            return Err(ApiError::BadInput("this doctor is not active".into()));
        }
        if !patient.active {
            return Err(ApiError::BadInput(
                "this patient record is deactivated".into(),
            ));
        }
        let slot = free_slot(tx, doctor.id, patient.id, input.start, None)?;
        let now = tx.now();
        let appointment = Appointment {
            id: new_id(),
            patient_id: patient.id,
            doctor_id: doctor.id,
            site: tx.site().to_string(),
            start: slot.start,
            end: slot.end,
            status: AppointmentStatus::Booked,
            reason: input.reason,
            notes: input.notes,
            created_at: now,
            updated_at: now,
        };
        tx.put(&appointment)?;
        notify_appointment(tx, "APPOINTMENT_BOOKED", &appointment, &patient, &doctor)?;
        Ok(appointment)
    })
    .await
}

/// Which status changes a role may make on an appointment it can see.
fn check_status_change(
    session: &Session,
    a: &Appointment,
    to: AppointmentStatus,
) -> Result<(), ApiError> {
    if !session.sees_appointment(a) {
        return Err(ApiError::not_found("appointment"));
    }
    match session.role {
        Role::Admin | Role::Receptionist | Role::Doctor => Ok(()),
        Role::Patient if to == AppointmentStatus::Cancelled => Ok(()),
        Role::Patient => Err(ApiError::Forbidden("a patient may only cancel".into())),
    }
}

pub async fn set_status(
    node: &Node,
    session: &Session,
    id: AppointmentId,
    to: AppointmentStatus,
) -> Result<Appointment, ApiError> {
    let session = session.clone();
    node.write(move |tx| {
        let mut a = load_appointment(tx, id)?;
        check_status_change(&session, &a, to)?;
        if !a.status.transition(to)? {
            return Ok(a);
        }
        a.status = to;
        a.updated_at = tx.now();
        tx.put(&a)?;
        if to == AppointmentStatus::Cancelled {
            let patient = load_patient(tx, a.patient_id)?;
            let doctor = load_doctor(tx, a.doctor_id)?;
            notify_appointment(tx, "APPOINTMENT_CANCELLED", &a, &patient, &doctor)?;
        }
        Ok(a)
    })
    .await
}

pub async fn reschedule(
    node: &Node,
    session: &Session,
    id: AppointmentId,
    start: DateTime<Utc>,
) -> Result<Appointment, ApiError> {
    let session = session.clone();
    node.write(move |tx| {
        let mut a = load_appointment(tx, id)?;
        if !session.sees_appointment(&a) {
            return Err(ApiError::not_found("appointment"));
        }
        check_booker(&session, a.patient_id, a.doctor_id)?;
        a.check_reschedulable()?;
        if a.site != tx.site().as_str() {
            return Err(ApiError::BadInput(format!(
                "this appointment belongs to site {}; reschedule it there",
                a.site
            )));
        }
        if a.start == start {
            return Ok(a);
        }
        let slot = free_slot(tx, a.doctor_id, a.patient_id, start, Some(a.id))?;
        a.start = slot.start;
        a.end = slot.end;
        a.updated_at = tx.now();
        tx.put(&a)?;
        let patient = load_patient(tx, a.patient_id)?;
        let doctor = load_doctor(tx, a.doctor_id)?;
        notify_appointment(tx, "APPOINTMENT_RESCHEDULED", &a, &patient, &doctor)?;
        Ok(a)
    })
    .await
}

/// Checks an availability range: it must be forward and at most `MAX_RANGE_DAYS` long.
pub fn check_range(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), DomainError> {
    if to <= from {
        return Err(DomainError::invalid("to", "must be after from"));
    }
    if to - from > Duration::days(MAX_RANGE_DAYS) {
        return Err(DomainError::invalid(
            "to",
            format!("at most {MAX_RANGE_DAYS} days after from"),
        ));
    }
    Ok(())
}

/// Free slots of the doctor's schedule at `site` that start in `[from, to)`.
pub fn free_slots(
    conn: &Connection,
    site: &str,
    doctor: DoctorId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Slot>, StoreError> {
    let Some(schedule) = queries::schedules_of(conn, doctor)?
        .into_iter()
        .find(|s| s.site == site && s.active)
    else {
        return Ok(vec![]);
    };
    let leaves = queries::leaves_of(
        conn,
        doctor,
        from - Duration::days(1),
        to + Duration::days(1),
    )?;
    let booked = queries::holding_overlaps(
        conn,
        Who::Doctor(doctor),
        from - Duration::days(1),
        to + Duration::days(1),
        None,
    )?;
    Ok(schedule
        .slots(&leaves, from, to)
        .into_iter()
        .filter(|s| {
            !booked
                .iter()
                .any(|b| healsync_domain::schedule::overlaps(s.start, s.end, b.start, b.end))
        })
        .collect())
}
