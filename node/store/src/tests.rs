//! Store tests on a real SQLite file in a temporary directory.

use chrono::{DateTime, NaiveDate, Utc};
use healsync_domain::*;
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
