//! The HealSync replication protocol between a clinic node and the hub, with no I/O.
//!
//! Log shipping with durable cursors, not per-document sync handshakes: the node
//! uploads its change log past the position the hub acknowledged; the hub acknowledges
//! a batch only after committing it; then the node pulls the hub's changes for its scope
//! past its own cursor. Both cursors are durable on their owner's side, so a session cut
//! at any byte resumes where it stopped, and a change sent twice is harmless (the hub
//! keys changes by hash). After its changes, a node ships its audit trail's events
//! past the last the hub stored (the hub says which in `Welcome`), so the chain has a
//! copy away from the clinic.
//!
//! This crate is the protocol only: [`frame`] turns messages into versioned, bounded,
//! optionally compressed frames and back (never panicking on arbitrary bytes);
//! [`session`] holds the node's and the hub's state machines, which take events and
//! return actions (send this, load that, commit this) for a driver to perform. No
//! sockets, clocks, tasks or storage live here, so every interleaving is testable.

pub mod frame;
pub mod message;
pub mod session;

pub use frame::{Decoder, FrameError, PROTOCOL_VERSION, encode};
pub use message::{AuditRecord, Change, Message, Refusal, RefusalCode, Rejection, RemoteChange};
