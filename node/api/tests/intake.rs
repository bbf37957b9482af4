//! The intake allergy list (plain text recorded at registration) becomes allergy
//! entries of the chart: at registration, on an edit, and for lists written before
//! entries existed (the migration run at start), each substance once.

use std::sync::Arc;

use healsync_auth::SessionKeys;
use healsync_domain::{Address, Patient, PatientId, Role, SiteCode, UserId};
use healsync_node_api::service::{medical_records, patients};
use healsync_node_api::{Node, Session};
use healsync_store::{Store, queries};

fn node(dir: &std::path::Path) -> Node {
    let store = Store::open(dir, Some(&SiteCode::parse("NBO").expect("site"))).expect("store");
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

fn legacy(site: &str, allergies: &[&str]) -> Patient {
    let now = chrono::Utc::now();
    Patient {
        id: PatientId(uuid::Uuid::now_v7()),
        mrn: format!("{site}-000042"),
        site: site.into(),
        name: "Amina Njoroge".into(),
        email: "amina@example.org".into(),
        phone: None,
        date_of_birth: None,
        sex: None,
        address: Address::default(),
        emergency_contact: None,
        allergies: allergies.iter().map(|a| a.to_string()).collect(),
        active: true,
        created_at: now,
        updated_at: now,
    }
}

async fn substances(node: &Node, p: PatientId) -> Vec<String> {
    let mut s = node
        .read(move |c| queries::allergy_substances(c, p))
        .await
        .expect("read");
    s.sort();
    s
}

#[tokio::test]
async fn intake_allergies_become_entries_once() {
    let dir = tempfile::tempdir().expect("dir");
    let node = node(dir.path());

    // Lists written by an older version, straight into the store: this site's patient
    // is migrated, another site's is left to that site.
    let ours = legacy("NBO", &["Penicillin", "latex", "Latex "]);
    let theirs = legacy("MSA", &["Sulfa"]);
    node.store()
        .write(chrono::Utc::now(), |tx| {
            tx.put(&ours)?;
            tx.put(&theirs)
        })
        .expect("write");
    assert_eq!(
        medical_records::migrate_intake_allergies(&node)
            .await
            .expect("migrate"),
        2
    );
    assert_eq!(
        medical_records::migrate_intake_allergies(&node)
            .await
            .expect("again"),
        0
    );
    assert_eq!(substances(&node, ours.id).await, ["Penicillin", "latex"]);
    assert!(substances(&node, theirs.id).await.is_empty());

    // Registration records the list; an edit records only what it adds.
    let p = patients::create(
        &node,
        &admin(),
        patients::NewPatient {
            name: "Brian Otieno".into(),
            email: "brian@example.org".into(),
            phone: None,
            date_of_birth: None,
            sex: None,
            address: Address::default(),
            emergency_contact: None,
            allergies: vec!["Sulfa".into()],
        },
    )
    .await
    .expect("create");
    assert_eq!(substances(&node, p.id).await, ["Sulfa"]);
    patients::update(&node, &admin(), p.id, |p| {
        p.allergies.push("Peanuts".into());
        Ok(())
    })
    .await
    .expect("update");
    assert_eq!(substances(&node, p.id).await, ["Peanuts", "Sulfa"]);
    assert_eq!(
        medical_records::migrate_intake_allergies(&node)
            .await
            .expect("migrate"),
        0
    );
    let report = node.store().check_projections().expect("check");
    assert!(report.is_consistent(), "{report:?}");
}
