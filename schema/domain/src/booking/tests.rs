use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc, Weekday};
use uuid::Uuid;

use super::*;
use crate::{Address, WeeklyRule};

/// Monday 2030-01-07, 09:00 UTC: a slot of the test schedule.
fn monday_nine() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 7, 9, 0, 0)
        .single()
        .expect("valid")
}

fn doctor() -> Doctor {
    Doctor {
        id: Uuid::from_u128(1).into(),
        name: "Dr Wanjiru Kamau".into(),
        specializations: vec!["Cardiology".into()],
        licence_number: "KMPDC-1".into(),
        email: None,
        phone: None,
        active: true,
        created_at: monday_nine(),
        updated_at: monday_nine(),
    }
}

fn patient() -> Patient {
    Patient {
        id: Uuid::from_u128(2).into(),
        mrn: "NBO-000001".into(),
        site: "NBO".into(),
        name: "Amina Njeri".into(),
        email: "amina@example.org".into(),
        phone: None,
        date_of_birth: None,
        sex: None,
        address: Address::default(),
        emergency_contact: None,
        allergies: vec![],
        active: true,
        created_at: monday_nine(),
        updated_at: monday_nine(),
    }
}

fn schedule() -> Schedule {
    Schedule {
        id: Uuid::from_u128(3).into(),
        doctor_id: Uuid::from_u128(1).into(),
        site: "NBO".into(),
        slot_minutes: 30,
        utc_offset_minutes: 0,
        rules: vec![WeeklyRule {
            weekday: Weekday::Mon,
            start: NaiveTime::from_hms_opt(9, 0, 0).expect("valid"),
            end: NaiveTime::from_hms_opt(12, 0, 0).expect("valid"),
        }],
        active: true,
        updated_at: monday_nine(),
    }
}

fn request() -> BookingRequest {
    BookingRequest {
        patient_id: Uuid::from_u128(2).into(),
        doctor_id: Uuid::from_u128(1).into(),
        site: "NBO".into(),
        start: monday_nine(),
        reason: Some("  Chest pain ".into()),
        notes: None,
    }
}

/// One way to change the facts of the standard booking, and what it must decide:
/// `Ok(())` or the error's words.
struct Case {
    what: &'static str,
    change: fn(&mut Facts),
    want: Result<(), &'static str>,
}

struct Facts {
    req: BookingRequest,
    doctor: Doctor,
    patient: Patient,
    schedule: Option<Schedule>,
    leaves: Vec<Leave>,
    busy: Vec<Busy>,
    now: DateTime<Utc>,
}

fn busy(whose: Whose, start_minutes: i64, minutes: i64) -> Busy {
    let start = monday_nine() + Duration::minutes(start_minutes);
    Busy {
        whose,
        start,
        end: start + Duration::minutes(minutes),
    }
}

const CASES: &[Case] = &[
    Case {
        what: "a free slot in the future",
        change: |_| {},
        want: Ok(()),
    },
    Case {
        what: "a slot that has begun (a walk-in)",
        change: |f| f.now = monday_nine() + Duration::minutes(10),
        want: Ok(()),
    },
    Case {
        what: "a slot that is over (a visit entered afterwards)",
        change: |f| f.now = monday_nine() + Duration::days(2),
        want: Ok(()),
    },
    Case {
        what: "not a slot start",
        change: |f| f.req.start = monday_nine() + Duration::minutes(10),
        want: Err("is not a bookable slot"),
    },
    Case {
        what: "no schedule at the site",
        change: |f| f.schedule = None,
        want: Err("no active schedule at this site"),
    },
    Case {
        what: "an inactive schedule",
        change: |f| {
            if let Some(s) = f.schedule.as_mut() {
                s.active = false
            }
        },
        want: Err("no active schedule at this site"),
    },
    Case {
        what: "the doctor on leave",
        change: |f| {
            f.leaves.push(Leave {
                id: Uuid::from_u128(9).into(),
                doctor_id: Uuid::from_u128(1).into(),
                site: "NBO".into(),
                start: monday_nine() - Duration::hours(1),
                end: monday_nine() + Duration::hours(8),
                reason: None,
                cancelled: false,
            })
        },
        want: Err("is not a bookable slot"),
    },
    Case {
        what: "the doctor booked then",
        change: |f| f.busy.push(busy(Whose::Doctor, 15, 30)),
        want: Err("this slot is already booked"),
    },
    Case {
        what: "the patient booked then (elsewhere)",
        change: |f| f.busy.push(busy(Whose::Patient, -15, 30)),
        want: Err("the patient already has an appointment at that time"),
    },
    Case {
        what: "the doctor booked just before",
        change: |f| f.busy.push(busy(Whose::Doctor, -30, 30)),
        want: Ok(()),
    },
    Case {
        what: "an inactive doctor",
        change: |f| f.doctor.active = false,
        want: Err("this doctor is not active"),
    },
    Case {
        what: "a deactivated patient",
        change: |f| f.patient.active = false,
        want: Err("this patient record is deactivated"),
    },
    Case {
        what: "a reason too long",
        change: |f| f.req.reason = Some("x".repeat(MAX_REASON + 1)),
        want: Err("at most 500 characters"),
    },
    Case {
        what: "notes too long",
        change: |f| f.req.notes = Some("x".repeat(MAX_NOTES + 1)),
        want: Err("at most 2000 characters"),
    },
    Case {
        what: "another doctor read than asked for",
        change: |f| f.doctor.id = Uuid::from_u128(7).into(),
        want: Err("not the ones asked for"),
    },
];

#[test]
fn the_booking_rule_table() {
    for case in CASES {
        let mut f = Facts {
            req: request(),
            doctor: doctor(),
            patient: patient(),
            schedule: Some(schedule()),
            leaves: vec![],
            busy: vec![],
            now: monday_nine() - Duration::days(1),
        };
        (case.change)(&mut f);
        let cal = Calendar {
            schedule: f.schedule.as_ref(),
            leaves: &f.leaves,
            busy: &f.busy,
        };
        let id = Uuid::from_u128(42).into();
        let got = book(f.req.clone(), &f.doctor, &f.patient, cal, id, f.now);
        match (&got, case.want) {
            (Ok(a), Ok(())) => {
                assert_eq!(a.start, f.req.start, "{}", case.what);
                assert_eq!(a.end, f.req.start + Duration::minutes(30), "{}", case.what);
                assert_eq!(a.status, AppointmentStatus::Booked, "{}", case.what);
                assert_eq!(a.site, "NBO", "{}", case.what);
                assert_eq!(a.reason.as_deref(), Some("Chest pain"), "{}", case.what);
            }
            (Err(e), Err(words)) => {
                assert!(
                    e.to_string().contains(words),
                    "{}: {e} should say {words:?}",
                    case.what
                )
            }
            _ => panic!("{}: got {got:?}, want {:?}", case.what, case.want),
        }
    }
}

#[test]
fn an_appointment_takes_time_from_its_own_doctor_and_patient_while_it_holds() {
    let mut a = book(
        request(),
        &doctor(),
        &patient(),
        Calendar {
            schedule: Some(&schedule()),
            leaves: &[],
            busy: &[],
        },
        Uuid::from_u128(42).into(),
        monday_nine() - Duration::days(1),
    )
    .expect("books");
    let (d, p) = (a.doctor_id, a.patient_id);
    let other: PatientId = Uuid::from_u128(8).into();
    assert_eq!(Busy::of(&a, d, p, None).count(), 2);
    let whose: Vec<Whose> = Busy::of(&a, d, other, None).map(|b| b.whose).collect();
    assert_eq!(whose, vec![Whose::Doctor]);
    assert_eq!(Busy::of(&a, d, p, Some(a.id)).count(), 0);
    a.status = AppointmentStatus::Cancelled;
    assert_eq!(Busy::of(&a, d, p, None).count(), 0);
}
