//! What the cost guard costs: the node's schema executed in-process on a seeded store,
//! with and without `healsync-graphql-guard`, in the same run (so the two compare as a
//! ratio on a noisy machine). Three operations: a front-desk patient list, a doctor's
//! day with nested patients, and the standard introspection query; and, for scale,
//! how long refusing a 2^25 fragment fan-out takes.

use std::time::{Duration, Instant};

use anyhow::Result;
use async_graphql::{Request, Schema};
use healsync_domain::{Role, UserId};
use healsync_graphql_guard::Caller;
use healsync_node_api::graphql::{MutationRoot, QueryRoot, SubscriptionRoot, new_loaders};
use healsync_node_api::session::{Auth, Session};
use healsync_node_api::{Node, NodeSchema};
use healsync_store::Store;
use healsync_test_support::seed::{self, Rng};

const INTROSPECTION: &str =
    include_str!("../../../schema/graphql-guard/src/cost/introspection.graphql");

fn admin() -> Session {
    Session {
        user_id: UserId(uuid::Uuid::now_v7()),
        username: "admin".into(),
        role: Role::Admin,
        patient_id: None,
        doctor_id: None,
        peer: None,
        opened: None,
    }
}

async fn time(schema: &NodeSchema, node: &Node, query: &str, repeat: usize) -> Result<Duration> {
    let mut times = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let req = Request::new(query)
            .data(Auth::Session(admin()))
            .data(new_loaders(node))
            .data(Caller {
                signed_in: true,
                refused: None,
            });
        let t = Instant::now();
        let resp = schema.execute(req).await;
        times.push(t.elapsed());
        anyhow::ensure!(resp.errors.is_empty(), "{:?}", resp.errors);
    }
    times.sort();
    Ok(times[times.len() / 2])
}

pub async fn run(patients: usize, repeat: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = std::sync::Arc::new(Store::open(dir.path(), None)?);
    let mut rng = Rng(0x5DEE_CE66_D1CE_4E5B);
    seed::patients(&store, "DEV", 0, patients, &mut rng)?;
    let keys = healsync_auth::SessionKeys::load_or_create(dir.path(), "bench")?;
    let node = Node::new(store, keys).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let guarded = healsync_node_api::build_schema(node.clone());
    let bare: NodeSchema = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .data(node.clone())
    .finish();
    let ops = [
        (
            "patient list (50, 6 fields)",
            "{ patients(limit: 50) { id mrn name phone dateOfBirth allergies } }".to_string(),
        ),
        (
            "patients with appointments and doctors",
            "{ patients(limit: 20) { name appointments(limit: 10) { scheduledAt status doctor { name } } } }"
                .to_string(),
        ),
        ("standard introspection", INTROSPECTION.to_string()),
    ];
    println!("{patients} patients seeded; median of {repeat} executions each, in-process");
    println!("| operation | without guard | with guard | ratio |");
    println!("|---|---|---|---|");
    for (what, q) in &ops {
        // Warm both, then alternate so drift hits both alike.
        time(&bare, &node, q, 5).await?;
        time(&guarded, &node, q, 5).await?;
        let without = time(&bare, &node, q, repeat).await?;
        let with = time(&guarded, &node, q, repeat).await?;
        println!(
            "| {what} | {:.3} ms | {:.3} ms | {:.2}x |",
            without.as_secs_f64() * 1e3,
            with.as_secs_f64() * 1e3,
            with.as_secs_f64() / without.as_secs_f64()
        );
    }
    let mut fanout = String::from("query { ...F25 }\nfragment F0 on Query { __typename }\n");
    for i in 1..=25 {
        fanout.push_str(&format!(
            "fragment F{i} on Query {{ ...F{j} ...F{j} }}\n",
            j = i - 1
        ));
    }
    let t = Instant::now();
    let resp = guarded
        .execute(Request::new(fanout).data(Caller {
            signed_in: true,
            refused: None,
        }))
        .await;
    println!(
        "refusing a 2^25 fragment fan-out: {:.3} ms ({})",
        t.elapsed().as_secs_f64() * 1e3,
        resp.errors
            .first()
            .map_or("not refused!", |e| e.message.as_str())
    );
    Ok(())
}
