//! Mutations: parse input, call a service, return the committed record.

use async_graphql::{Context, ID, Object, Result};
use healsync_domain::doctor::{parse_licence_number, parse_specializations};
use healsync_domain::patient::{parse_email, parse_name, parse_phone};
use healsync_domain::schedule::{parse_slot_minutes, parse_utc_offset};
use healsync_domain::{AppointmentId, DoctorId, DomainError, LeaveId, NotificationId, PatientId};

use super::clinical::{MedicalRecordInput, MedicalRecordObj};
use super::inputs::*;
use super::types::*;
use super::{node, parse_instant, session};
use crate::ApiError;
use crate::service::medical_records::{self, Withdrawal};
use crate::service::{appointments, doctors, notifications, patients, users};

#[derive(Default)]
pub struct CoreMutation;

fn id<T: std::str::FromStr<Err = DomainError>>(v: &ID) -> Result<T, ApiError> {
    parse_id(v).map_err(ApiError::from)
}

fn opt_text(
    field: &'static str,
    v: Option<String>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    healsync_domain::patient::parse_opt_text(field, v.as_deref(), max).map_err(ApiError::from)
}

fn auth_payload(token: String, claims: healsync_auth::Claims) -> AuthPayload {
    let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0)
        .map(ts)
        .unwrap_or_default();
    let session: crate::Session = claims.into();
    AuthPayload {
        token,
        expires_at,
        user: (&session).into(),
    }
}

#[Object]
impl CoreMutation {
    /// Exchanges a user name and password for a session token.
    async fn login(
        &self,
        ctx: &Context<'_>,
        username: String,
        password: String,
    ) -> Result<AuthPayload> {
        if username.len() > 200 || password.len() > 1024 {
            return Err(ApiError::Unauthenticated("invalid user name or password".into()).into());
        }
        let peer = ctx.data_opt::<healsync_auth::Peer>().copied();
        let (token, claims) = users::login(node(ctx)?, &username, &password, peer).await?;
        Ok(auth_payload(token, claims))
    }

    /// Changes the signed-in user's own password, at the clinic, offline too: every
    /// session opened before ends (on every device), and this one is replaced by the
    /// session returned. The change syncs to the hub and the account's other clinics.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<AuthPayload> {
        let s = session(ctx)?;
        if current_password.len() > 1024 {
            return Err(ApiError::Unauthenticated("invalid user name or password".into()).into());
        }
        let (token, claims) =
            users::change_password(node(ctx)?, s, &current_password, &new_password).await?;
        Ok(auth_payload(token, claims))
    }

    async fn create_patient(&self, ctx: &Context<'_>, input: PatientInput) -> Result<PatientObj> {
        let s = session(ctx)?;
        s.may_write(&input.clinical_fields())?;
        let parsed = input.parse().map_err(ApiError::from)?;
        Ok(PatientObj(patients::create(node(ctx)?, s, parsed).await?))
    }

    /// Asks the hub for a patient registered at another clinic, by the medical record
    /// number on the patient's card and the date of birth the patient gives (ADMIN,
    /// RECEPTIONIST). The hub shares the patient only when both match, answers a
    /// clinic a limited number of times a day, and tells the patient. The request goes
    /// with the next sync; the patient follows with its whole history once shared.
    async fn request_patient(
        &self,
        ctx: &Context<'_>,
        mrn: String,
        date_of_birth: String,
    ) -> Result<PatientRequestObj> {
        let s = session(ctx)?;
        Ok(PatientRequestObj(
            patients::request_from_hub(node(ctx)?, s, &mrn, &date_of_birth).await?,
        ))
    }

    /// Changes the given fields of a patient; `null` clears an optional field.
    async fn update_patient(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: PatientUpdateInput,
    ) -> Result<PatientObj> {
        let s = session(ctx)?;
        s.may_write(&input.clinical_fields())?;
        let pid: PatientId = self::id(&id)?;
        let edit = input.parse().map_err(ApiError::from)?;
        Ok(PatientObj(
            patients::update(node(ctx)?, s, pid, edit).await?,
        ))
    }

    /// Marks a patient record inactive (records are never deleted).
    async fn deactivate_patient(&self, ctx: &Context<'_>, id: ID) -> Result<PatientObj> {
        let s = session(ctx)?;
        Ok(PatientObj(
            patients::set_active(node(ctx)?, s, self::id(&id)?, false).await?,
        ))
    }

    async fn reactivate_patient(&self, ctx: &Context<'_>, id: ID) -> Result<PatientObj> {
        let s = session(ctx)?;
        Ok(PatientObj(
            patients::set_active(node(ctx)?, s, self::id(&id)?, true).await?,
        ))
    }

    async fn create_doctor(&self, ctx: &Context<'_>, input: DoctorInput) -> Result<DoctorObj> {
        let s = session(ctx)?;
        let parsed = doctors::NewDoctor {
            name: parse_name(&input.name).map_err(ApiError::from)?,
            specializations: parse_specializations(&input.specializations)
                .map_err(ApiError::from)?,
            licence_number: parse_licence_number(&input.licence_number).map_err(ApiError::from)?,
            email: input
                .email
                .as_deref()
                .map(parse_email)
                .transpose()
                .map_err(ApiError::from)?,
            phone: input
                .phone
                .as_deref()
                .map(|p| parse_phone("phone", p))
                .transpose()
                .map_err(ApiError::from)?,
        };
        Ok(DoctorObj(doctors::create(node(ctx)?, s, parsed).await?))
    }

    async fn update_doctor(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: DoctorUpdateInput,
    ) -> Result<DoctorObj> {
        let s = session(ctx)?;
        let did: DoctorId = self::id(&id)?;
        let name = input
            .name
            .as_deref()
            .map(parse_name)
            .transpose()
            .map_err(ApiError::from)?;
        let specs = input
            .specializations
            .as_deref()
            .map(parse_specializations)
            .transpose()
            .map_err(ApiError::from)?;
        let licence = input
            .licence_number
            .as_deref()
            .map(parse_licence_number)
            .transpose()
            .map_err(ApiError::from)?;
        let email = match input.email {
            async_graphql::MaybeUndefined::Undefined => None,
            async_graphql::MaybeUndefined::Null => Some(None),
            async_graphql::MaybeUndefined::Value(e) => {
                Some(Some(parse_email(&e).map_err(ApiError::from)?))
            }
        };
        let phone = match input.phone {
            async_graphql::MaybeUndefined::Undefined => None,
            async_graphql::MaybeUndefined::Null => Some(None),
            async_graphql::MaybeUndefined::Value(p) => {
                Some(Some(parse_phone("phone", &p).map_err(ApiError::from)?))
            }
        };
        let active = input.active;
        let d = doctors::update(node(ctx)?, s, did, move |d| {
            if let Some(v) = name {
                d.name = v;
            }
            if let Some(v) = specs {
                d.specializations = v;
            }
            if let Some(v) = licence {
                d.licence_number = v;
            }
            if let Some(v) = email {
                d.email = v;
            }
            if let Some(v) = phone {
                d.phone = v;
            }
            if let Some(v) = active {
                d.active = v;
            }
            Ok(())
        })
        .await?;
        Ok(DoctorObj(d))
    }

    /// Sets a doctor's weekly schedule at this site (replacing the previous one).
    async fn set_schedule(&self, ctx: &Context<'_>, input: ScheduleInput) -> Result<ScheduleObj> {
        let s = session(ctx)?;
        let rules = input
            .weekly
            .iter()
            .map(WeeklyRuleInput::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::from)?;
        let slot = parse_slot_minutes(i64::from(input.slot_minutes)).map_err(ApiError::from)?;
        let offset =
            parse_utc_offset(i64::from(input.utc_offset_minutes)).map_err(ApiError::from)?;
        let schedule = doctors::set_schedule(
            node(ctx)?,
            s,
            self::id(&input.doctor_id)?,
            slot,
            offset,
            rules,
            input.active,
        )
        .await?;
        Ok(ScheduleObj(schedule))
    }

    /// Records leave: the doctor's slots in that period are no longer offered.
    async fn add_leave(&self, ctx: &Context<'_>, input: LeaveInput) -> Result<LeaveObj> {
        let s = session(ctx)?;
        let start = parse_instant("start", &input.start)?;
        let end = parse_instant("end", &input.end)?;
        let reason = opt_text("reason", input.reason, 200)?;
        Ok(LeaveObj(
            doctors::add_leave(
                node(ctx)?,
                s,
                self::id(&input.doctor_id)?,
                start,
                end,
                reason,
            )
            .await?,
        ))
    }

    async fn cancel_leave(&self, ctx: &Context<'_>, id: ID) -> Result<LeaveObj> {
        let s = session(ctx)?;
        let lid: LeaveId = self::id(&id)?;
        Ok(LeaveObj(doctors::cancel_leave(node(ctx)?, s, lid).await?))
    }

    /// Books the free slot that starts at `scheduledAt`. A slot already taken, or a
    /// patient already busy then, is `CONFLICT`; a time that is not a slot is
    /// `BAD_USER_INPUT`.
    async fn book_appointment(
        &self,
        ctx: &Context<'_>,
        input: AppointmentInput,
    ) -> Result<AppointmentObj> {
        let s = session(ctx)?;
        let parsed = appointments::NewAppointment {
            patient_id: self::id(&input.patient_id)?,
            doctor_id: self::id(&input.doctor_id)?,
            start: parse_instant("scheduledAt", &input.scheduled_at)?,
            reason: input.reason,
            notes: input.notes,
        };
        Ok(AppointmentObj(
            appointments::book(node(ctx)?, s, parsed).await?,
        ))
    }

    /// Moves an appointment along its lifecycle: BOOKED → CHECKED_IN → COMPLETED, or
    /// BOOKED → CANCELLED / NO_SHOW, or CHECKED_IN → CANCELLED. Anything else is
    /// `BAD_USER_INPUT`; asking for the current status changes nothing.
    async fn update_appointment_status(
        &self,
        ctx: &Context<'_>,
        id: ID,
        status: GqlStatus,
    ) -> Result<AppointmentObj> {
        let s = session(ctx)?;
        let aid: AppointmentId = self::id(&id)?;
        Ok(AppointmentObj(
            appointments::set_status(node(ctx)?, s, aid, status.into()).await?,
        ))
    }

    /// Moves a BOOKED appointment to another free slot of the same doctor.
    async fn reschedule_appointment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        scheduled_at: String,
    ) -> Result<AppointmentObj> {
        let s = session(ctx)?;
        let aid: AppointmentId = self::id(&id)?;
        let start = parse_instant("scheduledAt", &scheduled_at)?;
        Ok(AppointmentObj(
            appointments::reschedule(node(ctx)?, s, aid, start).await?,
        ))
    }

    /// Settles a conflict by choosing one of its values (as listed by `conflicts`).
    async fn resolve_conflict(
        &self,
        ctx: &Context<'_>,
        record_id: ID,
        field: String,
        value: String,
    ) -> Result<bool> {
        let s = session(ctx)?;
        let record = uuid::Uuid::parse_str(record_id.as_str()).map_err(|_| {
            ApiError::BadInput(format!("{:?} is not a record id", record_id.as_str()))
        })?;
        if field.len() > 100 || value.len() > 10_000 {
            return Err(ApiError::BadInput("field or value too long".into()).into());
        }
        crate::service::conflicts::resolve(node(ctx)?, s, record, field, value).await?;
        Ok(true)
    }

    async fn mark_notification_read(&self, ctx: &Context<'_>, id: ID) -> Result<NotificationObj> {
        let s = session(ctx)?;
        let nid: NotificationId = self::id(&id)?;
        Ok(NotificationObj(
            notifications::mark_read(node(ctx)?, s, nid).await?,
        ))
    }

    /// Creates an account (ADMIN only). PATIENT accounts name their patient record,
    /// DOCTOR accounts their doctor record.
    async fn create_user(&self, ctx: &Context<'_>, input: UserInput) -> Result<UserObj> {
        let s = session(ctx)?;
        let new = users::NewUser {
            username: input.username,
            password: input.password,
            role: input.role.into(),
            patient_id: input.patient_id.as_ref().map(self::id).transpose()?,
            doctor_id: input.doctor_id.as_ref().map(self::id).transpose()?,
        };
        Ok(users::create(node(ctx)?, s, new).await?.into())
    }

    /// Adds an entry to a patient's medical record (a DOCTOR treating the patient), or
    /// amends an earlier entry (`amends` and `reason`): the original stays in the
    /// history. Exactly one of the details is given.
    async fn add_medical_record(
        &self,
        ctx: &Context<'_>,
        input: MedicalRecordInput,
    ) -> Result<MedicalRecordObj> {
        let s = session(ctx)?;
        let entry = input.parse()?;
        let written = medical_records::add(node(ctx)?, s, entry).await?;
        Ok(MedicalRecordObj::written(written))
    }

    /// Opens a patient's record outside the doctor's care (an emergency), with the
    /// reason (10 to 500 characters): for `BREAK_GLASS_HOURS` (4) hours the doctor
    /// reads it as a treating doctor would (not writes), each read flagged in the audit
    /// with the reason, and the site's administrators get a notice. DOCTOR only; works
    /// with no hub, and the notice and the audit sync.
    async fn break_glass(
        &self,
        ctx: &Context<'_>,
        patient_id: ID,
        reason: String,
    ) -> Result<super::clinical::BreakGlassObj> {
        let s = session(ctx)?;
        let patient = parse_id(&patient_id)?;
        let until = medical_records::break_glass(node(ctx)?, s, patient, &reason).await?;
        Ok(super::clinical::BreakGlassObj {
            patient_id,
            reason: reason.trim().to_string(),
            expires_at: super::types::ts(until),
        })
    }

    /// Withdraws an entry that was wrong, with the reason: a retraction is a new entry,
    /// and the retracted one stays in the history (no longer current).
    async fn retract_medical_record(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: String,
    ) -> Result<MedicalRecordObj> {
        withdraw(ctx, &id, Withdrawal::Retract, reason).await
    }

    /// Stops an active prescription: an amendment with status STOPPED.
    async fn stop_prescription(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: String,
    ) -> Result<MedicalRecordObj> {
        withdraw(ctx, &id, Withdrawal::StopPrescription, reason).await
    }
}

async fn withdraw(
    ctx: &Context<'_>,
    entry: &ID,
    how: Withdrawal,
    reason: String,
) -> Result<MedicalRecordObj> {
    let s = session(ctx)?;
    let written = medical_records::correct(node(ctx)?, s, id(entry)?, how, reason).await?;
    Ok(MedicalRecordObj::written(written))
}
