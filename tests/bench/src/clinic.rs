//! The clinic-day benchmark: what a clinical entry, an invoice and a payment cost the
//! writer against a booking (in-process, through the services, each its own durable
//! transaction), and, on a large seeded clinic, a patient's summary with the last 50
//! history entries and the site's day-end cash report over GraphQL.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use chrono::{DateTime, NaiveTime, Utc};
use healsync_domain::billing::{Currency, InvoiceLine, PaymentMethod};
use healsync_domain::clinical::{
    Diagnosis, MedicationStatus, Note, Prescription, ProblemStatus, Vitals,
};
use healsync_domain::*;
use healsync_node_api::service::{appointments, billing, doctors, medical_records};
use healsync_node_api::{Node, Session};
use healsync_store::{Store, StoreError};
use healsync_test_support::NodeProcess;
use healsync_test_support::seed::{self, Rng};
use serde_json::json;
use uuid::Uuid;

const BATCH: usize = 1000;
const DOCTORS: usize = 50;
/// Patients whose charts are read in the query part (each in the queried doctor's
/// care): typical charts of about 70 entries, and a few very long ones.
const TYPICAL: usize = 200;
const HEAVY: usize = 20;

fn pct(lat: &mut [Duration], p: f64) -> f64 {
    lat.sort();
    lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3
}

fn admin() -> Session {
    Session {
        user_id: UserId(Uuid::nil()),
        username: "bench".into(),
        role: Role::Admin,
        patient_id: None,
        doctor_id: None,
        peer: None,
        opened: None,
    }
}

/// Part 1: writer time per operation, in-process, each a durable transaction.
async fn writer_costs(ops: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(dir.path(), None)?);
    let mut rng = Rng(7);
    let patients = seed::patients(&store, "DEV", 0, ops, &mut rng)?;
    let keys = healsync_auth::SessionKeys::load_or_create(dir.path(), "bench")?;
    let node = Node::new(store, keys).map_err(|e| anyhow!("{e:?}"))?;
    let admin = admin();
    let doctor = doctors::create(
        &node,
        &admin,
        doctors::NewDoctor {
            name: "Dr. Bench".into(),
            specializations: vec!["General practice".into()],
            licence_number: "B-1".into(),
            email: None,
            phone: None,
        },
    )
    .await
    .map_err(|e| anyhow!("{e:?}"))?;
    let mut rules = vec![];
    for day in [
        chrono::Weekday::Mon,
        chrono::Weekday::Tue,
        chrono::Weekday::Wed,
        chrono::Weekday::Thu,
        chrono::Weekday::Fri,
        chrono::Weekday::Sat,
        chrono::Weekday::Sun,
    ] {
        rules.push(WeeklyRule {
            weekday: day,
            start: NaiveTime::MIN,
            end: NaiveTime::from_hms_opt(23, 55, 0).ok_or_else(|| anyhow!("time"))?,
        });
    }
    doctors::set_schedule(&node, &admin, doctor.id, 5, 0, rules, true)
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    let site = node.store().identity().site.to_string();
    let (from, to) = (Utc::now(), Utc::now() + chrono::Duration::days(30));
    let did = doctor.id;
    let slots = node
        .read(move |c| appointments::free_slots(c, &site, did, from, to))
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    if slots.len() < ops {
        return Err(anyhow!("only {} free slots", slots.len()));
    }
    let clinician = Session {
        user_id: UserId(Uuid::nil()),
        username: "dr.bench".into(),
        role: Role::Doctor,
        patient_id: None,
        doctor_id: Some(doctor.id),
        peer: None,
        opened: None,
    };

    let time = |lat: &mut Vec<Duration>, t: Instant| lat.push(t.elapsed());
    let (mut book, mut entry, mut invoice, mut payment) = (vec![], vec![], vec![], vec![]);
    for i in 0..ops {
        let t = Instant::now();
        appointments::book(
            &node,
            &admin,
            appointments::NewAppointment {
                patient_id: patients[i],
                doctor_id: doctor.id,
                start: slots[i].start,
                reason: Some("Consultation".into()),
                notes: None,
            },
        )
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
        time(&mut book, t);

        let t = Instant::now();
        medical_records::add(
            &node,
            &clinician,
            medical_records::NewEntry {
                patient_id: patients[i],
                appointment_id: None,
                recorded_at: None,
                details: Details::Prescription(Prescription {
                    drug: "Amoxicillin".into(),
                    dose: "500 mg".into(),
                    route: "oral".into(),
                    frequency: "three times a day".into(),
                    duration_days: Some(7),
                    quantity: Some(21),
                    status: MedicationStatus::Active,
                }),
                amends: None,
                reason: None,
            },
        )
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
        time(&mut entry, t);

        let t = Instant::now();
        let row = billing::issue_invoice(
            &node,
            &admin,
            billing::NewInvoice {
                patient_id: Some(patients[i]),
                appointment_id: None,
                currency: "KES".into(),
                lines: vec![
                    billing::LineInput {
                        description: Some("Consultation".into()),
                        unit_price: Some("1500".into()),
                        quantity: 1,
                        tax_rate: Some("16".into()),
                        ..Default::default()
                    },
                    billing::LineInput {
                        description: Some("Full blood count".into()),
                        unit_price: Some("350.50".into()),
                        quantity: 2,
                        discount: Some("50".into()),
                        ..Default::default()
                    },
                ],
                notes: None,
            },
        )
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
        time(&mut invoice, t);

        let t = Instant::now();
        billing::record_payment(
            &node,
            &admin,
            billing::PaymentInput {
                invoice_id: row.invoice.id,
                amount: "1000".into(),
                method: PaymentMethod::Cash,
                reference: None,
            },
            billing::Direction::Payment,
        )
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
        time(&mut payment, t);
    }
    let base = pct(&mut book, 0.5);
    println!("writer time per durable write, in-process, {ops} of each (interleaved):");
    println!(
        "{:<34} {:>8} {:>8} {:>14}",
        "operation", "p50 ms", "p99 ms", "p50 / booking"
    );
    for (name, lat) in [
        ("book appointment (+2 notices)", &mut book),
        ("clinical entry (prescription)", &mut entry),
        ("invoice, 2 lines (+1 notice)", &mut invoice),
        ("payment (+1 notice)", &mut payment),
    ] {
        let p50 = pct(lat, 0.5);
        println!(
            "{name:<34} {p50:>8.2} {:>8.2} {:>13.2}x",
            pct(lat, 0.99),
            p50 / base
        );
    }
    Ok(())
}

/// Part 2, seeding: patients, doctors, a care relationship for the sampled patients,
/// clinical entries, invoices over a year and payments on most of them, through the
/// store's write path, `BATCH` records per transaction.
#[derive(serde::Serialize, serde::Deserialize)]
struct Seeded {
    typical: Vec<PatientId>,
    heavy: Vec<PatientId>,
    doctor: DoctorId,
    busiest_day: chrono::NaiveDate,
}

fn seed_clinic(
    dir: &std::path::Path,
    patients: usize,
    entries: usize,
    invoices: usize,
) -> Result<Seeded> {
    let store = Store::open(dir, None)?;
    let now = Utc::now();
    let mut rng = Rng(0x5EED);
    let t = Instant::now();
    let patient_ids = seed::patients(&store, "DEV", 0, patients, &mut rng)?;
    println!(
        "seeded {patients} patients in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let doctor_ids: Vec<DoctorId> = (0..DOCTORS).map(|_| DoctorId(Uuid::now_v7())).collect();
    let step = (patients / (TYPICAL + HEAVY)).max(1);
    let chosen: Vec<PatientId> = patient_ids
        .iter()
        .step_by(step)
        .take(TYPICAL + HEAVY)
        .copied()
        .collect();
    let (typical, heavy) = chosen.split_at(TYPICAL.min(chosen.len()));
    let (typical, heavy) = (typical.to_vec(), heavy.to_vec());
    let sampled = chosen;
    store.write(now, |tx| {
        for (i, id) in doctor_ids.iter().enumerate() {
            tx.put(&Doctor {
                id: *id,
                name: format!("Dr. Clinic {i:02}"),
                specializations: vec!["General practice".into()],
                licence_number: format!("C-{i}"),
                email: None,
                phone: None,
                active: true,
                created_at: now,
                updated_at: now,
            })?;
        }
        // The sampled patients were seen by doctor 0 yesterday: in their care.
        for (k, p) in sampled.iter().enumerate() {
            let start = now - chrono::Duration::days(1) + chrono::Duration::minutes(k as i64);
            tx.put(&Appointment {
                id: AppointmentId(Uuid::now_v7()),
                patient_id: *p,
                doctor_id: doctor_ids[0],
                site: "DEV".into(),
                start,
                end: start + chrono::Duration::minutes(20),
                status: AppointmentStatus::Completed,
                reason: None,
                notes: None,
                created_at: now,
                updated_at: now,
            })?;
        }
        Ok::<_, StoreError>(())
    })?;

    // Clinical entries, spread over everyone, recorded over the last two years.
    let t = Instant::now();
    let mut made = 0;
    while made < entries {
        let n = BATCH.min(entries - made);
        let mut batch = Vec::with_capacity(n);
        for k in made..made + n {
            // One entry in 200 goes to a typical sampled chart (about 50 each, plus its
            // share of the rest), one in 20 to a heavy one (about 5,000 each).
            let patient = if k % 200 == 0 && !typical.is_empty() {
                typical[(k / 200) % typical.len()]
            } else if k % 20 == 1 && !heavy.is_empty() {
                heavy[(k / 20) % heavy.len()]
            } else {
                patient_ids[(rng.next_u64() % patient_ids.len() as u64) as usize]
            };
            let at = now - chrono::Duration::minutes((rng.next_u64() % (2 * 365 * 24 * 60)) as i64);
            let details = match k % 5 {
                0 => Details::Note(Note {
                    text: "Seen for review. Plan: continue, review in four weeks.".into(),
                }),
                1 => Details::Vitals(Vitals {
                    systolic: Some(120 + (k % 30) as u16),
                    diastolic: Some(80),
                    pulse: Some(72),
                    temperature_c: Some(36.8),
                    weight_kg: Some(70.0),
                    height_cm: None,
                    spo2: Some(98),
                }),
                2 => Details::Diagnosis(Diagnosis {
                    code: "J45.9".into(),
                    text: "Asthma".into(),
                    status: if k % 2 == 0 {
                        ProblemStatus::Active
                    } else {
                        ProblemStatus::Resolved
                    },
                }),
                3 => Details::Prescription(Prescription {
                    drug: "Salbutamol".into(),
                    dose: "100 mcg".into(),
                    route: "inhaled".into(),
                    frequency: "as needed".into(),
                    duration_days: None,
                    quantity: Some(1),
                    status: MedicationStatus::Active,
                }),
                _ => Details::Note(Note {
                    text: "Telephone follow-up.".into(),
                }),
            };
            batch.push(MedicalRecord {
                id: MedicalRecordId(Uuid::now_v7()),
                patient_id: patient,
                site: "DEV".into(),
                details,
                recorded_at: at,
                author: "dr.clinic".into(),
                author_doctor_id: Some(doctor_ids[k % DOCTORS]),
                appointment_id: None,
                correction: None,
                created_at: at,
            });
        }
        store.write(now, |tx| {
            batch.iter().try_for_each(|e| tx.put(e))?;
            Ok::<_, StoreError>(())
        })?;
        made += n;
    }
    println!(
        "seeded {entries} clinical entries in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Invoices over the last year, newest day busiest-equal; three in four paid.
    let t = Instant::now();
    let kes = Currency::parse("KES")?;
    let days = 365;
    let mut made = 0;
    while made < invoices {
        let n = BATCH.min(invoices - made);
        let mut inv_batch = Vec::with_capacity(n);
        let mut pay_batch = Vec::with_capacity(n);
        for k in made..made + n {
            let day = (k % days) as i64;
            let at: DateTime<Utc> = (now - chrono::Duration::days(day))
                .date_naive()
                .and_time(NaiveTime::MIN)
                .and_utc()
                + chrono::Duration::seconds((rng.next_u64() % 86_000) as i64);
            let invoice = Invoice {
                id: InvoiceId(Uuid::now_v7()),
                number: billing_number(k),
                patient_id: patient_ids[(rng.next_u64() % patient_ids.len() as u64) as usize],
                site: "DEV".into(),
                currency: kes.clone(),
                lines: vec![InvoiceLine {
                    service_code: Some("CONSULT".into()),
                    description: "Consultation".into(),
                    quantity: 1,
                    unit_price: 150_000 + (k % 7) as i64 * 5_000,
                    discount: 0,
                    tax_rate: 1600,
                }],
                appointment_id: None,
                notes: None,
                issued_by: format!("desk{}", k % 4),
                issued_at: at,
            };
            if k % 4 != 0 {
                pay_batch.push(Payment {
                    id: PaymentId(Uuid::now_v7()),
                    invoice_id: invoice.id,
                    patient_id: invoice.patient_id,
                    site: "DEV".into(),
                    amount: invoice.totals().total,
                    currency: kes.clone(),
                    method: [
                        PaymentMethod::Cash,
                        PaymentMethod::MobileMoney,
                        PaymentMethod::Card,
                    ][k % 3],
                    reference: None,
                    received_by: invoice.issued_by.clone(),
                    received_at: at + chrono::Duration::minutes(5),
                });
            }
            inv_batch.push(invoice);
        }
        store.write(now, |tx| {
            inv_batch.iter().try_for_each(|i| tx.put(i))?;
            pay_batch.iter().try_for_each(|p| tx.put(p))?;
            Ok::<_, StoreError>(())
        })?;
        made += n;
    }
    println!(
        "seeded {invoices} invoices (three in four paid) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let stats = store.stats()?;
    println!(
        "database: {:.0} MiB, {} documents",
        stats.database_bytes as f64 / 1048576.0,
        stats.documents
    );
    Ok(Seeded {
        typical,
        heavy,
        doctor: doctor_ids[0],
        busiest_day: (now - chrono::Duration::days(1)).date_naive(),
    })
}

fn billing_number(k: usize) -> String {
    healsync_domain::billing::invoice_number("DEV", k as u64 + 1)
}

pub async fn run(
    node_bin: PathBuf,
    ops: usize,
    patients: usize,
    entries: usize,
    invoices: usize,
    repeat: usize,
    keep: Option<PathBuf>,
) -> Result<()> {
    if ops > 0 {
        writer_costs(ops).await?;
    }
    if patients == 0 {
        return Ok(());
    }
    // A kept data directory is seeded once and queried again on later runs.
    let temp = tempfile::tempdir()?;
    let dir = keep.unwrap_or_else(|| temp.path().to_path_buf());
    let marker = dir.join("bench-seeded.json");
    let fresh = !marker.exists();
    let seeded: Seeded = if fresh {
        let path = dir.clone();
        let seeded =
            tokio::task::spawn_blocking(move || seed_clinic(&path, patients, entries, invoices))
                .await??;
        std::fs::write(&marker, serde_json::to_vec(&seeded)?)?;
        seeded
    } else {
        println!("reusing the clinic seeded in {}", dir.display());
        serde_json::from_slice(&std::fs::read(&marker)?)?
    };
    let node = NodeProcess::start(&node_bin, &dir, &[]).await?;
    let admin = node.admin().await?;
    if fresh {
        admin
            .ok(
                "mutation($d: ID!) { createUser(input: {username: \"dr.clinic\", password: \"bench-password-1\", role: DOCTOR, doctorId: $d}) { id } }",
                json!({ "d": seeded.doctor.to_string() }),
            )
            .await?;
    }
    let doctor = node.gql().login("dr.clinic", "bench-password-1").await?;

    println!(
        "{:<48} {:>8} {:>8} {:>6}",
        "query (over HTTP)", "p50 ms", "p99 ms", "rows"
    );
    let chart = "query($p: ID!) { patient(id: $p) { clinicalSummary { activeProblems { id description } currentMedications { id description } allergies { id } lastVitals { id description } } medicalHistory(limit: 50) { id type recordedAt description current } } }";
    // The node records every chart read in its audit trail before answering; count
    // the events the typical reads leave, to time recording them alone below.
    let reads_so_far = || -> Result<i64> {
        let db = healsync_store::Connection::open(dir.join(healsync_store::DB_FILE))?;
        Ok(db.query_row(
            "SELECT count(*) FROM audit_log WHERE username = 'dr.clinic' AND access = 'READ'",
            [],
            |r| r.get(0),
        )?)
    };
    // (p50 of the read, events one read left), per kind of chart.
    let mut audited = Vec::new();
    for (what, group) in [
        ("summary + last 50 entries, typical chart", &seeded.typical),
        (
            "summary + last 50 entries, ~5,000-entry chart",
            &seeded.heavy,
        ),
    ] {
        let mut lat = Vec::with_capacity(repeat);
        let mut rows = 0;
        let before = reads_so_far()?;
        for i in 0..repeat {
            let p = group[i % group.len()].to_string();
            let t = Instant::now();
            let d = doctor.ok(chart, json!({ "p": p })).await?;
            lat.push(t.elapsed());
            rows = d["patient"]["medicalHistory"]
                .as_array()
                .map_or(0, Vec::len);
        }
        if rows == 0 {
            return Err(anyhow!(
                "the chart is empty: the doctor does not treat the patient?"
            ));
        }
        let events = ((reads_so_far()? - before) / repeat as i64) as usize;
        audited.push((what, pct(&mut lat, 0.5), events));
        println!(
            "{what:<48} {:>8.2} {:>8.2} {rows:>6}",
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99)
        );
    }

    let day = seeded.busiest_day.and_time(NaiveTime::MIN).and_utc();
    let report = "query($f: String!, $t: String!) { dayEndReport(from: $f, to: $t) { byMethod { key count amount { amount } } byCashier { key count amount { amount } } refunds { count } invoiced { count amount { amount } } voided { count } } }";
    let vars =
        json!({ "f": day.to_rfc3339(), "t": (day + chrono::Duration::days(1)).to_rfc3339() });
    let mut lat = Vec::with_capacity(repeat);
    let mut invoiced = 0;
    for _ in 0..repeat {
        let t = Instant::now();
        let d = admin.ok(report, vars.clone()).await?;
        lat.push(t.elapsed());
        invoiced = d["dayEndReport"]["invoiced"][0]["count"]
            .as_i64()
            .unwrap_or(0);
    }
    println!(
        "{:<48} {:>8.2} {:>8.2} {invoiced:>6}",
        "day-end cash report, one day (invoices that day)",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );

    let list =
        "{ invoices(limit: 50, status: [ISSUED]) { number total { amount } patient { name } } }";
    let mut lat = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let t = Instant::now();
        admin.ok(list, json!({})).await?;
        lat.push(t.elapsed());
    }
    println!(
        "{:<48} {:>8.2} {:>8.2} {:>6}",
        "unpaid invoices, newest 50 (with patient)",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        50
    );
    node.kill().await?;
    for (what, p50, events) in audited {
        audit_share(&dir, what, events, repeat, p50)?;
    }
    Ok(())
}

/// What recording one typical chart read's events costs the node on its own (the same
/// transaction the node commits before answering, on the same file), against the
/// chart read's p50 that includes it.
fn audit_share(
    dir: &std::path::Path,
    what: &str,
    events: usize,
    repeat: usize,
    chart_p50: f64,
) -> Result<()> {
    use healsync_domain::audit::{Access, Actor};
    use healsync_store::audit::{AuditContext, Reads, Touched};
    let store = Store::open(dir, None)?;
    let patient = PatientId(Uuid::now_v7());
    let batch = vec![Reads {
        who: AuditContext {
            actor: Actor {
                user_id: Some(UserId(Uuid::now_v7())),
                username: "dr.bench".into(),
                role: Some(Role::Doctor),
            },
            operation: "medicalHistory".into(),
            peer: Some("192.168.1.20".into()),
            reason: None,
        },
        access: Access::Read,
        records: (0..events)
            .map(|_| Touched {
                kind: "medical_record".into(),
                id: Uuid::now_v7(),
                patient: Some(patient),
            })
            .collect(),
    }];
    let mut lat = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let t = Instant::now();
        store.record_reads(Utc::now(), &batch)?;
        lat.push(t.elapsed());
    }
    let p50 = pct(&mut lat, 0.5);
    println!(
        "{:<48} {:>8.2} {:>8.2} {events:>6}",
        "recording one read's audit events, alone",
        p50,
        pct(&mut lat, 0.99)
    );
    println!(
        "  {what}: the audit is {:.1}% of the read's p50, {:.1}% over the read without it",
        100.0 * p50 / chart_p50,
        100.0 * p50 / (chart_p50 - p50).max(f64::EPSILON)
    );
    Ok(())
}
