//! Notifications: written in the same transaction as the change they announce (so a
//! booking and its notifications are committed together or not at all).

use healsync_domain::{Appointment, Audience, Doctor, Notification, NotificationId, Patient};
use healsync_store::{WriteTx, queries};

use super::new_id;
use crate::{ApiError, Node, Session};

/// Tells the patient and the doctor about a change to their appointment.
pub fn notify_appointment(
    tx: &mut WriteTx<'_>,
    kind: &str,
    a: &Appointment,
    patient: &Patient,
    doctor: &Doctor,
) -> Result<(), ApiError> {
    let when = a.start.format("%a %d %b %Y %H:%M UTC");
    let (title, verb) = match kind {
        "APPOINTMENT_BOOKED" => ("Appointment booked", "booked"),
        "APPOINTMENT_CANCELLED" => ("Appointment cancelled", "cancelled"),
        "APPOINTMENT_RESCHEDULED" => ("Appointment rescheduled", "moved to"),
        _ => ("Appointment updated", "updated"),
    };
    let now = tx.now();
    for (audience, body) in [
        (
            Audience::Patient(patient.id),
            format!("Your appointment with {} is {verb} {when}.", doctor.name),
        ),
        (
            Audience::Doctor(doctor.id),
            format!(
                "Appointment with {} ({}) {verb} {when}.",
                patient.name, patient.mrn
            ),
        ),
    ] {
        tx.put(&Notification {
            id: new_id(),
            audience,
            kind: kind.to_string(),
            title: title.to_string(),
            body,
            appointment_id: Some(a.id),
            created_at: now,
            read: false,
        })?;
    }
    Ok(())
}

/// The audience a session reads notifications as.
pub fn audience_of(session: &Session) -> Option<Audience> {
    session
        .patient_id
        .map(Audience::Patient)
        .or(session.doctor_id.map(Audience::Doctor))
}

pub async fn mark_read(
    node: &Node,
    session: &Session,
    id: NotificationId,
) -> Result<Notification, ApiError> {
    let audience = audience_of(session);
    node.write(move |tx| {
        let mut n = queries::notification(tx.conn(), id)?
            .filter(|n| Some(n.audience) == audience)
            .ok_or_else(|| ApiError::not_found("notification"))?;
        if !n.read {
            n.read = true;
            tx.put(&n)?;
        }
        Ok(n)
    })
    .await
}
