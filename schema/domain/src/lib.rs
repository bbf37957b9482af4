//! The HealSync domain model and its rules, free of I/O.
//!
//! Everything here is plain data and pure functions: record types for patients, doctors,
//! schedules, appointments, notifications, users, requests for patients held at
//! another clinic, append-only medical record entries and billing (invoices, payments,
//! voids, the price list); parsers that turn user input into valid values (parse, don't validate); and the rules that decide what a write may do
//! (the appointment lifecycle, which instants are bookable slots). No clocks, no random
//! numbers, no storage: callers pass `now` and fresh ids in, which keeps the rules
//! testable exhaustively. Only this crate decides what is a valid record.

pub mod appointment;
pub mod audit;
pub mod billing;
pub mod booking;
pub mod care;
pub mod clinical;
pub mod doctor;
pub mod error;
pub mod ids;
pub mod insurance;
pub mod messaging;
pub mod notification;
pub mod patient;
pub mod patient_request;
pub mod schedule;
pub mod site;
pub mod user;

pub use appointment::{Appointment, AppointmentStatus};
pub use billing::{Invoice, InvoiceVoid, Payment, PriceItem};
pub use clinical::{Details, EntryType, MedicalRecord};
pub use doctor::Doctor;
pub use error::DomainError;
pub use ids::*;
pub use insurance::{Claim, Coverage};
pub use messaging::MessagePreference;
pub use notification::{Audience, Notification};
pub use patient::{Address, EmergencyContact, Patient, Sex};
pub use patient_request::{PatientRequest, RequestStatus};
pub use schedule::{Leave, Schedule, Slot, WeeklyRule};
pub use site::SiteCode;
pub use user::{Role, User};
