//! quinn endpoint configuration with mutual TLS.

use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use uuid::Uuid;

use crate::ca::Credentials;
use crate::{ALPN, TransportError, node_name};

fn tls(e: impl std::fmt::Display) -> TransportError {
    TransportError::Tls(e.to_string())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates in a PEM text.
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    certs(pem)
}

fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(tls)
}

fn key(pem: &str) -> Result<PrivateKeyDer<'static>, TransportError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(tls)
}

fn roots(ca_pem: &str) -> Result<Arc<RootCertStore>, TransportError> {
    let mut roots = RootCertStore::empty();
    for c in certs(ca_pem)? {
        roots.add(c).map_err(tls)?;
    }
    Ok(Arc::new(roots))
}

/// The hub's endpoint: its server certificate (sent with the CA's, for enrolling nodes
/// that pin it), client certificates from its own CA, and both ALPNs (sync, enroll).
/// 0-RTT stays off (the rustls config is built by hand).
pub fn server(ca_pem: &str, hub: &Credentials) -> Result<quinn::ServerConfig, TransportError> {
    // A client certificate is optional in the handshake because enrolling nodes have
    // none yet; one that is presented must chain to the CA, and the sync protocol
    // refuses any session whose certificate does not name the node (`peer_is_node`).
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots(ca_pem)?, provider())
            .allow_unauthenticated()
            .build()
            .map_err(tls)?;
    let mut chain = certs(&hub.cert_pem)?;
    chain.extend(certs(ca_pem)?);
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key(&hub.key_pem)?)
        .map_err(tls)?;
    cfg.alpn_protocols = vec![ALPN.to_vec(), crate::enroll::ALPN_ENROLL.to_vec()];
    cfg.max_early_data_size = 0;
    let quic = QuicServerConfig::try_from(cfg).map_err(tls)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(quic));
    server.transport_config(Arc::new(transport()?));
    Ok(server)
}

/// Silence after which a connection is declared dead: a hub that vanishes mid-sync
/// fails the node's round in seconds, not minutes.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Both ends send keep-alives this often, so a live but quiet connection (a node
/// waiting for a session slot at a busy hub) never reaches [`IDLE_TIMEOUT`].
pub const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(2);

fn transport() -> Result<quinn::TransportConfig, TransportError> {
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(IDLE_TIMEOUT.try_into().map_err(tls)?));
    transport.keep_alive_interval(Some(KEEP_ALIVE));
    Ok(transport)
}

/// A node's endpoint: trusts only its hub's CA, presents its node certificate.
pub fn client(ca_pem: &str, node: &Credentials) -> Result<quinn::ClientConfig, TransportError> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls)?
        .with_root_certificates(roots(ca_pem)?)
        .with_client_auth_cert(certs(&node.cert_pem)?, key(&node.key_pem)?)
        .map_err(tls)?;
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    cfg.enable_early_data = false;
    let quic = QuicClientConfig::try_from(cfg).map_err(tls)?;
    let mut client = quinn::ClientConfig::new(Arc::new(quic));
    client.transport_config(Arc::new(transport()?));
    Ok(client)
}

/// The ALPN protocol the connection negotiated.
pub fn negotiated_alpn(conn: &quinn::Connection) -> Option<Vec<u8>> {
    conn.handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .protocol
}

/// Whether the connection's client certificate (already verified against the CA by
/// the handshake) names `node_id`. A node can only speak for itself.
pub fn peer_is_node(conn: &quinn::Connection, node_id: Uuid) -> bool {
    let Some(identity) = conn.peer_identity() else {
        return false;
    };
    let Ok(chain) = identity.downcast::<Vec<CertificateDer<'static>>>() else {
        return false;
    };
    let Some(leaf) = chain.first() else {
        return false;
    };
    let Ok(cert) = webpki::EndEntityCert::try_from(leaf) else {
        return false;
    };
    let Ok(name) = rustls::pki_types::ServerName::try_from(node_name(node_id)) else {
        return false;
    };
    cert.verify_is_valid_for_subject_name(&name).is_ok()
}

/// What is wrong with a node's certificate, as a technician needs to hear it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateProblem {
    #[error("the certificate or the hub's CA certificate does not parse: {0}")]
    Unreadable(String),
    #[error("the certificate was not issued by this hub's certificate authority")]
    NotFromThisHub,
    #[error("the certificate names another node")]
    OtherNode,
    #[error("the certificate is not valid yet")]
    NotValidYet,
    #[error("the certificate expired")]
    Expired,
    #[error("the certificate is refused: {0}")]
    Refused(String),
}

/// Checks a node's certificate as the hub will when the node connects at `now` (Unix
/// seconds): issued by the hub's CA (`ca_pem`), for a client, naming `node_id`, within
/// its validity. Returns when it expires (Unix seconds).
pub fn check_node_certificate(
    ca_pem: &str,
    cert_pem: &str,
    node_id: Uuid,
    now: u64,
) -> Result<u64, CertificateProblem> {
    use rustls::pki_types::UnixTime;
    let unreadable = |e: TransportError| CertificateProblem::Unreadable(e.to_string());
    let leaf = certs(cert_pem)
        .map_err(unreadable)?
        .into_iter()
        .next()
        .ok_or_else(|| CertificateProblem::Unreadable("no certificate in the file".into()))?;
    let ca = certs(ca_pem)
        .map_err(unreadable)?
        .into_iter()
        .next()
        .ok_or_else(|| CertificateProblem::Unreadable("no CA certificate in the file".into()))?;
    let anchor = webpki::anchor_from_trusted_cert(&ca)
        .map_err(|e| CertificateProblem::Unreadable(e.to_string()))?;
    let cert = webpki::EndEntityCert::try_from(&leaf)
        .map_err(|e| CertificateProblem::Unreadable(e.to_string()))?;
    let anchors = [anchor];
    let verify = |at: u64| {
        cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &[],
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(at)),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map(|_| ())
    };
    match verify(now) {
        Ok(()) => {}
        Err(webpki::Error::CertExpired { .. }) => return Err(CertificateProblem::Expired),
        Err(webpki::Error::CertNotValidYet { .. }) => {
            return Err(CertificateProblem::NotValidYet);
        }
        Err(webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey) => {
            return Err(CertificateProblem::NotFromThisHub);
        }
        Err(e) => return Err(CertificateProblem::Refused(format!("{e:?}"))),
    }
    let name = rustls::pki_types::ServerName::try_from(node_name(node_id))
        .map_err(|e| CertificateProblem::Unreadable(e.to_string()))?;
    if cert.verify_is_valid_for_subject_name(&name).is_err() {
        return Err(CertificateProblem::OtherNode);
    }
    // Checked again far in the future, the refusal names the end of its validity.
    const FAR: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    match verify(FAR) {
        Err(webpki::Error::CertExpired { not_after, .. }) => Ok(not_after.as_secs()),
        _ => Ok(FAR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::HubCa;

    #[test]
    fn a_node_certificate_is_checked_as_the_hub_will_check_it() -> Result<(), TransportError> {
        let (a, b) = (
            tempfile::tempdir().expect("a"),
            tempfile::tempdir().expect("b"),
        );
        let (hub, other_hub) = (
            HubCa::load_or_create(a.path())?,
            HubCa::load_or_create(b.path())?,
        );
        let node = Uuid::now_v7();
        let cert = hub.issue_node(node, "NBO")?.cert_pem;
        let hub_cert = hub.issue_hub()?.cert_pem;
        const NOW: u64 = 1_796_342_400; // 2026-12-04
        const ISSUED_UNTIL: u64 = 2_366_841_600; // 2045-01-01
        /// What, the CA, the certificate, the node, when: what the check says.
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a str,
            Uuid,
            u64,
            Result<u64, CertificateProblem>,
        );
        let cases: &[Case] = &[
            ("sound", hub.cert_pem(), &cert, node, NOW, Ok(ISSUED_UNTIL)),
            (
                "another hub's CA",
                other_hub.cert_pem(),
                &cert,
                node,
                NOW,
                Err(CertificateProblem::NotFromThisHub),
            ),
            (
                "another node's",
                hub.cert_pem(),
                &cert,
                Uuid::now_v7(),
                NOW,
                Err(CertificateProblem::OtherNode),
            ),
            (
                "expired",
                hub.cert_pem(),
                &cert,
                node,
                ISSUED_UNTIL + 1,
                Err(CertificateProblem::Expired),
            ),
            (
                "not yet valid",
                hub.cert_pem(),
                &cert,
                node,
                1_700_000_000,
                Err(CertificateProblem::NotValidYet),
            ),
            (
                "a server's, not a client's",
                hub.cert_pem(),
                &hub_cert,
                node,
                NOW,
                Err(CertificateProblem::Refused("RequiredEkuNotFound".into())),
            ),
        ];
        for (what, ca, cert, node, now, expected) in cases {
            let got = check_node_certificate(ca, cert, *node, *now);
            let got = got.map_err(|e| match e {
                // The EKU refusal's detail varies by webpki version; its kind does not.
                CertificateProblem::Refused(d) if d.starts_with("RequiredEkuNotFound") => {
                    CertificateProblem::Refused("RequiredEkuNotFound".into())
                }
                e => e,
            });
            assert_eq!(&got, expected, "{what}");
        }
        assert!(matches!(
            check_node_certificate(hub.cert_pem(), "not a certificate", node, NOW),
            Err(CertificateProblem::Unreadable(_))
        ));
        Ok(())
    }
}
