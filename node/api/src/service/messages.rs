//! Messages to patients: every notice to a patient is written with the e-mail and SMS
//! messages it becomes (in the same transaction, so neither exists without the other),
//! patients' channel choices, and appointment reminders.

use chrono::{DateTime, Duration, Utc};
use healsync_domain::messaging::{self, Channel, MessagePreference};
use healsync_domain::{Appointment, Audience, Notification, PatientId, Role};
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
/// the hub), goes out from here as if this node had written it, once all it speaks of
/// is here. Sync gives no order between documents, so whichever of the notice, its
/// appointment and its patient arrives last sends it: each, when it first arrives
/// (`created`), looks for what the others complete. A later change to any of them
/// (a notice read elsewhere, say) sends nothing. A notice about another site's
/// appointment is that site's to send, and a notice whose appointment has ended is
/// not sent at all (news of a visit that is over, after days offline, is noise).
/// Message ids derive from the notice, so asking twice queues one message. Asked
/// inside the merge's transaction (`Store::apply_remote_with`).
pub fn for_merged(
    conn: &Connection,
    site: &str,
    channels: &[Channel],
    now: DateTime<Utc>,
    record: &AnyRecord,
    created: bool,
) -> Result<Vec<NewMessage>, StoreError> {
    if !created || channels.is_empty() {
        return Ok(vec![]);
    }
    let upcoming_here = |a: &Appointment| a.site == site && a.end > now;
    let notices = match record {
        AnyRecord::Notification(n) => match n.appointment_id {
            Some(id) => match queries::appointment(conn, id)? {
                Some(a) if upcoming_here(&a) => vec![n.clone()],
                _ => vec![],
            },
            None => vec![],
        },
        AnyRecord::Appointment(a) if upcoming_here(a) => queries::notifications_about(conn, a.id)?,
        AnyRecord::Patient(p) => {
            let mut notices = Vec::new();
            for a in queries::appointments_of_patients(conn, &[p.id])? {
                if upcoming_here(&a) {
                    notices.extend(queries::notifications_about(conn, a.id)?);
                }
            }
            notices
        }
        _ => vec![],
    };
    let clinic = format!("{site} clinic");
    let mut out = Vec::new();
    for n in &notices {
        out.extend(messages(conn, n, channels, &clinic)?);
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    //! A notice booked at the hub reaches its clinic with its appointment and its
    //! patient in any order, over any number of downloads: it is sent once, when the
    //! last of the three arrives.
    use super::*;
    use healsync_domain::{Patient, SiteCode};
    use healsync_records::samples;
    use healsync_store::{Incoming, Store};
    use uuid::Uuid;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("instant").to_utc()
    }

    /// A patient, an appointment at `site` ending at `ends`, and the patient's notice
    /// of it, written at a node of NBO (standing in for the hub that relays them).
    fn booking(site: &str, ends: &str) -> (Store, tempfile::TempDir, [Uuid; 3]) {
        let dir = tempfile::tempdir().expect("dir");
        let store =
            Store::open(dir.path(), Some(&SiteCode::parse("NBO").expect("site"))).expect("open");
        let p: Patient = samples::patient();
        let mut a = samples::appointment();
        a.patient_id = p.id;
        a.site = site.into();
        a.end = at(ends);
        a.start = a.end - Duration::minutes(20);
        let n = Notification {
            id: healsync_domain::NotificationId(Uuid::now_v7()),
            audience: Audience::Patient(p.id),
            kind: "APPOINTMENT_BOOKED".into(),
            title: "Appointment booked".into(),
            body: "Follow-up with Dr. Kamau".into(),
            appointment_id: Some(a.id),
            created_at: at("2026-11-23T08:00:00Z"),
            read: false,
        };
        let ids = [n.id.0, a.id.0, p.id.0];
        store
            .write(at("2026-11-23T08:00:00Z"), |tx| {
                tx.put(&p)?;
                tx.put(&a)?;
                tx.put(&n)
            })
            .expect("write");
        (store, dir, ids)
    }

    fn changes_of(from: &Store, docs: &[Uuid]) -> Vec<Incoming> {
        from.pending_upload(0, usize::MAX)
            .expect("pending")
            .into_iter()
            .filter(|o| docs.contains(&o.doc_id))
            .map(Incoming::from)
            .collect()
    }

    /// Downloads `batches` (indexes into notice, appointment, patient) one by one at a
    /// clinic of NBO delivering e-mail and SMS at `now`; the messages it queued.
    fn queued(site: &str, ends: &str, batches: &[&[usize]]) -> usize {
        let (hub, _h, ids) = booking(site, ends);
        let dir = tempfile::tempdir().expect("dir");
        let clinic = Store::open(dir.path(), Some(&SiteCode::parse("NBO").expect("site")))
            .expect("open clinic");
        let now = at("2026-11-24T08:00:00Z");
        let channels = [Channel::Email, Channel::Sms];
        let hook = |c: &Connection, r: &AnyRecord, created: bool| {
            for_merged(c, "NBO", &channels, now, r, created)
        };
        let mut through = 0;
        for batch in batches {
            let docs: Vec<Uuid> = batch.iter().map(|&i| ids[i]).collect();
            through += 1;
            clinic
                .apply_remote_with(now, changes_of(&hub, &docs), through, &hook)
                .expect("merge");
        }
        // Everything again, as a resent download would bring it: nothing more.
        through += 1;
        clinic
            .apply_remote_with(now, changes_of(&hub, &ids), through, &hook)
            .expect("again");
        clinic
            .outbox_due(at("2030-01-01T00:00:00Z"), 100)
            .expect("outbox")
            .len()
    }

    #[test]
    fn a_notice_is_sent_by_whichever_of_its_parts_arrives_last() {
        const N: usize = 0;
        const A: usize = 1;
        const P: usize = 2;
        let upcoming = "2026-11-24T09:20:00Z";
        let cases: &[(&str, &str, &[&[usize]], usize)] = &[
            ("all at once", "NBO", &[&[N, A, P]], 2),
            ("notice last", "NBO", &[&[P, A], &[N]], 2),
            ("appointment last", "NBO", &[&[P, N], &[A]], 2),
            ("patient last", "NBO", &[&[N, A], &[P]], 2),
            ("one by one, notice first", "NBO", &[&[N], &[A], &[P]], 2),
            ("one by one, patient first", "NBO", &[&[P], &[N], &[A]], 2),
            ("another site's appointment", "MSA", &[&[N], &[A], &[P]], 0),
            ("another site's, at once", "MSA", &[&[N, A, P]], 0),
        ];
        for &(what, site, batches, expected) in cases {
            assert_eq!(queued(site, upcoming, batches), expected, "{what}");
        }
        // An appointment already over by the time its news arrives: nothing is sent.
        assert_eq!(
            queued("NBO", "2026-11-24T07:59:00Z", &[&[N], &[A], &[P]]),
            0,
            "ended"
        );
    }
}
