//! Hub store tests on a real PostgreSQL server: each test gets a fresh database
//! (`healsync_test_support::TestDatabase`).

use healsync_sync_protocol::Change;
use healsync_test_support::seed::change;

use uuid::Uuid;

use super::*;

struct TestDb {
    store: HubStore,
    db: healsync_test_support::TestDatabase,
}

impl TestDb {
    async fn new() -> TestDb {
        let db = healsync_test_support::TestDatabase::create("hubstore")
            .await
            .expect("test database");
        let store = HubStore::connect(&db.url, 4).await.expect("connect");
        TestDb { store, db }
    }

    async fn drop_db(self) {
        self.store.pool().close().await;
        self.db
            .drop_database()
            .await
            .expect("drop the test database");
    }
}

async fn enrolled(s: &HubStore, site: &str) -> Uuid {
    let token = s.create_enrollment_token(site).await.expect("token");
    let node = Uuid::now_v7();
    assert_eq!(s.enroll(&token, node).await.expect("enroll"), site);
    node
}

#[tokio::test]
async fn enrollment_tokens_are_single_use_and_revocation_refuses() {
    let db = TestDb::new().await;
    let s = &db.store;
    s.add_site("NBO", "Nairobi clinic").await.expect("site");
    assert!(matches!(
        s.add_site("NBO", "again").await,
        Err(HubStoreError::SiteExists(_))
    ));
    assert!(matches!(
        s.create_enrollment_token("XXX").await,
        Err(HubStoreError::UnknownSite(_))
    ));
    let token = s.create_enrollment_token("NBO").await.expect("token");
    let node = Uuid::now_v7();
    s.enroll(&token, node).await.expect("enroll");
    assert!(matches!(
        s.enroll(&token, Uuid::now_v7()).await,
        Err(HubStoreError::InvalidToken)
    ));
    assert!(matches!(
        s.enroll("not-a-token", Uuid::now_v7()).await,
        Err(HubStoreError::InvalidToken)
    ));

    let admit = |site: &'static str, node: Uuid| {
        let s = s.clone();
        async move { s.authenticate(node, site, 0).await.expect("auth") }
    };
    assert!(matches!(
        admit("NBO", node).await,
        Admission::Admitted { .. }
    ));
    assert_eq!(
        admit("MSA", node).await,
        Admission::WrongSite {
            enrolled: "NBO".into()
        }
    );
    assert_eq!(admit("NBO", Uuid::now_v7()).await, Admission::Unknown);
    s.revoke(node).await.expect("revoke");
    assert_eq!(admit("NBO", node).await, Admission::Revoked);
    assert!(matches!(
        s.commit_upload(node, &[change(1, Uuid::now_v7(), "patient", 1)], 1)
            .await,
        Err(HubStoreError::Revoked(_))
    ));
    assert!(s.nodes().await.expect("nodes")[0].revoked);
    db.drop_db().await;
}

#[tokio::test]
async fn ingest_is_idempotent_scoped_and_refuses_other_sites_documents() {
    let db = TestDb::new().await;
    let s = &db.store;
    s.add_site("NBO", "Nairobi").await.expect("site");
    s.add_site("MSA", "Mombasa").await.expect("site");
    let (nbo, msa) = (enrolled(s, "NBO").await, enrolled(s, "MSA").await);
    let (appt, patient) = (Uuid::now_v7(), Uuid::now_v7());

    let batch = vec![
        change(1, appt, "appointment", 1),
        change(2, patient, "patient", 1),
    ];
    assert!(
        s.commit_upload(nbo, &batch, 2)
            .await
            .expect("upload")
            .is_empty()
    );
    // The same batch again (a resend after a cut): stored once.
    assert!(
        s.commit_upload(nbo, &batch, 2)
            .await
            .expect("again")
            .is_empty()
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM changes")
        .fetch_one(s.pool())
        .await
        .expect("count");
    assert_eq!(count, 2);
    assert!(matches!(
        s.authenticate(nbo, "NBO", 0).await.expect("auth"),
        Admission::Admitted {
            upload_acked: 2,
            ..
        }
    ));

    // MSA may edit neither NBO's appointment nor NBO's patient, which it does not hold;
    // the refusal is durable and repeated to MSA until it records the acknowledgement.
    let from_msa = vec![
        change(1, appt, "appointment", 2),
        change(2, patient, "patient", 2),
    ];
    let refused = s.commit_upload(msa, &from_msa, 2).await.expect("upload");
    assert_eq!(refused.len(), 2);
    assert_eq!(refused[0].seq, 1);
    assert!(refused[0].reason.contains("belongs to site NBO"));
    assert!(refused[1].reason.contains("was not shared with site MSA"));
    let stored: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM changes WHERE hash = ANY($1))")
            .bind(vec![from_msa[0].hash.to_vec(), from_msa[1].hash.to_vec()])
            .fetch_one(s.pool())
            .await
            .expect("look up");
    assert!(!stored, "nothing of a refused change is stored");
    let Admission::Admitted {
        upload_acked,
        rejected,
        ..
    } = s.authenticate(msa, "MSA", 0).await.expect("auth")
    else {
        panic!("MSA's node is admitted");
    };
    assert_eq!((upload_acked, rejected.len()), (2, 2));
    assert!(matches!(
        s.authenticate(msa, "MSA", 2).await.expect("auth"),
        Admission::Admitted { rejected, .. } if rejected.is_empty()
    ));
    let (to_msa, through, more) = s
        .load_changes(msa, "MSA", 0, usize::MAX)
        .await
        .expect("load");
    assert!(to_msa.is_empty(), "MSA holds nothing of NBO's");
    assert_eq!((through, more), (2, false));

    // Once the patient is shared with MSA, MSA receives it and may edit it; NBO gets
    // the edit, never its own uploads back.
    assert!(
        s.share(patient, "MSA", GrantReason::Request)
            .await
            .expect("share")
    );
    assert!(
        !s.share(patient, "MSA", GrantReason::Request)
            .await
            .expect("again")
    );
    assert!(
        !s.share(patient, "NBO", GrantReason::Request)
            .await
            .expect("owner")
    );
    assert!(
        !s.share(appt, "MSA", GrantReason::Request)
            .await
            .expect("not granted")
    );
    assert!(matches!(
        s.share(Uuid::now_v7(), "MSA", GrantReason::Request).await,
        Err(HubStoreError::UnknownDocument(_))
    ));
    assert_eq!(s.granted_sites(patient).await.expect("sites"), ["MSA"]);
    let edit = vec![change(3, patient, "patient", 3)];
    assert!(
        s.commit_upload(msa, &edit, 3)
            .await
            .expect("edit")
            .is_empty()
    );
    let (to_msa, through, more) = s
        .load_changes(msa, "MSA", 0, usize::MAX)
        .await
        .expect("load");
    assert_eq!(
        to_msa
            .iter()
            .map(|c| (c.cursor, c.hash))
            .collect::<Vec<_>>(),
        [(3, batch[1].hash)],
        "the patient's history at the grant's cursor, not MSA's own edit"
    );
    assert_eq!((through, more), (4, false));
    let (to_nbo, _, _) = s
        .load_changes(nbo, "NBO", 0, usize::MAX)
        .await
        .expect("load");
    assert_eq!(to_nbo.len(), 1, "NBO gets MSA's patient edit only");
    assert_eq!(to_nbo[0].hash, edit[0].hash);
    // Accounts reach their own site (and those the hub grants them to), and only their
    // own site may change them.
    let account = Uuid::now_v7();
    assert!(
        s.commit_upload(nbo, &[change(5, account, "user", 1)], 5)
            .await
            .expect("account")
            .is_empty()
    );
    let refused = s
        .commit_upload(msa, &[change(4, account, "user", 2)], 4)
        .await
        .expect("upload");
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0].reason.contains("account") && refused[0].reason.contains("site NBO"),
        "{}",
        refused[0].reason
    );
    assert!(
        s.commit_upload(nbo, &[change(6, account, "user", 3)], 6)
            .await
            .expect("the owner changes it")
            .is_empty()
    );
    let (to_msa, _, _) = s
        .load_changes(msa, "MSA", through, usize::MAX)
        .await
        .expect("load");
    assert!(
        to_msa.iter().all(|c| c.doc_id != *account.as_bytes()),
        "an account of NBO does not reach MSA"
    );
    // Paging by bytes: at least one change per call, the cursor advancing.
    let (first, through, more) = s
        .load_changes(Uuid::now_v7(), "NBO", 0, 1)
        .await
        .expect("page");
    assert_eq!((first.len(), more), (1, true));
    let (rest, _, _) = s
        .load_changes(Uuid::now_v7(), "NBO", through, 1)
        .await
        .expect("page");
    assert!(!rest.is_empty() && rest[0].cursor > first[0].cursor);
    db.drop_db().await;
}

/// A grant sends the patient's history in log order at the grant's block, resumable at
/// any page boundary, before anything written after the grant; later changes of the
/// patient follow in the ordinary way.
#[tokio::test]
async fn a_grant_backfills_history_in_order_and_resumes_mid_block() {
    let db = TestDb::new().await;
    let s = &db.store;
    s.add_site("NBO", "Nairobi").await.expect("site");
    s.add_site("MSA", "Mombasa").await.expect("site");
    let (nbo, msa) = (enrolled(s, "NBO").await, enrolled(s, "MSA").await);
    let (patient, other) = (Uuid::now_v7(), Uuid::now_v7());
    // Five changes of the patient interleaved with another patient MSA never gets.
    let history: Vec<Change> = (1..=10)
        .map(|i| change(i, if i % 2 == 1 { patient } else { other }, "patient", 1))
        .collect();
    s.commit_upload(nbo, &history, 10).await.expect("upload");
    let msa_own = vec![change(1, Uuid::now_v7(), "appointment", 2)];
    s.commit_upload(msa, &msa_own, 1).await.expect("upload");
    assert!(
        s.share(patient, "MSA", GrantReason::Booking)
            .await
            .expect("share")
    );
    // The block is cursors 12..=16; NBO's next edit of the patient comes after it.
    let later = vec![change(11, patient, "patient", 1)];
    s.commit_upload(nbo, &later, 11).await.expect("upload");

    let expected: Vec<(u64, [u8; 32])> = (12..=16)
        .zip(history.iter().step_by(2))
        .map(|(cursor, c)| (cursor, c.hash))
        .chain([(17, later[0].hash)])
        .collect();
    // One change per page: the node's cursor may stop anywhere inside the block.
    let mut got = Vec::new();
    let mut after = 0;
    loop {
        let (page, through, more) = s.load_changes(msa, "MSA", after, 1).await.expect("page");
        assert!(through >= after);
        got.extend(page.iter().map(|c| (c.cursor, c.hash)));
        after = through;
        if !more {
            break;
        }
    }
    assert_eq!(got, expected);
    assert_eq!(after, 17);
    // A node of MSA enrolled later gets the same, all at once.
    let second = enrolled(s, "MSA").await;
    let (all, _, _) = s
        .load_changes(second, "MSA", 0, usize::MAX)
        .await
        .expect("load");
    let hashes: Vec<[u8; 32]> = all.iter().map(|c| c.hash).collect();
    assert_eq!(hashes[0], msa_own[0].hash);
    assert_eq!(
        &hashes[1..],
        expected.iter().map(|(_, h)| *h).collect::<Vec<_>>()
    );
    db.drop_db().await;
}

#[tokio::test]
async fn concurrent_uploads_get_gapless_commit_ordered_cursors() {
    let db = TestDb::new().await;
    let s = &db.store;
    s.add_site("NBO", "Nairobi").await.expect("site");
    let mut tasks = Vec::new();
    for n in 0..8u8 {
        let node = enrolled(s, "NBO").await;
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..5u64 {
                let batch: Vec<Change> = (0..20)
                    .map(|i| change(b * 20 + i + 1, Uuid::now_v7(), "appointment", n + 1))
                    .collect();
                s.commit_upload(node, &batch, b * 20 + 20)
                    .await
                    .expect("upload");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let cursors: Vec<i64> = sqlx::query_scalar("SELECT cursor FROM changes ORDER BY cursor")
        .fetch_all(s.pool())
        .await
        .expect("cursors");
    assert_eq!(cursors, (1..=800).collect::<Vec<i64>>());
    db.drop_db().await;
}

/// Doctors by specialization are found in SQL, whole elements only, case-insensitively,
/// with LIKE's wildcards in a name taken literally.
#[tokio::test]
async fn documents_filter_by_a_list_element() {
    let db = TestDb::new().await;
    let s = &db.store;
    let doctors = [
        ("Dr. A", r#"["General practice","Paediatrics"]"#),
        ("Dr. B", r#"["General practice extra"]"#),
        ("Dr. C", r#"["100% care"]"#),
        ("Dr. D", r#"["100x care","a_b"]"#),
    ];
    for (name, specs) in doctors {
        sqlx::query(
            "INSERT INTO documents (doc_id, kind, site, bytes, heads, record, complete)
             VALUES ($1, 'doctor', 'NBO', '', '', $2, true)",
        )
        .bind(Uuid::now_v7())
        .bind(serde_json::json!({ "name": name, "specializations": specs }))
        .execute(s.pool())
        .await
        .expect("insert");
    }
    let named = |element: &str| {
        let filter = DocumentFilter {
            kind: "doctor".into(),
            element: Some(("specializations".into(), element.into())),
            limit: 50,
            ..DocumentFilter::default()
        };
        async move {
            let mut names: Vec<String> = s
                .documents(&filter)
                .await
                .expect("documents")
                .into_iter()
                .map(|d| d.record["name"].as_str().unwrap_or_default().to_string())
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(named(" general PRACTICE ").await, ["Dr. A"]);
    assert_eq!(named("paediatrics").await, ["Dr. A"]);
    assert_eq!(named("100% care").await, ["Dr. C"]);
    assert_eq!(named("a_b").await, ["Dr. D"]);
    assert!(named("ab").await.is_empty());
    assert!(named("care").await.is_empty());
    db.drop_db().await;
}

#[tokio::test]
async fn every_replica_hears_what_another_committed_and_nothing_rolled_back() {
    let db = TestDb::new().await;
    // Two replicas: two stores, each with its own pool, on one database.
    let writer = &db.store;
    let replica = HubStore::connect(&db.db.url, 2).await.expect("connect");
    let mut feed = replica.listen().await.expect("listen");

    // Announced in a transaction that rolls back: never heard.
    let ghost = Uuid::now_v7();
    let mut tx = writer.pool().begin().await.expect("begin");
    events::documents_changed(&mut tx, &[ghost])
        .await
        .expect("announce");
    tx.rollback().await.expect("rollback");

    // A write at the hub by the other replica is heard, and reads back without secrets.
    let user = healsync_domain::User {
        id: Uuid::now_v7().into(),
        username: "wanjiru".into(),
        role: healsync_domain::Role::Receptionist,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        patient_id: None,
        doctor_id: None,
        active: true,
        sites: Vec::new(),
        credentials_changed_at: None,
    };
    writer
        .add_user(&user, None, None)
        .await
        .expect("add a user");
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), feed.next())
        .await
        .expect("an announcement within 10 s")
        .expect("feed");
    assert_eq!(heard, events::Announcement::Documents(vec![user.id.0]));
    let docs = replica
        .changed_documents(&[user.id.0, ghost])
        .await
        .expect("read");
    assert_eq!(docs.len(), 1, "the ghost was never stored");
    assert_eq!(
        (docs[0].kind.as_str(), docs[0].record["username"].as_str()),
        ("user", Some("wanjiru"))
    );
    assert!(
        !docs[0].record.to_string().contains("argon2"),
        "{}",
        docs[0].record
    );

    drop(feed);
    replica.pool().close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn damaged_forged_and_mislabelled_changes_are_refused() {
    let db = TestDb::new().await;
    let s = &db.store;
    s.add_site("NBO", "Nairobi").await.expect("site");
    let node = enrolled(s, "NBO").await;
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let good = change(1, a, "patient", 1);
    let mut garbage = change(2, b, "patient", 1);
    garbage.bytes = vec![7; 40];
    let mut forged = change(3, c, "patient", 1);
    forged.hash = change(4, c, "patient", 9).hash;
    // A patient labelled as a doctor (every site would receive it), a new document
    // whose first change sets no kind, and an edit labelled with another kind.
    let (d, e) = (Uuid::now_v7(), Uuid::now_v7());
    let mut mislabelled = change(5, d, "patient", 1);
    mislabelled.kind = "doctor".into();
    let mut kindless = automerge::AutoCommit::new();
    automerge::transaction::Transactable::put(&mut kindless, automerge::ROOT, "name", "x")
        .expect("put");
    kindless.commit();
    let raw = kindless.get_last_local_change().expect("change").clone();
    let no_kind = Change {
        seq: 6,
        doc_id: *e.as_bytes(),
        kind: "patient".into(),
        hash: raw.hash().0,
        bytes: raw.raw_bytes().to_vec(),
    };
    let mut relabelled = change(7, a, "patient", 2);
    relabelled.kind = "user".into();
    let refused = s
        .commit_upload(
            node,
            &[good, garbage, forged, mislabelled, no_kind, relabelled],
            7,
        )
        .await
        .expect("upload");
    let reasons: Vec<(u64, &str)> = refused.iter().map(|r| (r.seq, r.reason.as_str())).collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert_eq!(reasons[0].0, 2);
    assert!(reasons[0].1.contains("does not load"), "{reasons:?}");
    assert_eq!(reasons[1], (3, "the change does not match its hash"));
    assert_eq!(
        reasons[2],
        (5, "the change is labelled doctor but makes a patient")
    );
    assert_eq!(reasons[3].0, 6);
    assert!(reasons[3].1.contains("does not set"), "{reasons:?}");
    assert_eq!(reasons[4].0, 7);
    assert!(
        reasons[4].1.contains("labelled user but document"),
        "{reasons:?}"
    );
    let stored: Vec<Uuid> = sqlx::query_scalar("SELECT doc_id FROM changes")
        .fetch_all(s.pool())
        .await
        .expect("changes");
    assert_eq!(stored, [a]);
    let owned: i64 = sqlx::query_scalar("SELECT count(*) FROM document_owners")
        .fetch_one(s.pool())
        .await
        .expect("owners");
    assert_eq!(owned, 1, "a refused change claims no document");
    db.drop_db().await;
}

/// A stolen node edits a shared doctor with a correctly labelled change that would
/// make it an ADMIN account: the hub refuses it, stores nothing, and no such account
/// can log in at the hub.
#[tokio::test]
async fn a_doctor_cannot_be_turned_into_an_account() {
    use automerge::transaction::Transactable;
    let db = TestDb::new().await;
    let s = &db.store;
    s.add_site("NBO", "Nairobi").await.expect("site");
    s.add_site("MSA", "Mombasa").await.expect("site");
    let (nbo, msa) = (enrolled(s, "NBO").await, enrolled(s, "MSA").await);
    let doctor = healsync_domain::Doctor {
        id: healsync_domain::DoctorId(Uuid::now_v7()),
        name: "Dr. Kiptoo Chebet".into(),
        specializations: vec!["Paediatrics".into()],
        licence_number: "KMPDC-9".into(),
        email: None,
        phone: None,
        active: true,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    };
    let mut doc = healsync_records::new_document(&automerge::ActorId::from([1u8; 16]));
    healsync_records::write_record(&mut doc, &doctor).expect("write");
    let as_upload = |seq: u64, doc: &mut automerge::AutoCommit| {
        let c = doc.get_last_local_change().expect("change").clone();
        Change {
            seq,
            doc_id: *doctor.id.0.as_bytes(),
            kind: "doctor".into(),
            hash: c.hash().0,
            bytes: c.raw_bytes().to_vec(),
        }
    };
    let created = as_upload(1, &mut doc);
    assert!(
        s.commit_upload(nbo, &[created], 1)
            .await
            .expect("upload")
            .is_empty()
    );

    let mut thief = doc.fork().with_actor(automerge::ActorId::from([2u8; 16]));
    thief.put(automerge::ROOT, "kind", "user").expect("put");
    thief
        .put(automerge::ROOT, "username", "dr.kiptoo")
        .expect("put");
    thief.put(automerge::ROOT, "role", "ADMIN").expect("put");
    let hash = healsync_auth::hash_password("the thief's password").expect("hash");
    thief
        .put(automerge::ROOT, "passwordHash", hash.as_str())
        .expect("put");
    thief.commit();
    let forged = as_upload(1, &mut thief);
    let refused = s.commit_upload(msa, &[forged], 1).await.expect("upload");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].reason.contains("rewrites \"kind\""),
        "{refused:?}"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM changes WHERE origin_node = $1")
        .bind(msa)
        .fetch_one(s.pool())
        .await
        .expect("count");
    assert_eq!(stored, 0);
    s.materialize_all().await.expect("fold");
    assert!(
        s.hub_accounts_named("dr.kiptoo")
            .await
            .expect("look up")
            .is_empty()
    );
    db.drop_db().await;
}

#[tokio::test]
async fn a_node_ships_its_own_sites_audit_events_only_once_each() {
    use healsync_domain::audit::{Access, Actor, AuditEvent, GENESIS, link};
    use healsync_sync_protocol::AuditRecord;
    let db = TestDb::new().await;
    let s = &db.store;
    s.add_site("NBO", "Nairobi").await.expect("site");
    s.add_site("MSA", "Mombasa").await.expect("site");
    let node = enrolled(s, "NBO").await;
    let event = |seq: u64, site: &str| AuditEvent {
        seq,
        at: chrono::DateTime::from_timestamp_micros(1_764_000_000_000_000 + seq as i64)
            .unwrap_or_default(),
        actor: Actor::system("test"),
        site: site.into(),
        access: Access::Read,
        kind: "patient".into(),
        record_id: Uuid::now_v7(),
        patient_id: None,
        operation: "patient".into(),
        peer: None,
        reason: None,
    };
    let chain = |events: Vec<AuditEvent>| {
        let mut prev = GENESIS;
        events
            .into_iter()
            .map(|e| {
                prev = link(&prev, &e);
                AuditRecord {
                    seq: e.seq,
                    event: e.canonical(),
                    hash: prev,
                }
            })
            .collect::<Vec<_>>()
    };
    // A node of Nairobi cannot put an event into Mombasa's trail, nor send bytes that
    // are not an event: the batch is refused whole.
    let forged = chain(vec![event(1, "NBO"), event(2, "MSA")]);
    assert!(matches!(
        s.commit_audit(node, &forged).await,
        Err(HubStoreError::Malformed(_))
    ));
    let mut garbage = chain(vec![event(1, "NBO")]);
    garbage[0].event.push(0);
    assert!(matches!(
        s.commit_audit(node, &garbage).await,
        Err(HubStoreError::Malformed(_))
    ));
    assert_eq!(s.audit_acked(node).await.expect("acked"), 0);
    // Its own events are kept once: a second copy of event 1 (say, rewritten at the
    // clinic since) leaves the first as it was.
    let own = chain(vec![event(1, "NBO"), event(2, "NBO")]);
    s.commit_audit(node, &own).await.expect("commit");
    let mut rewritten = chain(vec![event(1, "NBO")]);
    rewritten[0].hash = [7; 32];
    s.commit_audit(node, &rewritten).await.expect("ignored");
    assert_eq!(s.audit_acked(node).await.expect("acked"), 2);
    let trails = s.verify_audit().await.expect("verify");
    assert_eq!(trails.len(), 1);
    assert_eq!(trails[0].result.as_ref().map(|v| v.events), Ok(2));
    assert!(matches!(
        s.commit_audit(Uuid::now_v7(), &own).await,
        Err(HubStoreError::UnknownNode(_))
    ));
    db.drop_db().await;
}
