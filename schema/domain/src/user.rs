//! Login accounts and the roles that decide what each may see and do.

use chrono::{DateTime, Utc};

use crate::{DoctorId, DomainError, PatientId, SiteCode, UserId};

/// A role carried in the session token. RECEPTIONIST is the front desk: registers
/// patients and books appointments, but reads no clinical detail. FINANCE is central
/// reporting at the hub: billing roll-ups and utilisation of its sites, and no patient,
/// appointment or clinical data; it exists at the hub only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Patient,
    Doctor,
    Receptionist,
    Admin,
    Finance,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Patient => "PATIENT",
            Role::Doctor => "DOCTOR",
            Role::Receptionist => "RECEPTIONIST",
            Role::Admin => "ADMIN",
            Role::Finance => "FINANCE",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PATIENT" => Ok(Role::Patient),
            "DOCTOR" => Ok(Role::Doctor),
            "RECEPTIONIST" => Ok(Role::Receptionist),
            "ADMIN" => Ok(Role::Admin),
            "FINANCE" => Ok(Role::Finance),
            _ => Err(DomainError::invalid(
                "role",
                format!("{s:?} is not one of PATIENT, DOCTOR, RECEPTIONIST, ADMIN, FINANCE"),
            )),
        }
    }

    /// Accounts that sign in at the hub (made there, for no clinic).
    pub fn is_central(self) -> bool {
        matches!(self, Role::Admin | Role::Finance)
    }

    /// Accounts that exist at the hub only: a clinic never holds one.
    pub fn is_hub_only(self) -> bool {
        matches!(self, Role::Finance)
    }

    /// Staff at the front desk or above: may see every patient's demographics.
    pub fn is_front_desk(self) -> bool {
        matches!(self, Role::Receptionist | Role::Admin)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub role: Role,
    /// An argon2id PHC string; never the password.
    pub password_hash: String,
    /// Set for PATIENT accounts: the patient record this login belongs to.
    pub patient_id: Option<PatientId>,
    /// Set for DOCTOR accounts: the doctor record this login belongs to.
    pub doctor_id: Option<DoctorId>,
    pub active: bool,
    /// The clinics where this account holds its role (a clinic account; a central
    /// account's limits are the hub's, not the record's). Empty on accounts written
    /// before roles were scoped to sites: see [`User::admitted_at`].
    pub sites: Vec<SiteCode>,
    /// When the password, the role, the sites or the account's standing last changed:
    /// sessions opened before it end.
    pub credentials_changed_at: Option<DateTime<Utc>>,
}

/// Why a session of an account no longer holds (or a login is not admitted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The account is not held here (never was, or not yet).
    Unknown,
    Disabled,
    NotAtThisSite,
    /// The role or the linked record changed since the session opened.
    Changed,
    /// The password changed (or sessions were ended) since the session opened.
    CredentialsChanged,
    /// The session itself was ended: its user logged out, or an administrator ended it.
    SignedOut,
    /// No request came for longer than the idle limit.
    Idle,
}

impl SessionEnd {
    /// The sentence a client is shown.
    pub fn message(self) -> &'static str {
        match self {
            SessionEnd::Unknown => "the account is not known here",
            SessionEnd::Disabled => "the account is disabled",
            SessionEnd::NotAtThisSite => "the account holds no role at this clinic",
            SessionEnd::Changed => "the account's role changed; log in again",
            SessionEnd::CredentialsChanged => {
                "the account's password changed or its sessions were ended; log in again"
            }
            SessionEnd::SignedOut => "the session was ended; log in again",
            SessionEnd::Idle => "the session was idle too long; log in again",
        }
    }
}

/// What a session token says about its account, for [`User::session_holds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionFacts {
    pub role: Role,
    pub patient_id: Option<PatientId>,
    pub doctor_id: Option<DoctorId>,
    /// When the session opened, unix milliseconds.
    pub issued_ms: i64,
}

impl User {
    /// Whether the account signs in at a node of `site`: active, a clinic role, and
    /// that site among its sites. An account written before roles were scoped to sites
    /// (no sites) signs in only at the node that created it (`created_here`), as it
    /// did then; the hub gives such accounts their owning site (`adopt`), which then
    /// syncs down.
    pub fn admitted_at(&self, site: &SiteCode, created_here: bool) -> Result<(), SessionEnd> {
        if !self.active {
            return Err(SessionEnd::Disabled);
        }
        if !self.works_at(site, created_here) {
            return Err(SessionEnd::NotAtThisSite);
        }
        Ok(())
    }

    /// Whether this is an account of a clinic role at `site`, active or not: what that
    /// clinic's administrator administers.
    pub fn works_at(&self, site: &SiteCode, created_here: bool) -> bool {
        let here = if self.sites.is_empty() {
            created_here
        } else {
            self.sites.contains(site)
        };
        here && !self.role.is_hub_only()
    }

    /// Whether a session opened as `facts` still holds for this account at `site`:
    /// admitted there, with the same role and linked record, and opened no earlier
    /// than the last change of its credentials (to the millisecond).
    pub fn session_holds(
        &self,
        site: &SiteCode,
        created_here: bool,
        facts: SessionFacts,
    ) -> Result<(), SessionEnd> {
        self.admitted_at(site, created_here)?;
        self.still_as_opened(facts)
    }

    /// Whether the account is still as the session `facts` describe opened it: the
    /// same role and linked record, and no change of its credentials since.
    pub fn still_as_opened(&self, facts: SessionFacts) -> Result<(), SessionEnd> {
        if (facts.role, facts.patient_id, facts.doctor_id)
            != (self.role, self.patient_id, self.doctor_id)
        {
            return Err(SessionEnd::Changed);
        }
        match self.credentials_changed_at {
            Some(at) if facts.issued_ms < at.timestamp_millis() => {
                Err(SessionEnd::CredentialsChanged)
            }
            _ => Ok(()),
        }
    }
}

/// Whether a clinic's accounts must be confirmed by the hub again before anyone signs
/// in: its last sync round with the hub (`None`: never) is older than `max_age`. A
/// clock set back does not make an old confirmation young: a confirmation from the
/// future counts as expired.
pub fn confirmation_expired(
    last_confirmed: Option<DateTime<Utc>>,
    max_age: chrono::Duration,
    now: DateTime<Utc>,
) -> bool {
    last_confirmed.is_none_or(|at| at > now || now - at > max_age)
}

/// 3 to 64 characters: lower-case letters, digits, `.`, `_`, `-`.
pub fn parse_username(s: &str) -> Result<String, DomainError> {
    let t = s.trim().to_lowercase();
    let ok = (3..=64).contains(&t.len())
        && t.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(t)
    } else {
        Err(DomainError::invalid(
            "username",
            "3 to 64 characters: letters, digits, '.', '_' or '-'",
        ))
    }
}

/// A password long enough to resist guessing and short enough to hash cheaply.
pub fn check_password(p: &str) -> Result<(), DomainError> {
    let n = p.chars().count();
    if !(8..=128).contains(&n) {
        return Err(DomainError::invalid("password", "8 to 128 characters"));
    }
    Ok(())
}

/// Which record a user of this role must be linked to.
pub fn check_links(
    role: Role,
    patient_id: Option<PatientId>,
    doctor_id: Option<DoctorId>,
) -> Result<(), DomainError> {
    match (role, patient_id, doctor_id) {
        (Role::Patient, Some(_), None) | (Role::Doctor, None, Some(_)) => Ok(()),
        (Role::Admin | Role::Receptionist | Role::Finance, None, None) => Ok(()),
        (Role::Patient, _, _) => Err(DomainError::invalid(
            "patientId",
            "a PATIENT account is linked to exactly one patient record",
        )),
        (Role::Doctor, _, _) => Err(DomainError::invalid(
            "doctorId",
            "a DOCTOR account is linked to exactly one doctor record",
        )),
        _ => Err(DomainError::invalid(
            "role",
            "only PATIENT and DOCTOR accounts are linked to a record",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(parse_username(" Dr.Achieng "), Ok("dr.achieng".into()));
        assert!(parse_username("ab").is_err());
        assert!(parse_username("a b c").is_err());
    }

    #[test]
    fn confirmations_expire() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap_or_default();
        let day = chrono::Duration::days(1);
        let cases = [
            (None, true),
            (Some(now), false),
            (Some(now - day), false),
            (Some(now - day - chrono::Duration::seconds(1)), true),
            (Some(now + chrono::Duration::hours(1)), true),
        ];
        for (last, expired) in cases {
            assert_eq!(confirmation_expired(last, day, now), expired, "{last:?}");
        }
    }

    #[test]
    fn links() {
        let p = Some(PatientId(uuid::Uuid::nil()));
        let d = Some(DoctorId(uuid::Uuid::nil()));
        assert!(check_links(Role::Patient, p, None).is_ok());
        assert!(check_links(Role::Patient, None, None).is_err());
        assert!(check_links(Role::Doctor, None, d).is_ok());
        assert!(check_links(Role::Admin, p, None).is_err());
        assert!(check_links(Role::Receptionist, None, None).is_ok());
        assert!(check_links(Role::Finance, None, None).is_ok());
        assert!(check_links(Role::Finance, p, None).is_err());
    }

    #[test]
    fn roles_read_back_and_where_they_sign_in() {
        for (role, central, hub_only) in [
            (Role::Patient, false, false),
            (Role::Doctor, false, false),
            (Role::Receptionist, false, false),
            (Role::Admin, true, false),
            (Role::Finance, true, true),
        ] {
            assert_eq!(Role::parse(&role.as_str().to_lowercase()), Ok(role));
            assert_eq!(
                (role.is_central(), role.is_hub_only()),
                (central, hub_only),
                "{role}"
            );
        }
        assert!(Role::parse("AUDITOR").is_err());
    }
}
