//! The seed's schema as `CONTRACT.md` lists it ("The seed's types, exactly" and the
//! seed's operations), checked against the SDL a server serves: the node and the hub
//! serve the same types, so one list is checked against both.

use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

/// `(type, field, type as served)`: each must exist with exactly this type.
pub const SEED_FIELDS: &[(&str, &str, &str)] = &[
    ("Patient", "id", "ID!"),
    ("Patient", "name", "String!"),
    ("Patient", "email", "String!"),
    ("Patient", "phone", "String"),
    ("Patient", "dateOfBirth", "String"),
    ("Patient", "medicalHistory", "[MedicalRecord!]!"),
    ("Patient", "appointments", "[Appointment!]!"),
    ("Appointment", "id", "ID!"),
    ("Appointment", "patient", "Patient!"),
    ("Appointment", "doctor", "Doctor!"),
    ("Appointment", "scheduledAt", "String!"),
    ("Appointment", "status", "AppointmentStatus!"),
    ("Appointment", "notes", "String"),
    ("Doctor", "id", "ID!"),
    ("Doctor", "name", "String!"),
    ("Doctor", "specialization", "String!"),
    ("Doctor", "availableSlots", "[TimeSlot!]!"),
    ("Doctor", "appointments", "[Appointment!]!"),
    ("TimeSlot", "start", "String!"),
    ("TimeSlot", "end", "String!"),
    ("Notification", "id", "ID!"),
    ("Notification", "message", "String!"),
    ("Notification", "type", "String!"),
    ("Notification", "timestamp", "String!"),
    ("Subscription", "appointmentUpdated", "Appointment!"),
    ("Subscription", "newNotification", "Notification!"),
    ("Subscription", "patientUpdated", "Patient!"),
];

/// The seed's operations with their arguments, as they begin in the SDL of either
/// server (the hub adds arguments after these, and its mutations' inputs name a site).
pub const SEED_OPERATIONS: &[&str] = &[
    "patients(limit: Int! = 50, offset: Int! = 0",
    "patient(id: ID!): Patient!",
    "appointments(date: String, doctorId: ID",
    "doctors(specialization: String",
    "updateAppointmentStatus(id: ID!, status: AppointmentStatus!): Appointment!",
    "appointmentUpdated(patientId: ID",
    "newNotification(userId: ID!",
    "patientUpdated(id: ID",
    "login(username: String!, password: String!): AuthPayload!",
    "availableSlots(from: String, to: String",
];

/// The seed's appointment statuses.
pub const SEED_STATUSES: &[&str] = &["BOOKED", "CHECKED_IN", "COMPLETED", "CANCELLED", "NO_SHOW"];

/// What `sdl` does not serve of the seed's schema, one line each (empty: all of it).
pub fn unserved(sdl: &str) -> Vec<String> {
    let doc = match async_graphql::parser::parse_schema(sdl) {
        Ok(doc) => doc,
        Err(e) => return vec![format!("the SDL does not parse: {e}")],
    };
    let field_type = |ty: &str, field: &str| -> Option<String> {
        doc.definitions.iter().find_map(|d| match d {
            TypeSystemDefinition::Type(t) if t.node.name.node.as_str() == ty => {
                match &t.node.kind {
                    TypeKind::Object(o) => o
                        .fields
                        .iter()
                        .find(|f| f.node.name.node.as_str() == field)
                        .map(|f| f.node.ty.node.to_string()),
                    _ => None,
                }
            }
            _ => None,
        })
    };
    let mut out = Vec::new();
    for (ty, field, expected) in SEED_FIELDS {
        match field_type(ty, field) {
            Some(served) if served == *expected => {}
            Some(served) => out.push(format!("{ty}.{field} is {served}, not {expected}")),
            None => out.push(format!("{ty}.{field} is missing")),
        }
    }
    for op in SEED_OPERATIONS {
        if !sdl.contains(op) {
            out.push(format!("the operation {op:?} is missing"));
        }
    }
    for status in SEED_STATUSES {
        if !sdl.contains(status) {
            out.push(format!("AppointmentStatus.{status} is missing"));
        }
    }
    out
}
