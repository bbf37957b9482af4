//! Mutations. Writes at the hub name the site they write to (an admin limited to sites
//! writes only to those) and decide by the same domain rules as a clinic's node: the
//! booking rule and the appointment lifecycle run inside the store's transaction.

use async_graphql::{Context, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use healsync_domain::Address;
use healsync_domain::booking::BookingRequest;
use healsync_domain::patient::{parse_date_of_birth, parse_email, parse_name, parse_phone};
use healsync_hub_store::{GrantReason, HubStoreError, NewPatient, Typed};
use healsync_records::AnyRecord;

use super::query::visible_patient;
use super::types::*;
use super::{admin, hub, instant, ts, uuid};
use crate::HubApiError;

/// A booking made at the hub into one site's schedule.
#[derive(InputObject)]
pub struct HubAppointmentInput {
    /// The site whose schedule holds the slot; the appointment belongs to that site.
    pub site: String,
    pub patient_id: ID,
    pub doctor_id: ID,
    /// A free slot's `start` (see `Doctor.availableSlots`).
    pub scheduled_at: String,
    pub reason: Option<String>,
    pub notes: Option<String>,
}

/// A patient registered at the hub to a site.
#[derive(InputObject)]
pub struct HubPatientInput {
    /// The site the patient is registered to; its nodes receive the patient by sync.
    pub site: String,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
    pub sex: Option<GqlSex>,
}

#[derive(Default)]
pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Ends the session asking: its token is refused from now on, and its WebSockets
    /// close.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        let c = super::central(ctx)?;
        let claims = c.claims();
        let key = healsync_auth::gate::session_key(claims);
        let hub = hub(ctx)?;
        hub.store()
            .end_session(&key, claims.sub.0, claims.exp, Utc::now())
            .await
            .map_err(HubApiError::from)?;
        hub.accounts().end_sessions([key]);
        Ok(true)
    }

    /// Exchanges a user name and password for a session token (central ADMIN accounts
    /// only).
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
            .verify(admitted, &password, candidates, |u| u.role.is_central())
            .await
            .map_err(HubApiError::from)?;
        let sites = hub
            .store()
            .admin_sites(user.id.0)
            .await
            .map_err(HubApiError::from)?;
        hub.refresh_accounts().await?;
        let opened = Utc::now().timestamp_millis().max(
            user.credentials_changed_at
                .map_or(i64::MIN, |t| t.timestamp_millis()),
        );
        let (token, claims) = hub
            .keys()
            .issue_for_sites(&user, sites, opened)
            .map_err(HubApiError::internal)?;
        Ok(AuthPayload {
            token,
            expires_at: DateTime::from_timestamp(claims.exp, 0)
                .map(ts)
                .unwrap_or_default(),
            username: user.username,
            role: user.role.as_str().into(),
            sites: claims.sites,
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
        let a = admin(ctx)?;
        let id = uuid("recordId", &record_id)?;
        let value = healsync_records::normalize_edit(&field, &value).map_err(HubApiError::from)?;
        let store = hub(ctx)?.store();
        let missing = || {
            HubApiError::NotFound(
                "no such record, or that field has no conflict to settle with this value".into(),
            )
        };
        match store.document(id).await.map_err(HubApiError::from)? {
            Some(d) if a.sees_site(&d.site) => {}
            _ => return Err(missing().into()),
        }
        match store.resolve_conflict(id, &field, &value).await {
            Ok(Some(_)) => Ok(true),
            Ok(None) => Err(missing().into()),
            Err(HubStoreError::Record(e)) => Err(HubApiError::BadInput(format!(
                "that value does not fit the record: {e}"
            ))
            .into()),
            Err(e) => Err(HubApiError::from(e).into()),
        }
    }

    /// Makes a patient registered at another site available at `site`: its nodes
    /// receive the patient with its whole history by their next sync, and may then edit
    /// it. True when the site did not hold the patient before. (Booking the patient
    /// into the site's schedule from the hub does this by itself.)
    async fn share_patient(&self, ctx: &Context<'_>, patient_id: ID, site: String) -> Result<bool> {
        let a = admin(ctx)?;
        let site = a.site(&site)?;
        let id = uuid("patientId", &patient_id)?;
        visible_patient(ctx, a, id).await?;
        let store = hub(ctx)?.store();
        Ok(store
            .share(id, &site, GrantReason::Request)
            .await
            .map_err(HubApiError::from)?)
    }

    /// Registers a patient to a site (the seed's `createPatient`, naming the site). The
    /// hub mints the medical record number from a range of the site's numbers that no
    /// node uses.
    async fn create_patient(
        &self,
        ctx: &Context<'_>,
        input: HubPatientInput,
    ) -> Result<PatientObj> {
        let a = admin(ctx)?;
        let site = a.site(&input.site)?;
        let today = Utc::now().date_naive();
        let new = NewPatient {
            site,
            name: parse_name(&input.name).map_err(HubApiError::from)?,
            email: parse_email(&input.email).map_err(HubApiError::from)?,
            phone: input
                .phone
                .as_deref()
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| parse_phone("phone", p))
                .transpose()
                .map_err(HubApiError::from)?,
            date_of_birth: input
                .date_of_birth
                .as_deref()
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(|d| parse_date_of_birth(d, today))
                .transpose()
                .map_err(HubApiError::from)?,
            sex: input.sex.map(Into::into),
            address: Address::default(),
        };
        let patient = hub(ctx)?
            .store()
            .create_patient(new)
            .await
            .map_err(HubApiError::from)?;
        Ok(PatientObj(patient))
    }

    /// Books into a site's schedule from the hub, by the same rule as a clinic's node:
    /// the slot must be one of the doctor's free slots at that site (past ones
    /// too: visits entered afterwards), doctor and patient active and free at every site. The appointment
    /// belongs to the site and reaches its nodes by sync.
    async fn book_appointment(
        &self,
        ctx: &Context<'_>,
        input: HubAppointmentInput,
    ) -> Result<AppointmentObj> {
        let a = admin(ctx)?;
        let site = a.site(&input.site)?;
        let patient = uuid("patientId", &input.patient_id)?;
        let request = BookingRequest {
            patient_id: patient.into(),
            doctor_id: uuid("doctorId", &input.doctor_id)?.into(),
            site,
            start: instant("scheduledAt", &input.scheduled_at)?,
            reason: input.reason,
            notes: input.notes,
        };
        // The patient must be one this admin sees (the booking then shares it with the
        // site).
        visible_patient(ctx, a, patient).await?;
        let store = hub(ctx)?.store();
        let (appt, _) = store.book(request).await.map_err(HubApiError::from)?;
        Ok(AppointmentObj(appt))
    }

    /// Moves an appointment along its lifecycle, by the same rule as a clinic's node:
    /// BOOKED → CHECKED_IN → COMPLETED, or BOOKED → CANCELLED / NO_SHOW, or
    /// CHECKED_IN → CANCELLED; asking for the current status changes nothing. A
    /// cancellation tells the patient and the doctor.
    async fn update_appointment_status(
        &self,
        ctx: &Context<'_>,
        id: ID,
        status: GqlStatus,
    ) -> Result<AppointmentObj> {
        let a = admin(ctx)?;
        let id = uuid("id", &id)?;
        let store = hub(ctx)?.store();
        match store
            .typed_by_ids(&[id])
            .await
            .map_err(HubApiError::from)?
            .pop()
        {
            Some(Typed {
                record: AnyRecord::Appointment(x),
                ..
            }) if a.sees_site(&x.site) => {}
            _ => return Err(HubApiError::NotFound("no such appointment".into()).into()),
        }
        store
            .set_appointment_status(id, status.into())
            .await
            .map_err(HubApiError::from)?
            .map(AppointmentObj)
            .ok_or_else(|| HubApiError::NotFound("no such appointment".into()).into())
    }
}
