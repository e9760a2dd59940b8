//! The protocol core's request path: one datagram in, at most one out, with no sockets, clock or
//! task spawning (the shell in `server/` passes `now` and randomness in).
//!
//! RADIUS (RFC 2865 §3, RFC 3579 §3.2), retransmissions (RFC 5080 §2.2.2), Status-Server
//! (RFC 5997); the EAP-TLS conversation itself is `session/`.

pub mod attempts;
pub mod clients;
mod conversation;
pub(crate) mod dedup;
mod dump;
pub mod events;
pub(crate) mod guard;
pub mod handle;
mod learned;
mod log;
mod mab;
pub mod queue;
mod ratelimit;
pub mod readiness;
mod reload;
mod replies;
pub(crate) mod revocation;
pub(crate) mod sessions;
pub mod snapshot;
pub(crate) mod state_file;
pub mod stats;

pub use handle::{Core, Handled, Pending};
pub use snapshot::Snapshot;
