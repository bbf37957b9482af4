//! The audit trail of health data at a real node: every write of a record about a
//! patient leaves a hash-chained event naming who did it, every read one naming who
//! was shown what through which field and from which address, every refusal one too;
//! an ADMIN reads them all, a PATIENT only those about themself, others nothing;
//! `healsync-node audit verify` finds an edited, deleted, reordered or forged event in
//! the SQLite file and names it.

use anyhow::Result;
use serde_json::{Value, json};

use healsync_test_support::{Ws, WsEvent};

use crate::{Clinic, SET_STATUS, binary};

const EVENTS: &str = "query($p: ID, $u: String, $f: String, $bg: Boolean = false, $l: Int = 50) { auditEvents(patientId: $p, username: $u, from: $f, breakGlass: $bg, limit: $l) { seq at username role site access kind recordId patientId operation peer reason } }";

fn events(d: &Value) -> Vec<Value> {
    d["auditEvents"].as_array().cloned().unwrap_or_default()
}

/// The events of one access kind (`READ`, `WRITE`, `REFUSED`).
fn only(all: &[Value], access: &str) -> Vec<Value> {
    all.iter()
        .filter(|e| e["access"] == access)
        .cloned()
        .collect()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_leave_a_chained_trail_that_only_admins_and_the_patient_read() -> Result<()> {
    let c = Clinic::start().await?;
    let amina = id(&c.patient("Amina Njeri").await?);
    let baraka = id(&c.patient("Baraka Otieno").await?);
    let visit = c.book_next(&amina).await?;
    c.admin
        .ok(SET_STATUS, json!({ "id": visit, "s": "CHECKED_IN" }))
        .await?;

    // The admin sees Amina's record, her appointment and its change, each by "admin".
    let hers = only(
        &events(&c.admin.ok(EVENTS, json!({ "p": amina, "l": 500 })).await?),
        "WRITE",
    );
    let kinds: Vec<&str> = hers.iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["patient", "appointment"] {
        assert!(kinds.contains(&kind), "{kind}: {hers:#?}");
    }
    let on_visit = hers
        .iter()
        .filter(|e| e["recordId"] == visit.as_str())
        .count();
    assert!(on_visit >= 2, "the booking and the check-in: {hers:#?}");
    for e in &hers {
        assert_eq!(e["patientId"], amina.as_str());
        assert_eq!(e["access"], "WRITE");
        assert_eq!(e["site"], "NBO");
        if e["kind"] == "patient" || e["kind"] == "appointment" {
            assert_eq!(
                (e["username"].as_str(), e["role"].as_str()),
                (Some("admin"), Some("ADMIN"))
            );
        }
    }
    // Newest first, numbered without gaps across the node.
    let seqs: Vec<i64> = hers.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    let all = events(&c.admin.ok(EVENTS, json!({ "l": 500 })).await?);
    let mut numbers: Vec<i64> = all.iter().filter_map(|e| e["seq"].as_i64()).collect();
    numbers.sort();
    assert_eq!(numbers, (1..=numbers.len() as i64).collect::<Vec<_>>());
    assert!(
        all.iter().any(|e| e["patientId"] == baraka.as_str()),
        "Baraka's registration: {all:#?}"
    );
    let by_admin = events(
        &c.admin
            .ok(EVENTS, json!({ "u": "ADMIN", "l": 500 }))
            .await?,
    );
    assert_eq!(
        by_admin.len(),
        all.iter().filter(|e| e["username"] == "admin").count()
    );
    let no_reasons = events(&c.admin.ok(EVENTS, json!({ "bg": true })).await?);
    assert!(no_reasons.is_empty(), "no break-glass yet: {no_reasons:#?}");

    // Amina reads who touched her records, and nothing about Baraka; the front desk and
    // the doctor read none of it.
    let phone = c.patient_login("amina", &amina).await?;
    let mine = events(&phone.ok(EVENTS, json!({ "l": 500 })).await?);
    assert_eq!(only(&mine, "WRITE").len(), hers.len(), "{mine:#?}");
    assert!(mine.iter().all(|e| e["patientId"] == amina.as_str()));
    let desk = c.user("front.desk", "RECEPTIONIST", json!({})).await?;
    let doctor = c
        .user("dr.kamau", "DOCTOR", json!({ "doctorId": c.doctor_id }))
        .await?;
    for (who, vars, code) in [
        (&phone, json!({ "p": baraka }), "FORBIDDEN"),
        (&desk, json!({}), "FORBIDDEN"),
        (&doctor, json!({ "p": amina }), "FORBIDDEN"),
        (&c.admin, json!({ "f": "yesterday" }), "BAD_USER_INPUT"),
        (&c.admin, json!({ "l": 0 }), "BAD_USER_INPUT"),
        (&c.admin, json!({ "p": "not-an-id" }), "BAD_USER_INPUT"),
        (&c.admin, json!({ "u": "a b" }), "BAD_USER_INPUT"),
    ] {
        let a = who.query(EVENTS, vars.clone()).await?;
        assert_eq!(a.code(), Some(code), "{vars}: {}", a.body);
        assert!(!a.body.to_string().contains("Amina"), "{}", a.body);
    }

    // The chain verifies while the node runs.
    let dir = c._dir.path().to_path_buf();
    verifies(&c).await?;
    let total = numbers.len();
    c.node.kill().await?;

    // Each kind of tampering, on its own copy of the stopped node's files, is found and
    // its first bad event named.
    let last = total + 1;
    let cases: [(&str, String, usize); 5] = [
        (
            "edit who",
            "UPDATE audit_log SET username = 'someone.else' WHERE seq = 2".into(),
            2,
        ),
        (
            "edit a hash",
            "UPDATE audit_log SET hash = zeroblob(32) WHERE seq = 3".into(),
            3,
        ),
        ("delete", "DELETE FROM audit_log WHERE seq = 2".into(), 2),
        (
            "swap two",
            "UPDATE audit_log SET seq = -1 WHERE seq = 2;
             UPDATE audit_log SET seq = 2 WHERE seq = 3;
             UPDATE audit_log SET seq = 3 WHERE seq = -1;"
                .into(),
            2,
        ),
        (
            "forge one",
            format!(
                "INSERT INTO audit_log SELECT {last}, at, user_id, username, role, site, access,
                   kind, record_id, patient_id, 'forged', peer, reason, hash
                 FROM audit_log WHERE seq = 1"
            ),
            last,
        ),
    ];
    for (what, sql, first_bad) in cases {
        let copy = tempfile::tempdir()?;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::copy(entry.path(), copy.path().join(entry.file_name()))?;
            }
        }
        let db = healsync_store::Connection::open(copy.path().join(healsync_store::DB_FILE))?;
        db.execute_batch(&sql)?;
        drop(db);
        let out = healsync_test_support::run(
            binary(),
            &[
                "audit",
                "verify",
                "--data-dir",
                copy.path().to_str().unwrap_or_default(),
            ],
            None,
        )
        .await?;
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{what}: {said}");
        assert!(
            said.contains(&format!("First bad event: {first_bad}.")),
            "{what}: {said}"
        );
    }
    Ok(())
}

/// The first event in `all` matching `what`, or a failure naming what was looked for.
fn find<'a>(all: &'a [Value], what: &str, matches: impl Fn(&Value) -> bool) -> &'a Value {
    all.iter()
        .find(|e| matches(e))
        .unwrap_or_else(|| panic!("no event for {what}: {all:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_refusals_leave_events_naming_the_reader_and_their_address() -> Result<()> {
    let c = Clinic::start().await?;
    let amina = id(&c.patient("Amina Njeri").await?);
    let visit = c.book_next(&amina).await?;
    let doctor = c
        .user("dr.kamau", "DOCTOR", json!({ "doctorId": c.doctor_id }))
        .await?;
    let other = c.doctor("Dr. Otieno Ouma", "Paediatrics").await?;
    let stranger = c
        .user("dr.ouma", "DOCTOR", json!({ "doctorId": other }))
        .await?;
    let desk = c.user("front.desk", "RECEPTIONIST", json!({})).await?;
    let entry = doctor
        .ok(
            "mutation($i: MedicalRecordInput!) { addMedicalRecord(input: $i) { id } }",
            json!({ "i": { "patientId": amina, "appointmentId": visit, "note": { "text": "Wheeze for two weeks." } } }),
        )
        .await?["addMedicalRecord"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // The treating doctor reads the chart through an alias and a fragment.
    doctor
        .ok(
            "query($p: ID!) { chart: patient(id: $p) { ...Chart } } fragment Chart on Patient { name medicalHistory { id description } }",
            json!({ "p": amina }),
        )
        .await?;
    // The front desk lists patients, and asks for what it may not see; a doctor who
    // does not treat Amina asks for her record.
    desk.ok("{ patients(limit: 10) { name } }", json!({}))
        .await?;
    let refused = [
        (
            &desk,
            "query($p: ID!) { patient(id: $p) { name allergies } }",
            "FORBIDDEN",
        ),
        (
            &stranger,
            "query($p: ID!) { patient(id: $p) { name medicalHistory { id } } }",
            "NOT_FOUND",
        ),
    ];
    for (who, query, code) in refused {
        let a = who.query(query, json!({ "p": amina })).await?;
        assert_eq!(a.code(), Some(code), "{}", a.body);
        assert!(!a.body.to_string().contains("Wheeze"), "{}", a.body);
    }

    let trail = events(&c.admin.ok(EVENTS, json!({ "p": amina, "l": 500 })).await?);
    let reads = only(&trail, "READ");
    let chart = find(&reads, "the doctor's read of the patient", |e| {
        e["username"] == "dr.kamau" && e["kind"] == "patient" && e["operation"] == "patient"
    });
    assert_eq!(chart["role"], "DOCTOR");
    assert_eq!(chart["recordId"], amina.as_str());
    assert_eq!(chart["peer"], "127.0.0.1", "{chart}");
    let history = find(&reads, "the doctor's read of the note", |e| {
        e["username"] == "dr.kamau" && e["operation"] == "medicalHistory"
    });
    assert_eq!(history["kind"], "medical_record");
    assert_eq!(history["recordId"], entry.as_str());
    find(&reads, "the front desk's list", |e| {
        e["username"] == "front.desk" && e["operation"] == "patients"
    });
    // The desk was shown Amina's name before the refusal of her allergies: both are in
    // the trail, and nothing of the stranger's request but the refusal.
    let refusals = only(&trail, "REFUSED");
    let desk_refused = find(&refusals, "the desk's refused allergies", |e| {
        e["username"] == "front.desk" && e["operation"] == "allergies"
    });
    assert_eq!(desk_refused["peer"], "127.0.0.1");
    find(&refusals, "the stranger's refused record", |e| {
        e["username"] == "dr.ouma" && e["operation"] == "patient" && e["kind"] == "patient"
    });
    assert!(
        !reads.iter().any(|e| e["username"] == "dr.ouma"),
        "the stranger was shown nothing: {reads:#?}"
    );

    // A subscription event is a read too, recorded before it is sent.
    let token = doctor.token.clone().unwrap_or_default();
    let mut ws = Ws::connect_with_token(&c.node.base, &token).await?;
    ws.subscribe(
        "mine",
        "subscription($p: ID!) { patientUpdated(id: $p) { id phone } }",
        json!({ "p": amina }),
    )
    .await?;
    // Until the subscription is listening, a change goes unseen: change the phone
    // until an event arrives (bounded).
    let mut seen = false;
    for n in 0..60 {
        c.admin
            .ok(
                "mutation($p: ID!, $ph: String!) { updatePatient(id: $p, input: {phone: $ph}) { id } }",
                json!({ "p": amina, "ph": format!("+2547000{n:05}") }),
            )
            .await?;
        if let Ok(event) = ws.next_event(std::time::Duration::from_millis(500)).await {
            let WsEvent::Next { payload, .. } = event else {
                panic!("the subscription failed: {event:?}");
            };
            assert_eq!(payload["data"]["patientUpdated"]["id"], amina.as_str());
            seen = true;
            break;
        }
    }
    assert!(seen, "no patientUpdated event");
    let trail = events(&c.admin.ok(EVENTS, json!({ "p": amina, "l": 500 })).await?);
    find(&only(&trail, "READ"), "the subscription's event", |e| {
        e["username"] == "dr.kamau" && e["operation"] == "patientUpdated"
    });

    // Reads join the same chain as writes: it verifies.
    verifies(&c).await
}

/// `healsync-node audit verify` beside the running node finds the chain intact.
async fn verifies(c: &Clinic) -> Result<()> {
    let data_dir = c._dir.path().to_str().unwrap_or_default().to_string();
    let out = c
        .node
        .run(&["audit", "verify", "--data-dir", &data_dir], None)
        .await?;
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success() && said.contains("intact"), "{said}");
    Ok(())
}

/// The hub's `audit verify` output for the hub's database.
async fn hub_verify(hub: &crate::TestHub) -> Result<(bool, String)> {
    let out = healsync_test_support::run(
        &hub.bin,
        &["audit", "verify", "--database-url", &hub.db.url],
        None,
    )
    .await?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_is_copied_to_the_hub_where_tampering_is_named() -> Result<()> {
    let hub = crate::TestHub::start("audit", &[("NBO", "Nairobi"), ("MSA", "Mombasa")]).await?;
    let dir = hub.enroll("NBO").await?;
    let d = dir.path().to_str().unwrap_or_default().to_string();
    let node = healsync_test_support::NodeProcess::start(
        binary(),
        dir.path(),
        &["--sync-interval", "3600"],
    )
    .await?;
    let c = Clinic::on(node, dir).await?;
    let amina = id(&c.patient("Amina Njeri").await?);
    c.book_next(&amina).await?;
    c.admin
        .ok(
            "query($p: ID!) { patient(id: $p) { name } }",
            json!({ "p": amina }),
        )
        .await?;
    let sync =
        crate::common::command(binary(), &["sync", "--data-dir", &d, "--json"], None).await?;
    // `serve`'s own first round may have shipped some of them already: what this
    // round shipped is counted, and the comparison below shows the hub has them all.
    let summary: Value = serde_json::from_str(&sync)?;
    assert!(summary["auditEventsShipped"].is_u64(), "{summary}");

    // The hub's copy is the node's chain: the same number of events, the same head.
    let at_node = c
        .node
        .run(&["audit", "verify", "--data-dir", &d], None)
        .await?;
    let at_node = String::from_utf8_lossy(&at_node.stdout).to_string();
    let head = at_node
        .split("head ")
        .nth(1)
        .map(|h| h.trim().trim_end_matches('.').to_string())
        .unwrap_or_default();
    assert_eq!(head.len(), 64, "{at_node}");
    let (ok, said) = hub_verify(&hub).await?;
    assert!(
        ok && said.contains("intact") && said.contains(&head),
        "{at_node}\n{said}"
    );
    assert!(said.starts_with("NBO node "), "{said}");

    // Central admins read the copied trail at the hub: an admin of every site sees
    // Amina's events with the node and the time they arrived; one limited to another
    // site sees none of them; FINANCE is refused.
    let hub_events = "query($p: ID, $s: String, $l: Int = 50) { auditEvents(patientId: $p, site: $s, limit: $l) { seq at receivedAt nodeId username role site access kind patientId operation peer } }";
    let central = hub.process.admin().await?;
    let seen = central
        .ok(hub_events, json!({ "p": amina, "l": 500 }))
        .await?;
    let seen = events(&seen);
    assert!(seen.len() >= 3, "{seen:#?}");
    assert!(
        seen.iter()
            .all(|e| e["patientId"] == amina.as_str() && e["site"] == "NBO")
    );
    let read = find(&seen, "the admin's read at the clinic", |e| {
        e["access"] == "READ" && e["operation"] == "patient" && e["username"] == "admin"
    });
    assert_eq!(read["peer"], "127.0.0.1");
    assert!(
        read["receivedAt"].is_string() && read["nodeId"].is_string(),
        "{read}"
    );
    let coast = hub.central("coast.admin", "ADMIN", "MSA").await?;
    let finance = hub.central("coast.finance", "FINANCE", "MSA").await?;
    let theirs = coast.ok(hub_events, json!({ "p": amina })).await?;
    assert!(events(&theirs).is_empty(), "{theirs}");
    let other = coast.query(hub_events, json!({ "s": "NBO" })).await?;
    assert_eq!(other.code(), Some("FORBIDDEN"), "{}", other.body);
    for (who, vars, code) in [
        (&finance, json!({}), "FORBIDDEN"),
        (&central, json!({ "l": 0 }), "BAD_USER_INPUT"),
        (&central, json!({ "p": "not-an-id" }), "BAD_USER_INPUT"),
    ] {
        let a = who.query(hub_events, vars.clone()).await?;
        assert_eq!(a.code(), Some(code), "{vars}: {}", a.body);
        assert!(!a.body.to_string().contains(&amina), "{}", a.body);
    }

    // A second round ships nothing again; new reads ship in the next.
    let again: Value = serde_json::from_str(
        &crate::common::command(binary(), &["sync", "--data-dir", &d, "--json"], None).await?,
    )?;
    assert_eq!(again["auditEventsShipped"], 0, "{again}");

    // Each kind of tampering with the hub's copy is found, and the first bad event named.
    let pool = sqlx::PgPool::connect(&hub.db.url).await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&pool)
        .await?;
    assert!(total >= 3);
    sqlx::query("CREATE TABLE audit_kept AS SELECT * FROM audit_events")
        .execute(&pool)
        .await?;
    for (what, tamper, first_bad) in [
        (
            "edit an event",
            "UPDATE audit_events SET event = set_byte(event, 40, get_byte(event, 40) # 1) WHERE seq = 2",
            2,
        ),
        (
            "edit who, in the column admins query",
            "UPDATE audit_events SET username = 'someone.else' WHERE seq = 3",
            3,
        ),
        (
            "edit a hash",
            "UPDATE audit_events SET hash = decode(repeat('00', 32), 'hex') WHERE seq = 3",
            3,
        ),
        ("delete", "DELETE FROM audit_events WHERE seq = 1", 1),
        (
            "renumber",
            "UPDATE audit_events SET seq = seq + 1000 WHERE seq = 2",
            2,
        ),
    ] {
        sqlx::query(tamper).execute(&pool).await?;
        let (ok, said) = hub_verify(&hub).await?;
        assert!(!ok, "{what}: {said}");
        assert!(
            said.contains(&format!("First bad event: {first_bad}.")),
            "{what}: {said}"
        );
        sqlx::query("DELETE FROM audit_events")
            .execute(&pool)
            .await?;
        sqlx::query("INSERT INTO audit_events SELECT * FROM audit_kept")
            .execute(&pool)
            .await?;
    }
    let (ok, said) = hub_verify(&hub).await?;
    assert!(ok, "restored: {said}");
    pool.close().await;
    hub.db.drop_database().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_opens_a_record_with_a_reason_flagged_and_the_admins_are_told() -> Result<()> {
    let c = Clinic::start().await?;
    let amina = id(&c.patient("Amina Njeri").await?);
    let baraka = id(&c.patient("Baraka Otieno").await?);
    let visit = c.book_next(&amina).await?;
    let treating = c
        .user("dr.kamau", "DOCTOR", json!({ "doctorId": c.doctor_id }))
        .await?;
    treating
        .ok(
            "mutation($i: MedicalRecordInput!) { addMedicalRecord(input: $i) { id } }",
            json!({ "i": { "patientId": amina, "appointmentId": visit, "allergy": { "substance": "Penicillin", "reaction": "Anaphylaxis", "severity": "SEVERE" } } }),
        )
        .await?;
    let other = c.doctor("Dr. Otieno Ouma", "Emergency").await?;
    let er = c
        .user("dr.ouma", "DOCTOR", json!({ "doctorId": other }))
        .await?;
    let desk = c.user("front.desk", "RECEPTIONIST", json!({})).await?;
    let chart =
        "query($p: ID!) { patient(id: $p) { name allergies medicalHistory { description } } }";
    let glass = "mutation($p: ID!, $r: String!) { breakGlass(patientId: $p, reason: $r) { patientId reason expiresAt } }";
    let why = "Unconscious in A&E, allergies unknown";

    // Outside their care the emergency doctor finds nothing.
    let before = er.query(chart, json!({ "p": amina })).await?;
    assert_eq!(before.code(), Some("NOT_FOUND"), "{}", before.body);
    assert!(!before.body.to_string().contains("Penicillin"));

    // Break-glass needs a clinician, a patient that exists and a real reason.
    for (who, p, reason, code) in [
        (&er, amina.as_str(), "urgent", "BAD_USER_INPUT"),
        (&er, "not-an-id", why, "BAD_USER_INPUT"),
        (
            &er,
            "00000000-0000-7000-8000-000000000000",
            why,
            "NOT_FOUND",
        ),
        (&desk, amina.as_str(), why, "FORBIDDEN"),
        (&c.admin, amina.as_str(), why, "FORBIDDEN"),
    ] {
        let a = who.query(glass, json!({ "p": p, "r": reason })).await?;
        assert_eq!(a.code(), Some(code), "{p} {reason}: {}", a.body);
    }

    let opened = er.ok(glass, json!({ "p": amina, "r": why })).await?;
    let until = opened["breakGlass"]["expiresAt"]
        .as_str()
        .unwrap_or_default();
    let until = chrono::DateTime::parse_from_rfc3339(until)?;
    let hours = (until.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    assert!((235..=240).contains(&hours), "about four hours: {opened}");

    // Now the record opens, for Amina only, and every read of it carries the reason.
    let seen = er.ok(chart, json!({ "p": amina })).await?;
    assert_eq!(
        seen["patient"]["allergies"],
        json!(["Penicillin"]),
        "{seen}"
    );
    assert!(
        seen.to_string().contains("Penicillin: Anaphylaxis"),
        "{seen}"
    );
    let still = er.query(chart, json!({ "p": baraka })).await?;
    assert_eq!(still.code(), Some("NOT_FOUND"), "{}", still.body);

    let flagged = events(
        &c.admin
            .ok(EVENTS, json!({ "p": amina, "bg": true, "l": 500 }))
            .await?,
    );
    find(&flagged, "the break-glass itself", |e| {
        e["kind"] == "break_glass" && e["access"] == "WRITE" && e["operation"] == "breakGlass"
    });
    for op in ["patient", "medicalHistory"] {
        let read = find(&flagged, op, |e| {
            e["access"] == "READ" && e["operation"] == op && e["username"] == "dr.ouma"
        });
        assert_eq!(read["reason"], why);
    }
    assert!(
        flagged
            .iter()
            .all(|e| e["username"] == "dr.ouma" && e["reason"] == why),
        "only the emergency doctor's accesses are flagged: {flagged:#?}"
    );
    // The treating doctor's reads carry no reason.
    treating.ok(chart, json!({ "p": amina })).await?;
    let theirs = events(
        &c.admin
            .ok(EVENTS, json!({ "u": "dr.kamau", "l": 500 }))
            .await?,
    );
    assert!(theirs.iter().all(|e| e["reason"].is_null()), "{theirs:#?}");

    // The site's administrators are told, by notification.
    let notices = c
        .admin
        .ok("{ notifications { type title body } }", json!({}))
        .await?;
    let notice = notices["notifications"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["type"] == "BREAK_GLASS"))
        .cloned()
        .unwrap_or_default();
    let body = notice["body"].as_str().unwrap_or_default();
    assert!(
        body.contains("dr.ouma") && body.contains("Amina Njeri") && body.contains(why),
        "{notices}"
    );
    verifies(&c).await
}
