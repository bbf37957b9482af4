//! Realistic demo data for `healsync-node serve --demo`: doctors with weekly schedules,
//! a few hundred patients, a week of appointments, and one account per role. Written
//! through the same services as real work, so it obeys every rule.

use chrono::{Duration, NaiveTime, Utc, Weekday};
use healsync_domain::{
    Address, AppointmentStatus, EmergencyContact, Role, Sex, UserId, WeeklyRule,
};
use healsync_store::queries;

use crate::service::{appointments, doctors, patients, users};
use crate::{ApiError, Node, Session};

/// A small deterministic generator (xorshift64*): the demo is the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const FIRST: &[&str] = &[
    "Amina", "Brian", "Chebet", "David", "Esther", "Faith", "George", "Halima", "Ian", "Joy",
    "Kevin", "Lilian", "Moses", "Njeri", "Omar", "Purity", "Quentin", "Rose", "Samuel", "Tabitha",
    "Umar", "Violet", "Wanjiru", "Xavier", "Yusuf", "Zawadi", "Grace", "Peter", "Mary", "John",
];
const LAST: &[&str] = &[
    "Njoroge", "Otieno", "Kamau", "Wanjiku", "Mwangi", "Achieng", "Kiprop", "Mutua", "Omondi",
    "Hassan", "Wafula", "Chege", "Nyambura", "Kariuki", "Barasa", "Ali", "Kimani", "Odhiambo",
];
const CITIES: &[&str] = &["Nairobi", "Kisumu", "Mombasa", "Nakuru", "Eldoret", "Thika"];
const ALLERGIES: &[&str] = &[
    "Penicillin",
    "Sulfonamides",
    "Latex",
    "Peanuts",
    "Aspirin",
    "Shellfish",
];
const REASONS: &[&str] = &[
    "Consultation",
    "Follow-up",
    "Blood pressure review",
    "Vaccination",
    "Prenatal check",
    "Diabetes review",
    "Back pain",
    "Child wellness visit",
    "Lab results review",
];
const DOCTORS: &[(&str, &[&str], &str)] = &[
    ("Dr. Wanjiru Kamau", &["General practice"], "KMPDC-10231"),
    ("Dr. Otieno Ochieng", &["Paediatrics"], "KMPDC-11872"),
    (
        "Dr. Halima Hassan",
        &["Obstetrics and gynaecology"],
        "KMPDC-12044",
    ),
    (
        "Dr. Peter Mwangi",
        &["Internal medicine", "Cardiology"],
        "KMPDC-13390",
    ),
    ("Dr. Grace Chebet", &["Dermatology"], "KMPDC-14517"),
];

/// The accounts the demo creates, for the start-up message.
pub const DEMO_USERS: &[(&str, &str)] = &[
    ("reception", "RECEPTIONIST"),
    ("doctor", "DOCTOR (Dr. Wanjiru Kamau)"),
    ("patient", "PATIENT (the first demo patient)"),
];

fn time(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

/// Seeds the demo data unless the node already has doctors. `password` is given to the
/// demo accounts. Returns whether anything was written.
pub async fn seed(node: &Node, password: &str, patients_count: usize) -> Result<bool, ApiError> {
    if node.read(queries::count_doctors).await? > 0 {
        return Ok(false);
    }
    let admin = Session {
        user_id: UserId(uuid::Uuid::nil()),
        username: "demo-seed".into(),
        role: Role::Admin,
        patient_id: None,
        doctor_id: None,
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);

    let mut doctor_ids = Vec::new();
    for (name, specs, licence) in DOCTORS {
        let d = doctors::create(
            node,
            &admin,
            doctors::NewDoctor {
                name: name.to_string(),
                specializations: specs.iter().map(|s| s.to_string()).collect(),
                licence_number: licence.to_string(),
                email: Some(format!("{}@clinic.example", licence.to_lowercase())),
                phone: Some(format!(
                    "+254 700 {:03} {:03}",
                    rng.below(1000),
                    rng.below(1000)
                )),
            },
        )
        .await?;
        let mut rules = Vec::new();
        for day in [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ] {
            rules.push(WeeklyRule {
                weekday: day,
                start: time(8, 0),
                end: time(12, 0),
            });
            rules.push(WeeklyRule {
                weekday: day,
                start: time(13, 0),
                end: time(17, 0),
            });
        }
        rules.push(WeeklyRule {
            weekday: Weekday::Sat,
            start: time(9, 0),
            end: time(12, 0),
        });
        doctors::set_schedule(node, &admin, d.id, 20, 0, rules, true).await?;
        doctor_ids.push(d.id);
    }

    let today = Utc::now().date_naive();
    let mut patient_ids = Vec::new();
    for i in 0..patients_count {
        let first = rng.pick(FIRST);
        let last = rng.pick(LAST);
        let dob = today - Duration::days(365 + rng.below(85 * 365) as i64);
        let allergies = if rng.below(5) == 0 {
            vec![rng.pick(ALLERGIES).to_string()]
        } else {
            vec![]
        };
        let p = patients::create(
            node,
            &admin,
            patients::NewPatient {
                name: format!("{first} {last}"),
                email: format!(
                    "{}.{}{}@example.org",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    i
                ),
                phone: Some(format!(
                    "+254 7{:02} {:03} {:03}",
                    rng.below(100),
                    rng.below(1000),
                    rng.below(1000)
                )),
                date_of_birth: Some(dob),
                sex: Some(if rng.below(2) == 0 {
                    Sex::Female
                } else {
                    Sex::Male
                }),
                address: Address {
                    line1: Some(format!("{} {} Road", 1 + rng.below(200), rng.pick(LAST))),
                    city: Some(rng.pick(CITIES).to_string()),
                    country: Some("Kenya".into()),
                    ..Address::default()
                },
                emergency_contact: Some(EmergencyContact {
                    name: format!("{} {last}", rng.pick(FIRST)),
                    phone: format!(
                        "+254 7{:02} {:03} {:03}",
                        rng.below(100),
                        rng.below(1000),
                        rng.below(1000)
                    ),
                    relationship: Some(
                        ["spouse", "parent", "sibling", "child"][rng.below(4)].into(),
                    ),
                }),
                allergies,
            },
        )
        .await?;
        patient_ids.push(p.id);
    }

    // A week of appointments: the last two days (already seen) and the next five.
    let now = Utc::now();
    let first_day = today - Duration::days(2);
    let from = first_day.and_time(NaiveTime::MIN).and_utc();
    let to = from + Duration::days(7);
    let site = node.store().identity().site.to_string();
    for &doctor in &doctor_ids {
        // The API offers only future slots; the demo also fills the recent past.
        let site = site.clone();
        let slots = node
            .read(move |c| appointments::free_slots(c, &site, doctor, from, to))
            .await?;
        for slot in slots {
            if rng.below(100) >= 45 || patient_ids.is_empty() {
                continue;
            }
            let patient = patient_ids[rng.below(patient_ids.len())];
            let booked = appointments::book(
                node,
                &admin,
                appointments::NewAppointment {
                    patient_id: patient,
                    doctor_id: doctor,
                    start: slot.start,
                    reason: Some(rng.pick(REASONS).to_string()),
                    notes: None,
                },
            )
            .await;
            let a = match booked {
                Ok(a) => a,
                Err(ApiError::Conflict(_)) => continue, // that patient is busy then
                Err(e) => return Err(e),
            };
            if slot.end < now {
                let outcome = if rng.below(10) == 0 {
                    AppointmentStatus::NoShow
                } else {
                    AppointmentStatus::CheckedIn
                };
                appointments::set_status(node, &admin, a.id, outcome).await?;
                if outcome == AppointmentStatus::CheckedIn {
                    appointments::set_status(node, &admin, a.id, AppointmentStatus::Completed)
                        .await?;
                }
            } else if slot.start.date_naive() == today && slot.start <= now + Duration::hours(1) {
                appointments::set_status(node, &admin, a.id, AppointmentStatus::CheckedIn).await?;
            }
        }
    }

    let store = node.store().clone();
    let password = password.to_string();
    let first_doctor = doctor_ids.first().copied();
    let first_patient = patient_ids.first().copied();
    tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
        for (username, role, patient_id, doctor_id) in [
            ("reception", Role::Receptionist, None, None),
            ("doctor", Role::Doctor, None, first_doctor),
            ("patient", Role::Patient, first_patient, None),
        ] {
            users::create_in_store(
                &store,
                users::NewUser {
                    username: username.into(),
                    password: password.clone(),
                    role,
                    patient_id,
                    doctor_id,
                },
            )?;
        }
        Ok(())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(true)
}
