//! Typed record identifiers. Every record is keyed by a UUIDv7 minted offline by the
//! writer; the types keep a patient id from being passed where a doctor id belongs.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::DomainError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim())
                    .map($name)
                    .map_err(|_| DomainError::invalid($field, format!("{s:?} is not a valid id")))
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                $name(u)
            }
        }
    };
}

id_type!(
    /// A patient record.
    PatientId, "patientId");
id_type!(
    /// A doctor record.
    DoctorId, "doctorId");
id_type!(
    /// A doctor's weekly schedule at one site.
    ScheduleId, "scheduleId");
id_type!(
    /// A doctor's leave (an exception to the schedule).
    LeaveId, "leaveId");
id_type!(
    /// An appointment.
    AppointmentId, "appointmentId");
id_type!(
    /// A notification to a patient or a doctor.
    NotificationId, "notificationId");
id_type!(
    /// A login account.
    UserId, "userId");
id_type!(
    /// A clinic's request for a patient registered at another clinic.
    PatientRequestId, "requestId");
id_type!(
    /// One clinical entry of a patient's medical record (append-only).
    MedicalRecordId, "medicalRecordId");
id_type!(
    /// An invoice (written once; voided by a separate record).
    InvoiceId, "invoiceId");
id_type!(
    /// The record that voids an invoice.
    InvoiceVoidId, "invoiceVoidId");
id_type!(
    /// A payment or refund against an invoice.
    PaymentId, "paymentId");
id_type!(
    /// A service of a site's price list.
    PriceItemId, "priceItemId");
id_type!(
    /// A patient's insurance coverage.
    CoverageId, "coverageId");
id_type!(
    /// An insurance claim for (part of) an invoice.
    ClaimId, "claimId");
id_type!(
    /// A patient's choice of the channels they are messaged on.
    MessagePreferenceId, "messagePreferenceId");
id_type!(
    /// A message waiting in (or sent from) a node's outbox: also its idempotency key.
    OutboundMessageId, "messageId");
