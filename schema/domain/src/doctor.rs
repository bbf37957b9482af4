//! Doctors: profile, specializations, licence and whether they still practise here.

use chrono::{DateTime, Utc};

use crate::{DoctorId, DomainError, patient::parse_text};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doctor {
    pub id: DoctorId,
    pub name: String,
    pub specializations: Vec<String>,
    pub licence_number: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Specializations: 1 to 10, each trimmed text, duplicates (case-insensitive) removed.
pub fn parse_specializations(items: &[String]) -> Result<Vec<String>, DomainError> {
    if items.is_empty() || items.len() > 10 {
        return Err(DomainError::invalid(
            "specializations",
            "a doctor has 1 to 10 specializations",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let s = parse_text("specializations", item, 80)?;
        if !out.iter().any(|x| x.eq_ignore_ascii_case(&s)) {
            out.push(s);
        }
    }
    Ok(out)
}

pub fn parse_licence_number(s: &str) -> Result<String, DomainError> {
    let t = parse_text("licenceNumber", s, 40)?;
    if !t
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | ' '))
    {
        return Err(DomainError::invalid(
            "licenceNumber",
            "letters, digits, '-', '/' and spaces only",
        ));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specializations() {
        assert_eq!(
            parse_specializations(&["Cardiology".into(), "cardiology".into()]),
            Ok(vec!["Cardiology".to_string()])
        );
        assert!(parse_specializations(&[]).is_err());
        assert!(parse_specializations(&vec!["a".to_string(); 11]).is_err());
    }

    #[test]
    fn licences() {
        assert!(parse_licence_number("KMPDC/A-1234").is_ok());
        assert!(parse_licence_number("x;drop").is_err());
    }
}
