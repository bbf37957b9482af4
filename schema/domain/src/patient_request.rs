//! A clinic asking the hub for a patient registered at another clinic (by the medical
//! record number on the patient's card). The request is a record like any other: made
//! offline it waits in the change log, and the hub answers it by editing the same
//! record, so the answer and the patient arrive at the clinic by sync.

use std::fmt;

use chrono::{DateTime, Utc};

/// Requests the hub answers for one site within a day; beyond them it refuses.
pub const REQUESTS_PER_SITE_PER_DAY: i64 = 20;

use crate::{DomainError, PatientId, PatientRequestId, SiteCode};

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestStatus {
    /// Not yet answered by the hub (the clinic may be offline).
    Pending,
    /// The hub shared the patient with the clinic; it arrives with its history.
    Shared,
    /// No patient has that number and that date of birth (the two are one answer:
    /// guessing numbers tells nothing).
    NotFound,
    /// The hub would not answer: this clinic asked for too many patients today.
    Refused,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 4] = [
        RequestStatus::Pending,
        RequestStatus::Shared,
        RequestStatus::NotFound,
        RequestStatus::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "PENDING",
            RequestStatus::Shared => "SHARED",
            RequestStatus::NotFound => "NOT_FOUND",
            RequestStatus::Refused => "REFUSED",
        }
    }

    pub fn parse(s: &str) -> Option<RequestStatus> {
        RequestStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request for one patient, by medical record number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientRequest {
    pub id: PatientRequestId,
    /// The number asked for, as `SITE-000123`.
    pub mrn: String,
    /// The evidence that the patient is at the desk: their date of birth, as they say
    /// it. The hub shares the patient only when number and date both match.
    pub date_of_birth: Option<chrono::NaiveDate>,
    /// Who asked (user name at the clinic), for the record of who moved a patient.
    pub requested_by: Option<String>,
    pub status: RequestStatus,
    /// The patient the hub shared (with `Shared`).
    pub patient_id: Option<PatientId>,
    /// The hub's explanation, for the person who asked.
    pub answer: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A medical record number as printed on a patient's card: a site code, a dash and
/// digits (`nbo-42` is read as `NBO-000042`).
pub fn parse_mrn(s: &str) -> Result<String, DomainError> {
    let bad = || DomainError::invalid("mrn", "a medical record number looks like NBO-000123");
    let (site, number) = s.trim().split_once('-').ok_or_else(bad)?;
    let site = SiteCode::parse(site).map_err(|_| bad())?;
    let number = number.trim();
    if number.is_empty() || number.len() > 12 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let seq: u64 = number.parse().map_err(|_| bad())?;
    Ok(site.mrn(seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_numbers() {
        for (input, expected) in [
            ("NBO-000042", Some("NBO-000042")),
            (" nbo-42 ", Some("NBO-000042")),
            ("MSA-1234567", Some("MSA-1234567")),
            ("NBO000042", None),
            ("NBO-", None),
            ("-000042", None),
            ("NBO-12a", None),
            ("N-000001", None),
            ("NBO--1", None),
            ("NBO-0000000000001", None),
        ] {
            assert_eq!(parse_mrn(input).ok().as_deref(), expected, "{input:?}");
        }
    }

    #[test]
    fn statuses_round_trip() {
        for s in RequestStatus::ALL {
            assert_eq!(RequestStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(RequestStatus::parse("pending"), None);
    }
}
