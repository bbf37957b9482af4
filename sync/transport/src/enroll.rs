//! Enrollment: how a new node gets its certificate. The hub prints a token
//! `SECRET.PIN.SITE`: the one-time secret, the first 16 bytes (hex) of the SHA-256 of
//! the hub CA's certificate, and the site. The node connects with ALPN
//! `healsync-enroll/1` and no client certificate, accepts the hub only if it presents a
//! CA certificate with that fingerprint which signed its server certificate (so the
//! secret is never sent to an impostor), sends the secret and its node id, and receives
//! the CA certificate, its own certificate and key.

use std::net::SocketAddr;
use std::sync::Arc;

use quinn::crypto::rustls::QuicClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde_json::json;
use uuid::Uuid;

use crate::ca::Credentials;
use crate::driver::SyncError;
use crate::{HUB_NAME, TransportError};

pub const ALPN_ENROLL: &[u8] = b"healsync-enroll/1";
const MAX_MESSAGE: usize = 64 * 1024;

/// What a node receives when it enrolls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub site: String,
    pub ca_pem: String,
    pub node: Credentials,
}

/// A parsed enrollment token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub secret: String,
    pub pin: [u8; 16],
    pub site: String,
}

/// The fingerprint nodes pin: the first 16 bytes of SHA-256 of the CA certificate (DER).
pub fn ca_pin(ca_der: &[u8]) -> [u8; 16] {
    let d = ring::digest::digest(&ring::digest::SHA256, ca_der);
    let mut pin = [0u8; 16];
    pin.copy_from_slice(&d.as_ref()[..16]);
    pin
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Token {
    pub fn new(secret: &str, ca_pem: &str, site: &str) -> Result<Token, TransportError> {
        let der = crate::config::certs_from_pem(ca_pem)?
            .into_iter()
            .next()
            .ok_or_else(|| TransportError::Certificate("no CA certificate".into()))?;
        Ok(Token {
            secret: secret.to_string(),
            pin: ca_pin(&der),
            site: site.to_string(),
        })
    }

    pub fn parse(s: &str) -> Result<Token, TransportError> {
        let bad = || {
            TransportError::Certificate("this is not an enrollment token (SECRET.PIN.SITE)".into())
        };
        let mut parts = s.trim().split('.');
        let (Some(secret), Some(pin), Some(site), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if pin.len() != 32 || secret.is_empty() || site.is_empty() {
            return Err(bad());
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&pin[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Token {
            secret: secret.to_string(),
            pin: out,
            site: site.to_string(),
        })
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.secret, hex(&self.pin), self.site)
    }
}

/// Accepts a server whose chain includes a CA with the pinned fingerprint that signed it.
#[derive(Debug)]
struct PinnedCa {
    pin: [u8; 16],
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| ca_pin(c.as_ref()) == self.pin)
            .ok_or(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, &[], server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn enroll_client(pin: [u8; 16]) -> Result<quinn::ClientConfig, TransportError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TransportError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCa { pin, provider }))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![ALPN_ENROLL.to_vec()];
    cfg.enable_early_data = false;
    let quic = QuicClientConfig::try_from(cfg).map_err(|e| TransportError::Tls(e.to_string()))?;
    Ok(quinn::ClientConfig::new(Arc::new(quic)))
}

/// Enrolls `node_id` at the hub with `token`.
pub async fn enroll(hub: SocketAddr, token: &Token, node_id: Uuid) -> Result<Grant, SyncError> {
    let connect = |e: &dyn std::fmt::Display| SyncError::Connect(e.to_string());
    let bind: SocketAddr = if hub.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" }
        .parse()
        .map_err(|e: std::net::AddrParseError| connect(&e))?;
    let mut endpoint = quinn::Endpoint::client(bind).map_err(|e| connect(&e))?;
    endpoint.set_default_client_config(enroll_client(token.pin).map_err(|e| connect(&e))?);
    let conn = endpoint
        .connect(hub, HUB_NAME)
        .map_err(|e| connect(&e))?
        .await
        .map_err(|e| connect(&e))?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| connect(&e))?;
    let request = json!({ "token": token.secret, "nodeId": node_id.to_string() }).to_string();
    send.write_all(request.as_bytes())
        .await
        .map_err(|e| SyncError::Link(e.to_string()))?;
    let _ = send.finish();
    let answer = recv
        .read_to_end(MAX_MESSAGE)
        .await
        .map_err(|e| SyncError::Link(format!("{e:?}")))?;
    conn.close(0u32.into(), b"enrolled");
    let v: serde_json::Value = serde_json::from_slice(&answer)
        .map_err(|_| SyncError::Protocol("the hub's answer is not JSON".into()))?;
    if let Some(e) = v["error"].as_str() {
        return Err(SyncError::Refused(healsync_sync_protocol::Refusal {
            code: healsync_sync_protocol::RefusalCode::UnknownNode,
            message: e.to_string(),
        }));
    }
    let field = |k: &str| {
        v[k].as_str()
            .map(String::from)
            .ok_or_else(|| SyncError::Protocol(format!("the hub's answer has no {k}")))
    };
    Ok(Grant {
        site: field("site")?,
        ca_pem: field("caPem")?,
        node: Credentials {
            cert_pem: field("certPem")?,
            key_pem: field("keyPem")?,
        },
    })
}

/// Serves one enrollment connection with `grant_for(secret, node_id)`.
pub async fn serve_enrollment<F, Fut>(
    conn: quinn::Connection,
    grant_for: F,
) -> Result<(), SyncError>
where
    F: FnOnce(String, Uuid) -> Fut,
    Fut: std::future::Future<Output = Result<Grant, String>>,
{
    let (mut send, mut recv) = conn
        .accept_bi()
        .await
        .map_err(|e| SyncError::Link(e.to_string()))?;
    let request = recv
        .read_to_end(MAX_MESSAGE)
        .await
        .map_err(|e| SyncError::Link(e.to_string()))?;
    let answer = match serde_json::from_slice::<serde_json::Value>(&request) {
        Ok(v) => match (
            v["token"].as_str(),
            v["nodeId"].as_str().and_then(|s| Uuid::parse_str(s).ok()),
        ) {
            (Some(secret), Some(node)) => match grant_for(secret.to_string(), node).await {
                Ok(g) => {
                    json!({ "site": g.site, "caPem": g.ca_pem, "certPem": g.node.cert_pem, "keyPem": g.node.key_pem })
                }
                Err(why) => json!({ "error": why }),
            },
            _ => json!({ "error": "malformed enrollment request" }),
        },
        Err(_) => json!({ "error": "malformed enrollment request" }),
    };
    send.write_all(answer.to_string().as_bytes())
        .await
        .map_err(|e| SyncError::Link(e.to_string()))?;
    let _ = send.finish();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), conn.closed()).await;
    Ok(())
}
