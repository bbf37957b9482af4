//! The hub at the scale of an organisation: `sites` clinics' patients, doctors,
//! appointments, invoices and payments uploaded through the hub store's real ingest
//! (`commit_upload`, the path QUIC sync uses, one enrolled node per site, 5,000 changes
//! per upload) and folded into documents and projections (`materialize_all`); then the
//! central admins' queries, in-process against the hub's real schema with a global
//! ADMIN session: a patient search by name prefix, one patient with its appointments
//! across sites (doctors and sites included), and a billing roll-up of one year by
//! site × month. The database is vacuumed after seeding (the state autovacuum keeps a
//! serving hub in) and may be kept and reused (`--keep NAME`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_graphql::Request;
use automerge::ActorId;
use chrono::{Duration as Span, Utc};
use healsync_domain::billing::{Currency, InvoiceLine, PaymentMethod};
use healsync_domain::{
    Appointment, AppointmentStatus, Doctor, DoctorId, Invoice, PatientId, Payment, Role, UserId,
};
use healsync_hub_api::Hub;
use healsync_hub_api::graphql::{HubAuth, new_loaders};
use healsync_hub_store::HubStore;
use healsync_records::{Record, new_document, write_record};
use healsync_sync_protocol::Change;
use healsync_test_support::seed::{self, Rng};
use serde_json::json;
use uuid::Uuid;

const UPLOAD: usize = 5_000;
const DOCTORS_PER_SITE: usize = 10;

/// What to seed.
pub struct Size {
    pub sites: usize,
    pub patients: usize,
    pub appointments: usize,
    pub invoices: usize,
}

/// One record's first change, as the node of its site uploads it.
fn change<R: Record>(actor: &ActorId, record: &R, kind: &str, seq: u64) -> Result<Change> {
    let mut doc = new_document(actor);
    let written = write_record(&mut doc, record)?;
    let (hash, bytes) = written
        .changes
        .into_iter()
        .next()
        .context("a new record writes one change")?;
    Ok(Change {
        seq,
        doc_id: *record.id().as_bytes(),
        kind: kind.into(),
        hash: hash.0,
        bytes,
    })
}

/// A site's enrolled node, its actor and its upload position.
struct SiteNode {
    code: String,
    node: Uuid,
    actor: ActorId,
    seq: u64,
    pending: Vec<Change>,
}

impl SiteNode {
    async fn push<R: Record>(&mut self, hub: &HubStore, record: &R, kind: &str) -> Result<()> {
        self.seq += 1;
        self.pending
            .push(change(&self.actor, record, kind, self.seq)?);
        if self.pending.len() >= UPLOAD {
            self.flush(hub).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, hub: &HubStore) -> Result<()> {
        if !self.pending.is_empty() {
            let refused = hub
                .commit_upload(self.node, &self.pending, self.seq)
                .await?;
            anyhow::ensure!(refused.is_empty(), "the hub refused {refused:?}");
            self.pending.clear();
        }
        Ok(())
    }
}

async fn seed_hub(hub: &HubStore, size: &Size) -> Result<(Duration, Duration)> {
    let t = Instant::now();
    let mut nodes = Vec::new();
    for s in 0..size.sites {
        let code = format!("S{s:02}");
        hub.add_site(&code, &format!("Clinic {s}")).await?;
        let node = Uuid::now_v7();
        hub.enroll(&hub.create_enrollment_token(&code).await?, node)
            .await?;
        nodes.push(SiteNode {
            code,
            node,
            actor: ActorId::from(Uuid::now_v7().as_bytes().as_slice()),
            seq: 0,
            pending: Vec::new(),
        });
    }
    let now = Utc::now();
    let mut rng = Rng(0x00C0_FFEE_D00D);
    // Doctors, made at their home site.
    let mut doctors: Vec<Vec<DoctorId>> = vec![Vec::new(); size.sites];
    for (s, n) in nodes.iter_mut().enumerate() {
        for d in 0..DOCTORS_PER_SITE {
            let doctor = Doctor {
                id: DoctorId(Uuid::now_v7()),
                name: format!("Dr. Site{s} Number{d}"),
                specializations: vec![
                    ["General practice", "Cardiology", "Paediatrics"][d % 3].into(),
                ],
                licence_number: format!("L-{s}-{d}"),
                email: None,
                phone: None,
                active: true,
                created_at: now,
                updated_at: now,
            };
            doctors[s].push(doctor.id);
            n.push(hub, &doctor, "doctor").await?;
        }
    }
    // Patients, round robin over the sites.
    let mut patients: Vec<Vec<PatientId>> = vec![Vec::new(); size.sites];
    for i in 0..size.patients {
        let s = i % size.sites;
        let p = seed::patient(&nodes[s].code.clone(), i, now, &mut rng);
        patients[s].push(p.id);
        nodes[s].push(hub, &p, "patient").await?;
    }
    // Appointments over the last two years, each at its patient's site.
    let start = now - Span::days(730);
    let mut invoiced = 0;
    for i in 0..size.appointments {
        let s = i % size.sites;
        let patient = patients[s][(rng.next_u64() as usize) % patients[s].len()];
        let doctor = doctors[s][(rng.next_u64() as usize) % DOCTORS_PER_SITE];
        let at = start + Span::minutes(20 * (rng.next_u64() % (730 * 24 * 3)) as i64);
        let appt = Appointment {
            id: Uuid::now_v7().into(),
            patient_id: patient,
            doctor_id: doctor,
            site: nodes[s].code.clone(),
            start: at,
            end: at + Span::minutes(20),
            status: if at < now {
                AppointmentStatus::Completed
            } else {
                AppointmentStatus::Booked
            },
            reason: None,
            notes: None,
            created_at: at,
            updated_at: at,
        };
        nodes[s].push(hub, &appt, "appointment").await?;
        // A share of the past visits billed and paid.
        if invoiced < size.invoices && at < now && rng.next_u64() % 5 < 2 {
            invoiced += 1;
            let kes = Currency::parse("KES")?;
            let invoice = Invoice {
                id: Uuid::now_v7().into(),
                number: format!("{}-INV-{invoiced:07}", nodes[s].code),
                patient_id: patient,
                site: nodes[s].code.clone(),
                currency: kes.clone(),
                lines: vec![InvoiceLine {
                    service_code: Some(["CONSULT", "LAB-FBC", "VACC"][invoiced % 3].into()),
                    description: "Service".into(),
                    quantity: 1,
                    unit_price: 150_000,
                    discount: 0,
                    tax_rate: 1600,
                }],
                appointment_id: Some(appt.id),
                notes: None,
                issued_by: "desk".into(),
                issued_at: at + Span::minutes(25),
            };
            let payment = Payment {
                id: Uuid::now_v7().into(),
                invoice_id: invoice.id,
                patient_id: patient,
                site: nodes[s].code.clone(),
                amount: 100_000,
                currency: kes,
                method: PaymentMethod::Cash,
                reference: None,
                received_by: "desk".into(),
                received_at: at + Span::minutes(30),
            };
            nodes[s].push(hub, &invoice, "invoice").await?;
            nodes[s].push(hub, &payment, "payment").await?;
        }
    }
    for n in &mut nodes {
        n.flush(hub).await?;
    }
    let uploaded = t.elapsed();
    let t = Instant::now();
    hub.materialize_all().await?;
    Ok((uploaded, t.elapsed()))
}

fn admin() -> HubAuth {
    let now = Utc::now().timestamp();
    HubAuth::Central(healsync_auth::Claims {
        sub: UserId(Uuid::now_v7()),
        username: "admin".into(),
        role: Role::Admin,
        patient_id: None,
        doctor_id: None,
        sites: None,
        iss: "healsync-hub".into(),
        aud: None,
        sid: None,
        iat: now,
        iat_ms: None,
        exp: now + 3600,
    })
}

/// p50 and p99 of `repeat` runs of the query `make(i)` builds.
async fn time(
    hub: &Hub,
    repeat: usize,
    make: impl Fn(usize) -> (String, serde_json::Value),
) -> Result<(Duration, Duration)> {
    let schema = healsync_hub_api::build_schema(hub.clone());
    let mut times = Vec::with_capacity(repeat);
    for i in 0..repeat {
        let (query, vars) = make(i);
        let req = Request::new(query)
            .variables(async_graphql::Variables::from_json(vars))
            .data(admin())
            .data(new_loaders(hub, None))
            .data(healsync_graphql_guard::Caller {
                signed_in: true,
                refused: None,
            });
        let t = Instant::now();
        let resp = schema.execute(req).await;
        times.push(t.elapsed());
        anyhow::ensure!(resp.errors.is_empty(), "{:?}", resp.errors);
    }
    times.sort();
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    Ok((at(0.50), at(0.99)))
}

pub async fn run(admin_url: String, size: Size, repeat: usize, keep: Option<String>) -> Result<()> {
    let (url, _db) = match &keep {
        Some(name) => {
            let base = admin_url
                .rsplit_once('/')
                .map(|(b, _)| b.to_string())
                .unwrap_or(admin_url.clone());
            let pool = sqlx::PgPool::connect(&admin_url).await?;
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                    .bind(name)
                    .fetch_one(&pool)
                    .await?;
            if !exists {
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&pool)
                    .await?;
            }
            pool.close().await;
            (format!("{base}/{name}"), None)
        }
        None => {
            let db = healsync_test_support::TestDatabase::create_on(&admin_url, "hubscale").await?;
            (db.url.clone(), Some(db))
        }
    };
    let store = HubStore::connect(&url, 8).await?;
    // As `healsync-hub serve` does at start: projections added since the database was
    // seeded are filled from the documents.
    let t = Instant::now();
    let backfilled = store.backfill_projections().await?;
    if backfilled > 0 {
        println!(
            "backfilled projections of {backfilled} records in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let seeded: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
        .fetch_one(store.pool())
        .await?;
    if seeded == 0 {
        let (uploaded, folded) = seed_hub(&store, &size).await?;
        println!(
            "seeded {} sites, {} patients, {} appointments, up to {} invoices with payments: upload {:.1} s, fold {:.1} s",
            size.sites,
            size.patients,
            size.appointments,
            size.invoices,
            uploaded.as_secs_f64(),
            folded.as_secs_f64()
        );
        // The state autovacuum keeps a serving hub in (visibility maps current, so
        // index-only scans; statistics for the planner), reached at once.
        let t = Instant::now();
        sqlx::query("VACUUM ANALYZE").execute(store.pool()).await?;
        println!(
            "vacuum analyze after seeding: {:.1} s",
            t.elapsed().as_secs_f64()
        );
    } else {
        println!("reusing {seeded} documents in {url}");
    }
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM documents WHERE kind = 'patient'),
                (SELECT count(*) FROM appointments), (SELECT count(*) FROM billing_invoices)",
    )
    .fetch_one(store.pool())
    .await?;
    println!(
        "hub holds {} patients, {} appointments, {} invoices",
        counts.0, counts.1, counts.2
    );
    let dir = tempfile::tempdir()?;
    let keys = healsync_auth::SessionKeys::load_or_create(dir.path(), "healsync-hub")?;
    let hub = Hub::new(store.clone(), keys, Arc::new(tokio::sync::Notify::new()))
        .map_err(|e| anyhow::anyhow!("{}", e.code()))?;

    // Name prefixes people type: four letters of a last name, or of a first name and a
    // last name.
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT record->>'name' FROM documents WHERE kind = 'patient' ORDER BY doc_id LIMIT 500",
    )
    .fetch_all(store.pool())
    .await?;
    let prefix = |i: usize| -> String {
        let words: Vec<&str> = names[i % names.len()].split(' ').collect();
        let cut = |w: &str| w.chars().take(4).collect::<String>();
        if i.is_multiple_of(2) {
            cut(words.get(1).copied().unwrap_or(""))
        } else {
            format!(
                "{} {}",
                cut(words[0]),
                cut(words.get(1).copied().unwrap_or(""))
            )
        }
    };
    let (p50, p99) = time(&hub, repeat, |i| {
        (
            "query($q: String) { patients(search: $q, limit: 20) { id name site } }".into(),
            json!({ "q": prefix(i) }),
        )
    })
    .await?;
    println!(
        "patients(search: name prefix, limit 20)       p50 {:>7.2} ms   p99 {:>7.2} ms   (budget p99 20 ms)",
        ms(p50),
        ms(p99)
    );

    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT patient_id FROM appointments GROUP BY patient_id ORDER BY patient_id LIMIT 500",
    )
    .fetch_all(store.pool())
    .await?;
    let (p50, p99) = time(&hub, repeat, |i| {
        (
            "query($id: ID!) { patient(id: $id) { name site sharedWith appointments(limit: 50) { scheduledAt status site doctor { name specialization } } } }".into(),
            json!({ "id": ids[i % ids.len()].to_string() }),
        )
    })
    .await?;
    println!(
        "patient(id) with appointments and doctors     p50 {:>7.2} ms   p99 {:>7.2} ms   (budget p99 10 ms)",
        ms(p50),
        ms(p99)
    );

    let year_end = Utc::now() + Span::days(1);
    let year_start = year_end - Span::days(365);
    let (p50, p99) = time(&hub, repeat.min(30), |_| {
        (
            "query($f: String!, $t: String!) { revenue(from: $f, to: $t, period: MONTH) { site period payer invoiced { amount } received { amount } outstanding { amount } } }".into(),
            json!({ "f": year_start.to_rfc3339(), "t": year_end.to_rfc3339() }),
        )
    })
    .await?;
    println!(
        "revenue: one year by site x month            p50 {:>7.2} ms   p99 {:>7.2} ms   (budget 200 ms)",
        ms(p50),
        ms(p99)
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
