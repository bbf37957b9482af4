//! Changes merged from elsewhere reach the same event stream as local writes: a
//! receptionist's open screen updates when another site books into her schedule.

use std::sync::Arc;

use healsync_auth::SessionKeys;
use healsync_domain::{Role, SiteCode, UserId};
use healsync_node_api::service::{doctors, patients};
use healsync_node_api::{Node, Session};
use healsync_records::AnyRecord;
use healsync_store::{Incoming, Store};

fn node(dir: &std::path::Path, site: &str) -> Node {
    let store = Store::open(dir, Some(&SiteCode::parse(site).expect("site"))).expect("store");
    let keys = SessionKeys::load_or_create(dir, "test").expect("keys");
    Node::new(Arc::new(store), keys).expect("node")
}

fn admin() -> Session {
    Session {
        user_id: UserId(uuid::Uuid::nil()),
        username: "admin".into(),
        role: Role::Admin,
        patient_id: None,
        doctor_id: None,
        peer: None,
        opened: None,
    }
}

#[tokio::test]
async fn merged_changes_are_published_like_local_writes() {
    let (da, db) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let (a, b) = (node(da.path(), "NBO"), node(db.path(), "MSA"));
    let p = patients::create(
        &a,
        &admin(),
        patients::NewPatient {
            name: "Amina Njoroge".into(),
            email: "amina@example.org".into(),
            phone: None,
            date_of_birth: None,
            sex: None,
            address: Default::default(),
            emergency_contact: None,
            allergies: vec![],
        },
    )
    .await
    .expect("create at a");
    let d = doctors::create(
        &a,
        &admin(),
        doctors::NewDoctor {
            name: "Dr. Wanjiru Kamau".into(),
            specializations: vec!["General practice".into()],
            licence_number: "KMPDC-1".into(),
            email: None,
            phone: None,
        },
    )
    .await
    .expect("doctor at a");

    let mut events = b.events().subscribe();
    let changes: Vec<Incoming> = a
        .store()
        .pending_upload(0, usize::MAX)
        .expect("pending")
        .into_iter()
        .map(Incoming::from)
        .collect();
    assert_eq!(b.apply_remote(changes, 2).await.expect("apply"), 2);
    let mut seen = Vec::new();
    for _ in 0..2 {
        match events.recv().await.expect("event").as_ref() {
            AnyRecord::Patient(x) => seen.push(x.id.to_string()),
            AnyRecord::Doctor(x) => seen.push(x.id.to_string()),
            other => panic!("unexpected {other:?}"),
        }
    }
    seen.sort();
    let mut expected = vec![p.id.to_string(), d.id.to_string()];
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(b.store().sync_state().expect("state").download_cursor, 2);
}

fn ship(from: &Node, after: u64) -> Vec<Incoming> {
    from.store()
        .pending_upload(after, usize::MAX)
        .expect("pending")
        .into_iter()
        .map(Incoming::from)
        .collect()
}

async fn gql(node: &Node, session: Session, query: &str) -> serde_json::Value {
    let schema = healsync_node_api::build_schema(node.clone());
    let req = async_graphql::Request::new(query)
        .data(healsync_node_api::session::Auth::Session(session))
        .data(healsync_node_api::graphql::new_loaders(node))
        .data(healsync_graphql_guard::Caller {
            signed_in: true,
            refused: None,
        });
    serde_json::to_value(schema.execute(req).await).expect("json")
}

#[tokio::test]
async fn conflicts_are_listed_and_resolved_through_graphql() {
    let (da, db) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let (a, b) = (node(da.path(), "NBO"), node(db.path(), "MSA"));
    let p = patients::create(
        &a,
        &admin(),
        patients::NewPatient {
            name: "Brian Otieno".into(),
            email: "brian@example.org".into(),
            phone: None,
            date_of_birth: None,
            sex: None,
            address: Default::default(),
            emergency_contact: None,
            allergies: vec!["Latex".into()],
        },
    )
    .await
    .expect("create");
    b.apply_remote(ship(&a, 0), 1).await.expect("to b");
    let a_seq = a
        .store()
        .pending_upload(0, usize::MAX)
        .expect("seq")
        .last()
        .map_or(0, |c| c.seq);
    for (n, phone, allergy) in [
        (&a, "+254 711 111 111", "Latex, Penicillin"),
        (&b, "+254 722 222 222", "Aspirin"),
    ] {
        patients::update(n, &admin(), p.id, move |x| {
            x.phone = Some(phone.into());
            x.allergies = vec![allergy.into()];
            Ok(())
        })
        .await
        .expect("edit");
    }
    // The front desk's open conflicts screen: subscribed before the merge arrives.
    let desk_screen = {
        use futures_util::StreamExt;
        let schema = healsync_node_api::build_schema(b.clone());
        let req = async_graphql::Request::new("subscription { conflictRaised { field values } }")
            .data(healsync_node_api::session::Auth::Session(Session {
                role: Role::Receptionist,
                ..admin()
            }))
            .data(healsync_node_api::graphql::new_loaders(&b))
            .data(healsync_graphql_guard::Caller {
                signed_in: true,
                refused: None,
            });
        let mut stream = schema.execute_stream(req);
        tokio::spawn(async move { stream.next().await })
    };
    tokio::task::yield_now().await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    b.apply_remote(ship(&a, a_seq), 2).await.expect("a to b");
    let raised = tokio::time::timeout(std::time::Duration::from_secs(10), desk_screen)
        .await
        .expect("the conflict reached the open screen")
        .expect("task")
        .expect("an event");
    assert_eq!(
        serde_json::to_value(raised.data).expect("json"),
        serde_json::json!({ "conflictRaised": {
            "field": "phone", "values": ["+254 711 111 111", "+254 722 222 222"] } }),
        "the front desk sees the phone conflict, never the clinical one"
    );

    let list = gql(&b, admin(), "{ conflicts { recordId kind field values } }").await;
    let fields: Vec<&str> = list["data"]["conflicts"]
        .as_array()
        .map(|l| l.iter().filter_map(|c| c["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["allergies", "phone"], "{list}");
    // Showing the two values of Amina's fields is a read of her record: audited.
    let patient = p.id;
    let trail = b
        .read(move |c| {
            healsync_store::audit::events(
                c,
                &healsync_store::audit::AuditFilter {
                    patient: Some(patient),
                    limit: 100,
                    ..Default::default()
                },
            )
        })
        .await
        .expect("audit");
    assert!(
        trail.iter().any(|e| e.operation == "conflicts"
            && e.access == healsync_domain::audit::Access::Read
            && e.kind == "patient"
            && e.record_id == patient.0
            && e.actor.username == "admin"),
        "{trail:#?}"
    );
    let desk = Session {
        role: Role::Receptionist,
        ..admin()
    };
    let seen_by_desk = gql(&b, desk.clone(), "{ conflicts { field } }").await;
    assert_eq!(
        seen_by_desk["data"]["conflicts"],
        serde_json::json!([{ "field": "phone" }])
    );
    let patient_view = Session {
        role: Role::Patient,
        patient_id: Some(p.id),
        ..admin()
    };
    let refused = gql(&b, patient_view, "{ conflicts { field } }").await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");

    let id = p.id.to_string();
    let wrong = gql(
        &b,
        desk.clone(),
        &format!(
            r#"mutation {{ resolveConflict(recordId: "{id}", field: "phone", value: "+1 555") }}"#
        ),
    )
    .await;
    assert_eq!(
        wrong["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "a typed value is checked like any edit of the field: {wrong}"
    );
    let clinical = gql(&b, desk.clone(), &format!(r#"mutation {{ resolveConflict(recordId: "{id}", field: "allergies", value: "[\"Aspirin\"]") }}"#)).await;
    assert_eq!(clinical["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let ok = gql(&b, desk, &format!(r#"mutation {{ resolveConflict(recordId: "{id}", field: "phone", value: "+254 722 222 222") }}"#)).await;
    assert_eq!(ok["data"]["resolveConflict"], true, "{ok}");
    let left = gql(&b, admin(), "{ conflicts { field } }").await;
    assert_eq!(
        left["data"]["conflicts"],
        serde_json::json!([{ "field": "allergies" }])
    );
}
