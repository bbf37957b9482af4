//! Queries. Every one needs an ADMIN session of the hub, and an admin limited to named
//! sites is answered from those sites only: the filter goes into the store's query,
//! not after it.

use async_graphql::{Context, ID, Object, Result};
use chrono::{Duration, NaiveDate, Utc};
use healsync_domain::Audience;
use healsync_hub_store::{AppointmentQuery, DocumentFilter, Typed};
use healsync_records::{AnyRecord, RecordKind};
use uuid::Uuid;

use super::types::*;
use super::{Central, admin, hub, instant, limit, offset, range, reporter, ts, uuid};
use crate::HubApiError;

#[derive(Default)]
pub struct CoreQuery;

/// Whether the admin sees a patient: registered at one of its sites, or shared with
/// one.
pub(crate) async fn sees_patient(
    ctx: &Context<'_>,
    a: Central<'_>,
    p: &healsync_domain::Patient,
) -> Result<bool, HubApiError> {
    if a.sees_site(&p.site) {
        return Ok(true);
    }
    let granted = hub(ctx)?.store().granted_sites(p.id.0).await?;
    Ok(granted.iter().any(|s| a.sees_site(s)))
}

/// The patient `id` if this admin sees them; NOT_FOUND otherwise (a patient of a site
/// the admin does not see looks missing).
pub(crate) async fn visible_patient(
    ctx: &Context<'_>,
    a: Central<'_>,
    id: Uuid,
) -> Result<healsync_domain::Patient, HubApiError> {
    if let Some(Typed {
        record: AnyRecord::Patient(p),
        ..
    }) = one(ctx, id).await?
        && sees_patient(ctx, a, &p).await?
    {
        return Ok(p);
    }
    Err(HubApiError::NotFound("no such patient".into()))
}

/// One typed record by id.
async fn one(ctx: &Context<'_>, id: Uuid) -> Result<Option<Typed>, HubApiError> {
    Ok(hub(ctx)?
        .store()
        .typed_by_ids(&[id])
        .await?
        .into_iter()
        .next())
}

#[Object]
impl CoreQuery {
    /// The signed-in account's user name (ADMIN or FINANCE).
    async fn me(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(reporter(ctx)?.username().to_string())
    }

    /// Every site (this account sees) with its nodes' sync state and open conflicts
    /// (ADMIN or FINANCE: no patient data).
    async fn sites(&self, ctx: &Context<'_>) -> Result<Vec<Site>> {
        let a = reporter(ctx)?;
        let sites = hub(ctx)?.store().sites().await.map_err(HubApiError::from)?;
        Ok(sites
            .into_iter()
            .filter(|s| a.sees_site(&s.code))
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
        #[graphql(default = 50)] limit: i32,
    ) -> Result<Vec<Refusal>> {
        let a = admin(ctx)?;
        let node = node_id.map(|id| uuid("nodeId", &id)).transpose()?;
        let rows = hub(ctx)?
            .store()
            .refusals(node, self::limit(limit, 500)?)
            .await
            .map_err(HubApiError::from)?;
        Ok(rows
            .into_iter()
            .filter(|r| a.sees_site(&r.site))
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

    /// Patients across the sites this admin sees (or at one), newest first. `search`
    /// matches, as on the node, words of the name, the MRN, the e-mail or the phone
    /// digits by prefix (every word of the search must match).
    async fn patients(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] limit: i32,
        #[graphql(default = 0)] offset: i32,
        search: Option<String>,
        site: Option<String>,
    ) -> Result<Vec<PatientObj>> {
        let a = admin(ctx)?;
        if search.as_ref().is_some_and(|q| q.len() > 200) {
            return Err(HubApiError::BadInput("search is at most 200 characters".into()).into());
        }
        let filter = DocumentFilter {
            kind: "patient".into(),
            site: a.site_filter(site)?,
            search: search.filter(|s| !s.trim().is_empty()),
            element: None,
            limit: self::limit(limit, 500)?,
            offset: self::offset(offset)?,
            visible_to: a.sites().map(<[String]>::to_vec),
        };
        let rows = hub(ctx)?
            .store()
            .typed(&filter)
            .await
            .map_err(HubApiError::from)?;
        Ok(rows
            .into_iter()
            .filter_map(|t| match t.record {
                AnyRecord::Patient(p) => Some(PatientObj(p)),
                _ => None,
            })
            .collect())
    }

    /// One patient, if this admin sees them (NOT_FOUND otherwise).
    async fn patient(&self, ctx: &Context<'_>, id: ID) -> Result<PatientObj> {
        let a = admin(ctx)?;
        Ok(PatientObj(visible_patient(ctx, a, uuid("id", &id)?).await?))
    }

    /// Doctors (every site holds every doctor), optionally with one specialization.
    async fn doctors(
        &self,
        ctx: &Context<'_>,
        specialization: Option<String>,
        #[graphql(default = 50)] limit: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> Result<Vec<DoctorObj>> {
        admin(ctx)?;
        if specialization.as_ref().is_some_and(|s| s.len() > 80) {
            return Err(
                HubApiError::BadInput("specialization is at most 80 characters".into()).into(),
            );
        }
        let filter = DocumentFilter {
            kind: "doctor".into(),
            element: specialization
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .map(|s| ("specializations".to_string(), s)),
            limit: self::limit(limit, 500)?,
            offset: self::offset(offset)?,
            ..DocumentFilter::default()
        };
        let rows = hub(ctx)?
            .store()
            .typed(&filter)
            .await
            .map_err(HubApiError::from)?;
        Ok(rows
            .into_iter()
            .filter_map(|t| match t.record {
                AnyRecord::Doctor(d) => Some(DoctorObj(d)),
                _ => None,
            })
            .collect())
    }

    /// One doctor.
    async fn doctor(&self, ctx: &Context<'_>, id: ID) -> Result<DoctorObj> {
        admin(ctx)?;
        match one(ctx, uuid("id", &id)?).await? {
            Some(Typed {
                record: AnyRecord::Doctor(d),
                ..
            }) => Ok(DoctorObj(d)),
            _ => Err(HubApiError::NotFound("no such doctor".into()).into()),
        }
    }

    /// Appointments at the sites this admin sees (or at one), by start time: on `date`
    /// (`YYYY-MM-DD`, UTC), or in `[from, to)` (default: the next 7 days), of one
    /// doctor or one patient if given.
    #[allow(clippy::too_many_arguments)]
    async fn appointments(
        &self,
        ctx: &Context<'_>,
        date: Option<String>,
        doctor_id: Option<ID>,
        patient_id: Option<ID>,
        from: Option<String>,
        to: Option<String>,
        site: Option<String>,
        status: Option<GqlStatus>,
    ) -> Result<Vec<AppointmentObj>> {
        let a = admin(ctx)?;
        let site = a.site_filter(site)?;
        let (from, to) = match date {
            Some(d) => {
                let day = NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                    .map_err(|_| HubApiError::BadInput(format!("date {d:?} is not YYYY-MM-DD")))?;
                let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
                (start, start + Duration::days(1))
            }
            None => {
                let from = match from {
                    Some(f) => instant("from", &f)?,
                    None => Utc::now(),
                };
                let to = match to {
                    Some(t) => instant("to", &t)?,
                    None => from + Duration::days(7),
                };
                (from, to)
            }
        };
        let (from, to) = range(from, to)?;
        let doctors = doctor_id
            .as_ref()
            .map(|d| uuid("doctorId", d))
            .transpose()?
            .map(|d| vec![d]);
        let patient = patient_id
            .as_ref()
            .map(|p| uuid("patientId", p))
            .transpose()?;
        let found = hub(ctx)?
            .store()
            .appointments(&AppointmentQuery {
                from,
                to,
                doctors: doctors.as_deref(),
                patient,
                site: site.as_deref(),
                sites: a.sites(),
                limit: 500,
            })
            .await
            .map_err(HubApiError::from)?;
        Ok(found
            .into_iter()
            .filter(|x| status.is_none_or(|s| x.status == s.into()))
            .map(AppointmentObj)
            .collect())
    }

    /// The newest notifications of an account (a patient's or a doctor's login, or a
    /// site's administrators), at the sites this admin sees.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        #[graphql(default = 50)] limit: i32,
    ) -> Result<Vec<NotificationObj>> {
        let a = admin(ctx)?;
        let limit = self::limit(limit, 500)?;
        let Some((audience, site)) = audience_of_user(ctx, a, &user_id).await? else {
            return Ok(vec![]);
        };
        let only: Option<Vec<String>> = match (&audience, site) {
            (Audience::Admins, site) => Some(vec![site]),
            _ => a.sites().map(<[String]>::to_vec),
        };
        let rows = hub(ctx)?
            .store()
            .notifications(audience, only.as_deref(), limit)
            .await
            .map_err(HubApiError::from)?;
        Ok(rows
            .into_iter()
            .filter_map(|t| match t.record {
                AnyRecord::Notification(n) => Some(NotificationObj { site: t.site, n }),
                _ => None,
            })
            .collect())
    }

    /// One record of any kind by id, for diagnosis, except clinical content (medical
    /// records), which is for the patient and the clinicians treating them: it looks
    /// missing here, as does a record of a site this admin does not see.
    async fn record(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Record>> {
        let a = admin(ctx)?;
        let id = uuid("id", &id)?;
        let doc = hub(ctx)?
            .store()
            .document(id)
            .await
            .map_err(HubApiError::from)?;
        let Some(doc) = doc.filter(|d| !RecordKind::is_clinical_name(&d.kind)) else {
            return Ok(None);
        };
        let visible = a.sees_site(&doc.site)
            || hub(ctx)?
                .store()
                .granted_sites(id)
                .await
                .map_err(HubApiError::from)?
                .iter()
                .any(|s| a.sees_site(s));
        Ok(visible.then(|| Record::from(doc)))
    }

    /// Records of any kind (`schedule`, `leave`, `user`, `notification`, ...) as the
    /// generic projection holds them, for diagnosis: at the sites this admin sees (or
    /// at one).
    async fn records(
        &self,
        ctx: &Context<'_>,
        kind: String,
        site: Option<String>,
        #[graphql(default = 50)] limit: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> Result<Vec<Record>> {
        let a = admin(ctx)?;
        let kind = kind.trim().to_string();
        if RecordKind::is_clinical_name(&kind) {
            return Err(HubApiError::Forbidden(format!(
                "{kind} records are clinical content, for the patient and the clinicians treating them"
            ))
            .into());
        }
        let filter = DocumentFilter {
            kind,
            site: a.site_filter(site)?,
            limit: self::limit(limit, 500)?,
            offset: self::offset(offset)?,
            visible_to: a.sites().map(<[String]>::to_vec),
            ..DocumentFilter::default()
        };
        let rows = hub(ctx)?
            .store()
            .documents(&filter)
            .await
            .map_err(HubApiError::from)?;
        Ok(rows.into_iter().map(Record::from).collect())
    }

    /// Cross-site scheduling: a doctor's free slots and bookings at every site (this
    /// admin sees) where they have a schedule, in `[from, to)`. A slot is free only if
    /// the doctor is booked at no site then.
    async fn doctor_availability(
        &self,
        ctx: &Context<'_>,
        doctor_id: ID,
        from: String,
        to: String,
    ) -> Result<Vec<SiteAvailability>> {
        let a = admin(ctx)?;
        let (from, to) = range(instant("from", &from)?, instant("to", &to)?)?;
        let doctor = uuid("doctorId", &doctor_id)?;
        Ok(availability(ctx, doctor, from, to)
            .await?
            .into_iter()
            .filter(|s| a.sees_site(&s.site))
            .collect())
    }

    /// Fields edited differently at two places, at every site this admin sees (or one).
    async fn conflicts(&self, ctx: &Context<'_>, site: Option<String>) -> Result<Vec<Conflict>> {
        let a = admin(ctx)?;
        let site = a.site_filter(site)?;
        let rows = hub(ctx)?
            .store()
            .field_conflicts(site.as_deref())
            .await
            .map_err(HubApiError::from)?;
        Ok(rows
            .into_iter()
            .filter(|c| a.sees_site(&c.site))
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

    /// Doctors or patients booked at two sites at overlapping times (where this admin
    /// sees either site).
    async fn cross_site_conflicts(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = true)] open_only: bool,
    ) -> Result<Vec<CrossSiteConflict>> {
        let a = admin(ctx)?;
        let rows = hub(ctx)?
            .store()
            .cross_site_conflicts(open_only)
            .await
            .map_err(HubApiError::from)?;
        Ok(rows
            .into_iter()
            .filter(|c| a.sees_site(&c.first_site) || a.sees_site(&c.second_site))
            .map(CrossSiteConflict::from)
            .collect())
    }
}

/// Whose notifications an account reads, and the account's site: NOT_FOUND for an
/// account of a site this admin does not see; `None` for an account that reads none.
pub(crate) async fn audience_of_user(
    ctx: &Context<'_>,
    a: Central<'_>,
    user_id: &ID,
) -> Result<Option<(Audience, String)>, HubApiError> {
    let id = uuid("userId", user_id)?;
    match one(ctx, id).await? {
        Some(Typed {
            record: AnyRecord::User(u),
            site,
        }) if a.sees_site(&site) => {
            Ok(Audience::of_account(u.role, u.patient_id, u.doctor_id).map(|aud| (aud, site)))
        }
        _ => Err(HubApiError::NotFound("no such user".into())),
    }
}
