//! Who is asking, and the access policy: which records and fields a session may see or
//! change. Every resolver and service asks here; the web app's hiding of buttons is a
//! convenience, never the control.

use healsync_auth::Claims;
use healsync_domain::audit::Actor;
use healsync_domain::{Appointment, DoctorId, PatientId, Role, UserId};
use healsync_store::audit::AuditContext;

use crate::ApiError;

/// An authenticated session, built from verified token claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: UserId,
    pub username: String,
    pub role: Role,
    pub patient_id: Option<PatientId>,
    pub doctor_id: Option<DoctorId>,
    /// The client's address, when the session came over the network: the audit trail
    /// records it with every access.
    pub peer: Option<std::net::IpAddr>,
    /// The token this session came with (absent for the node's own work).
    pub opened: Option<Opened>,
}

/// Which token a session came with: what `logout` and an administrator end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// `healsync_auth::gate::session_key`.
    pub key: String,
    /// Unix seconds.
    pub expires: i64,
}

impl From<Claims> for Session {
    fn from(c: Claims) -> Self {
        let opened = Some(Opened {
            key: healsync_auth::gate::session_key(&c),
            expires: c.exp,
        });
        Session {
            opened,
            user_id: c.sub,
            username: c.username,
            role: c.role,
            patient_id: c.patient_id,
            doctor_id: c.doctor_id,
            peer: None,
        }
    }
}

/// The answer of [`Session::clinical_reader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClinicalReader {
    OwnRecord,
    /// Only while this doctor treats the patient.
    IfTreating(DoctorId),
    Never,
}

/// What a request carries about authentication: a session, or why there is none.
#[derive(Debug, Clone)]
pub enum Auth {
    Session(Session),
    Invalid(String),
    Anonymous,
}

impl Auth {
    /// The same authentication, its session (if any) tagged with the client's address.
    pub fn from_peer(self, peer: Option<std::net::IpAddr>) -> Auth {
        match self {
            Auth::Session(s) => Auth::Session(Session { peer, ..s }),
            other => other,
        }
    }

    pub fn session(&self) -> Result<&Session, ApiError> {
        match self {
            Auth::Session(s) => Ok(s),
            Auth::Invalid(why) => Err(ApiError::Unauthenticated(why.clone())),
            Auth::Anonymous => Err(ApiError::Unauthenticated(
                "log in first: send Authorization: Bearer <token>".into(),
            )),
        }
    }
}

impl Session {
    /// This session acting through `operation`, as the audit trail names it.
    pub fn acting(&self, operation: &str) -> AuditContext {
        AuditContext {
            actor: Actor {
                user_id: Some(self.user_id),
                username: self.username.clone(),
                role: Some(self.role),
            },
            operation: operation.to_string(),
            peer: self.peer.map(|ip| ip.to_string()),
            reason: None,
        }
    }

    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "a {} may not do this",
                self.role.as_str()
            )))
        }
    }

    pub fn is_front_desk(&self) -> bool {
        self.role.is_front_desk()
    }

    /// Whether this session may see the appointment (and so its patient and doctor).
    pub fn sees_appointment(&self, a: &Appointment) -> bool {
        match self.role {
            Role::Admin | Role::Receptionist => true,
            Role::Doctor => self.doctor_id == Some(a.doctor_id),
            Role::Patient => self.patient_id == Some(a.patient_id),
            Role::Finance => false,
        }
    }

    /// Whether this session may read clinical fields (allergies, and later records) of a
    /// patient record it can already see: the front desk cannot.
    pub fn reads_clinical(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Doctor | Role::Patient)
    }

    /// Who may read a patient's medical record entries: the patient themself, and a
    /// DOCTOR treating them (the caller checks `healsync_domain::care`). ADMIN and
    /// RECEPTIONIST never: they run the clinic, not the care. (The intake allergy list
    /// on the patient record is the exception the registrars fill, `reads_clinical`.)
    pub fn clinical_reader(&self, patient: PatientId) -> ClinicalReader {
        match (self.role, self.patient_id, self.doctor_id) {
            (Role::Patient, Some(own), _) if own == patient => ClinicalReader::OwnRecord,
            (Role::Doctor, _, Some(d)) => ClinicalReader::IfTreating(d),
            _ => ClinicalReader::Never,
        }
    }

    /// Writing a field needs the same right as reading it: a session that may not read
    /// clinical fields may not set, change or clear them either (FORBIDDEN, nothing
    /// written). `clinical` names the clinical fields a write touches.
    pub fn may_write(&self, clinical: &[&str]) -> Result<(), ApiError> {
        match clinical.first() {
            Some(field) if !self.reads_clinical() => Err(ApiError::Forbidden(format!(
                "a {} may not write {field}: it is clinical data",
                self.role.as_str()
            ))),
            _ => Ok(()),
        }
    }
}
