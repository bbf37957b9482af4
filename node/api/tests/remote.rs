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
        .map(|o| Incoming {
            doc_id: o.doc_id,
            kind: o.kind,
            hash: o.hash,
            bytes: o.bytes,
        })
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
