//! Booking and the appointment lifecycle, with live subscriptions watching.

use std::time::Duration;

use anyhow::{Result, anyhow};
use healsync_test_support::{Ws, WsEvent};
use serde_json::json;

use crate::{BOOK, Clinic, SET_STATUS};

const WAIT: Duration = Duration::from_secs(10);

async fn next_payload(ws: &mut Ws) -> Result<serde_json::Value> {
    match ws.next_event(WAIT).await? {
        WsEvent::Next { payload, .. } => Ok(payload),
        other => Err(anyhow!("expected an event, got {other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn book_and_walk_the_lifecycle_with_subscribers_watching() -> Result<()> {
    let c = Clinic::start().await?;
    let amina = c.patient("Amina Njoroge").await?;
    let brian = c.patient("Brian Otieno").await?;
    let (amina_id, brian_id) = (
        amina["id"].as_str().unwrap_or_default(),
        brian["id"].as_str().unwrap_or_default(),
    );
    assert!(
        amina["mrn"]
            .as_str()
            .unwrap_or_default()
            .starts_with("NBO-"),
        "MRN carries the site: {amina}"
    );

    // Reception watches Amina's appointments; Amina watches her own and her notifications.
    let admin_token = c.admin.token.clone().unwrap_or_default();
    let mut desk = Ws::connect_with_token(&c.node.base, &admin_token).await?;
    desk.subscribe(
        "a",
        "subscription($p: ID) { appointmentUpdated(patientId: $p) { id status patient { name } } }",
        json!({ "p": amina_id }),
    )
    .await?;
    let amina_login = c.patient_login("amina", amina_id).await?;
    let me = amina_login.ok("{ me { id } }", json!({})).await?;
    let mut phone = Ws::connect_with_token(
        &c.node.base,
        amina_login.token.as_deref().unwrap_or_default(),
    )
    .await?;
    phone
        .subscribe(
            "mine",
            "subscription { appointmentUpdated { id status patientId } }",
            json!({}),
        )
        .await?;
    phone
        .subscribe(
            "bell",
            "subscription($u: ID!) { newNotification(userId: $u) { type title body } }",
            json!({ "u": me["me"]["id"] }),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let slots = c.slots(&c.doctor_id, 3).await?;
    // Brian's booking first: Amina's phone must not see it.
    c.admin
        .ok(
            BOOK,
            json!({ "p": brian_id, "d": c.doctor_id, "at": slots[1] }),
        )
        .await?;
    let booked = c
        .admin
        .ok(
            BOOK,
            json!({ "p": amina_id, "d": c.doctor_id, "at": slots[0] }),
        )
        .await?;
    let appt = &booked["bookAppointment"];
    assert_eq!(appt["status"], "BOOKED");
    assert_eq!(appt["patient"]["name"], "Amina Njoroge");
    let id = appt["id"].as_str().unwrap_or_default().to_string();

    let ev = next_payload(&mut desk).await?;
    assert_eq!(ev["data"]["appointmentUpdated"]["id"], id.as_str());
    assert_eq!(ev["data"]["appointmentUpdated"]["status"], "BOOKED");
    // Amina's phone: her appointment and her notification, never Brian's booking.
    let mut seen_appointment = false;
    let mut seen_notification = false;
    while !(seen_appointment && seen_notification) {
        match phone.next_event(WAIT).await? {
            WsEvent::Next { id: sub, payload } if sub == "mine" => {
                assert_eq!(
                    payload["data"]["appointmentUpdated"]["patientId"], amina_id,
                    "{payload}"
                );
                seen_appointment = true;
            }
            WsEvent::Next { id: sub, payload } if sub == "bell" => {
                assert_eq!(
                    payload["data"]["newNotification"]["type"],
                    "APPOINTMENT_BOOKED"
                );
                seen_notification = true;
            }
            other => return Err(anyhow!("unexpected {other:?}")),
        }
    }

    for status in ["CHECKED_IN", "COMPLETED"] {
        let d = c
            .admin
            .ok(SET_STATUS, json!({ "id": id, "s": status }))
            .await?;
        assert_eq!(d["updateAppointmentStatus"]["status"], status);
        let ev = next_payload(&mut desk).await?;
        assert_eq!(ev["data"]["appointmentUpdated"]["status"], status);
    }

    // A completed appointment cannot be re-opened or cancelled.
    for status in ["BOOKED", "CANCELLED", "NO_SHOW"] {
        let a = c
            .admin
            .query(SET_STATUS, json!({ "id": id, "s": status }))
            .await?;
        assert_eq!(
            a.code(),
            Some("BAD_USER_INPUT"),
            "COMPLETED -> {status}: {:?}",
            a.body
        );
    }
    // Asking for the current status again is harmless.
    c.admin
        .ok(SET_STATUS, json!({ "id": id, "s": "COMPLETED" }))
        .await?;

    // Rescheduling and cancelling a booked one; the freed slot can be booked again.
    let second = c
        .admin
        .ok(
            BOOK,
            json!({ "p": amina_id, "d": c.doctor_id, "at": slots[2] }),
        )
        .await?;
    let second_id = second["bookAppointment"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let later = c.slots(&c.doctor_id, 1).await?;
    let moved = c
        .admin
        .ok("mutation($id: ID!, $at: String!) { rescheduleAppointment(id: $id, scheduledAt: $at) { scheduledAt } }", json!({ "id": second_id, "at": later[0] }))
        .await?;
    assert_eq!(
        moved["rescheduleAppointment"]["scheduledAt"],
        later[0].as_str()
    );
    let cancelled = amina_login
        .ok(SET_STATUS, json!({ "id": second_id, "s": "CANCELLED" }))
        .await?;
    assert_eq!(cancelled["updateAppointmentStatus"]["status"], "CANCELLED");
    c.admin
        .ok(
            BOOK,
            json!({ "p": brian_id, "d": c.doctor_id, "at": later[0] }),
        )
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_is_booked_once_even_under_concurrent_requests() -> Result<()> {
    let c = Clinic::start().await?;
    let first = c.patient("Chebet Kiprop").await?;
    let second = c.patient("David Mutua").await?;
    let slots = c.slots(&c.doctor_id, 2).await?;

    // Sequential double booking.
    c.admin
        .ok(
            BOOK,
            json!({ "p": first["id"], "d": c.doctor_id, "at": slots[0] }),
        )
        .await?;
    let again = c
        .admin
        .query(
            BOOK,
            json!({ "p": second["id"], "d": c.doctor_id, "at": slots[0] }),
        )
        .await?;
    assert_eq!(again.code(), Some("CONFLICT"), "{:?}", again.body);

    // The same patient cannot be in two places at once: another doctor, same time.
    let other_doctor = c.doctor("Dr. Otieno Ochieng", "Paediatrics").await?;
    let overlap = c
        .admin
        .query(
            BOOK,
            json!({ "p": first["id"], "d": other_doctor, "at": slots[0] }),
        )
        .await?;
    assert_eq!(overlap.code(), Some("CONFLICT"), "{:?}", overlap.body);

    // Twenty receptionists try the same slot for twenty patients at once.
    let mut patients = Vec::new();
    for i in 0..20 {
        patients.push(c.patient(&format!("Concurrent Patient {i}")).await?);
    }
    let mut tasks = Vec::new();
    for p in &patients {
        let admin = c.admin.clone();
        let vars = json!({ "p": p["id"], "d": c.doctor_id, "at": slots[1] });
        tasks.push(tokio::spawn(async move { admin.query(BOOK, vars).await }));
    }
    let mut won = 0;
    let mut conflicts = 0;
    for t in tasks {
        let a = t.await??;
        match a.code() {
            None => won += 1,
            Some("CONFLICT") => conflicts += 1,
            other => return Err(anyhow!("unexpected {other:?}: {:?}", a.body)),
        }
    }
    assert_eq!((won, conflicts), (1, 19));
    let day = &slots[1][..10];
    let list = c
        .admin
        .ok(
            "query($d: String) { appointments(date: $d, limit: 500) { scheduledAt status } }",
            json!({ "d": day }),
        )
        .await?;
    let at_slot = list["appointments"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|a| a["scheduledAt"] == slots[1].as_str())
                .count()
        })
        .unwrap_or(0);
    assert_eq!(at_slot, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_leave_search_and_nested_lists() -> Result<()> {
    let c = Clinic::start().await?;
    let p = c.patient("Esther Wanjiku").await?;
    let slots = c.slots(&c.doctor_id, 1).await?;
    // Leave over the next slot removes it from the offer and makes it unbookable.
    let start = &slots[0];
    let leave = c
        .admin
        .ok(
            "mutation($d: ID!, $s: String!, $e: String!) { addLeave(input: {doctorId: $d, start: $s, end: $e, reason: \"Training\"}) { id } }",
            json!({ "d": c.doctor_id, "s": start, "e": start.replace(":00Z", ":01Z") }),
        )
        .await?;
    assert_ne!(c.slots(&c.doctor_id, 1).await?[0], *start);
    let refused = c
        .admin
        .query(
            crate::BOOK,
            json!({ "p": p["id"], "d": c.doctor_id, "at": start }),
        )
        .await?;
    assert_eq!(refused.code(), Some("BAD_USER_INPUT"));
    c.admin
        .ok(
            "mutation($id: ID!) { cancelLeave(id: $id) { cancelled } }",
            json!({ "id": leave["addLeave"]["id"] }),
        )
        .await?;
    assert_eq!(c.slots(&c.doctor_id, 1).await?[0], *start);

    // A time that is not a slot start is refused.
    let odd = start.replace(":00Z", ":07Z");
    let refused = c
        .admin
        .query(
            crate::BOOK,
            json!({ "p": p["id"], "d": c.doctor_id, "at": odd }),
        )
        .await?;
    assert_eq!(refused.code(), Some("BAD_USER_INPUT"));

    // Search by name prefix, MRN, phone digits, date of birth; filters on doctors.
    for q in [
        "esth",
        "wanjiku esther",
        p["mrn"].as_str().unwrap_or_default(),
        "254712000",
    ] {
        let found = c
            .admin
            .ok(
                "query($q: String) { patients(search: $q) { id } }",
                json!({ "q": q }),
            )
            .await?;
        let ids: Vec<&str> = found["patients"]
            .as_array()
            .map(|l| l.iter().filter_map(|x| x["id"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(ids, [p["id"].as_str().unwrap_or_default()], "search {q:?}");
    }
    let by_dob = c
        .admin
        .ok(
            "{ patients(dateOfBirth: \"1984-03-01\") { name } }",
            json!({}),
        )
        .await?;
    assert_eq!(by_dob["patients"][0]["name"], "Esther Wanjiku");
    let gps = c
        .admin
        .ok(
            "{ doctors(specialization: \"general PRACTICE\") { name } }",
            json!({}),
        )
        .await?;
    assert_eq!(gps["doctors"].as_array().map(Vec::len), Some(1));
    let none = c
        .admin
        .ok(
            "{ doctors(specialization: \"Neurology\") { name } }",
            json!({}),
        )
        .await?;
    assert_eq!(none["doctors"].as_array().map(Vec::len), Some(0));

    // Nested lists resolve (Patient.appointments, Doctor.appointments, Appointment.patient).
    c.admin
        .ok(
            crate::BOOK,
            json!({ "p": p["id"], "d": c.doctor_id, "at": start }),
        )
        .await?;
    let nested = c
        .admin
        .ok(
            "query($from: String) { patients { name appointments { status doctor { name } } } doctors { name appointments(from: $from) { patient { name } } } }",
            json!({ "from": start }),
        )
        .await?;
    assert_eq!(
        nested["patients"][0]["appointments"][0]["doctor"]["name"],
        "Dr. Wanjiru Kamau"
    );
    assert_eq!(
        nested["doctors"][0]["appointments"][0]["patient"]["name"],
        "Esther Wanjiku"
    );

    // Update and deactivate: a deactivated patient leaves the default list.
    let upd = c
        .admin
        .ok("mutation($id: ID!) { updatePatient(id: $id, input: {phone: null, address: {city: \"Kisumu\"}}) { phone address { city } } }", json!({ "id": p["id"] }))
        .await?;
    assert_eq!(upd["updatePatient"]["phone"], serde_json::Value::Null);
    assert_eq!(upd["updatePatient"]["address"]["city"], "Kisumu");
    c.admin
        .ok(
            "mutation($id: ID!) { deactivatePatient(id: $id) { active } }",
            json!({ "id": p["id"] }),
        )
        .await?;
    let active = c.admin.ok("{ patients { id } }", json!({})).await?;
    assert_eq!(active["patients"].as_array().map(Vec::len), Some(0));
    let all = c
        .admin
        .ok("{ patients(includeInactive: true) { id } }", json!({}))
        .await?;
    assert_eq!(all["patients"].as_array().map(Vec::len), Some(1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patients_appointments_keep_the_latest_in_view() -> Result<()> {
    let c = Clinic::start().await?;
    let p = c.patient("Amina Njoroge").await?;
    let slots = c.slots(&c.doctor_id, 3).await?;
    for at in &slots {
        c.admin
            .ok(BOOK, json!({ "p": p["id"], "d": c.doctor_id, "at": at }))
            .await?;
    }
    let d = c
        .admin
        .ok(
            "query($p: ID!) { patient(id: $p) { appointments(limit: 2) { scheduledAt } } }",
            json!({ "p": p["id"] }),
        )
        .await?;
    let got: Vec<&str> = d["patient"]["appointments"]
        .as_array()
        .map(|l| l.iter().filter_map(|a| a["scheduledAt"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        got,
        [slots[1].as_str(), slots[2].as_str()],
        "the latest two, oldest first"
    );
    Ok(())
}
