//! Round trips of every record kind, and the merge behaviour the rest of the product
//! relies on (different fields merge; the same field keeps both values).

use automerge::{ActorId, ROOT, ReadDoc};
use chrono::{DateTime, Utc};
use healsync_domain::*;

use crate::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn patient() -> Patient {
    crate::samples::patient()
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

/// Round-trips any record through its kind's document.
fn round_trip_any(record: AnyRecord) {
    match record {
        AnyRecord::Patient(r) => round_trip(r),
        AnyRecord::Doctor(r) => round_trip(r),
        AnyRecord::Schedule(r) => round_trip(r),
        AnyRecord::Leave(r) => round_trip(r),
        AnyRecord::Appointment(r) => round_trip(r),
        AnyRecord::Notification(r) => round_trip(r),
        AnyRecord::User(r) => round_trip(r),
        AnyRecord::PatientRequest(r) => round_trip(r),
        AnyRecord::MedicalRecord(r) => round_trip(r),
        AnyRecord::Invoice(r) => round_trip(r),
        AnyRecord::InvoiceVoid(r) => round_trip(r),
        AnyRecord::Payment(r) => round_trip(r),
        AnyRecord::PriceItem(r) => round_trip(r),
        AnyRecord::Coverage(r) => round_trip(r),
        AnyRecord::Claim(r) => round_trip(r),
        AnyRecord::MessagePreference(r) => round_trip(r),
    }
}

#[test]
fn every_kind_round_trips() {
    let all = crate::samples::every_kind();
    for kind in RecordKind::ALL {
        assert!(
            all.iter().any(|r| r.kind() == kind),
            "no sample of {kind:?}"
        );
    }
    for r in all {
        round_trip_any(r);
    }
}

#[test]
fn billing_documents_from_elsewhere_are_checked_like_input() {
    let billing = crate::samples::billing();
    let (Some(AnyRecord::Invoice(invoice)), Some(payment)) = (
        billing.first().cloned(),
        billing.iter().find_map(|r| match r {
            AnyRecord::Payment(p) => Some(p.clone()),
            _ => None,
        }),
    ) else {
        panic!("the billing samples start with an invoice and hold a payment");
    };
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
        status: AppointmentStatus::Booked,
        reason: None,
        ..crate::samples::appointment()
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
