//! Faults during sync, with real processes: the node, then the hub, SIGKILLed at random
//! moments twenty times each while a large sync runs (afterwards one clean round must
//! leave the hub holding every change of the node exactly once), and a flaky link that
//! drops, duplicates, delays and reorders datagrams. The seed is printed; set
//! `HEALSYNC_FAULT_SEED` to replay a run.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use healsync_test_support::seed::{self as records, Rng};
use healsync_test_support::{HubProcess, NodeProcess, TestDatabase, run};
use tokio::process::Command;

use crate::binary;
use crate::hub_binary;
use crate::sync::share_when_at_hub;

fn seed() -> u64 {
    let s = std::env::var("HEALSYNC_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    eprintln!("fault test seed: {s} (HEALSYNC_FAULT_SEED={s} replays it)");
    s | 1
}

async fn start_hub(
    hub: &std::path::Path,
    url: &str,
    data: &str,
    sync_port: u16,
) -> Result<HubProcess> {
    HubProcess::start(
        hub,
        url,
        std::path::Path::new(data),
        &format!("127.0.0.1:{sync_port}"),
    )
    .await
}

fn free_udp_port() -> Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A node data directory with the demo clinic's data (about 1,200 records), enrolled.
async fn seeded_enrolled_node(
    hub: &std::path::Path,
    url: &str,
    hub_data: &str,
    sync_addr: &str,
) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let node = NodeProcess::start(binary(), dir.path(), &["--demo"]).await?;
    if !node.terminate().await? {
        bail!("the seeding node did not stop cleanly");
    }
    let token = run(
        hub,
        &[
            "nodes",
            "token",
            "--site",
            "DEV",
            "--data-dir",
            hub_data,
            "--database-url",
            url,
        ],
        None,
    )
    .await?;
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let d = dir.path().to_str().unwrap_or_default();
    let out = run(
        binary(),
        &[
            "enroll",
            "--hub",
            sync_addr,
            "--token",
            &token,
            "--data-dir",
            d,
        ],
        None,
    )
    .await?;
    if !out.status.success() {
        bail!("enroll failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(dir)
}

/// Every local change of the node is at the hub, exactly once.
async fn assert_hub_holds_every_change_once(url: &str, node_dir: &std::path::Path) -> Result<()> {
    let d = node_dir.to_str().unwrap_or_default();
    let status: serde_json::Value = serde_json::from_slice(
        &run(binary(), &["status", "--data-dir", d, "--json"], None)
            .await?
            .stdout,
    )?;
    assert_eq!(status["changesWaitingToUpload"], 0, "{status}");
    let node_id: uuid::Uuid = status["nodeId"].as_str().unwrap_or_default().parse()?;
    let store = healsync_store::Store::open(node_dir, None)?;
    let local: Vec<Vec<u8>> = store
        .pending_upload(0, usize::MAX)?
        .into_iter()
        .map(|c| c.hash.to_vec())
        .collect();
    let pool = sqlx::PgPool::connect(url).await?;
    let at_hub: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT hash FROM changes WHERE origin_node = $1")
            .bind(node_id)
            .fetch_all(&pool)
            .await?;
    pool.close().await;
    assert_eq!(
        at_hub.len(),
        local.len(),
        "the hub holds each change once and none is missing"
    );
    let (mut a, mut b) = (at_hub, local);
    a.sort();
    b.sort();
    assert!(a == b, "the hub holds exactly the node's changes");
    Ok(())
}

/// A hub process on a fresh database with site DEV, and an enrolled DEV node holding
/// the demo clinic.
struct KillSetup {
    hub: std::path::PathBuf,
    db: TestDatabase,
    hub_dir: tempfile::TempDir,
    port: u16,
    hub_proc: Option<HubProcess>,
    node_dir: tempfile::TempDir,
}

impl KillSetup {
    async fn new(prefix: &str) -> Result<KillSetup> {
        let hub = hub_binary().await?;
        let db = TestDatabase::create(prefix).await?;
        let hub_dir = tempfile::tempdir()?;
        let hub_data = hub_dir.path().to_str().unwrap_or_default().to_string();
        run(
            &hub,
            &[
                "sites",
                "add",
                "DEV",
                "--name",
                "Dev clinic",
                "--database-url",
                &db.url,
            ],
            None,
        )
        .await?;
        let port = free_udp_port()?;
        let hub_proc = start_hub(&hub, &db.url, &hub_data, port).await?;
        let node_dir =
            seeded_enrolled_node(&hub, &db.url, &hub_data, &format!("127.0.0.1:{port}")).await?;
        Ok(KillSetup {
            hub,
            db,
            hub_dir,
            port,
            hub_proc: Some(hub_proc),
            node_dir,
        })
    }

    fn node(&self) -> String {
        self.node_dir
            .path()
            .to_str()
            .unwrap_or_default()
            .to_string()
    }

    /// More local work to upload, so the next round has changes in flight.
    fn more_work(&self, round: usize, rng: &mut Rng) -> Result<()> {
        let store = healsync_store::Store::open(self.node_dir.path(), None)?;
        records::patients(&store, "DEV", 10_000 + round * PER_ROUND, PER_ROUND, rng)?;
        Ok(())
    }

    fn spawn_sync(&self) -> Result<tokio::process::Child> {
        Ok(Command::new(binary())
            .args(["sync", "--data-dir", &self.node()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?)
    }

    /// One clean round, then: every change at the hub exactly once, the store intact.
    async fn finish(self) -> Result<()> {
        let d = self.node();
        let out = run(binary(), &["sync", "--data-dir", &d], None).await?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_hub_holds_every_change_once(&self.db.url, self.node_dir.path()).await?;
        let check = run(binary(), &["projections", "check", "--data-dir", &d], None).await?;
        assert!(
            check.status.success(),
            "the node's store survived the kills"
        );
        if let Some(hub) = self.hub_proc {
            hub.kill().await?;
        }
        self.db.drop_database().await?;
        Ok(())
    }
}

/// Patients added before each round: enough that a round takes a while to upload.
const PER_ROUND: usize = 1500;
const KILLS: usize = 20;
/// Hub-kill rounds in which the node's round is left to fail by itself.
const NATURAL_ENDS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_killed_twenty_times_during_sync_loses_and_duplicates_nothing() -> Result<()> {
    let mut rng = Rng(seed());
    let setup = KillSetup::new("killnode").await?;
    let (mut landed, mut rounds) = (0, 0);
    // Only kills that hit a running sync count; give up (and fail) after 3x the rounds.
    while landed < KILLS && rounds < KILLS * 3 {
        setup.more_work(rounds, &mut rng)?;
        rounds += 1;
        let mut sync = setup.spawn_sync()?;
        tokio::time::sleep(Duration::from_millis(50 + rng.next_u64() % 400)).await;
        if sync.try_wait()?.is_none() {
            landed += 1;
        }
        sync.kill().await?;
        let _ = sync.wait().await;
    }
    eprintln!("{landed} of {rounds} kills landed while a sync was running");
    assert_eq!(
        landed, KILLS,
        "the node must be killed mid-sync {KILLS} times"
    );
    setup.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_killed_twenty_times_during_sync_loses_and_duplicates_nothing() -> Result<()> {
    let mut rng = Rng(seed());
    let mut setup = KillSetup::new("killhub").await?;
    let hub_data = setup
        .hub_dir
        .path()
        .to_str()
        .unwrap_or_default()
        .to_string();
    let mut landed = 0;
    for round in 0..KILLS {
        setup.more_work(round, &mut rng)?;
        let mut sync = setup.spawn_sync()?;
        tokio::time::sleep(Duration::from_millis(50 + rng.next_u64() % 400)).await;
        if sync.try_wait()?.is_none() {
            landed += 1;
        }
        if let Some(hub) = setup.hub_proc.take() {
            hub.kill().await?;
        }
        if round < NATURAL_ENDS {
            // The node notices the hub is gone (QUIC idle timeout) and its round fails.
            tokio::time::timeout(Duration::from_secs(30), sync.wait())
                .await
                .context("a sync outlived its hub by 30 s")??;
        } else {
            // Harsher and faster: the stranded node process dies too.
            sync.kill().await?;
            let _ = sync.wait().await;
        }
        setup.hub_proc = Some(start_hub(&setup.hub, &setup.db.url, &hub_data, setup.port).await?);
    }
    eprintln!("{landed} of {KILLS} hub kills landed while a sync was running");
    setup.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_link_still_converges() -> Result<()> {
    use healsync_test_support::flaky::{Faults, FlakyLink};
    use std::sync::atomic::Ordering;
    let seed = seed();
    let hub = hub_binary().await?;
    let db = TestDatabase::create("flaky").await?;
    let hub_dir = tempfile::tempdir()?;
    let hub_data = hub_dir.path().to_str().unwrap_or_default().to_string();
    for (code, name) in [("DEV", "Dev clinic"), ("MSA", "Mombasa")] {
        run(
            &hub,
            &[
                "sites",
                "add",
                code,
                "--name",
                name,
                "--database-url",
                &db.url,
            ],
            None,
        )
        .await?;
    }
    let hub_proc = HubProcess::start(&hub, &db.url, hub_dir.path(), "127.0.0.1:0").await?;
    let link = FlakyLink::start(
        hub_proc.sync_addr.parse()?,
        seed,
        Faults {
            drop: 100,
            duplicate: 50,
            delay: 200,
            max_delay: Duration::from_millis(30),
        },
    )
    .await?;

    // Mombasa, on a good link, registers a patient that is shared with Dev.
    let msa_dir = tempfile::tempdir()?;
    let m = msa_dir.path().to_str().unwrap_or_default().to_string();
    let token = run(
        &hub,
        &[
            "nodes",
            "token",
            "--site",
            "MSA",
            "--data-dir",
            &hub_data,
            "--database-url",
            &db.url,
        ],
        None,
    )
    .await?;
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let out = run(
        binary(),
        &[
            "enroll",
            "--hub",
            &hub_proc.sync_addr,
            "--token",
            &token,
            "--data-dir",
            &m,
        ],
        None,
    )
    .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let msa = NodeProcess::start(binary(), msa_dir.path(), &["--sync-interval", "3600"]).await?;
    let created = msa
        .admin()
        .await?
        .ok(
            "mutation { createPatient(input: {name: \"Zawadi Mwangi\", email: \"zawadi@example.org\"}) { id } }",
            serde_json::json!({}),
        )
        .await?;
    let patient: uuid::Uuid = created["createPatient"]["id"]
        .as_str()
        .unwrap_or_default()
        .parse()?;
    assert!(msa.terminate().await?);
    let out = run(binary(), &["sync", "--data-dir", &m], None).await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    share_when_at_hub(&hub_proc.admin().await?, &patient.to_string(), "DEV").await?;

    // Dev enrolls and syncs over the flaky link: a whole clinic up, Mombasa's patient down.
    let dev_dir = seeded_enrolled_node(&hub, &db.url, &hub_data, &link.addr.to_string()).await?;
    let d = dev_dir.path().to_str().unwrap_or_default().to_string();
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        run(binary(), &["sync", "--data-dir", &d, "--json"], None),
    )
    .await
    .context("a sync over the flaky link hung")??;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats = &link.stats;
    eprintln!(
        "flaky link: {} forwarded, {} dropped, {} duplicated, {} delayed",
        stats.forwarded.load(Ordering::Relaxed),
        stats.dropped.load(Ordering::Relaxed),
        stats.duplicated.load(Ordering::Relaxed),
        stats.delayed.load(Ordering::Relaxed),
    );
    assert!(
        stats.dropped.load(Ordering::Relaxed) > 0
            && stats.duplicated.load(Ordering::Relaxed) > 0
            && stats.delayed.load(Ordering::Relaxed) > 0,
        "the link really misbehaved"
    );
    assert_hub_holds_every_change_once(&db.url, dev_dir.path()).await?;
    let heads = |dir: &std::path::Path| -> Result<Option<String>> {
        Ok(healsync_store::Store::open(dir, None)?.document_heads(patient)?)
    };
    let at_msa = heads(msa_dir.path())?;
    assert!(at_msa.is_some());
    assert_eq!(
        heads(dev_dir.path())?,
        at_msa,
        "Mombasa's patient reached Dev intact"
    );

    hub_proc.kill().await?;
    db.drop_database().await?;
    Ok(())
}
