//! Subscriptions: filtered views of the node's event stream. They fire after a commit,
//! for local writes and (later) for records merged by sync alike.

use std::sync::Arc;

use async_graphql::{Context, ID, Result, Subscription};
use futures_util::{Stream, StreamExt};
use healsync_domain::{Audience, PatientId, Role, UserId};
use healsync_records::AnyRecord;
use healsync_store::queries;
use tokio::sync::broadcast::error::RecvError;

use super::billing::InvoiceObj;
use super::clinical::MedicalRecordObj;
use super::inputs::parse_id;
use super::types::{AppointmentObj, ConflictObj, NotificationObj, PatientObj};
use super::{node, session};
use crate::service::billing;
use crate::service::notifications::audience_of;
use crate::session::ClinicalReader;
use crate::{ApiError, Node, Session};

pub struct SubscriptionRoot;

fn records(node: &Node) -> impl Stream<Item = Arc<AnyRecord>> + use<> {
    futures_util::stream::unfold(node.events().subscribe(), |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(r) => return Some((r, rx)),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "a subscriber fell behind");
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
}

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Appointments as they change (booked, moved, status). With `patientId`, only that
    /// patient's; always only those the session may see.
    async fn appointment_updated(
        &self,
        ctx: &Context<'_>,
        patient_id: Option<ID>,
    ) -> Result<impl Stream<Item = AppointmentObj> + use<>> {
        let s = session(ctx)?.clone();
        let patient: Option<PatientId> = patient_id
            .as_ref()
            .map(parse_id)
            .transpose()
            .map_err(ApiError::from)?;
        if s.role == Role::Patient && patient.is_some() && patient != s.patient_id {
            return Err(ApiError::forbidden().into());
        }
        Ok(records(node(ctx)?).filter_map(move |r| {
            let out = match r.as_ref() {
                AnyRecord::Appointment(a)
                    if patient.is_none_or(|p| p == a.patient_id) && s.sees_appointment(a) =>
                {
                    Some(AppointmentObj(a.clone()))
                }
                _ => None,
            };
            async move { out }
        }))
    }

    /// A patient record as it changes. With `id`, only that patient.
    async fn patient_updated(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
    ) -> Result<impl Stream<Item = PatientObj> + use<>> {
        let s = session(ctx)?.clone();
        let only: Option<PatientId> = id
            .as_ref()
            .map(parse_id)
            .transpose()
            .map_err(ApiError::from)?;
        if s.role == Role::Patient && only != s.patient_id {
            return Err(ApiError::forbidden().into());
        }
        let node = node(ctx)?.clone();
        Ok(records(&node).filter_map(move |r| {
            let (s, node) = (s.clone(), node.clone());
            async move {
                let AnyRecord::Patient(p) = r.as_ref() else {
                    return None;
                };
                if only.is_some_and(|o| o != p.id) {
                    return None;
                }
                let allowed = match s.role {
                    Role::Admin | Role::Receptionist => true,
                    Role::Patient => s.patient_id == Some(p.id),
                    Role::Doctor => match s.doctor_id {
                        Some(d) => {
                            let (pid, now) = (p.id, node.now());
                            node.read(move |c| queries::is_patient_of(c, pid, d, now))
                                .await
                                .unwrap_or(false)
                        }
                        None => false,
                    },
                    Role::Finance => false,
                };
                allowed.then(|| PatientObj(p.clone()))
            }
        }))
    }

    /// Conflicts as they appear: after any local write or merge from the hub that
    /// leaves a record with fields holding concurrent values, those conflicts (the ones
    /// this session may see; front-desk and admin staff only).
    async fn conflict_raised(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = ConflictObj> + use<>> {
        let s = session(ctx)?.clone();
        crate::service::conflicts::require_staff(&s)?;
        let node = node(ctx)?.clone();
        Ok(records(&node)
            .filter_map(move |r| {
                let (s, node) = (s.clone(), node.clone());
                async move {
                    crate::service::conflicts::of_record(&node, &s, r.id())
                        .await
                        .ok()
                        .filter(|found| !found.is_empty())
                }
            })
            .flat_map(|found| futures_util::stream::iter(found.into_iter().map(ConflictObj::from))))
    }

    /// New notifications for a user: yourself (or, for an ADMIN, anyone).
    async fn new_notification(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
    ) -> Result<impl Stream<Item = NotificationObj> + use<>> {
        let s = session(ctx)?.clone();
        let uid: UserId = parse_id(&user_id).map_err(ApiError::from)?;
        let audience: Option<Audience> = if uid == s.user_id {
            audience_of(&s)
        } else if s.role == Role::Admin {
            let user = node(ctx)?
                .read(move |c| queries::user(c, uid))
                .await?
                .ok_or_else(|| ApiError::not_found("user"))?;
            Audience::of_account(user.role, user.patient_id, user.doctor_id)
        } else {
            return Err(
                ApiError::Forbidden("you may only watch your own notifications".into()).into(),
            );
        };
        Ok(records(node(ctx)?).filter_map(move |r| {
            let out = match r.as_ref() {
                AnyRecord::Notification(n) if Some(n.audience) == audience => {
                    Some(NotificationObj(n.clone()))
                }
                _ => None,
            };
            async move { out }
        }))
    }

    /// New entries of one patient's medical record (written here or arriving by
    /// sync), for the patient and the doctors treating them: checked when subscribing
    /// and again for every entry, so a relationship that ends stops the stream.
    async fn medical_record_added(
        &self,
        ctx: &Context<'_>,
        patient_id: ID,
    ) -> Result<impl Stream<Item = MedicalRecordObj> + use<>> {
        let s = session(ctx)?.clone();
        let patient: PatientId = parse_id(&patient_id).map_err(ApiError::from)?;
        let node = node(ctx)?.clone();
        let allowed = move |s: Session, node: Node| async move {
            match s.clinical_reader(patient) {
                ClinicalReader::OwnRecord => true,
                ClinicalReader::IfTreating(d) => {
                    let now = node.now();
                    node.read(move |c| queries::is_patient_of(c, patient, d, now))
                        .await
                        .unwrap_or(false)
                }
                ClinicalReader::Never => false,
            }
        };
        if !allowed(s.clone(), node.clone()).await {
            return Err(ApiError::not_found("patient").into());
        }
        Ok(records(&node).filter_map(move |r| {
            let (s, node) = (s.clone(), node.clone());
            async move {
                let AnyRecord::MedicalRecord(m) = r.as_ref() else {
                    return None;
                };
                if m.patient_id != patient || !allowed(s, node.clone()).await {
                    return None;
                }
                let id = m.id;
                // With its corrections as the projection has them now.
                node.read(move |c| queries::medical_record(c, id))
                    .await
                    .ok()
                    .flatten()
                    .map(MedicalRecordObj)
            }
        }))
    }

    /// Invoices as they change: issued, paid, refunded, voided or claimed (written here
    /// or arriving by sync). A cashier's of every patient, or with `patientId` one
    /// patient's; a patient's own only. Each event is the invoice as it now stands.
    async fn invoice_updated(
        &self,
        ctx: &Context<'_>,
        patient_id: Option<ID>,
    ) -> Result<impl Stream<Item = InvoiceObj> + use<>> {
        let s = session(ctx)?.clone();
        let only: Option<PatientId> = patient_id
            .as_ref()
            .map(parse_id)
            .transpose()
            .map_err(ApiError::from)?;
        if !billing::reads_billing(&s) {
            return Err(ApiError::forbidden().into());
        }
        let only = match (s.role, only) {
            (Role::Patient, None) => s.patient_id,
            (_, p) => p,
        };
        if s.role == Role::Patient && (only.is_none() || only != s.patient_id) {
            return Err(ApiError::not_found("patient").into());
        }
        let node = node(ctx)?.clone();
        Ok(records(&node).filter_map(move |r| {
            let (s, node) = (s.clone(), node.clone());
            async move {
                let (invoice, patient) = match r.as_ref() {
                    AnyRecord::Invoice(i) => (i.id, i.patient_id),
                    AnyRecord::Payment(p) => (p.invoice_id, p.patient_id),
                    AnyRecord::InvoiceVoid(v) => (v.invoice_id, v.patient_id),
                    AnyRecord::Claim(c) => (c.invoice_id, c.patient_id),
                    _ => return None,
                };
                if only.is_some_and(|p| p != patient) || !billing::may_read(&s, patient) {
                    return None;
                }
                node.read(move |c| queries::billing::invoice(c, invoice))
                    .await
                    .ok()
                    .flatten()
                    .map(InvoiceObj)
            }
        }))
    }
}
