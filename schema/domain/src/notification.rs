//! Notifications to the people an event concerns (a doctor, a patient).

use chrono::{DateTime, Utc};

use crate::{Appointment, AppointmentId, Doctor, DoctorId, NotificationId, Patient, PatientId};

/// Whom a notification is for: whoever logs in as that patient or doctor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Patient(PatientId),
    Doctor(DoctorId),
    /// The administrators of the site that holds the notification (say, of a patient
    /// of theirs shared with another clinic).
    Admins,
}

impl Audience {
    /// The audience's kind and id as documents and projections store them (`Admins`
    /// has no id: the nil UUID).
    pub fn parts(self) -> (&'static str, uuid::Uuid) {
        match self {
            Audience::Patient(p) => ("PATIENT", p.0),
            Audience::Doctor(d) => ("DOCTOR", d.0),
            Audience::Admins => ("ADMINS", uuid::Uuid::nil()),
        }
    }

    /// Whose notifications an account reads: a patient's or a doctor's login theirs,
    /// an administrator the site's notices to its administrators. (The same answer on
    /// a node and at the hub.)
    pub fn of_account(
        role: crate::Role,
        patient: Option<PatientId>,
        doctor: Option<DoctorId>,
    ) -> Option<Audience> {
        patient
            .map(Audience::Patient)
            .or(doctor.map(Audience::Doctor))
            .or((role == crate::Role::Admin).then_some(Audience::Admins))
    }

    /// The audience stored as `kind` and `id`, if `kind` is one.
    pub fn from_parts(kind: &str, id: uuid::Uuid) -> Option<Audience> {
        match kind {
            "PATIENT" => Some(Audience::Patient(id.into())),
            "DOCTOR" => Some(Audience::Doctor(id.into())),
            "ADMINS" => Some(Audience::Admins),
            _ => None,
        }
    }
}

impl Notification {
    /// The notification as one line a person reads (the seed schema's `message`):
    /// its title, then its details.
    pub fn message(&self) -> String {
        if self.body.is_empty() {
            self.title.clone()
        } else {
            format!("{}: {}", self.title, self.body)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: NotificationId,
    pub audience: Audience,
    /// A stable machine name such as `APPOINTMENT_BOOKED`.
    pub kind: String,
    pub title: String,
    pub body: String,
    pub appointment_id: Option<AppointmentId>,
    pub created_at: DateTime<Utc>,
    pub read: bool,
}

/// The two notices, to the patient and to the doctor, announcing a change to their
/// appointment (`kind`: `APPOINTMENT_BOOKED`, `APPOINTMENT_CANCELLED`,
/// `APPOINTMENT_RESCHEDULED`). The same words whether a clinic or the hub booked.
pub fn appointment_notices(
    kind: &str,
    a: &Appointment,
    patient: &Patient,
    doctor: &Doctor,
    now: DateTime<Utc>,
    ids: [NotificationId; 2],
) -> [Notification; 2] {
    let when = a.start.format("%a %d %b %Y %H:%M UTC");
    let (title, verb) = match kind {
        "APPOINTMENT_BOOKED" => ("Appointment booked", "booked"),
        "APPOINTMENT_CANCELLED" => ("Appointment cancelled", "cancelled"),
        "APPOINTMENT_RESCHEDULED" => ("Appointment rescheduled", "moved to"),
        _ => ("Appointment updated", "updated"),
    };
    let notice = |id, audience, body| Notification {
        id,
        audience,
        kind: kind.to_string(),
        title: title.to_string(),
        body,
        appointment_id: Some(a.id),
        created_at: now,
        read: false,
    };
    [
        notice(
            ids[0],
            Audience::Patient(patient.id),
            format!("Your appointment with {} is {verb} {when}.", doctor.name),
        ),
        notice(
            ids[1],
            Audience::Doctor(doctor.id),
            format!(
                "Appointment with {} ({}) {verb} {when}.",
                patient.name, patient.mrn
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use uuid::Uuid;

    use super::*;
    use crate::{Address, AppointmentStatus};

    #[test]
    fn a_booking_tells_the_patient_and_the_doctor() {
        let at = Utc
            .with_ymd_and_hms(2026, 12, 7, 10, 0, 0)
            .single()
            .expect("time");
        let patient = Patient {
            id: PatientId(Uuid::now_v7()),
            mrn: "NBO-000042".into(),
            site: "NBO".into(),
            name: "Amina Njoroge".into(),
            email: "amina@example.org".into(),
            phone: None,
            date_of_birth: None,
            sex: None,
            address: Address::default(),
            emergency_contact: None,
            allergies: vec![],
            active: true,
            created_at: at,
            updated_at: at,
        };
        let doctor = Doctor {
            id: DoctorId(Uuid::now_v7()),
            name: "Dr. Wanjiru Kamau".into(),
            specializations: vec!["General practice".into()],
            licence_number: "KMPDC-1".into(),
            email: None,
            phone: None,
            active: true,
            created_at: at,
            updated_at: at,
        };
        let appt = Appointment {
            id: AppointmentId(Uuid::now_v7()),
            patient_id: patient.id,
            doctor_id: doctor.id,
            site: "MSA".into(),
            start: at,
            end: at + chrono::Duration::minutes(20),
            status: AppointmentStatus::Booked,
            reason: None,
            notes: None,
            created_at: at,
            updated_at: at,
        };
        let ids = [
            NotificationId(Uuid::now_v7()),
            NotificationId(Uuid::now_v7()),
        ];
        let [to_patient, to_doctor] =
            appointment_notices("APPOINTMENT_BOOKED", &appt, &patient, &doctor, at, ids);
        assert_eq!(to_patient.audience, Audience::Patient(patient.id));
        assert_eq!(
            to_patient.body,
            "Your appointment with Dr. Wanjiru Kamau is booked Mon 07 Dec 2026 10:00 UTC."
        );
        assert_eq!(to_doctor.audience, Audience::Doctor(doctor.id));
        assert_eq!(
            to_doctor.body,
            "Appointment with Amina Njoroge (NBO-000042) booked Mon 07 Dec 2026 10:00 UTC."
        );
        assert!(
            [&to_patient, &to_doctor]
                .iter()
                .all(|n| n.appointment_id == Some(appt.id)
                    && !n.read
                    && n.title == "Appointment booked")
        );
    }
}
