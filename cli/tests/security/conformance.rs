//! Finding 5: standard GraphQL clients just work. The standard introspection query
//! answers a signed-in user (and nobody else), GET runs queries and never mutations,
//! the specification's media type gets its status codes, and the graphql-http audit
//! suite passes with no warning on the node and on the hub.

use std::path::Path;

use anyhow::{Context, Result, bail};
use healsync_test_support::{HubProcess, TestDatabase};
use serde_json::{Value, json};

use crate::{Clinic, hub_binary};

/// graphql-js `getIntrospectionQuery()`, as GraphiQL, Apollo Sandbox, Postman, codegen
/// and Python gql send it.
const INTROSPECTION: &str =
    include_str!("../../../schema/graphql-guard/src/cost/introspection.graphql");

async fn introspects(base: &str, token: Option<&str>) -> Result<Value> {
    let mut gql = healsync_test_support::Gql::new(base);
    if let Some(t) = token {
        gql = gql.with_token(t);
    }
    Ok(gql.query(INTROSPECTION, json!({})).await?.body)
}

/// Runs the graphql-http audits (installed by tests/run.sh) against `url` and returns
/// those that did not pass.
async fn audit(url: &str) -> Result<Vec<Value>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/graphql-http-audit");
    if !dir.join("node_modules/graphql-http").exists() {
        bail!(
            "the audit suite is not installed: run tests/run.sh (or npm ci --prefix {})",
            dir.display()
        );
    }
    let out = tokio::process::Command::new("node")
        .arg(dir.join("audit.mjs"))
        .arg(url)
        .output()
        .await
        .context("run node (Node.js is a prerequisite of the test command)")?;
    if !out.status.success() {
        bail!("the audit failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut failed = vec![];
    let mut count = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line)?;
        count += 1;
        if v["status"] != "ok" {
            failed.push(v);
        }
    }
    if count < 40 {
        bail!("only {count} audits ran");
    }
    Ok(failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_clients_work_with_the_node() -> Result<()> {
    let _load = crate::beside().await;
    let clinic = Clinic::start().await?;
    let base = clinic.node.base.clone();
    let token = clinic.admin.token.clone();

    let signed_in = introspects(&base, token.as_deref()).await?;
    assert!(signed_in.get("errors").is_none(), "{signed_in}");
    let types = signed_in["data"]["__schema"]["types"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(types > 20, "{types} types");
    let anonymous = introspects(&base, None).await?;
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    assert!(anonymous.get("data").is_none_or(Value::is_null));

    let http = clinic.admin.http().clone();
    let bearer = format!("Bearer {}", token.clone().unwrap_or_default());
    // (method and query, Accept, expected status)
    let cases: Vec<(&str, &str, &str, u16)> = vec![
        ("GET", "{ me { username } }", "application/json", 200),
        ("GET", "mutation { logout }", "application/json", 405),
        (
            "GET",
            "{ me { username",
            "application/graphql-response+json",
            400,
        ),
        (
            "POST",
            "{ me { username",
            "application/graphql-response+json",
            400,
        ),
        ("POST", "{ nope }", "application/graphql-response+json", 400),
        ("POST", "{ nope }", "application/json", 200),
        (
            "POST",
            "{ me { username } }",
            "application/graphql-response+json",
            200,
        ),
    ];
    for (method, query, accept, status) in cases {
        let url = format!("{base}/graphql");
        let req = if method == "GET" {
            http.get(&url).query(&[("query", query)])
        } else {
            http.post(&url)
                .header("content-type", "application/json")
                .body(json!({ "query": query }).to_string())
        };
        let resp = req
            .header("accept", accept)
            .header("authorization", &bearer)
            .send()
            .await?;
        assert_eq!(resp.status().as_u16(), status, "{method} {query} {accept}");
        if status == 200 && accept == "application/graphql-response+json" {
            let media = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            assert!(media.starts_with(accept), "{media}");
        }
    }

    let failed = audit(&format!("{base}/graphql")).await?;
    assert!(
        failed.is_empty(),
        "graphql-http audits not passed: {failed:#?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_clients_work_with_the_hub() -> Result<()> {
    let _load = crate::beside().await;
    let bin = hub_binary().await?;
    let db = TestDatabase::create("security_conformance").await?;
    let dir = tempfile::tempdir()?;
    let hub = HubProcess::start(&bin, &db.url, dir.path(), "127.0.0.1:0").await?;
    let admin = hub.admin().await?;
    let signed_in = introspects(&hub.base, admin.token.as_deref()).await?;
    assert!(signed_in.get("errors").is_none(), "{signed_in}");
    let anonymous = introspects(&hub.base, None).await?;
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );

    // A fragment chain that doubles 25 times is refused at the hub too, at once.
    let mut q = String::from("query { ...F25 }\nfragment F0 on Query { __typename }\n");
    for i in 1..=25 {
        q.push_str(&format!(
            "fragment F{i} on Query {{ ...F{j} ...F{j} }}\n",
            j = i - 1
        ));
    }
    let started = std::time::Instant::now();
    let refused = admin.query(&q, json!({})).await?;
    assert_eq!(refused.code(), Some("BAD_USER_INPUT"), "{}", refused.body);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));

    let failed = audit(&format!("{}/graphql", hub.base)).await?;
    assert!(
        failed.is_empty(),
        "graphql-http audits not passed: {failed:#?}"
    );
    drop(hub);
    db.drop_database().await?;
    Ok(())
}
