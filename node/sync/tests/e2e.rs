//! Clinics and a hub: SQLite nodes (the real store and services), the PostgreSQL hub
//! store, real QUIC with mutual TLS on loopback. Two clinics work offline, then sync;
//! every document both hold must end with identical heads, and a patient reaches
//! another clinic only when it has business there. Fifty clinics reconnecting at once
//! all land, each change exactly once.

use std::net::SocketAddr;
use std::sync::Arc;

use healsync_auth::SessionKeys;
use healsync_domain::{RequestStatus, Role, SiteCode, UserId};
use healsync_hub_store::HubStore;
use healsync_hub_sync::HubSyncStorage;
use healsync_node_api::service::{appointments, doctors, patients};
use healsync_node_api::{Node, Session};
use healsync_node_sync::sync_once;
use healsync_store::Store;
use healsync_sync_transport::ca::HubCa;
use healsync_sync_transport::{config, driver};
use uuid::Uuid;

fn admin() -> Session {
    Session {
        user_id: UserId(Uuid::nil()),
        username: "admin".into(),
        role: Role::Admin,
        patient_id: None,
        doctor_id: None,
        peer: None,
        opened: None,
    }
}

/// A hub store on a fresh PostgreSQL database, serving sync over real QUIC with mutual
/// TLS on loopback, at most `sessions` at a time.
struct TestHub {
    store: HubStore,
    ca: Arc<HubCa>,
    addr: SocketAddr,
    db: healsync_test_support::TestDatabase,
    _ca_dir: tempfile::TempDir,
}

impl TestHub {
    async fn start(name: &str, pool: u32, sessions: usize) -> TestHub {
        let db = healsync_test_support::TestDatabase::create(name)
            .await
            .expect("test database");
        let store = HubStore::connect(&db.url, pool).await.expect("hub store");
        let ca_dir = tempfile::tempdir().expect("ca dir");
        let ca = Arc::new(HubCa::load_or_create(ca_dir.path()).expect("ca"));
        let server =
            config::server(ca.cert_pem(), &ca.issue_hub().expect("hub cert")).expect("server");
        let endpoint = quinn::Endpoint::server(server, "127.0.0.1:0".parse().expect("addr"))
            .expect("hub endpoint");
        let addr = endpoint.local_addr().expect("addr");
        tokio::spawn(driver::run_hub(
            endpoint,
            Arc::new(HubSyncStorage {
                store: store.clone(),
                ca: ca.clone(),
                committed: Default::default(),
            }),
            sessions,
        ));
        TestHub {
            store,
            ca,
            addr,
            db,
            _ca_dir: ca_dir,
        }
    }

    /// Sites NBO (Nairobi) and MSA (Mombasa), and one enrolled clinic node at each.
    async fn nairobi_and_mombasa(&self) -> (Clinic, Clinic) {
        self.store.add_site("NBO", "Nairobi").await.expect("site");
        self.store.add_site("MSA", "Mombasa").await.expect("site");
        (
            clinic("NBO", &self.store, &self.ca).await,
            clinic("MSA", &self.store, &self.ca).await,
        )
    }
}

struct Clinic {
    node: Node,
    endpoint: quinn::Endpoint,
    _dir: tempfile::TempDir,
}

async fn clinic(site: &str, hub: &HubStore, ca: &HubCa) -> Clinic {
    let dir = tempfile::tempdir().expect("dir");
    let store =
        Store::open(dir.path(), Some(&SiteCode::parse(site).expect("site"))).expect("store");
    let node_id = store.identity().node_id;
    let token = hub.create_enrollment_token(site).await.expect("token");
    hub.enroll(&token, node_id).await.expect("enroll");
    let creds = ca.issue_node(node_id, site).expect("cert");
    let mut endpoint =
        quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("endpoint");
    endpoint
        .set_default_client_config(config::client(ca.cert_pem(), &creds).expect("client config"));
    let keys = SessionKeys::load_or_create(dir.path(), site).expect("keys");
    Clinic {
        node: Node::new(Arc::new(store), keys).expect("node"),
        endpoint,
        _dir: dir,
    }
}

fn new_patient(name: &str) -> patients::NewPatient {
    patients::NewPatient {
        name: name.into(),
        email: format!("{}@example.org", name.to_lowercase().replace(' ', ".")),
        phone: Some("+254 712 000 111".into()),
        date_of_birth: chrono::NaiveDate::from_ymd_opt(1984, 3, 1),
        sex: None,
        address: Default::default(),
        emergency_contact: None,
        allergies: vec![],
    }
}

async fn sync(c: &Clinic, hub: SocketAddr) -> healsync_sync_protocol::session::Summary {
    sync_once(&c.node, &c.endpoint, hub, None)
        .await
        .expect("sync round")
}

/// Every document the clinic holds is at the hub with identical heads.
async fn assert_same_heads_at_hub(hub: &HubStore, c: &Clinic) {
    let at_hub: std::collections::BTreeMap<Uuid, String> = hub
        .all_heads()
        .await
        .expect("hub heads")
        .into_iter()
        .collect();
    let at_node = c.node.store().all_heads().expect("node heads");
    assert!(!at_node.is_empty());
    for (id, (kind, heads)) in at_node {
        assert_eq!(
            at_hub.get(&id),
            Some(&heads),
            "{kind} {id} differs at the hub"
        );
    }
}

/// The notifications a doctor has at a clinic.
fn doctor_notices(
    c: &Clinic,
    doctor: healsync_domain::DoctorId,
) -> Vec<healsync_domain::Notification> {
    c.node
        .store()
        .read(|conn| {
            healsync_store::queries::notifications_for(
                conn,
                healsync_domain::Audience::Doctor(doctor),
                false,
                50,
                0,
            )
        })
        .expect("notifications")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_offline_clinics_converge_through_the_hub() {
    let hub = TestHub::start("e2e", 4, 8).await;
    let (nbo, msa) = hub.nairobi_and_mombasa().await;
    let TestHub {
        store: hub_store,
        addr: hub_addr,
        db,
        ..
    } = hub;

    // Offline work at both clinics.
    let amina = patients::create(&nbo.node, &admin(), new_patient("Amina Njoroge"))
        .await
        .expect("patient");
    doctors::create(
        &nbo.node,
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
    .expect("doctor");
    for i in 0..20 {
        patients::create(
            &msa.node,
            &admin(),
            new_patient(&format!("Mombasa Patient {i}")),
        )
        .await
        .expect("patient");
    }

    let s = sync(&nbo, hub_addr).await;
    assert_eq!((s.uploaded, s.downloaded, s.rejected), (2, 0, 0));
    let s = sync(&msa, hub_addr).await;
    assert_eq!((s.uploaded, s.downloaded), (20, 1), "the doctor, not Amina");
    let s = sync(&nbo, hub_addr).await;
    assert_eq!(
        s.downloaded, 0,
        "Mombasa's patients have no business in Nairobi"
    );

    let status = nbo.node.store().status().expect("status");
    assert_eq!(status.waiting_to_upload, 0);
    assert!(status.last_sync.is_some(), "a completed round is recorded");
    let (ha, hb) = (
        nbo.node.store().all_heads().expect("a"),
        msa.node.store().all_heads().expect("b"),
    );
    assert_eq!((ha.len(), hb.len()), (2, 21));
    assert!(!hb.contains_key(&amina.id.0));
    let shared: Vec<_> = ha.iter().filter(|(id, _)| hb.contains_key(id)).collect();
    assert_eq!(shared.len(), 1, "the doctor is at both clinics");
    assert_eq!(Some(shared[0].1), hb.get(shared[0].0), "identical at both");

    // Amina walks into Mombasa with her card: the front desk asks the hub for her by
    // medical record number (and for a number nobody has). The requests go up with a
    // sync, the hub answers them, and the next sync brings Amina's whole record.
    let asked =
        patients::request_from_hub(&msa.node, &admin(), &amina.mrn.to_lowercase(), "1984-03-01")
            .await
            .expect("request");
    assert_eq!(asked.status, RequestStatus::Pending);
    let again = patients::request_from_hub(&msa.node, &admin(), &amina.mrn, "1984-03-01")
        .await
        .expect("request again");
    assert_eq!(again.id, asked.id, "one pending request per number");
    let unknown = patients::request_from_hub(&msa.node, &admin(), "NBO-999999", "1984-03-01")
        .await
        .expect("request");
    let own = patients::request_from_hub(&nbo.node, &admin(), &amina.mrn, "1984-03-01").await;
    assert!(
        matches!(own, Err(healsync_node_api::ApiError::Conflict(_))),
        "{own:?}"
    );
    assert_eq!(sync(&msa, hub_addr).await.uploaded, 2);
    hub_store.materialize_all().await.expect("materialize");
    let s = sync(&msa, hub_addr).await;
    assert_eq!(s.downloaded, 3, "Amina and the two answers");
    let request = |id| {
        msa.node
            .store()
            .read(|conn| healsync_store::queries::patient_request(conn, id))
            .expect("read")
            .expect("present")
    };
    let answered = request(asked.id);
    assert_eq!(answered.status, RequestStatus::Shared);
    assert_eq!(answered.patient_id, Some(amina.id));
    let unanswered = request(unknown.id);
    assert_eq!(unanswered.status, RequestStatus::NotFound);
    assert!(unanswered.answer.is_some_and(|a| a.contains("NBO-999999")));
    assert_eq!(
        nbo.node.store().document_heads(amina.id.0).expect("a"),
        msa.node.store().document_heads(amina.id.0).expect("b")
    );

    // The same patient's phone edited at both clinics while offline: both values are
    // kept by the merge, and both clinics read the same record afterwards.
    let edit = |phone: &'static str| {
        move |p: &mut healsync_domain::Patient| {
            p.phone = Some(phone.into());
            Ok(())
        }
    };
    patients::update(&nbo.node, &admin(), amina.id, edit("+254 711 111 111"))
        .await
        .expect("edit at NBO");
    patients::update(&msa.node, &admin(), amina.id, edit("+254 722 222 222"))
        .await
        .expect("edit at MSA");
    sync(&nbo, hub_addr).await;
    sync(&msa, hub_addr).await;
    sync(&nbo, hub_addr).await;
    let read = |c: &Clinic| {
        c.node
            .store()
            .read(|conn| healsync_store::queries::patient(conn, amina.id))
            .expect("read")
            .expect("present")
    };
    assert_eq!(read(&nbo), read(&msa));
    // Both clinics see the phone conflict (the same one), until a person settles it.
    let open = |c: &Clinic| c.node.store().status().expect("status").open_conflicts;
    assert_eq!((open(&nbo), open(&msa)), (1, 1));
    assert_eq!(
        nbo.node.store().document_heads(amina.id.0).expect("a"),
        msa.node.store().document_heads(amina.id.0).expect("b")
    );
    // Nothing is stored twice at the hub.
    let hub_changes: i64 = sqlx::query_scalar("SELECT count(*) FROM changes")
        .fetch_one(hub_store.pool())
        .await
        .expect("count");
    assert_eq!(
        hub_changes,
        2 + 20 + 2 + 2 + 2 + 2,
        "patients, edits, requests, answers, Amina and Nairobi's admins told of the share"
    );

    // The hub folds its log into the same documents: identical heads, and the same
    // conflict, shown to central admins.
    hub_store.materialize_all().await.expect("materialize");
    assert_same_heads_at_hub(&hub_store, &nbo).await;
    let at_hub = hub_store.field_conflicts(None).await.expect("conflicts");
    assert_eq!(at_hub.len(), 1, "{at_hub:?}");
    assert_eq!(
        (at_hub[0].doc_id, at_hub[0].field.as_str()),
        (amina.id.0, "phone")
    );
    assert_eq!(at_hub[0].values, ["+254 711 111 111", "+254 722 222 222"]);

    // Settled at the hub with a value a person typed: after sync it is settled at both
    // clinics too, and every copy is identical again.
    hub_store
        .resolve_conflict(amina.id.0, "phone", "+254 733 333 333")
        .await
        .expect("settle")
        .expect("settled");
    assert!(
        hub_store
            .field_conflicts(None)
            .await
            .expect("conflicts")
            .is_empty()
    );
    sync(&nbo, hub_addr).await;
    sync(&msa, hub_addr).await;
    assert_eq!((open(&nbo), open(&msa)), (0, 0));
    assert_eq!(read(&nbo).phone.as_deref(), Some("+254 733 333 333"));
    assert_eq!(read(&nbo), read(&msa));
    hub_store.materialize_all().await.expect("materialize");
    assert_same_heads_at_hub(&hub_store, &msa).await;

    // One doctor booked at both clinics for the same hour while offline: the hub finds
    // the cross-site collision and both clinics are notified.
    let doctor = nbo
        .node
        .store()
        .read(|conn| {
            healsync_store::queries::doctors(
                conn,
                &healsync_store::queries::DoctorFilter {
                    limit: 10,
                    ..Default::default()
                },
            )
        })
        .expect("doctors")
        .into_iter()
        .next()
        .expect("the doctor");
    let monday_mornings = vec![healsync_domain::WeeklyRule {
        weekday: chrono::Weekday::Mon,
        start: chrono::NaiveTime::from_hms_opt(9, 0, 0).expect("time"),
        end: chrono::NaiveTime::from_hms_opt(12, 0, 0).expect("time"),
    }];
    let mut next_monday = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
    while chrono::Datelike::weekday(&next_monday) != chrono::Weekday::Mon {
        next_monday += chrono::Duration::days(1);
    }
    let ten = next_monday.and_hms_opt(10, 0, 0).expect("time").and_utc();
    for c in [&nbo, &msa] {
        doctors::set_schedule(
            &c.node,
            &admin(),
            doctor.id,
            20,
            0,
            monday_mornings.clone(),
            true,
        )
        .await
        .expect("schedule");
    }
    let msa_patient = msa
        .node
        .store()
        .read(|conn| {
            healsync_store::queries::patients(
                conn,
                &healsync_store::queries::PatientFilter {
                    search: Some("Mombasa Patient 3".into()),
                    limit: 1,
                    ..Default::default()
                },
            )
        })
        .expect("patients")
        .into_iter()
        .next()
        .expect("a patient");
    for (c, patient) in [(&nbo, amina.id), (&msa, msa_patient.id)] {
        appointments::book(
            &c.node,
            &admin(),
            appointments::NewAppointment {
                patient_id: patient,
                doctor_id: doctor.id,
                start: ten,
                reason: Some("Review".into()),
                notes: None,
            },
        )
        .await
        .expect("booked offline");
    }
    sync(&nbo, hub_addr).await;
    sync(&msa, hub_addr).await;
    hub_store.materialize_all().await.expect("materialize");
    let collisions = hub_store
        .cross_site_conflicts(true)
        .await
        .expect("collisions");
    assert_eq!(collisions.len(), 1, "{collisions:?}");
    assert_eq!(collisions[0].kind, "DOCTOR");
    let mut sites = [
        collisions[0].first_site.clone(),
        collisions[0].second_site.clone(),
    ];
    sites.sort();
    assert_eq!(sites, ["MSA", "NBO"]);
    sync(&nbo, hub_addr).await;
    sync(&msa, hub_addr).await;
    for c in [&nbo, &msa] {
        let notes = doctor_notices(c, doctor.id);
        let cross: Vec<_> = notes
            .iter()
            .filter(|n| n.kind == "CROSS_SITE_CONFLICT")
            .collect();
        assert_eq!(cross.len(), 1, "each site is told once: {notes:?}");
    }
    // A second materialize of the same log raises nothing new.
    hub_store.materialize_all().await.expect("materialize");
    assert_eq!(
        hub_store
            .cross_site_conflicts(false)
            .await
            .expect("all")
            .len(),
        1
    );

    // The hub books 11:00 into Mombasa's schedule while Mombasa, offline, books the
    // same slot for someone else: the site could not see it, the hub does.
    let eleven = ten + chrono::Duration::hours(1);
    let at_hub = healsync_domain::booking::BookingRequest {
        patient_id: amina.id,
        doctor_id: doctor.id,
        site: "MSA".into(),
        start: eleven,
        reason: Some("Booked centrally".into()),
        notes: None,
    };
    hub_store
        .book(at_hub.clone())
        .await
        .expect("booked at the hub");
    let offline = appointments::book(
        &msa.node,
        &admin(),
        appointments::NewAppointment {
            patient_id: msa_patient.id,
            doctor_id: doctor.id,
            start: eleven,
            reason: None,
            notes: None,
        },
    )
    .await
    .expect("booked offline at MSA");
    sync(&msa, hub_addr).await;
    hub_store.materialize_all().await.expect("materialize");
    let open_now = hub_store.cross_site_conflicts(true).await.expect("open");
    assert_eq!(open_now.len(), 2, "{open_now:?}");
    assert!(
        open_now
            .iter()
            .any(|c| c.first_site == "MSA" && c.second_site == "MSA" && c.kind == "DOCTOR"),
        "{open_now:?}"
    );

    // Mombasa moves its booking off the overlap: the collision is resolved at the hub.
    appointments::reschedule(
        &msa.node,
        &admin(),
        offline.id,
        eleven + chrono::Duration::minutes(20),
    )
    .await
    .expect("moved");
    sync(&msa, hub_addr).await;
    hub_store.materialize_all().await.expect("materialize");
    let still_open = hub_store.cross_site_conflicts(true).await.expect("open");
    assert_eq!(
        still_open.len(),
        1,
        "only the NBO-MSA one is left: {still_open:?}"
    );
    assert_ne!(still_open[0].first_site, still_open[0].second_site);

    // The hub books a Mombasa patient into Nairobi's schedule: Nairobi receives the
    // patient (before the appointment that needs it) and may then edit the record.
    let twelve_to = eleven + chrono::Duration::minutes(40);
    let (visiting, _) = hub_store
        .book(healsync_domain::booking::BookingRequest {
            patient_id: msa_patient.id,
            site: "NBO".into(),
            start: twelve_to,
            ..at_hub
        })
        .await
        .expect("booked at the hub");
    let s = sync(&nbo, hub_addr).await;
    assert!(s.downloaded >= 2, "{s:?}");
    let booked = nbo
        .node
        .store()
        .read(|conn| healsync_store::queries::appointment(conn, visiting.id))
        .expect("read")
        .expect("the booking reached Nairobi");
    assert_eq!(booked.patient_id, msa_patient.id);
    let told = doctor_notices(&nbo, doctor.id);
    assert!(
        told.iter()
            .any(|n| n.kind == "APPOINTMENT_BOOKED" && n.appointment_id == Some(visiting.id)),
        "the doctor is told of the hub's booking at Nairobi: {told:?}"
    );
    patients::update(
        &nbo.node,
        &admin(),
        msa_patient.id,
        edit("+254 744 444 444"),
    )
    .await
    .expect("edit at NBO");
    assert_eq!(sync(&nbo, hub_addr).await.rejected, 0);
    sync(&msa, hub_addr).await;
    let at_msa = msa
        .node
        .store()
        .read(|conn| healsync_store::queries::patient(conn, msa_patient.id))
        .expect("read")
        .expect("present");
    assert_eq!(at_msa.phone.as_deref(), Some("+254 744 444 444"));
    assert_eq!(
        nbo.node
            .store()
            .document_heads(msa_patient.id.0)
            .expect("a"),
        msa.node
            .store()
            .document_heads(msa_patient.id.0)
            .expect("b")
    );
    hub_store.materialize_all().await.expect("materialize");
    assert_same_heads_at_hub(&hub_store, &nbo).await;
    assert_same_heads_at_hub(&hub_store, &msa).await;
    assert_eq!(
        hub_store
            .granted_sites(msa_patient.id.0)
            .await
            .expect("sites"),
        ["NBO"]
    );

    hub_store.pool().close().await;
    db.drop_database().await.expect("drop the test database");
}

/// After an outage every clinic reconnects at once: fifty clinics (a site each, real
/// SQLite stores with a backlog) sync together with a hub that serves four sessions at
/// a time. Every round completes, the hub holds every change exactly once, and its
/// documents equal the clinics'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clinics_reconnecting_at_once_all_land_exactly_once() {
    const CLINICS: usize = 50;
    const BACKLOG: usize = 120;
    let TestHub {
        store: hub_store,
        ca,
        addr: hub_addr,
        db,
        _ca_dir,
    } = TestHub::start("fifty", 8, 4).await;

    let mut rng = healsync_test_support::seed::Rng(0x50_c11c);
    let mut clinics = Vec::new();
    for i in 0..CLINICS {
        let site = format!("S{i:02}");
        hub_store.add_site(&site, &site).await.expect("site");
        let c = clinic(&site, &hub_store, &ca).await;
        healsync_test_support::seed::patients(c.node.store(), &site, 0, BACKLOG, &mut rng)
            .expect("backlog");
        clinics.push(Arc::new(c));
    }

    let started = std::time::Instant::now();
    let rounds: Vec<_> = clinics
        .iter()
        .map(|c| {
            let c = c.clone();
            tokio::spawn(async move { sync_once(&c.node, &c.endpoint, hub_addr, None).await })
        })
        .collect();
    for r in rounds {
        let summary = r.await.expect("task").expect("every round completes");
        assert_eq!((summary.uploaded, summary.rejected), (BACKLOG as u64, 0));
    }
    eprintln!(
        "{CLINICS} clinics x {BACKLOG} changes landed in {:.1} s through 4 sessions",
        started.elapsed().as_secs_f64()
    );

    let (stored, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT hash) FROM changes")
            .fetch_one(hub_store.pool())
            .await
            .expect("count");
    assert_eq!(
        (stored, distinct),
        ((CLINICS * BACKLOG) as i64, (CLINICS * BACKLOG) as i64)
    );
    hub_store.materialize_all().await.expect("fold");
    for c in &clinics {
        assert_eq!(
            c.node.store().status().expect("status").waiting_to_upload,
            0
        );
        assert_same_heads_at_hub(&hub_store, c).await;
    }
    hub_store.pool().close().await;
    db.drop_database().await.expect("drop the test database");
}

/// A stolen (or broken) node writes what its site may not: another clinic's patient it
/// was never given, another clinic's schedule, another clinic's login. The hub stores
/// none of it and says why; the node keeps the reasons for its technician; central
/// admins see them; the other clinic's records stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cannot_write_another_clinics_records() {
    let hub = TestHub::start("stolen", 4, 4).await;
    let (nbo, msa) = hub.nairobi_and_mombasa().await;
    let TestHub {
        store: hub_store,
        addr: hub_addr,
        db,
        ..
    } = hub;

    // Nairobi's records: a patient, a doctor with a schedule, a receptionist's login.
    let patient = patients::create(&nbo.node, &admin(), new_patient("Achieng Otieno"))
        .await
        .expect("patient");
    let doctor = doctors::create(
        &nbo.node,
        &admin(),
        doctors::NewDoctor {
            name: "Dr. Kiptoo Chebet".into(),
            specializations: vec!["Paediatrics".into()],
            licence_number: "KMPDC-9".into(),
            email: None,
            phone: None,
        },
    )
    .await
    .expect("doctor");
    let schedule = doctors::set_schedule(
        &nbo.node,
        &admin(),
        doctor.id,
        20,
        0,
        vec![healsync_domain::WeeklyRule {
            weekday: chrono::Weekday::Tue,
            start: chrono::NaiveTime::from_hms_opt(9, 0, 0).expect("time"),
            end: chrono::NaiveTime::from_hms_opt(12, 0, 0).expect("time"),
        }],
        true,
    )
    .await
    .expect("schedule");
    let login = healsync_node_api::service::users::create(
        &nbo.node,
        &admin(),
        healsync_node_api::service::users::NewUser {
            username: "wanjiru".into(),
            password: "a long enough password".into(),
            role: Role::Receptionist,
            patient_id: None,
            doctor_id: None,
        },
    )
    .await
    .expect("login");
    sync(&nbo, hub_addr).await;
    let s = sync(&msa, hub_addr).await;
    assert_eq!(s.rejected, 0);
    let at_msa = msa
        .node
        .store()
        .read(|conn| healsync_store::queries::users_named(conn, "wanjiru"))
        .expect("read");
    assert!(at_msa.is_empty(), "Nairobi's login does not reach Mombasa");

    // Mombasa's node writes over all three, by their ids: the patient (never shared
    // with Mombasa), the schedule, and the login (made an ADMIN with a password hash
    // of the thief's choosing).
    let now = chrono::Utc::now();
    let forged_patient = healsync_domain::Patient {
        name: "Someone Else".into(),
        ..patient.clone()
    };
    let forged_schedule = healsync_domain::Schedule {
        active: false,
        ..schedule.clone()
    };
    let forged_login = healsync_domain::User {
        role: Role::Admin,
        password_hash: healsync_auth::hash_password("the thief's password").expect("hash"),
        ..login
    };
    msa.node
        .store()
        .write(now, |tx| {
            tx.put(&forged_patient)?;
            tx.put(&forged_schedule)?;
            tx.put(&forged_login)
        })
        .expect("written locally");
    let s = sync(&msa, hub_addr).await;
    assert_eq!((s.uploaded, s.rejected), (3, 3), "{s:?}");

    // The node keeps each reason for its technician.
    let refused = msa.node.store().refusals().expect("refusals");
    let reasons: Vec<&str> = refused.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("was not shared with site MSA")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains(&format!("document {} belongs to site NBO", schedule.id.0))),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("account") && r.contains("site NBO")),
        "{reasons:?}"
    );
    assert_eq!(
        msa.node.store().status().expect("status").refused_changes,
        3
    );

    // The hub stored none of it, and central admins see the refusals.
    let msa_id = msa.node.store().identity().node_id;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM changes WHERE origin_node = $1")
        .bind(msa_id)
        .fetch_one(hub_store.pool())
        .await
        .expect("count");
    assert_eq!(stored, 0, "nothing of Mombasa's forgeries is stored");
    let at_hub = hub_store
        .refusals(Some(msa_id), 10)
        .await
        .expect("refusals");
    assert_eq!(at_hub.len(), 3);
    assert!(at_hub.iter().all(|r| r.site == "MSA"));
    let nodes = hub_store.sites().await.expect("sites");
    let msa_site = nodes.iter().find(|s| s.code == "MSA").expect("MSA");
    assert_eq!(msa_site.nodes[0].refused, 3);

    // Nairobi's records are as Nairobi wrote them, at the hub and at Nairobi.
    hub_store.materialize_all().await.expect("fold");
    sync(&nbo, hub_addr).await;
    assert_same_heads_at_hub(&hub_store, &nbo).await;
    let at_nbo = nbo
        .node
        .store()
        .read(|conn| healsync_store::queries::patient(conn, patient.id))
        .expect("read")
        .expect("present");
    assert_eq!(at_nbo.name, "Achieng Otieno");
    let login_at_nbo = nbo
        .node
        .store()
        .read(|conn| healsync_store::queries::users_named(conn, "wanjiru"))
        .expect("read")
        .pop()
        .expect("present");
    assert_eq!(
        (login_at_nbo.id, login_at_nbo.role),
        (login.id, Role::Receptionist)
    );
    hub_store.pool().close().await;
    db.drop_database().await.expect("drop the test database");
}

/// A medical record entry about `patient`, written at a clinic as its doctor would.
fn entry(
    patient: healsync_domain::PatientId,
    site: &str,
    text: &str,
) -> healsync_domain::MedicalRecord {
    let now = chrono::Utc::now();
    healsync_domain::MedicalRecord {
        id: healsync_domain::MedicalRecordId(Uuid::now_v7()),
        patient_id: patient,
        site: site.into(),
        details: healsync_domain::Details::Note(healsync_domain::clinical::Note {
            text: text.into(),
        }),
        recorded_at: now,
        author: "dr.kamau".into(),
        author_doctor_id: None,
        appointment_id: None,
        correction: None,
        created_at: now,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn medical_records_and_bills_follow_their_patient_to_every_site_that_holds_it() {
    let hub = TestHub::start("records", 4, 4).await;
    let (nbo, msa) = hub.nairobi_and_mombasa().await;
    let TestHub {
        store: hub_store,
        addr: hub_addr,
        db,
        ..
    } = hub;
    let held = |c: &Clinic, id: healsync_domain::MedicalRecordId| {
        c.node
            .store()
            .read(|conn| healsync_store::queries::medical_record(conn, id))
            .expect("read")
            .is_some()
    };
    let put = |c: &Clinic, e: healsync_domain::MedicalRecord| {
        c.node
            .store()
            .write(chrono::Utc::now(), |tx| tx.put(&e))
            .expect("written");
    };

    // Nairobi charts Amina; Brian stays a Nairobi patient only.
    let amina = patients::create(&nbo.node, &admin(), new_patient("Amina Njoroge"))
        .await
        .expect("patient");
    let brian = patients::create(&nbo.node, &admin(), new_patient("Brian Otieno"))
        .await
        .expect("patient");
    let seen_in_nairobi = entry(amina.id, "NBO", "Seen in Nairobi.");
    put(&nbo, seen_in_nairobi.clone());
    // Nairobi bills her, she pays part, and Nairobi's price list is its own.
    use healsync_node_api::service::billing;
    billing::set_price_item(
        &nbo.node,
        &admin(),
        billing::PriceInput {
            code: "CONSULT".into(),
            name: "Consultation".into(),
            unit_price: "1500".into(),
            currency: "KES".into(),
            tax_rate: "16".into(),
            active: true,
        },
    )
    .await
    .expect("price");
    let bill = billing::issue_invoice(
        &nbo.node,
        &admin(),
        billing::NewInvoice {
            patient_id: Some(amina.id),
            appointment_id: None,
            currency: "KES".into(),
            lines: vec![billing::LineInput {
                service_code: Some("CONSULT".into()),
                quantity: 1,
                ..Default::default()
            }],
            notes: None,
        },
    )
    .await
    .expect("invoice");
    billing::record_payment(
        &nbo.node,
        &admin(),
        billing::PaymentInput {
            invoice_id: bill.invoice.id,
            amount: "1000".into(),
            method: healsync_domain::billing::PaymentMethod::Cash,
            reference: None,
        },
        billing::Direction::Payment,
    )
    .await
    .expect("payment");
    let bill_at = |c: &Clinic| {
        c.node
            .store()
            .read(|conn| healsync_store::queries::billing::invoice(conn, bill.invoice.id))
            .expect("read")
            .map(|row| (row.invoice.number.clone(), row.paid, row.status()))
    };
    sync(&nbo, hub_addr).await;
    // Mombasa writes into Brian's chart, though Brian was never shared with it.
    let forged = entry(
        brian.id,
        "MSA",
        "Written by a clinic that does not hold Brian.",
    );
    put(&msa, forged.clone());
    assert_eq!(sync(&msa, hub_addr).await.rejected, 0);
    hub_store.materialize_all().await.expect("materialize");
    assert!(
        !held(&msa, seen_in_nairobi.id),
        "Amina's chart stays in Nairobi"
    );
    assert_eq!(bill_at(&msa), None, "and so does her bill");

    // Amina is shared with Mombasa: her chart comes with her.
    hub_store
        .share(amina.id.0, "MSA", healsync_hub_store::GrantReason::Request)
        .await
        .expect("share");
    sync(&msa, hub_addr).await;
    assert!(
        held(&msa, seen_in_nairobi.id),
        "the chart follows the patient"
    );
    // Her bill and its payment come with her, with the same number and status; the
    // price list does not.
    assert_eq!(
        bill_at(&msa),
        Some((
            "NBO-INV-000001".to_string(),
            100_000,
            healsync_domain::billing::InvoiceStatus::PartiallyPaid
        ))
    );
    let msa_prices = msa
        .node
        .store()
        .read(|conn| healsync_store::queries::billing::price_items(conn, "NBO", false))
        .expect("read");
    assert!(msa_prices.is_empty(), "a price list stays at its site");

    // What Mombasa writes about her reaches Nairobi; the forged entry does not.
    let seen_in_mombasa = entry(amina.id, "MSA", "Seen in Mombasa.");
    put(&msa, seen_in_mombasa.clone());
    sync(&msa, hub_addr).await;
    hub_store.materialize_all().await.expect("materialize");
    sync(&nbo, hub_addr).await;
    assert!(
        held(&nbo, seen_in_mombasa.id),
        "Nairobi sees Mombasa's entry"
    );
    assert!(
        !held(&nbo, forged.id),
        "no clinic writes into another's charts"
    );
    // Both clinics hold the same documents as the hub, entry for entry.
    sync(&msa, hub_addr).await;
    assert_same_heads_at_hub(&hub_store, &nbo).await;
    assert_same_heads_at_hub(&hub_store, &msa).await;
    for c in [&nbo, &msa] {
        let report = c.node.store().check_projections().expect("check");
        assert!(report.is_consistent(), "{report:?}");
    }
    drop((nbo, msa));
    hub_store.pool().close().await;
    db.drop_database().await.expect("drop");
}
