//! HTTPS and WSS on the clinic LAN: a server certificate (one the clinic provides, or
//! one the server issues itself on first start and keeps in its data directory) and
//! the accept loop that serves a router over TLS (rustls with the ring provider, TLS
//! 1.3, HTTP/1.1 with WebSocket upgrades, as the plain server), with the client's
//! address for the router as `axum::serve` gives it, and a graceful shutdown.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

pub use rustls::ServerConfig;

/// File names of the certificate a server issues itself, in its data directory.
pub const SELF_CERT_FILE: &str = "tls-cert.pem";
pub const SELF_KEY_FILE: &str = "tls-key.pem";

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// How long a shutdown waits for open connections (WebSockets included) to finish.
const DRAIN: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("could not {action}")]
    Io {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the certificate or key is unusable: {0}")]
    Pem(String),
    #[error("could not issue a certificate: {0}")]
    Issue(String),
    #[error("the TLS configuration is refused: {0}")]
    Config(String),
}

/// A server certificate and its key, as PEM text.
pub struct Certificate {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Certificate {
    /// Reads a certificate chain and its private key from PEM files.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Certificate, TlsError> {
        let read = |p: &Path, action| {
            std::fs::read_to_string(p).map_err(|source| TlsError::Io { action, source })
        };
        Ok(Certificate {
            cert_pem: read(cert, "read the TLS certificate")?,
            key_pem: read(key, "read the TLS key")?,
        })
    }

    /// The certificate this server issued itself in `dir`, issuing it (for `names`:
    /// host names and addresses clients use) on first use. The key file is readable
    /// by its owner only. Clients trust it by its fingerprint or by installing it.
    pub fn self_issued(dir: &Path, names: &[String]) -> Result<Certificate, TlsError> {
        let (cert_path, key_path) = (dir.join(SELF_CERT_FILE), dir.join(SELF_KEY_FILE));
        if cert_path.exists() && key_path.exists() {
            return Certificate::from_files(&cert_path, &key_path);
        }
        let key = rcgen::KeyPair::generate().map_err(|e| TlsError::Issue(e.to_string()))?;
        let mut params = rcgen::CertificateParams::new(names.to_vec())
            .map_err(|e| TlsError::Issue(e.to_string()))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "HealSync clinic node");
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2045, 1, 1);
        let cert = params
            .self_signed(&key)
            .map_err(|e| TlsError::Issue(e.to_string()))?;
        let issued = Certificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        write_file(&key_path, issued.key_pem.as_bytes(), true)?;
        write_file(&cert_path, issued.cert_pem.as_bytes(), false)?;
        Ok(issued)
    }

    /// The SHA-256 fingerprint of the (first) certificate, as browsers show it
    /// (upper-case hex pairs separated by colons).
    pub fn fingerprint(&self) -> Result<String, TlsError> {
        let first = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .next()
            .ok_or_else(|| TlsError::Pem("no certificate in the file".into()))?
            .map_err(|e| TlsError::Pem(e.to_string()))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, first.as_ref());
        Ok(digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":"))
    }

    /// The rustls server configuration for this certificate.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let chain = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Pem(e.to_string()))?;
        if chain.is_empty() {
            return Err(TlsError::Pem("no certificate in the file".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| TlsError::Pem(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// How a server was asked to serve: the TLS options of node and hub, one rule for
/// both (with the `cli` feature, their command-line flags too).
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct TlsOptions {
    /// Serve HTTPS and WSS with a certificate this server issues itself on first start
    /// (tls-cert.pem in the data directory; its fingerprint is printed at start).
    #[cfg_attr(feature = "cli", arg(long = "tls", env = "HEALSYNC_TLS"))]
    pub self_issued: bool,
    /// Serve HTTPS and WSS with this certificate chain (PEM) instead.
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "tls-cert",
            env = "HEALSYNC_TLS_CERT",
            value_name = "FILE",
            requires = "key"
        )
    )]
    pub cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "tls-key",
            env = "HEALSYNC_TLS_KEY",
            value_name = "FILE",
            requires = "cert"
        )
    )]
    pub key: Option<std::path::PathBuf>,
    /// Another name (host name or address) a self-issued certificate covers, besides
    /// localhost, this machine's name and the listening address. Repeatable (in the
    /// environment: comma-separated).
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "tls-name",
            env = "HEALSYNC_TLS_NAME",
            value_delimiter = ',',
            value_name = "NAME"
        )
    )]
    pub names: Vec<String>,
    /// Serve plain HTTP on an address other machines reach (behind a TLS-terminating
    /// proxy, say): passwords and health records then travel unencrypted to it.
    #[cfg_attr(feature = "cli", arg(long, env = "HEALSYNC_ALLOW_PLAIN_HTTP"))]
    pub allow_plain_http: bool,
}

impl TlsOptions {
    /// Refuses plain HTTP on an address other machines reach, unless allowed (the
    /// sentence says what to do).
    pub fn check(&self, listen: SocketAddr) -> Result<(), String> {
        let tls = self.self_issued || self.cert.is_some();
        if !tls && !loopback_only(listen) && !self.allow_plain_http {
            return Err(format!(
                "plain HTTP on {listen} would carry passwords and health records unencrypted across the network: add --tls (a certificate this server issues itself), or --tls-cert and --tls-key, or --allow-plain-http to accept that risk"
            ));
        }
        Ok(())
    }

    /// The certificate to serve with (issued into `dir` on first use), or `None` for
    /// plain HTTP.
    pub fn certificate(
        &self,
        dir: &Path,
        listen: SocketAddr,
    ) -> Result<Option<Certificate>, TlsError> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Certificate::from_files(cert, key).map(Some),
            (Some(_), None) | (None, Some(_)) => {
                Err(TlsError::Pem("give both --tls-cert and --tls-key".into()))
            }
            (None, None) if self.self_issued => {
                Certificate::self_issued(dir, &lan_names(listen, &self.names)).map(Some)
            }
            (None, None) => Ok(None),
        }
    }
}

/// The names a self-issued certificate covers: `localhost`, the loopback addresses,
/// the listening address (when it is one), this machine's host name and its `.local`
/// name (mDNS on a clinic LAN), and any `extra`.
pub fn lan_names(listen: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ip = listen.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.push(ip.to_string());
    }
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            names.push(host.to_string());
            if !host.contains('.') {
                names.push(format!("{host}.local"));
            }
        }
    }
    for e in extra {
        if !names.contains(e) {
            names.push(e.clone());
        }
    }
    names
}

/// Whether plain HTTP on `listen` reaches this machine only.
pub fn loopback_only(listen: SocketAddr) -> bool {
    match listen.ip() {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<(), TlsError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    let io = |action| move |source| TlsError::Io { action, source };
    let mut f = opts.open(path).map_err(io("create a TLS file"))?;
    f.write_all(bytes).map_err(io("write a TLS file"))?;
    f.sync_all().map_err(io("sync a TLS file"))
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves, then asks open
/// connections to finish and waits for them a bounded time (upgraded WebSockets run
/// on their own, as with the plain server).
pub async fn serve_tls(
    listener: TcpListener,
    router: Router,
    config: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    // Each connection task holds a sender; when all are gone, every connection ended.
    let (open, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, go on.
                    tracing::warn!("could not accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(
            router
                .clone()
                .layer(axum::Extension(ConnectInfo::<SocketAddr>(peer))),
        );
        let mut stopping = stopping.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let _open = open;
            let tls = match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                // A client that speaks plain HTTP, or never finishes: nothing to serve.
                _ => return,
            };
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopping.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    let _ = stop.send(true);
    drop(open);
    let _ = tokio::time::timeout(DRAIN, all_closed.recv()).await;
    Ok(())
}
