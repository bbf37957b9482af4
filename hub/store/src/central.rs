//! The writes central admins make at the hub: accounts, settled conflicts, patients
//! registered to a site, bookings into a site's schedule and appointment status
//! changes. Each is a hub change (by the hub's actor, serialised by the `hub_meta`
//! lock) that reaches the site's nodes by sync, and each decides by the same domain
//! rule a clinic's node uses, on facts read inside the write's transaction.

use chrono::{Duration, Utc};
use healsync_domain::booking::{self, BookingRequest, Busy, Calendar, Whose};
use healsync_domain::notification::appointment_notices;
use healsync_domain::{
    Appointment, AppointmentId, AppointmentStatus, Doctor, Patient, SiteCode, User,
};
use healsync_records::{AnyRecord, resolve_field};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use crate::error::db;
use crate::queries::read_typed;
use crate::rows::{DocumentChanged, HUB_ONLY, changed, lock_meta};
use crate::scope::{GrantReason, grant};
use crate::writes::{write_at_hub, write_record_at_hub};
use crate::{HubStore, HubStoreError};

/// A patient registered at the hub to a site, before its number is minted.
#[derive(Debug, Clone)]
pub struct NewPatient {
    pub site: String,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub date_of_birth: Option<chrono::NaiveDate>,
    pub sex: Option<healsync_domain::Sex>,
    pub address: healsync_domain::Address,
}

/// One typed record read inside a transaction, with its row locked.
async fn typed_in<T>(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    pick: impl Fn(AnyRecord) -> Option<T>,
) -> Result<Option<T>, HubStoreError> {
    let bytes: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT bytes FROM documents WHERE doc_id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db("read a record"))?;
    match bytes {
        Some(b) => read_typed(&b, pick),
        None => Ok(None),
    }
}

/// What the booking rule needs, read in the booking's transaction: the doctor's
/// schedule and leave at the site, and what the doctor and the patient hold at any
/// site around `start`.
struct Facts {
    schedule: Option<healsync_domain::Schedule>,
    leaves: Vec<healsync_domain::Leave>,
    busy: Vec<Busy>,
}

impl Facts {
    async fn read(
        tx: &mut Transaction<'_, Postgres>,
        req: &BookingRequest,
        moving: Option<AppointmentId>,
    ) -> Result<Facts, HubStoreError> {
        let (from, to) = (req.start - Duration::days(1), req.start + Duration::days(1));
        let mut facts = Facts {
            schedule: None,
            leaves: Vec::new(),
            busy: Vec::new(),
        };
        let calendar: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT bytes FROM documents
             WHERE kind IN ('schedule', 'leave') AND record->>'doctorId' = $1",
        )
        .bind(req.doctor_id.to_string())
        .fetch_all(&mut **tx)
        .await
        .map_err(db("read the doctor's schedules"))?;
        for bytes in calendar {
            match read_typed(&bytes, Some)? {
                Some(AnyRecord::Schedule(s)) if s.site == req.site && s.active => {
                    facts.schedule = Some(s)
                }
                Some(AnyRecord::Leave(l))
                    if l.site == req.site && !l.cancelled && l.start < to && l.end > from =>
                {
                    facts.leaves.push(l)
                }
                _ => {}
            }
        }
        let rows = sqlx::query(
            "SELECT doc_id, doctor_id, patient_id, start_at, end_at, status FROM appointments
             WHERE (doctor_id = $1 OR patient_id = $2) AND start_at < $4 AND end_at > $3",
        )
        .bind(req.doctor_id.0)
        .bind(req.patient_id.0)
        .bind(from)
        .bind(to)
        .fetch_all(&mut **tx)
        .await
        .map_err(db("read the doctor's and the patient's appointments"))?;
        for r in rows {
            let read = |r: &sqlx::postgres::PgRow| -> Result<_, sqlx::Error> {
                Ok((
                    r.try_get::<Uuid, _>("doc_id")?,
                    r.try_get::<Uuid, _>("doctor_id")?,
                    r.try_get::<Uuid, _>("patient_id")?,
                    r.try_get("start_at")?,
                    r.try_get("end_at")?,
                    r.try_get::<String, _>("status")?,
                ))
            };
            let (id, doctor, patient, start, end, status) =
                read(&r).map_err(db("read an appointment"))?;
            let holds = AppointmentStatus::parse(&status)
                .map_err(|e| HubStoreError::Corrupt(e.to_string()))?
                .holds_time();
            if !holds || moving.is_some_and(|m| m.0 == id) {
                continue;
            }
            for (mine, whose) in [
                (doctor == req.doctor_id.0, Whose::Doctor),
                (patient == req.patient_id.0, Whose::Patient),
            ] {
                if mine {
                    facts.busy.push(Busy { whose, start, end });
                }
            }
        }
        Ok(facts)
    }

    fn calendar(&self) -> Calendar<'_> {
        Calendar {
            schedule: self.schedule.as_ref(),
            leaves: &self.leaves,
            busy: &self.busy,
        }
    }
}

/// Writes the two notices of an appointment change to its patient and doctor, at the
/// appointment's site, as a clinic's node would.
async fn notify(
    tx: &mut Transaction<'_, Postgres>,
    actor: &automerge::ActorId,
    kind: &str,
    appt: &Appointment,
    patient: &Patient,
    doctor: &Doctor,
) -> Result<(), HubStoreError> {
    let ids = [Uuid::now_v7().into(), Uuid::now_v7().into()];
    for notice in &appointment_notices(kind, appt, patient, doctor, Utc::now(), ids) {
        write_record_at_hub(tx, actor, &appt.site, false, notice).await?;
    }
    Ok(())
}

async fn people(
    tx: &mut Transaction<'_, Postgres>,
    patient: Uuid,
    doctor: Uuid,
) -> Result<(Patient, Doctor), HubStoreError> {
    let patient = typed_in(tx, patient, |r| match r {
        AnyRecord::Patient(p) => Some(p),
        _ => None,
    })
    .await?
    .ok_or(HubStoreError::UnknownDocument(patient))?;
    let doctor = typed_in(tx, doctor, |r| match r {
        AnyRecord::Doctor(d) => Some(d),
        _ => None,
    })
    .await?
    .ok_or(HubStoreError::UnknownDocument(doctor))?;
    Ok((patient, doctor))
}

impl HubStore {
    /// Adds an account. With a site, the account belongs to that site and replicates
    /// to its nodes; without, it stays at the hub (a central admin), limited to
    /// `limited_to` sites when given.
    pub async fn add_user(
        &self,
        user: &User,
        site: Option<&str>,
        limited_to: Option<&[String]>,
    ) -> Result<(), HubStoreError> {
        let mut tx = self.pool.begin().await.map_err(db("begin adding a user"))?;
        let (_, actor) = lock_meta(&mut tx).await?;
        let taken: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM documents WHERE kind = 'user' AND record->>'username' = $1)",
        )
        .bind(&user.username)
        .fetch_one(&mut *tx)
        .await
        .map_err(db("check a user name"))?;
        if taken {
            return Err(HubStoreError::UserExists(user.username.clone()));
        }
        if let Some(code) = site {
            if user.role.is_hub_only() {
                return Err(HubStoreError::Rule(healsync_domain::DomainError::invalid(
                    "site",
                    format!("a {} account is central: it belongs to no site", user.role),
                )));
            }
            self.require_site(&mut tx, code).await?;
        }
        if let Some(sites) = limited_to {
            if site.is_some() || sites.is_empty() {
                return Err(HubStoreError::Rule(healsync_domain::DomainError::invalid(
                    "sites",
                    "only a central account is limited to sites, and to at least one",
                )));
            }
            for code in sites {
                self.require_site(&mut tx, code).await?;
            }
            sqlx::query("INSERT INTO admin_sites (user_id, sites) VALUES ($1, $2)")
                .bind(user.id.0)
                .bind(sites)
                .execute(&mut *tx)
                .await
                .map_err(db("limit an account to sites"))?;
        }
        // A clinic account holds its role at its own clinic; the hub may add others.
        let scoped;
        let user = match site {
            Some(code) if user.sites.is_empty() => {
                scoped = User {
                    sites: vec![SiteCode::parse(code)?],
                    ..user.clone()
                };
                &scoped
            }
            _ => user,
        };
        write_record_at_hub(&mut tx, &actor, site.unwrap_or(HUB_ONLY), false, user).await?;
        tx.commit().await.map_err(db("commit a user"))?;
        Ok(())
    }

    async fn require_site(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        code: &str,
    ) -> Result<(), HubStoreError> {
        if crate::site_exists(tx, code).await? {
            Ok(())
        } else {
            Err(HubStoreError::UnknownSite(code.to_string()))
        }
    }

    /// The sites a central account is limited to; `None`: every site.
    pub async fn admin_sites(&self, user: Uuid) -> Result<Option<Vec<String>>, HubStoreError> {
        sqlx::query_scalar("SELECT sites FROM admin_sites WHERE user_id = $1")
            .bind(user)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read an account's sites"))
    }

    /// Settles a conflicting field at the hub with one of its values or an edited
    /// text. `Ok(None)` when there is no such document or value.
    pub async fn resolve_conflict(
        &self,
        doc_id: Uuid,
        field: &str,
        value: &str,
    ) -> Result<Option<DocumentChanged>, HubStoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("begin settling a conflict"))?;
        let (_, actor) = lock_meta(&mut tx).await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT site FROM documents WHERE doc_id = $1")
                .bind(doc_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db("look up a document"))?;
        let Some(site) = exists else { return Ok(None) };
        let (field, value) = (field.to_string(), value.to_string());
        let merged = write_at_hub(&mut tx, &actor, doc_id, &site, true, move |doc| {
            resolve_field(doc, &field, &value)
        })
        .await?;
        tx.commit().await.map_err(db("commit a settled conflict"))?;
        Ok(merged.map(|m| changed(doc_id, &site, &m)))
    }

    /// Books into a site's schedule from the hub, by the domain's booking rule on what
    /// this transaction reads: the doctor's schedule and leave at the site, and the
    /// doctor's and the patient's appointments at every site as far as the hub knows
    /// (a booking a site made offline for the same time is found as a collision when
    /// its changes are folded in). The appointment belongs to the site and reaches its
    /// nodes by sync; a patient registered at another site is granted to the booking's
    /// site first, so the site's nodes receive the patient with its history.
    pub async fn book(
        &self,
        req: BookingRequest,
    ) -> Result<(Appointment, DocumentChanged), HubStoreError> {
        let mut tx = self.pool.begin().await.map_err(db("begin a booking"))?;
        let (_, actor) = lock_meta(&mut tx).await?;
        self.require_site(&mut tx, &req.site).await?;
        let (patient, doctor) = people(&mut tx, req.patient_id.0, req.doctor_id.0).await?;
        let facts = Facts::read(&mut tx, &req, None).await?;
        let now = Utc::now();
        let appt = booking::book(
            req,
            &doctor,
            &patient,
            facts.calendar(),
            Uuid::now_v7().into(),
            now,
        )?;
        // The patient reaches the site before its appointment does: the grant's block
        // lies below the appointment's changes in the log.
        grant(&mut tx, appt.patient_id.0, &appt.site, GrantReason::Booking).await?;
        let merged = write_record_at_hub(&mut tx, &actor, &appt.site, false, &appt)
            .await?
            .ok_or_else(|| HubStoreError::Corrupt("a new booking wrote nothing".into()))?;
        notify(
            &mut tx,
            &actor,
            "APPOINTMENT_BOOKED",
            &appt,
            &patient,
            &doctor,
        )
        .await?;
        tx.commit().await.map_err(db("commit a booking"))?;
        let changed = changed(appt.id.0, &appt.site, &merged);
        Ok((appt, changed))
    }

    /// Moves an appointment along its lifecycle from the hub, by the domain's rule; a
    /// cancellation tells the patient and the doctor. `None` when there is no such
    /// appointment; the appointment unchanged when it already has that status.
    pub async fn set_appointment_status(
        &self,
        id: Uuid,
        to: AppointmentStatus,
    ) -> Result<Option<Appointment>, HubStoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("begin a status change"))?;
        let (_, actor) = lock_meta(&mut tx).await?;
        let Some(mut appt) = typed_in(&mut tx, id, |r| match r {
            AnyRecord::Appointment(a) => Some(a),
            _ => None,
        })
        .await?
        else {
            return Ok(None);
        };
        if !appt.change_status(to, Utc::now())? {
            return Ok(Some(appt));
        }
        write_record_at_hub(&mut tx, &actor, &appt.site, false, &appt).await?;
        if let Some(kind) = AppointmentStatus::notice_for(to) {
            let (patient, doctor) = people(&mut tx, appt.patient_id.0, appt.doctor_id.0).await?;
            notify(&mut tx, &actor, kind, &appt, &patient, &doctor).await?;
        }
        tx.commit().await.map_err(db("commit a status change"))?;
        Ok(Some(appt))
    }

    /// Registers a patient at the hub to a site: it belongs to that site, reaches its
    /// nodes by sync, and gets a number the hub mints for the site (from
    /// [`SiteCode::hub_mrn`], a range no node's counter reaches).
    pub async fn create_patient(&self, new: NewPatient) -> Result<Patient, HubStoreError> {
        let site =
            SiteCode::parse(&new.site).map_err(|_| HubStoreError::UnknownSite(new.site.clone()))?;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("begin registering a patient"))?;
        let (_, actor) = lock_meta(&mut tx).await?;
        self.require_site(&mut tx, site.as_str()).await?;
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO hub_mrn_counters (site, last) VALUES ($1, 1)
             ON CONFLICT (site) DO UPDATE SET last = hub_mrn_counters.last + 1 RETURNING last",
        )
        .bind(site.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(db("mint a medical record number"))?;
        let now = Utc::now();
        let patient = Patient {
            id: Uuid::now_v7().into(),
            mrn: site.hub_mrn(u64::try_from(seq).unwrap_or(0)),
            site: site.to_string(),
            name: new.name,
            email: new.email,
            phone: new.phone,
            date_of_birth: new.date_of_birth,
            sex: new.sex,
            address: new.address,
            emergency_contact: None,
            allergies: Vec::new(),
            active: true,
            created_at: now,
            updated_at: now,
        };
        write_record_at_hub(&mut tx, &actor, site.as_str(), true, &patient).await?;
        tx.commit().await.map_err(db("commit a patient"))?;
        Ok(patient)
    }
}
