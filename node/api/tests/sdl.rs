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
        "availableSlots(from: String, to: String): [TimeSlot!]!",
    ] {
        assert!(sdl.contains(needle), "the schema lost {needle:?}");
    }
    for status in ["BOOKED", "CHECKED_IN", "COMPLETED", "CANCELLED", "NO_SHOW"] {
        assert!(sdl.contains(status));
    }
}
