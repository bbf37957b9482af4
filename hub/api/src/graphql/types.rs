//! The objects the hub serves. `Patient`, `Doctor`, `Appointment`, `TimeSlot` and
//! `Notification` carry the node's field names (the seed's schema among them) plus
//! their `site`; the rest is what only the hub knows (sites, nodes, refusals,
//! conflicts). Nested fields go through the request's loaders, so a page of
//! appointments with their patients and doctors costs one query per field, not per row.

use async_graphql::{ComplexObject, Context, Enum, ID, Json, Object, Result, SimpleObject};
use chrono::{Duration, Utc};
use healsync_domain::{Appointment, Doctor, Notification, Patient, Sex};
use healsync_hub_store::DocumentRow;

use super::loaders::{PatientAppointments, loader};
use super::{admin, hub, instant, limit, range, ts, uuid};
use crate::HubApiError;

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
#[graphql(
    name = "AppointmentStatus",
    remote = "healsync_domain::AppointmentStatus"
)]
pub enum GqlStatus {
    Booked,
    CheckedIn,
    Completed,
    Cancelled,
    NoShow,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "Sex", remote = "healsync_domain::Sex")]
pub enum GqlSex {
    Female,
    Male,
    Other,
    Unknown,
}

/// A postal address; every part optional.
#[derive(SimpleObject, Clone)]
pub struct Address {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

/// A patient, at the site that registered them (and the sites it is shared with).
/// Demographics only: clinical content is for the patient and the clinicians treating
/// them, never for central admins.
pub struct PatientObj(pub Patient);

#[Object(name = "Patient")]
impl PatientObj {
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
        self.0.sex.map(|s: Sex| s.into())
    }
    async fn address(&self) -> Address {
        let a = &self.0.address;
        Address {
            line1: a.line1.clone(),
            line2: a.line2.clone(),
            city: a.city.clone(),
            region: a.region.clone(),
            postal_code: a.postal_code.clone(),
            country: a.country.clone(),
        }
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
    /// The other sites that hold this patient (shared with them, or booked there).
    async fn shared_with(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let a = admin(ctx)?;
        let sites = hub(ctx)?
            .store()
            .granted_sites(self.0.id.0)
            .await
            .map_err(HubApiError::from)?;
        Ok(sites.into_iter().filter(|s| a.sees_site(s)).collect())
    }
    /// The patient's appointments at the sites this admin sees, oldest first: the
    /// latest `limit` of them.
    async fn appointments(
        &self,
        ctx: &Context<'_>,
        status: Option<GqlStatus>,
        #[graphql(default = 50)] limit: i32,
    ) -> Result<Vec<AppointmentObj>> {
        let limit = usize::try_from(self::limit(limit, 500)?).unwrap_or(500);
        admin(ctx)?;
        let all = loader(ctx)?
            .load_one(PatientAppointments(self.0.id.0))
            .await?
            .unwrap_or_default();
        let wanted: Vec<Appointment> = all
            .into_iter()
            .filter(|a| status.is_none_or(|s| a.status == s.into()))
            .collect();
        let skip = wanted.len().saturating_sub(limit);
        Ok(wanted.into_iter().skip(skip).map(AppointmentObj).collect())
    }
    /// Clinical: the patient's medical record. For the patient and the clinicians
    /// treating them at their clinic; FORBIDDEN to central admins, like every clinical
    /// field.
    async fn medical_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] limit: i32,
    ) -> Result<Vec<MedicalRecordObj>> {
        self::limit(limit, 500)?;
        admin(ctx)?;
        Err(HubApiError::Forbidden(
            "medical records are for the patient and the clinicians treating them".into(),
        )
        .into())
    }
}

/// A medical record entry. Central admins never read one (see
/// `Patient.medicalHistory`); the type exists so clients share one schema.
#[derive(SimpleObject)]
#[graphql(name = "MedicalRecord")]
pub struct MedicalRecordObj {
    pub id: ID,
    pub site: String,
    pub recorded_at: String,
}

/// A bookable period, at a site.
#[derive(SimpleObject, Clone)]
pub struct TimeSlot {
    pub start: String,
    pub end: String,
    pub site: String,
}

pub struct DoctorObj(pub Doctor);

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
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    /// The sites (that this admin sees) where the doctor has an active schedule.
    async fn sites(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let a = admin(ctx)?;
        let (schedules, _) = hub(ctx)?
            .store()
            .doctor_calendar(self.0.id.0)
            .await
            .map_err(HubApiError::from)?;
        let mut sites: Vec<String> = schedules
            .into_iter()
            .map(|s| s.site)
            .filter(|s| a.sees_site(s))
            .collect();
        sites.sort();
        sites.dedup();
        Ok(sites)
    }
    /// Upcoming free slots at every site this admin sees (or one): a slot is free only
    /// if the doctor is booked at no site then. `from` defaults to now, `to` to 14 days
    /// after `from`; at most 92 days.
    async fn available_slots(
        &self,
        ctx: &Context<'_>,
        from: Option<String>,
        to: Option<String>,
        site: Option<String>,
        #[graphql(default = 200)] limit: i32,
    ) -> Result<Vec<TimeSlot>> {
        let limit = usize::try_from(self::limit(limit, 1000)?).unwrap_or(1000);
        let a = admin(ctx)?;
        let site = a.site_filter(site)?;
        let now = Utc::now();
        let from = match from {
            Some(f) => instant("from", &f)?.max(now),
            None => now,
        };
        let to = match to {
            Some(t) => instant("to", &t)?,
            None => from + Duration::days(14),
        };
        let (from, to) = range(from, to)?;
        let mut slots: Vec<TimeSlot> = availability(ctx, self.0.id.0, from, to)
            .await?
            .into_iter()
            .filter(|s| a.sees_site(&s.site) && site.as_ref().is_none_or(|x| *x == s.site))
            .flat_map(|s| s.free_slots)
            .collect();
        slots.sort_by(|x, y| x.start.cmp(&y.start).then(x.site.cmp(&y.site)));
        slots.truncate(limit);
        Ok(slots)
    }
    /// The doctor's appointments at the sites this admin sees in `[from, to)` (default:
    /// the next 7 days), by start time.
    async fn appointments(
        &self,
        ctx: &Context<'_>,
        from: Option<String>,
        to: Option<String>,
    ) -> Result<Vec<AppointmentObj>> {
        let a = admin(ctx)?;
        let from = match from {
            Some(f) => instant("from", &f)?,
            None => Utc::now(),
        };
        let to = match to {
            Some(t) => instant("to", &t)?,
            None => from + Duration::days(7),
        };
        let (from, to) = range(from, to)?;
        let found = hub(ctx)?
            .store()
            .doctor_appointments(self.0.id.0, from, to, a.sites(), 500)
            .await
            .map_err(HubApiError::from)?;
        Ok(found.into_iter().map(AppointmentObj).collect())
    }
}

/// An appointment, at the site whose schedule holds it.
pub struct AppointmentObj(pub Appointment);

#[Object(name = "Appointment")]
impl AppointmentObj {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn site(&self) -> &str {
        &self.0.site
    }
    async fn patient_id(&self) -> ID {
        ID(self.0.patient_id.to_string())
    }
    async fn doctor_id(&self) -> ID {
        ID(self.0.doctor_id.to_string())
    }
    /// The slot's start (RFC 3339).
    async fn scheduled_at(&self) -> String {
        ts(self.0.start)
    }
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
    async fn patient(&self, ctx: &Context<'_>) -> Result<PatientObj> {
        loader(ctx)?
            .load_one(self.0.patient_id)
            .await?
            .map(PatientObj)
            .ok_or_else(|| HubApiError::NotFound("the appointment's patient".into()).into())
    }
    async fn doctor(&self, ctx: &Context<'_>) -> Result<DoctorObj> {
        loader(ctx)?
            .load_one(self.0.doctor_id)
            .await?
            .map(DoctorObj)
            .ok_or_else(|| HubApiError::NotFound("the appointment's doctor".into()).into())
    }
}

/// A notification, at the site that holds it.
pub struct NotificationObj {
    pub site: String,
    pub n: Notification,
}

#[Object(name = "Notification")]
impl NotificationObj {
    async fn id(&self) -> ID {
        ID(self.n.id.to_string())
    }
    async fn site(&self) -> &str {
        &self.site
    }
    /// A stable machine name: `APPOINTMENT_BOOKED`, `APPOINTMENT_CANCELLED`, ...
    #[graphql(name = "type")]
    async fn kind(&self) -> &str {
        &self.n.kind
    }
    async fn title(&self) -> &str {
        &self.n.title
    }
    async fn body(&self) -> &str {
        &self.n.body
    }
    /// Title and details as one line (the seed schema's field).
    async fn message(&self) -> String {
        self.n.message()
    }
    async fn appointment_id(&self) -> Option<ID> {
        self.n.appointment_id.map(|a| ID(a.to_string()))
    }
    async fn created_at(&self) -> String {
        ts(self.n.created_at)
    }
    /// When it was made (RFC 3339; the seed schema's name for `createdAt`).
    async fn timestamp(&self) -> String {
        ts(self.n.created_at)
    }
    async fn read(&self) -> bool {
        self.n.read
    }
}

/// A doctor's calendar at one site within a range: free slots and bookings.
#[derive(SimpleObject)]
pub struct SiteAvailability {
    pub site: String,
    pub free_slots: Vec<TimeSlot>,
    pub booked: Vec<AppointmentObj>,
}

/// A doctor's free slots and bookings at every site where they have a schedule (or
/// bookings) in `[from, to)`. A slot is free only if the doctor is booked at no site
/// then.
pub(crate) async fn availability(
    ctx: &Context<'_>,
    doctor: uuid::Uuid,
    from: chrono::DateTime<Utc>,
    to: chrono::DateTime<Utc>,
) -> Result<Vec<SiteAvailability>, HubApiError> {
    let store = hub(ctx)?.store();
    let (schedules, leaves) = store.doctor_calendar(doctor).await?;
    let booked = store
        .doctor_appointments(
            doctor,
            from - Duration::days(1),
            to + Duration::days(1),
            None,
            2000,
        )
        .await?;
    let holding: Vec<&Appointment> = booked.iter().filter(|a| a.status.holds_time()).collect();
    let mut sites: Vec<String> = schedules.iter().map(|s| s.site.clone()).collect();
    sites.extend(booked.iter().map(|a| a.site.clone()));
    sites.sort();
    sites.dedup();
    Ok(sites
        .into_iter()
        .map(|site| {
            let site_leaves: Vec<_> = leaves.iter().filter(|l| l.site == site).cloned().collect();
            let free_slots = schedules
                .iter()
                .filter(|s| s.site == site)
                .flat_map(|s| s.slots(&site_leaves, from, to))
                .filter(|slot| {
                    !holding.iter().any(|a| {
                        healsync_domain::schedule::overlaps(slot.start, slot.end, a.start, a.end)
                    })
                })
                .map(|slot| TimeSlot {
                    start: ts(slot.start),
                    end: ts(slot.end),
                    site: site.clone(),
                })
                .collect();
            SiteAvailability {
                booked: booked
                    .iter()
                    .filter(|a| a.site == site && a.start < to && a.end > from)
                    .cloned()
                    .map(AppointmentObj)
                    .collect(),
                site,
                free_slots,
            }
        })
        .collect())
}

/// A clinic site with its nodes and open conflicts.
#[derive(SimpleObject)]
pub struct Site {
    pub code: String,
    pub name: String,
    pub nodes: Vec<NodeSync>,
    /// Field conflicts in the site's records plus unresolved cross-site collisions.
    pub open_conflicts: i64,
}

/// A node's sync state as the hub sees it.
#[derive(SimpleObject)]
pub struct NodeSync {
    pub id: ID,
    pub revoked: bool,
    pub last_sync: Option<String>,
    /// The node's change-log position the hub has committed.
    pub upload_acked: i64,
    /// Hub log entries past what the node has applied.
    pub lag: i64,
    /// Changes from this node the hub refused to store (see `refusals`): another
    /// site's records, damaged or mislabelled changes.
    pub refused_changes: i64,
}

/// An uploaded change the hub refused to store, and why.
#[derive(SimpleObject)]
pub struct Refusal {
    pub node_id: ID,
    pub site: String,
    /// The change's position in the node's change log.
    pub seq: i64,
    pub record_id: ID,
    pub reason: String,
    pub at: String,
}

/// Any record, as the hub's generic projection holds it: every field's current value.
/// For diagnosis; every kind an admin works with has its own type.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Record {
    pub id: ID,
    pub kind: String,
    /// The site that owns the record.
    pub site: String,
    /// The document's heads: equal on every replica that holds the same document.
    pub heads: String,
    pub fields: Json<serde_json::Value>,
}

#[ComplexObject]
impl Record {
    /// The other sites that hold this record (a patient shared with them, or booked
    /// there from the hub); every site holds doctors and users.
    async fn shared_with(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let a = admin(ctx)?;
        let id = uuid("id", &self.id)?;
        let sites = hub(ctx)?
            .store()
            .granted_sites(id)
            .await
            .map_err(HubApiError::from)?;
        Ok(sites.into_iter().filter(|s| a.sees_site(s)).collect())
    }
}

impl From<DocumentRow> for Record {
    fn from(d: DocumentRow) -> Self {
        Record {
            id: ID(d.doc_id.to_string()),
            kind: d.kind,
            site: d.site,
            heads: d.heads,
            fields: Json(d.record),
        }
    }
}

/// A field edited differently at two places.
#[derive(SimpleObject)]
pub struct Conflict {
    pub record_id: ID,
    pub kind: String,
    pub site: String,
    pub field: String,
    pub values: Vec<String>,
    pub detected_at: String,
}

/// One doctor or one patient booked at two sites at overlapping times.
#[derive(SimpleObject)]
pub struct CrossSiteConflict {
    pub id: ID,
    /// `DOCTOR` or `PATIENT`: who is double-booked.
    pub kind: String,
    pub first_appointment: ID,
    pub first_site: String,
    pub second_appointment: ID,
    pub second_site: String,
    pub detected_at: String,
    pub resolved_at: Option<String>,
}

impl From<healsync_hub_store::CrossSiteConflict> for CrossSiteConflict {
    fn from(c: healsync_hub_store::CrossSiteConflict) -> Self {
        CrossSiteConflict {
            id: ID(c.id.to_string()),
            kind: c.kind,
            first_appointment: ID(c.first_appointment.to_string()),
            first_site: c.first_site,
            second_appointment: ID(c.second_appointment.to_string()),
            second_site: c.second_site,
            detected_at: ts(c.detected_at),
            resolved_at: c.resolved_at.map(ts),
        }
    }
}

#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: String,
    pub username: String,
    pub role: String,
    /// The sites this account is limited to; null: every site.
    pub sites: Option<Vec<String>>,
}

/// What a conflict subscription reports.
#[derive(SimpleObject, Clone)]
pub struct ConflictRaised {
    /// `FIELD` for a field conflict, `DOCTOR` or `PATIENT` for a cross-site collision.
    pub kind: String,
    /// The record with the field conflict, or the first of the two appointments.
    pub record_id: ID,
    pub site: String,
}
