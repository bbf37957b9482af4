//! Appointments and their lifecycle.
//!
//! ```text
//! BOOKED ──> CHECKED_IN ──> COMPLETED
//!   │  │          │
//!   │  └> NO_SHOW └──> CANCELLED
//!   └───> CANCELLED
//! ```
//! Rescheduling moves a BOOKED appointment to another slot. A request for the status the
//! appointment already has is a no-op (so a retried request is harmless).

use std::fmt;

use chrono::{DateTime, Utc};

use crate::{AppointmentId, DoctorId, DomainError, PatientId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AppointmentStatus {
    Booked,
    CheckedIn,
    Completed,
    Cancelled,
    NoShow,
}

impl AppointmentStatus {
    pub const ALL: [AppointmentStatus; 5] = [
        AppointmentStatus::Booked,
        AppointmentStatus::CheckedIn,
        AppointmentStatus::Completed,
        AppointmentStatus::Cancelled,
        AppointmentStatus::NoShow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AppointmentStatus::Booked => "BOOKED",
            AppointmentStatus::CheckedIn => "CHECKED_IN",
            AppointmentStatus::Completed => "COMPLETED",
            AppointmentStatus::Cancelled => "CANCELLED",
            AppointmentStatus::NoShow => "NO_SHOW",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| DomainError::invalid("status", format!("unknown status {s:?}")))
    }

    /// The notice a change to this status sends the patient and the doctor, if any.
    pub fn notice_for(to: AppointmentStatus) -> Option<&'static str> {
        (to == AppointmentStatus::Cancelled).then_some("APPOINTMENT_CANCELLED")
    }

    /// Whether an appointment in this status keeps its slot (and its patient's time).
    pub fn holds_time(self) -> bool {
        matches!(
            self,
            AppointmentStatus::Booked | AppointmentStatus::CheckedIn | AppointmentStatus::Completed
        )
    }

    /// No step leads out of a final status.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            AppointmentStatus::Completed | AppointmentStatus::Cancelled | AppointmentStatus::NoShow
        )
    }

    /// One step of the lifecycle, from `self` to `to`.
    pub fn can_step_to(self, to: AppointmentStatus) -> bool {
        use AppointmentStatus::*;
        matches!(
            (self, to),
            (Booked, CheckedIn)
                | (Booked, Cancelled)
                | (Booked, NoShow)
                | (CheckedIn, Completed)
                | (CheckedIn, Cancelled)
        )
    }

    /// Whether `to` can be reached from `self` by zero or more steps.
    pub fn reaches(self, to: AppointmentStatus) -> bool {
        self == to
            || AppointmentStatus::ALL
                .into_iter()
                .any(|mid| self.can_step_to(mid) && mid.reaches(to))
    }

    /// Checks a requested change. `Ok(false)` means "already there, nothing to do".
    pub fn transition(self, to: AppointmentStatus) -> Result<bool, DomainError> {
        if self == to {
            Ok(false)
        } else if self.can_step_to(to) {
            Ok(true)
        } else {
            Err(DomainError::InvalidTransition { from: self, to })
        }
    }

    /// The merge rule for two statuses written concurrently at two places: if one can be
    /// reached from the other, the later one in the lifecycle wins (both writers agree on
    /// the path); otherwise (two different final outcomes, such as COMPLETED and
    /// CANCELLED) there is no rule and the caller must raise a conflict for a person.
    pub fn merge_concurrent(
        a: AppointmentStatus,
        b: AppointmentStatus,
    ) -> Option<AppointmentStatus> {
        if a.reaches(b) {
            Some(b)
        } else if b.reaches(a) {
            Some(a)
        } else {
            None
        }
    }
}

impl fmt::Display for AppointmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appointment {
    pub id: AppointmentId,
    pub patient_id: PatientId,
    pub doctor_id: DoctorId,
    /// The site whose schedule holds the slot: that site owns the appointment.
    pub site: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub status: AppointmentStatus,
    pub reason: Option<String>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Appointment {
    /// Moving to another slot is only for appointments that have not started.
    /// Moves the appointment to `to` by the lifecycle rule, stamping `now`. `Ok(false)`
    /// (and nothing changed) when it already has that status.
    pub fn change_status(
        &mut self,
        to: AppointmentStatus,
        now: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        if !self.status.transition(to)? {
            return Ok(false);
        }
        self.status = to;
        self.updated_at = now;
        Ok(true)
    }

    pub fn check_reschedulable(&self) -> Result<(), DomainError> {
        if self.status == AppointmentStatus::Booked {
            Ok(())
        } else {
            Err(DomainError::invalid(
                "id",
                format!("a {} appointment cannot be rescheduled", self.status),
            ))
        }
    }
}

/// Parses an RFC 3339 instant (`2026-11-23T09:30:00Z`, offsets allowed) into UTC.
pub fn parse_instant(field: &'static str, s: &str) -> Result<DateTime<Utc>, DomainError> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| DomainError::invalid(field, format!("{s:?} is not an RFC 3339 date-time")))
}

#[cfg(test)]
mod tests {
    use super::AppointmentStatus::{self, *};

    #[test]
    fn lifecycle_table() {
        // Every (from, to) pair, written out: the table is the specification.
        let allowed = [
            (Booked, CheckedIn),
            (Booked, Cancelled),
            (Booked, NoShow),
            (CheckedIn, Completed),
            (CheckedIn, Cancelled),
        ];
        for from in AppointmentStatus::ALL {
            for to in AppointmentStatus::ALL {
                let got = from.transition(to);
                if from == to {
                    assert_eq!(got, Ok(false), "{from} -> {to}");
                } else if allowed.contains(&(from, to)) {
                    assert_eq!(got, Ok(true), "{from} -> {to}");
                } else {
                    assert!(got.is_err(), "{from} -> {to} must be refused");
                }
            }
        }
    }

    #[test]
    fn final_statuses_lead_nowhere() {
        for from in AppointmentStatus::ALL.into_iter().filter(|s| s.is_final()) {
            for to in AppointmentStatus::ALL {
                assert!(!from.can_step_to(to));
            }
        }
    }

    #[test]
    fn concurrent_merge_rule() {
        let cases = [
            (Booked, CheckedIn, Some(CheckedIn)),
            (Booked, Completed, Some(Completed)),
            (CheckedIn, Cancelled, Some(Cancelled)),
            (Booked, NoShow, Some(NoShow)),
            (Completed, Cancelled, None),
            (NoShow, CheckedIn, None),
            (NoShow, Completed, None),
            (Cancelled, Cancelled, Some(Cancelled)),
        ];
        for (a, b, expected) in cases {
            assert_eq!(
                AppointmentStatus::merge_concurrent(a, b),
                expected,
                "{a} + {b}"
            );
            assert_eq!(
                AppointmentStatus::merge_concurrent(b, a),
                expected,
                "{b} + {a}"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for s in AppointmentStatus::ALL {
            assert_eq!(AppointmentStatus::parse(s.as_str()), Ok(s));
        }
        assert!(AppointmentStatus::parse("booked").is_err());
    }
}
