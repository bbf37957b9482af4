//! Integration tests of `healsync-node` as users meet it: a real process, a real SQLite
//! file, real HTTP and real graphql-transport-ws WebSocket clients.

mod access;
mod architecture;
mod audit;
mod bad_input;
mod billing;
mod doctor;
mod faults;
mod hub_api;
mod messages;
mod metrics;
mod packaging;
mod process;
mod records;
mod scheduling;
mod sync;
mod technician;
mod web;

#[path = "../common/mod.rs"]
mod common;

pub use common::*;
