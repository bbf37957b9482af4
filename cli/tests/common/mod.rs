//! What the node's acceptance tests and security tests share: the binaries under test
//! and a clinic with an admin session and a doctor.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use healsync_test_support::{Gql, NodeProcess, Ws, WsEvent};
use serde_json::{Value, json};

pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_healsync-node"))
}

/// A running node with an admin session, one doctor whose schedule covers every day,
/// and helpers to make more records.
pub struct Clinic {
    pub node: NodeProcess,
    pub admin: Gql,
    pub doctor_id: String,
    pub _dir: tempfile::TempDir,
}

pub const ALL_WEEK: &str = r#"[
  {weekday: MON, start: "00:00", end: "23:40"}, {weekday: TUE, start: "00:00", end: "23:40"},
  {weekday: WED, start: "00:00", end: "23:40"}, {weekday: THU, start: "00:00", end: "23:40"},
  {weekday: FRI, start: "00:00", end: "23:40"}, {weekday: SAT, start: "00:00", end: "23:40"},
  {weekday: SUN, start: "00:00", end: "23:40"}]"#;

impl Clinic {
    pub async fn start() -> Result<Clinic> {
        let dir = tempfile::tempdir()?;
        let node = NodeProcess::start(binary(), dir.path(), &["--site", "NBO"]).await?;
        Clinic::on(node, dir).await
    }

    /// The clinic of a node already running on `dir` (say, one enrolled with a hub).
    pub async fn on(node: NodeProcess, dir: tempfile::TempDir) -> Result<Clinic> {
        let admin = node.admin().await?;
        let mut clinic = Clinic {
            node,
            admin,
            doctor_id: String::new(),
            _dir: dir,
        };
        clinic.doctor_id = clinic
            .doctor("Dr. Wanjiru Kamau", "General practice")
            .await?;
        Ok(clinic)
    }

    /// Creates a doctor with a 20-minute schedule covering every day; returns the id.
    pub async fn doctor(&self, name: &str, specialization: &str) -> Result<String> {
        let d = self
            .admin
            .ok(
                "mutation($n: String!, $s: String!) { createDoctor(input: {name: $n, specializations: [$s], licenceNumber: \"KMPDC-1\"}) { id } }",
                json!({ "n": name, "s": specialization }),
            )
            .await?;
        let id = d["createDoctor"]["id"]
            .as_str()
            .ok_or_else(|| anyhow!("no id"))?
            .to_string();
        self.admin
            .ok(
                &format!("mutation($d: ID!) {{ setSchedule(input: {{doctorId: $d, slotMinutes: 20, weekly: {ALL_WEEK}}}) {{ id }} }}"),
                json!({ "d": id }),
            )
            .await?;
        Ok(id)
    }

    pub async fn patient(&self, name: &str) -> Result<Value> {
        let email = format!("{}@example.org", name.to_lowercase().replace(' ', "."));
        let d = self
            .admin
            .ok(
                "mutation($n: String!, $e: String!) { createPatient(input: {name: $n, email: $e, phone: \"+254 712 000 111\", dateOfBirth: \"1984-03-01\", allergies: [\"Penicillin\"]}) { id mrn name } }",
                json!({ "n": name, "e": email }),
            )
            .await?;
        Ok(d["createPatient"].clone())
    }

    /// The doctor's next `n` free slot starts.
    pub async fn slots(&self, doctor_id: &str, n: usize) -> Result<Vec<String>> {
        let d = self
            .admin
            .ok(
                "query($d: ID!) { doctor(id: $d) { availableSlots { start end } } }",
                json!({ "d": doctor_id }),
            )
            .await?;
        let slots: Vec<String> = d["doctor"]["availableSlots"]
            .as_array()
            .ok_or_else(|| anyhow!("no slots"))?
            .iter()
            .filter_map(|s| s["start"].as_str().map(String::from))
            .take(n)
            .collect();
        if slots.len() < n {
            return Err(anyhow!("only {} free slots", slots.len()));
        }
        Ok(slots)
    }

    /// An account made by the admin (`link`: `{"doctorId": ..}` or `{"patientId": ..}`
    /// or `{}`), logged in.
    pub async fn user(&self, name: &str, role: &str, link: Value) -> Result<Gql> {
        let mut input =
            json!({ "username": name, "password": "long-enough-password", "role": role });
        if let (Some(i), Some(l)) = (input.as_object_mut(), link.as_object()) {
            i.extend(l.clone());
        }
        self.admin
            .ok(
                "mutation($i: UserInput!) { createUser(input: $i) { id } }",
                json!({ "i": input }),
            )
            .await?;
        self.node.gql().login(name, "long-enough-password").await
    }

    /// Books the patient with the clinic's doctor at the next free slot; the
    /// appointment's id.
    pub async fn book_next(&self, patient_id: &str) -> Result<String> {
        let slot = self.slots(&self.doctor_id, 1).await?;
        let booked = self
            .admin
            .ok(
                BOOK,
                json!({ "p": patient_id, "d": self.doctor_id, "at": slot[0] }),
            )
            .await?;
        Ok(booked["bookAppointment"]["id"]
            .as_str()
            .ok_or_else(|| anyhow!("no appointment"))?
            .to_string())
    }

    /// A PATIENT login for the given patient record.
    pub async fn patient_login(&self, username: &str, patient_id: &str) -> Result<Gql> {
        self.admin
            .ok(
                "mutation($u: String!, $p: ID!) { createUser(input: {username: $u, password: \"patient-password\", role: PATIENT, patientId: $p}) { id } }",
                json!({ "u": username, "p": patient_id }),
            )
            .await?;
        self.node.gql().login(username, "patient-password").await
    }
}

pub const BOOK: &str = "mutation($p: ID!, $d: ID!, $at: String!) { bookAppointment(input: {patientId: $p, doctorId: $d, scheduledAt: $at, reason: \"Consultation\"}) { id status scheduledAt endsAt patient { name } doctor { name } } }";

pub const SET_STATUS: &str = "mutation($id: ID!, $s: AppointmentStatus!) { updateAppointmentStatus(id: $id, status: $s) { id status } }";

/// The hub binary, built when it is missing or older than the sources it is built from
/// (it belongs to another package, so `cargo test -p healsync-node` alone would
/// otherwise run a stale one; a workspace run has just built it and builds nothing).
pub async fn hub_binary() -> Result<PathBuf> {
    let path = binary().with_file_name("healsync-hub");
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let stale = match built {
        None => true,
        Some(at) => ["hub", "sync", "schema", "node/auth", "Cargo.lock"]
            .iter()
            .any(|p| newer_than(&root.join(p), at)),
    };
    if stale {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = tokio::process::Command::new(cargo)
            .args(["build", "-q", "-p", "healsync-hub"])
            .status()
            .await?;
        if !status.success() {
            bail!("could not build healsync-hub");
        }
    }
    Ok(path)
}

/// Whether any file at or below `path` was modified after `at`.
fn newer_than(path: &Path, at: std::time::SystemTime) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if meta.is_file() {
        return meta.modified().is_ok_and(|m| m > at);
    }
    std::fs::read_dir(path).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name() != "target" && newer_than(&e.path(), at))
    })
}

/// A `healsync-hub serve` process on a database of its own, with sites registered, and
/// the commands that enroll clinic data directories with it.
pub struct TestHub {
    pub process: healsync_test_support::HubProcess,
    pub bin: PathBuf,
    pub db: healsync_test_support::TestDatabase,
    pub dir: tempfile::TempDir,
}

impl TestHub {
    /// Registers `sites` (code, name) and starts serving.
    pub async fn start(prefix: &str, sites: &[(&str, &str)]) -> Result<TestHub> {
        let bin = hub_binary().await?;
        let db = healsync_test_support::TestDatabase::create(prefix).await?;
        let dir = tempfile::tempdir()?;
        for (code, name) in sites {
            command(
                &bin,
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
        let process =
            healsync_test_support::HubProcess::start(&bin, &db.url, dir.path(), "127.0.0.1:0")
                .await?;
        Ok(TestHub {
            process,
            bin,
            db,
            dir,
        })
    }

    /// A central account of `role` limited to `sites` (comma-separated), logged in.
    pub async fn central(&self, name: &str, role: &str, sites: &str) -> Result<Gql> {
        let args = [
            "users",
            "add",
            name,
            "--role",
            role,
            "--sites",
            sites,
            "--database-url",
            &self.db.url,
        ];
        command(&self.bin, &args, Some("long-enough-password\n")).await?;
        self.process.gql().login(name, "long-enough-password").await
    }

    /// A new clinic data directory enrolled for `site`.
    pub async fn enroll(&self, site: &str) -> Result<tempfile::TempDir> {
        let data = self.dir.path().to_str().unwrap_or_default();
        let token = command(
            &self.bin,
            &[
                "nodes",
                "token",
                "--site",
                site,
                "--data-dir",
                data,
                "--database-url",
                &self.db.url,
            ],
            None,
        )
        .await?;
        let dir = tempfile::tempdir()?;
        let d = dir.path().to_str().unwrap_or_default();
        let addr = &self.process.sync_addr;
        command(
            binary(),
            &[
                "enroll",
                "--hub",
                addr,
                "--token",
                token.trim(),
                "--data-dir",
                d,
            ],
            None,
        )
        .await?;
        Ok(dir)
    }
}

/// Runs a command that must succeed; returns its standard output.
pub async fn command(bin: &Path, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let out = healsync_test_support::run(bin, args, stdin).await?;
    if !out.status.success() {
        bail!(
            "{} {args:?} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// The stand-in mail relay and SMS gateway (`tests/message_sinks.py`): a real SMTP
/// server and an HTTP endpoint on loopback that record every message they accept.
pub struct Sinks {
    child: tokio::process::Child,
    pub smtp_port: u16,
    pub http_port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

/// What the sinks received: one entry per message accepted.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Received {
    pub channel: String,
    pub key: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    pub to: Value,
}

impl Sinks {
    /// Starts the sinks; `delay_ms` slows each accepted message; the gateway wants
    /// `auth` as its Authorization header.
    pub async fn start(delay_ms: u64, auth: &str) -> Result<Sinks> {
        use tokio::io::AsyncBufReadExt;
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or_else(|| anyhow!("no workspace"))?
            .to_path_buf();
        let python = std::env::var("HEALSYNC_TEST_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join("target/test-python/bin/python"));
        if !python.exists() {
            bail!(
                "{} is missing: run tests/ensure-message-sinks.sh (tests/run.sh does)",
                python.display()
            );
        }
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("received.jsonl");
        let mut child = tokio::process::Command::new(&python)
            .arg(root.join("tests/message_sinks.py"))
            .arg("--out")
            .arg(&out)
            .arg("--delay-ms")
            .arg(delay_ms.to_string())
            .arg("--auth")
            .arg(auth)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .map_err(|_| anyhow!("the sinks did not start"))??
            .ok_or_else(|| anyhow!("the sinks exited"))?;
        let ports: Vec<u16> = line
            .strip_prefix("ready ")
            .ok_or_else(|| anyhow!("unexpected {line:?}"))?
            .split(' ')
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()?;
        Ok(Sinks {
            child,
            smtp_port: ports[0],
            http_port: ports[1],
            out,
            _dir: dir,
        })
    }

    /// The node flags that deliver to these sinks.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--smtp-url".into(),
            format!("smtp://127.0.0.1:{}", self.smtp_port),
            "--mail-from".into(),
            "Nairobi Clinic <clinic@example.org>".into(),
            "--sms-url".into(),
            format!("http://127.0.0.1:{}/send", self.http_port),
            "--outbox-poll-ms".into(),
            "100".into(),
        ]
    }

    /// Everything received so far.
    pub fn received(&self) -> Result<Vec<Received>> {
        let text = match std::fs::read_to_string(&self.out) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e.into()),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| Ok(serde_json::from_str(l)?))
            .collect()
    }

    /// Waits (at most `secs`) until `done` holds of what was received.
    pub async fn until(
        &self,
        secs: u64,
        done: impl Fn(&[Received]) -> bool,
    ) -> Result<Vec<Received>> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let got = self.received()?;
            if done(&got) {
                return Ok(got);
            }
            if std::time::Instant::now() > deadline {
                bail!("not received within {secs} s; got {got:#?}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Sinks {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Polls `probe` (every 200 ms, 60 s at most) until it returns `Some`: for state that
/// arrives by sync, where no event tells a test it is there.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(found) = probe().await? {
            return Ok(found);
        }
        if std::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The error a refused subscription answers with (as `next` with errors and no data,
/// or as `error`); an event instead fails the test.
pub async fn subscription_refusal(ws: &mut Ws) -> Result<Value> {
    match ws.next_event(std::time::Duration::from_secs(30)).await? {
        WsEvent::Error { payload, .. } => Ok(payload[0].clone()),
        WsEvent::Next { payload, .. } if payload["data"].is_null() => {
            Ok(payload["errors"][0].clone())
        }
        other => bail!("the subscription was not refused: {other:?}"),
    }
}
