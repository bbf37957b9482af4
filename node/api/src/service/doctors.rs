//! Doctors, their weekly schedules at this site, and their leave.

use chrono::{DateTime, Utc};
use healsync_domain::schedule::check_rules;
use healsync_domain::{Doctor, DoctorId, DomainError, Leave, LeaveId, Role, Schedule, WeeklyRule};
use healsync_store::queries;

use super::{load_doctor, new_id};
use crate::{ApiError, Node, Session};

#[derive(Debug, Clone)]
pub struct NewDoctor {
    pub name: String,
    pub specializations: Vec<String>,
    pub licence_number: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

pub async fn create(node: &Node, session: &Session, input: NewDoctor) -> Result<Doctor, ApiError> {
    session.require(&[Role::Admin])?;
    node.write(session.acting("create"), move |tx| {
        let now = tx.now();
        let doctor = Doctor {
            id: new_id(),
            name: input.name,
            specializations: input.specializations,
            licence_number: input.licence_number,
            email: input.email,
            phone: input.phone,
            active: true,
            created_at: now,
            updated_at: now,
        };
        tx.put(&doctor)?;
        Ok(doctor)
    })
    .await
}

pub async fn update(
    node: &Node,
    session: &Session,
    id: DoctorId,
    edit: impl FnOnce(&mut Doctor) -> Result<(), DomainError> + Send + 'static,
) -> Result<Doctor, ApiError> {
    session.require(&[Role::Admin])?;
    node.write(session.acting("update"), move |tx| {
        let mut doctor = load_doctor(tx, id)?;
        let before = doctor.clone();
        edit(&mut doctor)?;
        if doctor != before {
            doctor.updated_at = tx.now();
            tx.put(&doctor)?;
        }
        Ok(doctor)
    })
    .await
}

/// Sets the doctor's weekly schedule at this site (one schedule per doctor and site;
/// replaced as a whole). Existing appointments are kept even if they fall outside it.
pub async fn set_schedule(
    node: &Node,
    session: &Session,
    doctor_id: DoctorId,
    slot_minutes: u32,
    utc_offset_minutes: i32,
    rules: Vec<WeeklyRule>,
    active: bool,
) -> Result<Schedule, ApiError> {
    session.require(&[Role::Admin])?;
    check_rules(&rules, slot_minutes)?;
    node.write(session.acting("set_schedule"), move |tx| {
        load_doctor(tx, doctor_id)?;
        let site = tx.site().to_string();
        let existing = queries::schedules_of(tx.conn(), doctor_id)?
            .into_iter()
            .find(|s| s.site == site);
        let schedule = Schedule {
            id: existing.map(|s| s.id).unwrap_or_else(new_id),
            doctor_id,
            site,
            slot_minutes,
            utc_offset_minutes,
            rules,
            active,
            updated_at: tx.now(),
        };
        tx.put(&schedule)?;
        Ok(schedule)
    })
    .await
}

pub async fn add_leave(
    node: &Node,
    session: &Session,
    doctor_id: DoctorId,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    reason: Option<String>,
) -> Result<Leave, ApiError> {
    session.require(&[Role::Admin])?;
    if end <= start {
        return Err(DomainError::invalid("end", "leave must end after it starts").into());
    }
    if end - start > chrono::Duration::days(366) {
        return Err(DomainError::invalid("end", "leave longer than a year").into());
    }
    node.write(session.acting("add_leave"), move |tx| {
        load_doctor(tx, doctor_id)?;
        let leave = Leave {
            id: new_id(),
            doctor_id,
            site: tx.site().to_string(),
            start,
            end,
            reason,
            cancelled: false,
        };
        tx.put(&leave)?;
        Ok(leave)
    })
    .await
}

pub async fn cancel_leave(node: &Node, session: &Session, id: LeaveId) -> Result<Leave, ApiError> {
    session.require(&[Role::Admin])?;
    node.write(session.acting("cancel_leave"), move |tx| {
        let mut leave =
            queries::leave(tx.conn(), id)?.ok_or_else(|| ApiError::not_found("leave"))?;
        leave.cancelled = true;
        tx.put(&leave)?;
        Ok(leave)
    })
    .await
}
