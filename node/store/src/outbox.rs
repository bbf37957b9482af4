//! The node's outbox: e-mail and SMS messages written in the same transaction as the
//! change that causes them, then delivered by a worker that records each outcome.
//!
//! A message is PENDING until a relay accepts it (SENT) or it fails for good (FAILED,
//! with the reason). Its id is its idempotency key; the worker marks it only after
//! the relay answered, so a crash in between sends it again with the same key. The
//! outbox is this node's own state: it is neither a projection nor synced.

use chrono::{DateTime, Utc};
use healsync_domain::messaging::{Channel, MAX_ATTEMPTS, MessageStatus, retry_delay};
use healsync_domain::{AppointmentId, NotificationId, OutboundMessageId, PatientId};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::queries::{conv_err, id, ms, opt_id, time};
use crate::{Store, StoreError, WriteTx};

type Result<T> = std::result::Result<T, StoreError>;

/// The channels a node delivers on, as configured at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Channels {
    pub email: bool,
    pub sms: bool,
}

impl Channels {
    pub(crate) fn from_bits(b: u8) -> Channels {
        Channels {
            email: b & 1 != 0,
            sms: b & 2 != 0,
        }
    }

    fn bits(self) -> u8 {
        u8::from(self.email) | (u8::from(self.sms) << 1)
    }

    /// The channels as a list, e-mail first.
    pub fn list(self) -> Vec<Channel> {
        let mut out = vec![];
        if self.email {
            out.push(Channel::Email);
        }
        if self.sms {
            out.push(Channel::Sms);
        }
        out
    }
}

/// A message to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub id: OutboundMessageId,
    pub channel: Channel,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub patient_id: Option<PatientId>,
    pub notification_id: Option<NotificationId>,
}

/// A message of the outbox as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: OutboundMessageId,
    pub channel: Channel,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub patient_id: Option<PatientId>,
    pub status: MessageStatus,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

fn outbox_row(row: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: id(row, "id")?,
        channel: Channel::parse(&row.get::<_, String>("channel")?).map_err(conv_err)?,
        recipient: row.get("recipient")?,
        subject: row.get("subject")?,
        body: row.get("body")?,
        patient_id: opt_id(row, "patient_id")?,
        status: MessageStatus::parse(&row.get::<_, String>("status")?).map_err(conv_err)?,
        attempts: row.get("attempts")?,
        next_attempt_at: time(row, "next_attempt_at")?,
        last_error: row.get("last_error")?,
        created_at: time(row, "created_at")?,
        sent_at: row
            .get::<_, Option<i64>>("sent_at")?
            .map(|t| DateTime::from_timestamp_millis(t).ok_or_else(|| conv_err("bad time")))
            .transpose()?,
    })
}

/// Adds a message to the outbox, due at `now`, in the caller's transaction. A message
/// already there (the same id: see `messaging::outbound_id`) is left as it stands.
pub fn enqueue(conn: &Connection, now: DateTime<Utc>, m: &NewMessage) -> Result<()> {
    let now = ms(now);
    conn.prepare_cached(
        "INSERT OR IGNORE INTO outbox(id, channel, recipient, subject, body, patient_id,
            notification_id, status, attempts, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'PENDING', 0, ?8, ?8)",
    )
    .map_err(StoreError::sqlite("prepare an outbox insert"))?
    .execute(params![
        m.id.to_string(),
        m.channel.as_str(),
        m.recipient,
        m.subject,
        m.body,
        m.patient_id.map(|p| p.to_string()),
        m.notification_id.map(|n| n.to_string()),
        now,
    ])
    .map_err(StoreError::sqlite("enqueue a message"))?;
    Ok(())
}

impl WriteTx<'_> {
    /// Adds a message to the outbox, due now, committed with the rest of the write.
    pub fn enqueue(&mut self, m: &NewMessage) -> Result<()> {
        enqueue(self.conn(), self.now(), m)
    }

    /// Records that `appointment`'s reminder is being generated; `false` when it was
    /// already (so each appointment gets one, whatever restarts happen).
    pub fn claim_reminder(&mut self, appointment: AppointmentId) -> Result<bool> {
        let now = ms(self.now());
        let n = self
            .conn()
            .execute(
                "INSERT OR IGNORE INTO reminders(appointment_id, created_at) VALUES (?1, ?2)",
                params![appointment.to_string(), now],
            )
            .map_err(StoreError::sqlite("record a reminder"))?;
        Ok(n == 1)
    }
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Sent,
    /// Worth trying again later (the relay is unreachable, busy, or said "try later").
    Transient(String),
    /// Will never succeed (the relay refused the recipient or the message).
    Permanent(String),
}

impl Store {
    /// Sets the channels this node delivers on: notices to patients enqueue messages
    /// for these only.
    pub fn set_channels(&self, channels: Channels) {
        self.channels
            .store(channels.bits(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The channels this node delivers on.
    pub fn channels(&self) -> Channels {
        Channels::from_bits(self.channels.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Up to `limit` pending messages due at `now`, oldest first.
    pub fn outbox_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<OutboxRow>> {
        self.read(|c| {
            crate::queries::all(
                c,
                "read due messages",
                "SELECT * FROM outbox WHERE status = 'PENDING' AND next_attempt_at <= ?1
                 ORDER BY next_attempt_at, id LIMIT ?2",
                &[&ms(now), &limit],
                outbox_row,
            )
        })
    }

    /// Records the outcome of an attempt to send message `id` at `now`; returns the
    /// message's new status. A transient failure is retried after
    /// `messaging::retry_delay`, up to `MAX_ATTEMPTS`.
    pub fn outbox_record(
        &self,
        id: OutboundMessageId,
        now: DateTime<Utc>,
        attempt: &Attempt,
    ) -> Result<MessageStatus> {
        let conn = self.writer()?;
        let attempts: Option<u32> = conn
            .query_row(
                "SELECT attempts FROM outbox WHERE id = ?1 AND status = 'PENDING'",
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sqlite("read a message"))?;
        let Some(attempts) = attempts.map(|a| a + 1) else {
            // Already settled (another worker, or a repeat after a restart).
            return Ok(MessageStatus::Sent);
        };
        let (status, next, error, sent) = match attempt {
            Attempt::Sent => (MessageStatus::Sent, now, None, Some(ms(now))),
            Attempt::Permanent(why) => (MessageStatus::Failed, now, Some(why.as_str()), None),
            Attempt::Transient(why) if attempts >= MAX_ATTEMPTS => {
                (MessageStatus::Failed, now, Some(why.as_str()), None)
            }
            Attempt::Transient(why) => (
                MessageStatus::Pending,
                now + retry_delay(attempts),
                Some(why.as_str()),
                None,
            ),
        };
        conn.execute(
            "UPDATE outbox SET status = ?2, attempts = ?3, next_attempt_at = ?4,
                last_error = COALESCE(?5, last_error), sent_at = ?6
             WHERE id = ?1",
            params![
                id.to_string(),
                status.as_str(),
                attempts,
                ms(next),
                error,
                sent
            ],
        )
        .map_err(StoreError::sqlite("record a delivery attempt"))?;
        Ok(status)
    }
}

/// The outbox, newest first, optionally of one status.
pub fn list(
    conn: &Connection,
    status: Option<MessageStatus>,
    limit: u32,
    offset: u32,
) -> Result<Vec<OutboxRow>> {
    crate::queries::all(
        conn,
        "list the outbox",
        "SELECT * FROM outbox WHERE (?1 IS NULL OR status = ?1)
         ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3",
        &[&status.map(|s| s.as_str()), &limit, &offset],
        outbox_row,
    )
}

/// How many messages stand in each status.
pub fn counts(conn: &Connection) -> Result<Vec<(MessageStatus, i64)>> {
    crate::queries::all(
        conn,
        "count the outbox",
        "SELECT status, count(*) AS n FROM outbox GROUP BY status ORDER BY status",
        &[],
        |r| {
            Ok((
                MessageStatus::parse(&r.get::<_, String>("status")?).map_err(conv_err)?,
                r.get("n")?,
            ))
        },
    )
}

/// A patient's latest message preference.
pub fn preference(
    conn: &Connection,
    patient: PatientId,
) -> Result<Option<healsync_domain::MessagePreference>> {
    crate::queries::one(
        conn,
        "read a message preference",
        "SELECT * FROM message_preferences WHERE patient_id = ?1
         ORDER BY updated_at DESC, id DESC LIMIT 1",
        &[&patient.to_string()],
        |r| {
            Ok(healsync_domain::MessagePreference {
                id: id(r, "id")?,
                patient_id: id(r, "patient_id")?,
                site: r.get("site")?,
                email: r.get("email")?,
                sms: r.get("sms")?,
                updated_at: time(r, "updated_at")?,
            })
        },
    )
}

/// The booked appointments of `site` starting in `(from, to]` that have had no
/// reminder yet, soonest first.
pub fn due_reminders(
    conn: &Connection,
    site: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<AppointmentId>> {
    crate::queries::all(
        conn,
        "find appointments due a reminder",
        "SELECT a.id FROM appointments a
         WHERE a.site = ?1 AND a.status = 'BOOKED' AND a.start_at > ?2 AND a.start_at <= ?3
           AND NOT EXISTS (SELECT 1 FROM reminders r WHERE r.appointment_id = a.id)
         ORDER BY a.start_at, a.id LIMIT ?4",
        &[&site, &ms(from), &ms(to), &limit],
        |r| id(r, "id"),
    )
}
