//! Patients: demographics, contact, allergies and the site-minted medical record number.

use chrono::{DateTime, NaiveDate, Utc};
use unicode_normalization::UnicodeNormalization;

use crate::{DomainError, PatientId};

/// Administrative sex as recorded at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

impl Sex {
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "FEMALE",
            Sex::Male => "MALE",
            Sex::Other => "OTHER",
            Sex::Unknown => "UNKNOWN",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "FEMALE" => Ok(Sex::Female),
            "MALE" => Ok(Sex::Male),
            "OTHER" => Ok(Sex::Other),
            "UNKNOWN" => Ok(Sex::Unknown),
            _ => Err(DomainError::invalid("sex", format!("unknown value {s:?}"))),
        }
    }
}

/// A postal address; every part is optional because clinics record what they have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

/// Whom to call in an emergency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyContact {
    pub name: String,
    pub phone: String,
    pub relationship: Option<String>,
}

/// A registered patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    pub id: PatientId,
    /// Medical record number, `SITE-000123`: minted offline by the registering site.
    pub mrn: String,
    /// The site that registered the patient.
    pub site: String,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub sex: Option<Sex>,
    pub address: Address,
    pub emergency_contact: Option<EmergencyContact>,
    pub allergies: Vec<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub const MAX_TEXT: usize = 200;
pub const MAX_ALLERGIES: usize = 50;

/// A required, trimmed, bounded piece of text.
pub fn parse_text(field: &'static str, s: &str, max: usize) -> Result<String, DomainError> {
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
    if t.chars().any(|c| c.is_control()) {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(t.to_string())
}

/// Optional text: `None` or blank means "not recorded".
pub fn parse_opt_text(
    field: &'static str,
    s: Option<&str>,
    max: usize,
) -> Result<Option<String>, DomainError> {
    match s.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => parse_text(field, t, max).map(Some),
    }
}

pub fn parse_name(s: &str) -> Result<String, DomainError> {
    parse_text("name", s, MAX_TEXT)
}

/// A plausible e-mail address (one `@`, a dot in the domain, no spaces), lower-cased.
pub fn parse_email(s: &str) -> Result<String, DomainError> {
    let t = parse_text("email", s, 254)?.to_lowercase();
    let valid = match t.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !t.contains(char::is_whitespace)
        }
        None => false,
    };
    if valid {
        Ok(t)
    } else {
        Err(DomainError::invalid(
            "email",
            format!("{s:?} is not an e-mail address"),
        ))
    }
}

/// A phone number: digits with an optional leading `+` and the usual separators,
/// 6 to 15 digits (E.164 allows at most 15).
pub fn parse_phone(field: &'static str, s: &str) -> Result<String, DomainError> {
    let t = parse_text(field, s, 32)?;
    let digits = t.chars().filter(char::is_ascii_digit).count();
    let allowed = t.chars().enumerate().all(|(i, c)| {
        c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.') || (c == '+' && i == 0)
    });
    if !allowed || !(6..=15).contains(&digits) {
        return Err(DomainError::invalid(
            field,
            format!("{s:?} is not a phone number"),
        ));
    }
    Ok(t)
}

/// Digits of a phone number, for search.
pub fn phone_digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The most words one patient search uses.
pub const MAX_SEARCH_WORDS: usize = 8;

/// Words of a text as patient search splits it: runs of letters and digits, lower
/// case.
/// Lower-case words of letters and digits, diacritics folded ("José" is "jose"), as
/// the node's full-text index reads them (`remove_diacritics`).
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.nfd()
                .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
                .collect::<String>()
                .to_lowercase()
        })
}

/// The words of a patient search (at most [`MAX_SEARCH_WORDS`]): a patient is found
/// when each is the start of one of the patient's [`search_terms`].
pub fn search_words(query: &str) -> Vec<String> {
    words(query).take(MAX_SEARCH_WORDS).collect()
}

/// The words a patient is found by: those of the name, the MRN and the e-mail, and the
/// phone number's digits as one word (the node's full-text index holds the same).
pub fn search_terms(p: &Patient) -> Vec<String> {
    let mut terms: Vec<String> = words(&p.name)
        .chain(words(&p.mrn))
        .chain(words(&p.email))
        .chain(
            p.phone
                .as_deref()
                .map(phone_digits)
                .filter(|d| !d.is_empty()),
        )
        .collect();
    terms.sort();
    terms.dedup();
    terms
}

/// An ISO 8601 calendar date (`1984-03-01`) that is not in the future and not absurdly old.
pub fn parse_date_of_birth(s: &str, today: NaiveDate) -> Result<NaiveDate, DomainError> {
    let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        DomainError::invalid("dateOfBirth", format!("{s:?} is not a date (YYYY-MM-DD)"))
    })?;
    if d > today {
        return Err(DomainError::invalid("dateOfBirth", "is in the future"));
    }
    if today.years_since(d).unwrap_or(0) > 130 {
        return Err(DomainError::invalid(
            "dateOfBirth",
            "is more than 130 years ago",
        ));
    }
    Ok(d)
}

/// A list of allergies: each one trimmed text, duplicates removed, order kept.
pub fn parse_allergies(items: &[String]) -> Result<Vec<String>, DomainError> {
    if items.len() > MAX_ALLERGIES {
        return Err(DomainError::invalid(
            "allergies",
            format!("at most {MAX_ALLERGIES} entries"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let a = parse_text("allergies", item, 100)?;
        if !out.iter().any(|x| x.eq_ignore_ascii_case(&a)) {
            out.push(a);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: PartialEq + std::fmt::Debug>(
        f: impl Fn(&str) -> Result<T, DomainError>,
        cases: &[(&str, Option<T>)],
    ) {
        for (input, expected) in cases {
            assert_eq!(&f(input).ok(), expected, "input {input:?}");
        }
    }

    #[test]
    fn search_words_fold_case_diacritics_and_punctuation() {
        for (query, expected) in [
            ("José Müller", vec!["jose", "muller"]),
            ("  NJERI,amina ", vec!["njeri", "amina"]),
            ("Ñandú-Åsa O'Brien", vec!["nandu", "asa", "o", "brien"]),
            ("+254 712", vec!["254", "712"]),
            ("%_*", vec![]),
            // At most MAX_SEARCH_WORDS (8).
            (
                "a b c d e f g h i",
                vec!["a", "b", "c", "d", "e", "f", "g", "h"],
            ),
        ] {
            let expected: Vec<String> = expected.into_iter().map(String::from).collect();
            assert_eq!(search_words(query), expected, "{query:?}");
        }
    }

    #[test]
    fn emails() {
        check(
            parse_email,
            &[
                ("Amina@Example.org", Some("amina@example.org".to_string())),
                (" a@b.co ", Some("a@b.co".to_string())),
                ("no-at.example.org", None),
                ("a@b", None),
                ("a@@b.org", None),
                ("a b@c.org", None),
                ("@c.org", None),
                ("", None),
            ],
        );
    }

    #[test]
    fn phones() {
        check(
            |s| parse_phone("phone", s),
            &[
                ("+254 712 345 678", Some("+254 712 345 678".to_string())),
                ("(020) 555-0101", Some("(020) 555-0101".to_string())),
                ("12345", None),
                ("+1 2345 6789 0123 4567", None),
                ("call me", None),
                ("12+345678", None),
            ],
        );
    }

    #[test]
    fn dates_of_birth() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");
        check(
            |s| parse_date_of_birth(s, today),
            &[
                ("1984-03-01", NaiveDate::from_ymd_opt(1984, 3, 1)),
                ("2026-11-24", Some(today)),
                ("2026-11-25", None),
                ("1890-01-01", None),
                ("1984-02-30", None),
                ("01/03/1984", None),
                ("1984-03-01T00:00:00Z", None),
            ],
        );
    }

    #[test]
    fn text_bounds() {
        assert!(parse_name(&"x".repeat(MAX_TEXT)).is_ok());
        assert!(parse_name(&"x".repeat(MAX_TEXT + 1)).is_err());
        assert!(parse_name("   ").is_err());
        assert!(parse_name("a\u{0}b").is_err());
        assert_eq!(parse_opt_text("city", Some("  "), 10), Ok(None));
    }

    #[test]
    fn allergies_are_deduplicated() {
        let got = parse_allergies(&["Penicillin".into(), " penicillin ".into(), "Latex".into()]);
        assert_eq!(got, Ok(vec!["Penicillin".to_string(), "Latex".to_string()]));
        assert!(parse_allergies(&vec!["x".to_string(); 51]).is_err());
    }
}
