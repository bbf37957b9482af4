//! Messages to patients as a real relay and gateway receive them: a real SMTP server
//! (aiosmtpd) and an HTTP endpoint on loopback, a real node process. Every notice to a
//! patient becomes an e-mail and an SMS on the channels the patient allows; failures
//! show their reason; reminders go out once per appointment; and a node killed twenty
//! times mid-send loses no message, repeating at worst one with the same key.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, anyhow};
use healsync_test_support::{Gql, NodeProcess};
use serde_json::{Value, json};

use crate::{BOOK, Clinic, Received, Sinks, binary};

const AUTH: &str = "Bearer gateway-secret";
const OUTBOX: &str = "query($s: MessageStatus) { outbox(status: $s, limit: 500) { id channel recipient subject status attempts lastError } }";

async fn start(sinks: &Sinks, dir: &std::path::Path) -> Result<NodeProcess> {
    let mut flags: Vec<String> = vec!["--site".into(), "NBO".into()];
    flags.extend(sinks.flags());
    flags.extend(["--sms-authorization".into(), AUTH.into()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    NodeProcess::start(binary(), dir, &flags).await
}

async fn outbox(admin: &Gql, status: Option<&str>) -> Result<Vec<Value>> {
    let r = admin.ok(OUTBOX, json!({ "s": status })).await?;
    Ok(r["outbox"].as_array().cloned().unwrap_or_default())
}

async fn book(c: &Clinic, patient: &str, slot: &str) -> Result<String> {
    let r = c
        .admin
        .ok(BOOK, json!({ "p": patient, "d": c.doctor_id, "at": slot }))
        .await?;
    r["bookAppointment"]["id"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| anyhow!("no appointment"))
}

/// Each message of the outbox (`sent`) reached the relay or gateway under its key: the
/// e-mail's `Message-ID`, the SMS's `Idempotency-Key`.
fn assert_sent_under_their_keys(sent: &[Value], keys: &BTreeSet<String>) {
    for m in sent {
        let id = m["id"].as_str().unwrap_or_default();
        let key = match m["channel"].as_str() {
            Some("EMAIL") => format!("<{id}@nbo.healsync>"),
            _ => id.to_string(),
        };
        assert!(keys.contains(&key), "{key} not received: {keys:?}");
    }
}

fn to_is(r: &Received, who: &str) -> bool {
    r.to.as_str() == Some(who) || r.to.as_array().is_some_and(|a| a.iter().any(|t| t == who))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patients_get_email_and_sms_as_they_choose_and_failures_show_their_reason() -> Result<()> {
    let sinks = Sinks::start(0, AUTH).await?;
    let dir = tempfile::tempdir()?;
    let c = Clinic::on(start(&sinks, dir.path()).await?, tempfile::tempdir()?).await?;
    let amina = c.patient("Amina Njoroge").await?;
    let amina_id = amina["id"].as_str().unwrap_or_default().to_string();
    let slots = c.slots(&c.doctor_id, 4).await?;

    // A booking tells the patient by e-mail and SMS; the reminder (the visit is within
    // the 24-hour lead) follows on both.
    book(&c, &amina_id, &slots[0]).await?;
    let email = "amina.njoroge@example.org";
    let got = sinks
        .until(30, |r| {
            r.iter()
                .filter(|m| to_is(m, email) || to_is(m, "+254 712 000 111"))
                .count()
                >= 4
        })
        .await?;
    let subjects: BTreeSet<String> = got
        .iter()
        .filter(|m| m.channel == "EMAIL")
        .filter_map(|m| m.subject.clone())
        .collect();
    assert_eq!(
        subjects,
        BTreeSet::from([
            "NBO clinic: Appointment booked".to_string(),
            "NBO clinic: Appointment reminder".to_string()
        ])
    );
    let sms: Vec<&Received> = got.iter().filter(|m| m.channel == "SMS").collect();
    assert_eq!(sms.len(), 2);
    assert!(sms.iter().all(|m| {
        m.text
            .as_deref()
            .is_some_and(|t| t.starts_with("NBO clinic: "))
    }));

    // Every message is SENT in the outbox (marked once the relay answered, so a moment
    // after it arrived), and its id is the key the relay saw.
    let sent = crate::eventually("four messages marked sent", || async {
        let sent = outbox(&c.admin, Some("SENT")).await?;
        Ok((sent.len() == 4).then_some(sent))
    })
    .await?;
    let keys: BTreeSet<String> = got.iter().filter_map(|m| m.key.clone()).collect();
    assert_sent_under_their_keys(&sent, &keys);

    // Amina opts out of SMS (at the desk): the next booking reaches her by e-mail only.
    let desk = c.user("front.desk", "RECEPTIONIST", json!({})).await?;
    let pref = desk
        .ok(
            "mutation($p: ID!) { setMessagePreferences(patientId: $p, email: true, sms: false) { email sms } }",
            json!({ "p": amina_id }),
        )
        .await?;
    assert_eq!(
        pref["setMessagePreferences"],
        json!({ "email": true, "sms": false })
    );
    book(&c, &amina_id, &slots[1]).await?;
    sinks
        .until(30, |r| r.iter().filter(|m| to_is(m, email)).count() >= 4)
        .await?;
    let all = outbox(&c.admin, None).await?;
    let to_phone = all.iter().filter(|m| m["channel"] == "SMS").count();
    assert_eq!(to_phone, 2, "no SMS after opting out: {all:#?}");

    // Permanent refusals end as FAILED with the relay's and the gateway's reason.
    let bounce = c
        .admin
        .ok(
            "mutation { createPatient(input: {name: \"Bounce Case\", email: \"bounce@example.org\", phone: \"+254 700 000 000\"}) { id } }",
            json!({}),
        )
        .await?;
    let bounce_id = bounce["createPatient"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    book(&c, &bounce_id, &slots[2]).await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let failed = loop {
        let failed = outbox(&c.admin, Some("FAILED")).await?;
        if failed.len() >= 4 || std::time::Instant::now() > deadline {
            break failed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(failed.len(), 4, "{failed:#?}");
    // A technician's monitoring sees them on /metrics (served to loopback).
    let (_, metrics) = c.admin.get("/metrics").await?;
    assert!(
        metrics.contains("healsync_outbox_messages{status=\"FAILED\"} 4"),
        "{metrics}"
    );
    for m in &failed {
        let why = m["lastError"].as_str().unwrap_or_default();
        let want = if m["channel"] == "EMAIL" {
            "550"
        } else {
            "HTTP 422"
        };
        assert!(why.contains(want), "{why}");
        assert_eq!(m["attempts"], 1, "a permanent refusal is not retried");
    }
    // No answer carries the gateway's secret.
    for answer in [json!(all), json!(failed)] {
        assert!(!answer.to_string().contains("gateway-secret"));
    }
    // The patient and other staff cannot read the outbox; a patient sets only their own.
    let amina_login = c
        .user("amina", "PATIENT", json!({ "patientId": amina_id }))
        .await?;
    for who in [&desk, &amina_login] {
        assert_eq!(
            who.query(OUTBOX, json!({})).await?.code(),
            Some("FORBIDDEN")
        );
    }
    let other = amina_login
        .query(
            "mutation($p: ID!) { setMessagePreferences(patientId: $p, email: false, sms: false) { email } }",
            json!({ "p": bounce_id }),
        )
        .await?;
    assert_eq!(other.code(), Some("NOT_FOUND"));

    // After a restart, no appointment is reminded twice.
    let node = c.node;
    node.kill().await?;
    let again = start(&sinks, dir.path()).await?;
    let admin = again.admin().await?;
    let brian = admin
        .ok(
            "mutation { createPatient(input: {name: \"Brian Otieno\", email: \"brian@example.org\"}) { id } }",
            json!({}),
        )
        .await?;
    let brian_id = brian["createPatient"]["id"].as_str().unwrap_or_default();
    admin
        .ok(
            BOOK,
            json!({ "p": brian_id, "d": c.doctor_id, "at": slots[3] }),
        )
        .await?;
    // Brian's booking and reminder arrive after the restarted worker's reminder scan.
    let got = sinks
        .until(30, |r| {
            r.iter().filter(|m| to_is(m, "brian@example.org")).count() >= 2
        })
        .await?;
    let reminders = got
        .iter()
        .filter(|m| {
            to_is(m, email) && m.subject.as_deref() == Some("NBO clinic: Appointment reminder")
        })
        .count();
    assert_eq!(reminders, 2, "one reminder per appointment");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_twenty_times_mid_send_loses_no_message() -> Result<()> {
    let sinks = Sinks::start(40, AUTH).await?;
    let dir = tempfile::tempdir()?;
    let c = Clinic::on(start(&sinks, dir.path()).await?, tempfile::tempdir()?).await?;
    let slots = c.slots(&c.doctor_id, 25).await?;
    for (i, slot) in slots.iter().enumerate() {
        let p = c.patient(&format!("Patient Number{i}")).await?;
        book(&c, p["id"].as_str().unwrap_or_default(), slot).await?;
    }
    // 25 bookings and 25 reminders, each by e-mail and SMS: 100 messages.
    let mut node = c.node;
    let mut kills = 0;
    while kills < 20 {
        let before = sinks.received()?.len();
        if before >= 100 {
            break;
        }
        // Kill once the worker is sending (a message arrived since the start).
        sinks.until(30, |r| r.len() > before).await?;
        node.kill().await?;
        kills += 1;
        node = start(&sinks, dir.path()).await?;
    }
    assert_eq!(kills, 20, "everything was sent before the twentieth kill");

    let admin = node.admin().await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !outbox(&admin, Some("PENDING")).await?.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "messages still pending"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let all = outbox(&admin, None).await?;
    assert_eq!(all.len(), 100, "one message per notice and channel");
    assert!(all.iter().all(|m| m["status"] == "SENT"), "{all:#?}");
    let received = sinks.received()?;
    let mut times: BTreeMap<String, usize> = BTreeMap::new();
    for r in &received {
        *times.entry(r.key.clone().unwrap_or_default()).or_default() += 1;
    }
    for m in &all {
        let id = m["id"].as_str().unwrap_or_default();
        let key = if m["channel"] == "EMAIL" {
            format!("<{id}@nbo.healsync>")
        } else {
            id.to_string()
        };
        assert!(times.contains_key(&key), "message {key} was lost");
    }
    assert_eq!(times.len(), 100, "every key received belongs to a message");
    let repeats: usize = times.values().map(|n| n - 1).sum();
    eprintln!(
        "{kills} kills, {} messages, {repeats} sent twice",
        all.len()
    );
    assert!(
        repeats <= kills,
        "{repeats} repeats after {kills} kills: at most one per kill"
    );
    Ok(())
}

/// A booking a central admin makes at the hub into a clinic's schedule reaches the
/// patient from that clinic: its node receives the hub's notice by sync and sends it
/// by e-mail and SMS, once, with the key derived from the notice (a notice written
/// twice, or merged again, is one message).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_made_at_the_hub_reaches_the_patient_from_its_clinic() -> Result<()> {
    let sinks = Sinks::start(0, AUTH).await?;
    let hub = crate::TestHub::start("hub_notice", &[("NBO", "Nairobi")]).await?;
    let dir = hub.enroll("NBO").await?;
    let mut flags: Vec<String> = vec!["--sync-interval".into(), "1".into()];
    flags.extend(sinks.flags());
    flags.extend(["--sms-authorization".into(), AUTH.into()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let c = Clinic::on(NodeProcess::start(binary(), dir.path(), &flags).await?, dir).await?;
    let amina = c.patient("Amina Njoroge").await?;
    let amina_id = amina["id"].as_str().unwrap_or_default().to_string();
    // Far enough ahead that no reminder is due: the booking's notice is all there is.
    let slot = c
        .slots(&c.doctor_id, 200)
        .await?
        .pop()
        .ok_or_else(|| anyhow!("no slot"))?;

    let central = hub.process.admin().await?;
    crate::eventually("the hub to hold the patient and the doctor", || async {
        let r = central
            .query(
                "query($p: ID!, $d: ID!) { patient(id: $p) { id } doctor(id: $d) { id } }",
                json!({ "p": amina_id, "d": c.doctor_id }),
            )
            .await?;
        Ok(r.code().is_none().then_some(()))
    })
    .await?;
    central
        .ok(
            crate::hub_api::HUB_BOOK,
            json!({ "s": "NBO", "p": amina_id, "d": c.doctor_id, "at": slot, "r": "Follow-up" }),
        )
        .await?;

    let email = "amina.njoroge@example.org";
    let booked = |m: &&Received| {
        m.subject.as_deref() == Some("NBO clinic: Appointment booked")
            || m.text
                .as_deref()
                .is_some_and(|t| t.starts_with("NBO clinic: Appointment booked"))
    };
    let got = sinks
        .until(60, |r| {
            r.iter()
                .filter(booked)
                .filter(|m| m.channel == "EMAIL" && to_is(m, email))
                .count()
                == 1
                && r.iter()
                    .filter(booked)
                    .filter(|m| m.channel == "SMS")
                    .count()
                    == 1
        })
        .await?;
    // What the clinic's outbox holds is exactly what was sent, under the notice's keys.
    let sent = crate::eventually("both messages marked sent", || async {
        let sent = outbox(&c.admin, Some("SENT")).await?;
        Ok((sent.len() == 2).then_some(sent))
    })
    .await?;
    let keys: BTreeSet<String> = got
        .iter()
        .filter(booked)
        .filter_map(|m| m.key.clone())
        .collect();
    assert_sent_under_their_keys(&sent, &keys);
    assert_eq!(outbox(&c.admin, None).await?.len(), 2);
    Ok(())
}
