//! Issue 10, transport: the clinic LAN server speaks HTTPS and WSS with a certificate
//! the node issues itself on first start, and plain HTTP stays on loopback unless the
//! technician explicitly accepts the risk.

use anyhow::{Result, bail};
use healsync_test_support::{ADMIN_PASSWORD, Gql, HubProcess, NodeProcess, Ws, WsEvent};
use serde_json::json;

use crate::{TestHub, binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lan_server_speaks_tls_and_plain_http_stays_on_loopback() -> Result<()> {
    let _load = crate::beside().await;
    let dir = tempfile::tempdir()?;
    let d = dir.path().to_str().unwrap_or_default();

    // Plain HTTP on an address the LAN reaches: refused, before anything is created.
    let out = healsync_test_support::run(
        binary(),
        &["serve", "--data-dir", d, "--listen", "0.0.0.0:0"],
        None,
    )
    .await?;
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("--tls") && said.contains("--allow-plain-http"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path())?.count(),
        0,
        "nothing was created"
    );

    // With --tls: a certificate of its own, its fingerprint shown, HTTPS and WSS.
    let node = NodeProcess::start(binary(), dir.path(), &["--tls"]).await?;
    assert!(node.base.starts_with("https://"), "{}", node.base);
    assert!(
        node.banner
            .iter()
            .any(|l| l.contains("SHA-256 fingerprint")),
        "{:?}",
        node.banner
    );
    let pem = std::fs::read_to_string(dir.path().join("tls-cert.pem"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("tls-key.pem"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key is the node's alone");
    }
    let admin = Gql::over_tls(&node.base, &pem)?
        .login("admin", ADMIN_PASSWORD)
        .await?;
    let me = admin.ok("{ me { username } }", json!({})).await?;
    assert_eq!(me["me"]["username"], "admin");

    // Plain HTTP to the TLS port gets nothing back.
    let plain = Gql::new(&node.base.replacen("https", "http", 1))
        .query("{ __typename }", json!({}))
        .await;
    assert!(
        plain.is_err(),
        "plain HTTP was answered: {:?}",
        plain.map(|a| a.body)
    );

    // Subscriptions over WSS: a patient registered shows up.
    let token = admin.token.clone().unwrap_or_default();
    let mut ws = match Ws::connect_tls(
        &node.base,
        json!({ "Authorization": format!("Bearer {token}") }),
        &pem,
    )
    .await?
    {
        Ok(ws) => ws,
        Err(refused) => bail!("WSS refused: {refused:?}"),
    };
    ws.subscribe("p", "subscription { patientUpdated { name } }", json!({}))
        .await?;
    // The subscription starts on the server's side of the socket; a registration
    // made before it would be missed, so register until one arrives (bounded).
    let mut seen = None;
    for i in 0..10 {
        admin
            .ok(
                "mutation($n: String!) { createPatient(input: {name: $n, email: \"tls@example.org\"}) { id } }",
                json!({ "n": format!("Amina Tls {i}") }),
            )
            .await?;
        match ws.next_event(std::time::Duration::from_secs(2)).await {
            Ok(WsEvent::Next { payload, .. }) => {
                seen = Some(payload);
                break;
            }
            Ok(other) => bail!("unexpected {other:?}"),
            Err(_) => continue,
        }
    }
    let seen = seen.ok_or_else(|| anyhow::anyhow!("no event over WSS"))?;
    assert!(
        seen["data"]["patientUpdated"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("Amina Tls")),
        "{seen}"
    );
    assert!(node.terminate().await?, "the TLS server stops cleanly");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_serves_central_admins_over_tls_too() -> Result<()> {
    let _load = crate::beside().await;
    let hub = TestHub::start("security_tls_hub", &[]).await?;
    let refused = healsync_test_support::run(
        &hub.bin,
        &[
            "serve",
            "--database-url",
            &hub.db.url,
            "--listen",
            "0.0.0.0:0",
        ],
        None,
    )
    .await?;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--allow-plain-http"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let TestHub {
        process,
        bin,
        db,
        dir,
    } = hub;
    assert!(process.terminate().await?);
    let tls = HubProcess::start_with(&bin, &db.url, dir.path(), "127.0.0.1:0", &["--tls"]).await?;
    assert!(tls.base.starts_with("https://"), "{}", tls.base);
    let pem = std::fs::read_to_string(dir.path().join("tls-cert.pem"))?;
    let admin = Gql::over_tls(&tls.base, &pem)?
        .login("admin", ADMIN_PASSWORD)
        .await?;
    assert!(
        admin
            .ok("{ me }", json!({}))
            .await?
            .to_string()
            .contains("admin")
    );
    assert!(tls.terminate().await?);
    db.drop_database().await?;
    Ok(())
}
