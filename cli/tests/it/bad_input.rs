//! Bad input of every shape gets a clear GraphQL error with `extensions.code`: never a
//! 500, never a panic, never a partial write.

use anyhow::Result;
use serde_json::json;

use crate::{BOOK, Clinic};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_coded_errors_and_writes_nothing() -> Result<()> {
    let c = Clinic::start().await?;
    let p = c.patient("Amina Njoroge").await?;
    let a = &c.admin;

    // Transport-level garbage.
    for (body, status) in [
        ("{not json", 400),
        ("", 400),
        (
            "[{\"query\": \"{ me { id } }\"}, {\"query\": \"{ me { id } }\"}]",
            400,
        ),
        ("{\"query\": 42}", 400),
        ("\"just a string\"", 400),
    ] {
        let r = a.post_raw(body).await?;
        assert_eq!(
            (r.status, r.code()),
            (status, Some("BAD_USER_INPUT")),
            "body {body:?}: {:?}",
            r.body
        );
    }
    let r = healsync_test_support::post_oversized(&c.node.base, 2 * 1024 * 1024).await?;
    assert_eq!(
        (r.status, r.code()),
        (413, Some("BAD_USER_INPUT")),
        "{:?}",
        r.body
    );

    // Schema-level mistakes: syntax, unknown fields (in selections and inputs), wrong
    // types, missing arguments.
    for q in [
        "{ patients { name ",
        "{ patients { nonsense } }",
        "mutation { createPatient(input: {name: \"A B\", email: \"a@b.org\", favouriteColour: \"red\"}) { id } }",
        "{ patients(limit: \"ten\") { name } }",
        "{ patient { name } }",
        "mutation { updateAppointmentStatus(id: \"x\", status: FINISHED) { id } }",
        // A hub-only role is no account a clinic makes.
        "mutation { createUser(input: {username: \"fin\", password: \"long-enough-password\", role: FINANCE}) { id } }",
    ] {
        let r = a.query(q, json!({})).await?;
        assert_eq!(r.status, 200, "{q}");
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{q}: {:?}", r.body);
    }

    // A request to the hub for a patient needs a real medical record number, and a
    // patient already here is not asked for.
    for mrn in ["", "NBO", "NBO-12a", "nbo--1", &"9".repeat(5000)] {
        let r = a
            .query(
                "mutation($m: String!) { requestPatient(mrn: $m, dateOfBirth: \"1984-03-01\") { id } }",
                json!({ "m": mrn }),
            )
            .await?;
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{mrn:?}: {:?}", r.body);
    }
    let r = a
        .query(
            "mutation($m: String!) { requestPatient(mrn: $m, dateOfBirth: \"1984-03-01\") { id } }",
            json!({ "m": p["mrn"] }),
        )
        .await?;
    assert_eq!(r.code(), Some("CONFLICT"), "{:?}", r.body);
    let asked = a.ok("{ patientRequests { mrn } }", json!({})).await?;
    assert_eq!(asked["patientRequests"], json!([]), "nothing was written");

    // Domain-level: invalid dates, e-mails, phones, huge strings, bad ids, bad ranges.
    let create = "mutation($i: PatientInput!) { createPatient(input: $i) { id } }";
    for input in [
        json!({ "name": "A B", "email": "a@b.org", "dateOfBirth": "1984-02-30" }),
        json!({ "name": "A B", "email": "a@b.org", "dateOfBirth": "2999-01-01" }),
        json!({ "name": "A B", "email": "not-an-email" }),
        json!({ "name": "A B", "email": "a@b.org", "phone": "call me" }),
        json!({ "name": "x".repeat(100_000), "email": "a@b.org" }),
        json!({ "name": "   ", "email": "a@b.org" }),
        json!({ "name": "A B", "email": "a@b.org", "allergies": vec!["x"; 200] }),
    ] {
        let r = a.query(create, json!({ "i": input })).await?;
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{:?}", r.body);
    }
    for at in ["tomorrow at nine", "2026-13-01T09:00:00Z", ""] {
        let r = a
            .query(BOOK, json!({ "p": p["id"], "d": c.doctor_id, "at": at }))
            .await?;
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{at:?}: {:?}", r.body);
    }
    let r = a
        .query(
            "query($id: ID!) { patient(id: $id) { name } }",
            json!({ "id": "not-a-uuid" }),
        )
        .await?;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
    let r = a
        .query(
            "query($id: ID!) { patient(id: $id) { name } }",
            json!({ "id": "01930000-0000-7000-8000-000000000000" }),
        )
        .await?;
    assert_eq!(r.code(), Some("NOT_FOUND"));
    let r = a.query(BOOK, json!({ "p": "01930000-0000-7000-8000-000000000000", "d": c.doctor_id, "at": "2026-11-24T09:00:00Z" })).await?;
    assert_eq!(r.code(), Some("NOT_FOUND"));
    let r = a
        .query("{ patients(limit: 100000) { name } }", json!({}))
        .await?;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
    let r = a.query("query($d: ID!) { doctor(id: $d) { availableSlots(to: \"2099-01-01T00:00:00Z\") { start } } }", json!({ "d": c.doctor_id })).await?;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
    let r = a.query("mutation($d: ID!) { setSchedule(input: {doctorId: $d, slotMinutes: 1, weekly: []}) { id } }", json!({ "d": c.doctor_id })).await?;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));

    // Over-deep queries hit the depth limit.
    let deep = format!(
        "{{ patients {{ {} }} }}",
        "appointments { patient { ".repeat(10) + "name" + &" } }".repeat(10)
    );
    let r = a.query(&deep, json!({})).await?;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{:?}", r.body);

    // Nothing was written by any of it: still exactly one patient, and no error was INTERNAL.
    let list = a
        .ok("{ patients(includeInactive: true) { id } }", json!({}))
        .await?;
    assert_eq!(list["patients"].as_array().map(Vec::len), Some(1));
    let (_, metrics) = a.get("/metrics").await?;
    assert!(
        metrics.contains("healsync_graphql_errors_total{code=\"INTERNAL\"} 0"),
        "{metrics}"
    );
    Ok(())
}
