//! Authentication and authorisation as enforced by the server.

use std::time::Duration;

use anyhow::Result;
use healsync_auth::{Claims, SessionKeys};
use healsync_test_support::{Ws, WsEvent};
use serde_json::json;

use crate::{BOOK, Clinic};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_sees_only_their_own_data() -> Result<()> {
    let c = Clinic::start().await?;
    let amina = c.patient("Amina Njoroge").await?;
    let brian = c.patient("Brian Otieno").await?;
    let slots = c.slots(&c.doctor_id, 2).await?;
    c.admin
        .ok(
            BOOK,
            json!({ "p": amina["id"], "d": c.doctor_id, "at": slots[0] }),
        )
        .await?;
    let brians = c
        .admin
        .ok(
            BOOK,
            json!({ "p": brian["id"], "d": c.doctor_id, "at": slots[1] }),
        )
        .await?;
    let brians_id = brians["bookAppointment"]["id"].clone();
    let me = c
        .patient_login("amina", amina["id"].as_str().unwrap_or_default())
        .await?;

    // Another patient's record: refused, and no data comes back.
    let other = me
        .query(
            "query($id: ID!) { patient(id: $id) { name phone allergies } }",
            json!({ "id": brian["id"] }),
        )
        .await?;
    // A refused record looks like a missing one.
    assert_eq!(other.code(), Some("NOT_FOUND"));
    assert_eq!(other.body["data"], serde_json::Value::Null);
    assert!(!other.body.to_string().contains("Brian"), "{}", other.body);

    // Lists hold only her own record and appointments, whatever she asks for.
    let list = me
        .ok(
            "{ patients(limit: 500) { name } appointments { patient { name } } }",
            json!({}),
        )
        .await?;
    assert_eq!(list["patients"], json!([{ "name": "Amina Njoroge" }]));
    assert_eq!(
        list["appointments"],
        json!([{ "patient": { "name": "Amina Njoroge" } }])
    );
    let theirs = me
        .query(
            "query($p: ID) { appointments(patientId: $p) { id } }",
            json!({ "p": brian["id"] }),
        )
        .await?;
    assert_eq!(theirs.code(), Some("FORBIDDEN"));
    let one = me
        .query(
            "query($id: ID!) { appointment(id: $id) { id } }",
            json!({ "id": brians_id }),
        )
        .await?;
    assert_eq!(one.code(), Some("NOT_FOUND"));
    // Through the doctor's appointment list she still sees only her own.
    let via_doctor = me
        .ok(
            "query($f: String) { doctors { appointments(from: $f) { patient { name } } } }",
            json!({ "f": slots[0] }),
        )
        .await?;
    assert!(!via_doctor.to_string().contains("Brian"), "{via_doctor}");
    // Her own record, including clinical fields, is hers to read.
    let own = me
        .ok(
            "query($id: ID!) { patient(id: $id) { name allergies } }",
            json!({ "id": amina["id"] }),
        )
        .await?;
    assert_eq!(own["patient"]["allergies"], json!(["Penicillin"]));
    // She cannot book for someone else, register patients, or watch another's updates.
    let booking = me
        .query(
            BOOK,
            json!({ "p": brian["id"], "d": c.doctor_id, "at": slots[0] }),
        )
        .await?;
    assert_eq!(booking.code(), Some("FORBIDDEN"));
    let reg = me
        .query(
            "mutation { createPatient(input: {name: \"X Y\", email: \"x@y.org\"}) { id } }",
            json!({}),
        )
        .await?;
    assert_eq!(reg.code(), Some("FORBIDDEN"));
    for q in [
        "mutation { requestPatient(mrn: \"NBO-000001\", dateOfBirth: \"1984-03-01\") { id } }",
        "{ patientRequests { mrn } }",
        "{ syncStatus { hub changesWaiting } }",
    ] {
        assert_eq!(
            me.query(q, json!({})).await?.code(),
            Some("FORBIDDEN"),
            "{q}"
        );
    }
    let mut ws =
        Ws::connect_with_token(&c.node.base, me.token.as_deref().unwrap_or_default()).await?;
    ws.subscribe(
        "x",
        "subscription($p: ID) { appointmentUpdated(patientId: $p) { id } }",
        json!({ "p": brian["id"] }),
    )
    .await?;
    // A refused subscription answers with its error (as `next` with errors and no
    // data, or as `error`) and never an event.
    match ws.next_event(Duration::from_secs(10)).await? {
        WsEvent::Error { payload, .. } => assert_eq!(payload[0]["extensions"]["code"], "FORBIDDEN"),
        WsEvent::Next { payload, .. } => {
            assert_eq!(payload["data"], serde_json::Value::Null);
            assert_eq!(payload["errors"][0]["extensions"]["code"], "FORBIDDEN");
        }
        other => anyhow::bail!("expected an error, got {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_roles_see_what_their_work_needs() -> Result<()> {
    let c = Clinic::start().await?;
    let amina = c.patient("Amina Njoroge").await?;
    let brian = c.patient("Brian Otieno").await?;
    let slots = c.slots(&c.doctor_id, 1).await?;
    c.admin
        .ok(
            BOOK,
            json!({ "p": amina["id"], "d": c.doctor_id, "at": slots[0] }),
        )
        .await?;

    c.admin
        .ok("mutation { createUser(input: {username: \"desk\", password: \"desk-password\", role: RECEPTIONIST}) { id } }", json!({}))
        .await?;
    let desk = c.node.gql().login("desk", "desk-password").await?;
    // The front desk reads demographics but not clinical fields.
    let a = desk
        .query(
            "query($id: ID!) { patient(id: $id) { name allergies } }",
            json!({ "id": amina["id"] }),
        )
        .await?;
    assert_eq!(a.body["data"]["patient"]["name"], "Amina Njoroge");
    assert_eq!(
        a.body["data"]["patient"]["allergies"],
        serde_json::Value::Null
    );
    assert_eq!(a.code(), Some("FORBIDDEN"));
    // ... and may not manage doctors.
    let d = desk.query("mutation { createDoctor(input: {name: \"Dr. X\", specializations: [\"Y\"], licenceNumber: \"Z-1\"}) { id } }", json!({})).await?;
    assert_eq!(d.code(), Some("FORBIDDEN"));

    c.admin
        .ok(
            "mutation($d: ID!) { createUser(input: {username: \"dr.kamau\", password: \"doctor-password\", role: DOCTOR, doctorId: $d}) { id } }",
            json!({ "d": c.doctor_id }),
        )
        .await?;
    let doctor = c.node.gql().login("dr.kamau", "doctor-password").await?;
    // A doctor reads their own patients (clinical fields included), not others.
    let mine = doctor
        .ok(
            "query($id: ID!) { patient(id: $id) { allergies } }",
            json!({ "id": amina["id"] }),
        )
        .await?;
    assert_eq!(mine["patient"]["allergies"], json!(["Penicillin"]));
    let not_mine = doctor
        .query(
            "query($id: ID!) { patient(id: $id) { name } }",
            json!({ "id": brian["id"] }),
        )
        .await?;
    assert_eq!(not_mine.code(), Some("NOT_FOUND"));
    let list = doctor.ok("{ patients { name } }", json!({})).await?;
    assert_eq!(list["patients"], json!([{ "name": "Amina Njoroge" }]));
    // Every staff role sees the sync banner's figures (a node with no hub: none tried).
    for staff in [&c.admin, &desk, &doctor] {
        let s = staff
            .ok(
                "{ syncStatus { hub hubReachable changesWaiting } }",
                json!({}),
            )
            .await?;
        assert_eq!(s["syncStatus"]["hub"], serde_json::Value::Null);
        assert_eq!(s["syncStatus"]["hubReachable"], serde_json::Value::Null);
        assert!(s["syncStatus"]["changesWaiting"].as_i64().is_some(), "{s}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_expired_forged_and_tampered_tokens_are_refused() -> Result<()> {
    let c = Clinic::start().await?;
    let anon = c.node.gql();
    let q = "{ patients { name } }";
    assert_eq!(
        anon.query(q, json!({})).await?.code(),
        Some("UNAUTHENTICATED")
    );

    // Expired 30 s ago: within jsonwebtoken's default leeway of 60 s, beyond ours.
    let key = std::fs::read(c.node.data_dir.join(healsync_auth::KEY_FILE))?;
    let issuer = c.admin.ok("{ node { nodeId } }", json!({})).await?["node"]["nodeId"]
        .as_str()
        .map(|id| format!("healsync-node:{id}"))
        .unwrap_or_default();
    let site = c.admin.ok("{ node { site } }", json!({})).await?["node"]["site"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let audience = format!("healsync:{site}");
    let keys = SessionKeys::from_pkcs8(&key, &issuer)?.for_audience(&audience);
    let me = c.admin.ok("{ me { id } }", json!({})).await?;
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: me["me"]["id"].as_str().unwrap_or_default().parse()?,
        username: "admin".into(),
        role: healsync_domain::Role::Admin,
        patient_id: None,
        doctor_id: None,
        sites: None,
        iss: issuer.clone(),
        aud: Some(audience.clone()),
        sid: None,
        iat: now - 3600,
        iat_ms: None,
        exp: now - 30,
    };
    let expired = keys.sign(&claims)?;
    let a = anon.with_token(&expired).query(q, json!({})).await?;
    assert_eq!(a.code(), Some("UNAUTHENTICATED"));
    assert!(a.body.to_string().contains("expired"), "{}", a.body);

    // Signed with another key, for the same issuer and a valid expiry.
    let forger_dir = tempfile::tempdir()?;
    let forger = SessionKeys::load_or_create(forger_dir.path(), &issuer)?.for_audience(&audience);
    let forged = forger.sign(&Claims {
        exp: now + 3600,
        ..claims.clone()
    })?;
    assert_eq!(
        anon.with_token(&forged).query(q, json!({})).await?.code(),
        Some("UNAUTHENTICATED")
    );

    // A valid token with its claims edited (role raised) no longer verifies.
    let token = c.admin.token.clone().unwrap_or_default();
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    parts[1].insert(3, 'A');
    assert_eq!(
        anon.with_token(&parts.join("."))
            .query(q, json!({}))
            .await?
            .code(),
        Some("UNAUTHENTICATED")
    );
    assert_eq!(
        anon.with_token("not-a-jwt")
            .query(q, json!({}))
            .await?
            .code(),
        Some("UNAUTHENTICATED")
    );

    // Wrong passwords: refused alike for known and unknown users, then rate-limited
    // (the admin's login when the clinic started was this address's first attempt).
    let bad =
        "mutation($u: String!) { login(username: $u, password: \"wrong-password\") { token } }";
    assert_eq!(
        anon.query(bad, json!({ "u": "nobody" })).await?.code(),
        Some("UNAUTHENTICATED")
    );
    for _ in 0..4 {
        assert_eq!(
            anon.query(bad, json!({ "u": "admin" })).await?.code(),
            Some("UNAUTHENTICATED")
        );
    }
    assert_eq!(
        anon.query(bad, json!({ "u": "admin" })).await?.code(),
        Some("RATE_LIMITED")
    );

    // WebSockets authenticate in connection_init: no token, or a forged one, is refused
    // with the protocol's 4403 and the reason, which is what a client shows.
    for (payload, why) in [
        (json!({}), "connection_init"),
        (
            json!({ "Authorization": format!("Bearer {forged}") }),
            "not valid",
        ),
        (
            json!({ "Authorization": format!("Bearer {expired}") }),
            "expired",
        ),
    ] {
        match Ws::connect(&c.node.base, payload).await? {
            Err(WsEvent::Closed { code, reason }) => {
                assert_eq!(code, 4403);
                assert!(reason.contains(why), "{reason:?}");
            }
            Err(other) => anyhow::bail!("unexpected {other:?}"),
            Ok(_) => anyhow::bail!("an unauthenticated WebSocket was accepted"),
        }
    }

    // A screen left open does not outlive its login: a session that ends in two
    // seconds gets its subscriptions and connection closed then, with the reason.
    let short = keys.sign(&Claims {
        iat: now,
        exp: now + 2,
        ..claims
    })?;
    let mut ws = match Ws::connect(
        &c.node.base,
        json!({ "Authorization": format!("Bearer {short}") }),
    )
    .await?
    {
        Ok(ws) => ws,
        Err(refused) => anyhow::bail!("a valid session was refused: {refused:?}"),
    };
    ws.subscribe("p", "subscription { patientUpdated { name } }", json!({}))
        .await?;
    let started = std::time::Instant::now();
    match ws.next_event(std::time::Duration::from_secs(15)).await? {
        WsEvent::Closed { code, reason } => {
            assert_eq!(code, 4401, "graphql-transport-ws: Unauthorized");
            assert!(reason.contains("expired"), "{reason:?}");
        }
        other => anyhow::bail!("expected the connection to close, got {other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    Ok(())
}
