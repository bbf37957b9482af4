//! The hub's certificate authority. Its key never leaves the hub's data directory
//! (`ca-key.pem`, mode 0600); nodes receive the CA certificate and their own
//! certificate and key at enrollment.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use uuid::Uuid;

use crate::{HUB_NAME, TransportError, node_name};

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub cert_pem: String,
    pub key_pem: String,
}

pub struct HubCa {
    key: KeyPair,
    cert_pem: String,
}

const KEY_FILE: &str = "ca-key.pem";
const CERT_FILE: &str = "ca-cert.pem";

fn cert_err(e: rcgen::Error) -> TransportError {
    TransportError::Certificate(e.to_string())
}

/// The CA's parameters. Deterministic, so that the issuer can be rebuilt from the
/// stored key alone: what signing uses is the name and the key.
fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "HealSync");
    dn.push(DnType::CommonName, "HealSync hub CA");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2045, 1, 1);
    p
}

fn write_file(path: &Path, text: &str, private: bool) -> Result<(), TransportError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let io = |action| move |source| TransportError::Io { action, source };
    let mut f = opts.open(path).map_err(io("create a CA file"))?;
    f.write_all(text.as_bytes())
        .map_err(io("write a CA file"))?;
    f.sync_all().map_err(io("sync a CA file"))
}

/// Creates `dir` (the CA key and the session key live there) readable by this account
/// only (0700), and narrows an existing one.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        b.mode(0o700);
        b.create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    b.create(dir)
}

impl HubCa {
    /// Loads the CA from `dir`; fails when there is none (commands other than the
    /// hub's `serve` must never make a CA of their own).
    pub fn load(dir: &Path) -> Result<HubCa, TransportError> {
        let io = |action| move |source| TransportError::Io { action, source };
        let key_pem = std::fs::read_to_string(dir.join(KEY_FILE)).map_err(io("read the CA key"))?;
        let cert_pem =
            std::fs::read_to_string(dir.join(CERT_FILE)).map_err(io("read the CA certificate"))?;
        let key = KeyPair::from_pem(&key_pem).map_err(cert_err)?;
        Ok(HubCa { key, cert_pem })
    }

    /// Loads the CA from `dir`, creating it on first use. An existing CA is only read:
    /// the directory may be a read-only mount (a Kubernetes Secret shared by every hub
    /// replica).
    pub fn load_or_create(dir: &Path) -> Result<HubCa, TransportError> {
        let io = |action| move |source| TransportError::Io { action, source };
        let (key_path, cert_path) = (dir.join(KEY_FILE), dir.join(CERT_FILE));
        if key_path.exists() {
            return HubCa::load(dir);
        }
        private_dir(dir).map_err(io("create the hub data directory"))?;
        let key = KeyPair::generate().map_err(cert_err)?;
        let cert = ca_params().self_signed(&key).map_err(cert_err)?;
        let cert_pem = cert.pem();
        write_file(&key_path, &key.serialize_pem(), true)?;
        write_file(&cert_path, &cert_pem, false)?;
        Ok(HubCa { key, cert_pem })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    fn issue(&self, mut params: CertificateParams) -> Result<Credentials, TransportError> {
        let key = KeyPair::generate().map_err(cert_err)?;
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2045, 1, 1);
        let issuer = Issuer::new(ca_params(), &self.key);
        let cert = params.signed_by(&key, &issuer).map_err(cert_err)?;
        Ok(Credentials {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A client certificate for one node of one site.
    pub fn issue_node(&self, node_id: Uuid, site: &str) -> Result<Credentials, TransportError> {
        let mut p = CertificateParams::new(vec![node_name(node_id)]).map_err(cert_err)?;
        p.distinguished_name
            .push(DnType::CommonName, node_id.to_string());
        p.distinguished_name
            .push(DnType::OrganizationalUnitName, site);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(p)
    }

    /// The hub's own server certificate.
    pub fn issue_hub(&self) -> Result<Credentials, TransportError> {
        let mut p = CertificateParams::new(vec![HUB_NAME.to_string()]).map_err(cert_err)?;
        p.distinguished_name.push(DnType::CommonName, HUB_NAME);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(p)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn an_existing_ca_is_read_and_its_directory_left_as_it_is()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let made = HubCa::load_or_create(dir.path())?;
        let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode(dir.path())?, 0o700, "a CA it makes is private");
        // A mounted secret: another mode, not ours to change.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o750))?;
        let loaded = HubCa::load_or_create(dir.path())?;
        assert_eq!(loaded.cert_pem(), made.cert_pem());
        assert_eq!(mode(dir.path())?, 0o750);
        Ok(())
    }
}
