//! Merging is idempotent and order-free; the JSON projection hides secrets; the
//! collision rule, written as a table.

use super::*;
use chrono::TimeZone;
use healsync_domain::{AppointmentStatus, Role, User};
use healsync_records::{new_document, write_record};

fn actor(n: u8) -> ActorId {
    ActorId::from([n; 16])
}

fn appointment(site: &str, status: AppointmentStatus) -> Appointment {
    let t = Utc
        .with_ymd_and_hms(2026, 12, 1, 9, 0, 0)
        .single()
        .expect("time");
    Appointment {
        id: Uuid::from_u128(1).into(),
        patient_id: Uuid::from_u128(2).into(),
        doctor_id: Uuid::from_u128(3).into(),
        site: site.into(),
        start: t,
        end: t + chrono::Duration::minutes(20),
        status,
        reason: None,
        notes: None,
        created_at: t,
        updated_at: t,
    }
}

fn changes_of(doc: &mut AutoCommit) -> Vec<Vec<u8>> {
    doc.get_changes(&[])
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

#[test]
fn merging_twice_or_out_of_order_gives_the_same_document() {
    let mut doc = new_document(&actor(1));
    write_record(&mut doc, &appointment("NBO", AppointmentStatus::Booked)).expect("write");
    write_record(&mut doc, &appointment("NBO", AppointmentStatus::CheckedIn)).expect("write");
    let changes = changes_of(&mut doc);
    let refs: Vec<&[u8]> = changes.iter().map(Vec::as_slice).collect();

    let once = merge(None, &refs).expect("merge");
    assert!(once.complete);
    let again = merge(Some(&once.bytes), &refs).expect("merge again");
    assert_eq!(once.heads, again.heads);

    // The second change alone waits for its dependency; with it, it completes.
    let waiting = merge(None, &refs[1..]).expect("merge tail");
    assert!(!waiting.complete);
    let reversed: Vec<&[u8]> = refs.iter().rev().copied().collect();
    let whole = merge(None, &reversed).expect("merge reversed");
    assert!(whole.complete);
    assert_eq!(whole.heads, once.heads);
    assert_eq!(whole.kind, "appointment");
    assert_eq!(whole.record["status"], "CHECKED_IN");
    assert_eq!(whole.appointment.expect("booking").site, "NBO");
}

#[test]
fn concurrent_edits_show_as_conflicts_and_secrets_stay_out() {
    let user = User {
        id: Uuid::from_u128(9).into(),
        username: "amina".into(),
        role: Role::Admin,
        password_hash: "$argon2id$secret".into(),
        patient_id: None,
        doctor_id: None,
        active: true,
        sites: Vec::new(),
        credentials_changed_at: None,
    };
    let mut a = new_document(&actor(1));
    write_record(&mut a, &user).expect("write");
    let mut b = a.fork().with_actor(actor(2));
    write_record(
        &mut a,
        &User {
            role: Role::Doctor,
            ..user.clone()
        },
    )
    .expect("write a");
    write_record(
        &mut b,
        &User {
            role: Role::Receptionist,
            ..user.clone()
        },
    )
    .expect("write b");
    let mut all = changes_of(&mut a);
    all.extend(changes_of(&mut b));
    let refs: Vec<&[u8]> = all.iter().map(Vec::as_slice).collect();
    let merged = merge(None, &refs).expect("merge");
    assert_eq!(merged.record["username"], "amina");
    assert!(merged.record.get("passwordHash").is_none());
    assert_eq!(merged.conflicts.len(), 1);
    assert_eq!(merged.conflicts[0].field, "role");
    assert_eq!(merged.conflicts[0].values, vec!["DOCTOR", "RECEPTIONIST"]);
}

#[test]
fn damaged_bytes_are_errors_not_panics() {
    assert!(merge(None, &[b"not a change"]).is_err());
    assert!(merge(Some(b"not a document"), &[]).is_err());
}

fn booking(
    id: u128,
    site: &str,
    doctor: u128,
    patient: u128,
    from_min: i64,
    to_min: i64,
) -> Booking {
    let t = Utc
        .with_ymd_and_hms(2026, 12, 1, 9, 0, 0)
        .single()
        .expect("time");
    Booking {
        id: Uuid::from_u128(id),
        site: site.into(),
        doctor_id: Uuid::from_u128(doctor),
        patient_id: Uuid::from_u128(patient),
        start: t + chrono::Duration::minutes(from_min),
        end: t + chrono::Duration::minutes(to_min),
    }
}

#[test]
fn collision_table() {
    use CollisionKind::*;
    let a = booking(1, "NBO", 10, 20, 0, 30);
    let cases = [
        (
            "same doctor, other site, overlapping",
            booking(2, "MSA", 10, 21, 15, 45),
            Some(Doctor),
        ),
        (
            "same patient, other site, overlapping",
            booking(2, "MSA", 11, 20, 29, 60),
            Some(Patient),
        ),
        (
            "both the same: the doctor is named",
            booking(2, "MSA", 10, 20, 0, 30),
            Some(Doctor),
        ),
        (
            "back to back does not overlap",
            booking(2, "MSA", 10, 20, 30, 60),
            None,
        ),
        (
            "same site too: a hub booking meets the site's offline one",
            booking(2, "NBO", 10, 21, 10, 20),
            Some(Doctor),
        ),
        ("unrelated people", booking(2, "MSA", 11, 21, 0, 30), None),
        ("the booking itself", booking(1, "MSA", 10, 20, 0, 30), None),
    ];
    for (what, b, expected) in cases {
        assert_eq!(collision(&a, &b), expected, "{what}");
        assert_eq!(collision(&b, &a), expected, "{what} (swapped)");
    }
}

/// A change's last edit as the hub receives it: (bytes, hash).
fn last_change(doc: &mut AutoCommit) -> (Vec<u8>, [u8; 32]) {
    let c = doc.get_changes(&[]).pop().expect("a change").clone();
    (c.raw_bytes().to_vec(), c.hash().0)
}

#[test]
fn later_changes_cannot_rewrite_what_a_document_is_or_change_its_shape() {
    use automerge::transaction::Transactable;
    let mut doc = new_document(&actor(1));
    write_record(&mut doc, &appointment("NBO", AppointmentStatus::Booked)).expect("write");
    let (first, first_hash) = last_change(&mut doc);
    let id = Uuid::from_u128(1);
    assert_eq!(
        check_change(&first, &first_hash, id, None, Some("appointment")),
        Ok(())
    );
    // (what a later change does, whether the hub takes it)
    type Edit = fn(&mut AutoCommit);
    let cases: [(&str, Edit, bool); 7] = [
        (
            "writes its own kind again",
            |d| {
                d.put(automerge::ROOT, "kind", "appointment").expect("put");
                d.put(automerge::ROOT, "status", "NO_SHOW").expect("put");
            },
            true,
        ),
        (
            "edits a field",
            |d| {
                d.put(automerge::ROOT, "status", "CHECKED_IN").expect("put");
            },
            true,
        ),
        (
            "turns the record into an account",
            |d| {
                d.put(automerge::ROOT, "kind", "user").expect("put");
                d.put(automerge::ROOT, "role", "ADMIN").expect("put");
            },
            false,
        ),
        (
            "deletes its kind",
            |d| {
                d.delete(automerge::ROOT, "kind").expect("delete");
            },
            false,
        ),
        (
            "changes its id",
            |d| {
                d.put(
                    automerge::ROOT,
                    "id",
                    "00000000-0000-0000-0000-000000000009",
                )
                .expect("put");
            },
            false,
        ),
        (
            "makes a nested object",
            |d| {
                d.put_object(automerge::ROOT, "address", automerge::ObjType::Map)
                    .expect("map");
            },
            false,
        ),
        (
            "makes a counter",
            |d| {
                d.put(
                    automerge::ROOT,
                    "visits",
                    automerge::ScalarValue::counter(1),
                )
                .expect("put");
            },
            false,
        ),
    ];
    for (what, edit, taken) in cases {
        let mut d = doc.fork();
        edit(&mut d);
        d.commit();
        let (bytes, hash) = last_change(&mut d);
        assert_eq!(
            check_change(&bytes, &hash, id, Some("appointment"), None).is_ok(),
            taken,
            "{what}"
        );
    }
}
