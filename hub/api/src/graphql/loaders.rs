//! Batch loaders: `Appointment.patient`, `Appointment.doctor` and `Patient.appointments`
//! over a list resolve with one query per field, not one per row. One set per request
//! (or per WebSocket connection), made for the admin's sites; they batch but do not
//! cache, so a long-lived subscription never serves stale rows.

use std::collections::HashMap;

use async_graphql::Context;
use healsync_domain::{Appointment, Doctor, DoctorId, Patient, PatientId};
use healsync_graphql_batch::{Batcher, Loader};
use healsync_records::AnyRecord;
use uuid::Uuid;

use crate::{Hub, HubApiError};

/// The most appointments `Patient.appointments` reads per patient.
const PER_PATIENT: i64 = 500;

pub struct StoreLoader {
    hub: Hub,
    /// The admin's sites; `None`: every site.
    sites: Option<Vec<String>>,
}

pub type Loaders = Batcher<StoreLoader>;

/// The loaders of one request by an admin who sees `sites` (`None`: every site).
pub fn new_loaders(hub: &Hub, sites: Option<Vec<String>>) -> Loaders {
    Batcher::new(StoreLoader {
        hub: hub.clone(),
        sites,
    })
}

pub fn loader<'a>(ctx: &'a Context<'_>) -> Result<&'a Loaders, HubApiError> {
    ctx.data::<Loaders>()
        .map_err(|_| HubApiError::internal("request has no loaders"))
}

/// The appointments of one patient (at the admin's sites), oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PatientAppointments(pub Uuid);

impl StoreLoader {
    async fn typed(&self, ids: Vec<Uuid>) -> Result<Vec<AnyRecord>, HubApiError> {
        Ok(self
            .hub
            .store()
            .typed_by_ids(&ids)
            .await?
            .into_iter()
            .map(|t| t.record)
            .collect())
    }
}

impl Loader<PatientId> for StoreLoader {
    type Value = Patient;
    type Error = HubApiError;

    async fn load(&self, keys: &[PatientId]) -> Result<HashMap<PatientId, Patient>, HubApiError> {
        let records = self.typed(keys.iter().map(|k| k.0).collect()).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                AnyRecord::Patient(p) => Some((p.id, p)),
                _ => None,
            })
            .collect())
    }
}

impl Loader<DoctorId> for StoreLoader {
    type Value = Doctor;
    type Error = HubApiError;

    async fn load(&self, keys: &[DoctorId]) -> Result<HashMap<DoctorId, Doctor>, HubApiError> {
        let records = self.typed(keys.iter().map(|k| k.0).collect()).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                AnyRecord::Doctor(d) => Some((d.id, d)),
                _ => None,
            })
            .collect())
    }
}

impl Loader<PatientAppointments> for StoreLoader {
    type Value = Vec<Appointment>;
    type Error = HubApiError;

    async fn load(
        &self,
        keys: &[PatientAppointments],
    ) -> Result<HashMap<PatientAppointments, Vec<Appointment>>, HubApiError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let found = self
            .hub
            .store()
            .appointments_of_patients(&ids, self.sites.as_deref(), PER_PATIENT)
            .await?;
        let mut out: HashMap<PatientAppointments, Vec<Appointment>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for a in found {
            out.entry(PatientAppointments(a.patient_id.0))
                .or_default()
                .push(a);
        }
        Ok(out)
    }
}
