//! Services: each operation checks access, applies the domain rules and writes through
//! the store in one transaction. GraphQL resolvers parse input and call these; so do the
//! demo seeder and the command line.

pub mod appointments;
pub mod billing;
pub mod conflicts;
pub mod doctors;
pub mod insurance;
pub mod medical_records;
pub mod messages;
pub mod notifications;
pub mod patients;
pub mod users;

use healsync_domain::{Appointment, AppointmentId, Doctor, DoctorId, Patient, PatientId};
use healsync_store::WriteTx;
use healsync_store::queries;
use uuid::Uuid;

use crate::ApiError;

/// A fresh record id: UUIDv7, minted offline.
pub fn new_id<T: From<Uuid>>() -> T {
    T::from(Uuid::now_v7())
}

pub(crate) fn load_patient(tx: &WriteTx<'_>, id: PatientId) -> Result<Patient, ApiError> {
    queries::patient(tx.conn(), id)?.ok_or_else(|| ApiError::not_found("patient"))
}

pub(crate) fn load_doctor(tx: &WriteTx<'_>, id: DoctorId) -> Result<Doctor, ApiError> {
    queries::doctor(tx.conn(), id)?.ok_or_else(|| ApiError::not_found("doctor"))
}

pub(crate) fn load_appointment(
    tx: &WriteTx<'_>,
    id: AppointmentId,
) -> Result<Appointment, ApiError> {
    queries::appointment(tx.conn(), id)?.ok_or_else(|| ApiError::not_found("appointment"))
}
