//! Registering and updating patients.

use chrono::NaiveDate;
use healsync_domain::{Address, DomainError, EmergencyContact, Patient, PatientId, Role, Sex};

use super::{load_patient, new_id};
use crate::{ApiError, Node, Session};

/// A new patient's details, already parsed.
#[derive(Debug, Clone)]
pub struct NewPatient {
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub sex: Option<Sex>,
    pub address: Address,
    pub emergency_contact: Option<EmergencyContact>,
    pub allergies: Vec<String>,
}

const REGISTRARS: &[Role] = &[Role::Admin, Role::Receptionist];

/// Registers a patient and mints a medical record number `SITE-000123`.
pub async fn create(
    node: &Node,
    session: &Session,
    input: NewPatient,
) -> Result<Patient, ApiError> {
    session.require(REGISTRARS)?;
    node.write(move |tx| {
        let seq = tx.next_counter("mrn")?;
        let now = tx.now();
        let patient = Patient {
            id: new_id(),
            mrn: tx.site().mrn(seq),
            site: tx.site().to_string(),
            name: input.name,
            email: input.email,
            phone: input.phone,
            date_of_birth: input.date_of_birth,
            sex: input.sex,
            address: input.address,
            emergency_contact: input.emergency_contact,
            allergies: input.allergies,
            active: true,
            created_at: now,
            updated_at: now,
        };
        tx.put(&patient)?;
        Ok(patient)
    })
    .await
}

/// Applies `edit` to the current patient record. Registrars may edit any patient; a
/// PATIENT may edit their own contact details (the edit closure is the caller's choice
/// of fields; see the GraphQL layer); a DOCTOR may edit allergies of their patients.
pub async fn update(
    node: &Node,
    session: &Session,
    id: PatientId,
    edit: impl FnOnce(&mut Patient) -> Result<(), DomainError> + Send + 'static,
) -> Result<Patient, ApiError> {
    session.require(REGISTRARS)?;
    node.write(move |tx| {
        let mut patient = load_patient(tx, id)?;
        let before = patient.clone();
        edit(&mut patient)?;
        if patient != before {
            patient.updated_at = tx.now();
            tx.put(&patient)?;
        }
        Ok(patient)
    })
    .await
}

pub async fn set_active(
    node: &Node,
    session: &Session,
    id: PatientId,
    active: bool,
) -> Result<Patient, ApiError> {
    update(node, session, id, move |p| {
        p.active = active;
        Ok(())
    })
    .await
}
