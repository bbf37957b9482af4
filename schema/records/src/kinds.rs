//! The record kinds and, for each, which document field holds which record field.

use healsync_domain::billing::{Currency, InvoiceLine, PaymentMethod};
use healsync_domain::clinical::{Correction, CorrectionKind};
use healsync_domain::insurance::ClaimStatus;
use healsync_domain::{
    Address, Appointment, AppointmentStatus, Audience, Claim, Coverage, Details, Doctor,
    EmergencyContact, EntryType, Invoice, InvoiceVoid, Leave, MedicalRecord, MessagePreference,
    Notification, Patient, PatientId, PatientRequest, Payment, PriceItem, RequestStatus, Role,
    Schedule, Sex, User, WeeklyRule,
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
    MedicalRecord,
    Invoice,
    InvoiceVoid,
    Payment,
    PriceItem,
    Coverage,
    Claim,
    MessagePreference,
}

impl RecordKind {
    pub const ALL: [RecordKind; 16] = [
        RecordKind::Patient,
        RecordKind::Doctor,
        RecordKind::Schedule,
        RecordKind::Leave,
        RecordKind::Appointment,
        RecordKind::Notification,
        RecordKind::User,
        RecordKind::PatientRequest,
        RecordKind::MedicalRecord,
        RecordKind::Invoice,
        RecordKind::InvoiceVoid,
        RecordKind::Payment,
        RecordKind::PriceItem,
        RecordKind::Coverage,
        RecordKind::Claim,
        RecordKind::MessagePreference,
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
            RecordKind::MedicalRecord => "medical_record",
            RecordKind::Invoice => "invoice",
            RecordKind::InvoiceVoid => "invoice_void",
            RecordKind::Payment => "payment",
            RecordKind::PriceItem => "price_item",
            RecordKind::Coverage => "coverage",
            RecordKind::Claim => "claim",
            RecordKind::MessagePreference => "message_preference",
        }
    }

    pub fn parse(s: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether records of this kind are clinical content: readable only by the patient
    /// and the clinicians treating them, never through an administrator's generic view
    /// (the hub's `record`, `records` and `recordChanged`).
    pub fn is_clinical(self) -> bool {
        matches!(self, RecordKind::MedicalRecord)
    }

    /// [`RecordKind::is_clinical`] for a kind as stored.
    pub fn is_clinical_name(kind: &str) -> bool {
        RecordKind::parse(kind).is_some_and(RecordKind::is_clinical)
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
    MedicalRecord(MedicalRecord),
    Invoice(Invoice),
    InvoiceVoid(InvoiceVoid),
    Payment(Payment),
    PriceItem(PriceItem),
    Coverage(Coverage),
    Claim(Claim),
    MessagePreference(MessagePreference),
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
            Some(RecordKind::MedicalRecord) => AnyRecord::MedicalRecord(MedicalRecord::read(&r)?),
            Some(RecordKind::Invoice) => AnyRecord::Invoice(Invoice::read(&r)?),
            Some(RecordKind::InvoiceVoid) => AnyRecord::InvoiceVoid(InvoiceVoid::read(&r)?),
            Some(RecordKind::Payment) => AnyRecord::Payment(Payment::read(&r)?),
            Some(RecordKind::PriceItem) => AnyRecord::PriceItem(PriceItem::read(&r)?),
            Some(RecordKind::Coverage) => AnyRecord::Coverage(Coverage::read(&r)?),
            Some(RecordKind::Claim) => AnyRecord::Claim(Claim::read(&r)?),
            Some(RecordKind::MessagePreference) => {
                AnyRecord::MessagePreference(MessagePreference::read(&r)?)
            }
            None => {
                return Err(RecordError::Invalid {
                    field: "kind",
                    reason: format!("unknown record kind {kind:?}"),
                });
            }
        })
    }

    /// See [`crate::fields`].
    pub fn fields(&self) -> Result<Vec<(&'static str, automerge::ScalarValue)>, RecordError> {
        match self {
            AnyRecord::Patient(r) => crate::fields(r),
            AnyRecord::Doctor(r) => crate::fields(r),
            AnyRecord::Schedule(r) => crate::fields(r),
            AnyRecord::Leave(r) => crate::fields(r),
            AnyRecord::Appointment(r) => crate::fields(r),
            AnyRecord::Notification(r) => crate::fields(r),
            AnyRecord::User(r) => crate::fields(r),
            AnyRecord::PatientRequest(r) => crate::fields(r),
            AnyRecord::MedicalRecord(r) => crate::fields(r),
            AnyRecord::Invoice(r) => crate::fields(r),
            AnyRecord::InvoiceVoid(r) => crate::fields(r),
            AnyRecord::Payment(r) => crate::fields(r),
            AnyRecord::PriceItem(r) => crate::fields(r),
            AnyRecord::Coverage(r) => crate::fields(r),
            AnyRecord::Claim(r) => crate::fields(r),
            AnyRecord::MessagePreference(r) => crate::fields(r),
        }
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
            AnyRecord::MedicalRecord(r) => r.id(),
            AnyRecord::Invoice(r) => r.id(),
            AnyRecord::InvoiceVoid(r) => r.id(),
            AnyRecord::Payment(r) => r.id(),
            AnyRecord::PriceItem(r) => r.id(),
            AnyRecord::Coverage(r) => r.id(),
            AnyRecord::Claim(r) => r.id(),
            AnyRecord::MessagePreference(r) => r.id(),
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
            AnyRecord::MedicalRecord(_) => RecordKind::MedicalRecord,
            AnyRecord::Invoice(_) => RecordKind::Invoice,
            AnyRecord::InvoiceVoid(_) => RecordKind::InvoiceVoid,
            AnyRecord::Payment(_) => RecordKind::Payment,
            AnyRecord::PriceItem(_) => RecordKind::PriceItem,
            AnyRecord::Coverage(_) => RecordKind::Coverage,
            AnyRecord::Claim(_) => RecordKind::Claim,
            AnyRecord::MessagePreference(_) => RecordKind::MessagePreference,
        }
    }

    /// The patient this record is health data about, if it is: the patient record
    /// itself, their appointments, clinical entries, billing, cover, message settings,
    /// notices to them, and a request that brought them here. Every write of such a
    /// record leaves an audit event; the rest (doctors, schedules, accounts, the price
    /// list, notices to staff) are not health data.
    pub fn health_subject(&self) -> Option<PatientId> {
        match self {
            AnyRecord::Patient(r) => Some(r.id),
            AnyRecord::Appointment(r) => Some(r.patient_id),
            AnyRecord::MedicalRecord(r) => Some(r.patient_id),
            AnyRecord::Invoice(r) => Some(r.patient_id),
            AnyRecord::InvoiceVoid(r) => Some(r.patient_id),
            AnyRecord::Payment(r) => Some(r.patient_id),
            AnyRecord::Coverage(r) => Some(r.patient_id),
            AnyRecord::Claim(r) => Some(r.patient_id),
            AnyRecord::MessagePreference(r) => Some(r.patient_id),
            AnyRecord::PatientRequest(r) => r.patient_id,
            AnyRecord::Notification(r) => match r.audience {
                Audience::Patient(p) => Some(p),
                _ => None,
            },
            AnyRecord::Doctor(_)
            | AnyRecord::Schedule(_)
            | AnyRecord::Leave(_)
            | AnyRecord::User(_)
            | AnyRecord::PriceItem(_) => None,
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
    PatientRequest,
    MedicalRecord,
    Invoice,
    InvoiceVoid,
    Payment,
    PriceItem,
    Coverage,
    Claim,
    MessagePreference
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
        let (kind, id) = self.audience.parts();
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
        let kind = r.str("audienceKind")?;
        let audience = Audience::from_parts(&kind, id).ok_or_else(|| RecordError::Invalid {
            field: "audienceKind",
            reason: format!("unknown audience {kind:?}"),
        })?;
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
        w.bool("active", self.active)?;
        w.json("sites", &json!(self.sites))?;
        match self.credentials_changed_at {
            Some(at) => w.time("credentialsChangedAt", at),
            None => w.clear("credentialsChangedAt"),
        }
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
            // Absent on accounts written before roles were scoped to sites.
            sites: match r.opt_str("sites")? {
                Some(_) => r.json("sites")?,
                None => Vec::new(),
            },
            // Concurrent changes (a reset at the hub, a change at the clinic) end the
            // sessions opened before either.
            credentials_changed_at: r.opt_latest_time("credentialsChangedAt")?,
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
        w.date("dateOfBirth", self.date_of_birth)?;
        w.opt_str("requestedBy", self.requested_by.as_deref())?;
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
            date_of_birth: r.date("dateOfBirth")?,
            requested_by: r.opt_str("requestedBy")?,
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

impl Record for MedicalRecord {
    const KIND: RecordKind = RecordKind::MedicalRecord;

    fn id(&self) -> Uuid {
        self.id.0
    }

    // Written once: an entry is never edited, so its details are one JSON scalar (no
    // concurrent edit can ever make it a conflict).
    fn write(&self, w: &mut Writer<'_>) -> Result<(), RecordError> {
        w.str("patientId", &self.patient_id.to_string())?;
        w.str("site", &self.site)?;
        w.str("type", self.entry_type().as_str())?;
        w.json("details", &self.details.to_json())?;
        w.time("recordedAt", self.recorded_at)?;
        w.str("author", &self.author)?;
        w.opt_str(
            "authorDoctorId",
            self.author_doctor_id.map(|d| d.to_string()).as_deref(),
        )?;
        w.opt_str(
            "appointmentId",
            self.appointment_id.map(|a| a.to_string()).as_deref(),
        )?;
        let c = self.correction.as_ref();
        w.opt_str("corrects", c.map(|c| c.of.to_string()).as_deref())?;
        w.opt_str("correction", c.map(|c| c.kind.as_str()))?;
        w.opt_str("correctionReason", c.map(|c| c.reason.as_str()))?;
        w.time("createdAt", self.created_at)
    }

    fn read(r: &Reader<'_>) -> Result<Self, RecordError> {
        let entry_type = r.parsed("type", EntryType::parse)?;
        let details = r.parsed("details", |s| Details::from_json(entry_type, s))?;
        let correction = match r.opt_uuid("corrects")? {
            None => None,
            Some(of) => Some(Correction {
                of,
                kind: r.parsed("correction", CorrectionKind::parse)?,
                reason: r.str("correctionReason")?,
            }),
        };
        Ok(MedicalRecord {
            id: r.uuid("id")?,
            patient_id: r.uuid("patientId")?,
            site: r.str("site")?,
            details,
            recorded_at: r.time("recordedAt")?,
            author: r.str("author")?,
            author_doctor_id: r.opt_uuid("authorDoctorId")?,
            appointment_id: r.opt_uuid("appointmentId")?,
            correction,
            created_at: r.time("createdAt")?,
        })
    }
}

fn currency(r: &Reader<'_>) -> Result<Currency, RecordError> {
    r.parsed("currency", Currency::parse)
}

fn rate(r: &Reader<'_>, key: &'static str) -> Result<u32, RecordError> {
    let v: u32 = small_int(r, key)?;
    if v > healsync_domain::billing::FULL_RATE {
        return Err(RecordError::Invalid {
            field: key,
            reason: "over 100%".into(),
        });
    }
    Ok(v)
}

impl Record for Invoice {
    const KIND: RecordKind = RecordKind::Invoice;

    fn id(&self) -> Uuid {
        self.id.0
    }

    // Written once: an invoice is voided by another record, never edited, so its lines
    // are one JSON scalar.
    fn write(&self, w: &mut Writer<'_>) -> Result<(), RecordError> {
        w.str("number", &self.number)?;
        w.str("patientId", &self.patient_id.to_string())?;
        w.str("site", &self.site)?;
        w.str("currency", self.currency.as_str())?;
        let lines = serde_json::to_value(&self.lines).map_err(|e| RecordError::Invalid {
            field: "lines",
            reason: e.to_string(),
        })?;
        w.json("lines", &lines)?;
        w.opt_str(
            "appointmentId",
            self.appointment_id.map(|a| a.to_string()).as_deref(),
        )?;
        w.opt_str("notes", self.notes.as_deref())?;
        w.str("issuedBy", &self.issued_by)?;
        w.time("issuedAt", self.issued_at)
    }

    fn read(r: &Reader<'_>) -> Result<Self, RecordError> {
        let lines: Vec<InvoiceLine> = r.json("lines")?;
        // A document from elsewhere is checked like input: its totals must be sums.
        let lines =
            healsync_domain::billing::parse_lines(lines).map_err(|e| RecordError::Invalid {
                field: "lines",
                reason: e.to_string(),
            })?;
        Ok(Invoice {
            id: r.uuid("id")?,
            number: r.str("number")?,
            patient_id: r.uuid("patientId")?,
            site: r.str("site")?,
            currency: currency(r)?,
            lines,
            appointment_id: r.opt_uuid("appointmentId")?,
            notes: r.opt_str("notes")?,
            issued_by: r.str("issuedBy")?,
            issued_at: r.time("issuedAt")?,
        })
    }
}

impl Record for InvoiceVoid {
    const KIND: RecordKind = RecordKind::InvoiceVoid;

    fn id(&self) -> Uuid {
        self.id.0
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), RecordError> {
        w.str("invoiceId", &self.invoice_id.to_string())?;
        w.str("patientId", &self.patient_id.to_string())?;
        w.str("site", &self.site)?;
        w.str("reason", &self.reason)?;
        w.str("voidedBy", &self.voided_by)?;
        w.time("voidedAt", self.voided_at)
    }

    fn read(r: &Reader<'_>) -> Result<Self, RecordError> {
        Ok(InvoiceVoid {
            id: r.uuid("id")?,
            invoice_id: r.uuid("invoiceId")?,
            patient_id: r.uuid("patientId")?,
            site: r.str("site")?,
            reason: r.str("reason")?,
            voided_by: r.str("voidedBy")?,
            voided_at: r.time("voidedAt")?,
        })
    }
}

impl Record for Payment {
    const KIND: RecordKind = RecordKind::Payment;

    fn id(&self) -> Uuid {
        self.id.0
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), RecordError> {
        w.str("invoiceId", &self.invoice_id.to_string())?;
        w.str("patientId", &self.patient_id.to_string())?;
        w.str("site", &self.site)?;
        w.int("amount", self.amount)?;
        w.str("currency", self.currency.as_str())?;
        w.str("method", self.method.as_str())?;
        w.opt_str("reference", self.reference.as_deref())?;
        w.str("receivedBy", &self.received_by)?;
        w.time("receivedAt", self.received_at)
    }

    fn read(r: &Reader<'_>) -> Result<Self, RecordError> {
        let amount = r.int("amount")?;
        if amount == 0 || amount.unsigned_abs() > healsync_domain::billing::MAX_MINOR as u64 {
            return Err(RecordError::Invalid {
                field: "amount",
                reason: "zero or too large".into(),
            });
        }
        Ok(Payment {
            id: r.uuid("id")?,
            invoice_id: r.uuid("invoiceId")?,
            patient_id: r.uuid("patientId")?,
            site: r.str("site")?,
            amount,
            currency: currency(r)?,
            method: r.parsed("method", PaymentMethod::parse)?,
            reference: r.opt_str("reference")?,
            received_by: r.str("receivedBy")?,
            received_at: r.time("receivedAt")?,
        })
    }
}

impl Record for PriceItem {
    const KIND: RecordKind = RecordKind::PriceItem;

    fn id(&self) -> Uuid {
        self.id.0
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), RecordError> {
        w.str("site", &self.site)?;
        w.str("code", &self.code)?;
        w.str("name", &self.name)?;
        w.int("unitPrice", self.unit_price)?;
        w.str("currency", self.currency.as_str())?;
        w.int("taxRate", i64::from(self.tax_rate))?;
        w.bool("active", self.active)?;
        w.time("updatedAt", self.updated_at)
    }

    fn read(r: &Reader<'_>) -> Result<Self, RecordError> {
        let unit_price = r.int("unitPrice")?;
        if !(0..=healsync_domain::billing::MAX_MINOR).contains(&unit_price) {
            return Err(RecordError::Invalid {
                field: "unitPrice",
                reason: "negative or too large".into(),
            });
        }
        Ok(PriceItem {
            id: r.uuid("id")?,
            site: r.str("site")?,
            code: r.str("code")?,
            name: r.str("name")?,
            unit_price,
            currency: currency(r)?,
            tax_rate: rate(r, "taxRate")?,
            active: r.bool("active")?,
            updated_at: r.latest_time("updatedAt")?,
        })
    }
}

impl Record for Coverage {
    const KIND: RecordKind = RecordKind::Coverage;

    fn id(&self) -> Uuid {
        self.id.0
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), RecordError> {
        w.str("patientId", &self.patient_id.to_string())?;
        w.str("site", &self.site)?;
        w.str("payer", &self.payer)?;
        w.str("memberId", &self.member_id)?;
        w.opt_str("plan", self.plan.as_deref())?;
        w.date("validFrom", Some(self.valid_from))?;
        w.date("validTo", self.valid_to)?;
        w.bool("active", self.active)?;
        w.time("updatedAt", self.updated_at)
    }

    fn read(r: &Reader<'_>) -> Result<Self, RecordError> {
        Ok(Coverage {
            id: r.uuid("id")?,
            patient_id: r.uuid("patientId")?,
            site: r.str("site")?,
            payer: r.str("payer")?,
            member_id: r.str("memberId")?,
            plan: r.opt_str("plan")?,
            valid_from: r.date("validFrom")?.ok_or(RecordError::Invalid {
                field: "validFrom",
                reason: "missing".into(),
            })?,
            valid_to: r.date("validTo")?,
            active: r.bool("active")?,
            updated_at: r.latest_time("updatedAt")?,
        })
    }
}

impl Record for Claim {
    const KIND: RecordKind = RecordKind::Claim;

    fn id(&self) -> Uuid {
        self.id.0
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), RecordError> {
        w.str("number", &self.number)?;
        w.str("invoiceId", &self.invoice_id.to_string())?;
        w.str("invoiceNumber", &self.invoice_number)?;
        w.str("patientId", &self.patient_id.to_string())?;
        w.str("coverageId", &self.coverage_id.to_string())?;
        w.str("payer", &self.payer)?;
        w.str("memberId", &self.member_id)?;
        w.str("site", &self.site)?;
        w.int("amount", self.amount)?;
        w.str("currency", self.currency.as_str())?;
        w.str("status", self.status.as_str())?;
        w.opt_str("payerReference", self.payer_reference.as_deref())?;
        w.opt_str("response", self.response.as_deref())?;
        w.opt_int("paidAmount", self.paid_amount)?;
        w.str("createdBy", &self.created_by)?;
        w.time("createdAt", self.created_at)?;
        w.time("updatedAt", self.updated_at)
    }

    fn read(r: &Reader<'_>) -> Result<Self, RecordError> {
        let amount = r.int("amount")?;
        if !(1..=healsync_domain::billing::MAX_MINOR).contains(&amount) {
            return Err(RecordError::Invalid {
                field: "amount",
                reason: "zero, negative or too large".into(),
            });
        }
        let paid_amount = r.opt_int("paidAmount")?;
        Ok(Claim {
            id: r.uuid("id")?,
            number: r.str("number")?,
            invoice_id: r.uuid("invoiceId")?,
            invoice_number: r.str("invoiceNumber")?,
            patient_id: r.uuid("patientId")?,
            coverage_id: r.uuid("coverageId")?,
            payer: r.str("payer")?,
            member_id: r.str("memberId")?,
            site: r.str("site")?,
            amount,
            currency: currency(r)?,
            status: r.parsed("status", ClaimStatus::parse)?,
            payer_reference: r.opt_str("payerReference")?,
            response: r.opt_str("response")?,
            paid_amount,
            created_by: r.str("createdBy")?,
            created_at: r.time("createdAt")?,
            updated_at: r.latest_time("updatedAt")?,
        })
    }
}

impl Record for MessagePreference {
    const KIND: RecordKind = RecordKind::MessagePreference;

    fn id(&self) -> Uuid {
        self.id.0
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), RecordError> {
        w.str("patientId", &self.patient_id.to_string())?;
        w.str("site", &self.site)?;
        w.bool("email", self.email)?;
        w.bool("sms", self.sms)?;
        w.time("updatedAt", self.updated_at)
    }

    fn read(r: &Reader<'_>) -> Result<Self, RecordError> {
        Ok(MessagePreference {
            id: r.uuid("id")?,
            patient_id: r.uuid("patientId")?,
            site: r.str("site")?,
            email: r.bool("email")?,
            sms: r.bool("sms")?,
            updated_at: r.latest_time("updatedAt")?,
        })
    }
}
