//! GraphQL output types. Each wraps a domain record; fields that need more than the
//! record (its patient, its doctor, free slots) resolve through the request's loaders,
//! and every field checks the access policy it needs.

use super::read_audit::{self, audited};
use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use healsync_domain::{
    Appointment, AppointmentStatus, Doctor, Leave, Notification, Patient, PatientRequest, Role,
    Schedule, Sex, User,
};
use healsync_store::queries;

use super::clinical::{
    ClinicalSummaryObj, GqlEntryType, MAX_SUMMARY_ITEMS, MedicalRecordObj, may_read, type_names,
};
use super::loaders::{DoctorAppointments, History, InCare, PatientAppointments, loader};
use super::{
    MAX_LEAVES, MAX_SCHEDULES, MAX_WEEKLY_RULES, nested_limit, node, parse_instant, session,
};
use crate::ApiError;
use crate::service::appointments::{check_range, free_slots};

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "AppointmentStatus")]
pub enum GqlStatus {
    Booked,
    CheckedIn,
    Completed,
    Cancelled,
    NoShow,
}

impl From<AppointmentStatus> for GqlStatus {
    fn from(s: AppointmentStatus) -> Self {
        match s {
            AppointmentStatus::Booked => GqlStatus::Booked,
            AppointmentStatus::CheckedIn => GqlStatus::CheckedIn,
            AppointmentStatus::Completed => GqlStatus::Completed,
            AppointmentStatus::Cancelled => GqlStatus::Cancelled,
            AppointmentStatus::NoShow => GqlStatus::NoShow,
        }
    }
}

impl From<GqlStatus> for AppointmentStatus {
    fn from(s: GqlStatus) -> Self {
        match s {
            GqlStatus::Booked => AppointmentStatus::Booked,
            GqlStatus::CheckedIn => AppointmentStatus::CheckedIn,
            GqlStatus::Completed => AppointmentStatus::Completed,
            GqlStatus::Cancelled => AppointmentStatus::Cancelled,
            GqlStatus::NoShow => AppointmentStatus::NoShow,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Role")]
pub enum GqlRole {
    Patient,
    Doctor,
    Receptionist,
    Admin,
    /// Central billing reporting: an account at the hub only, never at a clinic.
    Finance,
}

impl From<Role> for GqlRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Patient => GqlRole::Patient,
            Role::Doctor => GqlRole::Doctor,
            Role::Receptionist => GqlRole::Receptionist,
            Role::Admin => GqlRole::Admin,
            Role::Finance => GqlRole::Finance,
        }
    }
}

impl From<GqlRole> for Role {
    fn from(r: GqlRole) -> Self {
        match r {
            GqlRole::Patient => Role::Patient,
            GqlRole::Doctor => Role::Doctor,
            GqlRole::Receptionist => Role::Receptionist,
            GqlRole::Admin => Role::Admin,
            GqlRole::Finance => Role::Finance,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Sex")]
pub enum GqlSex {
    Female,
    Male,
    Other,
    Unknown,
}

impl From<Sex> for GqlSex {
    fn from(s: Sex) -> Self {
        match s {
            Sex::Female => GqlSex::Female,
            Sex::Male => GqlSex::Male,
            Sex::Other => GqlSex::Other,
            Sex::Unknown => GqlSex::Unknown,
        }
    }
}

impl From<GqlSex> for Sex {
    fn from(s: GqlSex) -> Self {
        match s {
            GqlSex::Female => Sex::Female,
            GqlSex::Male => Sex::Male,
            GqlSex::Other => Sex::Other,
            GqlSex::Unknown => Sex::Unknown,
        }
    }
}

#[derive(SimpleObject, Clone)]
#[graphql(name = "Address")]
pub struct GqlAddress {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

#[derive(SimpleObject, Clone)]
#[graphql(name = "EmergencyContact")]
pub struct GqlEmergencyContact {
    pub name: String,
    pub phone: String,
    pub relationship: Option<String>,
}

/// A patient record the session is allowed to see.
pub struct PatientObj(pub Patient);

/// How a `Patient` resolves its fields; each output of [`PatientObj`] is noted as a read
/// first (`read_audit`).
pub struct PatientView(pub Patient);

audited!(PatientObj => PatientView, |r| ("patient", r.id.0, Some(r.id)));

#[Object(name = "Patient")]
impl PatientView {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Medical record number, `SITE-000123`.
    async fn mrn(&self) -> &str {
        &self.0.mrn
    }
    /// The site that registered the patient.
    async fn site(&self) -> &str {
        &self.0.site
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    /// `YYYY-MM-DD`.
    async fn date_of_birth(&self) -> Option<String> {
        self.0
            .date_of_birth
            .map(|d| d.format("%Y-%m-%d").to_string())
    }
    async fn sex(&self) -> Option<GqlSex> {
        self.0.sex.map(Into::into)
    }
    async fn address(&self) -> GqlAddress {
        let a = &self.0.address;
        GqlAddress {
            line1: a.line1.clone(),
            line2: a.line2.clone(),
            city: a.city.clone(),
            region: a.region.clone(),
            postal_code: a.postal_code.clone(),
            country: a.country.clone(),
        }
    }
    async fn emergency_contact(&self) -> Option<GqlEmergencyContact> {
        self.0
            .emergency_contact
            .as_ref()
            .map(|c| GqlEmergencyContact {
                name: c.name.clone(),
                phone: c.phone.clone(),
                relationship: c.relationship.clone(),
            })
    }
    /// Clinical: for the patient and the doctors treating them (FORBIDDEN to the
    /// front desk, and to a doctor whose appointment made no care relationship).
    async fn allergies(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let s = session(ctx)?;
        if !s.reads_clinical() {
            read_audit::refused(ctx, "allergies", "patient", self.0.id);
            return Err(ApiError::Forbidden("allergies are clinical data".into()).into());
        }
        if let (Role::Doctor, Some(doctor)) = (s.role, s.doctor_id) {
            let key = InCare {
                doctor,
                patient: self.0.id,
            };
            if !loader(ctx)?.load_one(key).await?.unwrap_or(false)
                && !super::clinical::by_break_glass(ctx, self.0.id).await?
            {
                read_audit::refused(ctx, "allergies", "patient", self.0.id);
                return Err(ApiError::Forbidden(
                    "allergies are for the doctors treating this patient".into(),
                )
                .into());
            }
        }
        Ok(self.0.allergies.clone())
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn created_at(&self) -> String {
        ts(self.0.created_at)
    }
    async fn updated_at(&self) -> String {
        ts(self.0.updated_at)
    }
    /// The patient's appointments that the session may see, oldest first: the latest
    /// `limit` of them (a long history keeps its recent visits in view).
    async fn appointments(
        &self,
        ctx: &Context<'_>,
        status: Option<GqlStatus>,
        #[graphql(default = 50)] limit: i32,
    ) -> Result<Vec<AppointmentObj>> {
        let limit = nested_limit(limit, 500)?;
        let s = session(ctx)?;
        let all = loader(ctx)?
            .load_one(PatientAppointments(self.0.id))
            .await?
            .unwrap_or_default();
        let seen: Vec<Appointment> = all
            .into_iter()
            .filter(|a| s.sees_appointment(a))
            .filter(|a| status.is_none_or(|st| AppointmentStatus::from(st) == a.status))
            .collect();
        let skip = seen.len().saturating_sub(limit);
        Ok(seen.into_iter().skip(skip).map(AppointmentObj).collect())
    }
    /// Clinical: the patient's medical record in time order (by `recordedAt`): the
    /// latest `limit` entries of the given `types` (all when left out) recorded in
    /// `[from, to)`, corrections and what they correct included unless `currentOnly`.
    /// For the patient and the doctors treating them; FORBIDDEN to anyone else.
    async fn medical_history(
        &self,
        ctx: &Context<'_>,
        types: Option<Vec<GqlEntryType>>,
        from: Option<String>,
        to: Option<String>,
        #[graphql(default = false)] current_only: bool,
        #[graphql(default = 50)] limit: i32,
    ) -> Result<Vec<MedicalRecordObj>> {
        let limit = nested_limit(limit, 500)?;
        if !may_read(ctx, self.0.id).await? {
            return Err(ApiError::Forbidden(
                "medical records are for the patient and the doctors treating them".into(),
            )
            .into());
        }
        let filter = queries::HistoryFilter {
            types: type_names(types),
            from: from.map(|f| parse_instant("from", &f)).transpose()?,
            to: to.map(|t| parse_instant("to", &t)).transpose()?,
            current_only,
            limit: limit as u32,
        };
        let key = History {
            patient: self.0.id,
            filter: std::sync::Arc::new(filter),
        };
        Ok(loader(ctx)?
            .load_one(key)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(MedicalRecordObj)
            .collect())
    }
    /// Clinical: active problems, current medications, allergies and the last vital
    /// signs, from the projections. Same access as `medicalHistory`.
    async fn clinical_summary(&self, ctx: &Context<'_>) -> Result<ClinicalSummaryObj> {
        use healsync_domain::EntryType;
        use healsync_domain::clinical::{MedicationStatus, ProblemStatus};
        if !may_read(ctx, self.0.id).await? {
            return Err(ApiError::Forbidden(
                "medical records are for the patient and the doctors treating them".into(),
            )
            .into());
        }
        let patient = self.0.id;
        let n = MAX_SUMMARY_ITEMS as u32;
        let (problems, medications, allergies, vitals) = node(ctx)?
            .read(move |c| {
                let current =
                    |t, status: Option<&str>, n| queries::current_entries(c, patient, t, status, n);
                Ok((
                    current(
                        EntryType::Diagnosis,
                        Some(ProblemStatus::Active.as_str()),
                        n,
                    )?,
                    current(
                        EntryType::Prescription,
                        Some(MedicationStatus::Active.as_str()),
                        n,
                    )?,
                    current(EntryType::Allergy, None, n)?,
                    current(EntryType::Vitals, None, 1)?,
                ))
            })
            .await?;
        let objs = |v: Vec<queries::EntryRow>| v.into_iter().map(MedicalRecordObj).collect();
        Ok(ClinicalSummaryObj {
            active_problems: objs(problems),
            current_medications: objs(medications),
            allergies: objs(allergies),
            last_vitals: vitals.into_iter().next().map(MedicalRecordObj),
        })
    }
}

/// A bookable period.
#[derive(SimpleObject, Clone)]
pub struct TimeSlot {
    pub start: String,
    pub end: String,
}

pub struct DoctorObj(pub Doctor);

fn staff_only(ctx: &Context<'_>) -> Result<()> {
    if session(ctx)?.role == Role::Patient {
        return Err(ApiError::Forbidden("staff contact details are for staff".into()).into());
    }
    Ok(())
}

#[Object(name = "Doctor")]
impl DoctorObj {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The doctor's primary specialization (the first of `specializations`).
    async fn specialization(&self) -> &str {
        self.0.specializations.first().map_or("", String::as_str)
    }
    async fn specializations(&self) -> &[String] {
        &self.0.specializations
    }
    async fn licence_number(&self) -> &str {
        &self.0.licence_number
    }
    /// Staff only.
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        staff_only(ctx)?;
        Ok(self.0.email.as_deref())
    }
    /// Staff only.
    async fn phone(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        staff_only(ctx)?;
        Ok(self.0.phone.as_deref())
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    /// Upcoming free slots of the doctor's schedule at this site. `from` defaults to now,
    /// `to` to 14 days after `from`; at most 92 days.
    async fn available_slots(
        &self,
        ctx: &Context<'_>,
        from: Option<String>,
        to: Option<String>,
        #[graphql(default = 200)] limit: i32,
    ) -> Result<Vec<TimeSlot>> {
        let limit = nested_limit(limit, 1000)?;
        session(ctx)?;
        let node = node(ctx)?;
        let now = node.now();
        let from = match from {
            Some(f) => parse_instant("from", &f)?.max(now),
            None => now,
        };
        let to = match to {
            Some(t) => parse_instant("to", &t)?,
            None => from + Duration::days(14),
        };
        check_range(from, to).map_err(ApiError::from)?;
        let site = node.store().identity().site.to_string();
        let doctor = self.0.id;
        let slots = node
            .read(move |c| free_slots(c, &site, doctor, from, to))
            .await?;
        Ok(slots
            .into_iter()
            .take(limit)
            .map(|s| TimeSlot {
                start: ts(s.start),
                end: ts(s.end),
            })
            .collect())
    }
    /// The doctor's weekly schedules (one per site).
    async fn schedules(&self, ctx: &Context<'_>) -> Result<Vec<ScheduleObj>> {
        session(ctx)?;
        let id = self.0.id;
        let list = node(ctx)?
            .read(move |c| queries::schedules_of(c, id))
            .await?;
        Ok(list
            .into_iter()
            .take(MAX_SCHEDULES)
            .map(ScheduleObj)
            .collect())
    }
    /// Leave overlapping `[from, to)` (defaults: now to 92 days on).
    async fn leaves(
        &self,
        ctx: &Context<'_>,
        from: Option<String>,
        to: Option<String>,
    ) -> Result<Vec<LeaveObj>> {
        session(ctx)?;
        let node = node(ctx)?;
        let from = from
            .map(|f| parse_instant("from", &f))
            .transpose()?
            .unwrap_or(node.now());
        let to = to
            .map(|t| parse_instant("to", &t))
            .transpose()?
            .unwrap_or(from + Duration::days(92));
        let id = self.0.id;
        let list = node
            .read(move |c| queries::leaves_of(c, id, from, to))
            .await?;
        Ok(list.into_iter().take(MAX_LEAVES).map(LeaveObj).collect())
    }
    /// The doctor's appointments starting in `[from, to)` that the session may see
    /// (defaults: today 00:00 UTC to 7 days on; at most 92 days).
    async fn appointments(
        &self,
        ctx: &Context<'_>,
        from: Option<String>,
        to: Option<String>,
        #[graphql(default = 100)] limit: i32,
    ) -> Result<Vec<AppointmentObj>> {
        let limit = nested_limit(limit, 500)?;
        let s = session(ctx)?;
        let today = node(ctx)?
            .now()
            .date_naive()
            .and_time(chrono::NaiveTime::MIN)
            .and_utc();
        let from = from
            .map(|f| parse_instant("from", &f))
            .transpose()?
            .unwrap_or(today);
        let to = to
            .map(|t| parse_instant("to", &t))
            .transpose()?
            .unwrap_or(from + Duration::days(7));
        check_range(from, to).map_err(ApiError::from)?;
        let all = loader(ctx)?
            .load_one(DoctorAppointments {
                doctor: self.0.id,
                from: from.timestamp_millis(),
                to: to.timestamp_millis(),
            })
            .await?
            .unwrap_or_default();
        Ok(all
            .into_iter()
            .filter(|a| s.sees_appointment(a))
            .take(limit)
            .map(AppointmentObj)
            .collect())
    }
}

pub struct AppointmentObj(pub Appointment);

/// How a `Appointment` resolves its fields; each output of [`AppointmentObj`] is noted as a read
/// first (`read_audit`).
pub struct AppointmentView(pub Appointment);

audited!(AppointmentObj => AppointmentView, |r| ("appointment", r.id.0, Some(r.patient_id)));

#[Object(name = "Appointment")]
impl AppointmentView {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn patient_id(&self) -> ID {
        ID(self.0.patient_id.to_string())
    }
    async fn doctor_id(&self) -> ID {
        ID(self.0.doctor_id.to_string())
    }
    /// The site whose schedule holds the slot.
    async fn site(&self) -> &str {
        &self.0.site
    }
    /// Start of the slot (RFC 3339, UTC).
    async fn scheduled_at(&self) -> String {
        ts(self.0.start)
    }
    /// End of the slot (RFC 3339, UTC).
    async fn ends_at(&self) -> String {
        ts(self.0.end)
    }
    async fn status(&self) -> GqlStatus {
        self.0.status.into()
    }
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    async fn notes(&self) -> Option<&str> {
        self.0.notes.as_deref()
    }
    async fn created_at(&self) -> String {
        ts(self.0.created_at)
    }
    async fn updated_at(&self) -> String {
        ts(self.0.updated_at)
    }
    /// The patient (the seed schema's non-null field: the grant that brings another
    /// clinic's patient is made before the booking, so the record is here).
    async fn patient(&self, ctx: &Context<'_>) -> Result<PatientObj> {
        if !session(ctx)?.sees_appointment(&self.0) {
            return Err(ApiError::forbidden().into());
        }
        loader(ctx)?
            .load_one(self.0.patient_id)
            .await?
            .map(PatientObj)
            .ok_or_else(|| ApiError::not_found("patient").into())
    }
    async fn doctor(&self, ctx: &Context<'_>) -> Result<DoctorObj> {
        session(ctx)?;
        loader(ctx)?
            .load_one(self.0.doctor_id)
            .await?
            .map(DoctorObj)
            .ok_or_else(|| ApiError::not_found("doctor").into())
    }
}

#[derive(SimpleObject, Clone)]
#[graphql(name = "WeeklyRule")]
pub struct GqlWeeklyRule {
    /// `MON` .. `SUN`.
    pub weekday: String,
    /// `HH:MM`, site wall-clock time.
    pub start: String,
    pub end: String,
}

pub struct ScheduleObj(pub Schedule);

#[Object(name = "Schedule")]
impl ScheduleObj {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn doctor_id(&self) -> ID {
        ID(self.0.doctor_id.to_string())
    }
    async fn site(&self) -> &str {
        &self.0.site
    }
    async fn slot_minutes(&self) -> u32 {
        self.0.slot_minutes
    }
    /// The site's offset from UTC that the weekly times are written in.
    async fn utc_offset_minutes(&self) -> i32 {
        self.0.utc_offset_minutes
    }
    async fn weekly(&self) -> Vec<GqlWeeklyRule> {
        self.0
            .rules
            .iter()
            .take(MAX_WEEKLY_RULES)
            .map(|r| GqlWeeklyRule {
                weekday: r.weekday.to_string().to_uppercase(),
                start: r.start.format("%H:%M").to_string(),
                end: r.end.format("%H:%M").to_string(),
            })
            .collect()
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn updated_at(&self) -> String {
        ts(self.0.updated_at)
    }
}

pub struct LeaveObj(pub Leave);

#[Object(name = "Leave")]
impl LeaveObj {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn doctor_id(&self) -> ID {
        ID(self.0.doctor_id.to_string())
    }
    async fn start(&self) -> String {
        ts(self.0.start)
    }
    async fn end(&self) -> String {
        ts(self.0.end)
    }
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    async fn cancelled(&self) -> bool {
        self.0.cancelled
    }
}

pub struct NotificationObj(pub Notification);

/// How a `Notification` resolves its fields; each output of [`NotificationObj`] is noted as a read
/// first (`read_audit`).
pub struct NotificationView(pub Notification);

audited!(NotificationObj => NotificationView, |r| ("notification", r.id.0, match r.audience { healsync_domain::notification::Audience::Patient(p) => Some(p), _ => None }));

#[Object(name = "Notification")]
impl NotificationView {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// A stable machine name: `APPOINTMENT_BOOKED`, `APPOINTMENT_CANCELLED`, ...
    #[graphql(name = "type")]
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// Title and details as one line (the seed schema's field).
    async fn message(&self) -> String {
        self.0.message()
    }
    async fn appointment_id(&self) -> Option<ID> {
        self.0.appointment_id.map(|a| ID(a.to_string()))
    }
    async fn created_at(&self) -> String {
        ts(self.0.created_at)
    }
    /// When it was made (RFC 3339; the seed schema's name for `createdAt`).
    async fn timestamp(&self) -> String {
        ts(self.0.created_at)
    }
    async fn read(&self) -> bool {
        self.0.read
    }
}

/// Where a request for another clinic's patient stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(
    name = "PatientRequestStatus",
    remote = "healsync_domain::RequestStatus"
)]
pub enum GqlRequestStatus {
    /// Waiting for the hub (sent with the next sync).
    Pending,
    /// The hub shared the patient with this clinic; it arrives with its history.
    Shared,
    /// No patient has that number and that date of birth.
    NotFound,
    /// The hub would not answer: this clinic asked for too many patients today.
    Refused,
}

/// A request to the hub for a patient registered at another clinic.
pub struct PatientRequestObj(pub PatientRequest);

/// How a `PatientRequest` resolves its fields; each output of [`PatientRequestObj`] is noted as a read
/// first (`read_audit`).
pub struct PatientRequestView(pub PatientRequest);

audited!(PatientRequestObj => PatientRequestView, |r| ("patient_request", r.id.0, r.patient_id));

#[Object(name = "PatientRequest")]
impl PatientRequestView {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The medical record number asked for.
    async fn mrn(&self) -> &str {
        &self.0.mrn
    }
    async fn status(&self) -> GqlRequestStatus {
        self.0.status.into()
    }
    /// The patient, once shared and arrived at this clinic.
    async fn patient(&self, ctx: &Context<'_>) -> Result<Option<PatientObj>> {
        let Some(id) = self.0.patient_id else {
            return Ok(None);
        };
        Ok(node(ctx)?
            .read(move |c| queries::patient(c, id))
            .await?
            .map(PatientObj))
    }
    /// The hub's explanation.
    async fn answer(&self) -> Option<&str> {
        self.0.answer.as_deref()
    }
    async fn requested_at(&self) -> String {
        ts(self.0.created_at)
    }
    async fn updated_at(&self) -> String {
        ts(self.0.updated_at)
    }
}

#[derive(SimpleObject, Clone)]
#[graphql(name = "User")]
pub struct UserObj {
    pub id: ID,
    pub username: String,
    pub role: GqlRole,
    pub patient_id: Option<ID>,
    pub doctor_id: Option<ID>,
    pub active: bool,
}

impl From<User> for UserObj {
    fn from(u: User) -> Self {
        UserObj {
            id: ID(u.id.to_string()),
            username: u.username,
            role: u.role.into(),
            patient_id: u.patient_id.map(|p| ID(p.to_string())),
            doctor_id: u.doctor_id.map(|d| ID(d.to_string())),
            active: u.active,
        }
    }
}

impl From<&crate::Session> for UserObj {
    fn from(s: &crate::Session) -> Self {
        UserObj {
            id: ID(s.user_id.to_string()),
            username: s.username.clone(),
            role: s.role.into(),
            patient_id: s.patient_id.map(|p| ID(p.to_string())),
            doctor_id: s.doctor_id.map(|d| ID(d.to_string())),
            active: true,
        }
    }
}

#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: String,
    pub user: UserObj,
}

/// This node's identity.
#[derive(SimpleObject)]
#[graphql(name = "NodeInfo")]
pub struct NodeInfo {
    pub site: String,
    pub node_id: ID,
    pub version: String,
}

/// The node's sync with the hub, as the staff's banner shows it.
#[derive(SimpleObject)]
#[graphql(name = "SyncStatus")]
pub struct SyncStatusObj {
    /// The hub's sync address, or null when this node is not enrolled with a hub.
    pub hub: Option<String>,
    /// Whether the last round this node tried reached the hub; null before the first
    /// round (or when not enrolled).
    pub hub_reachable: Option<bool>,
    /// When the last round ended (RFC 3339), and why it failed if it did.
    pub last_attempt_at: Option<String>,
    pub last_error: Option<String>,
    /// When a round last completed (RFC 3339), if ever.
    pub last_sync_at: Option<String>,
    /// Changes made here that the hub has not confirmed yet.
    pub changes_waiting: i64,
    /// Changes from the hub held back because they could not be merged yet.
    pub changes_held: i64,
    /// Changes made here that the hub refused to store.
    pub changes_refused: i64,
    pub open_conflicts: i64,
}

impl SyncStatusObj {
    pub fn new(s: healsync_store::NodeStatus, round: Option<crate::SyncRound>) -> SyncStatusObj {
        let enrolled = s.hub.is_some();
        let round = round.filter(|_| enrolled);
        SyncStatusObj {
            hub: s.hub,
            hub_reachable: round.as_ref().map(|r| r.error.is_none()),
            last_attempt_at: round.as_ref().map(|r| r.at.clone()),
            last_error: round.and_then(|r| r.error),
            last_sync_at: s.last_sync,
            changes_waiting: s.waiting_to_upload,
            changes_held: s.held_changes,
            changes_refused: s.refused_changes,
            open_conflicts: s.open_conflicts,
        }
    }
}

/// A field of a record edited differently at two places, as shown to staff: showing
/// the values of a record about a patient is a read of it (`audited!`).
pub struct ConflictObj(pub healsync_store::queries::Conflict);

impl From<healsync_store::queries::Conflict> for ConflictObj {
    fn from(c: healsync_store::queries::Conflict) -> Self {
        ConflictObj(c)
    }
}

/// How a `Conflict` resolves its fields.
pub struct ConflictView(pub healsync_store::queries::Conflict);

audited!(ConflictObj => ConflictView, |r| (r.kind.as_str(), r.doc_id, r.patient_id));

/// A field of a record edited differently at two places. Pick one of `values` with
/// `resolveConflict`; the other stays in the record's history.
#[Object(name = "Conflict")]
impl ConflictView {
    async fn record_id(&self) -> ID {
        ID(self.0.doc_id.to_string())
    }
    /// The record's kind: `patient`, `appointment`, ...
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn field(&self) -> &str {
        &self.0.field
    }
    async fn values(&self) -> &[String] {
        &self.0.values
    }
}
