//! Credentials and sessions: argon2id password hashes, signed session tokens, and the
//! one login procedure node and hub share ([`login`]).
//!
//! Tokens are JWTs signed with Ed25519 (`EdDSA`): the server holds the private key in its
//! data directory (`session-key.pk8`, created on first start, readable by its owner only),
//! names it in each token (`kid`) and, after a [`rotate`], keeps the previous one to
//! verify the sessions it signed; verification accepts that one algorithm only, checks
//! issuer and audience, and the expiry is always set and checked with a leeway of
//! [`LEEWAY_SECS`] (the library's default of 60 s is too lax). Each session has an id
//! (`sid`) that the [`gate`] can end.

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
    /// The API the session is for (a clinic's, or the hub's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The session's id: what `logout` and an administrator end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
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

/// One Ed25519 key and its id (the first 8 bytes of the SHA-256 of its public key, in
/// hex: the `kid` of the tokens it signs).
struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Key {
    fn from_pkcs8(pkcs8: &[u8]) -> Result<Key, AuthError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|e| AuthError::BadKey(e.to_string()))?;
        let public = pair.public_key().as_ref();
        let digest = ring::digest::digest(&ring::digest::SHA256, public);
        let kid = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Key {
            kid,
            encoding: EncodingKey::from_ed_der(pkcs8),
            decoding: DecodingKey::from_ed_der(public),
        })
    }
}

/// A server's session signing and verification keys: the current key signs, and the
/// previous one (kept by [`rotate`]) still verifies the sessions it signed until they
/// expire, so rotating the key logs nobody out.
pub struct SessionKeys {
    current: Key,
    previous: Option<Key>,
    issuer: String,
    audience: String,
}

/// File name of the previous session key (verification only) inside the data
/// directory.
pub const PREVIOUS_KEY_FILE: &str = "session-key.previous.pk8";

/// Replaces the session key in `dir` by a new one. With `keep_previous`, the old key
/// still verifies the sessions it signed (until they expire, at most
/// [`SESSION_SECS`]); without, every session ends (a key that may have been stolen).
/// A server uses the new key from its next start. Returns the new key's id.
pub fn rotate(dir: &Path, keep_previous: bool) -> Result<String, AuthError> {
    let io = |action| move |source| AuthError::Io { action, source };
    let current = dir.join(KEY_FILE);
    let old = std::fs::read(&current).map_err(io("read the session key"))?;
    Key::from_pkcs8(&old)?;
    let previous = dir.join(PREVIOUS_KEY_FILE);
    if keep_previous {
        replace_private(&previous, &old)?;
    } else {
        match std::fs::remove_file(&previous) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(AuthError::Io {
                    action: "remove the previous session key",
                    source: e,
                });
            }
            _ => {}
        }
    }
    let fresh = generate_pkcs8()?;
    replace_private(&current, &fresh)?;
    Ok(Key::from_pkcs8(&fresh)?.kid)
}

fn generate_pkcs8() -> Result<Vec<u8>, AuthError> {
    let rng = ring::rand::SystemRandom::new();
    Ed25519KeyPair::generate_pkcs8(&rng)
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|_| AuthError::BadKey("could not generate a key".into()))
}

impl SessionKeys {
    /// Loads the key (and the previous one, if kept) from `dir`, creating the key
    /// (mode 0600) if the directory has none. Tokens are for `issuer`'s own API: the
    /// audience is the issuer until [`SessionKeys::for_audience`] names another.
    pub fn load_or_create(dir: &Path, issuer: &str) -> Result<SessionKeys, AuthError> {
        let path = dir.join(KEY_FILE);
        let pkcs8 = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let fresh = generate_pkcs8()?;
                write_private(&path, &fresh)?;
                fresh
            }
            Err(source) => {
                return Err(AuthError::Io {
                    action: "read the session key",
                    source,
                });
            }
        };
        let mut keys = Self::from_pkcs8(&pkcs8, issuer)?;
        match std::fs::read(dir.join(PREVIOUS_KEY_FILE)) {
            Ok(bytes) => keys.previous = Some(Key::from_pkcs8(&bytes)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(AuthError::Io {
                    action: "read the previous session key",
                    source,
                });
            }
        }
        Ok(keys)
    }

    /// Keys from a PKCS#8 Ed25519 private key.
    pub fn from_pkcs8(pkcs8: &[u8], issuer: &str) -> Result<SessionKeys, AuthError> {
        Ok(SessionKeys {
            current: Key::from_pkcs8(pkcs8)?,
            previous: None,
            issuer: issuer.to_string(),
            audience: issuer.to_string(),
        })
    }

    /// The same keys, for tokens whose audience is `audience` (a clinic's API, say).
    pub fn for_audience(self, audience: &str) -> SessionKeys {
        SessionKeys {
            audience: audience.to_string(),
            ..self
        }
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The id of the key that signs new sessions.
    pub fn key_id(&self) -> &str {
        &self.current.kid
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs claims as they are (the caller sets `iat`, `exp` and `aud`), with the
    /// current key, naming it in the header.
    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.current.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.current.encoding)
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
            aud: Some(self.audience.clone()),
            sid: Some(new_session_id()?),
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

    /// Verifies signature (by the key the header names: the current or the previous
    /// one), algorithm, issuer, audience and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        let key = match header.kid.as_deref() {
            None => &self.current,
            Some(kid) if kid == self.current.kid => &self.current,
            Some(kid) => match &self.previous {
                Some(p) if p.kid == kid => p,
                _ => return Err(AuthError::InvalidToken("signed by an unknown key".into())),
            },
        };
        let mut v = Validation::new(Algorithm::EdDSA);
        v.leeway = LEEWAY_SECS;
        v.validate_exp = true;
        v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        jsonwebtoken::decode::<Claims>(token, &key.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::InvalidToken(e.to_string()),
            })
    }
}

/// A random session id: 128 bits, hex.
fn new_session_id() -> Result<String, AuthError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthError::Hash("no system randomness".into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes a private file in place of `path` (a temporary file, synced, then renamed
/// over it), so a crash leaves the old or the new content, never a torn one.
fn replace_private(path: &Path, bytes: &[u8]) -> Result<(), AuthError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, bytes)?;
    std::fs::rename(&tmp, path).map_err(|source| AuthError::Io {
        action: "replace a session key",
        source,
    })
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

    #[test]
    fn a_rotated_key_keeps_its_sessions_unless_they_are_ended() {
        let dir = tempfile::tempdir().expect("tempdir");
        let load = || {
            SessionKeys::load_or_create(dir.path(), "node-a")
                .expect("keys")
                .for_audience("healsync:NBO")
        };
        let first = load();
        let u = user();
        let (old, _) = first.issue(&u, now() * 1000).expect("issue");

        let kid = rotate(dir.path(), true).expect("rotate");
        let second = load();
        assert_eq!(second.key_id(), kid);
        assert_ne!(second.key_id(), first.key_id());
        let (new, _) = second.issue(&u, now() * 1000).expect("issue");
        assert!(second.verify(&old).is_ok(), "a session of the previous key");
        assert!(second.verify(&new).is_ok());
        // The key before the previous one is gone, and so are its sessions.
        rotate(dir.path(), true).expect("rotate again");
        let third = load();
        assert!(third.verify(&new).is_ok());
        assert!(third.verify(&old).is_err());
        // Ending the sessions drops the previous key as well.
        rotate(dir.path(), false).expect("rotate, ending sessions");
        let fourth = load();
        assert!(fourth.verify(&new).is_err());
        let (latest, _) = fourth.issue(&u, now() * 1000).expect("issue");
        assert!(fourth.verify(&latest).is_ok());
    }

    #[test]
    fn a_token_for_another_audience_or_without_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nbo = SessionKeys::load_or_create(dir.path(), "node-a")
            .expect("keys")
            .for_audience("healsync:NBO");
        let msa = SessionKeys::load_or_create(dir.path(), "node-a")
            .expect("keys")
            .for_audience("healsync:MSA");
        let u = user();
        let (token, claims) = nbo.issue(&u, now() * 1000).expect("issue");
        assert!(claims.sid.as_deref().is_some_and(|s| s.len() == 32));
        assert!(msa.verify(&token).is_err());
        let unaddressed = nbo
            .sign(&Claims {
                aud: None,
                ..claims.clone()
            })
            .expect("sign");
        assert!(nbo.verify(&unaddressed).is_err());
        // A token naming a key this server never had.
        let parts: Vec<&str> = token.split('.').collect();
        let header = base64_url(br#"{"alg":"EdDSA","typ":"JWT","kid":"0000000000000000"}"#);
        assert!(
            nbo.verify(&format!("{header}.{}.{}", parts[1], parts[2]))
                .is_err()
        );
    }

    fn base64_url(bytes: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
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
