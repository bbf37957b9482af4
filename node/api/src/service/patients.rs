//! Registering and updating patients.

use chrono::NaiveDate;
use healsync_domain::patient_request::parse_mrn;
use healsync_domain::{
    Address, DomainError, EmergencyContact, Patient, PatientId, PatientRequest, RequestStatus,
    Role, Sex,
};
use healsync_store::queries;

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
    let username = session.username.clone();
    node.write(session.acting("create"), move |tx| {
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
        super::medical_records::record_intake_allergies(tx, &patient, &username)?;
        Ok(patient)
    })
    .await
}

/// Asks the hub for a patient registered at another clinic, by the medical record
/// number on the patient's card. The request is a record: made offline it waits for the
/// link; the hub answers by editing it, and shares the patient with this clinic, whose
/// node then receives the patient with its whole history. Asking again while a request
/// for the same number is pending returns that request.
pub async fn request_from_hub(
    node: &Node,
    session: &Session,
    mrn: &str,
    date_of_birth: &str,
) -> Result<PatientRequest, ApiError> {
    session.require(REGISTRARS)?;
    let mrn = parse_mrn(mrn)?;
    let date_of_birth =
        healsync_domain::patient::parse_date_of_birth(date_of_birth, node.now().date_naive())?;
    let requested_by = session.username.clone();
    node.write(session.acting("request_from_hub"), move |tx| {
        if queries::patient_by_mrn(tx.conn(), &mrn)?.is_some() {
            return Err(ApiError::Conflict(format!(
                "patient {mrn} is already at this clinic"
            )));
        }
        if let Some(pending) = queries::pending_request(tx.conn(), &mrn)? {
            return Ok(pending);
        }
        let now = tx.now();
        let request = PatientRequest {
            id: new_id(),
            mrn,
            date_of_birth: Some(date_of_birth),
            requested_by: Some(requested_by),
            status: RequestStatus::Pending,
            patient_id: None,
            answer: None,
            created_at: now,
            updated_at: now,
        };
        tx.put(&request)?;
        Ok(request)
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
    let username = session.username.clone();
    node.write(session.acting("update"), move |tx| {
        let mut patient = load_patient(tx, id)?;
        let before = patient.clone();
        edit(&mut patient)?;
        if patient != before {
            patient.updated_at = tx.now();
            tx.put(&patient)?;
            if patient.allergies != before.allergies {
                super::medical_records::record_intake_allergies(tx, &patient, &username)?;
            }
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
