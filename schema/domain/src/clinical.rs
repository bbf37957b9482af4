//! Medical records: a patient's clinical history as append-only entries.
//!
//! Every entry (a visit note, a diagnosis, a prescription, a lab order or result, an
//! allergy, a set of vital signs) is its own small record, written once and never
//! edited. A correction is a new entry that *amends* an earlier one (same type, new
//! details) or *retracts* it (with a reason); the original stays in the history. So
//! two clinics writing about one patient offline never overwrite each other and never
//! conflict: the union of their entries is the history.
//!
//! What is "current" (the active problems, the medicines being taken, the allergies,
//! the last vitals) is derived: an entry is current when no entry corrects it and it
//! is not itself a retraction, see [`is_current`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::patient::parse_text;
use crate::{AppointmentId, DoctorId, DomainError, MedicalRecordId, PatientId};

/// The longest visit note, in characters.
pub const MAX_NOTE: usize = 10_000;
/// The longest short clinical text (a drug, a dose, a test name, a reason).
pub const MAX_SHORT: usize = 200;

/// The kinds of entry, as stored and as the API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryType {
    Note,
    Diagnosis,
    Prescription,
    LabOrder,
    LabResult,
    Allergy,
    Vitals,
}

impl EntryType {
    pub const ALL: [EntryType; 7] = [
        EntryType::Note,
        EntryType::Diagnosis,
        EntryType::Prescription,
        EntryType::LabOrder,
        EntryType::LabResult,
        EntryType::Allergy,
        EntryType::Vitals,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::Note => "NOTE",
            EntryType::Diagnosis => "DIAGNOSIS",
            EntryType::Prescription => "PRESCRIPTION",
            EntryType::LabOrder => "LAB_ORDER",
            EntryType::LabResult => "LAB_RESULT",
            EntryType::Allergy => "ALLERGY",
            EntryType::Vitals => "VITALS",
        }
    }

    pub fn parse(s: &str) -> Result<EntryType, DomainError> {
        EntryType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| DomainError::invalid("type", format!("unknown entry type {s:?}")))
    }
}

macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Result<$name, DomainError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(DomainError::invalid($field, format!("unknown value {s:?}"))),
                }
            }
        }
    };
}

status_enum!(
    /// Whether a diagnosed problem is still a problem.
    ProblemStatus, "status" { Active => "ACTIVE", Resolved => "RESOLVED" });
status_enum!(
    /// Whether a prescribed medicine is still to be taken.
    MedicationStatus, "status" { Active => "ACTIVE", Stopped => "STOPPED" });
status_enum!(
    /// Whether a lab result may still change.
    ResultStatus, "status" { Preliminary => "PRELIMINARY", Final => "FINAL" });
status_enum!(
    /// How severe a reaction to an allergen is.
    Severity, "severity" { Mild => "MILD", Moderate => "MODERATE", Severe => "SEVERE", Unknown => "UNKNOWN" });

/// A visit (encounter) note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    pub text: String,
}

/// A diagnosis: an ICD-10 code and the clinician's words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis {
    pub code: String,
    pub text: String,
    pub status: ProblemStatus,
}

/// A prescription; the prescriber is the entry's author.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prescription {
    pub drug: String,
    pub dose: String,
    pub route: String,
    pub frequency: String,
    pub duration_days: Option<u32>,
    pub quantity: Option<u32>,
    pub status: MedicationStatus,
}

/// A test asked of the laboratory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabOrder {
    pub test_code: String,
    pub test_name: String,
}

/// A laboratory result, perhaps answering an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabResult {
    pub order_id: Option<MedicalRecordId>,
    pub test_code: String,
    pub test_name: String,
    pub value: String,
    pub unit: Option<String>,
    pub reference_range: Option<String>,
    pub abnormal: bool,
    pub status: ResultStatus,
}

/// An allergy or intolerance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Allergy {
    pub substance: String,
    pub reaction: Option<String>,
    pub severity: Severity,
}

/// Vital signs taken together; at least one is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Vitals {
    pub systolic: Option<u16>,
    pub diastolic: Option<u16>,
    pub pulse: Option<u16>,
    pub temperature_c: Option<f64>,
    pub weight_kg: Option<f64>,
    pub height_cm: Option<f64>,
    pub spo2: Option<u8>,
}

/// What an entry says: one of the entry types with its own fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Details {
    Note(Note),
    Diagnosis(Diagnosis),
    Prescription(Prescription),
    LabOrder(LabOrder),
    LabResult(LabResult),
    Allergy(Allergy),
    Vitals(Vitals),
}

impl Details {
    pub fn entry_type(&self) -> EntryType {
        match self {
            Details::Note(_) => EntryType::Note,
            Details::Diagnosis(_) => EntryType::Diagnosis,
            Details::Prescription(_) => EntryType::Prescription,
            Details::LabOrder(_) => EntryType::LabOrder,
            Details::LabResult(_) => EntryType::LabResult,
            Details::Allergy(_) => EntryType::Allergy,
            Details::Vitals(_) => EntryType::Vitals,
        }
    }

    /// The status a summary filters on, where the type has one.
    pub fn status(&self) -> Option<&'static str> {
        match self {
            Details::Diagnosis(d) => Some(d.status.as_str()),
            Details::Prescription(p) => Some(p.status.as_str()),
            Details::LabResult(r) => Some(r.status.as_str()),
            _ => None,
        }
    }

    /// The details as stored: a JSON object of the type's own fields.
    pub fn to_json(&self) -> serde_json::Value {
        let v = match self {
            Details::Note(x) => serde_json::to_value(x),
            Details::Diagnosis(x) => serde_json::to_value(x),
            Details::Prescription(x) => serde_json::to_value(x),
            Details::LabOrder(x) => serde_json::to_value(x),
            Details::LabResult(x) => serde_json::to_value(x),
            Details::Allergy(x) => serde_json::to_value(x),
            Details::Vitals(x) => serde_json::to_value(x),
        };
        // Plain structs of strings, numbers and enums always serialise.
        v.unwrap_or(serde_json::Value::Null)
    }

    /// Reads stored details of `entry_type` and checks them as a new entry would be.
    pub fn from_json(entry_type: EntryType, text: &str) -> Result<Details, DomainError> {
        fn de<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, DomainError> {
            serde_json::from_str(text).map_err(|e| DomainError::invalid("details", e.to_string()))
        }
        let d = match entry_type {
            EntryType::Note => Details::Note(de(text)?),
            EntryType::Diagnosis => Details::Diagnosis(de(text)?),
            EntryType::Prescription => Details::Prescription(de(text)?),
            EntryType::LabOrder => Details::LabOrder(de(text)?),
            EntryType::LabResult => Details::LabResult(de(text)?),
            EntryType::Allergy => Details::Allergy(de(text)?),
            EntryType::Vitals => Details::Vitals(de(text)?),
        };
        d.validate()
    }

    /// Checks every field and normalises text (trimmed); the only way details are made.
    pub fn validate(self) -> Result<Details, DomainError> {
        Ok(match self {
            Details::Note(n) => Details::Note(Note {
                text: parse_long_text("text", &n.text, MAX_NOTE)?,
            }),
            Details::Diagnosis(d) => Details::Diagnosis(Diagnosis {
                code: parse_icd10(&d.code)?,
                text: parse_text("text", &d.text, MAX_SHORT)?,
                status: d.status,
            }),
            Details::Prescription(p) => Details::Prescription(Prescription {
                drug: parse_text("drug", &p.drug, MAX_SHORT)?,
                dose: parse_text("dose", &p.dose, MAX_SHORT)?,
                route: parse_text("route", &p.route, MAX_SHORT)?,
                frequency: parse_text("frequency", &p.frequency, MAX_SHORT)?,
                duration_days: bounded("durationDays", p.duration_days, 1, 3650)?,
                quantity: bounded("quantity", p.quantity, 1, 100_000)?,
                status: p.status,
            }),
            Details::LabOrder(o) => Details::LabOrder(LabOrder {
                test_code: parse_code("testCode", &o.test_code)?,
                test_name: parse_text("testName", &o.test_name, MAX_SHORT)?,
            }),
            Details::LabResult(r) => Details::LabResult(LabResult {
                order_id: r.order_id,
                test_code: parse_code("testCode", &r.test_code)?,
                test_name: parse_text("testName", &r.test_name, MAX_SHORT)?,
                value: parse_text("value", &r.value, MAX_SHORT)?,
                unit: opt_text("unit", r.unit)?,
                reference_range: opt_text("referenceRange", r.reference_range)?,
                abnormal: r.abnormal,
                status: r.status,
            }),
            Details::Allergy(a) => Details::Allergy(Allergy {
                substance: parse_text("substance", &a.substance, MAX_SHORT)?,
                reaction: opt_text("reaction", a.reaction)?,
                severity: a.severity,
            }),
            Details::Vitals(v) => Details::Vitals(parse_vitals(v)?),
        })
    }

    /// One line a person reads in a list.
    pub fn describe(&self) -> String {
        match self {
            Details::Note(n) => {
                let first = n.text.lines().next().unwrap_or_default();
                let mut line: String = first.chars().take(120).collect();
                if line.len() < n.text.len() {
                    line.push('…');
                }
                line
            }
            Details::Diagnosis(d) => format!("{} {}", d.code, d.text),
            Details::Prescription(p) => {
                format!("{} {} {} {}", p.drug, p.dose, p.route, p.frequency)
            }
            Details::LabOrder(o) => format!("Ordered {} ({})", o.test_name, o.test_code),
            Details::LabResult(r) => format!(
                "{}: {}{}{}",
                r.test_name,
                r.value,
                r.unit
                    .as_deref()
                    .map(|u| format!(" {u}"))
                    .unwrap_or_default(),
                if r.abnormal { " (abnormal)" } else { "" }
            ),
            Details::Allergy(a) => match &a.reaction {
                Some(r) => format!("{}: {r}", a.substance),
                None => a.substance.clone(),
            },
            Details::Vitals(v) => {
                let mut parts = Vec::new();
                if let (Some(s), Some(d)) = (v.systolic, v.diastolic) {
                    parts.push(format!("BP {s}/{d}"));
                }
                if let Some(p) = v.pulse {
                    parts.push(format!("pulse {p}"));
                }
                if let Some(t) = v.temperature_c {
                    parts.push(format!("{t:.1} °C"));
                }
                if let Some(w) = v.weight_kg {
                    parts.push(format!("{w:.1} kg"));
                }
                if let Some(h) = v.height_cm {
                    parts.push(format!("{h:.0} cm"));
                }
                if let Some(o) = v.spo2 {
                    parts.push(format!("SpO2 {o}%"));
                }
                parts.join(", ")
            }
        }
    }
}

/// Whether an entry corrects an earlier one, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorrectionKind {
    /// The new entry replaces the earlier one's details (same type).
    Amends,
    /// The earlier entry was wrong and is withdrawn; the new entry holds its details.
    Retracts,
}

impl CorrectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CorrectionKind::Amends => "AMENDS",
            CorrectionKind::Retracts => "RETRACTS",
        }
    }

    pub fn parse(s: &str) -> Result<CorrectionKind, DomainError> {
        match s {
            "AMENDS" => Ok(CorrectionKind::Amends),
            "RETRACTS" => Ok(CorrectionKind::Retracts),
            _ => Err(DomainError::invalid(
                "correction",
                format!("unknown value {s:?}"),
            )),
        }
    }
}

/// How an entry corrects an earlier one of the same patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    pub of: MedicalRecordId,
    pub kind: CorrectionKind,
    pub reason: String,
}

/// One clinical entry. Written once; never edited.
#[derive(Debug, Clone, PartialEq)]
pub struct MedicalRecord {
    pub id: MedicalRecordId,
    pub patient_id: PatientId,
    /// The site where it was written.
    pub site: String,
    pub details: Details,
    /// When it was clinically true (the visit, the sample, the measurement).
    pub recorded_at: DateTime<Utc>,
    /// The account that wrote it (the prescriber of a prescription).
    pub author: String,
    pub author_doctor_id: Option<DoctorId>,
    pub appointment_id: Option<AppointmentId>,
    pub correction: Option<Correction>,
    pub created_at: DateTime<Utc>,
}

impl MedicalRecord {
    pub fn entry_type(&self) -> EntryType {
        self.details.entry_type()
    }
}

/// Whether an entry states a current fact, given whether any entry corrects it.
pub fn is_current(entry: &MedicalRecord, corrected: bool) -> bool {
    !corrected
        && entry
            .correction
            .as_ref()
            .is_none_or(|c| c.kind != CorrectionKind::Retracts)
}

/// Checks that `correction` may correct `original` with `details` for `patient`: the
/// same patient, the same type (a retraction repeats the original's details), and an
/// original that is not itself a retraction (retracting a retraction would make a fact
/// reappear without anybody restating it: restate it as a new entry instead).
pub fn check_correction(
    original: &MedicalRecord,
    patient: PatientId,
    details: &Details,
    kind: CorrectionKind,
) -> Result<(), DomainError> {
    if original.patient_id != patient {
        return Err(DomainError::invalid(
            "amends",
            "the corrected entry belongs to another patient",
        ));
    }
    if original.entry_type() != details.entry_type() {
        return Err(DomainError::invalid(
            "amends",
            format!(
                "a {} entry is corrected by a {} entry, not a {}",
                original.entry_type().as_str(),
                original.entry_type().as_str(),
                details.entry_type().as_str()
            ),
        ));
    }
    if original
        .correction
        .as_ref()
        .is_some_and(|c| c.kind == CorrectionKind::Retracts)
    {
        return Err(DomainError::invalid(
            "amends",
            "a retraction cannot be corrected; record the fact again as a new entry",
        ));
    }
    if kind == CorrectionKind::Retracts && &original.details != details {
        return Err(DomainError::invalid(
            "details",
            "a retraction repeats the retracted entry's details",
        ));
    }
    Ok(())
}

/// Text that may span lines (a visit note): trimmed, bounded, no control characters
/// other than line breaks and tabs.
pub fn parse_long_text(field: &'static str, s: &str, max: usize) -> Result<String, DomainError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if t.chars().count() > max {
        return Err(DomainError::invalid(
            field,
            format!("at most {max} characters"),
        ));
    }
    if t.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(t.replace("\r\n", "\n"))
}

/// An ICD-10 code: a letter, two digits, then optionally a dot and one to four
/// letters or digits (`J45`, `E11.9`, `S72.001A`). Upper-cased.
pub fn parse_icd10(s: &str) -> Result<String, DomainError> {
    let t = s.trim().to_ascii_uppercase();
    let b = t.as_bytes();
    let head = b.len() >= 3
        && b[0].is_ascii_uppercase()
        && b[1].is_ascii_digit()
        && (b[2].is_ascii_digit() || b[2].is_ascii_uppercase());
    let tail = match t.get(3..) {
        Some("") => true,
        Some(rest) => rest.strip_prefix('.').is_some_and(|r| {
            (1..=4).contains(&r.len()) && r.bytes().all(|c| c.is_ascii_alphanumeric())
        }),
        None => false,
    };
    if head && tail {
        Ok(t)
    } else {
        Err(DomainError::invalid(
            "code",
            format!("{s:?} is not an ICD-10 code (like J45 or E11.9)"),
        ))
    }
}

/// A short code (a lab test's LOINC or local code): 1 to 32 letters, digits, `-`, `.`, `_`.
pub fn parse_code(field: &'static str, s: &str) -> Result<String, DomainError> {
    let t = s.trim();
    if (1..=32).contains(&t.len())
        && t.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
    {
        Ok(t.to_string())
    } else {
        Err(DomainError::invalid(
            field,
            "1 to 32 letters, digits, '-', '.' or '_'",
        ))
    }
}

fn opt_text(field: &'static str, s: Option<String>) -> Result<Option<String>, DomainError> {
    crate::patient::parse_opt_text(field, s.as_deref(), MAX_SHORT)
}

fn bounded<T: PartialOrd + Copy + std::fmt::Display>(
    field: &'static str,
    v: Option<T>,
    min: T,
    max: T,
) -> Result<Option<T>, DomainError> {
    match v {
        Some(x) if x < min || x > max => Err(DomainError::invalid(
            field,
            format!("must be from {min} to {max}"),
        )),
        other => Ok(other),
    }
}

fn bounded_f(
    field: &'static str,
    v: Option<f64>,
    min: f64,
    max: f64,
) -> Result<Option<f64>, DomainError> {
    match v {
        Some(x) if !x.is_finite() || x < min || x > max => Err(DomainError::invalid(
            field,
            format!("must be from {min} to {max}"),
        )),
        other => Ok(other),
    }
}

/// Plausible vital signs (outside these bounds a value is a typing error, not a
/// patient): at least one given, both blood pressures or neither, systolic above
/// diastolic.
pub fn parse_vitals(v: Vitals) -> Result<Vitals, DomainError> {
    let out = Vitals {
        systolic: bounded("systolic", v.systolic, 40, 300)?,
        diastolic: bounded("diastolic", v.diastolic, 20, 200)?,
        pulse: bounded("pulse", v.pulse, 20, 300)?,
        temperature_c: bounded_f("temperatureC", v.temperature_c, 25.0, 45.0)?,
        weight_kg: bounded_f("weightKg", v.weight_kg, 0.2, 500.0)?,
        height_cm: bounded_f("heightCm", v.height_cm, 20.0, 260.0)?,
        spo2: bounded("spo2", v.spo2, 30, 100)?,
    };
    if out == Vitals::default() {
        return Err(DomainError::invalid(
            "vitals",
            "give at least one measurement",
        ));
    }
    match (out.systolic, out.diastolic) {
        (Some(s), Some(d)) if s <= d => Err(DomainError::invalid(
            "systolic",
            "must be above the diastolic pressure",
        )),
        (Some(_), None) | (None, Some(_)) => Err(DomainError::invalid(
            "diastolic",
            "give both blood pressures or neither",
        )),
        _ => Ok(out),
    }
}

/// The substances of a patient's intake allergy list (what registration recorded as
/// plain text) that no allergy entry names yet: trimmed, compared without case, each
/// once, in the list's order. Entries retracted since still count as named, so a
/// retraction is never undone by the intake list.
pub fn intake_allergies_to_record(intake: &[String], recorded: &[String]) -> Vec<String> {
    let key = |s: &str| s.trim().to_lowercase();
    let mut seen: Vec<String> = recorded.iter().map(|r| key(r)).collect();
    let mut out = vec![];
    for s in intake {
        let k = key(s);
        if k.is_empty() || seen.contains(&k) {
            continue;
        }
        seen.push(k);
        out.push(s.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: std::fmt::Debug + PartialEq>(got: Result<T, DomainError>, want: Result<T, &str>) {
        match (got, want) {
            (Ok(g), Ok(w)) => assert_eq!(g, w),
            (Err(e), Err(field)) => assert!(
                matches!(&e, DomainError::Invalid { field: f, .. } if *f == field),
                "{e} is not about {field}"
            ),
            (g, w) => panic!("got {g:?}, wanted {w:?}"),
        }
    }

    #[test]
    fn icd10_codes() {
        for (input, want) in [
            ("J45", Ok("J45")),
            ("e11.9", Ok("E11.9")),
            (" S72.001A ", Ok("S72.001A")),
            ("U07.1", Ok("U07.1")),
            ("J4", Err("code")),
            ("145", Err("code")),
            ("J45.", Err("code")),
            ("J45.12345", Err("code")),
            ("J45 9", Err("code")),
            ("", Err("code")),
            ("Ü45", Err("code")),
        ] {
            check(parse_icd10(input), want.map(String::from));
        }
    }

    #[test]
    fn vitals_are_plausible() {
        let bp = |s, d| Vitals {
            systolic: Some(s),
            diastolic: Some(d),
            ..Vitals::default()
        };
        check(parse_vitals(bp(120, 80)), Ok(bp(120, 80)));
        check(parse_vitals(bp(80, 120)), Err("systolic"));
        check(parse_vitals(bp(400, 80)), Err("systolic"));
        check(parse_vitals(Vitals::default()), Err("vitals"));
        let half = Vitals {
            systolic: Some(120),
            ..Vitals::default()
        };
        check(parse_vitals(half), Err("diastolic"));
        let hot = Vitals {
            temperature_c: Some(f64::NAN),
            ..Vitals::default()
        };
        check(parse_vitals(hot), Err("temperatureC"));
        let spo2 = Vitals {
            spo2: Some(101),
            ..Vitals::default()
        };
        check(parse_vitals(spo2), Err("spo2"));
    }

    #[test]
    fn notes_keep_lines_and_refuse_other_controls() {
        check(
            parse_long_text("text", " Seen today.\r\nPlan: rest. ", MAX_NOTE),
            Ok("Seen today.\nPlan: rest.".to_string()),
        );
        check(parse_long_text("text", "a\u{0}b", MAX_NOTE), Err("text"));
        check(parse_long_text("text", "   ", MAX_NOTE), Err("text"));
        check(
            parse_long_text("text", &"x".repeat(MAX_NOTE + 1), MAX_NOTE),
            Err("text"),
        );
    }

    fn entry(details: Details, correction: Option<Correction>) -> MedicalRecord {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        MedicalRecord {
            id: MedicalRecordId(uuid::Uuid::from_u128(1)),
            patient_id: PatientId(uuid::Uuid::from_u128(2)),
            site: "NBO".into(),
            details,
            recorded_at: t,
            author: "dr.kamau".into(),
            author_doctor_id: None,
            appointment_id: None,
            correction,
            created_at: t,
        }
    }

    fn note(text: &str) -> Details {
        Details::Note(Note { text: text.into() })
    }

    #[test]
    fn corrections_keep_to_one_patient_and_one_type() {
        let original = entry(note("Seen."), None);
        let patient = original.patient_id;
        let other = PatientId(uuid::Uuid::from_u128(9));
        let vitals = Details::Vitals(Vitals {
            pulse: Some(70),
            ..Vitals::default()
        });
        let retraction = entry(
            note("Seen."),
            Some(Correction {
                of: MedicalRecordId(uuid::Uuid::from_u128(7)),
                kind: CorrectionKind::Retracts,
                reason: "wrong patient".into(),
            }),
        );
        use CorrectionKind::*;
        for (what, original, patient, details, kind, ok) in [
            (
                "an amendment",
                &original,
                patient,
                note("Seen again."),
                Amends,
                true,
            ),
            (
                "a retraction",
                &original,
                patient,
                note("Seen."),
                Retracts,
                true,
            ),
            (
                "another patient",
                &original,
                other,
                note("Seen."),
                Amends,
                false,
            ),
            ("another type", &original, patient, vitals, Amends, false),
            (
                "a retraction with new words",
                &original,
                patient,
                note("No."),
                Retracts,
                false,
            ),
            (
                "correcting a retraction",
                &retraction,
                patient,
                note("Seen."),
                Amends,
                false,
            ),
        ] {
            assert_eq!(
                check_correction(original, patient, &details, kind).is_ok(),
                ok,
                "{what}"
            );
        }
    }

    #[test]
    fn what_is_current() {
        let plain = entry(note("Seen."), None);
        let retraction = entry(
            note("Seen."),
            Some(Correction {
                of: plain.id,
                kind: CorrectionKind::Retracts,
                reason: "wrong patient".into(),
            }),
        );
        assert!(is_current(&plain, false));
        assert!(!is_current(&plain, true));
        assert!(!is_current(&retraction, false));
    }

    #[test]
    fn stored_details_read_back_and_are_checked() {
        let rx = Details::Prescription(Prescription {
            drug: "Amoxicillin".into(),
            dose: "500 mg".into(),
            route: "oral".into(),
            frequency: "three times a day".into(),
            duration_days: Some(7),
            quantity: Some(21),
            status: MedicationStatus::Active,
        });
        let text = rx.to_json().to_string();
        check(Details::from_json(EntryType::Prescription, &text), Ok(rx));
        check(
            Details::from_json(
                EntryType::Diagnosis,
                r#"{"code":"nope","text":"x","status":"ACTIVE"}"#,
            ),
            Err("code"),
        );
        check(Details::from_json(EntryType::Note, "{}"), Err("details"));
    }

    #[test]
    fn intake_allergies_become_entries_once() {
        let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let cases: &[(&[&str], &[&str], &[&str])] = &[
            (&["Penicillin", "Latex"], &[], &["Penicillin", "Latex"]),
            (&["Penicillin", " latex "], &["LATEX"], &["Penicillin"]),
            (&["Penicillin", "penicillin", "  "], &[], &["Penicillin"]),
            (&["Penicillin"], &["penicillin"], &[]),
            (&[], &["Latex"], &[]),
        ];
        for (intake, recorded, want) in cases {
            assert_eq!(
                intake_allergies_to_record(&v(intake), &v(recorded)),
                v(want),
                "{intake:?} {recorded:?}"
            );
        }
    }
}
