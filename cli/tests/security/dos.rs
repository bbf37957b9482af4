//! Finding 1: one request must not freeze a node. Fan-out through fragments, aliases
//! and nested lists is refused before it runs, by callers signed in or not; logins are
//! one per request and their password checks are bounded.

use anyhow::Result;
use healsync_test_support::Gql;
use serde_json::json;

use crate::{Clinic, leaks_nothing, under_attack};

fn fragment_chain(k: usize) -> String {
    let mut q = format!("query {{ ...F{k} }}\nfragment F0 on Query {{ __typename }}\n");
    for i in 1..=k {
        q.push_str(&format!(
            "fragment F{i} on Query {{ ...F{j} ...F{j} }}\n",
            j = i - 1
        ));
    }
    q
}

fn aliases(n: usize, field: &str) -> String {
    let body: Vec<String> = (0..n).map(|i| format!("a{i}: {field}")).collect();
    format!("{{ {} }}", body.join(" "))
}

/// Sends `query` as `who` from `parallel` clients `rounds` times each; every answer
/// must be a refusal with `code` that carries none of `secrets`.
async fn hammer(
    who: Gql,
    query: String,
    parallel: usize,
    rounds: usize,
    code: &'static str,
    secrets: Vec<String>,
) -> Result<()> {
    let mut tasks = Vec::new();
    for _ in 0..parallel {
        let (who, query, secrets) = (who.clone(), query.clone(), secrets.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..rounds {
                let a = who.query(&query, json!({})).await?;
                assert_eq!(a.code(), Some(code), "{}", a.body);
                let s: Vec<&str> = secrets.iter().map(String::as_str).collect();
                leaks_nothing("refused fan-out", &a.body, &s);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_is_refused_before_it_runs_and_the_node_stays_responsive() -> Result<()> {
    let _load = crate::alone().await;
    let clinic = Clinic::start().await?;
    let amina = clinic.patient("Amina Njoroge").await?;
    let amina_id = amina["id"].as_str().unwrap_or_default().to_string();
    let patient = clinic.patient_login("amina", &amina_id).await?;
    let secrets = vec!["Penicillin".to_string(), "Amina".to_string()];
    let base = clinic.node.base.clone();
    let anonymous = clinic.node.gql();
    let nested = format!(
        "{{ patients(limit: 500) {{ {} name {} }} }}",
        "appointments { doctor { appointments { patient { ".repeat(2),
        "} } } } ".repeat(2)
    );
    // (who, query, expected code)
    let cases: Vec<(&str, Gql, String, &'static str)> = vec![
        (
            "fragments, anonymous",
            anonymous.clone(),
            fragment_chain(25),
            "UNAUTHENTICATED",
        ),
        (
            "fragments, signed in",
            patient.clone(),
            fragment_chain(25),
            "BAD_USER_INPUT",
        ),
        (
            "aliased slot lists as a patient",
            patient.clone(),
            aliases(400, "doctors { availableSlots { start end } }"),
            "BAD_USER_INPUT",
        ),
        (
            "aliased patient pages as an admin",
            clinic.admin.clone(),
            aliases(500, "patients(limit: 500) { name allergies }"),
            "BAD_USER_INPUT",
        ),
        (
            "nested lists",
            clinic.admin.clone(),
            nested,
            "BAD_USER_INPUT",
        ),
        (
            "many logins in one request",
            anonymous.clone(),
            format!(
                "mutation {{ {} }}",
                (0..50)
                    .map(|i| format!(
                        "l{i}: login(username: \"admin\", password: \"x{i}\") {{ token }}"
                    ))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            "BAD_USER_INPUT",
        ),
        (
            "anything but login, anonymous",
            anonymous.clone(),
            "{ patients { name allergies } }".into(),
            "UNAUTHENTICATED",
        ),
    ];
    for (what, who, query, code) in cases {
        let started = std::time::Instant::now();
        under_attack(&base, || clinic.node.rss(), {
            let secrets = secrets.clone();
            move || hammer(who.clone(), query.clone(), 4, 2, code, secrets.clone())
        })
        .await
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{what} took {:?}",
            started.elapsed()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_are_counted_before_they_are_checked() -> Result<()> {
    let _load = crate::alone().await;
    let clinic = Clinic::start().await?;
    let anonymous = clinic.node.gql();
    // Forty wrong guesses at once from one address: at most the burst are checked, the
    // rest are refused before any hashing, and the right password is then refused too.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let g = anonymous.clone();
        tasks.push(tokio::spawn(async move {
            g.query(
                "mutation($p: String!) { login(username: \"admin\", password: $p) { token } }",
                json!({ "p": format!("wrong {i}") }),
            )
            .await
        }));
    }
    let mut invalid = 0;
    let mut limited = 0;
    for t in tasks {
        let a = t.await??;
        match a.code() {
            Some("UNAUTHENTICATED") => invalid += 1,
            Some("RATE_LIMITED") => limited += 1,
            other => panic!("unexpected answer {other:?}: {}", a.body),
        }
    }
    assert!(invalid <= 5, "{invalid} guesses were checked");
    assert_eq!(invalid + limited, 40);
    let right = anonymous
        .query(
            "mutation($p: String!) { login(username: \"admin\", password: $p) { token } }",
            json!({ "p": healsync_test_support::ADMIN_PASSWORD }),
        )
        .await?;
    assert_eq!(right.code(), Some("RATE_LIMITED"), "{}", right.body);
    leaks_nothing("refused login", &right.body, &["token\":\"ey"]);
    // The guesser locked out only themselves: the admin logs in from another machine.
    let elsewhere = Gql::from_address(&clinic.node.base, "127.0.0.2".parse()?)?;
    elsewhere
        .login("admin", healsync_test_support::ADMIN_PASSWORD)
        .await?;
    Ok(())
}

/// Median time of `n` refused logins for `user`, each from its own loopback address
/// (so the rate limits stay out of the measurement).
async fn refusal_time(
    base: &str,
    user: &str,
    first_address: u8,
    n: u8,
) -> Result<std::time::Duration> {
    let mut times = vec![];
    for i in 0..n {
        let from = Gql::from_address(base, std::net::IpAddr::from([127, 0, 1, first_address + i]))?;
        let started = std::time::Instant::now();
        let a = from
            .query(
                "mutation($u: String!) { login(username: $u, password: \"not the password\") { token } }",
                json!({ "u": user }),
            )
            .await?;
        times.push(started.elapsed());
        assert_eq!(a.code(), Some("UNAUTHENTICATED"), "{user}: {}", a.body);
    }
    times.sort();
    Ok(times[times.len() / 2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_logins_take_the_same_time_whether_or_not_the_account_exists() -> Result<()> {
    let _load = crate::alone().await;
    let bin = crate::hub_binary().await?;
    let db = healsync_test_support::TestDatabase::create("security_timing").await?;
    let dir = tempfile::tempdir()?;
    let url = db.url.clone();
    let run = |args: Vec<String>, stdin: Option<&'static str>| {
        let bin = bin.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = healsync_test_support::run(&bin, &args, stdin).await?;
            anyhow::ensure!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok::<_, anyhow::Error>(())
        }
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    run(
        s(&[
            "sites",
            "add",
            "NBO",
            "--name",
            "Nairobi",
            "--database-url",
            &url,
        ]),
        None,
    )
    .await?;
    run(
        s(&[
            "users",
            "add",
            "wanjiru",
            "--role",
            "RECEPTIONIST",
            "--site",
            "NBO",
            "--database-url",
            &url,
        ]),
        Some("receptionist-password\n"),
    )
    .await?;
    let hub =
        healsync_test_support::HubProcess::start(&bin, &url, dir.path(), "127.0.0.1:0").await?;
    // Warm up, then compare: a clinic's account (which may not log in here), an
    // unknown name, and the central admin with a wrong password.
    refusal_time(&hub.base, "nobody", 1, 3).await?;
    let known = refusal_time(&hub.base, "wanjiru", 10, 7).await?;
    let unknown = refusal_time(&hub.base, "nobody.at.all", 20, 7).await?;
    let admin = refusal_time(&hub.base, "admin", 30, 7).await?;
    for (what, t) in [("a clinic account", known), ("the hub's admin", admin)] {
        let ratio = t.as_secs_f64() / unknown.as_secs_f64();
        assert!(
            (0.5..2.0).contains(&ratio),
            "{what} is refused in {t:?}, an unknown name in {unknown:?}"
        );
    }
    drop(hub);
    db.drop_database().await?;
    Ok(())
}
