//! The cost model against a small schema shaped like the node's: lists with `limit`,
//! nested lists without, a login mutation, introspection.

use async_graphql::{EmptySubscription, Object, Request, Schema, SimpleObject};

use crate::{Caller, Guard, Limits};

#[derive(SimpleObject, Clone)]
struct Slot {
    start: String,
}

struct Doctor;

#[Object]
impl Doctor {
    async fn name(&self) -> &str {
        "Dr. Kamau"
    }
    async fn available_slots(&self) -> Vec<Slot> {
        vec![Slot {
            start: "09:00".into(),
        }]
    }
    async fn patients(&self, #[graphql(default = 50)] limit: i32) -> Vec<Patient> {
        (0..limit.clamp(0, 3)).map(|_| Patient).collect()
    }
}

struct Patient;

#[Object]
impl Patient {
    async fn name(&self) -> &str {
        "Amina"
    }
    async fn doctors(&self) -> Vec<Doctor> {
        vec![Doctor]
    }
}

struct Query;

#[Object]
impl Query {
    async fn doctors(&self, #[graphql(default = 100)] limit: i32) -> Vec<Doctor> {
        (0..limit.clamp(0, 3)).map(|_| Doctor).collect()
    }
    async fn patients(&self, #[graphql(default = 50)] limit: i32) -> Vec<Patient> {
        (0..limit.clamp(0, 3)).map(|_| Patient).collect()
    }
    async fn big(&self) -> String {
        "x".repeat(1024)
    }
}

struct Mutation;

#[Object]
impl Mutation {
    async fn login(&self, username: String) -> String {
        username
    }
}

const BOUNDS: &[(&str, &str, u64)] = &[
    ("Doctor", "availableSlots", 200),
    ("Patient", "doctors", 10),
];

fn schema(limits: Limits) -> Schema<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation, EmptySubscription)
        .extension(Guard::new(limits))
        .finish()
}

/// `None` when the request runs without errors, else its first error's code.
async fn run(query: &str, signed_in: bool) -> Option<String> {
    run_with(Limits::standard(BOUNDS), query, signed_in).await
}

async fn run_with(limits: Limits, query: &str, signed_in: bool) -> Option<String> {
    let resp = schema(limits)
        .execute(Request::new(query).data(Caller {
            signed_in,
            refused: None,
        }))
        .await;
    resp.errors.first().map(|e| {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .map(|c| c.to_string().trim_matches('"').to_string())
            .unwrap_or_else(|| format!("no code: {}", e.message))
    })
}

fn fragment_chain(k: usize, leaf: &str) -> String {
    let mut q = format!("query {{ ...F{k} }}\nfragment F0 on Query {{ {leaf} }}\n");
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

#[tokio::test]
async fn cases() {
    let bad = Some("BAD_USER_INPUT".to_string());
    let unauth = Some("UNAUTHENTICATED".to_string());
    let deep = format!(
        "{{ {}name{} }}",
        "patients(limit: 1) { doctors { ".repeat(7),
        " } }".repeat(7)
    );
    let cases: Vec<(&str, String, bool, Option<String>)> = vec![
        ("a plain list", "{ doctors { name } }".into(), true, None),
        (
            "a list at its largest",
            "{ patients(limit: 500) { name } }".into(),
            true,
            None,
        ),
        (
            "nested lists multiply",
            "{ patients(limit: 500) { doctors { patients(limit: 500) { name } } } }".into(),
            true,
            bad.clone(),
        ),
        (
            "a limit from a variable's default counts",
            "query($n: Int = 50000) { patients(limit: $n) { doctors { name } } }".into(),
            true,
            bad.clone(),
        ),
        (
            "a declared bound counts for lists without limit",
            "{ doctors(limit: 500) { availableSlots { start } } }".into(),
            true,
            bad.clone(),
        ),
        (
            "fragment fan-out over __typename",
            fragment_chain(25, "__typename"),
            true,
            bad.clone(),
        ),
        (
            "a short fragment chain",
            fragment_chain(3, "__typename"),
            true,
            None,
        ),
        ("too many aliases", aliases(60, "big"), true, bad.clone()),
        ("aliases within the cap", aliases(20, "big"), true, None),
        (
            "a fragment that spreads itself",
            "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }".into(),
            true,
            bad.clone(),
        ),
        (
            "one login",
            "mutation { login(username: \"a\") }".into(),
            false,
            None,
        ),
        (
            "two logins in one request",
            "mutation { a: login(username: \"a\") b: login(username: \"b\") }".into(),
            false,
            bad.clone(),
        ),
        (
            "logins hidden in fragments",
            "mutation { ...L ...L } fragment L on Mutation { login(username: \"a\") }".into(),
            false,
            bad.clone(),
        ),
        ("anonymous __typename", "{ __typename }".into(), false, None),
        (
            "anonymous list",
            "{ doctors { name } }".into(),
            false,
            unauth.clone(),
        ),
        (
            "anonymous introspection of the schema",
            "{ __schema { types { name kind description } } }".into(),
            false,
            unauth.clone(),
        ),
        (
            "anonymous look-up of one type",
            "{ __type(name: \"Doctor\") { name } }".into(),
            false,
            None,
        ),
        (
            "standard introspection",
            super::tests::INTROSPECTION.into(),
            true,
            None,
        ),
        ("deep nesting", deep, true, bad.clone()),
    ];
    for (what, query, signed_in, expected) in cases {
        let started = std::time::Instant::now();
        let got = run(&query, signed_in).await;
        assert_eq!(got, expected, "{what}");
        assert!(
            started.elapsed().as_millis() < 500,
            "{what} took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn response_size_stops_execution() {
    let mut limits = Limits::standard(BOUNDS);
    limits.max_response_bytes = 10 * 1024;
    // Twenty fields of 1 KiB: over 10 KiB.
    assert_eq!(
        run_with(limits.clone(), &aliases(20, "big"), true)
            .await
            .as_deref(),
        Some("BAD_USER_INPUT")
    );
    assert_eq!(run_with(limits, &aliases(5, "big"), true).await, None);
}

#[tokio::test]
async fn introspection_is_counted_exactly() {
    let mut limits = Limits::standard(BOUNDS);
    // The standard query over this small schema produces about a thousand values.
    limits.max_introspection_values = 100;
    assert_eq!(
        run_with(limits.clone(), INTROSPECTION, true)
            .await
            .as_deref(),
        Some("BAD_USER_INPUT")
    );
    limits.max_introspection_values = 5_000;
    assert_eq!(run_with(limits, INTROSPECTION, true).await, None);
}

/// graphql-js `getIntrospectionQuery()` (what GraphiQL, Apollo Sandbox, Postman,
/// codegen and Python gql send).
pub const INTROSPECTION: &str = include_str!("introspection.graphql");
