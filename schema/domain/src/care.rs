//! Care relationships: when a doctor treats a patient, and so may read the patient's
//! clinical data. A relationship comes from an appointment that was really kept or is
//! really coming (booked by the front desk, by the hub, or by the patient; a doctor
//! cannot book a stranger, see `may_doctor_book`), and it ends
//! [`CARE_ENDS_AFTER_DAYS`] after the last such appointment. A cancelled or missed
//! appointment never makes one, so booking and cancelling reads nothing.

use chrono::{DateTime, Duration, Utc};

use crate::{Appointment, AppointmentStatus};

/// Days after an appointment during which its doctor still treats the patient.
pub const CARE_ENDS_AFTER_DAYS: i64 = 180;
/// Days before an appointment from which its doctor already treats the patient
/// (preparing a visit); a booking further ahead grants nothing yet.
pub const CARE_STARTS_BEFORE_DAYS: i64 = 30;
/// The statuses of an appointment that make a relationship.
pub const CARE_STATUSES: [AppointmentStatus; 3] = [
    AppointmentStatus::Booked,
    AppointmentStatus::CheckedIn,
    AppointmentStatus::Completed,
];

/// The window of appointment start times that make a relationship at `now`:
/// `[now - CARE_ENDS_AFTER_DAYS, now + CARE_STARTS_BEFORE_DAYS]`. Queries in SQL use
/// exactly this window and [`CARE_STATUSES`].
pub fn window(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        now - Duration::days(CARE_ENDS_AFTER_DAYS),
        now + Duration::days(CARE_STARTS_BEFORE_DAYS),
    )
}

/// Whether `appointment` makes its doctor the patient's doctor at `now`.
pub fn makes_care(appointment: &Appointment, now: DateTime<Utc>) -> bool {
    let (from, to) = window(now);
    CARE_STATUSES.contains(&appointment.status)
        && appointment.start >= from
        && appointment.start <= to
}

/// Whether a DOCTOR may book this patient into their own schedule: only one already
/// in their care (a follow-up), never a stranger (that would widen their own access).
pub fn may_doctor_book(already_in_care: bool) -> bool {
    already_in_care
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AppointmentId, DoctorId, PatientId};

    fn at(status: AppointmentStatus, days: i64) -> Appointment {
        let now = Utc::now();
        let start = now + Duration::days(days);
        Appointment {
            id: AppointmentId(uuid::Uuid::now_v7()),
            patient_id: PatientId(uuid::Uuid::now_v7()),
            doctor_id: DoctorId(uuid::Uuid::now_v7()),
            site: "NBO".into(),
            start,
            end: start + Duration::minutes(20),
            status,
            reason: None,
            notes: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn which_appointments_make_care() {
        use AppointmentStatus::*;
        let cases = [
            (Completed, -10, true),
            (Completed, -179, true),
            (Completed, -181, false),
            (Booked, 5, true),
            (Booked, 60, false),
            (CheckedIn, 0, true),
            (Cancelled, 1, false),
            (Cancelled, -1, false),
            (NoShow, -1, false),
        ];
        for (status, days, expected) in cases {
            assert_eq!(
                makes_care(&at(status, days), Utc::now()),
                expected,
                "{status:?} {days} days from now"
            );
        }
    }
}
