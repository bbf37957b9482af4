//! Integration tests of `healsync-node` as users meet it: a real process, a real SQLite
//! file, real HTTP and real graphql-transport-ws WebSocket clients.

mod access;
mod architecture;
mod bad_input;
mod faults;
mod process;
mod scheduling;
mod sync;

use std::path::Path;

use anyhow::{Result, anyhow};
use healsync_test_support::{Gql, NodeProcess};
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
    _dir: tempfile::TempDir,
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
