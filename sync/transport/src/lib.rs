//! Sync over QUIC with mutual TLS: the only crate that knows quinn and rustls.
//!
//! - [`ca`]: the hub's small certificate authority (rcgen): its own certificate, the
//!   hub's server certificate, and one client certificate per enrolled node, whose
//!   name (`<node-id>.node.healsync`) binds the connection to that node.
//! - [`config`]: endpoint configuration. Both sides use hand-built rustls configs with
//!   the ring provider, TLS 1.3 only (QUIC), ALPN `healsync-sync/1`, and no 0-RTT (no
//!   replayable early data). The hub requires a client certificate from its CA; the
//!   node trusts only its hub's CA.
//! - [`driver`]: runs the protocol sessions of `healsync-sync-protocol` over one
//!   bidirectional stream, performing their actions against storage traits that the
//!   node and the hub implement.

pub mod ca;
pub mod config;
pub mod driver;
pub mod enroll;

/// The ALPN protocol name; a peer speaking anything else is refused in the handshake.
pub const ALPN: &[u8] = b"healsync-sync/1";
/// The name the hub's server certificate carries and nodes verify.
pub const HUB_NAME: &str = "hub.healsync";

/// The DNS name in a node's certificate.
pub fn node_name(node_id: uuid::Uuid) -> String {
    format!("{node_id}.node.healsync")
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    #[error("could not {action}")]
    Io {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("TLS configuration: {0}")]
    Tls(String),
}
