//! Round trips of every record kind, and the merge behaviour the rest of the product
//! relies on (different fields merge; the same field keeps both values).

use automerge::{ActorId, ROOT, ReadDoc};
use chrono::{DateTime, NaiveDate, Utc, Weekday};
use healsync_domain::*;
use uuid::Uuid;

use crate::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn patient() -> Patient {
    Patient {
        id: PatientId(Uuid::now_v7()),
        mrn: "DEV-000001".into(),
        site: "DEV".into(),
        name: "Amina Njoroge".into(),
        email: "amina@example.org".into(),
        phone: Some("+254 712 000 111".into()),
        date_of_birth: NaiveDate::from_ymd_opt(1984, 3, 1),
        sex: Some(Sex::Female),
        address: Address {
            line1: Some("12 Moi Avenue".into()),
            city: Some("Nairobi".into()),
            ..Address::default()
        },
        emergency_contact: Some(EmergencyContact {
            name: "Otieno Njoroge".into(),
            phone: "+254 733 000 222".into(),
            relationship: Some("brother".into()),
        }),
        allergies: vec!["Penicillin".into()],
        active: true,
        created_at: t("2026-11-23T08:00:00Z"),
        updated_at: t("2026-11-23T08:00:00Z"),
    }
}

fn round_trip<R: Record + PartialEq + std::fmt::Debug>(record: R) {
    let actor = ActorId::random();
    let mut doc = new_document(&actor);
    let written = write_record(&mut doc, &record).expect("write");
    assert_eq!(written.changes.len(), 1);
    let bytes = doc.save();
    let loaded = load_document(&bytes, &actor).expect("load");
    assert_eq!(read_record::<R>(&loaded).expect("read"), record);
    // Writing the same record again changes nothing.
    let mut doc = loaded;
    assert!(
        write_record(&mut doc, &record)
            .expect("rewrite")
            .changes
            .is_empty()
    );
}

#[test]
fn every_kind_round_trips() {
    round_trip(patient());
    let mut bare = patient();
    bare.phone = None;
    bare.sex = None;
    bare.date_of_birth = None;
    bare.emergency_contact = None;
    bare.allergies = vec![];
    bare.address = Address::default();
    round_trip(bare);
    round_trip(Doctor {
        id: DoctorId(Uuid::now_v7()),
        name: "Dr. Wanjiru Kamau".into(),
        specializations: vec!["Cardiology".into(), "Internal medicine".into()],
        licence_number: "KMPDC-1234".into(),
        email: None,
        phone: Some("+254 700 000 000".into()),
        active: true,
        created_at: t("2026-11-23T08:00:00Z"),
        updated_at: t("2026-11-23T08:00:00Z"),
    });
    round_trip(Schedule {
        id: ScheduleId(Uuid::now_v7()),
        doctor_id: DoctorId(Uuid::now_v7()),
        site: "DEV".into(),
        slot_minutes: 20,
        utc_offset_minutes: 180,
        rules: vec![WeeklyRule {
            weekday: Weekday::Tue,
            start: healsync_domain::schedule::parse_time("s", "09:00").expect("time"),
            end: healsync_domain::schedule::parse_time("e", "12:00").expect("time"),
        }],
        active: true,
        updated_at: t("2026-11-23T08:00:00Z"),
    });
    round_trip(Leave {
        id: LeaveId(Uuid::now_v7()),
        doctor_id: DoctorId(Uuid::now_v7()),
        site: "DEV".into(),
        start: t("2026-12-01T00:00:00Z"),
        end: t("2026-12-08T00:00:00Z"),
        reason: Some("Annual leave".into()),
        cancelled: false,
    });
    round_trip(Appointment {
        id: AppointmentId(Uuid::now_v7()),
        patient_id: PatientId(Uuid::now_v7()),
        doctor_id: DoctorId(Uuid::now_v7()),
        site: "DEV".into(),
        start: t("2026-11-24T09:00:00Z"),
        end: t("2026-11-24T09:20:00Z"),
        status: AppointmentStatus::CheckedIn,
        reason: Some("Follow-up".into()),
        notes: None,
        created_at: t("2026-11-23T08:00:00Z"),
        updated_at: t("2026-11-23T08:00:00Z"),
    });
    round_trip(Notification {
        id: NotificationId(Uuid::now_v7()),
        audience: Audience::Doctor(DoctorId(Uuid::now_v7())),
        kind: "APPOINTMENT_BOOKED".into(),
        title: "New appointment".into(),
        body: "Amina Njoroge, 24 Nov 09:00".into(),
        appointment_id: Some(AppointmentId(Uuid::now_v7())),
        created_at: t("2026-11-23T08:00:00Z"),
        read: false,
    });
    round_trip(PatientRequest {
        id: PatientRequestId(Uuid::now_v7()),
        mrn: "NBO-000042".into(),
        date_of_birth: chrono::NaiveDate::from_ymd_opt(1984, 3, 1),
        requested_by: Some("reception".into()),
        status: RequestStatus::Pending,
        patient_id: None,
        answer: None,
        created_at: t("2026-11-23T08:00:00Z"),
        updated_at: t("2026-11-23T08:00:00Z"),
    });
    round_trip(PatientRequest {
        id: PatientRequestId(Uuid::now_v7()),
        mrn: "NBO-000042".into(),
        date_of_birth: None,
        requested_by: None,
        status: RequestStatus::Shared,
        patient_id: Some(PatientId(Uuid::now_v7())),
        answer: Some("shared by the hub".into()),
        created_at: t("2026-11-23T08:00:00Z"),
        updated_at: t("2026-11-23T08:05:00Z"),
    });
    round_trip(User {
        id: UserId(Uuid::now_v7()),
        username: "amina".into(),
        role: Role::Patient,
        password_hash: "$argon2id$v=19$...".into(),
        patient_id: Some(PatientId(Uuid::now_v7())),
        doctor_id: None,
        active: true,
        sites: vec![
            healsync_domain::SiteCode::parse("NBO").expect("site"),
            healsync_domain::SiteCode::parse("MSA").expect("site"),
        ],
        credentials_changed_at: Some(t("2026-11-23T09:00:00Z")),
    });
    billing_kinds_round_trip();
}

fn billing_kinds_round_trip() {
    use healsync_domain::billing::{Currency, InvoiceLine, PaymentMethod};
    let kes = Currency::parse("KES").expect("currency");
    let invoice = Invoice {
        id: InvoiceId(Uuid::now_v7()),
        number: "DEV-INV-000001".into(),
        patient_id: PatientId(Uuid::now_v7()),
        site: "DEV".into(),
        currency: kes.clone(),
        lines: vec![
            InvoiceLine {
                service_code: Some("CONSULT".into()),
                description: "Consultation".into(),
                quantity: 1,
                unit_price: 150_000,
                discount: 0,
                tax_rate: 1600,
            },
            InvoiceLine {
                service_code: None,
                description: "Dressing pack".into(),
                quantity: 3,
                unit_price: 12_050,
                discount: 50,
                tax_rate: 0,
            },
        ],
        appointment_id: Some(AppointmentId(Uuid::now_v7())),
        notes: Some("Paid by employer".into()),
        issued_by: "front.desk".into(),
        issued_at: t("2026-11-23T08:00:00Z"),
    };
    round_trip(invoice.clone());
    round_trip(InvoiceVoid {
        id: InvoiceVoidId(Uuid::now_v7()),
        invoice_id: invoice.id,
        patient_id: invoice.patient_id,
        site: "DEV".into(),
        reason: "billed to the wrong patient".into(),
        voided_by: "front.desk".into(),
        voided_at: t("2026-11-23T09:00:00Z"),
    });
    let payment = Payment {
        id: PaymentId(Uuid::now_v7()),
        invoice_id: invoice.id,
        patient_id: invoice.patient_id,
        site: "DEV".into(),
        amount: -4_950,
        currency: kes.clone(),
        method: PaymentMethod::MobileMoney,
        reference: Some("QK7H2".into()),
        received_by: "front.desk".into(),
        received_at: t("2026-11-23T09:00:00Z"),
    };
    round_trip(payment.clone());
    round_trip(PriceItem {
        id: PriceItemId(Uuid::now_v7()),
        site: "DEV".into(),
        code: "LAB-FBC".into(),
        name: "Full blood count".into(),
        unit_price: 35_050,
        currency: kes,
        tax_rate: 750,
        active: false,
        updated_at: t("2026-11-23T08:00:00Z"),
    });

    let coverage = Coverage {
        id: CoverageId(Uuid::now_v7()),
        patient_id: invoice.patient_id,
        site: "DEV".into(),
        payer: "AAR Insurance".into(),
        member_id: "AAR-55821".into(),
        plan: None,
        valid_from: NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
        valid_to: Some(NaiveDate::from_ymd_opt(2026, 12, 31).expect("date")),
        active: true,
        updated_at: t("2026-11-23T08:00:00Z"),
    };
    round_trip(coverage.clone());
    round_trip(Coverage {
        plan: Some("Gold".into()),
        valid_to: None,
        active: false,
        ..coverage.clone()
    });
    let claim = Claim {
        id: ClaimId(Uuid::now_v7()),
        number: "DEV-CLM-000001".into(),
        invoice_id: invoice.id,
        invoice_number: invoice.number.clone(),
        patient_id: invoice.patient_id,
        coverage_id: coverage.id,
        payer: coverage.payer.clone(),
        member_id: coverage.member_id.clone(),
        site: "DEV".into(),
        amount: 200_000,
        currency: invoice.currency.clone(),
        status: healsync_domain::insurance::ClaimStatus::Draft,
        payer_reference: None,
        response: None,
        paid_amount: None,
        created_by: "front.desk".into(),
        created_at: t("2026-11-23T08:00:00Z"),
        updated_at: t("2026-11-23T08:00:00Z"),
    };
    round_trip(claim.clone());
    round_trip(Claim {
        status: healsync_domain::insurance::ClaimStatus::Paid,
        payer_reference: Some("AAR/2026/0042".into()),
        response: Some("paid in part".into()),
        paid_amount: Some(180_000),
        ..claim
    });

    round_trip(MessagePreference {
        id: MessagePreferenceId(Uuid::now_v7()),
        patient_id: invoice.patient_id,
        site: "DEV".into(),
        email: true,
        sms: false,
        updated_at: t("2026-11-23T08:00:00Z"),
    });

    // A document from elsewhere is checked like input: a line whose discount exceeds it,
    // or a zero payment, is no record.
    let actor = ActorId::random();
    let mut bad = invoice;
    bad.lines[0].discount = 150_001;
    let mut doc = new_document(&actor);
    write_record(&mut doc, &bad).expect("write");
    assert!(read_record::<Invoice>(&doc).is_err());
    let mut zero = payment;
    zero.amount = 0;
    let mut doc = new_document(&actor);
    write_record(&mut doc, &zero).expect("write");
    assert!(read_record::<Payment>(&doc).is_err());
}

#[test]
fn only_changed_fields_are_written() {
    let actor = ActorId::random();
    let mut doc = new_document(&actor);
    let mut p = patient();
    write_record(&mut doc, &p).expect("create");
    p.phone = Some("+254 799 999 999".into());
    let written = write_record(&mut doc, &p).expect("edit");
    let change = automerge::Change::from_bytes(written.changes[0].1.clone()).expect("change");
    assert_eq!(change.len(), 1, "one field edited, one operation");
}

#[test]
fn edits_of_different_fields_merge_and_of_one_field_keep_both() {
    let (a, b) = (ActorId::random(), ActorId::random());
    let mut doc_a = new_document(&a);
    let p = patient();
    write_record(&mut doc_a, &p).expect("create");
    let mut doc_b = load_document(&doc_a.save(), &b).expect("fork");

    let mut pa = p.clone();
    pa.phone = Some("+254 711 111 111".into());
    pa.name = "Amina W. Njoroge".into();
    write_record(&mut doc_a, &pa).expect("edit at a");
    let mut pb = p.clone();
    pb.phone = Some("+254 722 222 222".into());
    pb.email = "amina.n@example.org".into();
    write_record(&mut doc_b, &pb).expect("edit at b");

    doc_a.merge(&mut doc_b).expect("merge");
    let merged: Patient = read_record(&doc_a).expect("read");
    assert_eq!(merged.name, "Amina W. Njoroge");
    assert_eq!(merged.email, "amina.n@example.org");
    assert_eq!(doc_a.get_all(ROOT, "phone").expect("phone").len(), 2);
    assert_eq!(doc_a.get_all(ROOT, "name").expect("name").len(), 1);

    // Writing a value settles the field, even when it equals the current winner.
    let winner = merged.phone.clone();
    let mut settled = merged.clone();
    settled.phone = winner;
    write_record(&mut doc_a, &settled).expect("settle");
    assert_eq!(doc_a.get_all(ROOT, "phone").expect("phone").len(), 1);
}

#[test]
fn wrong_kind_and_garbage_are_errors_not_panics() {
    let actor = ActorId::random();
    let mut doc = new_document(&actor);
    write_record(&mut doc, &patient()).expect("create");
    assert!(matches!(
        read_record::<Doctor>(&doc),
        Err(RecordError::WrongKind { .. })
    ));
    assert!(load_document(b"not a document", &actor).is_err());
    assert!(AnyRecord::read(&new_document(&actor)).is_err());
}

#[test]
fn conflicts_are_found_and_the_status_rule_settles_what_it_can() {
    let (a, b) = (ActorId::random(), ActorId::random());
    let appt = Appointment {
        id: AppointmentId(Uuid::now_v7()),
        patient_id: PatientId(Uuid::now_v7()),
        doctor_id: DoctorId(Uuid::now_v7()),
        site: "DEV".into(),
        start: t("2026-11-24T09:00:00Z"),
        end: t("2026-11-24T09:20:00Z"),
        status: AppointmentStatus::Booked,
        reason: None,
        notes: None,
        created_at: t("2026-11-23T08:00:00Z"),
        updated_at: t("2026-11-23T08:00:00Z"),
    };
    let mut doc_a = new_document(&a);
    write_record(&mut doc_a, &appt).expect("create");
    let mut doc_b = load_document(&doc_a.save(), &b).expect("fork");
    // CHECKED_IN at one site, CANCELLED at the other: the lifecycle reaches CANCELLED
    // from CHECKED_IN, so the rule settles it; notes edited at both is a conflict.
    let mut at_a = appt.clone();
    at_a.status = AppointmentStatus::CheckedIn;
    at_a.notes = Some("arrived early".into());
    at_a.updated_at = t("2026-11-24T08:55:00Z");
    write_record(&mut doc_a, &at_a).expect("a");
    let mut at_b = appt.clone();
    at_b.status = AppointmentStatus::Cancelled;
    at_b.notes = Some("called to cancel".into());
    at_b.updated_at = t("2026-11-24T08:50:00Z");
    write_record(&mut doc_b, &at_b).expect("b");
    doc_a.merge(&mut doc_b).expect("merge");
    let merged: Appointment = read_record(&doc_a).expect("read");
    assert_eq!(merged.status, AppointmentStatus::Cancelled);
    assert_eq!(
        merged.updated_at,
        t("2026-11-24T08:55:00Z"),
        "the latest update time wins"
    );
    let found = conflicts(&doc_a).expect("conflicts");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].field, "notes");
    assert_eq!(found[0].values, ["arrived early", "called to cancel"]);

    // A field with no values has nothing to settle.
    assert!(
        resolve_field(&mut doc_a, "noSuchField", "x")
            .expect("resolve")
            .is_none()
    );
    // A person writes a new text (an edit): the conflict is gone, both old values stay
    // in history.
    let written = resolve_field(&mut doc_a, "notes", "arrived early, then cancelled")
        .expect("resolve")
        .expect("edited");
    assert_eq!(written.changes.len(), 1);
    assert!(conflicts(&doc_a).expect("conflicts").is_empty());
    assert_eq!(
        read_record::<Appointment>(&doc_a)
            .expect("read")
            .notes
            .as_deref(),
        Some("arrived early, then cancelled")
    );

    // COMPLETED against NO_SHOW has no rule: a conflict.
    let mut doc_c = new_document(&a);
    write_record(&mut doc_c, &appt).expect("create");
    let mut doc_d = load_document(&doc_c.save(), &b).expect("fork");
    let mut c = appt.clone();
    c.status = AppointmentStatus::NoShow;
    write_record(&mut doc_c, &c).expect("c");
    let mut d = appt.clone();
    d.status = AppointmentStatus::Completed;
    write_record(&mut doc_d, &d).expect("d");
    doc_c.merge(&mut doc_d).expect("merge");
    let found = conflicts(&doc_c).expect("conflicts");
    assert_eq!(
        found.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(),
        ["status"]
    );
    // An edit the record cannot hold is refused and leaves the document as it was.
    let heads = doc_c.get_heads();
    assert!(resolve_field(&mut doc_c, "status", "DANCING").is_err());
    assert_eq!(doc_c.get_heads(), heads);
    assert_eq!(conflicts(&doc_c).expect("conflicts").len(), 1);
    // Picking one of the values settles it.
    resolve_field(&mut doc_c, "status", "COMPLETED")
        .expect("resolve")
        .expect("picked");
    assert!(conflicts(&doc_c).expect("conflicts").is_empty());
}
