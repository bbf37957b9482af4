//! Delivers the clinic node's outbox (`healsync_store::outbox`): e-mail through a
//! configured SMTP relay (lettre), SMS through a configured HTTP gateway, and the
//! appointment reminders due, in one worker loop.
//!
//! Delivery is at-least-once: a message is marked only after the relay or gateway
//! answered, so a crash in between sends it again, with the same `Message-ID` or
//! `Idempotency-Key`. A transient failure (relay unreachable, 4xx SMTP reply, HTTP 5xx,
//! 408 or 429) is retried with back-off; a permanent one (5xx SMTP reply, other HTTP
//! 4xx, an address that is none) marks the message FAILED with the reason. Secrets
//! (relay credentials, the gateway's authorization) never leave this crate's config
//! except to the relay and gateway themselves: [`Config::describe`] leaves them out.

mod email;
mod sms;

use std::sync::Arc;
use std::time::Duration;

use healsync_domain::messaging::{Channel, message_id};
use healsync_node_api::Node;
use healsync_node_api::service::messages;
use healsync_store::outbox::{Attempt, Channels, OutboxRow};

pub use email::EmailConfig;
pub use sms::{DEFAULT_TEMPLATE as DEFAULT_SMS_TEMPLATE, SmsConfig};

/// Why the messaging configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the SMTP relay URL is not usable: {0}")]
    Relay(String),
    #[error("the sender address {0:?} is not an e-mail address")]
    From(String),
    #[error("the SMS gateway URL {0:?} is not an http(s) URL")]
    Gateway(String),
    #[error("the SMS body template must be JSON with {{to}} and {{text}} in strings: {0}")]
    Template(String),
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

/// What the node delivers on, and how often it looks.
#[derive(Debug, Clone)]
pub struct Config {
    pub email: Option<EmailConfig>,
    pub sms: Option<SmsConfig>,
    /// How long before an appointment its reminder goes out.
    pub reminder_lead: chrono::Duration,
    /// How long the worker waits when there is nothing to send.
    pub poll: Duration,
}

impl Config {
    pub fn channels(&self) -> Channels {
        Channels {
            email: self.email.is_some(),
            sms: self.sms.is_some(),
        }
    }

    /// One line for the log: the relay's host and the gateway's host, no secrets.
    pub fn describe(&self) -> String {
        let email = self
            .email
            .as_ref()
            .map_or("off".to_string(), |e| e.describe());
        let sms = self
            .sms
            .as_ref()
            .map_or("off".to_string(), |s| s.describe());
        format!("e-mail {email}; SMS {sms}")
    }
}

/// The senders built from a [`Config`].
struct Senders {
    email: Option<email::Sender>,
    sms: Option<sms::Sender>,
    site: String,
}

impl Senders {
    async fn send(&self, m: &OutboxRow) -> Attempt {
        let key = message_id(m.id, &self.site);
        match m.channel {
            Channel::Email => match &self.email {
                Some(s) => s.send(m, &key).await,
                None => Attempt::Transient("e-mail is not configured on this node".into()),
            },
            Channel::Sms => match &self.sms {
                Some(s) => s.send(m).await,
                None => Attempt::Transient("SMS is not configured on this node".into()),
            },
        }
    }
}

/// How many messages one round takes from the outbox.
const BATCH: u32 = 50;

/// Checks the configuration and starts the worker: it queues the reminders due (when
/// any channel is configured), then sends what is due, for as long as the runtime
/// runs. Tells the store which channels exist, so
/// notices to patients enqueue messages for them.
pub fn start(node: Node, config: Config) -> Result<tokio::task::JoinHandle<()>, ConfigError> {
    let senders = Arc::new(Senders {
        email: config.email.as_ref().map(email::Sender::new).transpose()?,
        sms: config.sms.as_ref().map(sms::Sender::new).transpose()?,
        site: node.store().identity().site.to_string(),
    });
    node.store().set_channels(config.channels());
    Ok(tokio::spawn(run(node, config, senders)))
}

async fn run(node: Node, config: Config, senders: Arc<Senders>) {
    // Reminders are messages: a node that delivers on no channel sends none (the
    // schedule itself is in the app).
    let reminders = config.channels() != Channels::default();
    loop {
        if reminders && let Err(e) = messages::queue_reminders(&node, config.reminder_lead).await {
            tracing::warn!(error = ?e, "could not queue reminders");
        }
        let store = node.store().clone();
        let now = node.now();
        let due = match tokio::task::spawn_blocking(move || store.outbox_due(now, BATCH)).await {
            Ok(Ok(due)) => due,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not read the outbox");
                vec![]
            }
            Err(e) => {
                tracing::error!(error = %e, "outbox reader panicked");
                vec![]
            }
        };
        let full = due.len() == BATCH as usize;
        for m in due {
            let attempt = senders.send(&m).await;
            if let Attempt::Transient(why) | Attempt::Permanent(why) = &attempt {
                tracing::warn!(message = %m.id, channel = m.channel.as_str(), reason = %why,
                    "message not delivered");
            }
            let store = node.store().clone();
            let at = node.now();
            let id = m.id;
            match tokio::task::spawn_blocking(move || store.outbox_record(id, at, &attempt)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, message = %id, "could not record a delivery")
                }
                Err(e) => tracing::error!(error = %e, "outbox writer panicked"),
            }
        }
        if !full {
            tokio::time::sleep(config.poll).await;
        }
    }
}
