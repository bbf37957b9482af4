//! Queries. Every one needs a session; lists are scoped to what the role may see
//! before they reach the database, and filtered again on the way out.

use async_graphql::{Context, ID, Object, Result};
use chrono::{Duration, NaiveDate};
use healsync_domain::{AppointmentId, DoctorId, PatientId, Role};
use healsync_store::queries::{self, AppointmentFilter, DoctorFilter, PatientFilter};

use super::clinical::{MedicalRecordObj, may_read};
use super::inputs::parse_id;
use super::read_audit;
use super::types::*;
use super::{node, page, parse_instant, session};
use crate::ApiError;
use crate::service::notifications::audience_of;

#[derive(Default)]
pub struct CoreQuery;

#[Object]
impl CoreQuery {
    /// The logged-in user.
    async fn me(&self, ctx: &Context<'_>) -> Result<UserObj> {
        Ok(session(ctx)?.into())
    }

    /// This node's site and identity.
    async fn node(&self, ctx: &Context<'_>) -> Result<NodeInfo> {
        session(ctx)?;
        let id = node(ctx)?.store().identity();
        Ok(NodeInfo {
            site: id.site.to_string(),
            node_id: ID(id.node_id.to_string()),
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
    }

    /// The node's sync with the hub, for the staff's banner (staff only; a PATIENT is
    /// refused): whether the last round reached the hub, when one last completed, and
    /// what waits to go, is held back or was refused.
    async fn sync_status(&self, ctx: &Context<'_>) -> Result<SyncStatusObj> {
        session(ctx)?.require(&[Role::Admin, Role::Receptionist, Role::Doctor])?;
        let n = node(ctx)?;
        let store = n.store().clone();
        let status = tokio::task::spawn_blocking(move || store.status())
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)?;
        Ok(SyncStatusObj::new(status, n.last_sync_round()))
    }

    /// Patients the session may see, by name. `search` matches words of the name, the
    /// MRN, the e-mail or the phone digits by prefix.
    async fn patients(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] limit: i32,
        #[graphql(default = 0)] offset: i32,
        search: Option<String>,
        date_of_birth: Option<String>,
        #[graphql(default = false)] include_inactive: bool,
    ) -> Result<Vec<PatientObj>> {
        let s = session(ctx)?.clone();
        let (limit, offset) = page(limit, offset)?;
        if search.as_ref().is_some_and(|q| q.len() > 200) {
            return Err(ApiError::BadInput("search is at most 200 characters".into()).into());
        }
        let date_of_birth = date_of_birth
            .map(|d| {
                NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                    .map_err(|_| ApiError::BadInput(format!("dateOfBirth {d:?} is not YYYY-MM-DD")))
            })
            .transpose()?;
        if s.role == Role::Patient {
            let Some(own) = s.patient_id else {
                return Ok(vec![]);
            };
            let me = node(ctx)?.read(move |c| queries::patient(c, own)).await?;
            return Ok(me
                .into_iter()
                .filter(|_| offset == 0)
                .map(PatientObj)
                .collect());
        }
        let filter = PatientFilter {
            search,
            date_of_birth,
            include_inactive,
            seen_by: if s.role == Role::Doctor {
                Some((
                    s.doctor_id.ok_or_else(ApiError::forbidden)?,
                    node(ctx)?.now(),
                ))
            } else {
                None
            },
            limit,
            offset,
        };
        let list = node(ctx)?
            .read(move |c| queries::patients(c, &filter))
            .await?;
        Ok(list.into_iter().map(PatientObj).collect())
    }

    /// One patient. A PATIENT may read only their own record; a DOCTOR only the records
    /// of patients in their care (`healsync_domain::care`). A refused record looks like
    /// a missing one.
    async fn patient(&self, ctx: &Context<'_>, id: ID) -> Result<PatientObj> {
        let s = session(ctx)?.clone();
        let id: PatientId = parse_id(&id).map_err(ApiError::from)?;
        match s.role {
            Role::Admin | Role::Receptionist => {}
            Role::Patient if s.patient_id == Some(id) => {}
            Role::Doctor => {
                let doctor = s.doctor_id.ok_or_else(|| ApiError::not_found("patient"))?;
                let now = node(ctx)?.now();
                if !node(ctx)?
                    .read(move |c| queries::is_patient_of(c, id, doctor, now))
                    .await?
                    && !super::clinical::by_break_glass(ctx, id).await?
                {
                    read_audit::refused(ctx, "patient", "patient", id);
                    return Err(ApiError::not_found("patient").into());
                }
            }
            Role::Patient | Role::Finance => {
                read_audit::refused(ctx, "patient", "patient", id);
                return Err(ApiError::not_found("patient").into());
            }
        }
        node(ctx)?
            .read(move |c| queries::patient(c, id))
            .await?
            .map(PatientObj)
            .ok_or_else(|| ApiError::not_found("patient").into())
    }

    /// Appointments, oldest first. `date` (`YYYY-MM-DD`, a UTC day) or `from`/`to`
    /// (RFC 3339) bound the start time. A DOCTOR sees their own, a PATIENT theirs.
    #[allow(clippy::too_many_arguments)]
    async fn appointments(
        &self,
        ctx: &Context<'_>,
        date: Option<String>,
        doctor_id: Option<ID>,
        patient_id: Option<ID>,
        from: Option<String>,
        to: Option<String>,
        status: Option<GqlStatus>,
        #[graphql(default = 100)] limit: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> Result<Vec<AppointmentObj>> {
        let s = session(ctx)?.clone();
        let (limit, offset) = page(limit, offset)?;
        let mut filter = AppointmentFilter {
            doctor: doctor_id
                .as_ref()
                .map(parse_id::<DoctorId>)
                .transpose()
                .map_err(ApiError::from)?,
            patient: patient_id
                .as_ref()
                .map(parse_id::<PatientId>)
                .transpose()
                .map_err(ApiError::from)?,
            from: from.map(|f| parse_instant("from", &f)).transpose()?,
            to: to.map(|t| parse_instant("to", &t)).transpose()?,
            status: status.map(Into::into),
            limit,
            offset,
        };
        if let Some(d) = date {
            let day = NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                .map_err(|_| ApiError::BadInput(format!("date {d:?} is not YYYY-MM-DD")))?;
            let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
            filter.from = Some(filter.from.map_or(start, |f| f.max(start)));
            let end = start + Duration::days(1);
            filter.to = Some(filter.to.map_or(end, |t| t.min(end)));
        }
        match s.role {
            Role::Admin | Role::Receptionist => {}
            Role::Doctor => {
                let own = s.doctor_id.ok_or_else(ApiError::forbidden)?;
                if filter.doctor.is_some_and(|d| d != own) {
                    return Err(
                        ApiError::Forbidden("a doctor sees their own appointments".into()).into(),
                    );
                }
                filter.doctor = Some(own);
            }
            Role::Patient => {
                let own = s.patient_id.ok_or_else(ApiError::forbidden)?;
                if filter.patient.is_some_and(|p| p != own) {
                    return Err(ApiError::Forbidden(
                        "a patient sees their own appointments".into(),
                    )
                    .into());
                }
                filter.patient = Some(own);
            }
            Role::Finance => return Err(ApiError::forbidden().into()),
        }
        let list = node(ctx)?
            .read(move |c| queries::appointments(c, &filter))
            .await?;
        Ok(list
            .into_iter()
            .filter(|a| s.sees_appointment(a))
            .map(AppointmentObj)
            .collect())
    }

    async fn appointment(&self, ctx: &Context<'_>, id: ID) -> Result<AppointmentObj> {
        let s = session(ctx)?.clone();
        let id: AppointmentId = parse_id(&id).map_err(ApiError::from)?;
        node(ctx)?
            .read(move |c| queries::appointment(c, id))
            .await?
            .filter(|a| s.sees_appointment(a))
            .map(AppointmentObj)
            .ok_or_else(|| ApiError::not_found("appointment").into())
    }

    /// Doctors by name; `specialization` matches one of theirs exactly (any case).
    async fn doctors(
        &self,
        ctx: &Context<'_>,
        specialization: Option<String>,
        search: Option<String>,
        #[graphql(default = false)] include_inactive: bool,
        #[graphql(default = 100)] limit: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> Result<Vec<DoctorObj>> {
        session(ctx)?;
        let (limit, offset) = page(limit, offset)?;
        if specialization.as_ref().is_some_and(|q| q.len() > 200)
            || search.as_ref().is_some_and(|q| q.len() > 200)
        {
            return Err(ApiError::BadInput("filters are at most 200 characters".into()).into());
        }
        let filter = DoctorFilter {
            specialization,
            search,
            include_inactive,
            limit,
            offset,
        };
        let list = node(ctx)?
            .read(move |c| queries::doctors(c, &filter))
            .await?;
        Ok(list.into_iter().map(DoctorObj).collect())
    }

    async fn doctor(&self, ctx: &Context<'_>, id: ID) -> Result<DoctorObj> {
        session(ctx)?;
        let id: DoctorId = parse_id(&id).map_err(ApiError::from)?;
        node(ctx)?
            .read(move |c| queries::doctor(c, id))
            .await?
            .map(DoctorObj)
            .ok_or_else(|| ApiError::not_found("doctor").into())
    }

    /// The logged-in patient's or doctor's notifications (an ADMIN's: the site's
    /// administrators'), newest first.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] unread_only: bool,
        #[graphql(default = 50)] limit: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> Result<Vec<NotificationObj>> {
        let s = session(ctx)?;
        let (limit, offset) = page(limit, offset)?;
        let Some(audience) = audience_of(s) else {
            return Ok(vec![]);
        };
        let list = node(ctx)?
            .read(move |c| queries::notifications_for(c, audience, unread_only, limit, offset))
            .await?;
        Ok(list.into_iter().map(NotificationObj).collect())
    }

    /// This clinic's requests to the hub for patients of other clinics, newest first
    /// (ADMIN, RECEPTIONIST).
    async fn patient_requests(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] limit: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> Result<Vec<PatientRequestObj>> {
        session(ctx)?.require(&[Role::Admin, Role::Receptionist])?;
        let (limit, offset) = page(limit, offset)?;
        let list = node(ctx)?
            .read(move |c| queries::patient_requests(c, limit, offset))
            .await?;
        Ok(list.into_iter().map(PatientRequestObj).collect())
    }

    /// Open conflicts (ADMIN and RECEPTIONIST; the front desk does not see conflicts in
    /// clinical fields).
    async fn conflicts(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100)] limit: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> Result<Vec<ConflictObj>> {
        let s = session(ctx)?;
        let (limit, offset) = page(limit, offset)?;
        let list = crate::service::conflicts::list(node(ctx)?, s, limit, offset).await?;
        Ok(list.into_iter().map(Into::into).collect())
    }

    /// The accounts that work at this clinic (ADMIN only).
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100)] limit: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> Result<Vec<UserObj>> {
        session(ctx)?.require(&[Role::Admin])?;
        let (limit, offset) = page(limit, offset)?;
        let node = node(ctx)?;
        // Accounts added beside the server (`users add`) or merged by `sync` are
        // listed at once, not after the gate's next periodic reload.
        node.refresh_accounts().await?;
        let list = node
            .accounts()
            .working_here(limit as usize, offset as usize);
        Ok(list.into_iter().map(Into::into).collect())
    }

    /// One medical record entry: for the patient and the doctors treating them. A
    /// refused entry looks like a missing one.
    async fn medical_record(&self, ctx: &Context<'_>, id: ID) -> Result<MedicalRecordObj> {
        session(ctx)?;
        let id: healsync_domain::MedicalRecordId = parse_id(&id).map_err(ApiError::from)?;
        let row = node(ctx)?
            .read(move |c| queries::medical_record(c, id))
            .await?
            .ok_or_else(|| ApiError::not_found("medical record"))?;
        if !may_read(ctx, row.entry.patient_id).await? {
            return Err(ApiError::not_found("medical record").into());
        }
        Ok(MedicalRecordObj(row))
    }
}
