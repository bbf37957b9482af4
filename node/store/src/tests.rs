//! Store tests on a real SQLite file in a temporary directory.

use chrono::{DateTime, NaiveDate, Utc};
use healsync_domain::*;
use rusqlite::OptionalExtension;
use uuid::Uuid;

use crate::queries::{self, PatientFilter};
use crate::{Store, StoreError};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T08:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

fn patient(name: &str, mrn: &str) -> Patient {
    Patient {
        id: PatientId(Uuid::now_v7()),
        mrn: mrn.into(),
        site: "DEV".into(),
        name: name.into(),
        email: format!(
            "{}@example.org",
            name.split(' ').next().unwrap_or("x").to_lowercase()
        ),
        phone: Some("+254 712 000 111".into()),
        date_of_birth: NaiveDate::from_ymd_opt(1984, 3, 1),
        sex: Some(Sex::Female),
        address: Address::default(),
        emergency_contact: None,
        allergies: vec![],
        active: true,
        created_at: now(),
        updated_at: now(),
    }
}

fn all_patients(store: &Store) -> Vec<Patient> {
    store
        .read(|c| {
            queries::patients(
                c,
                &PatientFilter {
                    limit: 1000,
                    ..Default::default()
                },
            )
        })
        .expect("list")
}

#[test]
fn a_write_commits_document_projection_and_change_log_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), None).expect("open");
    let p = patient("Amina Njoroge", "DEV-000001");
    let ((), changed) = store.write(now(), |tx| tx.put(&p)).expect("write");
    assert_eq!(changed.len(), 1);
    assert_eq!(all_patients(&store), vec![p.clone()]);
    let stats = store.stats().expect("stats");
    assert_eq!((stats.documents, stats.change_log_entries), (1, 1));

    // Writing the same record again adds nothing to the change log.
    store.write(now(), |tx| tx.put(&p)).expect("rewrite");
    assert_eq!(store.stats().expect("stats").change_log_entries, 1);

    let mut edited = p.clone();
    edited.phone = Some("+254 799 000 000".into());
    store.write(now(), |tx| tx.put(&edited)).expect("edit");
    assert_eq!(store.stats().expect("stats").change_log_entries, 2);
    assert!(store.check_projections().expect("check").is_consistent());
}

#[test]
fn a_failed_write_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), None).expect("open");
    let p = patient("Amina Njoroge", "DEV-000001");
    let result: Result<((), _), StoreError> = store.write(now(), |tx| {
        tx.put(&p)?;
        tx.next_counter("mrn")?;
        Err(StoreError::Corrupt("refused by a rule".into()))
    });
    assert!(result.is_err());
    assert!(all_patients(&store).is_empty());
    let stats = store.stats().expect("stats");
    assert_eq!((stats.documents, stats.change_log_entries), (0, 0));
    let (n, _) = store
        .write(now(), |tx| tx.next_counter("mrn"))
        .expect("counter");
    assert_eq!(n, 1, "the failed transaction's counter was rolled back");
}

#[test]
fn each_changed_record_of_health_data_leaves_one_audit_event_in_its_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), None).expect("open");
    let desk = crate::audit::AuditContext {
        actor: audit::Actor {
            user_id: Some(UserId(Uuid::now_v7())),
            username: "front.desk".into(),
            role: Some(Role::Receptionist),
        },
        operation: "create".into(),
        peer: None,
        reason: None,
    };
    let events = |store: &Store| {
        store
            .read(|c| {
                crate::audit::events(
                    c,
                    &crate::audit::AuditFilter {
                        limit: 100,
                        ..Default::default()
                    },
                )
            })
            .expect("events")
    };
    let p = patient("Amina Njoroge", "DEV-000001");
    // A failed write leaves no event either.
    let failed: Result<((), _), StoreError> = store.write_as(now(), &desk, |tx| {
        tx.put(&p)?;
        Err(StoreError::Corrupt("refused by a rule".into()))
    });
    assert!(failed.is_err());
    assert!(events(&store).is_empty());

    store
        .write_as(now(), &desk, |tx| tx.put(&p))
        .expect("write");
    // Unchanged: no write, no event.
    store
        .write_as(now(), &desk, |tx| tx.put(&p))
        .expect("rewrite");
    let e = events(&store);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (
            e[0].seq,
            e[0].kind.as_str(),
            e[0].record_id,
            e[0].patient_id
        ),
        (1, "patient", p.id.0, Some(p.id))
    );
    assert_eq!(
        (e[0].actor.clone(), e[0].operation.as_str()),
        (desk.actor.clone(), "create")
    );
    assert_eq!(e[0].at, now());

    // Without a named writer the node is the writer.
    let mut edited = p.clone();
    edited.phone = Some("+254 799 000 000".into());
    store.write(now(), |tx| tx.put(&edited)).expect("edit");
    let e = events(&store);
    assert_eq!(e[0].actor.username, "system:store");
    let verified = store
        .read(crate::audit::verify)
        .expect("read")
        .expect("intact");
    assert_eq!(verified.events, 2);
}

#[test]
fn identity_survives_reopen_and_site_is_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nbo = SiteCode::parse("NBO").expect("site");
    let first = Store::open(dir.path(), Some(&nbo))
        .expect("open")
        .identity()
        .clone();
    let again = Store::open(dir.path(), None)
        .expect("reopen")
        .identity()
        .clone();
    assert_eq!(first.node_id, again.node_id);
    assert_eq!(first.actor, again.actor);
    assert_eq!(again.site.as_str(), "NBO");
    let other = SiteCode::parse("MSA").expect("site");
    assert!(matches!(
        Store::open(dir.path(), Some(&other)),
        Err(StoreError::SiteMismatch { .. })
    ));
}

/// A kind's projection row is written from its fields and read through its own `read`
/// (nothing else names a field): every kind, with and without its optional fields,
/// reads back from its row as the record written, and a rebuild from the documents
/// gives the same rows.
#[test]
fn every_kind_reads_back_from_its_projection_row() {
    use healsync_records::AnyRecord;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), None).expect("open");
    let all = healsync_records::samples::every_kind();
    macro_rules! each_kind {
        ($record:expr, $x:ident => $e:expr) => {
            match $record {
                AnyRecord::Patient($x) => $e,
                AnyRecord::Doctor($x) => $e,
                AnyRecord::Schedule($x) => $e,
                AnyRecord::Leave($x) => $e,
                AnyRecord::Appointment($x) => $e,
                AnyRecord::Notification($x) => $e,
                AnyRecord::User($x) => $e,
                AnyRecord::PatientRequest($x) => $e,
                AnyRecord::MedicalRecord($x) => $e,
                AnyRecord::Invoice($x) => $e,
                AnyRecord::InvoiceVoid($x) => $e,
                AnyRecord::Payment($x) => $e,
                AnyRecord::PriceItem($x) => $e,
                AnyRecord::Coverage($x) => $e,
                AnyRecord::Claim($x) => $e,
                AnyRecord::MessagePreference($x) => $e,
            }
        };
    }
    store
        .write(now(), |tx| {
            for r in &all {
                each_kind!(r, x => tx.put(x)?);
            }
            Ok::<_, StoreError>(())
        })
        .expect("write");
    fn read_as<R: healsync_records::Record + Into<AnyRecord>>(
        _: &R,
        c: &rusqlite::Connection,
        sql: &str,
        id: &str,
    ) -> Result<AnyRecord, StoreError> {
        c.query_row(sql, [id], queries::record_row::<R>)
            .map(Into::into)
            .map_err(StoreError::sqlite("read back"))
    }
    for r in &all {
        let (table, _) = crate::projection::table(r.kind());
        let sql = format!("SELECT * FROM {table} WHERE id = ?1");
        let id = r.id().to_string();
        let back: AnyRecord = store
            .read(|c| each_kind!(r, x => read_as(x, c, &sql, &id)))
            .expect("read back");
        assert_eq!(&back, r);
    }
    let report = store.check_projections().expect("check");
    assert_eq!(report.documents, all.len());
    assert!(report.is_consistent(), "{report:?}");
}

/// A migration that adds columns names the kinds whose rows must be written again;
/// the next open writes them from the documents, once.
#[test]
fn rows_a_migration_left_incomplete_are_written_again_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let request = PatientRequest {
        id: PatientRequestId(Uuid::now_v7()),
        mrn: "NBO-000042".into(),
        date_of_birth: NaiveDate::from_ymd_opt(1984, 3, 1),
        requested_by: Some("reception".into()),
        status: RequestStatus::Pending,
        patient_id: None,
        answer: None,
        created_at: now(),
        updated_at: now(),
    };
    {
        let store = Store::open(dir.path(), None).expect("open");
        store.write(now(), |tx| tx.put(&request)).expect("write");
        let conn = rusqlite::Connection::open(store.path()).expect("open raw");
        conn.execute_batch(
            "UPDATE patient_requests SET date_of_birth = NULL, requested_by = NULL;
             INSERT INTO meta(key, value) VALUES ('projections.reproject', 'patient_request');",
        )
        .expect("age the rows");
    }
    let store = Store::open(dir.path(), None).expect("reopen");
    let back = store
        .read(|c| queries::patient_request(c, request.id))
        .expect("read");
    assert_eq!(back, Some(request));
    let pending: Option<String> = store
        .read(|c| {
            c.query_row(
                "SELECT value FROM meta WHERE key = 'projections.reproject'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sqlite("read meta"))
        })
        .expect("meta");
    assert_eq!(pending, None);
}

#[test]
fn projections_rebuild_to_the_same_rows_and_damage_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), None).expect("open");
    for i in 0..20 {
        let p = patient(&format!("Patient {i}"), &format!("DEV-{i:06}"));
        store.write(now(), |tx| tx.put(&p)).expect("write");
    }
    let report = store.check_projections().expect("check");
    assert_eq!(report.documents, 20);
    assert!(report.is_consistent(), "{report:?}");

    // Damage a projection behind the store's back: the check finds it, a rebuild fixes it.
    {
        let conn = rusqlite::Connection::open(store.path()).expect("open raw");
        conn.execute(
            "UPDATE patients SET name = 'tampered' WHERE mrn = 'DEV-000003'",
            [],
        )
        .expect("tamper");
    }
    let report = store.check_projections().expect("check");
    assert_eq!(report.mismatched.len(), 1);
    assert_eq!(store.rebuild_projections().expect("rebuild"), 20);
    assert!(store.check_projections().expect("check").is_consistent());
    assert!(all_patients(&store).iter().all(|p| p.name != "tampered"));
}

#[test]
fn search_by_name_mrn_phone_and_dob() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), None).expect("open");
    let amina = patient("Amina Njoroge", "DEV-000001");
    let mut brian = patient("Brian Otieno", "DEV-000002");
    brian.phone = Some("0722 333 444".into());
    brian.date_of_birth = NaiveDate::from_ymd_opt(1990, 7, 15);
    for p in [&amina, &brian] {
        store.write(now(), |tx| tx.put(p)).expect("write");
    }
    let find = |search: Option<&str>, dob: Option<NaiveDate>| -> Vec<String> {
        store
            .read(|c| {
                queries::patients(
                    c,
                    &PatientFilter {
                        search: search.map(String::from),
                        date_of_birth: dob,
                        limit: 10,
                        ..Default::default()
                    },
                )
            })
            .expect("search")
            .into_iter()
            .map(|p| p.name)
            .collect()
    };
    assert_eq!(find(Some("amin"), None), ["Amina Njoroge"]);
    assert_eq!(find(Some("otieno br"), None), ["Brian Otieno"]);
    assert_eq!(find(Some("DEV-000002"), None), ["Brian Otieno"]);
    assert_eq!(find(Some("0722333"), None), ["Brian Otieno"]);
    assert_eq!(
        find(None, NaiveDate::from_ymd_opt(1990, 7, 15)),
        ["Brian Otieno"]
    );
    assert_eq!(find(Some("\" OR * NEAR("), None), Vec::<String>::new());
    assert_eq!(find(Some("zzz"), None), Vec::<String>::new());
}

// ---- replication between two stores (two clinics), through the sync storage API ----

use crate::Incoming;

fn ship(from: &Store, after: u64) -> Vec<Incoming> {
    from.pending_upload(after, usize::MAX)
        .expect("pending")
        .into_iter()
        .map(Incoming::from)
        .collect()
}

fn patient_named(store: &Store, id: PatientId) -> Patient {
    store
        .read(|c| queries::patient(c, id))
        .expect("read")
        .expect("present")
}

/// A merge tells its caller, record by record and inside its transaction, whether it
/// created the document here or changed one already held (a notice is sent when it
/// first arrives, not again when it is later changed elsewhere), and enqueues what the
/// caller asks for in the same transaction.
#[test]
fn a_merge_says_which_documents_it_created_and_enqueues_what_it_is_asked() {
    use healsync_domain::messaging::Channel;
    let (da, db) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let a = Store::open(da.path(), Some(&SiteCode::parse("NBO").expect("site"))).expect("open a");
    let b = Store::open(db.path(), Some(&SiteCode::parse("NBO").expect("site"))).expect("open b");
    let mut p = patient("Amina Njoroge", "NBO-000001");
    a.write(now(), |tx| tx.put(&p)).expect("write at a");
    let seen = std::cell::RefCell::new(Vec::new());
    let hook = |_: &rusqlite::Connection, r: &healsync_records::AnyRecord, created: bool| {
        seen.borrow_mut().push((r.id(), created));
        Ok(vec![crate::outbox::NewMessage {
            id: healsync_domain::messaging::outbound_id(NotificationId(r.id()), Channel::Email),
            channel: Channel::Email,
            recipient: "amina@example.org".into(),
            subject: "s".into(),
            body: "b".into(),
            patient_id: Some(p.id),
            notification_id: None,
        }])
    };
    b.apply_remote_with(now(), ship(&a, 0), 1, &hook)
        .expect("first");
    let seq = a
        .pending_upload(0, usize::MAX)
        .expect("pending")
        .last()
        .map(|o| o.seq)
        .unwrap_or_default();
    p.name = "Amina W. Njoroge".into();
    a.write(now(), |tx| tx.put(&p)).expect("edit at a");
    b.apply_remote_with(now(), ship(&a, seq), 2, &hook)
        .expect("second");
    assert_eq!(*seen.borrow(), vec![(p.id.0, true), (p.id.0, false)]);
    // Asked twice for the same message: the outbox holds it once.
    let queued = b.outbox_due(now(), 10).expect("outbox");
    assert_eq!(queued.len(), 1);
}

#[test]
fn changes_replicate_and_merge_to_identical_documents() {
    let (da, db) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let a = Store::open(da.path(), Some(&SiteCode::parse("NBO").expect("site"))).expect("open a");
    let b = Store::open(db.path(), Some(&SiteCode::parse("MSA").expect("site"))).expect("open b");
    let p = patient("Amina Njoroge", "NBO-000001");
    a.write(now(), |tx| tx.put(&p)).expect("write at a");

    // A's change log arrives at B: same document, same projection, events for it.
    let changed = b.apply_remote(now(), ship(&a, 0), 1).expect("apply");
    assert_eq!(changed.len(), 1);
    assert_eq!(patient_named(&b, p.id), p);
    assert_eq!(
        a.document_heads(p.id.0).expect("a"),
        b.document_heads(p.id.0).expect("b")
    );
    assert_eq!(b.sync_state().expect("state").download_cursor, 1);
    // Applying the same changes again changes nothing.
    assert!(
        b.apply_remote(now(), ship(&a, 0), 1)
            .expect("again")
            .is_empty()
    );
    // Remote changes are not uploaded again by B.
    assert!(b.pending_upload(0, usize::MAX).expect("pending").is_empty());

    // Both clinics edit offline: different fields merge, the same field keeps both.
    let a_seq = a
        .pending_upload(0, usize::MAX)
        .expect("seq")
        .last()
        .map_or(0, |c| c.seq);
    let b_seq = 0;
    let mut at_a = p.clone();
    at_a.name = "Amina W. Njoroge".into();
    at_a.phone = Some("+254 711 111 111".into());
    a.write(now(), |tx| tx.put(&at_a)).expect("edit a");
    let mut at_b = p.clone();
    at_b.email = "amina.n@example.org".into();
    at_b.phone = Some("+254 722 222 222".into());
    b.write(now(), |tx| tx.put(&at_b)).expect("edit b");
    let (to_b, to_a) = (ship(&a, a_seq), ship(&b, b_seq));
    b.apply_remote(now(), to_b, 2).expect("a to b");
    a.apply_remote(now(), to_a, 1).expect("b to a");

    assert_eq!(
        a.document_heads(p.id.0).expect("a"),
        b.document_heads(p.id.0).expect("b")
    );
    let (ma, mb) = (patient_named(&a, p.id), patient_named(&b, p.id));
    assert_eq!(ma, mb, "both clinics read the same merged record");
    assert_eq!(ma.name, "Amina W. Njoroge");
    assert_eq!(ma.email, "amina.n@example.org");
    assert!(a.check_projections().expect("check a").is_consistent());
    assert!(b.check_projections().expect("check b").is_consistent());
}

#[test]
fn changes_that_cannot_merge_are_held_and_merge_when_they_can() {
    let (da, db) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let a = Store::open(da.path(), None).expect("a");
    let b = Store::open(db.path(), None).expect("b");
    let held = |s: &Store| s.status().expect("status").held_changes;
    let mut p = patient("Brian Otieno", "DEV-000001");
    a.write(now(), |tx| tx.put(&p)).expect("create");
    p.phone = None;
    a.write(now(), |tx| tx.put(&p)).expect("edit");
    let changes = ship(&a, 0);
    assert_eq!(changes.len(), 2);

    // A change before its dependency: held, and the cursor moves on.
    b.apply_remote(now(), vec![changes[1].clone()], 7)
        .expect("held, not failed");
    assert_eq!(b.sync_state().expect("state").download_cursor, 7);
    assert_eq!(b.stats().expect("stats").documents, 0);
    assert_eq!(held(&b), 1);
    assert!(b.held().expect("held")[0].reason.contains("depends on"));
    // Retrying alone changes nothing; the dependency arriving merges both.
    assert!(b.retry_held(now()).expect("retry").is_empty());
    let merged = b
        .apply_remote(now(), vec![changes[0].clone()], 8)
        .expect("merge");
    assert_eq!(merged.len(), 1);
    assert_eq!(patient_named(&b, p.id), p);
    assert_eq!(held(&b), 0);
    assert_eq!(b.stats().expect("stats").change_log_entries, 2);

    // Damaged bytes are held (never dropped, never fatal); a sound copy of the same
    // change later takes their place.
    let mut bad = ship(&a, 0);
    bad[0].bytes[10] ^= 0xff;
    let dc = tempfile::tempdir().expect("c");
    let c = Store::open(dc.path(), None).expect("c");
    c.apply_remote(now(), bad, 1).expect("held");
    assert_eq!(
        held(&c),
        2,
        "the damaged change, and the one that depends on it"
    );
    assert_eq!(c.sync_state().expect("state").download_cursor, 1);
    c.apply_remote(now(), vec![changes[0].clone()], 2)
        .expect("sound copy");
    assert_eq!(held(&c), 0);
    assert_eq!(patient_named(&c, p.id), p);
}

#[test]
fn a_record_this_version_cannot_read_waits_until_it_reads() {
    use automerge::transaction::Transactable;
    let dir = tempfile::tempdir().expect("dir");
    let s = Store::open(dir.path(), None).expect("open");
    let incoming = |doc: &mut automerge::AutoCommit, id: Uuid, kind: &str| {
        let change = doc.get_last_local_change().expect("a change").clone();
        Incoming {
            doc_id: id,
            kind: kind.into(),
            hash: change.hash().0,
            bytes: change.raw_bytes().to_vec(),
        }
    };

    // A change labelled with another kind than the record it holds: held.
    let mut liar = automerge::AutoCommit::new();
    let q = patient("Imani Juma", "DEV-000003");
    healsync_records::write_record(&mut liar, &q).expect("write");
    let labelled = incoming(&mut liar, q.id.0, "doctor");
    s.apply_remote(now(), vec![labelled], 2).expect("held");
    assert_eq!(s.stats().expect("stats").documents, 0);
    assert!(s.held().expect("held")[0].reason.contains("labelled"));

    // A kind this version does not know (say, one a newer node writes): held.
    let other = Uuid::now_v7();
    let mut newer = automerge::AutoCommit::new();
    newer.put(automerge::ROOT, "kind", "invoice").expect("put");
    newer.commit();
    let invoice = incoming(&mut newer, other, "invoice");

    // A patient whose record does not read after two changes, and reads after a third.
    let p = patient("Wanjiku Mwangi", "DEV-000002");
    let mut doc = automerge::AutoCommit::new();
    healsync_records::write_record(&mut doc, &p).expect("write");
    let c1 = incoming(&mut doc, p.id.0, "patient");
    doc.delete(automerge::ROOT, "name").expect("delete");
    doc.commit();
    let c2 = incoming(&mut doc, p.id.0, "patient");
    s.apply_remote(now(), vec![invoice, c1, c2], 3)
        .expect("held, not failed");
    assert_eq!(s.status().expect("status").held_changes, 4);
    assert_eq!(s.stats().expect("stats").documents, 0);
    let reasons: Vec<String> = s
        .held()
        .expect("held")
        .into_iter()
        .map(|h| h.reason)
        .collect();
    assert!(reasons[0].contains("labelled"), "{reasons:?}");
    assert!(
        reasons[1..].iter().all(|r| r.contains("does not read")),
        "{reasons:?}"
    );

    doc.put(automerge::ROOT, "name", "Wanjiku Mwangi")
        .expect("put");
    doc.commit();
    let c3 = incoming(&mut doc, p.id.0, "patient");
    let merged = s.apply_remote(now(), vec![c3], 4).expect("merge");
    assert_eq!(merged.len(), 1);
    assert_eq!(patient_named(&s, p.id), p);
    assert_eq!(
        s.status().expect("status").held_changes,
        2,
        "only the mislabelled patient and the invoice wait"
    );
    assert_eq!(s.sync_state().expect("state").download_cursor, 4);
}

#[test]
fn upload_positions_only_move_forward_and_refusals_are_kept() {
    let dir = tempfile::tempdir().expect("dir");
    let s = Store::open(dir.path(), None).expect("open");
    for i in 0..5 {
        let p = patient(&format!("P {i}"), &format!("DEV-{i:06}"));
        s.write(now(), |tx| tx.put(&p)).expect("write");
    }
    let all = s.pending_upload(0, usize::MAX).expect("all");
    assert_eq!(all.len(), 5);
    let first_batch = s.pending_upload(0, 1).expect("small batch");
    assert_eq!(
        first_batch.len(),
        1,
        "at least one change even over the byte budget"
    );
    s.record_upload_ack(
        now(),
        all[2].seq,
        &[(all[1].seq, all[1].doc_id, "another site's document".into())],
    )
    .expect("ack");
    s.record_upload_ack(now(), all[0].seq, &[])
        .expect("stale ack");
    assert_eq!(s.sync_state().expect("state").upload_acked, all[2].seq);
    assert_eq!(
        s.pending_upload(all[2].seq, usize::MAX)
            .expect("rest")
            .len(),
        2
    );
    let refusals: i64 = s
        .read(|c| {
            c.query_row("SELECT count(*) FROM sync_rejections", [], |r| r.get(0))
                .map_err(StoreError::sqlite("count"))
        })
        .expect("count");
    assert_eq!(refusals, 1);
}

#[test]
fn concurrent_edits_of_one_field_become_a_conflict_that_a_person_settles() {
    let (da, db) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let a = Store::open(da.path(), Some(&SiteCode::parse("NBO").expect("site"))).expect("open a");
    let b = Store::open(db.path(), Some(&SiteCode::parse("MSA").expect("site"))).expect("open b");
    let p = patient("Amina Njoroge", "NBO-000001");
    a.write(now(), |tx| tx.put(&p)).expect("create");
    b.apply_remote(now(), ship(&a, 0), 1).expect("to b");
    let a_seq = a
        .pending_upload(0, usize::MAX)
        .expect("seq")
        .last()
        .map_or(0, |c| c.seq);

    let mut at_a = p.clone();
    at_a.phone = Some("+254 711 111 111".into());
    a.write(now(), |tx| tx.put(&at_a)).expect("edit a");
    let mut at_b = p.clone();
    at_b.phone = Some("+254 722 222 222".into());
    b.write(now(), |tx| tx.put(&at_b)).expect("edit b");
    let b_seq = 0;
    let (to_b, to_a) = (ship(&a, a_seq), ship(&b, b_seq));
    b.apply_remote(now(), to_b, 2).expect("a to b");
    a.apply_remote(now(), to_a, 1).expect("b to a");

    let open = |s: &Store| {
        s.read(|c| queries::conflicts(c, 100, 0))
            .expect("conflicts")
    };
    let (ca, cb) = (open(&a), open(&b));
    assert_eq!(ca, cb, "both clinics see the same conflict");
    assert_eq!(ca.len(), 1);
    assert_eq!(ca[0].field, "phone");
    assert_eq!(ca[0].values, ["+254 711 111 111", "+254 722 222 222"]);
    assert!(
        a.check_projections().expect("check").is_consistent(),
        "conflicts rebuild from documents"
    );

    // A receptionist at MSA picks Nairobi's number; after the exchange it is settled
    // at both clinics, and both read it.
    let b_seq = b
        .pending_upload(0, usize::MAX)
        .expect("seq")
        .last()
        .map_or(0, |c| c.seq);
    let (settled, _) = b
        .write(now(), |tx| {
            tx.resolve_conflict(p.id.0, "phone", "+254 711 111 111")
        })
        .expect("resolve");
    assert!(settled);
    let (refused, _) = b
        .write(now(), |tx| tx.resolve_conflict(p.id.0, "phone", "nonsense"))
        .expect("resolve");
    assert!(!refused);
    assert!(open(&b).is_empty());
    a.apply_remote(now(), ship(&b, b_seq), 3).expect("b to a");
    assert!(open(&a).is_empty());
    assert_eq!(
        patient_named(&a, p.id).phone.as_deref(),
        Some("+254 711 111 111")
    );
    assert_eq!(patient_named(&a, p.id), patient_named(&b, p.id));
}

/// The invoice list filters by status in SQL; that form must agree with
/// `billing::invoice_status` for every combination of paid, refunded and voided.
#[test]
fn invoice_status_in_sql_agrees_with_the_domain_rule() {
    use crate::queries::billing::{InvoiceFilter, invoices};
    use healsync_domain::billing::{Currency, InvoiceLine, InvoiceStatus, PaymentMethod};

    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), None).expect("open");
    let p = patient("Amina Njoroge", "DEV-000001");
    let kes = Currency::parse("KES").expect("currency");
    // (payments in minor units, voided) on an invoice of 1000.00.
    let cases: &[(&[i64], bool)] = &[
        (&[], false),
        (&[1], false),
        (&[99_999], false),
        (&[100_000], false),
        (&[60_000, 40_000], false),
        (&[100_000, -1], false),
        (&[50_000, -50_000], false),
        (&[], true),
        (&[50_000, -50_000], true),
    ];
    let mut want = vec![];
    store
        .write(now(), |tx| {
            tx.put(&p)?;
            for (n, (payments, voided)) in cases.iter().enumerate() {
                let invoice = Invoice {
                    id: InvoiceId(Uuid::now_v7()),
                    number: format!("DEV-INV-{n:06}"),
                    patient_id: p.id,
                    site: "DEV".into(),
                    currency: kes.clone(),
                    lines: vec![InvoiceLine {
                        service_code: None,
                        description: "Consultation".into(),
                        quantity: 1,
                        unit_price: 100_000,
                        discount: 0,
                        tax_rate: 0,
                    }],
                    appointment_id: None,
                    notes: None,
                    issued_by: "desk".into(),
                    issued_at: now(),
                };
                tx.put(&invoice)?;
                for amount in payments.iter() {
                    tx.put(&Payment {
                        id: PaymentId(Uuid::now_v7()),
                        invoice_id: invoice.id,
                        patient_id: p.id,
                        site: "DEV".into(),
                        amount: *amount,
                        currency: kes.clone(),
                        method: PaymentMethod::Cash,
                        reference: None,
                        received_by: "desk".into(),
                        received_at: now(),
                    })?;
                }
                if *voided {
                    tx.put(&InvoiceVoid {
                        id: InvoiceVoidId(Uuid::now_v7()),
                        invoice_id: invoice.id,
                        patient_id: p.id,
                        site: "DEV".into(),
                        reason: "wrong patient".into(),
                        voided_by: "desk".into(),
                        voided_at: now(),
                    })?;
                }
                let paid: i64 = payments.iter().sum();
                want.push((
                    invoice.number.clone(),
                    billing::invoice_status(100_000, paid, *voided),
                ));
            }
            Ok::<_, StoreError>(())
        })
        .expect("write");
    for status in InvoiceStatus::ALL {
        let listed: Vec<String> = store
            .read(|c| {
                invoices(
                    c,
                    &InvoiceFilter {
                        statuses: vec![*status],
                        limit: 100,
                        ..Default::default()
                    },
                )
            })
            .expect("list")
            .into_iter()
            .inspect(|row| assert_eq!(row.status(), *status, "{}", row.invoice.number))
            .map(|row| row.invoice.number)
            .collect();
        let mut expected: Vec<String> = want
            .iter()
            .filter(|(_, s)| s == status)
            .map(|(n, _)| n.clone())
            .collect();
        let mut listed = listed;
        listed.sort();
        expected.sort();
        assert_eq!(listed, expected, "{status:?}");
    }
    assert!(store.check_projections().expect("check").is_consistent());
}

#[test]
fn a_break_glass_lookup_reads_its_own_index() {
    assert_eq!(healsync_domain::audit::BREAK_GLASS, "break_glass");
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path(), None).expect("store");
    let plan: Vec<String> = store
        .read(|c| {
            let mut s = c
                .prepare(
                    "EXPLAIN QUERY PLAN SELECT at, reason FROM audit_log
                     WHERE patient_id = ?1 AND kind = 'break_glass' AND user_id = ?2
                       AND access = 'WRITE' AND at >= ?3 ORDER BY at DESC LIMIT 1",
                )
                .map_err(StoreError::sqlite("plan"))?;
            let rows = s
                .query_map(["p", "u", "0"], |r| r.get::<_, String>(3))
                .map_err(StoreError::sqlite("plan"))?;
            Ok(rows.filter_map(Result::ok).collect())
        })
        .expect("plan");
    assert!(
        plan.iter().any(|d| d.contains("audit_break_glass")),
        "{plan:?}"
    );
    let none = store
        .read(|c| {
            crate::audit::break_glass(c, UserId(Uuid::now_v7()), PatientId(Uuid::now_v7()), now())
        })
        .expect("lookup");
    assert_eq!(none, None);
}
