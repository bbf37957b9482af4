//! The scale benchmark: a clinic with 100,000 patients and 1,000,000 appointments.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use chrono::{DateTime, NaiveTime, Utc};
use healsync_domain::*;
use healsync_store::Store;
use healsync_test_support::NodeProcess;
use healsync_test_support::seed::{self, Rng};
use serde_json::{Value, json};
use uuid::Uuid;

const DOCTORS: usize = 100;
const BATCH: usize = 1000;

fn seed(
    dir: &std::path::Path,
    patients: usize,
    appointments: usize,
) -> Result<(Vec<PatientId>, Vec<DoctorId>)> {
    let store = Store::open(dir, None)?;
    let now = Utc::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let doctor_ids: Vec<DoctorId> = (0..DOCTORS).map(|_| DoctorId(Uuid::now_v7())).collect();
    store.write(now, |tx| {
        for (i, id) in doctor_ids.iter().enumerate() {
            tx.put(&Doctor {
                id: *id,
                name: format!("Dr. Scale {i:03}"),
                specializations: vec!["General practice".into()],
                licence_number: format!("S-{i}"),
                email: None,
                phone: None,
                active: true,
                created_at: now,
                updated_at: now,
            })?;
        }
        Ok::<_, healsync_store::StoreError>(())
    })?;
    let t = Instant::now();
    let patient_ids = seed::patients(&store, "DEV", 0, patients, &mut rng)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "seeded {patients} patients in {secs:.1} s ({:.0}/s, {BATCH} per transaction)",
        patients as f64 / secs
    );

    // Appointments: each doctor 14 slots of 20 minutes a day, going back from today.
    let t = Instant::now();
    let today = Utc::now().date_naive();
    let mut made = 0;
    while made < appointments {
        let n = BATCH.min(appointments - made);
        let mut batch = Vec::with_capacity(n);
        for k in made..made + n {
            let doctor = k % DOCTORS;
            let slot = k / DOCTORS;
            let day = today - chrono::Duration::days((slot / 14) as i64);
            let start: DateTime<Utc> = day.and_time(NaiveTime::MIN).and_utc()
                + chrono::Duration::hours(8)
                + chrono::Duration::minutes(20 * (slot % 14) as i64);
            batch.push(Appointment {
                id: AppointmentId(Uuid::now_v7()),
                patient_id: patient_ids[(rng.next_u64() % patient_ids.len() as u64) as usize],
                doctor_id: doctor_ids[doctor],
                site: "DEV".into(),
                start,
                end: start + chrono::Duration::minutes(20),
                status: AppointmentStatus::Completed,
                reason: Some("Consultation".into()),
                notes: None,
                created_at: now,
                updated_at: now,
            });
        }
        store.write(now, |tx| {
            for a in &batch {
                tx.put(a)?;
            }
            Ok::<_, healsync_store::StoreError>(())
        })?;
        made += n;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "seeded {appointments} appointments in {secs:.1} s ({:.0}/s)",
        appointments as f64 / secs
    );
    let stats = store.stats()?;
    println!(
        "database: {:.0} MiB, {} documents",
        stats.database_bytes as f64 / 1048576.0,
        stats.documents
    );
    Ok((patient_ids, doctor_ids))
}

pub async fn run(
    node_bin: PathBuf,
    patients: usize,
    appointments: usize,
    repeat: usize,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_path_buf();
    let (patient_ids, doctor_ids) =
        tokio::task::spawn_blocking(move || seed(&path, patients, appointments)).await??;
    let node = NodeProcess::start(&node_bin, dir.path(), &[]).await?;
    let admin = node.admin().await?;
    let today = Utc::now().date_naive().to_string();
    let last = patients.saturating_sub(1);
    let queries: Vec<(&str, &str, Value)> = vec![
        (
            "search name prefix",
            "query($q: String) { patients(search: $q, limit: 20) { id name mrn } }",
            json!({ "q": "amin otie" }),
        ),
        (
            "search exact MRN",
            "query($q: String) { patients(search: $q, limit: 20) { id } }",
            json!({ "q": format!("DEV-{:06}", last) }),
        ),
        (
            "search phone digits",
            "query($q: String) { patients(search: $q, limit: 20) { id } }",
            json!({ "q": "2547123" }),
        ),
        (
            "search date of birth",
            "query($d: String) { patients(dateOfBirth: $d, limit: 20) { id } }",
            json!({ "d": "1984-05-05" }),
        ),
        (
            "patients page, deep offset",
            "query($o: Int!) { patients(limit: 50, offset: $o) { id name } }",
            json!({ "o": patients / 2 }),
        ),
        (
            "patient + appointments",
            "query($id: ID!) { patient(id: $id) { name appointments { scheduledAt doctor { name } } } }",
            json!({ "id": patient_ids[patients / 2].to_string() }),
        ),
        (
            "day list, one doctor",
            "query($d: String, $doc: ID) { appointments(date: $d, doctorId: $doc) { scheduledAt patient { name } } }",
            json!({ "d": today, "doc": doctor_ids[0].to_string() }),
        ),
        (
            "day list, whole clinic",
            "query($d: String) { appointments(date: $d, limit: 500) { scheduledAt patient { name } doctor { name } } }",
            json!({ "d": today }),
        ),
    ];
    println!(
        "{:<26} {:>9} {:>9} {:>9}",
        "query (over HTTP)", "p50 ms", "p99 ms", "rows"
    );
    for (name, q, vars) in queries {
        let mut lat: Vec<Duration> = Vec::with_capacity(repeat);
        let mut rows = 0;
        for _ in 0..repeat {
            let t = Instant::now();
            let data = admin.ok(q, vars.clone()).await?;
            lat.push(t.elapsed());
            rows = data
                .as_object()
                .and_then(|o| o.values().next())
                .map(|v| v.as_array().map_or(1, Vec::len))
                .unwrap_or(0);
        }
        lat.sort();
        let pct =
            |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
        println!(
            "{name:<26} {:>9.2} {:>9.2} {:>9}",
            pct(0.5),
            pct(0.99),
            rows
        );
        if rows == 0 && !name.contains("phone") {
            return Err(anyhow!("{name} found nothing"));
        }
    }
    node.kill().await?;
    Ok(())
}
