//! Batch loaders: `Appointment.patient`, `Appointment.doctor`, `Patient.appointments`,
//! `Patient.medicalHistory`, `Doctor.appointments`, `Invoice.payments` and a doctor's care
//! relationships (for clinical fields) over a
//! list resolve with one query per field, not one per row.

use std::collections::HashMap;

use async_graphql::Context;
use chrono::DateTime;
use healsync_domain::{Appointment, Doctor, DoctorId, Patient, PatientId};
use healsync_graphql_batch::{Batcher, Loader};
use healsync_store::queries;

use crate::{ApiError, Node};

/// The loaders of one request (or one WebSocket connection). They batch but do not cache,
/// so a long-lived subscription never serves stale rows.
pub struct StoreLoader {
    node: Node,
}

pub type Loaders = Batcher<StoreLoader>;

pub fn new_loaders(node: &Node) -> Loaders {
    Batcher::new(StoreLoader { node: node.clone() })
}

pub fn loader<'a>(ctx: &'a Context<'_>) -> Result<&'a Loaders, ApiError> {
    ctx.data::<Loaders>()
        .map_err(|_| ApiError::internal("request has no loaders"))
}

impl Loader<PatientId> for StoreLoader {
    type Value = Patient;
    type Error = ApiError;

    async fn load(&self, keys: &[PatientId]) -> Result<HashMap<PatientId, Patient>, ApiError> {
        let keys = keys.to_vec();
        let rows = self
            .node
            .read(move |c| queries::patients_by_ids(c, &keys))
            .await?;
        Ok(rows.into_iter().map(|p| (p.id, p)).collect())
    }
}

impl Loader<DoctorId> for StoreLoader {
    type Value = Doctor;
    type Error = ApiError;

    async fn load(&self, keys: &[DoctorId]) -> Result<HashMap<DoctorId, Doctor>, ApiError> {
        let keys = keys.to_vec();
        let rows = self
            .node
            .read(move |c| queries::doctors_by_ids(c, &keys))
            .await?;
        Ok(rows.into_iter().map(|d| (d.id, d)).collect())
    }
}

/// Whether a doctor treats a patient now (`healsync_domain::care`), for the clinical
/// fields of every patient of a list with one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InCare {
    pub doctor: DoctorId,
    pub patient: PatientId,
}

impl Loader<InCare> for StoreLoader {
    type Value = bool;
    type Error = ApiError;

    async fn load(&self, keys: &[InCare]) -> Result<HashMap<InCare, bool>, ApiError> {
        let mut out: HashMap<InCare, bool> = keys.iter().map(|k| (*k, false)).collect();
        let mut by_doctor: HashMap<DoctorId, Vec<PatientId>> = HashMap::new();
        for k in keys {
            by_doctor.entry(k.doctor).or_default().push(k.patient);
        }
        let now = self.node.now();
        for (doctor, patients) in by_doctor {
            let treated = self
                .node
                .read(move |c| queries::patients_in_care(c, doctor, &patients, now))
                .await?;
            for patient in treated {
                out.insert(InCare { doctor, patient }, true);
            }
        }
        Ok(out)
    }
}

/// All appointments of one patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PatientAppointments(pub PatientId);

impl Loader<PatientAppointments> for StoreLoader {
    type Value = Vec<Appointment>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[PatientAppointments],
    ) -> Result<HashMap<PatientAppointments, Vec<Appointment>>, ApiError> {
        let ids: Vec<PatientId> = keys.iter().map(|k| k.0).collect();
        let rows = self
            .node
            .read(move |c| queries::appointments_of_patients(c, &ids))
            .await?;
        let mut out: HashMap<PatientAppointments, Vec<Appointment>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for a in rows {
            out.entry(PatientAppointments(a.patient_id))
                .or_default()
                .push(a);
        }
        for list in out.values_mut() {
            list.sort_by_key(|a| (a.start, a.id));
        }
        Ok(out)
    }
}

/// One doctor's appointments starting in `[from, to)` (unix milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DoctorAppointments {
    pub doctor: DoctorId,
    pub from: i64,
    pub to: i64,
}

impl Loader<DoctorAppointments> for StoreLoader {
    type Value = Vec<Appointment>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[DoctorAppointments],
    ) -> Result<HashMap<DoctorAppointments, Vec<Appointment>>, ApiError> {
        // One query per distinct range (normally one: every doctor in a list asks for
        // the same range).
        let mut by_range: HashMap<(i64, i64), Vec<DoctorId>> = HashMap::new();
        for k in keys {
            by_range.entry((k.from, k.to)).or_default().push(k.doctor);
        }
        let mut out: HashMap<DoctorAppointments, Vec<Appointment>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for ((from, to), doctors) in by_range {
            let (Some(f), Some(t)) = (
                DateTime::from_timestamp_millis(from),
                DateTime::from_timestamp_millis(to),
            ) else {
                continue;
            };
            let rows = self
                .node
                .read(move |c| queries::appointments_of_doctors(c, &doctors, f, t))
                .await?;
            for a in rows {
                out.entry(DoctorAppointments {
                    doctor: a.doctor_id,
                    from,
                    to,
                })
                .or_default()
                .push(a);
            }
        }
        for list in out.values_mut() {
            list.sort_by_key(|a| (a.start, a.id));
        }
        Ok(out)
    }
}

/// One patient's medical history under a filter (every patient of a list asks with the
/// same filter, so a list costs one query).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct History {
    pub patient: PatientId,
    pub filter: std::sync::Arc<queries::HistoryFilter>,
}

impl Loader<History> for StoreLoader {
    type Value = Vec<queries::EntryRow>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[History],
    ) -> Result<HashMap<History, Vec<queries::EntryRow>>, ApiError> {
        let mut by_filter: HashMap<std::sync::Arc<queries::HistoryFilter>, Vec<PatientId>> =
            HashMap::new();
        for k in keys {
            by_filter
                .entry(k.filter.clone())
                .or_default()
                .push(k.patient);
        }
        let mut out: HashMap<History, Vec<queries::EntryRow>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for (filter, patients) in by_filter {
            let f = filter.clone();
            let rows = self
                .node
                .read(move |c| queries::medical_histories(c, &patients, &f))
                .await?;
            for r in rows {
                out.entry(History {
                    patient: r.entry.patient_id,
                    filter: filter.clone(),
                })
                .or_default()
                .push(r);
            }
        }
        Ok(out)
    }
}

/// The payments (and refunds) of one invoice, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvoicePayments(pub healsync_domain::InvoiceId);

impl Loader<InvoicePayments> for StoreLoader {
    type Value = Vec<healsync_domain::Payment>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[InvoicePayments],
    ) -> Result<HashMap<InvoicePayments, Vec<healsync_domain::Payment>>, ApiError> {
        let ids: Vec<healsync_domain::InvoiceId> = keys.iter().map(|k| k.0).collect();
        let rows = self
            .node
            .read(move |c| queries::billing::payments_of(c, &ids))
            .await?;
        let mut out: HashMap<InvoicePayments, Vec<healsync_domain::Payment>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for p in rows {
            out.entry(InvoicePayments(p.invoice_id))
                .or_default()
                .push(p);
        }
        Ok(out)
    }
}
