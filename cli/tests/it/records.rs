//! Medical records as clinic staff and patients meet them over real HTTP and
//! WebSocket: who reads and writes which entries, the append-only guarantee, the
//! summary, bad input, and live updates.

use std::time::Duration;

use anyhow::{Result, anyhow};
use healsync_test_support::{Gql, Ws, WsEvent};
use serde_json::{Value, json};

use crate::Clinic;

const ADD: &str = "mutation($i: MedicalRecordInput!) { addMedicalRecord(input: $i) { id type current description } }";
const HISTORY: &str = "query($p: ID!) { patient(id: $p) { medicalHistory(limit: 500) { id type current correctedBy correction { kind of reason } description } } }";
const SUMMARY: &str = "query($p: ID!) { patient(id: $p) { clinicalSummary { activeProblems { diagnosis { code status } } currentMedications { prescription { drug prescriber } } allergies { allergy { substance severity } } lastVitals { vitals { systolic diastolic pulse } } } } }";

/// Everyone a clinic has: its admin, front desk, a treating doctor, a doctor who does
/// not treat the patient, the patient, and another patient.
struct People {
    admin: Gql,
    desk: Gql,
    doctor: Gql,
    stranger: Gql,
    amina: Gql,
    brian: Gql,
    amina_id: String,
    brian_id: String,
    visit: String,
}

async fn people(c: &Clinic) -> Result<People> {
    let amina = c.patient("Amina Njoroge").await?;
    let brian = c.patient("Brian Otieno").await?;
    let amina_id = amina["id"].as_str().unwrap_or_default().to_string();
    let brian_id = brian["id"].as_str().unwrap_or_default().to_string();
    let other_doctor = c.doctor("Dr. Otieno Ouma", "Paediatrics").await?;
    let visit = c.book_next(&amina_id).await?;
    Ok(People {
        admin: c.admin.clone(),
        desk: c.user("nurse.joy", "RECEPTIONIST", json!({})).await?,
        doctor: c
            .user("dr.kamau", "DOCTOR", json!({ "doctorId": c.doctor_id }))
            .await?,
        stranger: c
            .user("dr.ouma", "DOCTOR", json!({ "doctorId": other_doctor }))
            .await?,
        amina: c
            .user("amina", "PATIENT", json!({ "patientId": amina_id }))
            .await?,
        brian: c
            .user("brian", "PATIENT", json!({ "patientId": brian_id }))
            .await?,
        amina_id,
        brian_id,
        visit,
    })
}

fn id_of(v: &Value) -> String {
    v["addMedicalRecord"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The treating doctor writes one entry of every type; returns their ids by type.
async fn full_chart(p: &People) -> Result<Vec<(String, String)>> {
    let base = json!({ "patientId": p.amina_id, "appointmentId": p.visit });
    let with = |extra: Value| {
        let mut i = base.clone();
        if let (Some(i), Some(e)) = (i.as_object_mut(), extra.as_object()) {
            i.extend(e.clone());
        }
        json!({ "i": i })
    };
    let mut ids = vec![];
    for (ty, details) in [
        (
            "NOTE",
            json!({ "note": { "text": "Wheeze for two weeks.\nPlan: inhaler, review in 4 weeks." } }),
        ),
        (
            "DIAGNOSIS",
            json!({ "diagnosis": { "code": "j45.9", "text": "Asthma" } }),
        ),
        (
            "PRESCRIPTION",
            json!({ "prescription": { "drug": "Salbutamol", "dose": "100 mcg", "route": "inhaled", "frequency": "as needed", "quantity": 1 } }),
        ),
        (
            "LAB_ORDER",
            json!({ "labOrder": { "testCode": "718-7", "testName": "Haemoglobin" } }),
        ),
        (
            "ALLERGY",
            json!({ "allergy": { "substance": "Penicillin", "reaction": "Rash", "severity": "MODERATE" } }),
        ),
        (
            "VITALS",
            json!({ "vitals": { "systolic": 128, "diastolic": 82, "pulse": 76, "temperatureC": 36.8, "spo2": 97 } }),
        ),
    ] {
        let r = p.doctor.ok(ADD, with(details)).await?;
        assert_eq!(r["addMedicalRecord"]["type"], ty);
        ids.push((ty.to_string(), id_of(&r)));
    }
    let order = ids[3].1.clone();
    let r = p
        .doctor
        .ok(
            ADD,
            with(json!({ "labResult": { "orderId": order, "testCode": "718-7", "testName": "Haemoglobin", "value": "10.1", "unit": "g/dL", "referenceRange": "12-16", "abnormal": true, "status": "FINAL" } })),
        )
        .await?;
    ids.push(("LAB_RESULT".into(), id_of(&r)));
    Ok(ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_reads_and_writes_exactly_what_it_may() -> Result<()> {
    let c = Clinic::start().await?;
    let p = people(&c).await?;
    let chart = full_chart(&p).await?;
    let entry = chart[2].1.clone(); // the prescription
    // Words that appear only in the chart: no refused answer may carry them.
    let secrets = ["Salbutamol", "Asthma", "J45", "Haemoglobin", "Wheeze"];

    #[derive(Debug)]
    enum Want {
        Allowed,
        Refused(&'static str),
    }
    use Want::*;
    let read_history = (HISTORY, json!({ "p": p.amina_id }));
    let read_summary = (SUMMARY, json!({ "p": p.amina_id }));
    let read_entry = (
        "query($id: ID!) { medicalRecord(id: $id) { id prescription { drug } } }",
        json!({ "id": entry }),
    );
    let write_note = (
        ADD,
        json!({ "i": { "patientId": p.amina_id, "note": { "text": "Seen." } } }),
    );
    let retract = (
        "mutation($id: ID!) { retractMedicalRecord(id: $id, reason: \"entered in error\") { id } }",
        json!({ "id": entry }),
    );
    let write_for_stranger = (
        ADD,
        json!({ "i": { "patientId": p.brian_id, "note": { "text": "Seen." } } }),
    );
    let cases: Vec<(&str, &Gql, (&str, Value), Want)> = vec![
        (
            "doctor reads history",
            &p.doctor,
            read_history.clone(),
            Allowed,
        ),
        (
            "doctor reads summary",
            &p.doctor,
            read_summary.clone(),
            Allowed,
        ),
        (
            "doctor reads an entry",
            &p.doctor,
            read_entry.clone(),
            Allowed,
        ),
        ("doctor writes", &p.doctor, write_note.clone(), Allowed),
        (
            "doctor writes for a patient not in care",
            &p.doctor,
            write_for_stranger.clone(),
            Refused("NOT_FOUND"),
        ),
        (
            "patient reads own history",
            &p.amina,
            read_history.clone(),
            Allowed,
        ),
        (
            "patient reads own summary",
            &p.amina,
            read_summary.clone(),
            Allowed,
        ),
        (
            "patient reads own entry",
            &p.amina,
            read_entry.clone(),
            Allowed,
        ),
        (
            "patient writes",
            &p.amina,
            write_note.clone(),
            Refused("FORBIDDEN"),
        ),
        (
            "patient retracts",
            &p.amina,
            retract.clone(),
            Refused("FORBIDDEN"),
        ),
        (
            "another patient reads history",
            &p.brian,
            read_history.clone(),
            Refused("NOT_FOUND"),
        ),
        (
            "another patient reads an entry",
            &p.brian,
            read_entry.clone(),
            Refused("NOT_FOUND"),
        ),
        (
            "another doctor reads history",
            &p.stranger,
            read_history.clone(),
            Refused("NOT_FOUND"),
        ),
        (
            "another doctor reads an entry",
            &p.stranger,
            read_entry.clone(),
            Refused("NOT_FOUND"),
        ),
        (
            "another doctor writes",
            &p.stranger,
            write_note.clone(),
            Refused("NOT_FOUND"),
        ),
        (
            "another doctor retracts",
            &p.stranger,
            retract.clone(),
            Refused("NOT_FOUND"),
        ),
        (
            "front desk reads history",
            &p.desk,
            read_history.clone(),
            Refused("FORBIDDEN"),
        ),
        (
            "front desk reads summary",
            &p.desk,
            read_summary.clone(),
            Refused("FORBIDDEN"),
        ),
        (
            "front desk reads an entry",
            &p.desk,
            read_entry.clone(),
            Refused("NOT_FOUND"),
        ),
        (
            "front desk writes",
            &p.desk,
            write_note.clone(),
            Refused("FORBIDDEN"),
        ),
        (
            "admin reads history",
            &p.admin,
            read_history.clone(),
            Refused("FORBIDDEN"),
        ),
        (
            "admin reads an entry",
            &p.admin,
            read_entry.clone(),
            Refused("NOT_FOUND"),
        ),
        (
            "admin writes",
            &p.admin,
            write_note.clone(),
            Refused("FORBIDDEN"),
        ),
        (
            "admin retracts",
            &p.admin,
            retract.clone(),
            Refused("FORBIDDEN"),
        ),
        (
            "front desk through the appointment list",
            &p.desk,
            (
                "{ appointments { patient { medicalHistory { description } } } }",
                json!({}),
            ),
            Refused("FORBIDDEN"),
        ),
        (
            "another doctor through an alias and a fragment",
            &p.stranger,
            (
                "query($id: ID!) { x: medicalRecord(id: $id) { ...F } } fragment F on MedicalRecord { prescription { drug } }",
                json!({ "id": entry }),
            ),
            Refused("NOT_FOUND"),
        ),
    ];
    for (what, who, (query, vars), want) in cases {
        let answer = who.query(query, vars).await?;
        match want {
            Allowed => {
                answer.data().map_err(|e| anyhow!("{what}: {e}"))?;
            }
            Refused(code) => {
                assert_eq!(answer.code(), Some(code), "{what}: {}", answer.body);
                let text = answer.body.to_string();
                for s in secrets {
                    assert!(!text.contains(s), "{what}: {s} leaked in {text}");
                }
            }
        }
    }

    // The summary is what is current.
    let s = p.doctor.ok(SUMMARY, json!({ "p": p.amina_id })).await?;
    let s = &s["patient"]["clinicalSummary"];
    assert_eq!(
        s["activeProblems"],
        json!([{ "diagnosis": { "code": "J45.9", "status": "ACTIVE" } }])
    );
    assert_eq!(
        s["currentMedications"],
        json!([{ "prescription": { "drug": "Salbutamol", "prescriber": "dr.kamau" } }])
    );
    // The doctor's entry, then the one registration recorded from the intake list.
    assert_eq!(
        s["allergies"],
        json!([
            { "allergy": { "substance": "Penicillin", "severity": "MODERATE" } },
            { "allergy": { "substance": "Penicillin", "severity": "UNKNOWN" } },
        ])
    );
    assert_eq!(
        s["lastVitals"]["vitals"],
        json!({ "systolic": 128, "diastolic": 82, "pulse": 76 })
    );

    // A final lab result tells the patient.
    let bell = p.amina.ok("{ notifications { type } }", json!({})).await?;
    assert!(
        bell["notifications"]
            .as_array()
            .is_some_and(|l| l.iter().any(|n| n["type"] == "LAB_RESULT_FINAL")),
        "{bell}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_clinical_is_edited_or_deleted_and_corrections_show_both() -> Result<()> {
    let c = Clinic::start().await?;
    let p = people(&c).await?;
    let chart = full_chart(&p).await?;
    let (note, diagnosis, prescription) = (&chart[0].1, &chart[1].1, &chart[2].1);
    let history = |who: &Gql| {
        let who = who.clone();
        let amina = p.amina_id.clone();
        async move {
            let h = who.ok(HISTORY, json!({ "p": amina })).await?;
            anyhow::Ok(
                h["patient"]["medicalHistory"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            )
        }
    };
    let before = history(&p.doctor).await?;
    // The seven written by the doctor, and the intake list's allergy from registration.
    assert_eq!(before.len(), 8);

    // No mutation of the API edits or deletes an entry: the only ones that touch
    // medical records append.
    let schema = p
        .doctor
        .ok(
            "{ __schema { mutationType { fields { name type { name ofType { name } } } } } }",
            json!({}),
        )
        .await?;
    let mut touching: Vec<String> = schema["__schema"]["mutationType"]["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| {
            f["type"]["ofType"]["name"] == "MedicalRecord" || f["type"]["name"] == "MedicalRecord"
        })
        .filter_map(|f| f["name"].as_str().map(String::from))
        .collect();
    touching.sort();
    assert_eq!(
        touching,
        [
            "addMedicalRecord",
            "retractMedicalRecord",
            "stopPrescription"
        ]
    );

    // An amendment: the problem is resolved; both entries stay, the original is no
    // longer current and names what corrected it.
    let amended = p
        .doctor
        .ok(
            ADD,
            json!({ "i": { "patientId": p.amina_id, "amends": diagnosis, "reason": "symptoms gone for a year",
                           "diagnosis": { "code": "J45.9", "text": "Asthma", "status": "RESOLVED" } } }),
        )
        .await?;
    let amendment = id_of(&amended);
    p.doctor
        .ok(
            "mutation($id: ID!) { retractMedicalRecord(id: $id, reason: \"wrong patient\") { id } }",
            json!({ "id": note }),
        )
        .await?;
    p.doctor
        .ok(
            "mutation($id: ID!) { stopPrescription(id: $id, reason: \"no longer needed\") { prescription { status } } }",
            json!({ "id": prescription }),
        )
        .await?;
    let after = history(&p.amina).await?;
    assert_eq!(after.len(), 11, "three corrections added, nothing removed");
    for old in &before {
        let now = after
            .iter()
            .find(|e| e["id"] == old["id"])
            .ok_or_else(|| anyhow!("{} disappeared", old["id"]))?;
        assert_eq!(
            now["description"], old["description"],
            "entries never change"
        );
    }
    let find = |id: &str| {
        after
            .iter()
            .find(|e| e["id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(find(diagnosis)["current"], false);
    assert_eq!(find(diagnosis)["correctedBy"], json!([amendment]));
    assert_eq!(find(&amendment)["correction"]["kind"], "AMENDS");
    assert_eq!(
        find(&amendment)["correction"]["reason"],
        "symptoms gone for a year"
    );
    assert_eq!(find(note)["current"], false);
    let summary = p.doctor.ok(SUMMARY, json!({ "p": p.amina_id })).await?;
    assert_eq!(
        summary["patient"]["clinicalSummary"]["activeProblems"],
        json!([])
    );
    assert_eq!(
        summary["patient"]["clinicalSummary"]["currentMedications"],
        json!([])
    );
    let current = p
        .doctor
        .ok(
            "query($p: ID!) { patient(id: $p) { medicalHistory(currentOnly: true, types: [NOTE, DIAGNOSIS]) { id } } }",
            json!({ "p": p.amina_id }),
        )
        .await?;
    assert_eq!(
        current["patient"]["medicalHistory"],
        json!([{ "id": amendment }])
    );

    // Corrections that would lose or muddle a fact are refused, and write nothing.
    let refusals = [
        (
            "amending an entry already amended",
            json!({ "patientId": p.amina_id, "amends": diagnosis, "reason": "again", "diagnosis": { "code": "J45", "text": "Asthma" } }),
            "CONFLICT",
        ),
        (
            "amending with another type",
            json!({ "patientId": p.amina_id, "amends": amendment, "reason": "x", "note": { "text": "x" } }),
            "BAD_USER_INPUT",
        ),
        (
            "amending without a reason",
            json!({ "patientId": p.amina_id, "amends": amendment, "diagnosis": { "code": "J45", "text": "Asthma" } }),
            "BAD_USER_INPUT",
        ),
        (
            "amending another patient's entry",
            json!({ "patientId": p.brian_id, "amends": amendment, "reason": "x", "diagnosis": { "code": "J45", "text": "Asthma" } }),
            "NOT_FOUND",
        ),
        (
            "amending a retraction",
            json!({ "patientId": p.amina_id, "amends": find(note)["correctedBy"][0], "reason": "x", "note": { "text": "x" } }),
            "BAD_USER_INPUT",
        ),
    ];
    for (what, input, code) in refusals {
        let a = p.doctor.query(ADD, json!({ "i": input })).await?;
        assert_eq!(a.code(), Some(code), "{what}: {}", a.body);
    }
    let again = p
        .doctor
        .query(
            "mutation($id: ID!) { stopPrescription(id: $id, reason: \"twice\") { id } }",
            json!({ "id": prescription }),
        )
        .await?;
    assert_eq!(again.code(), Some("CONFLICT"), "{}", again.body);
    assert_eq!(history(&p.doctor).await?.len(), 11);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clinical_input_is_refused_with_its_field_and_writes_nothing() -> Result<()> {
    let c = Clinic::start().await?;
    let p = people(&c).await?;
    let a = &p.amina_id;
    let cases = [
        (
            json!({ "patientId": a, "diagnosis": { "code": "asthma", "text": "Asthma" } }),
            "code",
        ),
        (
            json!({ "patientId": a, "vitals": { "systolic": 80, "diastolic": 120 } }),
            "systolic",
        ),
        (json!({ "patientId": a, "vitals": { "spo2": 140 } }), "spo2"),
        (
            json!({ "patientId": a, "vitals": { "pulse": 70000 } }),
            "pulse",
        ),
        (json!({ "patientId": a, "vitals": {} }), "measurement"),
        (json!({ "patientId": a, "note": { "text": "   " } }), "text"),
        (
            json!({ "patientId": a, "note": { "text": "x".repeat(10_001) } }),
            "text",
        ),
        (
            json!({ "patientId": a, "note": { "text": "a\u{0}b" } }),
            "control",
        ),
        (json!({ "patientId": a }), "exactly one"),
        (
            json!({ "patientId": a, "note": { "text": "x" }, "allergy": { "substance": "Latex" } }),
            "exactly one",
        ),
        (
            json!({ "patientId": a, "recordedAt": "2999-01-01T00:00:00Z", "note": { "text": "x" } }),
            "future",
        ),
        (
            json!({ "patientId": a, "recordedAt": "yesterday", "note": { "text": "x" } }),
            "recordedAt",
        ),
        (
            json!({ "patientId": "not-an-id", "note": { "text": "x" } }),
            "patientId",
        ),
        (
            json!({ "patientId": a, "appointmentId": p.visit, "reason": "no amends", "note": { "text": "x" } }),
            "amends",
        ),
        (
            json!({ "patientId": a, "labResult": { "orderId": p.visit, "testCode": "718-7", "testName": "Hb", "value": "1", "status": "FINAL" } }),
            "orderId",
        ),
        (
            json!({ "patientId": a, "labResult": { "testCode": "bad code!", "testName": "Hb", "value": "1", "status": "FINAL" } }),
            "testCode",
        ),
        (
            json!({ "patientId": a, "prescription": { "drug": "X", "dose": "1", "route": "oral", "frequency": "daily", "durationDays": 0 } }),
            "durationDays",
        ),
    ];
    for (input, says) in cases {
        let answer = p.doctor.query(ADD, json!({ "i": input })).await?;
        assert_eq!(
            answer.code(),
            Some("BAD_USER_INPUT"),
            "{input}: {}",
            answer.body
        );
        let message = answer.body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(
            message.contains(says),
            "{input}: {message:?} does not say {says:?}"
        );
    }
    // Only the intake list's allergy, recorded at registration, is in the chart.
    let h = p.doctor.ok(HISTORY, json!({ "p": a })).await?;
    let types: Vec<&str> = h["patient"]["medicalHistory"]
        .as_array()
        .map(|l| l.iter().filter_map(|e| e["type"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(types, ["ALLERGY"], "nothing was written");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_and_the_doctor_see_new_entries_live_and_the_front_desk_cannot_listen()
-> Result<()> {
    let c = Clinic::start().await?;
    let p = people(&c).await?;
    let watch = "subscription($p: ID!) { medicalRecordAdded(patientId: $p) { patientId type description } }";

    // The front desk is refused at once, with the contract's code and no data.
    let mut desk =
        Ws::connect_with_token(&c.node.base, p.desk.token.as_deref().unwrap_or_default()).await?;
    desk.subscribe("x", watch, json!({ "p": p.amina_id }))
        .await?;
    // A refused subscription answers with its error and never an event.
    let refusal = crate::subscription_refusal(&mut desk).await?;
    assert_eq!(refusal["extensions"]["code"], "NOT_FOUND", "{refusal}");

    let mut phone =
        Ws::connect_with_token(&c.node.base, p.amina.token.as_deref().unwrap_or_default()).await?;
    phone
        .subscribe("mine", watch, json!({ "p": p.amina_id }))
        .await?;
    let mut theirs =
        Ws::connect_with_token(&c.node.base, p.brian.token.as_deref().unwrap_or_default()).await?;
    theirs
        .subscribe("b", watch, json!({ "p": p.brian_id }))
        .await?;
    // The subscription is live once an entry written after it arrives: write until
    // one does (bounded), then check what arrived.
    let mut got = None;
    for n in 0..50 {
        p.doctor
            .ok(
                ADD,
                json!({ "i": { "patientId": p.amina_id, "vitals": { "pulse": 60 + n } } }),
            )
            .await?;
        if let Ok(WsEvent::Next { payload, .. }) =
            phone.next_event(Duration::from_millis(200)).await
        {
            got = Some(payload);
            break;
        }
    }
    let got = got.ok_or_else(|| anyhow!("the patient's subscription never fired"))?;
    assert_eq!(
        got["data"]["medicalRecordAdded"]["patientId"],
        p.amina_id.as_str()
    );
    assert_eq!(got["data"]["medicalRecordAdded"]["type"], "VITALS");
    // Another patient's stream stays silent.
    theirs.expect_silence(Duration::from_millis(300)).await?;
    Ok(())
}
