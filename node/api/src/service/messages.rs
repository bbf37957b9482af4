//! Messages to patients: every notice to a patient is written with the e-mail and SMS
//! messages it becomes (in the same transaction, so neither exists without the other),
//! patients' channel choices, and appointment reminders.

use chrono::Duration;
use healsync_domain::messaging::{self, Channel, MessagePreference};
use healsync_domain::{Audience, Notification, PatientId, Role};
use healsync_records::AnyRecord;
use healsync_store::audit::AuditContext;
use healsync_store::outbox::{self, NewMessage};
use healsync_store::{Connection, StoreError, WriteTx, queries};

use super::new_id;
use crate::{ApiError, Node, Session};

/// How a clinic signs its messages.
fn clinic(tx: &WriteTx<'_>) -> String {
    format!("{} clinic", tx.site())
}

/// Writes a notification and, for a patient, the messages it becomes on the channels
/// this node delivers, the patient has a contact for and has not opted out of.
pub fn notify(tx: &mut WriteTx<'_>, n: Notification) -> Result<(), ApiError> {
    tx.put(&n)?;
    let clinic = clinic(tx);
    for m in messages(tx.conn(), &n, &tx.channels().list(), &clinic)? {
        tx.enqueue(&m)?;
    }
    Ok(())
}

/// The messages notice `n` becomes at this node (none for a notice to staff, or when no
/// channel is configured). Their ids derive from the notice (`outbound_id`), so the
/// same notice enqueued twice is one message.
fn messages(
    conn: &Connection,
    n: &Notification,
    channels: &[Channel],
    clinic: &str,
) -> Result<Vec<NewMessage>, StoreError> {
    let Audience::Patient(patient) = n.audience else {
        return Ok(vec![]);
    };
    if channels.is_empty() {
        return Ok(vec![]);
    }
    let Some(p) = queries::patient(conn, patient)? else {
        return Ok(vec![]);
    };
    let preference = outbox::preference(conn, patient)?;
    Ok(
        messaging::messages_for(n, &p, preference.as_ref(), channels, clinic)
            .into_iter()
            .map(|m| NewMessage {
                id: messaging::outbound_id(n.id, m.channel),
                channel: m.channel,
                recipient: m.recipient,
                subject: m.subject,
                body: m.body,
                patient_id: Some(patient),
                notification_id: Some(n.id),
            })
            .collect(),
    )
}

/// What a record merged from the hub makes this node send: a notice to a patient about
/// an appointment at this node's site, written elsewhere (a booking made centrally at
/// the hub), goes out from here when it first arrives (`created`), as if this node had
/// written it. A later change to a notice (read elsewhere, say) sends nothing again. The
/// node that wrote a notice sends it; a notice about another site's appointment is that
/// site's to send. Asked inside the merge's transaction (`Store::apply_remote_with`).
pub fn for_merged(
    conn: &Connection,
    site: &str,
    channels: &[Channel],
    record: &AnyRecord,
    created: bool,
) -> Result<Vec<NewMessage>, StoreError> {
    let AnyRecord::Notification(n) = record else {
        return Ok(vec![]);
    };
    if !created {
        return Ok(vec![]);
    }
    let Some(appointment) = n.appointment_id else {
        return Ok(vec![]);
    };
    match queries::appointment(conn, appointment)? {
        Some(a) if a.site == site => messages(conn, n, channels, &format!("{site} clinic")),
        _ => Ok(vec![]),
    }
}

/// Who may change a patient's channels: the patient, or the front desk.
fn may_set(session: &Session, patient: PatientId) -> bool {
    matches!(session.role, Role::Admin | Role::Receptionist)
        || (session.role == Role::Patient && session.patient_id == Some(patient))
}

/// A patient's channels as they stand: their latest choice, or every channel.
pub async fn preferences(
    node: &Node,
    session: &Session,
    patient: PatientId,
) -> Result<(bool, bool), ApiError> {
    if !may_set(session, patient) {
        return Err(ApiError::not_found("patient"));
    }
    let p = node.read(move |c| outbox::preference(c, patient)).await?;
    Ok(p.map_or((true, true), |p| (p.email, p.sms)))
}

/// Records which channels a patient is messaged on (the patient, or the front desk).
pub async fn set_preferences(
    node: &Node,
    session: &Session,
    patient: PatientId,
    email: bool,
    sms: bool,
) -> Result<MessagePreference, ApiError> {
    if !may_set(session, patient) {
        return Err(ApiError::not_found("patient"));
    }
    node.write(session.acting("set_preferences"), move |tx| {
        super::load_patient(tx, patient)?;
        let p = MessagePreference {
            id: new_id(),
            patient_id: patient,
            site: tx.site().to_string(),
            email,
            sms,
            updated_at: tx.now(),
        };
        tx.put(&p)?;
        Ok(p)
    })
    .await
}

/// Generates the reminders due now: each booked appointment of this site starting
/// within `lead` gets one (once, whatever restarts happen). Returns how many.
pub async fn queue_reminders(node: &Node, lead: Duration) -> Result<usize, ApiError> {
    let now = node.now();
    let site = node.store().identity().site.to_string();
    let due = node
        .read(move |c| outbox::due_reminders(c, &site, now, now + lead, 200))
        .await?;
    let mut made = 0;
    for appointment in due {
        let written = node
            .write(AuditContext::system("reminders"), move |tx| {
                let Some(a) = queries::appointment(tx.conn(), appointment)? else {
                    return Ok(false);
                };
                if a.status != healsync_domain::AppointmentStatus::Booked
                    || !messaging::reminder_due(a.start, tx.now(), lead)
                    || !tx.claim_reminder(a.id)?
                {
                    return Ok(false);
                }
                let patient = super::load_patient(tx, a.patient_id)?;
                let doctor = super::load_doctor(tx, a.doctor_id)?;
                let notice = messaging::reminder(&a, &patient, &doctor, tx.now(), new_id());
                notify(tx, notice)?;
                Ok::<_, ApiError>(true)
            })
            .await?;
        made += usize::from(written);
    }
    Ok(made)
}
