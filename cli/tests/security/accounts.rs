//! Issue 10, accounts: a role holds at the clinics the account works at and nowhere
//! else; the hub governs accounts (role, sites, disable, enable, password) and a node
//! applies each change from its next sync, ending the sessions and WebSockets it no
//! longer admits; a clinic keeps signing people in with the hub gone, and a password
//! changed there ends the sessions opened before.

use anyhow::{Result, bail};
use healsync_test_support::{Gql, NodeProcess, Ws, WsEvent};
use serde_json::{Value, json};

use crate::{TestHub, binary, command, eventually, leaks_nothing};

const LOGIN: &str = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token user { role } } }";
const LOGIN_HUB: &str =
    "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }";
const PATIENTS: &str = "{ patients(limit: 5) { name } }";

/// A login's answer: the token, or the error code. Each comes from another loopback
/// address: this test logs one account in many times, which the login's limit per
/// address and user name would otherwise (rightly) slow down.
async fn login(node: &NodeProcess, user: &str, password: &str) -> Result<Result<String, String>> {
    static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(10);
    let n = NEXT
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        .max(10);
    let from = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 1, n));
    let a = Gql::from_address(&node.base, from)?
        .query(LOGIN, json!({ "u": user, "p": password }))
        .await?;
    match a.body["data"]["login"]["token"].as_str() {
        Some(t) => Ok(Ok(t.to_string())),
        None => {
            leaks_nothing(user, &a.body, &["token\":\"ey"]);
            Ok(Err(a.code().unwrap_or("none").to_string()))
        }
    }
}

/// What a request with `token` gets at `node`: `Ok` with the patients, or the code.
async fn with_token(node: &NodeProcess, token: &str) -> Result<Result<Value, String>> {
    let a = node
        .gql()
        .with_token(token)
        .query(PATIENTS, json!({}))
        .await?;
    Ok(match a.code() {
        None => Ok(a.data()?.clone()),
        Some(code) => {
            leaks_nothing("refused session", &a.body, &["Amina"]);
            Err(code.to_string())
        }
    })
}

struct Sites {
    hub: TestHub,
    nbo: NodeProcess,
    msa: NodeProcess,
    _dirs: Vec<tempfile::TempDir>,
}

impl Sites {
    async fn sync(&self, node: &NodeProcess) -> Result<()> {
        let d = node.data_dir.to_str().unwrap_or_default();
        command(binary(), &["sync", "--data-dir", d, "--json"], None).await?;
        Ok(())
    }

    /// Runs `healsync-hub users ARGS --database-url ..`.
    async fn hub_users(&self, args: &[&str], stdin: Option<&str>) -> Result<std::process::Output> {
        let mut all = vec!["users"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--database-url", &self.hub.db.url]);
        healsync_test_support::run(&self.hub.bin, &all, stdin).await
    }

    async fn hub_users_ok(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let out = self.hub_users(args, stdin).await?;
        if !out.status.success() {
            bail!("users {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Syncs `node` until `probe` holds there (the hub folds an upload after it is
    /// acknowledged, so one round may not carry a change yet).
    async fn sync_until<F, Fut>(&self, node: &NodeProcess, what: &str, mut probe: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        eventually(what, || {
            let round = self.sync(node);
            let check = probe();
            async move {
                round.await?;
                Ok(check.await?.then_some(()))
            }
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_holds_at_its_clinics_only_and_the_hub_governs_accounts() -> Result<()> {
    let _load = crate::beside().await;
    let hub = TestHub::start(
        "security_accounts",
        &[("NBO", "Nairobi"), ("MSA", "Mombasa")],
    )
    .await?;
    let (nbo_dir, msa_dir) = (hub.enroll("NBO").await?, hub.enroll("MSA").await?);
    let quiet = ["--sync-interval", "3600"];
    let nbo = NodeProcess::start(binary(), nbo_dir.path(), &quiet).await?;
    let msa = NodeProcess::start(binary(), msa_dir.path(), &quiet).await?;
    let sites = Sites {
        hub,
        nbo,
        msa,
        _dirs: vec![nbo_dir, msa_dir],
    };
    let nbo_admin = sites.nbo.admin().await?;
    nbo_admin
        .ok(
            "mutation { createUser(input: {username: \"nbo.clerk\", password: \"clerk-password-1\", role: RECEPTIONIST}) { id } }",
            json!({}),
        )
        .await?;
    nbo_admin
        .ok(
            "mutation { createPatient(input: {name: \"Amina Njoroge\", email: \"amina@example.org\"}) { id } }",
            json!({}),
        )
        .await?;
    // A doctor, made after the clerk: every site receives doctors, in the hub's order,
    // so once Mombasa has the doctor it has whatever of Nairobi's came before.
    nbo_admin
        .ok(
            "mutation { createDoctor(input: {name: \"Dr. Otieno\", specializations: [\"Cardiology\"], licenceNumber: \"KMPDC-4411\"}) { id } }",
            json!({}),
        )
        .await?;
    sites.sync(&sites.nbo).await?;

    // Nairobi's accounts hold no role at Mombasa and do not even reach it: the clerk
    // does not sign in there, and Mombasa's administrator does not see them. (Both
    // nodes' first admin is "admin" with the same password: at Mombasa it is
    // Mombasa's.)
    let msa = &sites.msa;
    let msa_admin = msa.admin().await?;
    sites
        .sync_until(msa, "Nairobi's doctor at Mombasa", || async {
            Ok(msa_admin
                .ok("{ doctors { name } }", json!({}))
                .await?
                .to_string()
                .contains("Otieno"))
        })
        .await?;
    assert_eq!(
        login(msa, "nbo.clerk", "clerk-password-1").await?,
        Err("UNAUTHENTICATED".into())
    );
    let ours = nbo_admin.ok("{ users { username } }", json!({})).await?;
    assert_eq!(
        ours["users"],
        json!([{ "username": "admin" }, { "username": "nbo.clerk" }])
    );
    let theirs = msa_admin.ok("{ users { username } }", json!({})).await?;
    assert_eq!(theirs["users"], json!([{ "username": "admin" }]));
    leaks_nothing("Mombasa's accounts", &theirs, &["nbo.clerk"]);
    let seen = msa_admin.ok(PATIENTS, json!({})).await?;
    leaks_nothing("Mombasa's admin", &seen, &["Amina"]);

    // The hub lets the clerk work at Mombasa too; the account stays Nairobi's.
    let refused = sites
        .hub_users(&["update", "nbo.clerk", "--sites", "MSA"], None)
        .await?;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("list NBO first"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    for bad in [
        vec!["update", "nobody.here", "--role", "ADMIN"],
        vec!["update", "nbo.clerk", "--role", "FINANCE"],
        vec!["update", "nbo.clerk", "--sites", "NBO,XYZ"],
        vec!["update", "nbo.clerk"],
    ] {
        let out = sites.hub_users(&bad, None).await?;
        assert!(!out.status.success(), "{bad:?} was accepted");
    }
    let said = sites
        .hub_users_ok(&["update", "nbo.clerk", "--sites", "NBO,MSA"], None)
        .await?;
    assert!(said.contains("works at NBO, MSA"), "{said}");
    sites
        .sync_until(msa, "the clerk admitted at Mombasa", || async {
            Ok(login(msa, "nbo.clerk", "clerk-password-1").await?.is_ok())
        })
        .await?;
    let at_msa = msa.gql().login("nbo.clerk", "clerk-password-1").await?;
    at_msa.ok(PATIENTS, json!({})).await?;

    // Disabled at the hub: at Nairobi's next sync the open session and WebSocket end,
    // and a new login is refused.
    let nbo = &sites.nbo;
    sites.sync(nbo).await?;
    let Ok(token) = login(nbo, "nbo.clerk", "clerk-password-1").await? else {
        bail!("the clerk cannot log in at Nairobi");
    };
    assert!(with_token(nbo, &token).await?.is_ok());
    let mut ws = Ws::connect_with_token(&nbo.base, &token).await?;
    ws.subscribe("p", "subscription { patientUpdated { name } }", json!({}))
        .await?;
    sites.hub_users_ok(&["disable", "nbo.clerk"], None).await?;
    sites
        .sync_until(nbo, "the clerk's session ended at Nairobi", || async {
            Ok(with_token(nbo, &token).await?.is_err())
        })
        .await?;
    assert_eq!(
        with_token(nbo, &token).await?,
        Err("UNAUTHENTICATED".into())
    );
    match ws.next_event(std::time::Duration::from_secs(30)).await? {
        WsEvent::Closed { code, reason } => {
            assert_eq!(code, 4401, "graphql-transport-ws: Unauthorized");
            assert!(reason.contains("disabled"), "{reason:?}");
        }
        other => bail!("expected the WebSocket to close, got {other:?}"),
    }
    assert_eq!(
        login(nbo, "nbo.clerk", "clerk-password-1").await?,
        Err("UNAUTHENTICATED".into())
    );

    // Enabled again: new logins work, the sessions from before stay ended.
    sites.hub_users_ok(&["enable", "nbo.clerk"], None).await?;
    sites
        .sync_until(nbo, "the clerk enabled at Nairobi", || async {
            Ok(login(nbo, "nbo.clerk", "clerk-password-1").await?.is_ok())
        })
        .await?;
    assert_eq!(
        with_token(nbo, &token).await?,
        Err("UNAUTHENTICATED".into())
    );

    // A password reset at the hub: the old one stops working at the next sync.
    sites
        .hub_users_ok(&["reset-password", "nbo.clerk"], Some("clerk-password-2\n"))
        .await?;
    sites
        .sync_until(nbo, "the reset password at Nairobi", || async {
            Ok(login(nbo, "nbo.clerk", "clerk-password-2").await?.is_ok())
        })
        .await?;
    assert_eq!(
        login(nbo, "nbo.clerk", "clerk-password-1").await?,
        Err("UNAUTHENTICATED".into())
    );

    // A central account is governed the same way at the hub itself: new site limits
    // end its sessions (the token carries the old ones), and so does disabling it,
    // WebSockets included.
    sites
        .hub_users_ok(
            &["add", "coast.admin", "--role", "ADMIN"],
            Some("coast-admin-password\n"),
        )
        .await?;
    let central = sites.hub.process.gql();
    let coast = central.login("coast.admin", "coast-admin-password").await?;
    coast.ok("{ me }", json!({})).await?;
    let other = central.login("coast.admin", "coast-admin-password").await?;
    assert_eq!(
        other.ok("mutation { logout }", json!({})).await?["logout"],
        true
    );
    assert_eq!(
        other.query("{ me }", json!({})).await?.code(),
        Some("UNAUTHENTICATED")
    );
    coast.ok("{ me }", json!({})).await?;
    sites
        .hub_users_ok(&["update", "coast.admin", "--sites", "MSA"], None)
        .await?;
    eventually("the central session ended by new limits", || async {
        Ok(
            (coast.query("{ me }", json!({})).await?.code() == Some("UNAUTHENTICATED"))
                .then_some(()),
        )
    })
    .await?;
    let fresh = central
        .ok(
            LOGIN_HUB,
            json!({ "u": "coast.admin", "p": "coast-admin-password" }),
        )
        .await?;
    let token = fresh["login"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let limited = central.with_token(&token);
    limited.ok("{ me }", json!({})).await?;
    let mut hub_ws = Ws::connect_with_token(&sites.hub.process.base, &token).await?;
    hub_ws
        .subscribe("c", "subscription { conflictRaised { kind } }", json!({}))
        .await?;
    sites
        .hub_users_ok(&["disable", "coast.admin"], None)
        .await?;
    match hub_ws
        .next_event(std::time::Duration::from_secs(30))
        .await?
    {
        WsEvent::Closed { code, reason } => {
            assert_eq!(code, 4401);
            assert!(reason.contains("disabled"), "{reason:?}");
        }
        other => bail!("expected the hub's WebSocket to close, got {other:?}"),
    }
    assert_eq!(
        limited.query("{ me }", json!({})).await?.code(),
        Some("UNAUTHENTICATED")
    );
    let again = central
        .query(
            LOGIN_HUB,
            json!({ "u": "coast.admin", "p": "coast-admin-password" }),
        )
        .await?;
    assert_eq!(again.code(), Some("UNAUTHENTICATED"), "{}", again.body);

    // The hub goes away; the clinic goes on signing people in, and a password changed
    // there ends the sessions opened before it, on every device.
    let Sites {
        hub,
        nbo,
        msa,
        _dirs,
    } = sites;
    let TestHub { process, db, .. } = hub;
    process.kill().await?;
    let Ok(before) = login(&nbo, "nbo.clerk", "clerk-password-2").await? else {
        bail!("no login at Nairobi with the hub gone");
    };
    let clerk = nbo.gql().with_token(&before);
    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { token user { username role } } }";
    let wrong = clerk
        .query(
            change,
            json!({ "c": "not-my-password", "n": "clerk-password-3" }),
        )
        .await?;
    assert_eq!(wrong.code(), Some("UNAUTHENTICATED"), "{}", wrong.body);
    let short = clerk
        .query(change, json!({ "c": "clerk-password-2", "n": "short" }))
        .await?;
    assert_eq!(short.code(), Some("BAD_USER_INPUT"), "{}", short.body);
    let changed = clerk
        .ok(
            change,
            json!({ "c": "clerk-password-2", "n": "clerk-password-3" }),
        )
        .await?;
    assert_eq!(changed["changePassword"]["user"]["role"], "RECEPTIONIST");
    let after = changed["changePassword"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(with_token(&nbo, &after).await?.is_ok());
    assert_eq!(
        with_token(&nbo, &before).await?,
        Err("UNAUTHENTICATED".into())
    );
    assert_eq!(
        login(&nbo, "nbo.clerk", "clerk-password-2").await?,
        Err("UNAUTHENTICATED".into())
    );
    assert!(login(&nbo, "nbo.clerk", "clerk-password-3").await?.is_ok());
    // Mombasa does not write Nairobi's account: the clerk changes it at home.
    let from_msa = at_msa
        .query(
            change,
            json!({ "c": "clerk-password-2", "n": "clerk-password-4" }),
        )
        .await?;
    assert_eq!(from_msa.code(), Some("FORBIDDEN"), "{}", from_msa.body);

    drop((nbo, msa));
    db.drop_database().await?;
    Ok(())
}

/// The `kid` a token's header names.
fn key_id(token: &str) -> String {
    let header = token.split('.').next().unwrap_or_default();
    let decoded = base64url(header);
    serde_json::from_slice::<Value>(&decoded).unwrap_or_default()["kid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn base64url(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let vals: Vec<u32> = s
        .bytes()
        .filter_map(|c| A.iter().position(|a| *a == c).map(|p| p as u32))
        .collect();
    let mut out = Vec::new();
    for chunk in vals.chunks(4) {
        let n = chunk.iter().fold(0u32, |n, v| (n << 6) | v) << (6 * (4 - chunk.len()));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_by_logout_or_an_administrator_and_survives_a_key_rotation() -> Result<()> {
    let _load = crate::beside().await;
    let dir = tempfile::tempdir()?;
    let start = |d: std::path::PathBuf| async move { NodeProcess::start(binary(), &d, &[]).await };
    let node = start(dir.path().to_path_buf()).await?;
    let admin = node.admin().await?;
    admin
        .ok(
            "mutation { createUser(input: {username: \"front.desk\", password: \"front-desk-password\", role: RECEPTIONIST}) { id } }",
            json!({}),
        )
        .await?;
    let token = |node: &NodeProcess| {
        let node_base = node.base.clone();
        async move {
            let a = Gql::new(&node_base)
                .ok(
                    LOGIN,
                    json!({ "u": "front.desk", "p": "front-desk-password" }),
                )
                .await?;
            anyhow::Ok(a["login"]["token"].as_str().unwrap_or_default().to_string())
        }
    };
    let (first, second) = (token(&node).await?, token(&node).await?);

    // Logging out ends this session only, its WebSocket included.
    let mut ws = Ws::connect_with_token(&node.base, &first).await?;
    ws.subscribe("p", "subscription { patientUpdated { name } }", json!({}))
        .await?;
    let out = node
        .gql()
        .with_token(&first)
        .ok("mutation { logout }", json!({}))
        .await?;
    assert_eq!(out["logout"], true);
    assert_eq!(
        with_token(&node, &first).await?,
        Err("UNAUTHENTICATED".into())
    );
    match ws.next_event(std::time::Duration::from_secs(30)).await? {
        WsEvent::Closed { code, reason } => {
            assert_eq!(code, 4401);
            assert!(reason.contains("ended"), "{reason:?}");
        }
        other => bail!("expected the WebSocket to close, got {other:?}"),
    }
    assert!(with_token(&node, &second).await?.is_ok());

    // The administrator sees the other session and ends it; a receptionist may not.
    let clerk = node.gql().with_token(&second);
    let refused = clerk.query("{ sessions { id } }", json!({})).await?;
    assert_eq!(refused.code(), Some("FORBIDDEN"), "{}", refused.body);
    leaks_nothing("sessions", &refused.body, &["front.desk"]);
    let listed = admin
        .ok(
            "{ sessions { id username role current address } }",
            json!({}),
        )
        .await?;
    let list = listed["sessions"].as_array().cloned().unwrap_or_default();
    let theirs: Vec<&Value> = list
        .iter()
        .filter(|s| s["username"] == "front.desk")
        .collect();
    assert_eq!(
        theirs.len(),
        1,
        "the logged-out session is not listed: {listed}"
    );
    assert!(
        list.iter()
            .any(|s| s["username"] == "admin" && s["current"] == true),
        "{listed}"
    );
    let id = theirs[0]["id"].as_str().unwrap_or_default().to_string();
    let ended = admin
        .ok(
            "mutation($id: ID!) { endSession(id: $id) }",
            json!({ "id": id }),
        )
        .await?;
    assert_eq!(ended["endSession"], true);
    assert_eq!(
        with_token(&node, &second).await?,
        Err("UNAUTHENTICATED".into())
    );
    let again = admin
        .ok(
            "mutation($id: ID!) { endSession(id: $id) }",
            json!({ "id": "no-such-session" }),
        )
        .await?;
    assert_eq!(again["endSession"], false);

    // A rotated key: sessions it signed hold after the restart, new ones carry the new
    // key's id; ended sessions stay ended.
    let third = token(&node).await?;
    assert!(node.terminate().await?, "the node stops cleanly");
    let d = dir.path().to_str().unwrap_or_default();
    let said = command(binary(), &["keys", "rotate", "--data-dir", d], None).await?;
    assert!(said.contains("stay valid"), "{said}");
    let node = start(dir.path().to_path_buf()).await?;
    assert!(
        with_token(&node, &third).await?.is_ok(),
        "signed by the previous key"
    );
    assert_eq!(
        with_token(&node, &first).await?,
        Err("UNAUTHENTICATED".into())
    );
    assert_eq!(
        with_token(&node, &second).await?,
        Err("UNAUTHENTICATED".into())
    );
    let fourth = token(&node).await?;
    assert!(with_token(&node, &fourth).await?.is_ok());
    assert_ne!(key_id(&third), key_id(&fourth));
    assert_eq!(key_id(&fourth).len(), 16);

    // A key that may have been copied: rotating it with --end-sessions ends them all.
    assert!(node.terminate().await?);
    command(
        binary(),
        &["keys", "rotate", "--end-sessions", "--data-dir", d],
        None,
    )
    .await?;
    let node = start(dir.path().to_path_buf()).await?;
    for t in [&third, &fourth] {
        assert_eq!(with_token(&node, t).await?, Err("UNAUTHENTICATED".into()));
    }
    assert!(with_token(&node, &token(&node).await?).await?.is_ok());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_the_hub_has_not_confirmed_for_too_long_sign_in_again_after_a_sync() -> Result<()>
{
    let _load = crate::beside().await;
    let hub = TestHub::start("security_offline_age", &[("NBO", "Nairobi")]).await?;
    let dir = hub.enroll("NBO").await?;
    let d = dir.path().to_str().unwrap_or_default().to_string();
    command(binary(), &["sync", "--data-dir", &d, "--json"], None).await?;
    // A confirmation that lasts about seventeen seconds (0.0002 days), so the test can
    // see it lapse; the node does not sync by itself meanwhile.
    let node = NodeProcess::start(
        binary(),
        dir.path(),
        &["--sync-interval", "3600", "--max-offline-days", "0.0002"],
    )
    .await?;
    let attempt = || async {
        static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(10);
        let n = NEXT
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .max(10);
        let from = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 2, n));
        Gql::from_address(&node.base, from)?
            .query(
                LOGIN,
                json!({ "u": "admin", "p": healsync_test_support::ADMIN_PASSWORD }),
            )
            .await
    };
    let refused = eventually("the accounts' confirmation to lapse", || async {
        let a = attempt().await?;
        Ok((a.code() == Some("UNAUTHENTICATED")).then_some(a))
    })
    .await?;
    assert!(
        refused.body.to_string().contains("confirmed again"),
        "{}",
        refused.body
    );
    leaks_nothing("lapsed", &refused.body, &["token\":\"ey"]);
    // A wrong password learns nothing about the hub.
    let wrong = Gql::new(&node.base)
        .query(LOGIN, json!({ "u": "admin", "p": "not the password" }))
        .await?;
    assert!(!wrong.body.to_string().contains("hub"), "{}", wrong.body);

    command(binary(), &["sync", "--data-dir", &d, "--json"], None).await?;
    // (The probing above spent the account's login allowance: wait it out.)
    let a = eventually("a login after the sync", || async {
        let a = attempt().await?;
        Ok((a.code() != Some("RATE_LIMITED")).then_some(a))
    })
    .await?;
    assert!(a.body["data"]["login"]["token"].is_string(), "{}", a.body);

    drop(node);
    let TestHub { process, db, .. } = hub;
    drop(process);
    db.drop_database().await?;
    Ok(())
}
