//! The record kinds and, for each, which document field holds which record field.

use healsync_domain::{
    Address, Appointment, AppointmentStatus, Audience, Doctor, EmergencyContact, Leave,
    Notification, Patient, PatientRequest, RequestStatus, Role, Schedule, Sex, User, WeeklyRule,
};
use serde_json::json;
use uuid::Uuid;

use crate::{Reader, RecordError, Writer};

/// Every kind of record the product stores, one automerge document each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Patient,
    Doctor,
    Schedule,
    Leave,
    Appointment,
    Notification,
    User,
    PatientRequest,
}

impl RecordKind {
    pub const ALL: [RecordKind; 8] = [
        RecordKind::Patient,
        RecordKind::Doctor,
        RecordKind::Schedule,
        RecordKind::Leave,
        RecordKind::Appointment,
        RecordKind::Notification,
        RecordKind::User,
        RecordKind::PatientRequest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Patient => "patient",
            RecordKind::Doctor => "doctor",
            RecordKind::Schedule => "schedule",
            RecordKind::Leave => "leave",
            RecordKind::Appointment => "appointment",
            RecordKind::Notification => "notification",
            RecordKind::User => "user",
            RecordKind::PatientRequest => "patient_request",
        }
    }

    pub fn parse(s: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A domain record that maps to one document.
pub trait Record: Sized {
    const KIND: RecordKind;
    fn id(&self) -> Uuid;
    fn write(&self, w: &mut Writer<'_>) -> Result<(), RecordError>;
    fn read(r: &Reader<'_>) -> Result<Self, RecordError>;
}

/// Any record, for code that walks documents of every kind (projection rebuilds, sync).
// Records are built once and moved (into the event bus behind an Arc); boxing the large
// variant would only add an allocation per write.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum AnyRecord {
    Patient(Patient),
    Doctor(Doctor),
    Schedule(Schedule),
    Leave(Leave),
    Appointment(Appointment),
    Notification(Notification),
    User(User),
    PatientRequest(PatientRequest),
}

impl AnyRecord {
    /// Reads whichever record the document holds.
    pub fn read(doc: &automerge::AutoCommit) -> Result<AnyRecord, RecordError> {
        let r = Reader::new(doc);
        let kind = r.str("kind")?;
        Ok(match RecordKind::parse(&kind) {
            Some(RecordKind::Patient) => AnyRecord::Patient(Patient::read(&r)?),
            Some(RecordKind::Doctor) => AnyRecord::Doctor(Doctor::read(&r)?),
            Some(RecordKind::Schedule) => AnyRecord::Schedule(Schedule::read(&r)?),
            Some(RecordKind::Leave) => AnyRecord::Leave(Leave::read(&r)?),
            Some(RecordKind::Appointment) => AnyRecord::Appointment(Appointment::read(&r)?),
            Some(RecordKind::Notification) => AnyRecord::Notification(Notification::read(&r)?),
            Some(RecordKind::User) => AnyRecord::User(User::read(&r)?),
            Some(RecordKind::PatientRequest) => {
                AnyRecord::PatientRequest(PatientRequest::read(&r)?)
            }
            None => {
                return Err(RecordError::Invalid {
                    field: "kind",
                    reason: format!("unknown record kind {kind:?}"),
                });
            }
        })
    }

    /// The record's id (its document's key).
    pub fn id(&self) -> Uuid {
        match self {
            AnyRecord::Patient(r) => r.id(),
            AnyRecord::Doctor(r) => r.id(),
            AnyRecord::Schedule(r) => r.id(),
            AnyRecord::Leave(r) => r.id(),
            AnyRecord::Appointment(r) => r.id(),
            AnyRecord::Notification(r) => r.id(),
            AnyRecord::User(r) => r.id(),
            AnyRecord::PatientRequest(r) => r.id(),
        }
    }

    pub fn kind(&self) -> RecordKind {
        match self {
            AnyRecord::Patient(_) => RecordKind::Patient,
            AnyRecord::Doctor(_) => RecordKind::Doctor,
            AnyRecord::Schedule(_) => RecordKind::Schedule,
            AnyRecord::Leave(_) => RecordKind::Leave,
            AnyRecord::Appointment(_) => RecordKind::Appointment,
            AnyRecord::Notification(_) => RecordKind::Notification,
            AnyRecord::User(_) => RecordKind::User,
            AnyRecord::PatientRequest(_) => RecordKind::PatientRequest,
        }
    }
}

macro_rules! into_any {
    ($($t:ident),*) => {$(
        impl From<$t> for AnyRecord {
            fn from(r: $t) -> Self {
                AnyRecord::$t(r)
            }
        }
    )*};
}
into_any!(
    Patient,
    Doctor,
    Schedule,
    Leave,
    Appointment,
    Notification,
    User,
    PatientRequest
);

impl Record for Patient {
    const KIND: RecordKind = RecordKind::Patient;

    fn id(&self) -> Uuid {
        self.id.0
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), RecordError> {
        w.str("mrn", &self.mrn)?;
        w.str("site", &self.site)?;
        w.str("name", &self.name)?;
        w.str("email", &self.email)?;
        w.opt_str("phone", self.phone.as_deref())?;
        w.date("dateOfBirth", self.date_of_birth)?;
        w.opt_str("sex", self.sex.map(Sex::as_str))?;
        let a = &self.address;
        w.opt_str("address.line1", a.line1.as_deref())?;
        w.opt_str("address.line2", a.line2.as_deref())?;
        w.opt_str("address.city", a.city.as_deref())?;
        w.opt_str("address.region", a.region.as_deref())?;
        w.opt_str("address.postalCode", a.postal_code.as_deref())?;
        w.opt_str("address.country", a.country.as_deref())?;
        let ec = self.emergency_contact.as_ref();
        w.opt_str("emergencyContact.name", ec.map(|c| c.name.as_str()))?;
        w.opt_str("emergencyContact.phone", ec.map(|c| c.phone.as_str()))?;
        w.opt_str(
            "emergencyContact.relationship",
            ec.and_then(|c| c.relationship.as_deref()),
        )?;
        w.json("allergies", &json!(self.allergies))?;
        w.bool("active", self.active)?;
        w.time("createdAt", self.created_at)?;
        w.time("updatedAt", self.updated_at)
    }

    fn read(r: &Reader<'_>) -> Result<Self, RecordError> {
        let emergency_contact = match (
            r.opt_str("emergencyContact.name")?,
            r.opt_str("emergencyContact.phone")?,
        ) {
            (Some(name), Some(phone)) => Some(EmergencyContact {
                name,
                phone,
                relationship: r.opt_str("emergencyContact.relationship")?,
            }),
            _ => None,
        };
        Ok(Patient {
            id: r.uuid("id")?,
            mrn: r.str("mrn")?,
            site: r.str("site")?,
            name: r.str("name")?,
            email: r.str("email")?,
            phone: r.opt_str("phone")?,
            date_of_birth: r.date("dateOfBirth")?,
            sex: r
                .opt_str("sex")?
                .map(|s| Sex::parse(&s))
                .transpose()
                .map_err(|e| RecordError::Invalid {
                    field: "sex",
                    reason: e.to_string(),
                })?,
            address: Address {
                line1: r.opt_str("address.line1")?,
                line2: r.opt_str("address.line2")?,
                city: r.opt_str("address.city")?,
                region: r.opt_str("address.region")?,
                postal_code: r.opt_str("address.postalCode")?,
                country: r.opt_str("address.country")?,
            },
            emergency_contact,
            allergies: r.json("allergies")?,
            active: r.bool("active")?,
            created_at: r.time("createdAt")?,
            updated_at: r.latest_time("updatedAt")?,
        })
    }
}

impl Record for Doctor {
    const KIND: RecordKind = RecordKind::Doctor;

    fn id(&self) -> Uuid {
        self.id.0
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), RecordError> {
        w.str("name", &self.name)?;
        w.json("specializations", &json!(self.specializations))?;
        w.str("licenceNumber", &self.licence_number)?;
        w.opt_str("email", self.email.as_deref())?;
        w.opt_str("phone", self.phone.as_deref())?;
        w.bool("active", self.active)?;
        w.time("createdAt", self.created_at)?;
        w.time("updatedAt", self.updated_at)
    }

    fn read(r: &Reader<'_>) -> Result<Self, RecordError> {
        Ok(Doctor {
            id: r.uuid("id")?,
            name: r.str("name")?,
            specializations: r.json("specializations")?,
            licence_number: r.str("licenceNumber")?,
            email: r.opt_str("email")?,
            phone: r.opt_str("phone")?,
            active: r.bool("active")?,
            created_at: r.time("createdAt")?,
            updated_at: r.latest_time("updatedAt")?,
        })
    }
}

fn small_int<T: TryFrom<i64>>(r: &Reader<'_>, key: &'static str) -> Result<T, RecordError> {
    T::try_from(r.int(key)?).map_err(|_| RecordError::Invalid {
        field: key,
        reason: "out of range".into(),
    })
}

impl Record for Schedule {
    const KIND: RecordKind = RecordKind::Schedule;

    fn id(&self) -> Uuid {
        self.id.0
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), RecordError> {
        w.str("doctorId", &self.doctor_id.to_string())?;
        w.str("site", &self.site)?;
        w.int("slotMinutes", i64::from(self.slot_minutes))?;
        w.int("utcOffsetMinutes", i64::from(self.utc_offset_minutes))?;
        let rules = serde_json::to_value(&self.rules).map_err(|e| RecordError::Invalid {
            field: "weekly",
            reason: e.to_string(),
        })?;
        w.json("weekly", &rules)?;
        w.bool("active", self.active)?;
        w.time("updatedAt", self.updated_at)
    }

    fn read(r: &Reader<'_>) -> Result<Self, RecordError> {
        let rules: Vec<WeeklyRule> = r.json("weekly")?;
        Ok(Schedule {
            id: r.uuid("id")?,
            doctor_id: r.uuid("doctorId")?,
            site: r.str("site")?,
            slot_minutes: small_int(r, "slotMinutes")?,
            utc_offset_minutes: small_int(r, "utcOffsetMinutes")?,
            rules,
            active: r.bool("active")?,
            updated_at: r.latest_time("updatedAt")?,
        })
    }
}

impl Record for Leave {
    const KIND: RecordKind = RecordKind::Leave;

    fn id(&self) -> Uuid {
        self.id.0
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), RecordError> {
        w.str("doctorId", &self.doctor_id.to_string())?;
        w.str("site", &self.site)?;
        w.time("start", self.start)?;
        w.time("end", self.end)?;
        w.opt_str("reason", self.reason.as_deref())?;
        w.bool("cancelled", self.cancelled)
    }

    fn read(r: &Reader<'_>) -> Result<Self, RecordError> {
        Ok(Leave {
            id: r.uuid("id")?,
            doctor_id: r.uuid("doctorId")?,
            site: r.str("site")?,
            start: r.time("start")?,
            end: r.time("end")?,
            reason: r.opt_str("reason")?,
            cancelled: r.bool("cancelled")?,
        })
    }
}

impl Record for Appointment {
    const KIND: RecordKind = RecordKind::Appointment;

    fn id(&self) -> Uuid {
        self.id.0
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), RecordError> {
        w.str("patientId", &self.patient_id.to_string())?;
        w.str("doctorId", &self.doctor_id.to_string())?;
        w.str("site", &self.site)?;
        w.time("start", self.start)?;
        w.time("end", self.end)?;
        w.str("status", self.status.as_str())?;
        w.opt_str("reason", self.reason.as_deref())?;
        w.opt_str("notes", self.notes.as_deref())?;
        w.time("createdAt", self.created_at)?;
        w.time("updatedAt", self.updated_at)
    }

    fn read(r: &Reader<'_>) -> Result<Self, RecordError> {
        Ok(Appointment {
            id: r.uuid("id")?,
            patient_id: r.uuid("patientId")?,
            doctor_id: r.uuid("doctorId")?,
            site: r.str("site")?,
            start: r.time("start")?,
            end: r.time("end")?,
            // Concurrent status changes merge by the lifecycle's rule; what it cannot
            // settle stays a conflict, shown with the document's winning value.
            status: match crate::conflicts::settled_status(&r.values("status")?) {
                Some(s) => s,
                None => r.parsed("status", AppointmentStatus::parse)?,
            },
            reason: r.opt_str("reason")?,
            notes: r.opt_str("notes")?,
            created_at: r.time("createdAt")?,
            updated_at: r.latest_time("updatedAt")?,
        })
    }
}

impl Record for Notification {
    const KIND: RecordKind = RecordKind::Notification;

    fn id(&self) -> Uuid {
        self.id.0
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), RecordError> {
        let (kind, id) = match self.audience {
            Audience::Patient(p) => ("PATIENT", p.0),
            Audience::Doctor(d) => ("DOCTOR", d.0),
        };
        w.str("audienceKind", kind)?;
        w.str("audienceId", &id.to_string())?;
        w.str("type", &self.kind)?;
        w.str("title", &self.title)?;
        w.str("body", &self.body)?;
        w.opt_str(
            "appointmentId",
            self.appointment_id.map(|a| a.to_string()).as_deref(),
        )?;
        w.time("createdAt", self.created_at)?;
        w.bool("read", self.read)
    }

    fn read(r: &Reader<'_>) -> Result<Self, RecordError> {
        let id: Uuid = r.uuid("audienceId")?;
        let audience = match r.str("audienceKind")?.as_str() {
            "PATIENT" => Audience::Patient(id.into()),
            "DOCTOR" => Audience::Doctor(id.into()),
            other => {
                return Err(RecordError::Invalid {
                    field: "audienceKind",
                    reason: format!("unknown audience {other:?}"),
                });
            }
        };
        Ok(Notification {
            id: r.uuid("id")?,
            audience,
            kind: r.str("type")?,
            title: r.str("title")?,
            body: r.str("body")?,
            appointment_id: r.opt_uuid("appointmentId")?,
            created_at: r.time("createdAt")?,
            read: r.bool("read")?,
        })
    }
}

impl Record for User {
    const KIND: RecordKind = RecordKind::User;

    fn id(&self) -> Uuid {
        self.id.0
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), RecordError> {
        w.str("username", &self.username)?;
        w.str("role", self.role.as_str())?;
        w.str("passwordHash", &self.password_hash)?;
        w.opt_str(
            "patientId",
            self.patient_id.map(|p| p.to_string()).as_deref(),
        )?;
        w.opt_str("doctorId", self.doctor_id.map(|d| d.to_string()).as_deref())?;
        w.bool("active", self.active)
    }

    fn read(r: &Reader<'_>) -> Result<Self, RecordError> {
        Ok(User {
            id: r.uuid("id")?,
            username: r.str("username")?,
            role: r.parsed("role", Role::parse)?,
            password_hash: r.str("passwordHash")?,
            patient_id: r.opt_uuid("patientId")?,
            doctor_id: r.opt_uuid("doctorId")?,
            active: r.bool("active")?,
        })
    }
}

impl Record for PatientRequest {
    const KIND: RecordKind = RecordKind::PatientRequest;

    fn id(&self) -> Uuid {
        self.id.0
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), RecordError> {
        w.str("mrn", &self.mrn)?;
        w.str("status", self.status.as_str())?;
        w.opt_str(
            "patientId",
            self.patient_id.map(|p| p.to_string()).as_deref(),
        )?;
        w.opt_str("answer", self.answer.as_deref())?;
        w.time("createdAt", self.created_at)?;
        w.time("updatedAt", self.updated_at)
    }

    fn read(r: &Reader<'_>) -> Result<Self, RecordError> {
        Ok(PatientRequest {
            id: r.uuid("id")?,
            mrn: r.str("mrn")?,
            status: r.parsed("status", |s| {
                RequestStatus::parse(s).ok_or_else(|| {
                    healsync_domain::DomainError::invalid("status", format!("unknown status {s:?}"))
                })
            })?,
            patient_id: r.opt_uuid("patientId")?,
            answer: r.opt_str("answer")?,
            created_at: r.time("createdAt")?,
            updated_at: r.latest_time("updatedAt")?,
        })
    }
}
