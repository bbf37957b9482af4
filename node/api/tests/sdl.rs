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
    // At the node the seed's mutations take the seed's inputs exactly.
    for needle in [
        "createPatient(input: PatientInput!): Patient!",
        "bookAppointment(input: AppointmentInput!): Appointment!",
        "appointmentUpdated(patientId: ID): Appointment!",
    ] {
        assert!(sdl.contains(needle), "the schema lost {needle:?}");
    }
}

/// The seed's types and operations, exactly as CONTRACT.md lists them: clients written
/// from the product's first description use these names and types.
#[test]
fn the_seed_types_are_served_exactly() {
    let unserved = healsync_test_support::contract::unserved(&healsync_node_api::schema_sdl());
    assert!(
        unserved.is_empty(),
        "the node does not serve: {unserved:#?}"
    );
}
