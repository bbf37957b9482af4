//! Which notices become which messages, retry timing and reminder windows.

use chrono::TimeZone;
use uuid::Uuid;

use super::*;
use crate::{Address, DoctorId};

fn at(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, h, 0, 0)
        .single()
        .expect("time")
}

fn patient(email: &str, phone: Option<&str>) -> Patient {
    Patient {
        id: PatientId(Uuid::now_v7()),
        mrn: "NBO-000042".into(),
        site: "NBO".into(),
        name: "Amina Njoroge".into(),
        email: email.into(),
        phone: phone.map(Into::into),
        date_of_birth: None,
        sex: None,
        address: Address::default(),
        emergency_contact: None,
        allergies: vec![],
        active: true,
        created_at: at(8),
        updated_at: at(8),
    }
}

fn notice(audience: Audience) -> Notification {
    Notification {
        id: NotificationId(Uuid::now_v7()),
        audience,
        kind: "APPOINTMENT_BOOKED".into(),
        title: "Appointment booked".into(),
        body: "Your appointment with Dr. Kamau is booked Mon 07 Dec 2026 10:00 UTC.".into(),
        appointment_id: None,
        created_at: at(8),
        read: false,
    }
}

fn preference(p: &Patient, email: bool, sms: bool) -> MessagePreference {
    MessagePreference {
        id: MessagePreferenceId(Uuid::now_v7()),
        patient_id: p.id,
        site: "NBO".into(),
        email,
        sms,
        updated_at: at(8),
    }
}

#[test]
fn a_patient_notice_goes_out_on_each_channel_the_patient_allows() {
    use Channel::*;
    let both = [Email, Sms];
    let p = patient("amina@example.org", Some("+254 712 000 111"));
    let n = notice(Audience::Patient(p.id));
    let channels = |msgs: Vec<Outgoing>| msgs.iter().map(|m| m.channel).collect::<Vec<_>>();
    // (preference, channels the node delivers, expected channels)
    let cases: Vec<(Option<MessagePreference>, &[Channel], Vec<Channel>)> = vec![
        (None, &both, vec![Email, Sms]),
        (None, &[Email], vec![Email]),
        (None, &[], vec![]),
        (Some(preference(&p, true, false)), &both, vec![Email]),
        (Some(preference(&p, false, true)), &both, vec![Sms]),
        (Some(preference(&p, false, false)), &both, vec![]),
    ];
    for (pref, delivered, want) in cases {
        assert_eq!(
            channels(messages_for(
                &n,
                &p,
                pref.as_ref(),
                delivered,
                "Nairobi Clinic"
            )),
            want,
            "{pref:?} {delivered:?}"
        );
    }
    let msgs = messages_for(&n, &p, None, &both, "Nairobi Clinic");
    assert_eq!(msgs[0].recipient, "amina@example.org");
    assert_eq!(msgs[0].subject, "Nairobi Clinic: Appointment booked");
    assert!(msgs[0].body.starts_with("Dear Amina Njoroge,"));
    assert_eq!(msgs[1].recipient, "+254 712 000 111");
    assert!(msgs[1].body.contains("Dr. Kamau"));

    // No contact, no message; a notice to someone else, or to a doctor, none either.
    let no_phone = patient("amina@example.org", None);
    assert_eq!(
        channels(messages_for(
            &notice(Audience::Patient(no_phone.id)),
            &no_phone,
            None,
            &both,
            "C"
        )),
        vec![Email]
    );
    let doctor = notice(Audience::Doctor(DoctorId(Uuid::now_v7())));
    assert!(messages_for(&doctor, &p, None, &both, "C").is_empty());
    let other = notice(Audience::Patient(PatientId(Uuid::now_v7())));
    assert!(messages_for(&other, &p, None, &both, "C").is_empty());
    let inactive = Patient {
        active: false,
        ..p.clone()
    };
    assert!(messages_for(&n, &inactive, None, &both, "C").is_empty());
}

#[test]
fn long_sms_texts_are_cut_and_retries_back_off_to_an_hour() {
    let p = patient("a@b.c", Some("+254700000000"));
    let mut n = notice(Audience::Patient(p.id));
    n.body = "x".repeat(1_000);
    let sms = messages_for(&n, &p, None, &[Channel::Sms], "C");
    assert_eq!(sms[0].body.chars().count(), MAX_SMS);
    assert!(sms[0].body.ends_with('…'));

    let secs: Vec<i64> = (1..=12).map(|a| retry_delay(a).num_seconds()).collect();
    assert_eq!(
        secs,
        [
            30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600, 3600
        ]
    );
    assert_eq!(retry_delay(0).num_seconds(), 30);
    assert_eq!(retry_delay(u32::MAX).num_seconds(), 3600);
}

#[test]
fn a_reminder_is_due_within_its_lead_time_and_names_the_visit() {
    let lead = Duration::hours(24);
    assert!(reminder_due(at(10), at(9), lead));
    assert!(!reminder_due(at(9), at(9), lead), "started");
    assert!(!reminder_due(at(8), at(9), lead), "past");
    assert!(
        !reminder_due(at(9) + Duration::hours(25), at(9), lead),
        "too far"
    );
    let id = OutboundMessageId(Uuid::nil());
    assert_eq!(
        message_id(id, "NBO"),
        "<00000000-0000-0000-0000-000000000000@nbo.healsync>"
    );
}

#[test]
fn a_notice_becomes_the_same_message_wherever_it_is_written() {
    let (a, b) = (
        NotificationId(Uuid::now_v7()),
        NotificationId(Uuid::now_v7()),
    );
    assert_eq!(
        outbound_id(a, Channel::Email),
        outbound_id(a, Channel::Email)
    );
    let ids = [
        outbound_id(a, Channel::Email),
        outbound_id(a, Channel::Sms),
        outbound_id(b, Channel::Email),
        outbound_id(b, Channel::Sms),
    ];
    for (i, x) in ids.iter().enumerate() {
        for y in &ids[i + 1..] {
            assert_ne!(x, y);
        }
    }
}
