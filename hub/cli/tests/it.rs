//! `healsync-hub` as an operator meets it: real processes, a real PostgreSQL database.

use std::path::Path;

use anyhow::Result;
use healsync_test_support::{HubProcess, TestDatabase, run};
use serde_json::json;

fn hub() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_healsync-hub"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_tokens_and_nodes_from_the_command_line() -> Result<()> {
    let db = TestDatabase::create("hubcli").await?;
    let url = db.url.as_str();

    let out = run(
        hub(),
        &[
            "sites",
            "add",
            "nbo",
            "--name",
            "Nairobi clinic",
            "--database-url",
            url,
        ],
        None,
    )
    .await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Added site NBO"));
    let dup = run(
        hub(),
        &[
            "sites",
            "add",
            "NBO",
            "--name",
            "Again",
            "--database-url",
            url,
        ],
        None,
    )
    .await?;
    assert!(!dup.status.success());
    assert!(
        text(&dup.stderr).contains("already exists"),
        "{}",
        text(&dup.stderr)
    );
    let bad = run(
        hub(),
        &[
            "sites",
            "add",
            "N-B-O",
            "--name",
            "Bad",
            "--database-url",
            url,
        ],
        None,
    )
    .await?;
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("letters or digits"));

    let ca_dir = tempfile_dir()?;
    let ca = ca_dir.to_str().unwrap_or_default();
    // A data directory the hub has never served from has no CA: the command refuses
    // rather than make one whose tokens would fail at enrollment.
    let stray = run(
        hub(),
        &[
            "nodes",
            "token",
            "--site",
            "NBO",
            "--data-dir",
            ca,
            "--database-url",
            url,
        ],
        None,
    )
    .await?;
    assert!(!stray.status.success());
    assert!(
        text(&stray.stderr).contains("pass the --data-dir the hub serves with"),
        "{}",
        text(&stray.stderr)
    );
    assert!(!std::path::Path::new(ca).join("ca-cert.pem").exists());
    // The CA `serve` makes on its first start.
    healsync_sync_transport::ca::HubCa::load_or_create(std::path::Path::new(ca))?;
    let token = run(
        hub(),
        &[
            "nodes",
            "token",
            "--site",
            "NBO",
            "--data-dir",
            ca,
            "--database-url",
            url,
        ],
        None,
    )
    .await?;
    assert!(token.status.success(), "{}", text(&token.stderr));
    // SECRET.PIN.SITE: the one-time secret, the CA's fingerprint, the site.
    let token = text(&token.stdout).trim().to_string();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(
        (parts.len(), parts[0].len(), parts[1].len(), parts[2]),
        (3, 48, 32, "NBO"),
        "{token}"
    );
    assert!(std::path::Path::new(ca).join("ca-cert.pem").exists());
    let none = run(
        hub(),
        &[
            "nodes",
            "token",
            "--site",
            "XYZ",
            "--data-dir",
            ca,
            "--database-url",
            url,
        ],
        None,
    )
    .await?;
    assert!(!none.status.success());
    assert!(text(&none.stderr).contains("no site XYZ"));

    let list = run(
        hub(),
        &["nodes", "list", "--json", "--database-url", url],
        None,
    )
    .await?;
    assert_eq!(text(&list.stdout).trim(), "[]");
    let revoke = run(
        hub(),
        &[
            "nodes",
            "revoke",
            "01930000-0000-7000-8000-000000000000",
            "--database-url",
            url,
        ],
        None,
    )
    .await?;
    assert!(!revoke.status.success());
    assert!(text(&revoke.stderr).contains("no node"));
    let garbage = run(
        hub(),
        &["nodes", "revoke", "not-an-id", "--database-url", url],
        None,
    )
    .await?;
    assert!(!garbage.status.success());
    let unreachable = run(
        hub(),
        &[
            "nodes",
            "list",
            "--database-url",
            "postgres://postgres@127.0.0.1:1/none",
        ],
        None,
    )
    .await?;
    assert!(!unreachable.status.success());
    assert!(text(&unreachable.stderr).contains("open the hub database"));

    std::fs::remove_dir_all(&ca_dir)?;
    db.drop_database().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_migrates_listens_answers_health_and_stops_on_sigterm() -> Result<()> {
    let db = TestDatabase::create("hubserve").await?;
    let dir = tempfile_dir()?;
    let proc = HubProcess::start(hub(), &db.url, &dir, "127.0.0.1:0").await?;
    let (status, health) = proc.gql().get("/healthz").await?;
    assert_eq!(status, 200);
    assert!(health.contains("\"ok\""), "{health}");
    let (status, ready) = proc.gql().get("/readyz").await?;
    assert_eq!(
        (status, ready.contains("\"ready\"")),
        (200, true),
        "{ready}"
    );
    let (status, metrics) = proc.gql().get("/metrics").await?;
    assert!(status == 200 && metrics.contains("healsync_hub_graphql_requests_total"));
    let (status, console) = proc.gql().get("/graphiql").await?;
    assert!(
        status == 200 && !console.contains("https://"),
        "the console loads nothing from outside"
    );
    // The CA was created in the data directory, key private.
    assert!(dir.join("ca-cert.pem").exists() && dir.join("ca-key.pem").exists());

    // Central admins: the first administrator logs in; other roles and strangers do not.
    let anonymous = proc.gql().query("{ sites { code } }", json!({})).await?;
    assert_eq!(anonymous.code(), Some("UNAUTHENTICATED"));
    let admin = proc.admin().await?;
    run(
        hub(),
        &[
            "sites",
            "add",
            "NBO",
            "--name",
            "Nairobi",
            "--database-url",
            &db.url,
        ],
        None,
    )
    .await?;
    let sites = admin
        .ok(
            "{ sites { code name openConflicts nodes { id } } }",
            json!({}),
        )
        .await?;
    assert_eq!(
        sites["sites"],
        json!([{ "code": "NBO", "name": "Nairobi", "openConflicts": 0, "nodes": [] }])
    );

    // `users add`: a site's front desk (replicated to that site) and a central admin.
    let added = run(
        hub(),
        &[
            "users",
            "add",
            "wanjiru",
            "--role",
            "RECEPTIONIST",
            "--site",
            "NBO",
            "--database-url",
            &db.url,
        ],
        Some("front-desk-secret-1\n"),
    )
    .await?;
    assert!(added.status.success(), "{}", text(&added.stderr));
    assert!(text(&added.stdout).contains("at site NBO"));
    let again = run(
        hub(),
        &[
            "users",
            "add",
            "wanjiru",
            "--role",
            "ADMIN",
            "--database-url",
            &db.url,
        ],
        Some("another-secret-22\n"),
    )
    .await?;
    assert!(!again.status.success() && text(&again.stderr).contains("already exists"));
    let nowhere = run(
        hub(),
        &[
            "users",
            "add",
            "otieno",
            "--role",
            "ADMIN",
            "--site",
            "XYZ",
            "--database-url",
            &db.url,
        ],
        Some("another-secret-22\n"),
    )
    .await?;
    assert!(!nowhere.status.success() && text(&nowhere.stderr).contains("no site XYZ"));
    let users = admin
        .ok("{ records(kind: \"user\") { site fields } }", json!({}))
        .await?;
    let list = users["records"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2, "{users}");
    assert!(
        list.iter()
            .all(|u| u["fields"].get("passwordHash").is_none()),
        "password hashes never leave the hub's documents"
    );
    let front_desk = proc.gql().query(
        "mutation { login(username: \"wanjiru\", password: \"front-desk-secret-1\") { token } }",
        json!({}),
    )
    .await?;
    assert_eq!(
        front_desk.code(),
        Some("UNAUTHENTICATED"),
        "only admins use the hub"
    );

    // Bad input is a coded error, never a crash.
    let bad = admin
        .query(
            "{ appointments(from: \"yesterday\", to: \"2026-01-01T00:00:00Z\") { id } }",
            json!({}),
        )
        .await?;
    assert_eq!(bad.code(), Some("BAD_USER_INPUT"));
    let settle = |value: &str| {
        format!(
            "mutation {{ resolveConflict(recordId: \"0190b6d2-0000-7000-8000-000000000000\", field: \"phone\", value: \"{value}\") }}"
        )
    };
    let not_a_phone = admin.query(&settle("1"), json!({})).await?;
    assert_eq!(
        not_a_phone.code(),
        Some("BAD_USER_INPUT"),
        "a typed value is checked like an edit"
    );
    let unknown = admin.query(&settle("+254 700 000 000"), json!({})).await?;
    assert_eq!(unknown.code(), Some("NOT_FOUND"));
    for (patient, code) in [
        ("not-an-id", "BAD_USER_INPUT"),
        ("0190b6d2-0000-7000-8000-000000000000", "NOT_FOUND"),
    ] {
        let shared = admin
            .query(
                "mutation($p: ID!) { sharePatient(patientId: $p, site: \"NBO\") }",
                json!({ "p": patient }),
            )
            .await?;
        assert_eq!(shared.code(), Some(code), "{patient}: {:?}", shared.body);
    }

    assert!(proc.terminate().await?, "the hub stops cleanly on SIGTERM");
    std::fs::remove_dir_all(&dir)?;
    db.drop_database().await?;
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("healsync-hub-test-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
