//! Booking, the appointment lifecycle, rescheduling, and which slots are still free.
//!
//! Every check ("is this a slot of the doctor's schedule here", "is it free", "is the
//! patient free then") is the domain's booking rule (`healsync_domain::booking`, the
//! hub calls the same one), run inside the same write transaction as the booking on
//! the facts that transaction read; the store serialises writes: two requests for one
//! slot can never both succeed.

use chrono::{DateTime, Duration, Utc};
use healsync_domain::booking::{self, BookingRequest, Busy, Calendar};
use healsync_domain::schedule::MAX_RANGE_DAYS;
use healsync_domain::{
    Appointment, AppointmentId, AppointmentStatus, DoctorId, DomainError, Leave, PatientId, Role,
    Schedule, Slot,
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
        Role::Finance => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// What the booking rule needs to know, read inside the write transaction: the
/// doctor's schedule at this site, their leave and what the doctor and the patient hold
/// around `start`.
struct Facts {
    schedule: Option<Schedule>,
    leaves: Vec<Leave>,
    busy: Vec<Busy>,
}

impl Facts {
    fn read(
        tx: &WriteTx<'_>,
        doctor: DoctorId,
        patient: PatientId,
        start: DateTime<Utc>,
        moving: Option<AppointmentId>,
    ) -> Result<Facts, ApiError> {
        let site = tx.site().to_string();
        let schedule = queries::schedules_of(tx.conn(), doctor)?
            .into_iter()
            .find(|s| s.site == site && s.active);
        let (from, to) = (start - Duration::days(1), start + Duration::days(1));
        let leaves = queries::leaves_of(tx.conn(), doctor, from, to)?;
        let mut busy = Vec::new();
        for who in [Who::Doctor(doctor), Who::Patient(patient)] {
            for a in queries::holding_overlaps(tx.conn(), who, from, to, moving)? {
                busy.extend(Busy::of(&a, doctor, patient, moving));
            }
        }
        Ok(Facts {
            schedule,
            leaves,
            busy,
        })
    }

    fn calendar(&self) -> Calendar<'_> {
        Calendar {
            schedule: self.schedule.as_ref(),
            leaves: &self.leaves,
            busy: &self.busy,
        }
    }
}

pub async fn book(
    node: &Node,
    session: &Session,
    input: NewAppointment,
) -> Result<Appointment, ApiError> {
    check_booker(session, input.patient_id, input.doctor_id)?;
    let doctor_booking = session.role == Role::Doctor;
    node.write(session.acting("book"), move |tx| {
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
        let facts = Facts::read(tx, doctor.id, patient.id, input.start, None)?;
        let request = BookingRequest {
            patient_id: input.patient_id,
            doctor_id: input.doctor_id,
            site: tx.site().to_string(),
            start: input.start,
            reason: input.reason,
            notes: input.notes,
        };
        let appointment = booking::book(
            request,
            &doctor,
            &patient,
            facts.calendar(),
            new_id(),
            tx.now(),
        )?;
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
        Role::Finance => Err(ApiError::forbidden()),
    }
}

pub async fn set_status(
    node: &Node,
    session: &Session,
    id: AppointmentId,
    to: AppointmentStatus,
) -> Result<Appointment, ApiError> {
    let session = session.clone();
    node.write(session.acting("set_status"), move |tx| {
        let mut a = load_appointment(tx, id)?;
        check_status_change(&session, &a, to)?;
        if !a.change_status(to, tx.now())? {
            return Ok(a);
        }
        tx.put(&a)?;
        if let Some(kind) = AppointmentStatus::notice_for(to) {
            let patient = load_patient(tx, a.patient_id)?;
            let doctor = load_doctor(tx, a.doctor_id)?;
            notify_appointment(tx, kind, &a, &patient, &doctor)?;
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
    node.write(session.acting("reschedule"), move |tx| {
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
        let facts = Facts::read(tx, a.doctor_id, a.patient_id, start, Some(a.id))?;
        let slot = booking::free_slot(facts.calendar(), start)?;
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
