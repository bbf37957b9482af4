//! The whole sync chain as technicians run it: a real `healsync-hub` process on
//! PostgreSQL, two clinic nodes enrolled with tokens, `healsync-node sync` over QUIC
//! with mutual TLS, revocation, and two hub replicas on one database.

use std::path::Path;

use anyhow::{Result, bail};
use healsync_test_support::{HubProcess, NodeProcess, TestDatabase, run};
use serde_json::{Value, json};

use crate::{binary, hub_binary};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

async fn ok(bin: &Path, args: &[&str]) -> Result<String> {
    let out = run(bin, args, None).await?;
    if !out.status.success() {
        bail!("{} {args:?} failed: {}", bin.display(), text(&out.stderr));
    }
    Ok(text(&out.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clinics_enroll_sync_through_a_hub_process_and_a_revoked_node_is_refused() -> Result<()>
{
    let hub = hub_binary().await?;
    let db = TestDatabase::create("synccli").await?;
    let url = db.url.clone();
    let hub_dir = tempfile::tempdir()?;
    let hub_data = hub_dir.path().to_str().unwrap_or_default().to_string();
    for (code, name) in [("NBO", "Nairobi"), ("MSA", "Mombasa")] {
        ok(
            &hub,
            &["sites", "add", code, "--name", name, "--database-url", &url],
        )
        .await?;
    }
    let hub_proc = HubProcess::start(&hub, &url, hub_dir.path(), "127.0.0.1:0").await?;
    let sync_addr = hub_proc.sync_addr.clone();
    let token = |site: &'static str| {
        let (hub, url, hub_data) = (hub.clone(), url.clone(), hub_data.clone());
        async move {
            ok(
                &hub,
                &[
                    "nodes",
                    "token",
                    "--site",
                    site,
                    "--data-dir",
                    &hub_data,
                    "--database-url",
                    &url,
                ],
            )
            .await
        }
    };

    // Nairobi enrolls a new data directory, serves, registers a patient, syncs.
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (a, b) = (
        dir_a.path().to_str().unwrap_or_default(),
        dir_b.path().to_str().unwrap_or_default(),
    );
    let t_nbo = token("NBO").await?;
    let enrolled = ok(
        binary(),
        &[
            "enroll",
            "--hub",
            &sync_addr,
            "--token",
            t_nbo.trim(),
            "--data-dir",
            a,
        ],
    )
    .await?;
    assert!(enrolled.contains("of site NBO"), "{enrolled}");
    let reuse = run(
        binary(),
        &[
            "enroll",
            "--hub",
            &sync_addr,
            "--token",
            t_nbo.trim(),
            "--data-dir",
            b,
        ],
        None,
    )
    .await?;
    assert!(!reuse.status.success(), "a token works once");
    let node_a = NodeProcess::start(binary(), dir_a.path(), &[]).await?;
    let admin_a = node_a.admin().await?;
    admin_a
        .ok("mutation { createPatient(input: {name: \"Amina Njoroge\", email: \"amina@example.org\"}) { mrn } }", json!({}))
        .await?;
    let summary: Value =
        serde_json::from_str(&ok(binary(), &["sync", "--data-dir", a, "--json"]).await?)?;
    // `serve` syncs by itself too (its first round may already have carried the admin
    // account); this round carries at least the new patient.
    assert!(summary["uploaded"].as_u64().unwrap_or(0) >= 1, "{summary}");
    let status: Value =
        serde_json::from_str(&ok(binary(), &["status", "--data-dir", a, "--json"]).await?)?;
    assert_eq!(status["hub"], sync_addr.as_str());
    assert_eq!(status["changesWaitingToUpload"], 0);
    assert!(status["lastSuccessfulSync"].is_string());

    // Mombasa: a token of another site is refused before anything is sent.
    let wrong = run(
        binary(),
        &[
            "enroll",
            "--hub",
            &sync_addr,
            "--token",
            token("NBO").await?.trim(),
            "--data-dir",
            b,
        ],
        None,
    )
    .await?;
    assert!(
        wrong.status.success(),
        "a new data directory takes the token's site: {}",
        text(&wrong.stderr)
    );
    let again = run(
        binary(),
        &[
            "enroll",
            "--hub",
            &sync_addr,
            "--token",
            token("MSA").await?.trim(),
            "--data-dir",
            b,
        ],
        None,
    )
    .await?;
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("belongs to site NBO"),
        "{}",
        text(&again.stderr)
    );

    // Both are NBO nodes now; the second receives the first's patient.
    let summary: Value =
        serde_json::from_str(&ok(binary(), &["sync", "--data-dir", b, "--json"]).await?)?;
    assert!(
        summary["downloaded"].as_u64().unwrap_or(0) >= 1,
        "{summary}"
    );
    let node_b = NodeProcess::start(binary(), dir_b.path(), &[]).await?;
    let admin_b = node_b.admin().await?;
    let seen = admin_b
        .ok("{ patients(search: \"amina\") { name mrn } }", json!({}))
        .await?;
    assert_eq!(seen["patients"][0]["name"], "Amina Njoroge", "{seen}");
    assert_eq!(seen["patients"][0]["mrn"], "NBO-000001");

    // Revoked: the next sync is refused with a reason the technician can act on.
    let b_id = serde_json::from_str::<Value>(
        &ok(binary(), &["status", "--data-dir", b, "--json"]).await?,
    )?["nodeId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ok(&hub, &["nodes", "revoke", &b_id, "--database-url", &url]).await?;
    let refused = run(binary(), &["sync", "--data-dir", b], None).await?;
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("revoked"),
        "{}",
        text(&refused.stderr)
    );
    let list: Value = serde_json::from_str(
        &ok(&hub, &["nodes", "list", "--json", "--database-url", &url]).await?,
    )?;
    assert_eq!(list.as_array().map(Vec::len), Some(2));

    node_a.kill().await?;
    node_b.kill().await?;
    hub_proc.kill().await?;
    db.drop_database().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_nodes_sync_by_themselves_and_open_screens_update() -> Result<()> {
    use healsync_test_support::{Ws, WsEvent};
    let hub = hub_binary().await?;
    let db = TestDatabase::create("syncserve").await?;
    let url = db.url.clone();
    let hub_dir = tempfile::tempdir()?;
    let hub_data = hub_dir.path().to_str().unwrap_or_default().to_string();
    for (code, name) in [("NBO", "Nairobi"), ("MSA", "Mombasa")] {
        ok(
            &hub,
            &["sites", "add", code, "--name", name, "--database-url", &url],
        )
        .await?;
    }
    let hub_proc = HubProcess::start(&hub, &url, hub_dir.path(), "127.0.0.1:0").await?;
    // A second hub replica on the same database and keys: Nairobi syncs with the
    // first, Mombasa with the second.
    let replica = HubProcess::start(&hub, &url, hub_dir.path(), "127.0.0.1:0").await?;

    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    for (site, dir, sync_addr) in [
        ("NBO", &dir_a, &hub_proc.sync_addr),
        ("MSA", &dir_b, &replica.sync_addr),
    ] {
        let token = ok(
            &hub,
            &[
                "nodes",
                "token",
                "--site",
                site,
                "--data-dir",
                &hub_data,
                "--database-url",
                &url,
            ],
        )
        .await?;
        let d = dir.path().to_str().unwrap_or_default();
        ok(
            binary(),
            &[
                "enroll",
                "--hub",
                sync_addr,
                "--token",
                token.trim(),
                "--data-dir",
                d,
            ],
        )
        .await?;
    }
    let node_a = NodeProcess::start(binary(), dir_a.path(), &["--sync-interval", "1"]).await?;
    let node_b = NodeProcess::start(binary(), dir_b.path(), &["--sync-interval", "1"]).await?;

    // A receptionist in Mombasa watches patient records.
    let admin_b = node_b.admin().await?;
    let mut screen =
        Ws::connect_with_token(&node_b.base, admin_b.token.as_deref().unwrap_or_default()).await?;
    screen
        .subscribe(
            "p",
            "subscription { patientUpdated { name mrn site } }",
            json!({}),
        )
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // Nairobi registers a patient; nobody runs a command. She is expected in Mombasa,
    // so a central admin shares her record with Mombasa as soon as it is at the hub.
    let admin_a = node_a.admin().await?;
    let halima = admin_a
        .ok("mutation { createPatient(input: {name: \"Halima Hassan\", email: \"halima@example.org\"}) { id } }", json!({}))
        .await?;
    let halima = halima["createPatient"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let hub_admin = hub_proc.admin().await?;
    share_when_at_hub(&hub_admin, &halima, "msa").await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            bail!("the patient shared with Mombasa never reached the Mombasa screen");
        }
        match screen.next_event(left).await? {
            WsEvent::Next { payload, .. }
                if payload["data"]["patientUpdated"]["name"] == "Halima Hassan" =>
            {
                assert_eq!(payload["data"]["patientUpdated"]["site"], "NBO");
                break;
            }
            WsEvent::Next { .. } => continue,
            other => bail!("unexpected {other:?}"),
        }
    }

    // A central admin watches patients at the hub: a patient arriving from a node fires.
    let mut central = Ws::connect_with_token(
        &hub_proc.base,
        hub_admin.token.as_deref().unwrap_or_default(),
    )
    .await?;
    central
        .subscribe(
            "h",
            "subscription { recordChanged(kind: \"patient\") { kind site heads fields } }",
            json!({}),
        )
        .await?;
    // Another admin watches the second replica, which Nairobi does not talk to: what
    // the first replica receives and writes reaches its subscriptions too.
    let replica_admin = replica.admin().await?;
    let mut elsewhere = Ws::connect_with_token(
        &replica.base,
        replica_admin.token.as_deref().unwrap_or_default(),
    )
    .await?;
    for (id, kind) in [("p", "patient"), ("a", "appointment")] {
        elsewhere
            .subscribe(
                id,
                &format!(
                    "subscription {{ recordChanged(kind: \"{kind}\") {{ kind site fields }} }}"
                ),
                json!({}),
            )
            .await?;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let created = admin_a
        .ok("mutation { createPatient(input: {name: \"Baraka Otieno\", email: \"baraka@example.org\"}) { id } }", json!({}))
        .await?;
    let baraka = created["createPatient"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    wait_for(&mut central, |p| {
        p["data"]["recordChanged"]["fields"]["name"] == "Baraka Otieno"
            && p["data"]["recordChanged"]["heads"]
                .as_str()
                .is_some_and(|h| !h.is_empty())
    })
    .await
    .map_err(|e| anyhow::anyhow!("the hub's subscription never saw the patient: {e}"))?;
    wait_for(&mut elsewhere, |p| {
        p["data"]["recordChanged"]["fields"]["name"] == "Baraka Otieno"
    })
    .await
    .map_err(|e| anyhow::anyhow!("the other replica's subscription never saw the patient: {e}"))?;

    // Cross-site scheduling: Nairobi's doctor and schedule reach the hub; a central
    // admin books into Nairobi's schedule; the Nairobi front desk's open screen shows it.
    let doctor = admin_a
        .ok("mutation { createDoctor(input: {name: \"Dr. Achieng Odhiambo\", specializations: [\"Paediatrics\"], licenceNumber: \"KMPDC-77\"}) { id } }", json!({}))
        .await?;
    let doctor = doctor["createDoctor"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let every_day: Vec<Value> = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
        .iter()
        .map(|d| json!({ "weekday": d, "start": "00:00", "end": "23:40" }))
        .collect();
    admin_a
        .ok(
            "mutation($d: ID!, $w: [WeeklyRuleInput!]!) { setSchedule(input: {doctorId: $d, slotMinutes: 20, weekly: $w}) { id } }",
            json!({ "d": doctor, "w": every_day }),
        )
        .await?;
    let mut front_desk =
        Ws::connect_with_token(&node_a.base, admin_a.token.as_deref().unwrap_or_default()).await?;
    front_desk
        .subscribe(
            "a",
            "subscription { appointmentUpdated { status patient { name } } }",
            json!({}),
        )
        .await?;
    let from = chrono::Utc::now() + chrono::Duration::hours(1);
    let to = from + chrono::Duration::days(2);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let slot = loop {
        let seen = hub_admin
            .ok(
                "query($d: ID!, $f: String!, $t: String!) { doctorAvailability(doctorId: $d, from: $f, to: $t) { site freeSlots { start } } }",
                json!({ "d": doctor, "f": from.to_rfc3339(), "t": to.to_rfc3339() }),
            )
            .await?;
        let first = seen["doctorAvailability"]
            .as_array()
            .and_then(|sites| sites.iter().find(|s| s["site"] == "NBO"))
            .and_then(|s| s["freeSlots"][0]["start"].as_str())
            .map(str::to_string);
        if let Some(start) = first {
            break start;
        }
        if std::time::Instant::now() > deadline {
            bail!("the doctor's Nairobi schedule never reached the hub: {seen}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    let booked = hub_admin
        .ok(
            "mutation($p: ID!, $d: ID!, $at: String!) { bookAppointment(input: {site: \"NBO\", patientId: $p, doctorId: $d, scheduledAt: $at, reason: \"Referral\"}) { site status } }",
            json!({ "p": baraka, "d": doctor, "at": slot }),
        )
        .await?;
    assert_eq!(
        booked["bookAppointment"],
        json!({ "site": "NBO", "status": "BOOKED" })
    );
    let again = hub_admin
        .query(
            "mutation($p: ID!, $d: ID!, $at: String!) { bookAppointment(input: {site: \"NBO\", patientId: $p, doctorId: $d, scheduledAt: $at}) { id } }",
            json!({ "p": baraka, "d": doctor, "at": slot }),
        )
        .await?;
    assert_eq!(
        again.code(),
        Some("CONFLICT"),
        "the same slot twice from the hub"
    );
    wait_for(&mut elsewhere, |p| {
        let r = &p["data"]["recordChanged"];
        r["kind"] == "appointment" && r["site"] == "NBO" && r["fields"]["reason"] == "Referral"
    })
    .await
    .map_err(|e| {
        anyhow::anyhow!("a booking at one replica never reached the other's subscription: {e}")
    })?;
    wait_for(&mut front_desk, |p| {
        p["data"]["appointmentUpdated"]["patient"]["name"] == "Baraka Otieno"
    })
    .await
    .map_err(|e| anyhow::anyhow!("the hub's booking never reached Nairobi's screen: {e}"))?;
    // Nothing either clinic sent was refused, and central admins can see that.
    let refusals = hub_admin
        .ok(
            "{ refusals(limit: 5) { reason } sites { code nodes { refusedChanges } } }",
            json!({}),
        )
        .await?;
    assert_eq!(refusals["refusals"], json!([]));
    assert_eq!(
        refusals["sites"],
        json!([
            { "code": "MSA", "nodes": [{ "refusedChanges": 0 }] },
            { "code": "NBO", "nodes": [{ "refusedChanges": 0 }] },
        ])
    );
    // Mombasa holds only the patient shared with it.
    let at_msa = admin_b.ok("{ patients { name } }", json!({})).await?;
    assert_eq!(at_msa["patients"], json!([{ "name": "Halima Hassan" }]));

    node_a.kill().await?;
    node_b.kill().await?;
    hub_proc.kill().await?;
    replica.kill().await?;
    db.drop_database().await?;
    Ok(())
}

/// Shares a patient with `site` through the hub's GraphQL as soon as the patient has
/// reached the hub (30 s at most).
pub async fn share_when_at_hub(
    hub_admin: &healsync_test_support::Gql,
    patient: &str,
    site: &str,
) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let shared = hub_admin
            .query(
                "mutation($p: ID!, $s: String!) { sharePatient(patientId: $p, site: $s) }",
                json!({ "p": patient, "s": site }),
            )
            .await?;
        if shared.code().is_none() {
            assert_eq!(shared.data()?["sharePatient"], json!(true));
            return Ok(());
        }
        if shared.code() != Some("NOT_FOUND") || std::time::Instant::now() > deadline {
            bail!("the patient could not be shared: {}", shared.body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Waits (30 s at most) for a subscription event whose payload satisfies `want`.
async fn wait_for(ws: &mut healsync_test_support::Ws, want: impl Fn(&Value) -> bool) -> Result<()> {
    use healsync_test_support::WsEvent;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            bail!("timed out");
        }
        match ws.next_event(left).await? {
            WsEvent::Next { payload, .. } if want(&payload) => return Ok(()),
            WsEvent::Next { .. } => continue,
            other => bail!("unexpected {other:?}"),
        }
    }
}
