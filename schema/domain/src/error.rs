//! The one error type of the domain rules: what was wrong with an input or a write.

use crate::appointment::AppointmentStatus;

/// Why the domain refused an input or a change. Every variant is the caller's to fix;
/// none means a bug or an I/O failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// A field's value is malformed or out of range.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The appointment lifecycle does not allow this step.
    #[error("an appointment cannot go from {from} to {to}")]
    InvalidTransition {
        from: AppointmentStatus,
        to: AppointmentStatus,
    },
    /// The requested start is not a slot of the doctor's schedule at this site.
    #[error("{0} is not a bookable slot of this doctor's schedule")]
    NotASlot(String),
    /// The records as they stand do not allow the write (a payment beyond what is
    /// owed, voiding a paid invoice): valid input, wrong moment.
    #[error("{0}")]
    Refused(String),
}

impl DomainError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        DomainError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
