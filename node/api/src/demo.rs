//! Realistic demo data for `healsync-node serve --demo`: doctors with weekly schedules,
//! a few hundred patients, a week of appointments, the charts of the visits already
//! seen (notes, vitals, diagnoses, prescriptions, lab orders and results), and one
//! account per role. Written
//! through the same services as real work, so it obeys every rule.

use chrono::{Duration, NaiveTime, Utc, Weekday};
use healsync_domain::clinical::{
    Diagnosis, LabOrder, LabResult, MedicationStatus, Note, Prescription, ProblemStatus,
    ResultStatus, Vitals,
};
use healsync_domain::{
    Address, Appointment, AppointmentStatus, Details, DoctorId, EmergencyContact, Role, Sex,
    UserId, WeeklyRule,
};
use healsync_store::queries;

use crate::service::medical_records::{self, NewEntry};
use crate::service::{appointments, doctors, patients, users};
use crate::service::{billing, insurance};
use crate::{ApiError, Node, Session};
use healsync_domain::billing as billing_domain;
use healsync_domain::insurance::ClaimStatus;

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

/// What the demo's doctors find and prescribe: (ICD-10, diagnosis, drug, dose, route,
/// frequency, days).
const FINDINGS: &[(&str, &str, &str, &str, &str, &str, u32)] = &[
    (
        "I10",
        "Essential hypertension",
        "Amlodipine",
        "5 mg",
        "oral",
        "once daily",
        30,
    ),
    (
        "E11.9",
        "Type 2 diabetes mellitus",
        "Metformin",
        "500 mg",
        "oral",
        "twice daily",
        30,
    ),
    (
        "J06.9",
        "Upper respiratory tract infection",
        "Paracetamol",
        "1 g",
        "oral",
        "every 6 hours as needed",
        5,
    ),
    (
        "B54",
        "Malaria, unspecified",
        "Artemether-lumefantrine",
        "4 tablets",
        "oral",
        "twice daily",
        3,
    ),
    (
        "M54.5",
        "Low back pain",
        "Ibuprofen",
        "400 mg",
        "oral",
        "three times daily with food",
        7,
    ),
    (
        "L30.9",
        "Dermatitis",
        "Hydrocortisone 1% cream",
        "thin layer",
        "topical",
        "twice daily",
        14,
    ),
];
/// Lab tests the demo orders: (code, name, unit, reference range, normal value, abnormal value).
const TESTS: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("718-7", "Haemoglobin", "g/dL", "12-16", "13.4", "9.8"),
    (
        "2345-7",
        "Glucose, fasting",
        "mmol/L",
        "3.9-5.5",
        "5.1",
        "8.7",
    ),
    (
        "32693-4",
        "Malaria rapid test",
        "",
        "negative",
        "negative",
        "positive",
    ),
];

/// Writes the chart of a visit that was seen: vitals and a note always, and often a
/// diagnosis with its prescription and a lab test with its result, as the doctor.
async fn chart_visit(
    node: &Node,
    doctor: &Session,
    a: &Appointment,
    rng: &mut Rng,
) -> Result<(), ApiError> {
    let entry = |details, at| NewEntry {
        patient_id: a.patient_id,
        appointment_id: Some(a.id),
        recorded_at: Some(at),
        details,
        amends: None,
        reason: None,
    };
    let vitals = Vitals {
        systolic: Some(105 + rng.below(50) as u16),
        diastolic: Some(65 + rng.below(30) as u16),
        pulse: Some(60 + rng.below(40) as u16),
        temperature_c: Some(36.2 + rng.below(20) as f64 / 10.0),
        // A patient's weight barely changes between two visits of one week.
        weight_kg: Some(45.0 + (a.patient_id.0.as_u128() % 60) as f64),
        height_cm: None,
        spo2: Some(94 + rng.below(6) as u8),
    };
    medical_records::add(node, doctor, entry(Details::Vitals(vitals), a.start)).await?;
    let reason = a.reason.as_deref().unwrap_or("Consultation");
    let finding = FINDINGS[rng.below(FINDINGS.len())];
    let diagnosed = rng.below(3) > 0;
    let text = if diagnosed {
        format!(
            "{reason}. History and examination consistent with {}.\nPlan discussed with the patient.",
            finding.1.to_lowercase()
        )
    } else {
        format!("{reason}. No acute findings.\nAdvice given; return if symptoms change.")
    };
    let at = a.start + Duration::minutes(10);
    medical_records::add(node, doctor, entry(Details::Note(Note { text }), at)).await?;
    if diagnosed {
        let (code, text, drug, dose, route, frequency, days) = finding;
        let d = Details::Diagnosis(Diagnosis {
            code: code.into(),
            text: text.into(),
            status: ProblemStatus::Active,
        });
        medical_records::add(node, doctor, entry(d, at)).await?;
        let p = Details::Prescription(Prescription {
            drug: drug.into(),
            dose: dose.into(),
            route: route.into(),
            frequency: frequency.into(),
            duration_days: Some(days),
            quantity: None,
            status: MedicationStatus::Active,
        });
        medical_records::add(node, doctor, entry(p, at)).await?;
    }
    if rng.below(3) == 0 {
        let (code, name, unit, range, normal, abnormal) = TESTS[rng.below(TESTS.len())];
        let order = Details::LabOrder(LabOrder {
            test_code: code.into(),
            test_name: name.into(),
        });
        let order = medical_records::add(node, doctor, entry(order, at)).await?;
        let is_abnormal = rng.below(3) == 0;
        let result = Details::LabResult(LabResult {
            order_id: Some(order.id),
            test_code: code.into(),
            test_name: name.into(),
            value: if is_abnormal { abnormal } else { normal }.into(),
            unit: (!unit.is_empty()).then(|| unit.to_string()),
            reference_range: Some(range.into()),
            abnormal: is_abnormal,
            status: ResultStatus::Final,
        });
        let reported = (a.start + Duration::hours(2)).min(Utc::now());
        medical_records::add(node, doctor, entry(result, reported)).await?;
    }
    Ok(())
}

/// A doctor's session for the demo's clinical writes.
const CURRENCY: &str = "KES";

/// The insurers some demo patients are covered by.
const PAYERS: &[&str] = &["AAR Insurance", "Jubilee Health", "NHIF", "Britam"];

/// The demo clinic's services: code, name, price, VAT percent.
const PRICES: &[(&str, &str, &str, &str)] = &[
    ("CONSULT", "Consultation", "1500", "0"),
    ("REVIEW", "Review visit", "800", "0"),
    ("LAB-FBC", "Full blood count", "850", "0"),
    ("LAB-MAL", "Malaria test", "450", "0"),
    ("DRESSING", "Wound dressing", "350.50", "16"),
    ("CERT", "Medical certificate", "500", "16"),
];

/// Bills a completed visit from the price list; most are paid, some in part.
async fn bill_visit(
    node: &Node,
    cashier: &Session,
    a: &healsync_domain::Appointment,
    cover: Option<healsync_domain::CoverageId>,
    rng: &mut Rng,
) -> Result<(), ApiError> {
    let mut lines = vec![billing::LineInput {
        service_code: Some(
            if rng.below(3) == 0 {
                "REVIEW"
            } else {
                "CONSULT"
            }
            .into(),
        ),
        quantity: 1,
        ..Default::default()
    }];
    for _ in 0..rng.below(3) {
        let (code, ..) = PRICES[2 + rng.below(PRICES.len() - 2)];
        if lines
            .iter()
            .any(|l| l.service_code.as_deref() == Some(code))
        {
            continue;
        }
        lines.push(billing::LineInput {
            service_code: Some(code.into()),
            quantity: 1,
            ..Default::default()
        });
    }
    let invoice = billing::issue_invoice(
        node,
        cashier,
        billing::NewInvoice {
            patient_id: None,
            appointment_id: Some(a.id),
            currency: CURRENCY.into(),
            lines,
            notes: None,
        },
    )
    .await?;
    let total = invoice.invoice.totals().total;
    let currency = invoice.invoice.currency.clone();
    // A covered patient's bill goes to the insurer; the others pay at the desk.
    if let Some(cover) = cover {
        let claim = insurance::create_claim(node, cashier, invoice.invoice.id, cover, None).await?;
        let steps: &[ClaimStatus] = match rng.below(3) {
            0 => &[],
            1 => &[ClaimStatus::Submitted],
            _ => &[ClaimStatus::Submitted, ClaimStatus::Accepted],
        };
        for status in steps {
            let update = insurance::ClaimUpdate {
                status: *status,
                payer_reference: None,
                response: None,
                paid_amount: None,
            };
            insurance::update_claim(node, cashier, claim.id, update).await?;
        }
        return Ok(());
    }
    let paid = match rng.below(10) {
        0..=5 => total,
        6 | 7 => total / 2,
        _ => 0,
    };
    if paid > 0 {
        let method = [
            billing_domain::PaymentMethod::Cash,
            billing_domain::PaymentMethod::MobileMoney,
            billing_domain::PaymentMethod::Card,
        ][rng.below(3)];
        billing::record_payment(
            node,
            cashier,
            billing::PaymentInput {
                invoice_id: invoice.invoice.id,
                amount: billing_domain::format_amount(paid, &currency),
                method,
                reference: None,
            },
            billing::Direction::Payment,
        )
        .await?;
    }
    Ok(())
}

fn doctor_session(id: DoctorId, licence: &str) -> Session {
    Session {
        user_id: UserId(uuid::Uuid::nil()),
        username: format!("dr.{}", licence.to_lowercase()),
        role: Role::Doctor,
        patient_id: None,
        doctor_id: Some(id),
        peer: None,
        opened: None,
    }
}

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
        peer: None,
        opened: None,
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);

    let mut doctor_ids = Vec::new();
    let mut doctor_sessions = Vec::new();
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
        doctor_sessions.push(doctor_session(d.id, licence));
    }

    let today = Utc::now().date_naive();
    let mut patient_ids = Vec::new();
    let mut covers = std::collections::HashMap::new();
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
        if patient_ids.len() % 5 == 0 {
            let cover = insurance::set_coverage(
                node,
                &admin,
                insurance::CoverageInput {
                    id: None,
                    patient_id: p.id,
                    payer: PAYERS[rng.below(PAYERS.len())].into(),
                    member_id: format!("M-{:06}", rng.below(1_000_000)),
                    plan: Some(["Outpatient", "Gold", "Family"][rng.below(3)].into()),
                    valid_from: format!("{}-01-01", chrono::Datelike::year(&today) - 1),
                    valid_to: None,
                    active: true,
                },
            )
            .await?;
            covers.insert(p.id, cover.id);
        }
        patient_ids.push(p.id);
    }

    // The price list every completed visit is billed from.
    for (code, name, price, tax) in PRICES {
        billing::set_price_item(
            node,
            &admin,
            billing::PriceInput {
                code: code.to_string(),
                name: name.to_string(),
                unit_price: price.to_string(),
                currency: CURRENCY.into(),
                tax_rate: tax.to_string(),
                active: true,
            },
        )
        .await?;
    }

    // A week of appointments: the last two days (already seen) and the next five.
    let now = Utc::now();
    let first_day = today - Duration::days(2);
    let from = first_day.and_time(NaiveTime::MIN).and_utc();
    let to = from + Duration::days(7);
    let site = node.store().identity().site.to_string();
    for (&doctor, clinician) in doctor_ids.iter().zip(&doctor_sessions) {
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
                    chart_visit(node, clinician, &a, &mut rng).await?;
                    let cover = covers.get(&a.patient_id).copied();
                    bill_visit(node, &admin, &a, cover, &mut rng).await?;
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
