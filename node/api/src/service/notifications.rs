//! Notifications: written in the same transaction as the change they announce (so a
//! booking and its notifications are committed together or not at all).

use healsync_domain::notification::appointment_notices;
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
    let now = tx.now();
    for notice in appointment_notices(kind, a, patient, doctor, now, [new_id(), new_id()]) {
        super::messages::notify(tx, notice)?;
    }
    Ok(())
}

/// The audience a session reads notifications as: its patient or doctor record, and
/// for an ADMIN with neither, the site's administrators.
pub fn audience_of(session: &Session) -> Option<Audience> {
    Audience::of_account(session.role, session.patient_id, session.doctor_id)
}

pub async fn mark_read(
    node: &Node,
    session: &Session,
    id: NotificationId,
) -> Result<Notification, ApiError> {
    let audience = audience_of(session);
    node.write(session.acting("mark_read"), move |tx| {
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
