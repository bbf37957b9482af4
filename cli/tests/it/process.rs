//! The node as a process: crash and restart, clean stop, the command line, the pages.

use anyhow::Result;
use healsync_test_support::{ADMIN_PASSWORD, NodeProcess, run};
use serde_json::json;

use crate::{BOOK, Clinic, binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_when_the_process_is_killed() -> Result<()> {
    let c = Clinic::start().await?;
    let p = c.patient("Faith Omondi").await?;
    let slots = c.slots(&c.doctor_id, 1).await?;
    let booked = c
        .admin
        .ok(
            BOOK,
            json!({ "p": p["id"], "d": c.doctor_id, "at": slots[0] }),
        )
        .await?;
    // The answer came back: SIGKILL at once, no chance to flush anything.
    let Clinic {
        node, _dir: dir, ..
    } = c;
    let data_dir = node.data_dir.clone();
    node.kill().await?;

    assert_projections_match(&data_dir).await?;
    // The technician's view of the stopped node.
    let data = data_dir.to_str().unwrap_or_default();
    let out = run(binary(), &["status", "--data-dir", data, "--json"], None).await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(status["site"], "NBO");
    assert_eq!(status["hub"], serde_json::Value::Null);
    assert_eq!(status["openConflicts"], 0);
    // Admin, doctor, schedule, patient, appointment, two notifications: nothing synced.
    assert!(
        status["changesWaitingToUpload"].as_i64().unwrap_or(0) >= 7,
        "{status}"
    );

    let again = NodeProcess::start(binary(), &data_dir, &[]).await?;
    let admin = again.admin().await?;
    let got = admin
        .ok(
            "query($id: ID!) { appointment(id: $id) { status scheduledAt patient { name mrn } } }",
            json!({ "id": booked["bookAppointment"]["id"] }),
        )
        .await?;
    assert_eq!(got["appointment"]["status"], "BOOKED");
    assert_eq!(got["appointment"]["patient"]["name"], "Faith Omondi");
    assert_eq!(got["appointment"]["patient"]["mrn"], p["mrn"]);
    // The site and the MRN sequence survive too.
    let next = admin
        .ok(
            "mutation { createPatient(input: {name: \"Next One\", email: \"n@o.org\"}) { mrn } }",
            json!({}),
        )
        .await?;
    assert_eq!(next["createPatient"]["mrn"], "NBO-000002");
    drop(dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_the_cli_manages_users() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = NodeProcess::start(binary(), dir.path(), &[]).await?;
    assert!(
        node.banner
            .iter()
            .any(|l| l.contains("first administrator")),
        "{:?}",
        node.banner
    );
    let data_dir = dir.path().to_str().unwrap_or_default();

    // users add, while the node is running, with the password on stdin; then bad input
    // on the command line: a clear message and a failure exit code.
    let add = |user: &'static str, role: &'static str| {
        let args = ["users", "add", user, "--role", role, "--data-dir", data_dir];
        let node = &node;
        async move { node.run(&args, Some("nurse-password\n")).await }
    };
    let out = add("nurse.joy", "RECEPTIONIST").await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    node.gql().login("nurse.joy", "nurse-password").await?;
    for (user, role, message) in [
        ("nurse.joy", "RECEPTIONIST", "already exists"),
        ("x.y", "SURGEON", "SURGEON"),
        ("pat", "PATIENT", "linked to exactly one patient record"),
        ("fin", "FINANCE", "FINANCE accounts exist at the hub only"),
    ] {
        let out = add(user, role).await?;
        assert!(!out.status.success(), "{user} {role}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{stderr}");
    }

    // The console and the start page load with no external reference: their
    // scripts and styles are files of the same server.
    let (status, console) = node.gql().get("/graphiql").await?;
    assert_eq!(status, 200);
    let (status, script) = node.gql().get("/graphiql/console.js").await?;
    assert_eq!(status, 200);
    assert!(script.contains("graphql-transport-ws"));
    for page in [&console, &script] {
        for external in [
            "http://",
            "https://",
            "cdn",
            "unpkg",
            "src=\"//",
            "href=\"//",
        ] {
            assert!(
                !page.contains(external),
                "the console references {external:?}"
            );
        }
    }
    // `/` is the clinic web app, whose every script and stylesheet the node serves.
    let (status, app) = node.gql().get("/").await?;
    assert_eq!(status, 200);
    assert!(app.contains("<div id=\"app\">"), "{app}");
    let assets: Vec<&str> = app
        .split('"')
        .filter(|s| s.starts_with("/assets/"))
        .collect();
    assert!(!assets.is_empty(), "{app}");
    for asset in assets {
        let resp = node
            .gql()
            .http()
            .get(format!("{}{asset}", node.base))
            .send()
            .await?;
        assert_eq!(resp.status().as_u16(), 200, "{asset}");
        let cache = resp
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok());
        assert_eq!(
            cache,
            Some("public, max-age=31536000, immutable"),
            "{asset}"
        );
    }
    let (status, _) = node.gql().get("/assets/nothing-here.js").await?;
    assert_eq!(status, 404);
    let (status, health) = node.gql().get("/healthz").await?;
    assert_eq!((status, health.contains("\"ok\"")), (200, true));
    let (status, ready) = node.gql().get("/readyz").await?;
    assert_eq!(
        (status, ready.contains("\"ready\"")),
        (200, true),
        "{ready}"
    );

    assert!(
        node.terminate().await?,
        "SIGTERM must end the process with success"
    );
    // The first admin is created once; a restart keeps the same password.
    let again = NodeProcess::start(binary(), dir.path(), &[]).await?;
    assert!(
        !again
            .banner
            .iter()
            .any(|l| l.contains("first administrator"))
    );
    again.gql().login("admin", ADMIN_PASSWORD).await?;
    // Another site on this data directory is refused.
    let wrong = run(
        binary(),
        &[
            "serve",
            "--data-dir",
            data_dir,
            "--site",
            "MSA",
            "--listen",
            "127.0.0.1:0",
        ],
        None,
    )
    .await?;
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("belongs to site DEV"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_data_is_realistic_and_consistent() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = NodeProcess::start(binary(), dir.path(), &["--demo"]).await?;
    let admin = node.admin().await?;
    let d = admin.ok("{ doctors { name schedules { weekly { weekday } } } patients(limit: 500) { id } appointments(limit: 500) { status } }", json!({})).await?;
    assert_eq!(d["doctors"].as_array().map(Vec::len), Some(5));
    assert!(
        d["doctors"][0]["schedules"][0]["weekly"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
            >= 5
    );
    assert_eq!(d["patients"].as_array().map(Vec::len), Some(300));
    assert!(
        d["appointments"].as_array().map(Vec::len).unwrap_or(0) > 100,
        "{}",
        d["appointments"]
    );
    // Demo accounts log in with the administrator's password and see their own scope.
    let doctor = node.gql().login("doctor", ADMIN_PASSWORD).await?;
    let mine = doctor
        .ok(
            "{ appointments(limit: 500) { doctor { name } } }",
            json!({}),
        )
        .await?;
    assert!(
        mine["appointments"]
            .as_array()
            .is_some_and(|l| l.iter().all(|a| a["doctor"]["name"] == "Dr. Wanjiru Kamau"))
    );
    node.gql().login("patient", ADMIN_PASSWORD).await?;
    // Completed visits are billed from the price list; most are paid.
    let desk = node.gql().login("reception", ADMIN_PASSWORD).await?;
    let bills = desk
        .ok(
            "{ priceList { code } invoices(limit: 500) { number status appointmentId total { amount currency } } }",
            json!({}),
        )
        .await?;
    assert_eq!(bills["priceList"].as_array().map(Vec::len), Some(6));
    let invoices = bills["invoices"].as_array().cloned().unwrap_or_default();
    assert!(invoices.len() > 20, "{}", bills["invoices"]);
    let with_status = |s: &str| invoices.iter().filter(|i| i["status"] == s).count();
    assert!(
        with_status("PAID") > 0 && with_status("PARTIALLY_PAID") > 0 && with_status("ISSUED") > 0
    );
    assert!(
        invoices
            .iter()
            .all(|i| i["appointmentId"].is_string() && i["total"]["currency"] == "KES")
    );
    node.kill().await?;
    assert_projections_match(dir.path()).await?;
    Ok(())
}

/// `healsync-node projections check` on a stopped node's data directory passes.
async fn assert_projections_match(data_dir: &std::path::Path) -> Result<()> {
    let dir = data_dir.to_str().unwrap_or_default();
    let check = run(binary(), &["projections", "check", "--data-dir", dir], None).await?;
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{out}");
    assert!(out.contains("Projections match"), "{out}");
    Ok(())
}
