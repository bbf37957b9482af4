//! Messages to patients by e-mail and SMS: which notices go out on which channel, what
//! they say, when a failed send is retried, and appointment reminders.
//!
//! Delivery is at-least-once: every message has a stable id, sent as the e-mail's
//! `Message-ID` and the SMS gateway's `Idempotency-Key`, so a crash between the relay
//! accepting a message and the outbox recording it repeats it at worst, with the same
//! key. Nothing here does I/O.

use chrono::{DateTime, Duration, Utc};

use crate::billing::text_enum;
use crate::{
    Appointment, Audience, Doctor, MessagePreferenceId, Notification, NotificationId,
    OutboundMessageId, Patient, PatientId,
};

text_enum!(
/// How a message reaches a patient.
Channel, "channel" { Email => "EMAIL", Sms => "SMS" });

text_enum!(
/// Where an outbox message stands.
MessageStatus, "status" { Pending => "PENDING", Sent => "SENT", Failed => "FAILED" });

/// Attempts before a message that keeps failing transiently is given up as FAILED.
pub const MAX_ATTEMPTS: u32 = 10;
/// The longest SMS text sent (two concatenated messages).
pub const MAX_SMS: usize = 306;
/// The notification kind of an appointment reminder.
pub const REMINDER: &str = "APPOINTMENT_REMINDER";

/// How long to wait before attempt `attempts + 1`, after `attempts` failed: 30 s,
/// doubling, at most an hour (a clinic offline for days keeps trying hourly).
pub fn retry_delay(attempts: u32) -> Duration {
    let secs = 30_i64.saturating_mul(1_i64 << attempts.saturating_sub(1).min(7));
    Duration::seconds(secs.min(3_600))
}

/// The id of the message `notification` becomes on `channel`, derived from both: the
/// node whose write caused the notice and a node that received it by sync (a notice
/// written at the hub) write the same message, and writing it twice leaves one.
pub fn outbound_id(notification: NotificationId, channel: Channel) -> OutboundMessageId {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"healsync outbound message\0")
        .chain_update(notification.0.as_bytes())
        .chain_update(channel.as_str().as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    OutboundMessageId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

/// The `Message-ID` of a message: its id at the sending site.
pub fn message_id(id: OutboundMessageId, site: &str) -> String {
    format!("<{id}@{}.healsync>", site.to_ascii_lowercase())
}

/// A patient's choice of channels (the latest one counts). Without one, a patient is
/// messaged on every channel they have a contact for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePreference {
    pub id: MessagePreferenceId,
    pub patient_id: PatientId,
    /// The site that recorded it.
    pub site: String,
    pub email: bool,
    pub sms: bool,
    pub updated_at: DateTime<Utc>,
}

impl MessagePreference {
    pub fn allows(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.email,
            Channel::Sms => self.sms,
        }
    }
}

/// One message to send: to whom, on which channel, saying what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub channel: Channel,
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

/// The messages a notification to a patient becomes, on the channels the node delivers
/// (`channels`), the patient has a contact for and has not opted out of. Notices to
/// doctors and administrators stay in the app.
pub fn messages_for(
    n: &Notification,
    patient: &Patient,
    preference: Option<&MessagePreference>,
    channels: &[Channel],
    clinic: &str,
) -> Vec<Outgoing> {
    if !matches!(n.audience, Audience::Patient(p) if p == patient.id) || !patient.active {
        return vec![];
    }
    let mut out = vec![];
    for &channel in channels {
        if preference.is_some_and(|p| !p.allows(channel)) {
            continue;
        }
        let recipient = match channel {
            Channel::Email => Some(patient.email.trim()).filter(|e| e.contains('@')),
            Channel::Sms => patient
                .phone
                .as_deref()
                .map(str::trim)
                .filter(|p| !p.is_empty()),
        };
        let Some(recipient) = recipient else { continue };
        let subject = format!("{clinic}: {}", n.title);
        let body = match channel {
            Channel::Email => format!(
                "Dear {},\n\n{}\n\n{clinic}\n\n(To stop these e-mails, ask the clinic's front desk.)\n",
                patient.name,
                n.message()
            ),
            Channel::Sms => truncate(&format!("{clinic}: {}", n.message()), MAX_SMS),
        };
        out.push(Outgoing {
            channel,
            recipient: recipient.to_string(),
            subject,
            body,
        });
    }
    out
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

/// Whether an appointment starting at `start` is due its reminder at `now`, with
/// reminders `lead` ahead: it has not started and starts within the lead time.
pub fn reminder_due(start: DateTime<Utc>, now: DateTime<Utc>, lead: Duration) -> bool {
    start > now && start <= now + lead
}

/// The reminder a patient gets before their appointment.
pub fn reminder(
    a: &Appointment,
    patient: &Patient,
    doctor: &Doctor,
    now: DateTime<Utc>,
    id: NotificationId,
) -> Notification {
    Notification {
        id,
        audience: Audience::Patient(patient.id),
        kind: REMINDER.into(),
        title: "Appointment reminder".into(),
        body: format!(
            "You have an appointment with {} on {}.",
            doctor.name,
            a.start.format("%a %d %b %Y %H:%M UTC")
        ),
        appointment_id: Some(a.id),
        created_at: now,
        read: false,
    }
}

#[cfg(test)]
mod tests;
