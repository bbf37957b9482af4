//! Finding 4: the HTTP and WebSocket surface. Only JSON is executed, WebSockets come
//! from the server's own pages and speak the protocol's close codes, every page
//! carries the security headers, and the node's files are its account's alone.

use std::time::Duration;

use anyhow::Result;
use healsync_test_support::Ws;
use serde_json::json;

use crate::{Clinic, leaks_nothing};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_json_is_executed_and_every_page_carries_the_security_headers() -> Result<()> {
    let _load = crate::beside().await;
    let clinic = Clinic::start().await?;
    let http = clinic.admin.http().clone();
    let url = format!("{}/graphql", clinic.node.base);
    let token = clinic.admin.token.clone().unwrap_or_default();
    // A cross-site form or "simple" request: text/plain, form-encoded, no type.
    for media in ["text/plain", "application/x-www-form-urlencoded", ""] {
        let mut req = http
            .post(&url)
            .bearer_auth(&token)
            .body(r#"{"query":"{ patients { name } }"}"#);
        if !media.is_empty() {
            req = req.header("content-type", media);
        }
        let resp = req.send().await?;
        assert_eq!(resp.status().as_u16(), 415, "{media}");
        let body: serde_json::Value = resp.json().await?;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        assert!(body.get("data").is_none_or(|d| d.is_null()), "{body}");
    }
    for path in [
        "/",
        "/graphiql",
        "/graphql?query=%7B__typename%7D",
        "/healthz",
        "/readyz",
    ] {
        let resp = http
            .get(format!("{}{path}", clinic.node.base))
            .send()
            .await?;
        let h = resp.headers();
        let csp = h
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(
            h.get("x-content-type-options")
                .and_then(|v| v.to_str().ok()),
            Some("nosniff"),
            "{path}"
        );
        assert!(h.get("referrer-policy").is_some(), "{path}");
    }
    // /metrics answers this machine (the tests connect over loopback).
    let (status, body) = clinic.node.gql().get("/metrics").await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_check_their_origin_and_use_the_protocol_close_codes() -> Result<()> {
    let _load = crate::beside().await;
    let clinic = Clinic::start().await?;
    let base = clinic.node.base.clone();
    let token = clinic.admin.token.clone().unwrap_or_default();
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}})
            .to_string();
    let wait = Duration::from_secs(10);

    // A page elsewhere cannot open one with a staff browser's help.
    assert!(
        Ws::open(&base, &[("Origin", "http://evil.example")])
            .await
            .is_err()
    );
    let host = base.trim_start_matches("http://").to_string();
    let same = format!("http://{host}");
    let mut ok = Ws::open(&base, &[("Origin", same.as_str())]).await?;
    ok.send_text(&init).await?;
    assert_eq!(
        ok.next_message(wait).await?.ok().map(|m| m["type"].clone()),
        Some(json!("connection_ack"))
    );

    // (what the client does, the close code expected)
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { appointmentUpdated { id } }"}}).to_string();
    let cases: Vec<(&str, Vec<String>, u16)> = vec![
        ("nothing within the init timeout", vec![], 4408),
        ("not JSON", vec!["hello".into()], 4400),
        ("subscribe before init", vec![subscribe.clone()], 4401),
        (
            "an init with a forged token",
            vec![
                json!({"type": "connection_init", "payload": {"Authorization": "Bearer forged"}})
                    .to_string(),
            ],
            4403,
        ),
        ("init twice", vec![init.clone(), init.clone()], 4429),
        (
            "one id twice",
            vec![init.clone(), subscribe.clone(), subscribe.clone()],
            4409,
        ),
    ];
    for (what, messages, code) in cases {
        let mut ws = Ws::open(&base, &[]).await?;
        for m in &messages {
            ws.send_text(m).await?;
        }
        let closed = loop {
            match ws.next_message(wait).await? {
                Ok(_) => continue,
                Err(code) => break code,
            }
        };
        assert_eq!(closed, code, "{what}");
    }

    // A query that cannot run is an `error` message with a code, and leaks nothing.
    let mut ws = Ws::connect_with_token(&base, &token).await?;
    ws.subscribe(
        "bad",
        "subscription { appointmentUpdated { nope } }",
        json!({}),
    )
    .await?;
    match ws.next_event(wait).await? {
        healsync_test_support::WsEvent::Error { id, payload } => {
            assert_eq!(id, "bad");
            assert_eq!(
                payload[0]["extensions"]["code"], "BAD_USER_INPUT",
                "{payload}"
            );
            leaks_nothing("subscription error", &payload, &["Penicillin"]);
        }
        other => panic!("expected an error message, got {other:?}"),
    }
    Ok(())
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_is_private_to_the_service_account() -> Result<()> {
    let _load = crate::beside().await;
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("healsync-data");
    let node = healsync_test_support::NodeProcess::start(crate::binary(), &dir, &[]).await?;
    // A write makes sure the WAL exists.
    node.admin()
        .await?
        .ok(
            "mutation { createPatient(input: {name: \"Amina Njoroge\", email: \"amina@example.org\"}) { id } }",
            json!({}),
        )
        .await?;
    let dir = &node.data_dir;
    let mode = |p: &std::path::Path| -> Result<u32> {
        Ok(std::fs::metadata(p)?.permissions().mode() & 0o777)
    };
    assert_eq!(mode(dir)?, 0o700, "the data directory");
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_file() {
            assert_eq!(
                mode(&p)? & 0o077,
                0,
                "{} is readable by others",
                p.display()
            );
        }
    }
    Ok(())
}
