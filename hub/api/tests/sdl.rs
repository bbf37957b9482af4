//! The committed SDL (`schema/hub.graphql`) must equal what the hub serves, so every
//! change to the admins' API shows in review. To update it after an intended change:
//! `cargo run -p healsync-hub -- schema > schema/hub.graphql`.

#[test]
fn committed_hub_sdl_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema/hub.graphql");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == healsync_hub_api::schema_sdl(),
        "schema/hub.graphql is out of date: run `cargo run -p healsync-hub -- schema > schema/hub.graphql`"
    );
}

/// The hub serves the seed's types and operations as the node does (CONTRACT.md: "The
/// hub serves the same types ... and the same queries and subscriptions").
#[test]
fn the_seed_types_are_served_exactly() {
    let unserved = healsync_test_support::contract::unserved(&healsync_hub_api::schema_sdl());
    assert!(unserved.is_empty(), "the hub does not serve: {unserved:#?}");
}

/// Mutations at the hub name the site they write to.
#[test]
fn the_hubs_seed_mutations_name_their_site() {
    let sdl = healsync_hub_api::schema_sdl();
    for needle in [
        "createPatient(input: HubPatientInput!): Patient!",
        "bookAppointment(input: HubAppointmentInput!): Appointment!",
    ] {
        assert!(sdl.contains(needle), "the hub's schema lost {needle:?}");
    }
    for input in ["input HubPatientInput", "input HubAppointmentInput"] {
        let block = sdl.split(input).nth(1).and_then(|b| b.split('}').next());
        assert!(
            block.is_some_and(|b| b.contains("site: String!")),
            "{input} names no site"
        );
    }
}
