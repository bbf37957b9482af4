//! The committed SDL (`schema/healsync.graphql`) must equal what the code serves, so
//! every change to the public API shows in review. To update it after an intended
//! change: `cargo run -p healsync-node -- schema > schema/healsync.graphql`.

#[test]
fn committed_sdl_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema/healsync.graphql");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let actual = healsync_node_api::schema_sdl();
    assert!(
        committed == actual,
        "schema/healsync.graphql is out of date: run `cargo run -p healsync-node -- schema > schema/healsync.graphql`"
    );
}

#[test]
fn seed_operations_keep_their_names_and_arguments() {
    let sdl = healsync_node_api::schema_sdl();
    for needle in [
        "patients(limit: Int! = 50, offset: Int! = 0",
        "patient(id: ID!): Patient!",
        "appointments(date: String, doctorId: ID",
        "doctors(specialization: String",
        "createPatient(input: PatientInput!): Patient!",
        "bookAppointment(input: AppointmentInput!): Appointment!",
        "updateAppointmentStatus(id: ID!, status: AppointmentStatus!): Appointment!",
        "appointmentUpdated(patientId: ID): Appointment!",
        "newNotification(userId: ID!): Notification!",
        "patientUpdated(id: ID): Patient!",
        "login(username: String!, password: String!): AuthPayload!",
        "availableSlots(from: String, to: String, limit: Int! = 200): [TimeSlot!]!",
    ] {
        assert!(sdl.contains(needle), "the schema lost {needle:?}");
    }
    for status in ["BOOKED", "CHECKED_IN", "COMPLETED", "CANCELLED", "NO_SHOW"] {
        assert!(sdl.contains(status));
    }
}

/// The seed's types, exactly as CONTRACT.md lists them ("The seed's types, exactly"):
/// clients written from the product's first description use these names and types.
const SEED_FIELDS: &[(&str, &str, &str)] = &[
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

/// What the node does not serve yet, named so that this list only shrinks on purpose.
const NOT_YET: &[(&str, &str)] = &[];

#[test]
fn the_seed_types_are_served_exactly() {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let doc = async_graphql::parser::parse_schema(healsync_node_api::schema_sdl())
        .expect("the served SDL parses");
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
    let mut missing = vec![];
    for (ty, field, expected) in SEED_FIELDS {
        match field_type(ty, field) {
            Some(served) => assert_eq!(&served, expected, "{ty}.{field}"),
            None => missing.push((*ty, *field)),
        }
    }
    assert_eq!(missing, NOT_YET, "seed fields the node does not serve");
}
