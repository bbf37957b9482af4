//! SMS through an HTTP gateway: one POST per message with a JSON body built from a
//! template, the configured `Authorization` header, and the message's id as
//! `Idempotency-Key`.

use std::time::Duration;

use healsync_store::outbox::{Attempt, OutboxRow};

use crate::ConfigError;

/// The default body: `{"to": "...", "text": "...", "id": "..."}`.
pub const DEFAULT_TEMPLATE: &str = r#"{"to": "{to}", "text": "{text}", "id": "{id}"}"#;

/// Where SMS go.
#[derive(Clone)]
pub struct SmsConfig {
    /// The gateway's endpoint (`https://...`).
    pub url: String,
    /// The `Authorization` header's value (a secret; never logged).
    pub authorization: Option<String>,
    /// The JSON body, with `{to}`, `{text}` and `{id}` inside JSON strings.
    pub template: String,
}

impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl SmsConfig {
    /// The gateway's scheme and host, without path, query or credentials.
    pub fn describe(&self) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("http", &self.url));
        let host = rest.split(['/', '?']).next().unwrap_or(rest);
        let host = host.rsplit('@').next().unwrap_or(host);
        format!("via {scheme}://{host}")
    }
}

/// Fills the template: each placeholder becomes the value escaped for a JSON string.
pub fn render(template: &str, to: &str, text: &str, id: &str) -> String {
    let esc = |s: &str| {
        let quoted = serde_json::Value::String(s.to_string()).to_string();
        quoted[1..quoted.len() - 1].to_string()
    };
    template
        .replace("{to}", &esc(to))
        .replace("{text}", &esc(text))
        .replace("{id}", &esc(id))
}

pub(crate) struct Sender {
    client: reqwest::Client,
    config: SmsConfig,
}

impl Sender {
    pub(crate) fn new(c: &SmsConfig) -> Result<Sender, ConfigError> {
        if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
            return Err(ConfigError::Gateway(c.url.clone()));
        }
        let sample = render(&c.template, "+254700000000", "a \"quoted\" text", "id");
        serde_json::from_str::<serde_json::Value>(&sample)
            .map_err(|e| ConfigError::Template(e.to_string()))?;
        if !(c.template.contains("{to}") && c.template.contains("{text}")) {
            return Err(ConfigError::Template("{to} or {text} is missing".into()));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        Ok(Sender {
            client,
            config: c.clone(),
        })
    }

    pub(crate) async fn send(&self, m: &OutboxRow) -> Attempt {
        let key = m.id.to_string();
        let body = render(&self.config.template, &m.recipient, &m.body, &key);
        let mut request = self
            .client
            .post(&self.config.url)
            .header("content-type", "application/json")
            .header("idempotency-key", &key)
            .body(body);
        if let Some(auth) = &self.config.authorization {
            request = request.header("authorization", auth);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Transient(format!("the gateway did not answer: {e}")),
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Sent;
        }
        let text: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        let why = format!("the gateway answered HTTP {}: {text}", status.as_u16());
        if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
            Attempt::Permanent(why)
        } else {
            Attempt::Transient(why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_escapes_what_it_is_given() {
        let body = render(DEFAULT_TEMPLATE, "+254 712", "Say \"hi\"\nnow", "k-1");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["to"], "+254 712");
        assert_eq!(v["text"], "Say \"hi\"\nnow");
        assert_eq!(v["id"], "k-1");
        let c = SmsConfig {
            url: "https://user:pw@sms.example.org/v1/send?key=secret".into(),
            authorization: Some("Bearer secret".into()),
            template: DEFAULT_TEMPLATE.into(),
        };
        assert_eq!(c.describe(), "via https://sms.example.org");
        assert!(!format!("{c:?}").contains("secret"));
        let bad = SmsConfig {
            template: r#"{"to": {to}}"#.into(),
            ..c
        };
        assert!(Sender::new(&bad).is_err());
    }
}
