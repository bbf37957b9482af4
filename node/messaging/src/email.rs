//! E-mail over SMTP with lettre: `smtp://host:25` (plain, for a relay on the LAN),
//! `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://user:pass@host:465`
//! (TLS from the first byte).

use std::time::Duration;

use healsync_store::outbox::{Attempt, OutboxRow};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::ConfigError;

/// Where e-mail goes, and whom it comes from.
#[derive(Clone)]
pub struct EmailConfig {
    /// The relay as a URL (credentials included); never logged.
    pub relay: String,
    /// The sender, like `Nairobi Clinic <clinic@example.org>`.
    pub from: String,
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl EmailConfig {
    /// The relay's scheme, host and port, without credentials.
    pub fn describe(&self) -> String {
        let (scheme, rest) = self
            .relay
            .split_once("://")
            .unwrap_or(("smtp", &self.relay));
        let host = rest.rsplit('@').next().unwrap_or(rest);
        let host = host.split(['?', '/']).next().unwrap_or(host);
        format!("via {scheme}://{host} from {}", self.from)
    }
}

pub(crate) struct Sender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Sender {
    pub(crate) fn new(c: &EmailConfig) -> Result<Sender, ConfigError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&c.relay)
            .map_err(|e| ConfigError::Relay(e.to_string()))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from = c
            .from
            .parse::<Mailbox>()
            .map_err(|_| ConfigError::From(c.from.clone()))?;
        Ok(Sender { transport, from })
    }

    pub(crate) async fn send(&self, m: &OutboxRow, message_id: &str) -> Attempt {
        let Ok(to) = m.recipient.parse::<Mailbox>() else {
            return Attempt::Permanent(format!("{:?} is not an e-mail address", m.recipient));
        };
        let email = Message::builder()
            .message_id(Some(message_id.to_string()))
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(m.body.clone());
        let email = match email {
            Ok(e) => e,
            Err(e) => return Attempt::Permanent(format!("the message cannot be built: {e}")),
        };
        match self.transport.send(email).await {
            Ok(_) => Attempt::Sent,
            Err(e) if e.is_permanent() => Attempt::Permanent(format!("the relay refused it: {e}")),
            Err(e) => Attempt::Transient(format!("the relay did not take it: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_is_described_without_its_credentials() {
        let c = EmailConfig {
            relay: "smtps://clinic:s3cret@mail.example.org:465?tls=required".into(),
            from: "Nairobi Clinic <clinic@example.org>".into(),
        };
        assert_eq!(
            c.describe(),
            "via smtps://mail.example.org:465 from Nairobi Clinic <clinic@example.org>"
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(Sender::new(&c).is_ok());
        let bad = EmailConfig {
            from: "not an address".into(),
            ..c
        };
        assert!(Sender::new(&bad).is_err());
    }
}
