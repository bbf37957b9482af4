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
