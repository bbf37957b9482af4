//! Central admins at the hub, as they meet it: two clinics (real node processes,
//! syncing by themselves over QUIC) and a real hub process on PostgreSQL. The seed's
//! queries and subscriptions answer at the hub with typed fields from both sites; a
//! booking at the hub obeys exactly the node's rules (one table, both servers); an
//! admin limited to a site sees only that site, in queries, mutations and
//! subscriptions.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use healsync_test_support::{Gql, NodeProcess, Ws, WsEvent};
use serde_json::{Value, json};

use crate::{Clinic, TestHub, binary, eventually};

pub(crate) const HUB_BOOK: &str = "mutation($s: String!, $p: ID!, $d: ID!, $at: String!, $r: String) { bookAppointment(input: {site: $s, patientId: $p, doctorId: $d, scheduledAt: $at, reason: $r}) { id site status scheduledAt patient { name } doctor { name } } }";
const NODE_BOOK: &str = "mutation($p: ID!, $d: ID!, $at: String!, $r: String) { bookAppointment(input: {patientId: $p, doctorId: $d, scheduledAt: $at, reason: $r}) { id site status scheduledAt } }";

struct World {
    hub: TestHub,
    nbo: Clinic,
    msa: Clinic,
    central: Gql,
}

async fn world(prefix: &str) -> Result<World> {
    let hub = TestHub::start(prefix, &[("NBO", "Nairobi"), ("MSA", "Mombasa")]).await?;
    let mut clinics = Vec::new();
    for site in ["NBO", "MSA"] {
        let dir = hub.enroll(site).await?;
        let node = NodeProcess::start(binary(), dir.path(), &["--sync-interval", "1"]).await?;
        clinics.push(Clinic::on(node, dir).await?);
    }
    let msa = clinics.pop().ok_or_else(|| anyhow!("no MSA"))?;
    let nbo = clinics.pop().ok_or_else(|| anyhow!("no NBO"))?;
    let central = hub.process.admin().await?;
    Ok(World {
        hub,
        nbo,
        msa,
        central,
    })
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

/// A central admin limited to `site`, logged in.
async fn limited_admin(w: &World, name: &str, site: &str) -> Result<Gql> {
    central_account(w, name, "ADMIN", site).await
}

/// A central account of `role` limited to `site`, logged in.
async fn central_account(w: &World, name: &str, role: &str, site: &str) -> Result<Gql> {
    w.hub.central(name, role, site).await
}

/// Waits until the hub holds the record `query` finds (its answer not NOT_FOUND).
async fn at_hub(central: &Gql, query: &str, vars: Value) -> Result<Value> {
    eventually(query, || {
        let vars = vars.clone();
        async move {
            let a = central.query(query, vars).await?;
            Ok(match a.code() {
                None => Some(a.data()?.clone()),
                Some("NOT_FOUND") => None,
                Some(_) => bail!("{query}: {}", a.body),
            })
        }
    })
    .await
}

/// Waits for the next subscription payload (30 s at most).
async fn next(ws: &mut Ws) -> Result<Value> {
    match ws.next_event(Duration::from_secs(30)).await? {
        WsEvent::Next { payload, .. } => Ok(payload),
        other => bail!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_schema_answers_at_the_hub_across_sites() -> Result<()> {
    let w = world("hubseed").await?;
    let amina = w.nbo.patient("Amina Njeri").await?;
    let baraka = w.msa.patient("Baraka Otieno").await?;
    w.msa
        .admin
        .ok(
            "mutation { createPatient(input: {name: \"José Müller\", email: \"jose.muller@example.org\"}) { id } }",
            json!({}),
        )
        .await?;
    let booked_at_nbo = w.nbo.book_next(&id(&amina)).await?;

    // The product description's own example, typed, with patients of both sites.
    let both = eventually("both patients at the hub", || async {
        let d = w
            .central
            .ok(
                "{ patients(limit: 50, offset: 0) { id name email site } }",
                json!({}),
            )
            .await?;
        let sites: Vec<String> = d["patients"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["site"].as_str().map(String::from))
            .collect();
        let jose = d.to_string().contains("José Müller");
        Ok((jose && sites.contains(&"NBO".into()) && sites.contains(&"MSA".into())).then_some(d))
    })
    .await?;
    let amina_at_hub = both["patients"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "Amina Njeri")
        .ok_or_else(|| anyhow!("no Amina: {both}"))?;
    assert_eq!(amina_at_hub["email"], "amina.njeri@example.org");

    // Search as on the node: words of the name, MRN, e-mail and phone digits, by
    // prefix, diacritics folded; newest first.
    for (search, found) in [
        ("NJER", vec!["Amina Njeri"]),
        ("amina nj", vec!["Amina Njeri"]),
        ("bara", vec!["Baraka Otieno"]),
        ("254712", vec!["Baraka Otieno", "Amina Njeri"]),
        ("msa", vec!["José Müller", "Baraka Otieno"]),
        ("amina otieno", vec![]),
        ("jose", vec!["José Müller"]),
        ("MÜLL JOSÉ", vec!["José Müller"]),
        ("muller amina", vec![]),
        ("%", vec!["José Müller", "Baraka Otieno", "Amina Njeri"]),
    ] {
        let d = w
            .central
            .ok(
                "query($q: String) { patients(search: $q) { name } }",
                json!({ "q": search }),
            )
            .await?;
        let names: Vec<&str> = d["patients"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, found, "search {search:?}");
    }

    // patient(id) with its appointments, each with its doctor and patient (loaders).
    let one = at_hub(
        &w.central,
        "query($id: ID!) { patient(id: $id) { name phone dateOfBirth site appointments { id status scheduledAt site doctor { name specialization } patient { name } } } }",
        json!({ "id": id(&amina) }),
    )
    .await?;
    let p = &one["patient"];
    assert_eq!(p["dateOfBirth"], "1984-03-01");
    let appointments = eventually("Amina's booking at the hub", || async {
        let d = w
            .central
            .ok(
                "query($id: ID!) { patient(id: $id) { appointments { id status scheduledAt site doctor { name specialization } patient { name } } } }",
                json!({ "id": id(&amina) }),
            )
            .await?;
        let list = d["patient"]["appointments"].clone();
        Ok((list.as_array().is_some_and(|a| !a.is_empty())).then_some(list))
    })
    .await?;
    assert_eq!(appointments[0]["id"], booked_at_nbo.as_str());
    assert_eq!(appointments[0]["site"], "NBO");
    assert_eq!(
        appointments[0]["doctor"]["specialization"],
        "General practice"
    );
    assert_eq!(appointments[0]["patient"]["name"], "Amina Njeri");

    // doctors(specialization) with free slots at their sites; appointments(date, doctorId).
    let doctors = w
        .central
        .ok(
            "{ doctors(specialization: \"general practice\") { id name specialization availableSlots(limit: 3) { start end site } } }",
            json!({}),
        )
        .await?;
    let list = doctors["doctors"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2, "{doctors}");
    for d in &list {
        assert_eq!(d["availableSlots"].as_array().map(Vec::len), Some(3), "{d}");
    }
    let day = appointments[0]["scheduledAt"]
        .as_str()
        .unwrap_or_default()
        .get(..10)
        .unwrap_or_default()
        .to_string();
    let on_day = w
        .central
        .ok(
            "query($day: String, $d: ID) { appointments(date: $day, doctorId: $d) { id site status notes patient { name } doctor { name } } }",
            json!({ "day": day, "d": w.nbo.doctor_id }),
        )
        .await?;
    assert_eq!(
        on_day["appointments"][0]["id"],
        booked_at_nbo.as_str(),
        "{on_day}"
    );
    let absent = w
        .central
        .query(
            "query($id: ID!) { patient(id: $id) { name } }",
            json!({ "id": "0190f4c2-0000-7000-8000-000000000000" }),
        )
        .await?;
    assert_eq!(absent.code(), Some("NOT_FOUND"));

    // The seed's subscriptions, across sites: a doctor of Mombasa's notifications and
    // Baraka's appointments, as the hub books him in Mombasa.
    let doctor_login = w
        .msa
        .user("dr-msa", "DOCTOR", json!({ "doctorId": w.msa.doctor_id }))
        .await?;
    let doctor_user = doctor_login.ok("{ me { id } }", json!({})).await?["me"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    at_hub(
        &w.central,
        "query($u: ID!) { notifications(userId: $u) { id } }",
        json!({ "u": doctor_user }),
    )
    .await?;
    let token = w.central.token.clone().unwrap_or_default();
    let mut appts = Ws::connect_with_token(&w.hub.process.base, &token).await?;
    appts
        .subscribe(
            "a",
            "subscription($p: ID) { appointmentUpdated(patientId: $p) { id status scheduledAt site doctor { name } } }",
            json!({ "p": id(&baraka) }),
        )
        .await?;
    let mut notes = Ws::connect_with_token(&w.hub.process.base, &token).await?;
    notes
        .subscribe(
            "n",
            "subscription($u: ID!) { newNotification(userId: $u) { id message type timestamp site } }",
            json!({ "u": doctor_user }),
        )
        .await?;
    let slots = w.msa.slots(&w.msa.doctor_id, 20).await?;
    // Live once a booking made after subscribing arrives: book until one does.
    let mut seen = None;
    for at in &slots {
        let b = w
            .central
            .ok(
                HUB_BOOK,
                json!({ "s": "MSA", "p": id(&baraka), "d": w.msa.doctor_id, "at": at, "r": "Referral" }),
            )
            .await?;
        assert_eq!(b["bookAppointment"]["site"], "MSA");
        assert_eq!(b["bookAppointment"]["patient"]["name"], "Baraka Otieno");
        if let Ok(WsEvent::Next { payload, .. }) =
            appts.next_event(Duration::from_millis(500)).await
        {
            seen = Some(payload);
            break;
        }
    }
    let seen = seen.ok_or_else(|| anyhow!("appointmentUpdated never fired"))?;
    let a = &seen["data"]["appointmentUpdated"];
    assert_eq!(a["status"], "BOOKED", "{seen}");
    assert_eq!(a["site"], "MSA");
    assert_eq!(a["doctor"]["name"], "Dr. Wanjiru Kamau");
    let n = next(&mut notes).await?;
    let n = &n["data"]["newNotification"];
    assert_eq!(n["type"], "APPOINTMENT_BOOKED", "{n}");
    assert_eq!(n["site"], "MSA");
    assert!(
        n["message"]
            .as_str()
            .is_some_and(|m| m.contains("Baraka Otieno")),
        "{n}"
    );
    assert!(n["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));

    // A status change at the hub is the lifecycle rule's, and reaches the subscriber.
    let appt = a["id"].clone();
    let changed = w
        .central
        .ok(
            "mutation($id: ID!) { updateAppointmentStatus(id: $id, status: CANCELLED) { status } }",
            json!({ "id": appt }),
        )
        .await?;
    assert_eq!(changed["updateAppointmentStatus"]["status"], "CANCELLED");
    let again = w
        .central
        .query(
            "mutation($id: ID!) { updateAppointmentStatus(id: $id, status: CHECKED_IN) { status } }",
            json!({ "id": appt }),
        )
        .await?;
    assert_eq!(again.code(), Some("BAD_USER_INPUT"), "{}", again.body);
    loop {
        let p = next(&mut appts).await?;
        if p["data"]["appointmentUpdated"]["status"] == "CANCELLED" {
            break;
        }
    }

    // createPatient names its site; the number is the hub's, and the site's node gets
    // the patient by sync.
    let made = w
        .central
        .ok(
            "mutation { createPatient(input: {site: \"MSA\", name: \"Zuberi Ali\", email: \"zuberi@example.org\", dateOfBirth: \"1990-02-03\"}) { id mrn site name } }",
            json!({}),
        )
        .await?;
    let mrn = made["createPatient"]["mrn"].as_str().unwrap_or_default();
    assert!(mrn.starts_with("MSA-9"), "{made}");
    let zuberi = id(&made["createPatient"]);
    eventually("the hub's patient at Mombasa", || async {
        let a = w
            .msa
            .admin
            .query(
                "query($id: ID!) { patient(id: $id) { mrn } }",
                json!({ "id": zuberi }),
            )
            .await?;
        Ok((a.code().is_none()).then_some(()))
    })
    .await?;
    Ok(())
}

/// One way a booking can go, tried at a clinic's node and at the hub: the same answer.
struct Case {
    what: &'static str,
    /// The error code both servers answer, `None` for a booking.
    want: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        what: "a free slot",
        want: None,
    },
    Case {
        what: "the same slot again",
        want: Some("CONFLICT"),
    },
    Case {
        what: "not a slot's start",
        want: Some("BAD_USER_INPUT"),
    },
    Case {
        what: "a slot that is over (a visit entered afterwards)",
        want: None,
    },
    Case {
        what: "a reason over 500 characters",
        want: Some("BAD_USER_INPUT"),
    },
    Case {
        what: "the patient busy with another doctor",
        want: Some("CONFLICT"),
    },
    Case {
        what: "a deactivated patient",
        want: Some("BAD_USER_INPUT"),
    },
    Case {
        what: "an inactive doctor",
        want: Some("BAD_USER_INPUT"),
    },
];

/// The arguments of `case`'s booking, given a fresh free slot and the world's records.
struct Booking {
    patient: String,
    doctor: String,
    at: String,
    reason: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_at_the_hub_obeys_the_nodes_rules() -> Result<()> {
    let w = world("hubrules").await?;
    let msa = &w.msa;
    let patient = id(&msa.patient("Baraka Otieno").await?);
    let inactive = id(&msa.patient("Imani Said").await?);
    let other = id(&msa.patient("Juma Mwangi").await?);
    msa.admin
        .ok(
            "mutation($id: ID!) { deactivatePatient(id: $id) { active } }",
            json!({ "id": inactive }),
        )
        .await?;
    let second = msa.doctor("Dr. Otieno Were", "Cardiology").await?;
    let retired = msa.doctor("Dr. Halima Noor", "Paediatrics").await?;
    msa.admin
        .ok(
            "mutation($id: ID!) { updateDoctor(id: $id, input: {active: false}) { active } }",
            json!({ "id": retired }),
        )
        .await?;
    // Everything above has reached the hub.
    for (q, key) in [
        ("query($id: ID!) { patient(id: $id) { active } }", &inactive),
        ("query($id: ID!) { doctor(id: $id) { active } }", &retired),
    ] {
        at_hub(&w.central, q, json!({ "id": key })).await?;
        eventually("a deactivation at the hub", || async {
            let a = w.central.query(q, json!({ "id": key })).await?;
            Ok((a.code().is_none() && a.body.to_string().contains("false")).then_some(()))
        })
        .await?;
    }
    at_hub(
        &w.central,
        "query($id: ID!) { patient(id: $id) { name } }",
        json!({ "id": other }),
    )
    .await?;
    eventually("the second doctor's schedule at the hub", || async {
        let d = w
            .central
            .ok(
                "query($d: ID!) { doctor(id: $d) { sites } }",
                json!({ "d": second }),
            )
            .await;
        Ok(d.ok()
            .filter(|d| d["doctor"]["sites"] == json!(["MSA"]))
            .map(|_| ()))
    })
    .await?;

    let slots = msa.slots(&msa.doctor_id, 40).await?;
    let mut free = slots.iter();
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%dT10:00:00Z")
        .to_string();
    for server in ["node", "hub"] {
        let book = |b: Booking| {
            let (gql, query, vars) = if server == "node" {
                (
                    &msa.admin,
                    NODE_BOOK,
                    json!({ "p": b.patient, "d": b.doctor, "at": b.at, "r": b.reason }),
                )
            } else {
                (
                    &w.central,
                    HUB_BOOK,
                    json!({ "s": "MSA", "p": b.patient, "d": b.doctor, "at": b.at, "r": b.reason }),
                )
            };
            async move {
                let a = gql.query(query, vars).await?;
                Ok::<_, anyhow::Error>(a.code().map(String::from))
            }
        };
        for case in CASES {
            let slot = free.next().ok_or_else(|| anyhow!("out of slots"))?.clone();
            let plain = |at: &str| Booking {
                patient: patient.clone(),
                doctor: msa.doctor_id.clone(),
                at: at.to_string(),
                reason: None,
            };
            let attempt = match case.what {
                "a free slot" => plain(&slot),
                "the same slot again" => {
                    assert_eq!(book(plain(&slot)).await?, None, "{server}: first booking");
                    Booking {
                        patient: other.clone(),
                        ..plain(&slot)
                    }
                }
                "not a slot's start" => plain(&slot.replace(":00Z", ":05Z")),
                "a slot that is over (a visit entered afterwards)" => {
                    let hour = if server == "node" { "10" } else { "11" };
                    plain(&yesterday.replace("T10:", &format!("T{hour}:")))
                }
                "a reason over 500 characters" => Booking {
                    reason: Some("x".repeat(501)),
                    ..plain(&slot)
                },
                "the patient busy with another doctor" => {
                    assert_eq!(book(plain(&slot)).await?, None, "{server}: first booking");
                    Booking {
                        doctor: second.clone(),
                        ..plain(&slot)
                    }
                }
                "a deactivated patient" => Booking {
                    patient: inactive.clone(),
                    ..plain(&slot)
                },
                "an inactive doctor" => Booking {
                    doctor: retired.clone(),
                    ..plain(&slot)
                },
                other => bail!("no setup for {other}"),
            };
            let got = book(attempt).await?;
            assert_eq!(got.as_deref(), case.want, "{server}: {}", case.what);
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_limited_to_a_site_sees_only_that_site() -> Result<()> {
    let w = world("hubscope").await?;
    let limited = limited_admin(&w, "nbo-admin", "nbo").await?;
    let amina = w.nbo.patient("Amina Njeri").await?;
    let baraka = w.msa.patient("Baraka Otieno").await?;
    at_hub(
        &w.central,
        "query($id: ID!) { patient(id: $id) { name } }",
        json!({ "id": id(&baraka) }),
    )
    .await?;
    at_hub(
        &limited,
        "query($id: ID!) { patient(id: $id) { name } }",
        json!({ "id": id(&amina) }),
    )
    .await?;

    // Queries: only Nairobi's.
    let sites = limited.ok("{ sites { code } }", json!({})).await?;
    assert_eq!(sites["sites"], json!([{ "code": "NBO" }]));
    let patients = limited.ok("{ patients { name site } }", json!({})).await?;
    assert_eq!(
        patients["patients"],
        json!([{ "name": "Amina Njeri", "site": "NBO" }])
    );
    for (what, query, vars, code) in [
        (
            "Mombasa's patient",
            "query($id: ID!) { patient(id: $id) { name } }",
            json!({ "id": id(&baraka) }),
            "NOT_FOUND",
        ),
        (
            "Mombasa's list",
            "{ patients(site: \"MSA\") { name } }",
            json!({}),
            "FORBIDDEN",
        ),
        (
            "Mombasa's records",
            "{ records(kind: \"patient\", site: \"MSA\") { id } }",
            json!({}),
            "FORBIDDEN",
        ),
        (
            "a booking at Mombasa",
            HUB_BOOK,
            json!({ "s": "MSA", "p": id(&baraka), "d": w.msa.doctor_id, "at": "2030-01-07T09:00:00Z" }),
            "FORBIDDEN",
        ),
        (
            "a patient registered to Mombasa",
            "mutation { createPatient(input: {site: \"MSA\", name: \"X Y\", email: \"x@example.org\"}) { id } }",
            json!({}),
            "FORBIDDEN",
        ),
        (
            "sharing Mombasa's patient",
            "mutation($p: ID!) { sharePatient(patientId: $p, site: \"NBO\") }",
            json!({ "p": id(&baraka) }),
            "NOT_FOUND",
        ),
    ] {
        let a = limited.query(query, vars).await?;
        assert_eq!(a.code(), Some(code), "{what}: {}", a.body);
        assert!(
            !a.body.to_string().contains("Baraka"),
            "{what} leaks: {}",
            a.body
        );
    }
    let everything = w.central.ok("{ sites { code } }", json!({})).await?;
    assert_eq!(everything["sites"].as_array().map(Vec::len), Some(2));

    // Subscriptions: a Mombasa booking made first never reaches the limited admin; the
    // Nairobi one after it does.
    let token = limited.token.clone().unwrap_or_default();
    let mut ws = Ws::connect_with_token(&w.hub.process.base, &token).await?;
    ws.subscribe(
        "a",
        "subscription { appointmentUpdated { site patient { name } } }",
        json!({}),
    )
    .await?;
    let msa_slots = w.msa.slots(&w.msa.doctor_id, 20).await?;
    let nbo_slots = w.nbo.slots(&w.nbo.doctor_id, 20).await?;
    let mut seen = None;
    for (m, n) in msa_slots.iter().zip(&nbo_slots) {
        w.central
            .ok(
                HUB_BOOK,
                json!({ "s": "MSA", "p": id(&baraka), "d": w.msa.doctor_id, "at": m }),
            )
            .await?;
        limited
            .ok(
                HUB_BOOK,
                json!({ "s": "NBO", "p": id(&amina), "d": w.nbo.doctor_id, "at": n }),
            )
            .await?;
        if let Ok(WsEvent::Next { payload, .. }) = ws.next_event(Duration::from_millis(500)).await {
            seen = Some(payload);
            break;
        }
    }
    let seen = seen.ok_or_else(|| anyhow!("the limited admin's subscription never fired"))?;
    assert_eq!(seen["data"]["appointmentUpdated"]["site"], "NBO", "{seen}");
    assert_eq!(
        seen["data"]["appointmentUpdated"]["patient"]["name"],
        "Amina Njeri"
    );
    Ok(())
}

const PRICE: &str = "mutation($i: PriceItemInput!) { setPriceItem(input: $i) { code } }";
const ISSUE: &str =
    "mutation($i: InvoiceInput!) { issueInvoice(input: $i) { id total { amount } } }";
const PAY: &str = "mutation($i: PaymentInput!) { recordPayment(input: $i) { invoice { status } } }";
const REVENUE: &str = "query($s: String) { revenue(from: \"2020-01-01T00:00:00Z\", to: \"2021-01-01T00:00:00Z\", site: $s) { site } }";

/// Issues an invoice of `quantity` × `code` to `patient`; its id.
async fn invoice(clinic: &Clinic, patient: &str, code: &str, quantity: u32) -> Result<String> {
    let i = json!({ "i": { "patientId": patient, "currency": "KES", "lines": [{ "serviceCode": code, "quantity": quantity }] } });
    Ok(id(&clinic.admin.ok(ISSUE, i).await?["issueInvoice"]))
}

async fn pay(clinic: &Clinic, invoice: &str, amount: &str, method: &str) -> Result<()> {
    let p = json!({ "i": { "invoiceId": invoice, "amount": amount, "method": method } });
    clinic.admin.ok(PAY, p).await?;
    Ok(())
}

/// The revenue roll-up over every period, as `(site, payer) -> [invoiced, received,
/// outstanding]` (the test's invoices may straddle a period's end).
fn by_site_and_payer(rows: &Value) -> std::collections::BTreeMap<(String, String), [String; 3]> {
    let mut out: std::collections::BTreeMap<(String, String), [f64; 3]> = Default::default();
    for r in rows.as_array().into_iter().flatten() {
        let key = (
            r["site"].as_str().unwrap_or_default().to_string(),
            r["payer"].as_str().unwrap_or_default().to_string(),
        );
        let cell = out.entry(key).or_default();
        for (k, f) in ["invoiced", "received", "outstanding"].iter().enumerate() {
            cell[k] += r[f]["amount"]
                .as_str()
                .and_then(|a| a.parse::<f64>().ok())
                .unwrap_or(f64::NAN);
        }
    }
    out.into_iter()
        .map(|(k, v)| (k, v.map(|x| format!("{x:.2}"))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_rolls_up_at_the_hub_by_site_period_and_payer() -> Result<()> {
    let w = world("hubbill").await?;
    for (clinic, code, price) in [(&w.nbo, "CONSULT", "1000"), (&w.msa, "VACC", "800")] {
        clinic
            .admin
            .ok(
                PRICE,
                json!({ "i": { "code": code, "name": code, "unitPrice": price, "currency": "KES", "taxRate": "0" } }),
            )
            .await?;
    }
    let amina = id(&w.nbo.patient("Amina Njeri").await?);
    let baraka = id(&w.msa.patient("Baraka Otieno").await?);
    let visit = w.nbo.book_next(&amina).await?;

    // Nairobi: 1000 of which AAR is claimed 500 (pays 300) and Amina pays 400; 2000
    // voided; 1000 unpaid. Mombasa: 2400 paid by mobile money.
    let a1 = invoice(&w.nbo, &amina, "CONSULT", 1).await?;
    let cover = w
        .nbo
        .admin
        .ok(
            "mutation($p: ID!) { setCoverage(input: {patientId: $p, payer: \"AAR Insurance\", memberId: \"AAR-1\", validFrom: \"2020-01-01\"}) { id } }",
            json!({ "p": amina }),
        )
        .await?;
    w.nbo
        .admin
        .ok(
            "mutation($inv: ID!, $c: ID!) { createClaim(invoiceId: $inv, coverageId: $c, amount: \"500\") { id } }",
            json!({ "inv": a1, "c": id(&cover["setCoverage"]) }),
        )
        .await?;
    pay(&w.nbo, &a1, "400", "CASH").await?;
    pay(&w.nbo, &a1, "300", "INSURANCE").await?;
    let a2 = invoice(&w.nbo, &amina, "CONSULT", 2).await?;
    w.nbo
        .admin
        .ok(
            "mutation($id: ID!) { voidInvoice(id: $id, reason: \"billed twice\") { status } }",
            json!({ "id": a2 }),
        )
        .await?;
    invoice(&w.nbo, &amina, "CONSULT", 1).await?;
    let b1 = invoice(&w.msa, &baraka, "VACC", 3).await?;
    pay(&w.msa, &b1, "2400", "MOBILE_MONEY").await?;

    let now = chrono::Utc::now();
    let range = json!({
        "from": (now - chrono::Duration::days(40)).to_rfc3339(),
        "to": (now + chrono::Duration::days(1)).to_rfc3339(),
    });
    let roll_up = "query($from: String!, $to: String!, $s: String) { revenue(from: $from, to: $to, period: MONTH, site: $s) { site period payer invoiced { amount currency } received { amount } outstanding { amount } } }";
    let cell = |site: &str, payer: &str, v: [&str; 3]| {
        ((site.to_string(), payer.to_string()), v.map(String::from))
    };
    let expected: std::collections::BTreeMap<_, _> = [
        cell("MSA", "SELF_PAY", ["2400.00", "2400.00", "0.00"]),
        cell("NBO", "AAR Insurance", ["500.00", "300.00", "200.00"]),
        cell("NBO", "SELF_PAY", ["1500.00", "400.00", "1100.00"]),
    ]
    .into_iter()
    .collect();
    let mut vars = range.clone();
    vars["s"] = Value::Null;
    eventually("the roll-up of both sites' billing", || {
        let vars = vars.clone();
        let (central, expected) = (&w.central, &expected);
        async move {
            let d = central.ok(roll_up, vars).await?;
            Ok((by_site_and_payer(&d["revenue"]) == *expected).then_some(()))
        }
    })
    .await?;

    // Claims by status and age; services by revenue; a doctor's utilisation.
    let more = w
        .central
        .ok(
            "query($from: String!, $to: String!, $d: ID!) { claimsByAge { site status age count amount { amount currency } }
               topServices(from: $from, to: $to) { service quantity revenue { amount } }
               doctorUtilisation(doctorId: $d, from: $from, to: $to) { site availableHours bookedHours utilisation } }",
            json!({ "from": (now - chrono::Duration::days(30)).to_rfc3339(), "to": range["to"], "d": w.nbo.doctor_id }),
        )
        .await?;
    assert_eq!(
        more["claimsByAge"],
        json!([{ "site": "NBO", "status": "DRAFT", "age": "0-30", "count": 1, "amount": { "amount": "500.00", "currency": "KES" } }])
    );
    assert_eq!(
        more["topServices"],
        json!([
            { "service": "VACC", "quantity": 3, "revenue": { "amount": "2400.00" } },
            { "service": "CONSULT", "quantity": 2, "revenue": { "amount": "2000.00" } },
        ])
    );
    let u = &more["doctorUtilisation"];
    assert_eq!(u.as_array().map(Vec::len), Some(1), "{u}");
    assert_eq!(u[0]["site"], "NBO");
    let (available, booked) = (
        u[0]["availableHours"].as_f64().unwrap_or_default(),
        u[0]["bookedHours"].as_f64().unwrap_or_default(),
    );
    // 31 days of 00:00-23:40 in 20-minute slots.
    assert!(available > 23.0 * 30.0, "{u}");
    assert!(
        (booked - 1.0 / 3.0).abs() < 1e-9,
        "Amina's 20 minutes: {u} ({visit})"
    );

    // Finance at Mombasa reads Mombasa's money only, and no patient, appointment or
    // conflict at all: a refused operation answers FORBIDDEN with no data.
    let finance = central_account(&w, "msa-finance", "FINANCE", "MSA").await?;
    // FINANCE is central: the hub gives it no site (whose nodes would receive it).
    let out = healsync_test_support::run(
        &w.hub.bin,
        &[
            "users",
            "add",
            "site-finance",
            "--role",
            "FINANCE",
            "--site",
            "MSA",
            "--database-url",
            &w.hub.db.url,
        ],
        Some("long-enough-password\n"),
    )
    .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("belongs to no site"),
        "{stderr}"
    );
    let mine = finance.ok(roll_up, vars.clone()).await?;
    assert_eq!(
        by_site_and_payer(&mine["revenue"]),
        [cell("MSA", "SELF_PAY", ["2400.00", "2400.00", "0.00"])]
            .into_iter()
            .collect()
    );
    let mut theirs = range.clone();
    theirs["s"] = json!("NBO");
    let ops: &[(&str, Value, Option<&str>)] = &[
        (roll_up, theirs, Some("FORBIDDEN")),
        ("{ me sites { code } }", json!({}), None),
        ("{ claimsByAge { site count } }", json!({}), None),
        (
            "query($from: String!, $to: String!, $d: ID!) { topServices(from: $from, to: $to) { service } doctorUtilisation(doctorId: $d, from: $from, to: $to) { site } }",
            json!({ "from": range["from"], "to": range["to"], "d": w.msa.doctor_id }),
            None,
        ),
        ("{ patients { id name } }", json!({}), Some("FORBIDDEN")),
        (
            "query($id: ID!) { patient(id: $id) { name } }",
            json!({ "id": baraka }),
            Some("FORBIDDEN"),
        ),
        (
            "{ patients(search: \"baraka\") { name } }",
            json!({}),
            Some("FORBIDDEN"),
        ),
        ("{ doctors { name } }", json!({}), Some("FORBIDDEN")),
        ("{ appointments { id } }", json!({}), Some("FORBIDDEN")),
        ("{ conflicts { recordId } }", json!({}), Some("FORBIDDEN")),
        (
            "query($id: ID!) { record(id: $id) { kind } }",
            json!({ "id": b1 }),
            Some("FORBIDDEN"),
        ),
        (
            "mutation { createPatient(input: {site: \"MSA\", name: \"Zawadi Ali\", email: \"z@example.com\"}) { id } }",
            json!({}),
            Some("FORBIDDEN"),
        ),
        (
            "mutation($id: ID!) { updateAppointmentStatus(id: $id, status: CANCELLED) { id } }",
            json!({ "id": visit }),
            Some("FORBIDDEN"),
        ),
    ];
    for (op, vars, refused) in ops {
        let a = finance.query(op, vars.clone()).await?;
        assert_eq!(a.code(), *refused, "FINANCE: {op}: {}", a.body);
        if refused.is_some() {
            for secret in ["Baraka", "Amina", "Otieno"] {
                assert!(!a.body.to_string().contains(secret), "{op}: {}", a.body);
            }
        }
    }
    // Nor does it follow a record as it changes.
    let token = finance
        .token
        .clone()
        .ok_or_else(|| anyhow!("no finance token"))?;
    let mut ws = Ws::connect_with_token(&w.hub.process.base, &token).await?;
    ws.subscribe(
        "1",
        "subscription($p: ID!) { appointmentUpdated(patientId: $p) { id } }",
        json!({ "p": amina }),
    )
    .await?;
    let refusal = crate::subscription_refusal(&mut ws).await?;
    assert_eq!(refusal["extensions"]["code"], "FORBIDDEN", "{refusal}");
    assert_eq!(
        w.central
            .query(
                REVENUE.replace("2021-01-01", "2022-01-02").as_str(),
                json!({})
            )
            .await?
            .code(),
        Some("BAD_USER_INPUT"),
        "more than 370 days"
    );

    // The projections are rebuilt from the documents: emptied, and projected again by
    // a hub replica starting on the same database.
    let pool = sqlx::PgPool::connect(&w.hub.db.url).await?;
    sqlx::query(
        "TRUNCATE billing_invoices, billing_lines, billing_voids, billing_payments, billing_claims, billing_days_issued, billing_days_received, patient_terms",
    )
    .execute(&pool)
    .await?;
    sqlx::query("UPDATE hub_meta SET billing_backfilled = FALSE, patient_terms_backfilled = FALSE")
        .execute(&pool)
        .await?;
    pool.close().await;
    let replica = healsync_test_support::HubProcess::start(
        &w.hub.bin,
        &w.hub.db.url,
        w.hub.dir.path(),
        "127.0.0.1:0",
    )
    .await?;
    let replica_admin = replica.admin().await?;
    let again = replica_admin.ok(roll_up, vars).await?;
    assert_eq!(by_site_and_payer(&again["revenue"]), expected);
    let found = replica_admin
        .ok("{ patients(search: \"amina\") { name } }", json!({}))
        .await?;
    assert_eq!(found["patients"], json!([{ "name": "Amina Njeri" }]));
    Ok(())
}
