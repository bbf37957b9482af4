//! The hub's GraphQL schema for central admins. The same conventions as the node
//! (login, bearer tokens, error codes, limits); every operation but `login` needs an
//! ADMIN session, and an ADMIN here sees every site.

use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, Json, Object, Result, Schema, SimpleObject,
    Subscription,
};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::Stream;
use healsync_auth::Claims;
use healsync_domain::appointment::parse_instant;
use healsync_domain::{Appointment, AppointmentStatus, Role};
use healsync_hub_store::{DocumentFilter, DocumentRow, GrantReason};
use healsync_records::RecordKind;
use uuid::Uuid;

use crate::{Hub, HubApiError, HubEvent};

pub type HubSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Longest range for availability and appointment queries.
pub const MAX_RANGE_DAYS: i64 = 92;

/// Bounds of the list fields without a `limit` argument, for the cost model.
pub const LIST_BOUNDS: &[(&str, &str, u64)] = &[
    ("Query", "sites", 200),
    ("Site", "nodes", 20),
    ("Query", "appointments", 500),
    ("Query", "doctorAvailability", 50),
    ("SiteAvailability", "freeSlots", 500),
    ("SiteAvailability", "booked", 500),
    ("Query", "conflicts", 500),
    ("Query", "crossSiteConflicts", 500),
];

/// What one request may cost (see `healsync-graphql-guard`).
pub fn limits() -> healsync_graphql_guard::Limits {
    healsync_graphql_guard::Limits::standard(LIST_BOUNDS)
}

fn builder() -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .extension(healsync_graphql_guard::Guard::new(limits()))
        .limit_depth(24)
        .limit_recursive_depth(32)
        .limit_directives(10)
}

pub fn build_schema(hub: Hub) -> HubSchema {
    builder().data(hub).finish()
}

/// The schema's SDL, as committed in `schema/hub.graphql`.
pub fn schema_sdl() -> String {
    builder().finish().sdl()
}

/// What a request carries about authentication.
#[derive(Debug, Clone)]
pub enum HubAuth {
    Admin(Claims),
    Invalid(String),
    Anonymous,
}

/// Turns an `Authorization` value into a [`HubAuth`]: only ADMIN sessions are admitted.
pub fn authenticate(hub: &Hub, header: Option<&str>) -> HubAuth {
    match hub.keys().bearer(header) {
        Ok(Some(c)) if c.role == Role::Admin => HubAuth::Admin(c),
        Ok(Some(c)) => HubAuth::Invalid(format!("a {} may not use the hub", c.role.as_str())),
        Ok(None) => HubAuth::Anonymous,
        Err(why) => HubAuth::Invalid(why),
    }
}

fn hub<'a>(ctx: &'a Context<'_>) -> Result<&'a Hub, HubApiError> {
    ctx.data::<Hub>()
        .map_err(|_| HubApiError::internal("schema has no hub"))
}

fn admin<'a>(ctx: &'a Context<'_>) -> Result<&'a Claims, HubApiError> {
    match ctx.data::<HubAuth>() {
        Ok(HubAuth::Admin(c)) => Ok(c),
        Ok(HubAuth::Invalid(why)) => Err(HubApiError::Unauthenticated(why.clone())),
        _ => Err(HubApiError::Unauthenticated(
            "log in first: send Authorization: Bearer <token>".into(),
        )),
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn uuid(field: &str, id: &ID) -> Result<Uuid, HubApiError> {
    Uuid::parse_str(id.trim())
        .map_err(|_| HubApiError::BadInput(format!("{field}: {:?} is not a valid id", id.as_str())))
}

fn range(from: &str, to: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), HubApiError> {
    let (from, to) = (parse_instant("from", from)?, parse_instant("to", to)?);
    if to <= from || to - from > chrono::Duration::days(MAX_RANGE_DAYS) {
        return Err(HubApiError::BadInput(format!(
            "`to` must be after `from`, at most {MAX_RANGE_DAYS} days later"
        )));
    }
    Ok((from, to))
}

fn limit(n: Option<i32>) -> Result<i64, HubApiError> {
    match n.unwrap_or(50) {
        n @ 1..=500 => Ok(i64::from(n)),
        _ => Err(HubApiError::BadInput(
            "limit must be between 1 and 500".into(),
        )),
    }
}

/// A clinic site with its nodes and open conflicts.
#[derive(SimpleObject)]
pub struct Site {
    code: String,
    name: String,
    nodes: Vec<NodeSync>,
    /// Field conflicts in the site's records plus unresolved cross-site collisions.
    open_conflicts: i64,
}

/// A node's sync state as the hub sees it.
#[derive(SimpleObject)]
pub struct NodeSync {
    id: ID,
    revoked: bool,
    last_sync: Option<String>,
    /// The node's change-log position the hub has committed.
    upload_acked: i64,
    /// Hub log entries past what the node has applied.
    lag: i64,
    /// Changes from this node the hub refused to store (see `refusals`): another
    /// site's records, damaged or mislabelled changes.
    refused_changes: i64,
}

/// An uploaded change the hub refused to store, and why.
#[derive(SimpleObject)]
pub struct Refusal {
    node_id: ID,
    site: String,
    /// The change's position in the node's change log.
    seq: i64,
    record_id: ID,
    reason: String,
    at: String,
}

/// Any record, as the hub's generic projection holds it: every field's current value.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Record {
    id: ID,
    kind: String,
    /// The site that owns the record.
    site: String,
    /// The document's heads: equal on every replica that holds the same document.
    heads: String,
    fields: Json<serde_json::Value>,
}

#[ComplexObject]
impl Record {
    /// The other sites that hold this record (a patient shared with them, or booked
    /// there from the hub); every site holds doctors and users.
    async fn shared_with(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let id = uuid("id", &self.id)?;
        Ok(hub(ctx)?
            .store()
            .granted_sites(id)
            .await
            .map_err(HubApiError::from)?)
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

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
#[graphql(
    name = "AppointmentStatus",
    remote = "healsync_domain::AppointmentStatus"
)]
pub enum AppointmentStatusGql {
    Booked,
    CheckedIn,
    Completed,
    Cancelled,
    NoShow,
}

/// An appointment at any site.
#[derive(SimpleObject)]
#[graphql(name = "HubAppointment")]
pub struct HubAppointment {
    id: ID,
    site: String,
    patient_id: ID,
    doctor_id: ID,
    scheduled_at: String,
    ends_at: String,
    status: AppointmentStatusGql,
    reason: Option<String>,
}

impl From<&Appointment> for HubAppointment {
    fn from(a: &Appointment) -> Self {
        HubAppointment {
            id: ID(a.id.to_string()),
            site: a.site.clone(),
            patient_id: ID(a.patient_id.to_string()),
            doctor_id: ID(a.doctor_id.to_string()),
            scheduled_at: ts(a.start),
            ends_at: ts(a.end),
            status: a.status.into(),
            reason: a.reason.clone(),
        }
    }
}

#[derive(SimpleObject)]
pub struct TimeSlot {
    start: String,
    end: String,
}

/// A doctor's calendar at one site within a range: free slots and bookings.
#[derive(SimpleObject)]
pub struct SiteAvailability {
    site: String,
    free_slots: Vec<TimeSlot>,
    booked: Vec<HubAppointment>,
}

/// A field edited differently at two places.
#[derive(SimpleObject)]
pub struct Conflict {
    record_id: ID,
    kind: String,
    site: String,
    field: String,
    values: Vec<String>,
    detected_at: String,
}

/// One doctor or one patient booked at two sites at overlapping times.
#[derive(SimpleObject)]
pub struct CrossSiteConflict {
    id: ID,
    /// `DOCTOR` or `PATIENT`: who is double-booked.
    kind: String,
    first_appointment: ID,
    first_site: String,
    second_appointment: ID,
    second_site: String,
    detected_at: String,
    resolved_at: Option<String>,
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
    token: String,
    expires_at: String,
    username: String,
    role: String,
}

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The signed-in admin's user name.
    async fn me(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(admin(ctx)?.username.clone())
    }

    /// Every site with its nodes' sync state and open conflicts.
    async fn sites(&self, ctx: &Context<'_>) -> Result<Vec<Site>> {
        admin(ctx)?;
        let sites = hub(ctx)?.store().sites().await.map_err(HubApiError::from)?;
        Ok(sites
            .into_iter()
            .map(|s| Site {
                code: s.code,
                name: s.name,
                open_conflicts: s.open_conflicts,
                nodes: s
                    .nodes
                    .into_iter()
                    .map(|n| NodeSync {
                        id: ID(n.id.to_string()),
                        revoked: n.revoked,
                        last_sync: n.last_sync.map(ts),
                        upload_acked: i64::try_from(n.upload_acked).unwrap_or(i64::MAX),
                        lag: i64::try_from(n.lag).unwrap_or(i64::MAX),
                        refused_changes: i64::try_from(n.refused).unwrap_or(i64::MAX),
                    })
                    .collect(),
            })
            .collect())
    }

    /// Changes nodes uploaded that the hub refused to store, newest first (of one node,
    /// or of all): a node writing what its site may not is refused, not obeyed.
    async fn refusals(
        &self,
        ctx: &Context<'_>,
        node_id: Option<ID>,
        limit: Option<i32>,
    ) -> Result<Vec<Refusal>> {
        admin(ctx)?;
        let node = node_id.map(|id| uuid("nodeId", &id)).transpose()?;
        let rows = hub(ctx)?
            .store()
            .refusals(node, self::limit(limit)?)
            .await
            .map_err(HubApiError::from)?;
        Ok(rows
            .into_iter()
            .map(|r| Refusal {
                node_id: ID(r.node_id.to_string()),
                site: r.site,
                seq: i64::try_from(r.seq).unwrap_or(i64::MAX),
                record_id: ID(r.doc_id.to_string()),
                reason: r.reason,
                at: ts(r.at),
            })
            .collect())
    }

    /// Patients across sites (or one site), by name, MRN or e-mail.
    async fn patients(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        site: Option<String>,
        limit: Option<i32>,
        offset: Option<i32>,
    ) -> Result<Vec<Record>> {
        list(ctx, "patient", search, site, None, limit, offset).await
    }

    /// One record of any kind by id, except clinical content (medical records), which
    /// is for the patient and the clinicians treating them: it looks missing here.
    async fn record(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Record>> {
        admin(ctx)?;
        let id = uuid("id", &id)?;
        let doc = hub(ctx)?
            .store()
            .document(id)
            .await
            .map_err(HubApiError::from)?;
        Ok(doc
            .map(Record::from)
            .filter(|r| !RecordKind::is_clinical_name(&r.kind)))
    }

    /// Doctors, optionally with one specialization.
    async fn doctors(
        &self,
        ctx: &Context<'_>,
        specialization: Option<String>,
        limit: Option<i32>,
    ) -> Result<Vec<Record>> {
        let wanted = specialization
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .map(|s| ("specializations", s));
        list(ctx, "doctor", None, None, wanted, limit, None).await
    }

    /// Records of any kind (`schedule`, `leave`, `user`, `notification`, ...), across
    /// sites or at one.
    async fn records(
        &self,
        ctx: &Context<'_>,
        kind: String,
        site: Option<String>,
        limit: Option<i32>,
        offset: Option<i32>,
    ) -> Result<Vec<Record>> {
        list(ctx, kind.trim(), None, site, None, limit, offset).await
    }

    /// Appointments at every site (or one) in `[from, to)`.
    async fn appointments(
        &self,
        ctx: &Context<'_>,
        from: String,
        to: String,
        doctor_id: Option<ID>,
        patient_id: Option<ID>,
        site: Option<String>,
    ) -> Result<Vec<HubAppointment>> {
        admin(ctx)?;
        let (from, to) = range(&from, &to)?;
        let doctor = doctor_id
            .as_ref()
            .map(|d| uuid("doctorId", d))
            .transpose()?;
        let patient = patient_id
            .as_ref()
            .map(|p| uuid("patientId", p))
            .transpose()?;
        let found = hub(ctx)?
            .store()
            .appointments(from, to, doctor, patient, site.as_deref())
            .await
            .map_err(HubApiError::from)?;
        Ok(found.iter().map(HubAppointment::from).collect())
    }

    /// Cross-site scheduling: a doctor's free slots and bookings at every site where
    /// they have a schedule, in `[from, to)`. A slot is free only if the doctor is not
    /// booked at any site then.
    async fn doctor_availability(
        &self,
        ctx: &Context<'_>,
        doctor_id: ID,
        from: String,
        to: String,
    ) -> Result<Vec<SiteAvailability>> {
        admin(ctx)?;
        let (from, to) = range(&from, &to)?;
        let doctor = uuid("doctorId", &doctor_id)?;
        let store = hub(ctx)?.store();
        let (schedules, leaves) = store
            .doctor_calendar(doctor)
            .await
            .map_err(HubApiError::from)?;
        let booked = store
            .appointments(from, to, Some(doctor), None, None)
            .await
            .map_err(HubApiError::from)?;
        let holding: Vec<&Appointment> = booked.iter().filter(|a| a.status.holds_time()).collect();
        let mut sites: Vec<String> = schedules.iter().map(|s| s.site.clone()).collect();
        sites.extend(booked.iter().map(|a| a.site.clone()));
        sites.sort();
        sites.dedup();
        Ok(sites
            .into_iter()
            .map(|site| {
                let site_leaves: Vec<_> =
                    leaves.iter().filter(|l| l.site == site).cloned().collect();
                let free_slots = schedules
                    .iter()
                    .filter(|s| s.site == site)
                    .flat_map(|s| s.slots(&site_leaves, from, to))
                    .filter(|slot| {
                        !holding
                            .iter()
                            .any(|a| a.start < slot.end && slot.start < a.end)
                    })
                    .map(|slot| TimeSlot {
                        start: ts(slot.start),
                        end: ts(slot.end),
                    })
                    .collect();
                SiteAvailability {
                    booked: booked
                        .iter()
                        .filter(|a| a.site == site)
                        .map(HubAppointment::from)
                        .collect(),
                    site,
                    free_slots,
                }
            })
            .collect())
    }

    /// Fields edited differently at two places, at every site (or one).
    async fn conflicts(&self, ctx: &Context<'_>, site: Option<String>) -> Result<Vec<Conflict>> {
        admin(ctx)?;
        let rows = hub(ctx)?
            .store()
            .field_conflicts(site.as_deref())
            .await
            .map_err(HubApiError::from)?;
        Ok(rows
            .into_iter()
            .map(|c| Conflict {
                record_id: ID(c.doc_id.to_string()),
                kind: c.kind,
                site: c.site,
                field: c.field,
                values: c.values,
                detected_at: ts(c.detected_at),
            })
            .collect())
    }

    /// Doctors or patients booked at two sites at overlapping times.
    async fn cross_site_conflicts(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = true)] open_only: bool,
    ) -> Result<Vec<CrossSiteConflict>> {
        admin(ctx)?;
        let rows = hub(ctx)?
            .store()
            .cross_site_conflicts(open_only)
            .await
            .map_err(HubApiError::from)?;
        Ok(rows.into_iter().map(CrossSiteConflict::from).collect())
    }
}

#[allow(clippy::too_many_arguments)]
async fn list(
    ctx: &Context<'_>,
    kind: &str,
    search: Option<String>,
    site: Option<String>,
    element: Option<(&str, String)>,
    limit: Option<i32>,
    offset: Option<i32>,
) -> Result<Vec<Record>> {
    admin(ctx)?;
    if RecordKind::is_clinical_name(kind) {
        return Err(HubApiError::Forbidden(format!(
            "{kind} records are clinical content, for the patient and the clinicians treating them"
        ))
        .into());
    }
    let filter = DocumentFilter {
        kind: kind.to_string(),
        site: site.map(|s| s.trim().to_ascii_uppercase()),
        search: search.filter(|s| !s.trim().is_empty()),
        element: element.map(|(field, value)| (field.to_string(), value)),
        limit: self::limit(limit)?,
        offset: i64::from(offset.unwrap_or(0).max(0)),
    };
    let rows = hub(ctx)?
        .store()
        .documents(&filter)
        .await
        .map_err(HubApiError::from)?;
    Ok(rows.into_iter().map(Record::from).collect())
}

/// A booking made at the hub into one site's schedule.
#[derive(InputObject)]
pub struct HubAppointmentInput {
    /// The site whose schedule holds the slot; the appointment belongs to that site.
    site: String,
    patient_id: ID,
    doctor_id: ID,
    /// A free slot's `start`.
    scheduled_at: String,
    reason: Option<String>,
    notes: Option<String>,
}

pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Exchanges a user name and password for a session token (ADMIN accounts only).
    async fn login(
        &self,
        ctx: &Context<'_>,
        username: String,
        password: String,
    ) -> Result<AuthPayload> {
        let hub = hub(ctx)?;
        let peer = ctx.data_opt::<healsync_auth::Peer>().copied();
        let admitted = hub
            .inner
            .login
            .admit(&username, peer)
            .map_err(HubApiError::from)?;
        let candidates = hub
            .store()
            .hub_accounts_named(admitted.username())
            .await
            .map_err(HubApiError::from)?;
        // Only accounts made at the hub for the hub log in here: an account made at a
        // clinic (its first admin included) or by the hub for a clinic is that
        // clinic's, whatever its role.
        let user = hub
            .inner
            .login
            .verify(admitted, &password, candidates, |u| u.role == Role::Admin)
            .await
            .map_err(HubApiError::from)?;
        let (token, claims) = hub
            .keys()
            .issue(&user, Utc::now().timestamp())
            .map_err(HubApiError::internal)?;
        Ok(AuthPayload {
            token,
            expires_at: DateTime::from_timestamp(claims.exp, 0)
                .map(ts)
                .unwrap_or_default(),
            username: user.username,
            role: user.role.as_str().into(),
        })
    }

    /// Settles a conflicting field with one of its values, or with a new text for a
    /// text field. The change reaches every site holding the record by sync.
    async fn resolve_conflict(
        &self,
        ctx: &Context<'_>,
        record_id: ID,
        field: String,
        value: String,
    ) -> Result<bool> {
        admin(ctx)?;
        let id = uuid("recordId", &record_id)?;
        let value = healsync_records::normalize_edit(&field, &value).map_err(HubApiError::from)?;
        let hub = hub(ctx)?;
        match hub.store().resolve_conflict(id, &field, &value).await {
            Ok(Some(_)) => Ok(true),
            Ok(None) => Err(HubApiError::NotFound(
                "no such record, or that field has no conflict to settle with this value".into(),
            )
            .into()),
            Err(healsync_hub_store::HubStoreError::Record(e)) => Err(HubApiError::BadInput(
                format!("that value does not fit the record: {e}"),
            )
            .into()),
            Err(e) => Err(HubApiError::from(e).into()),
        }
    }

    /// Makes a patient registered at another site available at `site`: its nodes
    /// receive the patient with its whole history by their next sync, and may then edit
    /// it. True when the site did not hold the patient before. (Booking the patient
    /// into the site's schedule from the hub does this by itself.)
    async fn share_patient(&self, ctx: &Context<'_>, patient_id: ID, site: String) -> Result<bool> {
        admin(ctx)?;
        let hub = hub(ctx)?;
        let id = uuid("patientId", &patient_id)?;
        let site = site.trim().to_ascii_uppercase();
        let store = hub.store();
        match store.document(id).await.map_err(HubApiError::from)? {
            Some(d) if d.kind == "patient" => {}
            _ => return Err(HubApiError::NotFound("no such patient".into()).into()),
        }
        Ok(store
            .share(id, &site, GrantReason::Request)
            .await
            .map_err(HubApiError::from)?)
    }

    /// Books into a site's schedule from the hub. The slot must be one of the doctor's
    /// slots at that site, and the doctor and patient free at every site. The
    /// appointment belongs to the site and reaches its node by sync.
    async fn book_appointment(
        &self,
        ctx: &Context<'_>,
        input: HubAppointmentInput,
    ) -> Result<HubAppointment> {
        admin(ctx)?;
        let hub = hub(ctx)?;
        let site = input.site.trim().to_ascii_uppercase();
        let doctor = uuid("doctorId", &input.doctor_id)?;
        let patient = uuid("patientId", &input.patient_id)?;
        let start = parse_instant("scheduledAt", &input.scheduled_at).map_err(HubApiError::from)?;
        let store = hub.store();
        match store.document(patient).await.map_err(HubApiError::from)? {
            Some(d) if d.kind == "patient" => {}
            _ => return Err(HubApiError::NotFound("no such patient".into()).into()),
        }
        let (schedules, leaves) = store
            .doctor_calendar(doctor)
            .await
            .map_err(HubApiError::from)?;
        let Some(schedule) = schedules.iter().find(|s| s.site == site) else {
            return Err(HubApiError::BadInput(format!(
                "the doctor has no schedule at site {site}"
            ))
            .into());
        };
        let site_leaves: Vec<_> = leaves.into_iter().filter(|l| l.site == site).collect();
        let slot = schedule
            .slot_at(&site_leaves, start)
            .map_err(HubApiError::from)?;
        if slot.start <= Utc::now() {
            return Err(HubApiError::BadInput("that slot has already begun".into()).into());
        }
        let clean = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let now = Utc::now();
        let appt = Appointment {
            id: Uuid::now_v7().into(),
            patient_id: patient.into(),
            doctor_id: doctor.into(),
            site,
            start: slot.start,
            end: slot.end,
            status: AppointmentStatus::Booked,
            reason: clean(input.reason),
            notes: clean(input.notes),
            created_at: now,
            updated_at: now,
        };
        store.book(&appt).await.map_err(HubApiError::from)?;
        Ok(HubAppointment::from(&appt))
    }
}

/// What a conflict subscription reports.
#[derive(SimpleObject, Clone)]
pub struct ConflictRaised {
    /// `FIELD` for a field conflict, `DOCTOR` or `PATIENT` for a cross-site collision.
    kind: String,
    /// The record with the field conflict, or the first of the two appointments.
    record_id: ID,
    site: String,
}

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Records changed at the hub (arriving from nodes or written here), optionally of
    /// one kind or one site.
    async fn record_changed(
        &self,
        ctx: &Context<'_>,
        kind: Option<String>,
        site: Option<String>,
    ) -> Result<impl Stream<Item = Record>> {
        admin(ctx)?;
        let rx = hub(ctx)?.subscribe();
        Ok(events(rx, move |e| match e {
            HubEvent::Document(d)
                if !RecordKind::is_clinical_name(&d.kind)
                    && kind.as_deref().is_none_or(|k| k == d.kind)
                    && site.as_deref().is_none_or(|s| s == d.site) =>
            {
                Some(Record {
                    id: ID(d.doc_id.to_string()),
                    kind: d.kind,
                    site: d.site,
                    heads: d.heads,
                    fields: Json(d.record),
                })
            }
            _ => None,
        }))
    }

    /// New conflicts: fields edited differently at two places, and cross-site
    /// collisions.
    async fn conflict_raised(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = ConflictRaised>> {
        admin(ctx)?;
        let rx = hub(ctx)?.subscribe();
        Ok(events(rx, |e| match e {
            HubEvent::Document(d) if d.conflicts > 0 => Some(ConflictRaised {
                kind: "FIELD".into(),
                record_id: ID(d.doc_id.to_string()),
                site: d.site,
            }),
            HubEvent::CrossSite(c) => Some(ConflictRaised {
                kind: c.kind,
                record_id: ID(c.first_appointment.to_string()),
                site: c.first_site,
            }),
            _ => None,
        }))
    }
}

/// The bus as a stream, mapped and filtered; a subscriber that falls behind skips what
/// it missed rather than ending.
fn events<T>(
    rx: tokio::sync::broadcast::Receiver<HubEvent>,
    pick: impl Fn(HubEvent) -> Option<T> + Send + 'static,
) -> impl Stream<Item = T> {
    futures_util::stream::unfold((rx, pick), |(mut rx, pick)| async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if let Some(item) = pick(e) {
                        return Some((item, (rx, pick)));
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}
