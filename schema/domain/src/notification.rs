//! Notifications to the people an event concerns (a doctor, a patient).

use chrono::{DateTime, Utc};

use crate::{AppointmentId, DoctorId, NotificationId, PatientId};

/// Whom a notification is for: whoever logs in as that patient or doctor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Patient(PatientId),
    Doctor(DoctorId),
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
