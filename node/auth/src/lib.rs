//! Credentials and sessions: argon2id password hashes, signed session tokens, and the
//! one login procedure node and hub share ([`login`]).
//!
//! Tokens are JWTs signed with Ed25519 (`EdDSA`): the node holds the private key in its
//! data directory (`session-key.pk8`, created on first start, readable by its owner only),
//! verification accepts that one algorithm only, the expiry is always set and checked with
//! a leeway of [`LEEWAY_SECS`] (the library's default of 60 s is too lax).

use std::path::Path;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use healsync_domain::{DoctorId, PatientId, Role, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand_core::OsRng;
use ring::signature::{Ed25519KeyPair, KeyPair};

/// Clock skew tolerated when checking a token's expiry.
pub const LEEWAY_SECS: u64 = 5;
/// How long a session lasts: one clinic shift.
pub const SESSION_SECS: i64 = 12 * 3600;
/// File name of the session signing key inside the data directory.
pub const KEY_FILE: &str = "session-key.pk8";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("could not {action}")]
    Io {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the session key file is damaged: {0}")]
    BadKey(String),
    #[error("could not hash the password: {0}")]
    Hash(String),
    #[error("the token is invalid: {0}")]
    InvalidToken(String),
    #[error("the token has expired")]
    Expired,
}

/// Hashes a password with argon2id (the crate's defaults: m=19 MiB, t=2, p=1, which is
/// OWASP's minimum) and a random salt; returns the PHC string.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Checks a password against a stored PHC string. A malformed hash never verifies.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A random password of 20 characters from an unambiguous alphabet, for the first admin
/// when none is given.
pub fn generate_password() -> Result<String, AuthError> {
    use ring::rand::SecureRandom;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthError::Hash("no system randomness".into()))?;
    // 256 is not a multiple of 56, so the first characters are a little likelier; at 20
    // characters the password still carries over 110 bits.
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

/// A hash of a random password, verified against when a login names an unknown user, so
/// that unknown and known user names take the same time to refuse.
pub fn decoy_hash() -> Result<String, AuthError> {
    hash_password("decoy password that nobody knows")
}

/// Who a session belongs to and what it may do: the token's claims.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: UserId,
    pub username: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<PatientId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doctor_id: Option<DoctorId>,
    /// At the hub, the sites an administrator is limited to; absent: every site. (A
    /// node's sessions never carry it.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<String>>,
    pub iss: String,
    pub iat: i64,
    /// When the session opened, in unix milliseconds: a session opened in the same
    /// second as a password change, but before it, still ends with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat_ms: Option<i64>,
    pub exp: i64,
}

impl Claims {
    /// What the session says about its account, for the account's rule.
    pub fn facts(&self) -> healsync_domain::user::SessionFacts {
        healsync_domain::user::SessionFacts {
            role: self.role,
            patient_id: self.patient_id,
            doctor_id: self.doctor_id,
            issued_ms: self.issued_ms(),
        }
    }

    /// When the session opened, unix milliseconds (from `iat` for a token without
    /// `iat_ms`).
    pub fn issued_ms(&self) -> i64 {
        self.iat_ms.unwrap_or(self.iat.saturating_mul(1000))
    }
}

/// The node's session signing and verification keys.
pub struct SessionKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
}

impl SessionKeys {
    /// Loads the key from `dir`, creating it (mode 0600) if the directory has none.
    pub fn load_or_create(dir: &Path, issuer: &str) -> Result<SessionKeys, AuthError> {
        let path = dir.join(KEY_FILE);
        let pkcs8 = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let rng = ring::rand::SystemRandom::new();
                let doc = Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| AuthError::BadKey("could not generate a key".into()))?;
                write_private(&path, doc.as_ref())?;
                doc.as_ref().to_vec()
            }
            Err(source) => {
                return Err(AuthError::Io {
                    action: "read the session key",
                    source,
                });
            }
        };
        Self::from_pkcs8(&pkcs8, issuer)
    }

    /// Keys from a PKCS#8 Ed25519 private key.
    pub fn from_pkcs8(pkcs8: &[u8], issuer: &str) -> Result<SessionKeys, AuthError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|e| AuthError::BadKey(e.to_string()))?;
        Ok(SessionKeys {
            encoding: EncodingKey::from_ed_der(pkcs8),
            decoding: DecodingKey::from_ed_der(pair.public_key().as_ref()),
            issuer: issuer.to_string(),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs claims as they are (the caller sets `iat` and `exp`).
    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &self.encoding)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))
    }

    /// Claims for a new session of `SESSION_SECS` starting at `now_ms` (unix
    /// milliseconds).
    pub fn issue(
        &self,
        user: &healsync_domain::User,
        now_ms: i64,
    ) -> Result<(String, Claims), AuthError> {
        self.issue_for_sites(user, None, now_ms)
    }

    /// [`SessionKeys::issue`] for a hub administrator limited to `sites` (`None`: every
    /// site).
    pub fn issue_for_sites(
        &self,
        user: &healsync_domain::User,
        sites: Option<Vec<String>>,
        now_ms: i64,
    ) -> Result<(String, Claims), AuthError> {
        let now = now_ms.div_euclid(1000);
        let claims = Claims {
            sites,
            sub: user.id,
            username: user.username.clone(),
            role: user.role,
            patient_id: user.patient_id,
            doctor_id: user.doctor_id,
            iss: self.issuer.clone(),
            iat: now,
            iat_ms: Some(now_ms),
            exp: now + SESSION_SECS,
        };
        Ok((self.sign(&claims)?, claims))
    }

    /// The session an `Authorization` value (`Bearer <token>`) carries: `Ok(None)` when
    /// there is none, otherwise its verified claims or the sentence a client is shown.
    pub fn bearer(&self, header: Option<&str>) -> Result<Option<Claims>, String> {
        let Some(h) = header else {
            return Ok(None);
        };
        let Some(token) = h.strip_prefix("Bearer ").map(str::trim) else {
            return Err("the Authorization header must be \"Bearer <token>\"".into());
        };
        match self.verify(token) {
            Ok(claims) => Ok(Some(claims)),
            Err(AuthError::Expired) => Err("the session has expired; log in again".into()),
            Err(_) => Err("the token is not valid".into()),
        }
    }

    /// Verifies signature, algorithm, issuer and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let mut v = Validation::new(Algorithm::EdDSA);
        v.leeway = LEEWAY_SECS;
        v.validate_exp = true;
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        v.set_issuer(&[&self.issuer]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::InvalidToken(e.to_string()),
            })
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AuthError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let io = |action| move |source| AuthError::Io { action, source };
    let mut f = opts.open(path).map_err(io("create the session key"))?;
    f.write_all(bytes).map_err(io("write the session key"))?;
    f.sync_all().map_err(io("sync the session key"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use healsync_domain::User;
    use uuid::Uuid;

    fn user() -> User {
        User {
            id: UserId(Uuid::now_v7()),
            username: "amina".into(),
            role: Role::Patient,
            password_hash: String::new(),
            patient_id: Some(PatientId(Uuid::now_v7())),
            doctor_id: None,
            active: true,
            sites: Vec::new(),
            credentials_changed_at: None,
        }
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }

    #[test]
    fn passwords() {
        let h = hash_password("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn tokens_round_trip_and_are_refused_when_expired_forged_or_altered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = SessionKeys::load_or_create(dir.path(), "node-a").expect("keys");
        let again = SessionKeys::load_or_create(dir.path(), "node-a").expect("reload");
        let u = user();
        let (token, claims) = keys.issue(&u, now() * 1000).expect("issue");
        assert_eq!(again.verify(&token).expect("verify"), claims);

        let mut old = claims.clone();
        old.exp = now() - 30; // within the library default leeway of 60 s, beyond ours
        let expired = keys.sign(&old).expect("sign");
        assert!(matches!(keys.verify(&expired), Err(AuthError::Expired)));

        let other_dir = tempfile::tempdir().expect("tempdir");
        let forger = SessionKeys::load_or_create(other_dir.path(), "node-a").expect("keys");
        let (forged, _) = forger.issue(&u, now() * 1000).expect("issue");
        assert!(keys.verify(&forged).is_err());

        let other_issuer = SessionKeys::load_or_create(dir.path(), "node-b").expect("keys");
        let (foreign, _) = other_issuer.issue(&u, now() * 1000).expect("issue");
        assert!(keys.verify(&foreign).is_err());

        // An unsigned token ("alg": "none") is refused.
        let parts: Vec<&str> = token.split('.').collect();
        let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
        assert!(
            keys.verify(&format!("{none_header}.{}.", parts[1]))
                .is_err()
        );
        assert!(keys.verify("garbage").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        SessionKeys::load_or_create(dir.path(), "n").expect("keys");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

pub mod gate;
pub mod login;

pub use login::{Login, LoginRefusal, Peer};
