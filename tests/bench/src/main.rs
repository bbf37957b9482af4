//! `healsync-bench`: benchmarks that print figures, run against a real `healsync-node`
//! process over real HTTP. Each run measures a baseline in the same run (an
//! authenticated no-op query) so results compare as ratios on a noisy machine.
//!
//! `cargo build --release -p healsync-node -p healsync-bench &&
//!  target/release/healsync-bench bookings`

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};
use healsync_test_support::{Gql, NodeProcess};
use serde_json::json;

#[derive(Parser)]
#[command(about = "HealSync benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Durable bookings per second over GraphQL (HTTP, one booking per request).
    Bookings {
        /// The node binary to measure.
        #[arg(long, default_value = "target/release/healsync-node")]
        node: PathBuf,
        #[arg(long, default_value_t = 2000)]
        bookings: usize,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value_t = 4)]
        doctors: usize,
    },
    /// Hub ingest: changes committed into PostgreSQL in upload batches (store level).
    HubIngest {
        /// The PostgreSQL server's maintenance database; a fresh database is created.
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        database_url: String,
        #[arg(long, default_value_t = 100_000)]
        changes: usize,
        #[arg(long, default_value_t = 5_000)]
        batch: usize,
    },
    /// A month offline caught up: `changes` local changes synced node -> hub over QUIC
    /// with mutual TLS (committed and acknowledged), then the hub's projections and a
    /// replacement node's download, timed in the same run.
    SyncCatchup {
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        database_url: String,
        #[arg(long, default_value_t = 100_000)]
        changes: usize,
    },
    /// What reading records from their projection rows costs: raw values, a mapper
    /// written by hand, and each kind's own `read`, in one run.
    Rows {
        #[arg(long, default_value_t = 20_000)]
        patients: usize,
        #[arg(long, default_value_t = 20_000)]
        invoices: usize,
        #[arg(long, default_value_t = 400)]
        repeat: usize,
    },
    /// What the GraphQL cost guard costs, in-process, with and without it in one run.
    Guard {
        #[arg(long, default_value_t = 1_000)]
        patients: usize,
        #[arg(long, default_value_t = 300)]
        repeat: usize,
    },
    /// The clinic day: writer time of a clinical entry, an invoice and a payment
    /// against a booking (in-process), then a patient's chart and the day-end report
    /// over GraphQL on a large seeded clinic (`--patients 0` skips that part).
    ClinicDay {
        #[arg(long, default_value = "target/release/healsync-node")]
        node: PathBuf,
        /// Writes of each kind timed in the first part.
        #[arg(long, default_value_t = 500)]
        ops: usize,
        #[arg(long, default_value_t = 100_000)]
        patients: usize,
        #[arg(long, default_value_t = 2_000_000)]
        entries: usize,
        #[arg(long, default_value_t = 1_000_000)]
        invoices: usize,
        #[arg(long, default_value_t = 300)]
        repeat: usize,
        /// Seed the clinic into this directory once and reuse it on later runs.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// The hub at an organisation's scale: sites' records uploaded through the hub's
    /// ingest and folded (both timed), then central admins' queries: a patient search
    /// by name prefix, one patient with appointments across sites, a year's billing
    /// roll-up by site x month.
    HubScale {
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        database_url: String,
        #[arg(long, default_value_t = 50)]
        sites: usize,
        #[arg(long, default_value_t = 2_000_000)]
        patients: usize,
        #[arg(long, default_value_t = 10_000_000)]
        appointments: usize,
        #[arg(long, default_value_t = 1_000_000)]
        invoices: usize,
        #[arg(long, default_value_t = 200)]
        repeat: usize,
        /// Seed into this database once (created on the server) and reuse it later.
        #[arg(long)]
        keep: Option<String>,
    },
    /// Query latency on a large clinic: seeds patients and appointments through the
    /// store's write path (documents, change log, projections; 1,000 records per
    /// transaction), then times searches and lists over GraphQL.
    Scale {
        #[arg(long, default_value = "target/release/healsync-node")]
        node: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        patients: usize,
        #[arg(long, default_value_t = 1_000_000)]
        appointments: usize,
        /// Timed repetitions of each query.
        #[arg(long, default_value_t = 200)]
        repeat: usize,
    },
}

struct Run {
    count: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn per_sec(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }
    fn print(&self, what: &str) {
        println!(
            "{what:<28} {:>6} ops in {:>6.2} s = {:>8.0} ops/s   p50 {:>6.2} ms   p99 {:>6.2} ms",
            self.count,
            self.elapsed.as_secs_f64(),
            self.per_sec(),
            self.pct(0.50).as_secs_f64() * 1e3,
            self.pct(0.99).as_secs_f64() * 1e3,
        );
    }
}

/// Runs `count` operations with `concurrency` in flight; `op(i)` performs the i-th.
async fn drive<F, Fut>(count: usize, concurrency: usize, op: F) -> Result<Run>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(lat);
                }
                let t = Instant::now();
                op(i).await?;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    for t in tasks {
        latencies.extend(t.await??);
    }
    Ok(Run {
        count,
        elapsed: start.elapsed(),
        latencies,
    })
}

const ALL_WEEK: &str = "[{weekday: MON, start: \"00:00\", end: \"23:55\"}, {weekday: TUE, start: \"00:00\", end: \"23:55\"}, {weekday: WED, start: \"00:00\", end: \"23:55\"}, {weekday: THU, start: \"00:00\", end: \"23:55\"}, {weekday: FRI, start: \"00:00\", end: \"23:55\"}, {weekday: SAT, start: \"00:00\", end: \"23:55\"}, {weekday: SUN, start: \"00:00\", end: \"23:55\"}]";

async fn bookings(
    node_bin: PathBuf,
    bookings: usize,
    concurrency: usize,
    doctors: usize,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = NodeProcess::start(&node_bin, dir.path(), &[])
        .await
        .context("start the node")?;
    let admin = node.admin().await?;
    println!(
        "node: {}  bookings: {bookings}  concurrency: {concurrency}  doctors: {doctors}",
        node_bin.display()
    );

    // Baseline: an authenticated query that touches no table.
    let a = admin.clone();
    let baseline = drive(bookings, concurrency, move |_| {
        let a = a.clone();
        async move { a.ok("{ me { id } }", json!({})).await.map(|_| ()) }
    })
    .await?;
    baseline.print("baseline: me query");

    // Doctors with 5-minute slots all week, and their next free slots.
    let mut slots: Vec<Vec<String>> = Vec::new();
    let mut doctor_ids = Vec::new();
    for i in 0..doctors {
        let d = admin
            .ok("mutation($n: String!) { createDoctor(input: {name: $n, specializations: [\"General practice\"], licenceNumber: \"B-1\"}) { id } }", json!({ "n": format!("Dr. Bench {i}") }))
            .await?;
        let id = d["createDoctor"]["id"]
            .as_str()
            .ok_or_else(|| anyhow!("no id"))?
            .to_string();
        admin
            .ok(&format!("mutation($d: ID!) {{ setSchedule(input: {{doctorId: $d, slotMinutes: 5, weekly: {ALL_WEEK}}}) {{ id }} }}"), json!({ "d": id }))
            .await?;
        let free = admin
            .ok("query($d: ID!, $to: String) { doctor(id: $d) { availableSlots(to: $to, limit: 1000) { start } } }", json!({ "d": id, "to": (chrono::Utc::now() + chrono::Duration::days(60)).to_rfc3339() }))
            .await?;
        slots.push(
            free["doctor"]["availableSlots"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|s| s["start"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        );
        doctor_ids.push(id);
    }
    let per_doctor = bookings.div_ceil(doctors);
    if slots.iter().any(|s| s.len() < per_doctor) {
        return Err(anyhow!("not enough free slots; use more doctors"));
    }

    // One patient per booking, so that no booking is refused for a busy patient.
    let a = admin.clone();
    let registered = Arc::new(std::sync::Mutex::new(vec![String::new(); bookings]));
    let reg = registered.clone();
    let registrations = drive(bookings, concurrency, move |i| {
        let (a, reg) = (a.clone(), reg.clone());
        async move {
            let d = a
                .ok("mutation($n: String!, $e: String!) { createPatient(input: {name: $n, email: $e, phone: \"+254 712 000 111\", dateOfBirth: \"1990-01-01\"}) { id } }", json!({ "n": format!("Bench Patient {i}"), "e": format!("p{i}@bench.example") }))
                .await?;
            let id = d["createPatient"]["id"].as_str().unwrap_or_default().to_string();
            reg.lock().map_err(|_| anyhow!("poisoned"))?[i] = id;
            Ok(())
        }
    })
    .await?;
    registrations.print("register patient (durable)");

    let patients: Arc<Vec<String>> =
        Arc::new(registered.lock().map_err(|_| anyhow!("poisoned"))?.clone());
    let (slots, doctor_ids) = (Arc::new(slots), Arc::new(doctor_ids));
    let a: Gql = admin.clone();
    let booked = drive(bookings, concurrency, move |i| {
        let (a, patients, slots, doctor_ids) = (a.clone(), patients.clone(), slots.clone(), doctor_ids.clone());
        async move {
            let d = i % doctor_ids.len();
            let at = &slots[d][i / doctor_ids.len()];
            a.ok(
                "mutation($p: ID!, $d: ID!, $at: String!) { bookAppointment(input: {patientId: $p, doctorId: $d, scheduledAt: $at}) { id } }",
                json!({ "p": patients[i], "d": doctor_ids[d], "at": at }),
            )
            .await
            .map(|_| ())
        }
    })
    .await?;
    booked.print("book appointment (durable)");
    println!(
        "booking cost relative to the baseline query: {:.1}x (throughput ratio)",
        baseline.per_sec() / booked.per_sec()
    );
    node.kill().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Bookings {
            node,
            bookings: n,
            concurrency,
            doctors,
        } => bookings(node, n, concurrency, doctors).await,
        Command::Scale {
            node,
            patients,
            appointments,
            repeat,
        } => scale::run(node, patients, appointments, repeat).await,
        Command::HubScale {
            database_url,
            sites,
            patients,
            appointments,
            invoices,
            repeat,
            keep,
        } => {
            let size = hubscale::Size {
                sites,
                patients,
                appointments,
                invoices,
            };
            hubscale::run(database_url, size, repeat, keep).await
        }
        Command::HubIngest {
            database_url,
            changes,
            batch,
        } => ingest::run(database_url, changes, batch).await,
        Command::SyncCatchup {
            database_url,
            changes,
        } => catchup::run(database_url, changes).await,
        Command::Guard { patients, repeat } => guard::run(patients, repeat).await,
        Command::Rows {
            patients,
            invoices,
            repeat,
        } => rows::run(patients, invoices, repeat),
        Command::ClinicDay {
            node,
            ops,
            patients,
            entries,
            invoices,
            repeat,
            keep,
        } => clinic::run(node, ops, patients, entries, invoices, repeat, keep).await,
    }
}

mod catchup;
mod clinic;
mod guard;
mod hubscale;
mod ingest;
mod rows;
mod scale;
