//! Billing as the front desk and patients meet it over real HTTP: the price list, an
//! invoice from a completed visit that adds up to the cent, payments, refunds and
//! voids refused where the money does not allow them, the balance and the day-end
//! report derived from the records, who may do what, and bad input refused whole.

use std::time::Duration;

use anyhow::{Result, anyhow};
use healsync_test_support::{Gql, Ws, WsEvent};
use serde_json::{Value, json};

use crate::{Clinic, SET_STATUS};

const PRICE: &str = "mutation($i: PriceItemInput!) { setPriceItem(input: $i) { code unitPrice { amount currency } taxRate active } }";
const ISSUE: &str = "mutation($i: InvoiceInput!) { issueInvoice(input: $i) { id number status currency gross { amount } discount { amount } tax { amount } total { amount } outstanding { amount } lines { serviceCode description quantity unitPrice { amount } net { amount } tax { amount } total { amount } } } }";
const PAY: &str = "mutation($i: PaymentInput!) { recordPayment(input: $i) { payment { amount { amount } refund method } invoice { status paid { amount } outstanding { amount } } } }";
const REFUND: &str = "mutation($i: PaymentInput!) { refundPayment(input: $i) { payment { amount { amount } refund } invoice { status paid { amount } outstanding { amount } } } }";
const VOID: &str = "mutation($id: ID!) { voidInvoice(id: $id, reason: \"billed to the wrong patient\") { status outstanding { amount } void { reason voidedBy } } }";
const READ: &str = "query($id: ID!) { invoice(id: $id) { number status total { amount } patient { name } payments { amount { amount } method receivedBy } } }";
const LIST: &str = "query { invoices { number status } }";
const BALANCE: &str = "query($p: ID!) { patientBalance(patientId: $p) { amount currency } }";

/// The desk, a doctor and two patients of a clinic with a price list and a completed
/// visit of Amina's.
struct Desk {
    c: Clinic,
    desk: Gql,
    doctor: Gql,
    amina: Gql,
    brian: Gql,
    amina_id: String,
    brian_id: String,
    visit: String,
}

async fn desk() -> Result<Desk> {
    let c = Clinic::start().await?;
    for (code, name, price, rate) in [
        ("CONSULT", "Consultation", "1500", "16"),
        ("lab-fbc", "Full blood count", "350.50", "16"),
        ("VACC", "Vaccination", "800", "0"),
    ] {
        c.admin
            .ok(
                PRICE,
                json!({ "i": { "code": code, "name": name, "unitPrice": price, "currency": "KES", "taxRate": rate } }),
            )
            .await?;
    }
    let amina = c.patient("Amina Njoroge").await?;
    let brian = c.patient("Brian Otieno").await?;
    let amina_id = amina["id"].as_str().unwrap_or_default().to_string();
    let brian_id = brian["id"].as_str().unwrap_or_default().to_string();
    let visit = c.book_next(&amina_id).await?;
    Ok(Desk {
        desk: c.user("front.desk", "RECEPTIONIST", json!({})).await?,
        doctor: c
            .user("dr.kamau", "DOCTOR", json!({ "doctorId": c.doctor_id }))
            .await?,
        amina: c
            .user("amina", "PATIENT", json!({ "patientId": amina_id }))
            .await?,
        brian: c
            .user("brian", "PATIENT", json!({ "patientId": brian_id }))
            .await?,
        c,
        amina_id,
        brian_id,
        visit,
    })
}

fn visit_invoice(d: &Desk) -> Value {
    json!({ "i": {
        "appointmentId": d.visit,
        "currency": "KES",
        "lines": [
            { "serviceCode": "CONSULT" },
            { "serviceCode": "LAB-FBC", "quantity": 2, "discount": "50" },
        ],
    } })
}

fn pay(invoice: &str, amount: &str, method: &str) -> Value {
    json!({ "i": { "invoiceId": invoice, "amount": amount, "method": method, "reference": "slip 0042" } })
}

/// The code of the only error of `answer`, after checking that no data came with it.
async fn refused(who: &Gql, query: &str, vars: Value) -> Result<String> {
    let a = who.query(query, vars).await?;
    let code = a
        .code()
        .ok_or_else(|| anyhow!("not refused: {:?}", a.body))?
        .to_string();
    Ok(code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_is_billed_paid_refunded_and_voided_and_every_figure_adds_up() -> Result<()> {
    let d = desk().await?;

    // Only a completed visit is billed.
    assert_eq!(
        refused(&d.desk, ISSUE, visit_invoice(&d)).await?,
        "CONFLICT"
    );
    for s in ["CHECKED_IN", "COMPLETED"] {
        d.c.admin
            .ok(SET_STATUS, json!({ "id": d.visit, "s": s }))
            .await?;
    }

    // The worked example: 1500 + 2 × 350.50 − 50, all at 16%.
    let issued = d.desk.ok(ISSUE, visit_invoice(&d)).await?["issueInvoice"].clone();
    assert_eq!(issued["number"], "NBO-INV-000001");
    assert_eq!(issued["status"], "ISSUED");
    assert_eq!(issued["gross"]["amount"], "2201.00");
    assert_eq!(issued["discount"]["amount"], "50.00");
    assert_eq!(issued["tax"]["amount"], "344.16");
    assert_eq!(issued["total"]["amount"], "2495.16");
    assert_eq!(issued["outstanding"]["amount"], "2495.16");
    let lines = &issued["lines"];
    assert_eq!(lines[0]["description"], "Consultation");
    assert_eq!(lines[0]["tax"]["amount"], "240.00");
    assert_eq!(lines[1]["serviceCode"], "LAB-FBC");
    assert_eq!(lines[1]["net"]["amount"], "651.00");
    assert_eq!(lines[1]["tax"]["amount"], "104.16");
    assert_eq!(lines[1]["total"]["amount"], "755.16");
    let id = issued["id"].as_str().unwrap_or_default().to_string();

    // One live invoice per visit; the next invoice takes the next number.
    assert_eq!(
        refused(&d.desk, ISSUE, visit_invoice(&d)).await?,
        "CONFLICT"
    );
    let by_hand = d
        .desk
        .ok(
            ISSUE,
            json!({ "i": { "patientId": d.brian_id, "currency": "KES", "lines": [
                { "description": "Dressing pack", "unitPrice": "120.5", "quantity": 3 }
            ] } }),
        )
        .await?;
    assert_eq!(by_hand["issueInvoice"]["number"], "NBO-INV-000002");
    assert_eq!(by_hand["issueInvoice"]["total"]["amount"], "361.50");

    // Payments, refused beyond what is owed.
    let r = d.desk.ok(PAY, pay(&id, "2000", "CASH")).await?;
    assert_eq!(r["recordPayment"]["invoice"]["status"], "PARTIALLY_PAID");
    assert_eq!(
        r["recordPayment"]["invoice"]["outstanding"]["amount"],
        "495.16"
    );
    assert_eq!(
        refused(&d.desk, PAY, pay(&id, "500", "CASH")).await?,
        "CONFLICT"
    );
    let r = d.desk.ok(PAY, pay(&id, "495.16", "MOBILE_MONEY")).await?;
    assert_eq!(r["recordPayment"]["invoice"]["status"], "PAID");
    assert_eq!(
        r["recordPayment"]["invoice"]["outstanding"]["amount"],
        "0.00"
    );

    // A paid invoice is not voided; refunds go back no further than what was paid.
    assert_eq!(
        refused(&d.desk, VOID, json!({ "id": id })).await?,
        "CONFLICT"
    );
    let r = d
        .desk
        .ok(REFUND, pay(&id, "495.16", "MOBILE_MONEY"))
        .await?;
    assert_eq!(r["refundPayment"]["payment"]["amount"]["amount"], "-495.16");
    assert_eq!(r["refundPayment"]["payment"]["refund"], true);
    assert_eq!(r["refundPayment"]["invoice"]["status"], "PARTIALLY_PAID");
    assert_eq!(
        refused(&d.desk, REFUND, pay(&id, "2000.01", "CASH")).await?,
        "CONFLICT"
    );
    let balance = d.desk.ok(BALANCE, json!({ "p": d.amina_id })).await?;
    assert_eq!(
        balance["patientBalance"],
        json!([{ "amount": "495.16", "currency": "KES" }])
    );
    d.desk.ok(REFUND, pay(&id, "2000", "CASH")).await?;

    // Voided: it stays, owes nothing, and takes no payment.
    let v = d.desk.ok(VOID, json!({ "id": id })).await?;
    assert_eq!(v["voidInvoice"]["status"], "VOID");
    assert_eq!(v["voidInvoice"]["outstanding"]["amount"], "0.00");
    assert_eq!(v["voidInvoice"]["void"]["voidedBy"], "front.desk");
    assert_eq!(
        refused(&d.desk, PAY, pay(&id, "1", "CASH")).await?,
        "CONFLICT"
    );
    assert_eq!(
        refused(&d.desk, VOID, json!({ "id": id })).await?,
        "CONFLICT"
    );
    // Voided, the visit may be billed again.
    let again = d.desk.ok(ISSUE, visit_invoice(&d)).await?;
    assert_eq!(again["issueInvoice"]["number"], "NBO-INV-000003");

    // The patient sees it all, and was told.
    let mine = d.amina.ok(READ, json!({ "id": id })).await?;
    assert_eq!(mine["invoice"]["status"], "VOID");
    assert_eq!(mine["invoice"]["patient"]["name"], "Amina Njoroge");
    let payments = mine["invoice"]["payments"]
        .as_array()
        .ok_or_else(|| anyhow!("no payments"))?;
    let amounts: Vec<&str> = payments
        .iter()
        .filter_map(|p| p["amount"]["amount"].as_str())
        .collect();
    assert_eq!(amounts, ["2000.00", "495.16", "-495.16", "-2000.00"]);
    let told = d
        .amina
        .ok("{ notifications(limit: 50) { type message } }", json!({}))
        .await?;
    let kinds: Vec<&str> = told["notifications"]
        .as_array()
        .ok_or_else(|| anyhow!("no notifications"))?
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    for k in ["INVOICE_ISSUED", "PAYMENT_RECEIVED", "PAYMENT_REFUNDED"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }

    // The day-end report, from the records.
    let now = chrono::Utc::now();
    let report = d
        .desk
        .ok(
            "query($f: String!, $t: String!) { dayEndReport(from: $f, to: $t) { byMethod { key count amount { amount } } byCashier { key count amount { amount } } refunds { count amount { amount } } invoiced { count amount { amount } } voided { count amount { amount } } } }",
            json!({
                "f": (now - chrono::Duration::hours(1)).to_rfc3339(),
                "t": (now + chrono::Duration::hours(1)).to_rfc3339(),
            }),
        )
        .await?["dayEndReport"]
        .clone();
    assert_eq!(
        report["byMethod"],
        json!([
            { "key": "CASH", "count": 2, "amount": { "amount": "0.00" } },
            { "key": "MOBILE_MONEY", "count": 2, "amount": { "amount": "0.00" } },
        ])
    );
    assert_eq!(
        report["byCashier"],
        json!([{ "key": "front.desk", "count": 4, "amount": { "amount": "0.00" } }])
    );
    assert_eq!(
        report["refunds"],
        json!([{ "count": 2, "amount": { "amount": "-2495.16" } }])
    );
    assert_eq!(
        report["invoiced"],
        json!([{ "count": 3, "amount": { "amount": "5351.82" } }])
    );
    assert_eq!(
        report["voided"],
        json!([{ "count": 1, "amount": { "amount": "2495.16" } }])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_bills_and_reads_exactly_what_it_may() -> Result<()> {
    let d = desk().await?;
    let issued = d
        .desk
        .ok(
            ISSUE,
            json!({ "i": { "patientId": d.amina_id, "currency": "KES", "lines": [{ "serviceCode": "VACC" }] } }),
        )
        .await?;
    let id = issued["issueInvoice"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let number = issued["issueInvoice"]["number"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let by_hand = json!({ "i": { "patientId": d.amina_id, "currency": "KES", "lines": [{ "description": "Crutches", "unitPrice": "900" }] } });
    let set_price = json!({ "i": { "code": "XRAY", "name": "Chest X-ray", "unitPrice": "2500", "currency": "KES" } });

    let anonymous = d.c.node.gql();
    // (who, what, query, variables, expected: None = allowed, Some(code) = refused).
    let cases: Vec<(&str, &Gql, &str, Value, Option<&str>)> = vec![
        ("desk reads", &d.desk, READ, json!({ "id": id }), None),
        ("admin reads", &d.c.admin, READ, json!({ "id": id }), None),
        (
            "patient reads own",
            &d.amina,
            READ,
            json!({ "id": id }),
            None,
        ),
        (
            "other patient reads",
            &d.brian,
            READ,
            json!({ "id": id }),
            Some("NOT_FOUND"),
        ),
        (
            "doctor reads",
            &d.doctor,
            READ,
            json!({ "id": id }),
            Some("NOT_FOUND"),
        ),
        (
            "doctor lists",
            &d.doctor,
            LIST,
            json!({}),
            Some("FORBIDDEN"),
        ),
        (
            "desk balance",
            &d.desk,
            BALANCE,
            json!({ "p": d.amina_id }),
            None,
        ),
        (
            "patient balance own",
            &d.amina,
            BALANCE,
            json!({ "p": d.amina_id }),
            None,
        ),
        (
            "patient balance other",
            &d.brian,
            BALANCE,
            json!({ "p": d.amina_id }),
            Some("NOT_FOUND"),
        ),
        (
            "doctor balance",
            &d.doctor,
            BALANCE,
            json!({ "p": d.amina_id }),
            Some("NOT_FOUND"),
        ),
        ("desk issues", &d.desk, ISSUE, by_hand.clone(), None),
        ("admin issues", &d.c.admin, ISSUE, by_hand.clone(), None),
        (
            "doctor issues",
            &d.doctor,
            ISSUE,
            by_hand.clone(),
            Some("FORBIDDEN"),
        ),
        (
            "patient issues",
            &d.amina,
            ISSUE,
            by_hand.clone(),
            Some("FORBIDDEN"),
        ),
        (
            "patient pays in",
            &d.amina,
            PAY,
            pay(&id, "10", "CASH"),
            Some("FORBIDDEN"),
        ),
        (
            "doctor pays in",
            &d.doctor,
            PAY,
            pay(&id, "10", "CASH"),
            Some("FORBIDDEN"),
        ),
        (
            "patient refunds",
            &d.amina,
            REFUND,
            pay(&id, "10", "CASH"),
            Some("FORBIDDEN"),
        ),
        (
            "patient voids",
            &d.amina,
            VOID,
            json!({ "id": id }),
            Some("FORBIDDEN"),
        ),
        (
            "doctor voids",
            &d.doctor,
            VOID,
            json!({ "id": id }),
            Some("FORBIDDEN"),
        ),
        (
            "desk sets a price",
            &d.desk,
            PRICE,
            set_price.clone(),
            Some("FORBIDDEN"),
        ),
        (
            "doctor sets a price",
            &d.doctor,
            PRICE,
            set_price.clone(),
            Some("FORBIDDEN"),
        ),
        (
            "admin sets a price",
            &d.c.admin,
            PRICE,
            set_price.clone(),
            None,
        ),
        (
            "patient reads the day-end",
            &d.amina,
            "{ dayEndReport(from: \"2026-01-01T00:00:00Z\", to: \"2026-01-02T00:00:00Z\") { site } }",
            json!({}),
            Some("FORBIDDEN"),
        ),
        (
            "doctor reads the day-end",
            &d.doctor,
            "{ dayEndReport(from: \"2026-01-01T00:00:00Z\", to: \"2026-01-02T00:00:00Z\") { site } }",
            json!({}),
            Some("FORBIDDEN"),
        ),
        (
            "anonymous reads",
            &anonymous,
            READ,
            json!({ "id": id }),
            Some("UNAUTHENTICATED"),
        ),
        (
            "other patient through a nested list",
            &d.brian,
            "query($p: ID!) { patient(id: $p) { name } invoices(patientId: $p) { number } }",
            json!({ "p": d.amina_id }),
            Some("NOT_FOUND"),
        ),
    ];
    let mut wrong = vec![];
    for (what, who, query, vars, want) in cases {
        let answer = who.query(query, vars).await?;
        let got = answer.code();
        let ok = match want {
            None => got.is_none(),
            Some(code) => got == Some(code) && !answer.body.to_string().contains(&number),
        };
        if !ok {
            wrong.push(format!("{what}: want {want:?}, got {}", answer.body));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Lists hold exactly the caller's own.
    let own = d.amina.ok(LIST, json!({})).await?;
    assert_eq!(own["invoices"].as_array().map(Vec::len), Some(3));
    let none = d.brian.ok(LIST, json!({})).await?;
    assert_eq!(none["invoices"], json!([]));
    let theirs = d
        .brian
        .ok(
            "query($p: ID!) { invoices(patientId: $p) { number } }",
            json!({ "p": d.amina_id }),
        )
        .await?;
    assert_eq!(theirs["invoices"], json!([]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_billing_input_is_refused_whole_with_its_reason() -> Result<()> {
    let d = desk().await?;
    let p = d.amina_id.as_str();
    let line = |l: Value| json!({ "i": { "patientId": p, "currency": "KES", "lines": [l] } });
    let many: Vec<Value> = (0..201).map(|_| json!({ "serviceCode": "VACC" })).collect();
    let issue_cases: Vec<(&str, Value)> = vec![
        (
            "no lines",
            json!({ "i": { "patientId": p, "currency": "KES", "lines": [] } }),
        ),
        (
            "201 lines",
            json!({ "i": { "patientId": p, "currency": "KES", "lines": many } }),
        ),
        (
            "a currency that is no code",
            json!({ "i": { "patientId": p, "currency": "kes1", "lines": [{ "serviceCode": "VACC" }] } }),
        ),
        (
            "a service priced in another currency",
            json!({ "i": { "patientId": p, "currency": "USD", "lines": [{ "serviceCode": "VACC" }] } }),
        ),
        ("an unknown service", line(json!({ "serviceCode": "MRI" }))),
        (
            "a service code with a price",
            line(json!({ "serviceCode": "VACC", "unitPrice": "1" })),
        ),
        (
            "neither service nor price",
            line(json!({ "description": "Something" })),
        ),
        (
            "three decimals in KES",
            line(json!({ "description": "Gauze", "unitPrice": "1.005" })),
        ),
        (
            "an exponent",
            line(json!({ "description": "Gauze", "unitPrice": "1e3" })),
        ),
        (
            "a negative price",
            line(json!({ "description": "Gauze", "unitPrice": "-5" })),
        ),
        (
            "a price too large",
            line(json!({ "description": "Gauze", "unitPrice": "100000000000000" })),
        ),
        (
            "quantity zero",
            line(json!({ "serviceCode": "VACC", "quantity": 0 })),
        ),
        (
            "quantity too large",
            line(json!({ "serviceCode": "VACC", "quantity": 10001 })),
        ),
        (
            "a discount beyond the line",
            line(json!({ "serviceCode": "VACC", "discount": "800.01" })),
        ),
        (
            "a negative discount",
            line(json!({ "serviceCode": "VACC", "discount": "-1" })),
        ),
        (
            "a tax rate over 100%",
            line(json!({ "description": "Gauze", "unitPrice": "1", "taxRate": "100.01" })),
        ),
        (
            "an empty description",
            line(json!({ "description": "  ", "unitPrice": "1" })),
        ),
        (
            "no patient, no visit",
            json!({ "i": { "currency": "KES", "lines": [{ "serviceCode": "VACC" }] } }),
        ),
        (
            "a malformed patient id",
            json!({ "i": { "patientId": "NBO-000001", "currency": "KES", "lines": [{ "serviceCode": "VACC" }] } }),
        ),
    ];
    let mut wrong = vec![];
    for (what, vars) in issue_cases {
        let a = d.desk.query(ISSUE, vars).await?;
        if a.code() != Some("BAD_USER_INPUT") {
            wrong.push(format!("issue with {what}: {}", a.body));
        }
    }
    // A patient that does not exist looks like one.
    let a = d
        .desk
        .query(
            ISSUE,
            json!({ "i": { "patientId": "0191d8c4-0000-7000-8000-000000000000", "currency": "KES", "lines": [{ "serviceCode": "VACC" }] } }),
        )
        .await?;
    if a.code() != Some("NOT_FOUND") {
        wrong.push(format!("issue for a missing patient: {}", a.body));
    }

    let ok = d
        .desk
        .ok(ISSUE, line(json!({ "serviceCode": "VACC" })))
        .await?;
    let id = ok["issueInvoice"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for (what, amount) in [
        ("zero", "0"),
        ("negative", "-5"),
        ("three decimals", "1.001"),
        ("words", "ten"),
        ("a comma", "1,000"),
        ("empty", ""),
    ] {
        let a = d.desk.query(PAY, pay(&id, amount, "CASH")).await?;
        if a.code() != Some("BAD_USER_INPUT") {
            wrong.push(format!("payment of {what}: {}", a.body));
        }
    }
    let a = d
        .desk
        .query(
            PAY,
            json!({ "i": { "invoiceId": id, "amount": "1", "method": "CASH", "reference": "x".repeat(201) } }),
        )
        .await?;
    if a.code() != Some("BAD_USER_INPUT") {
        wrong.push(format!("a reference too long: {}", a.body));
    }
    for (what, item) in [
        (
            "a code with spaces",
            json!({ "code": "X RAY", "name": "X", "unitPrice": "1", "currency": "KES" }),
        ),
        (
            "a negative price",
            json!({ "code": "X", "name": "X", "unitPrice": "-1", "currency": "KES" }),
        ),
        (
            "a tax rate with three decimals",
            json!({ "code": "X", "name": "X", "unitPrice": "1", "currency": "KES", "taxRate": "7.125" }),
        ),
        (
            "no name",
            json!({ "code": "X", "name": "", "unitPrice": "1", "currency": "KES" }),
        ),
    ] {
        let a = d.c.admin.query(PRICE, json!({ "i": item })).await?;
        if a.code() != Some("BAD_USER_INPUT") {
            wrong.push(format!("price with {what}: {}", a.body));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Nothing of the refused writes was kept: one invoice, nothing paid, three prices.
    let list = d
        .desk
        .ok("{ invoices { number paid { amount } } }", json!({}))
        .await?;
    assert_eq!(
        list["invoices"],
        json!([{ "number": "NBO-INV-000001", "paid": { "amount": "0.00" } }])
    );
    let prices = d.desk.ok("{ priceList { code } }", json!({})).await?;
    assert_eq!(prices["priceList"].as_array().map(Vec::len), Some(3));
    Ok(())
}

const COVER: &str =
    "mutation($i: CoverageInput!) { setCoverage(input: $i) { id payer memberId inForce } }";
const CLAIM: &str = "mutation($inv: ID!, $c: ID!, $a: String) { createClaim(invoiceId: $inv, coverageId: $c, amount: $a) { id number status amount { amount } payer invoiceNumber } }";
const UPDATE_CLAIM: &str = "mutation($id: ID!, $i: ClaimUpdateInput!) { updateClaim(id: $id, input: $i) { status payerReference response paid { amount } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_walks_its_lifecycle_and_the_payer_pays_the_invoice() -> Result<()> {
    let d = desk().await?;
    for s in ["CHECKED_IN", "COMPLETED"] {
        d.c.admin
            .ok(SET_STATUS, json!({ "id": d.visit, "s": s }))
            .await?;
    }
    let inv = d.desk.ok(ISSUE, visit_invoice(&d)).await?["issueInvoice"].clone();
    let inv_id = inv["id"].as_str().unwrap_or_default().to_string();
    let cover = |extra: Value| {
        let mut i = json!({ "patientId": d.amina_id, "payer": "AAR Insurance", "memberId": "AAR-55821", "plan": "Gold", "validFrom": "2020-01-01" });
        if let (Some(i), Some(e)) = (i.as_object_mut(), extra.as_object()) {
            i.extend(e.clone());
        }
        json!({ "i": i })
    };
    let current = d.desk.ok(COVER, cover(json!({}))).await?["setCoverage"].clone();
    assert_eq!(current["inForce"], true);
    let cover_id = current["id"].as_str().unwrap_or_default().to_string();
    let expired = d
        .desk
        .ok(
            COVER,
            cover(json!({ "payer": "Old Mutual", "validTo": "2021-12-31" })),
        )
        .await?["setCoverage"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let claim_on = |c: &str, a: Option<&str>| json!({ "inv": inv_id, "c": c, "a": a });
    assert_eq!(
        refused(&d.desk, CLAIM, claim_on(&expired, None)).await?,
        "CONFLICT",
        "a coverage not in force on the invoice's day"
    );
    assert_eq!(
        refused(&d.desk, CLAIM, claim_on(&cover_id, Some("2495.17"))).await?,
        "CONFLICT",
        "more than the invoice owes"
    );
    let claim = d.desk.ok(CLAIM, claim_on(&cover_id, Some("2000"))).await?["createClaim"].clone();
    assert_eq!(claim["number"], "NBO-CLM-000001");
    assert_eq!(claim["status"], "DRAFT");
    assert_eq!(claim["amount"]["amount"], "2000.00");
    assert_eq!(claim["invoiceNumber"], inv["number"]);
    let claim_id = claim["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        refused(&d.desk, CLAIM, claim_on(&cover_id, None)).await?,
        "CONFLICT",
        "one open claim per invoice"
    );

    // The lifecycle, step by step, with the steps it does not allow refused.
    let step = |status: &str, extra: Value| {
        let mut i = json!({ "status": status });
        if let (Some(i), Some(e)) = (i.as_object_mut(), extra.as_object()) {
            i.extend(e.clone());
        }
        json!({ "id": claim_id, "i": i })
    };
    assert_eq!(
        refused(&d.desk, UPDATE_CLAIM, step("PAID", json!({}))).await?,
        "CONFLICT"
    );
    assert_eq!(
        refused(
            &d.desk,
            UPDATE_CLAIM,
            step("SUBMITTED", json!({ "paidAmount": "1" }))
        )
        .await?,
        "BAD_USER_INPUT"
    );
    for (status, extra) in [
        ("SUBMITTED", json!({ "payerReference": "AAR/2026/0042" })),
        ("REJECTED", json!({ "response": "missing diagnosis code" })),
        ("DRAFT", json!({})),
        ("SUBMITTED", json!({})),
        ("ACCEPTED", json!({})),
    ] {
        let r = d.desk.ok(UPDATE_CLAIM, step(status, extra)).await?;
        assert_eq!(r["updateClaim"]["status"], status);
    }
    assert_eq!(
        refused(
            &d.desk,
            UPDATE_CLAIM,
            step("PAID", json!({ "paidAmount": "2000.01" }))
        )
        .await?,
        "BAD_USER_INPUT"
    );
    let paid = d
        .desk
        .ok(UPDATE_CLAIM, step("PAID", json!({ "paidAmount": "1800" })))
        .await?["updateClaim"]
        .clone();
    assert_eq!(paid["paid"]["amount"], "1800.00");
    assert_eq!(paid["payerReference"], "AAR/2026/0042");
    assert_eq!(
        refused(&d.desk, UPDATE_CLAIM, step("DRAFT", json!({}))).await?,
        "CONFLICT",
        "PAID is final"
    );
    // The payer's money is a payment on the invoice.
    let after = d
        .amina
        .ok(
            "query($id: ID!) { invoice(id: $id) { status paid { amount } outstanding { amount } payments { method reference amount { amount } } } }",
            json!({ "id": inv_id }),
        )
        .await?["invoice"]
        .clone();
    assert_eq!(after["status"], "PARTIALLY_PAID");
    assert_eq!(after["outstanding"]["amount"], "695.16");
    assert_eq!(
        after["payments"],
        json!([{ "method": "INSURANCE", "reference": "AAR Insurance NBO-CLM-000001", "amount": { "amount": "1800.00" } }])
    );

    // Who may: the patient reads their own, nobody else but the desk reads any.
    let mine = d
        .amina
        .ok("{ claims { number status } }", json!({}))
        .await?;
    assert_eq!(
        mine["claims"],
        json!([{ "number": "NBO-CLM-000001", "status": "PAID" }])
    );
    let covers = d
        .amina
        .ok(
            "query($p: ID!) { coverages(patientId: $p) { payer } }",
            json!({ "p": d.amina_id }),
        )
        .await?;
    assert_eq!(covers["coverages"].as_array().map(Vec::len), Some(2));
    let by_id = json!({ "id": claim_id });
    let read = "query($id: ID!) { claim(id: $id) { number } }";
    let cases: Vec<(&str, &Gql, &str, Value, &str)> = vec![
        (
            "other patient reads",
            &d.brian,
            read,
            by_id.clone(),
            "NOT_FOUND",
        ),
        ("doctor reads", &d.doctor, read, by_id.clone(), "NOT_FOUND"),
        (
            "doctor lists",
            &d.doctor,
            "{ claims { number } }",
            json!({}),
            "FORBIDDEN",
        ),
        (
            "other patient's coverages",
            &d.brian,
            "query($p: ID!) { coverages(patientId: $p) { payer } }",
            json!({ "p": d.amina_id }),
            "NOT_FOUND",
        ),
        (
            "patient records a coverage",
            &d.amina,
            COVER,
            cover(json!({})),
            "FORBIDDEN",
        ),
        (
            "doctor records a coverage",
            &d.doctor,
            COVER,
            cover(json!({})),
            "FORBIDDEN",
        ),
        (
            "patient claims",
            &d.amina,
            CLAIM,
            claim_on(&cover_id, None),
            "FORBIDDEN",
        ),
        (
            "patient updates a claim",
            &d.amina,
            UPDATE_CLAIM,
            step("SUBMITTED", json!({})),
            "FORBIDDEN",
        ),
        (
            "validTo before validFrom",
            &d.desk,
            COVER,
            cover(json!({ "validTo": "2019-12-31" })),
            "BAD_USER_INPUT",
        ),
        (
            "a date that is no date",
            &d.desk,
            COVER,
            cover(json!({ "validFrom": "01/02/2026" })),
            "BAD_USER_INPUT",
        ),
        (
            "no member id",
            &d.desk,
            COVER,
            cover(json!({ "memberId": " " })),
            "BAD_USER_INPUT",
        ),
        (
            "a claim of zero",
            &d.desk,
            CLAIM,
            claim_on(&cover_id, Some("0")),
            "BAD_USER_INPUT",
        ),
        (
            "another patient's coverage",
            &d.desk,
            COVER,
            json!({ "i": { "id": cover_id, "patientId": d.brian_id, "payer": "X", "memberId": "Y", "validFrom": "2020-01-01" } }),
            "NOT_FOUND",
        ),
    ];
    let mut wrong = vec![];
    for (what, who, query, vars, want) in cases {
        let a = who.query(query, vars).await?;
        if a.code() != Some(want) || a.body.to_string().contains("AAR-55821") {
            wrong.push(format!("{what}: want {want}, got {}", a.body));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_and_the_desk_watch_an_invoice_change_live() -> Result<()> {
    let d = desk().await?;
    let watch =
        "subscription($p: ID) { invoiceUpdated(patientId: $p) { number status paid { amount } } }";
    let token = |g: &Gql| g.token.clone().unwrap_or_default();

    // Refused at once: a doctor, and a patient asking for another's.
    for (who, p) in [(&d.doctor, &d.amina_id), (&d.brian, &d.amina_id)] {
        let mut ws = Ws::connect_with_token(&d.c.node.base, &token(who)).await?;
        ws.subscribe("x", watch, json!({ "p": p })).await?;
        match ws.next_event(Duration::from_secs(5)).await? {
            WsEvent::Error { .. } => {}
            WsEvent::Next { payload, .. } => {
                assert_eq!(payload["data"], Value::Null, "{payload}")
            }
            other => anyhow::bail!("not refused: {other:?}"),
        }
    }

    let mut phone = Ws::connect_with_token(&d.c.node.base, &token(&d.amina)).await?;
    phone.subscribe("mine", watch, json!({ "p": null })).await?;
    let mut till = Ws::connect_with_token(&d.c.node.base, &token(&d.desk)).await?;
    till.subscribe("all", watch, json!({ "p": null })).await?;
    let mut other = Ws::connect_with_token(&d.c.node.base, &token(&d.brian)).await?;
    other.subscribe("b", watch, json!({ "p": null })).await?;

    // Live once an invoice issued after subscribing arrives: issue until one does.
    let one = json!({ "i": { "patientId": d.amina_id, "currency": "KES", "lines": [{ "serviceCode": "VACC" }] } });
    let mut id = String::new();
    let mut seen = None;
    for _ in 0..20 {
        let r = d.desk.ok(ISSUE, one.clone()).await?;
        id = r["issueInvoice"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Ok(WsEvent::Next { payload, .. }) =
            phone.next_event(Duration::from_millis(300)).await
        {
            seen = Some(payload);
            break;
        }
    }
    let seen = seen.ok_or_else(|| anyhow!("the patient's subscription never fired"))?;
    assert_eq!(seen["data"]["invoiceUpdated"]["status"], "ISSUED");

    // A payment: both the patient and the till see the invoice as it now stands.
    d.desk.ok(PAY, pay(&id, "300", "CASH")).await?;
    for ws in [&mut phone, &mut till] {
        let mut last = Value::Null;
        for _ in 0..40 {
            match ws.next_event(Duration::from_secs(5)).await? {
                WsEvent::Next { payload, .. } => {
                    last = payload["data"]["invoiceUpdated"].clone();
                    if last["status"] == "PARTIALLY_PAID" {
                        break;
                    }
                }
                other => anyhow::bail!("unexpected {other:?}"),
            }
        }
        assert_eq!(last["status"], "PARTIALLY_PAID", "{last}");
        assert_eq!(last["paid"]["amount"], "300.00");
    }
    // Another patient's stream stays silent.
    other.expect_silence(Duration::from_millis(300)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voiding_an_invoice_withdraws_its_open_claim_and_nothing_claims_it_again() -> Result<()> {
    let d = desk().await?;
    for s in ["CHECKED_IN", "COMPLETED"] {
        d.c.admin
            .ok(SET_STATUS, json!({ "id": d.visit, "s": s }))
            .await?;
    }
    let inv_id = d.desk.ok(ISSUE, visit_invoice(&d)).await?["issueInvoice"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let cover = d
        .desk
        .ok(
            COVER,
            json!({ "i": { "patientId": d.amina_id, "payer": "AAR Insurance", "memberId": "AAR-55821", "validFrom": "2020-01-01" } }),
        )
        .await?["setCoverage"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let claim_on = json!({ "inv": inv_id, "c": cover, "a": "1000" });
    let new_claim = || async {
        let c = d.desk.ok(CLAIM, claim_on.clone()).await?;
        anyhow::Ok(
            c["createClaim"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    let to = |id: &str, status: &str| json!({ "id": id, "i": { "status": status } });
    // A first claim the payer rejected, and a second one submitted.
    let rejected = new_claim().await?;
    d.desk.ok(UPDATE_CLAIM, to(&rejected, "SUBMITTED")).await?;
    d.desk.ok(UPDATE_CLAIM, to(&rejected, "REJECTED")).await?;
    let claim_id = new_claim().await?;
    let step = |status: &str| to(&claim_id, status);
    d.desk.ok(UPDATE_CLAIM, step("SUBMITTED")).await?;

    d.desk.ok(VOID, json!({ "id": inv_id })).await?;
    let claim = d
        .desk
        .ok(
            "query($id: ID!) { claim(id: $id) { status response } }",
            json!({ "id": claim_id }),
        )
        .await?["claim"]
        .clone();
    assert_eq!(
        claim,
        json!({ "status": "WITHDRAWN", "response": "invoice void: billed to the wrong patient" })
    );
    // WITHDRAWN is final, and the void invoice takes no new claim.
    for status in ["DRAFT", "SUBMITTED", "ACCEPTED", "PAID", "REJECTED"] {
        assert_eq!(
            refused(&d.desk, UPDATE_CLAIM, step(status)).await?,
            "CONFLICT",
            "WITHDRAWN -> {status}"
        );
    }
    assert_eq!(refused(&d.desk, CLAIM, claim_on.clone()).await?, "CONFLICT");
    // The rejected one stays as it was, and is not corrected into a new claim.
    assert_eq!(
        refused(&d.desk, UPDATE_CLAIM, to(&rejected, "DRAFT")).await?,
        "CONFLICT"
    );
    let open = d.desk.ok("{ claims { status } }", json!({})).await?;
    assert_eq!(
        open["claims"],
        json!([{ "status": "WITHDRAWN" }, { "status": "REJECTED" }])
    );
    Ok(())
}
