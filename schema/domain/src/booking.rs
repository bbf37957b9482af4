//! The booking rule: whether a patient may be booked with a doctor at an instant at a
//! site, and the appointment that results. One function for every server that books
//! (a clinic's node and the hub), called inside the write's transaction with the facts
//! that transaction read, so the two can never disagree about what is bookable.

use chrono::{DateTime, Utc};

use crate::patient::parse_opt_text;
use crate::{
    Appointment, AppointmentId, AppointmentStatus, Doctor, DoctorId, DomainError, Leave, Patient,
    PatientId, Schedule, Slot,
};

/// Longest reason for a visit, in characters.
pub const MAX_REASON: usize = 500;
/// Longest booking note, in characters.
pub const MAX_NOTES: usize = 2000;

/// What someone asks to book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRequest {
    pub patient_id: PatientId,
    pub doctor_id: DoctorId,
    /// The site whose schedule holds the slot; the appointment belongs to it.
    pub site: String,
    /// A slot's start.
    pub start: DateTime<Utc>,
    pub reason: Option<String>,
    pub notes: Option<String>,
}

/// Whose appointment holds a time: the doctor's or the patient's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    Doctor,
    Patient,
}

/// A time already taken, of the doctor or of the patient, at any site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub whose: Whose,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Busy {
    /// The times an appointment takes from this doctor and from this patient (none
    /// once it no longer holds time, none for the appointment being moved).
    pub fn of(
        a: &Appointment,
        doctor: DoctorId,
        patient: PatientId,
        moving: Option<AppointmentId>,
    ) -> impl Iterator<Item = Busy> {
        let holds = a.status.holds_time() && Some(a.id) != moving;
        let whose = [
            (a.doctor_id == doctor).then_some(Whose::Doctor),
            (a.patient_id == patient).then_some(Whose::Patient),
        ];
        let (start, end) = (a.start, a.end);
        whose
            .into_iter()
            .flatten()
            .filter(move |_| holds)
            .map(move |whose| Busy { whose, start, end })
    }
}

/// What the server read, in the booking's transaction, to decide it: the doctor's
/// active schedule at the site (if any), their leave around the instant, and what the
/// doctor and the patient are already booked for around it (one day either side is
/// enough: no slot is longer).
#[derive(Debug, Clone, Copy)]
pub struct Calendar<'a> {
    pub schedule: Option<&'a Schedule>,
    pub leaves: &'a [Leave],
    pub busy: &'a [Busy],
}

/// The slot of the calendar's schedule that starts at `start`, if the doctor and the
/// patient are both free then. A slot that has begun or is over can be booked too:
/// a walk-in seen now, or visits written on paper while the system was down and
/// entered afterwards (clients offer only upcoming slots).
pub fn free_slot(cal: Calendar<'_>, start: DateTime<Utc>) -> Result<Slot, DomainError> {
    let schedule = cal.schedule.filter(|s| s.active).ok_or_else(|| {
        DomainError::invalid("doctorId", "the doctor has no active schedule at this site")
    })?;
    let slot = schedule.slot_at(cal.leaves, start)?;
    let taken = |whose| {
        cal.busy.iter().any(|b| {
            b.whose == whose && crate::schedule::overlaps(slot.start, slot.end, b.start, b.end)
        })
    };
    if taken(Whose::Doctor) {
        return Err(DomainError::Refused("this slot is already booked".into()));
    }
    if taken(Whose::Patient) {
        return Err(DomainError::Refused(
            "the patient already has an appointment at that time".into(),
        ));
    }
    Ok(slot)
}

/// Decides a booking: the doctor and the patient are the ones asked for and active,
/// the instant is a free slot of the doctor's schedule at the site, the texts are
/// bounded. Returns the new appointment (status BOOKED, belonging to the site).
pub fn book(
    req: BookingRequest,
    doctor: &Doctor,
    patient: &Patient,
    cal: Calendar<'_>,
    id: AppointmentId,
    now: DateTime<Utc>,
) -> Result<Appointment, DomainError> {
    if doctor.id != req.doctor_id || patient.id != req.patient_id {
        return Err(DomainError::invalid(
            "input",
            "the doctor and patient read are not the ones asked for",
        ));
    }
    if !doctor.active {
        return Err(DomainError::invalid(
            "doctorId",
            "this doctor is not active",
        ));
    }
    if !patient.active {
        return Err(DomainError::invalid(
            "patientId",
            "this patient record is deactivated",
        ));
    }
    let reason = parse_opt_text("reason", req.reason.as_deref(), MAX_REASON)?;
    let notes = parse_opt_text("notes", req.notes.as_deref(), MAX_NOTES)?;
    let slot = free_slot(cal, req.start)?;
    Ok(Appointment {
        id,
        patient_id: patient.id,
        doctor_id: doctor.id,
        site: req.site,
        start: slot.start,
        end: slot.end,
        status: AppointmentStatus::Booked,
        reason,
        notes,
        created_at: now,
        updated_at: now,
    })
}

#[cfg(test)]
mod tests;
