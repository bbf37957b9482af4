//! Finding 2: trust across sites, and who may read or write what inside one. A
//! clinic's accounts never log in at the hub; a patient of another clinic comes only
//! with evidence; a doctor cannot make their own care relationships; writing a field
//! needs the right to read it.

use anyhow::Result;
use healsync_test_support::{Gql, NodeProcess};
use serde_json::{Value, json};

use crate::{BOOK, Clinic, SET_STATUS, TestHub, binary, command, leaks_nothing};

/// A hub on its own database with Nairobi and Mombasa enrolled and serving; the
/// nodes sync when told to (`sync`), so every step is deterministic.
struct TwoClinics {
    hub: TestHub,
    nbo: NodeProcess,
    msa: NodeProcess,
    _dirs: Vec<tempfile::TempDir>,
}

impl TwoClinics {
    async fn start(prefix: &str) -> Result<TwoClinics> {
        let hub = TestHub::start(prefix, &[("NBO", "Nairobi"), ("MSA", "Mombasa")]).await?;
        let (nbo_dir, msa_dir) = (hub.enroll("NBO").await?, hub.enroll("MSA").await?);
        let quiet = ["--sync-interval", "3600"];
        let nbo = NodeProcess::start(binary(), nbo_dir.path(), &quiet).await?;
        let msa = NodeProcess::start(binary(), msa_dir.path(), &quiet).await?;
        Ok(TwoClinics {
            hub,
            nbo,
            msa,
            _dirs: vec![nbo_dir, msa_dir],
        })
    }

    async fn sync(&self, node: &NodeProcess) -> Result<()> {
        let d = node.data_dir.to_str().unwrap_or_default();
        command(binary(), &["sync", "--data-dir", d, "--json"], None).await?;
        Ok(())
    }

    /// Syncs both clinics until the hub has folded what they sent (bounded).
    async fn settle(&self) -> Result<()> {
        for _ in 0..2 {
            self.sync(&self.nbo).await?;
            self.sync(&self.msa).await?;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        Ok(())
    }
}

const LOGIN: &str =
    "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinic_account_is_never_a_central_admin_and_patients_move_only_with_evidence()
-> Result<()> {
    let _load = crate::beside().await;
    let sites = TwoClinics::start("security_trust").await?;
    let nbo_admin = sites.nbo.admin().await?;
    // A clinic ADMIN made at Nairobi's node, and one made by the hub for Nairobi.
    nbo_admin
        .ok(
            "mutation { createUser(input: {username: \"clinic.boss\", password: \"clinic-boss-password\", role: ADMIN}) { id } }",
            json!({}),
        )
        .await?;
    command(
        &sites.hub.bin,
        &[
            "users",
            "add",
            "nbo.admin",
            "--role",
            "ADMIN",
            "--site",
            "NBO",
            "--database-url",
            &sites.hub.db.url,
        ],
        Some("nbo-admin-password\n"),
    )
    .await?;
    let amina = nbo_admin
        .ok(
            "mutation { createPatient(input: {name: \"Amina Njoroge\", email: \"amina@example.org\", dateOfBirth: \"1984-03-01\", allergies: [\"Penicillin\"]}) { id mrn } }",
            json!({}),
        )
        .await?;
    let mrn = amina["createPatient"]["mrn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    sites.settle().await?;

    let hub = sites.hub.process.gql();
    for (user, password) in [
        ("clinic.boss", "clinic-boss-password"),
        ("nbo.admin", "nbo-admin-password"),
        // Nairobi's own first admin has the test password, like the hub's; the hub's
        // login is the hub's account, not the clinic's.
    ] {
        let a = hub
            .query(LOGIN, json!({ "u": user, "p": password }))
            .await?;
        assert_eq!(a.code(), Some("UNAUTHENTICATED"), "{user}: {}", a.body);
        leaks_nothing(user, &a.body, &["token\":\"ey"]);
    }
    let central = sites.hub.process.admin().await?;
    let who = central.ok("{ me }", json!({})).await?;
    assert!(who.to_string().contains("admin"), "{who}");

    // Mombasa's front desk guesses: the number with a wrong date of birth, and a
    // number that does not exist, get the same answer, and nothing arrives.
    let msa_admin = sites.msa.admin().await?;
    let ask = "mutation($m: String!, $d: String!) { requestPatient(mrn: $m, dateOfBirth: $d) { id status } }";
    msa_admin
        .ok(ask, json!({ "m": mrn, "d": "1990-01-01" }))
        .await?;
    msa_admin
        .ok(ask, json!({ "m": "NBO-000777", "d": "1984-03-01" }))
        .await?;
    sites.settle().await?;
    let answers = msa_admin
        .ok(
            "{ patientRequests { mrn status answer patient { name } } }",
            json!({}),
        )
        .await?;
    let list = answers["patientRequests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(list.len(), 2, "{answers}");
    for r in &list {
        assert_eq!(r["status"], "NOT_FOUND", "{answers}");
        assert!(r["patient"].is_null());
    }
    let seen = msa_admin
        .ok("{ patients(search: \"Amina\") { name } }", json!({}))
        .await?;
    assert_eq!(seen["patients"], json!([]), "{seen}");
    leaks_nothing("guessed request", &answers, &["Amina", "Penicillin"]);

    // With the date of birth the patient gives, the record comes.
    msa_admin
        .ok(ask, json!({ "m": mrn, "d": "1984-03-01" }))
        .await?;
    sites.settle().await?;
    sites.settle().await?;
    let arrived = msa_admin
        .ok("{ patients(search: \"Amina\") { name } }", json!({}))
        .await?;
    assert_eq!(arrived["patients"][0]["name"], "Amina Njoroge", "{arrived}");
    // Nairobi sees who took a copy of its patient.
    let told = nbo_admin
        .ok("{ notifications { type title body } }", json!({}))
        .await?;
    let shared: Vec<&Value> = told["notifications"]
        .as_array()
        .map(|l| l.iter().filter(|n| n["type"] == "PATIENT_SHARED").collect())
        .unwrap_or_default();
    assert_eq!(shared.len(), 1, "{told}");
    assert!(
        shared[0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("MSA")),
        "{told}"
    );

    let TwoClinics { hub, nbo, msa, .. } = sites;
    drop((nbo, msa));
    let TestHub { process, db, .. } = hub;
    drop(process);
    db.drop_database().await?;
    Ok(())
}

/// (role, operation, expected code) over one clinic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doctor_cannot_widen_their_care_and_the_front_desk_cannot_write_clinical_fields()
-> Result<()> {
    let _load = crate::beside().await;
    let clinic = Clinic::start().await?;
    let admin = &clinic.admin;
    // Dr. Kamau's account; a patient she has never seen.
    admin
        .ok(
            "mutation($d: ID!) { createUser(input: {username: \"kamau\", password: \"doctor-password\", role: DOCTOR, doctorId: $d}) { id } }",
            json!({ "d": clinic.doctor_id }),
        )
        .await?;
    admin
        .ok(
            "mutation { createUser(input: {username: \"desk\", password: \"desk-password\", role: RECEPTIONIST}) { id } }",
            json!({}),
        )
        .await?;
    let doctor = clinic.node.gql().login("kamau", "doctor-password").await?;
    let desk = clinic.node.gql().login("desk", "desk-password").await?;
    let stranger = clinic.patient("Baraka Otieno").await?;
    let sid = stranger["id"].as_str().unwrap_or_default().to_string();
    let slots = clinic.slots(&clinic.doctor_id, 2).await?;

    // The doctor books the stranger into her own schedule: refused.
    let booked = doctor
        .query(
            BOOK,
            json!({ "p": sid, "d": clinic.doctor_id, "at": slots[0] }),
        )
        .await?;
    assert_eq!(booked.code(), Some("FORBIDDEN"), "{}", booked.body);
    leaks_nothing(
        "doctor booking a stranger",
        &booked.body,
        &["Baraka", "Penicillin"],
    );

    // The front desk books and cancels: that made no care relationship.
    let b = desk
        .ok(
            BOOK,
            json!({ "p": sid, "d": clinic.doctor_id, "at": slots[1] }),
        )
        .await?;
    let appt = b["bookAppointment"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    desk.ok(SET_STATUS, json!({ "id": appt, "s": "CANCELLED" }))
        .await?;
    let reads: Vec<(&str, Gql, String, Value, &str)> = vec![
        (
            "the patient by id",
            doctor.clone(),
            "query($p: ID!) { patient(id: $p) { name allergies } }".into(),
            json!({ "p": sid }),
            "NOT_FOUND",
        ),
        (
            "allergies through a cancelled appointment",
            doctor.clone(),
            "{ appointments(status: CANCELLED) { patient { allergies } } }".into(),
            json!({}),
            "FORBIDDEN",
        ),
        (
            "the patient list",
            doctor.clone(),
            "{ patients { name allergies } }".into(),
            json!({}),
            "",
        ),
        (
            "the front desk clearing allergies",
            desk.clone(),
            "mutation($p: ID!) { updatePatient(id: $p, input: {allergies: []}) { name } }".into(),
            json!({ "p": sid }),
            "FORBIDDEN",
        ),
        (
            "the front desk registering allergies",
            desk.clone(),
            "mutation { createPatient(input: {name: \"Zawadi\", email: \"z@example.org\", allergies: [\"Latex\"]}) { id } }".into(),
            json!({}),
            "FORBIDDEN",
        ),
    ];
    for (what, who, query, vars, code) in reads {
        let a = who.query(&query, vars).await?;
        if code.is_empty() {
            assert!(a.code().is_none(), "{what}: {}", a.body);
        } else {
            assert_eq!(a.code(), Some(code), "{what}: {}", a.body);
        }
        leaks_nothing(what, &a.body, &["Penicillin"]);
        if what == "the patient list" {
            leaks_nothing(what, &a.body, &["Baraka"]);
        }
    }
    // Nothing was written by the refused edits.
    let after = admin
        .ok(
            "query($p: ID!) { patient(id: $p) { allergies } }",
            json!({ "p": sid }),
        )
        .await?;
    assert_eq!(after["patient"]["allergies"], json!(["Penicillin"]));
    let zawadi = admin
        .ok("{ patients(search: \"Zawadi\") { id } }", json!({}))
        .await?;
    assert_eq!(zawadi["patients"], json!([]));

    // A real booking by the front desk makes the doctor her doctor, and then she may
    // book the follow-up herself.
    let more = clinic.slots(&clinic.doctor_id, 2).await?;
    desk.ok(
        BOOK,
        json!({ "p": sid, "d": clinic.doctor_id, "at": more[0] }),
    )
    .await?;
    let chart = doctor
        .ok(
            "query($p: ID!) { patient(id: $p) { allergies } }",
            json!({ "p": sid }),
        )
        .await?;
    assert_eq!(chart["patient"]["allergies"], json!(["Penicillin"]));
    doctor
        .ok(
            BOOK,
            json!({ "p": sid, "d": clinic.doctor_id, "at": more[1] }),
        )
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clinical_content_never_reaches_an_administrator_at_the_clinic_or_the_hub() -> Result<()> {
    let _load = crate::beside().await;
    let hub = TestHub::start("security_clinical", &[("NBO", "Nairobi")]).await?;
    let dir = hub.enroll("NBO").await?;
    let node = NodeProcess::start(binary(), dir.path(), &["--sync-interval", "3600"]).await?;
    let clinic = Clinic::on(node, dir).await?;
    let amina = clinic.patient("Amina Njoroge").await?;
    let slot = clinic.slots(&clinic.doctor_id, 1).await?;
    clinic
        .admin
        .ok(
            BOOK,
            json!({ "p": amina["id"], "d": clinic.doctor_id, "at": slot[0] }),
        )
        .await?;
    clinic
        .admin
        .ok(
            "mutation($d: ID!) { createUser(input: {username: \"dr.kamau\", password: \"doctor-password-1\", role: DOCTOR, doctorId: $d}) { id } }",
            json!({ "d": clinic.doctor_id }),
        )
        .await?;
    let doctor = clinic
        .node
        .gql()
        .login("dr.kamau", "doctor-password-1")
        .await?;
    let written = doctor
        .ok(
            "mutation($p: ID!) { addMedicalRecord(input: {patientId: $p, prescription: {drug: \"Salbutamol\", dose: \"100 mcg\", route: \"inhaled\", frequency: \"as needed\"}}) { id } }",
            json!({ "p": amina["id"] }),
        )
        .await?;
    let entry = written["addMedicalRecord"]["id"].clone();
    let secrets = ["Salbutamol", "100 mcg", "inhaled"];

    // The clinic's administrator: no history, no entry.
    let history = clinic
        .admin
        .query(
            "query($p: ID!) { patient(id: $p) { medicalHistory { description } } }",
            json!({ "p": amina["id"] }),
        )
        .await?;
    assert_eq!(history.code(), Some("FORBIDDEN"), "{}", history.body);
    leaks_nothing("a clinic admin's history", &history.body, &secrets);
    let one = clinic
        .admin
        .query(
            "query($id: ID!) { medicalRecord(id: $id) { description } }",
            json!({ "id": entry }),
        )
        .await?;
    assert_eq!(one.code(), Some("NOT_FOUND"), "{}", one.body);
    leaks_nothing("a clinic admin's entry", &one.body, &secrets);

    // The entry reaches the hub (it replicates like every record)...
    let d = clinic.node.data_dir.to_str().unwrap_or_default();
    command(binary(), &["sync", "--data-dir", d, "--json"], None).await?;
    let pool = sqlx::PgPool::connect(&hub.db.url).await?;
    let mut folded = 0i64;
    for _ in 0..100 {
        folded = sqlx::query_scalar(
            "SELECT count(*) FROM documents WHERE kind = 'medical_record' AND doc_id::text = $1",
        )
        .bind(entry.as_str().unwrap_or_default())
        .fetch_one(&pool)
        .await?;
        if folded == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    pool.close().await;
    assert_eq!(folded, 1, "the hub folded the entry");
    // ...and its central admins read none of it through the generic views.
    let central = hub.process.admin().await?;
    for (what, query, code) in [
        (
            "records of the clinical kind",
            "{ records(kind: \"medical_record\") { fields } }",
            Some("FORBIDDEN"),
        ),
        (
            "the entry by id",
            "query($id: ID!) { record(id: $id) { fields } }",
            None,
        ),
        (
            "the patients' history",
            "{ patients { name medicalHistory { id recordedAt } } }",
            Some("FORBIDDEN"),
        ),
    ] {
        let answer = central.query(query, json!({ "id": entry })).await?;
        assert_eq!(answer.code(), code, "{what}: {}", answer.body);
        leaks_nothing(what, &answer.body, &secrets);
    }
    let by_id = central
        .ok(
            "query($id: ID!) { record(id: $id) { fields } }",
            json!({ "id": entry }),
        )
        .await?;
    assert_eq!(
        by_id["record"],
        Value::Null,
        "a clinical entry looks missing"
    );
    drop(clinic);
    let TestHub { process, db, .. } = hub;
    drop(process);
    db.drop_database().await?;
    Ok(())
}
