//! TLS inside EAP, driven purely in memory (RFC 5216 §2.1, RFC 9190 §2.1).
//!
//! [`TlsEngine`] wraps a rustls `ServerConnection`: the EAP layer hands it whole reassembled TLS
//! messages with [`TlsEngine::feed`] and collects the server's flight with
//! [`TlsEngine::take_output`]. No sockets, no clock: rustls reads the time (certificate and CRL
//! validity, ticket ages) through its time provider, which `clock.rs` feeds from the `now` of the
//! conversation being processed, and so do our ticketer and session cache.
//!
//! Choices made here, deliberately:
//! - Client certificates are mandatory and verified by rustls's WebPKI verifier against the
//!   configured CA files, so a completed handshake *is* the proof that the chain validated;
//!   [`VerifiedPeer`] can only be built from such a handshake.
//! - Session resumption (see `resumption.rs`) is on by default; rustls does not re-verify the
//!   client certificate on resumption, so [`recheck_resumed`] runs the verifier again on the
//!   restored chain before the policy sees it.
//! - TLS 1.3 (RFC 9190 §2.5): once the handshake is complete the server sends one octet 0x00 of
//!   application data as the protected success indication.

pub mod ca_certs;
pub mod client_hello;
pub mod client_verifier;
pub mod clock;
pub mod engine;
pub mod keys;
pub mod resumption;
pub mod setup;
mod verified;
mod verified_signatures;

pub use crate::x509::pem::{PemError, load_certs, load_key};
pub use ca_certs::CaCerts;
pub use client_verifier::{CertName, take_refused};
pub use clock::ConversationClock;
pub use engine::{TlsEngine, TlsFailure, version_name};
pub use setup::{
    NasTls, TlsSetup, TlsSetupError, Variant, VersionRange, client_roots, provider, rebuild,
    rebuild_for, resumption_from_config, server_config, server_config_for, versions, warm_up,
};
pub use verified::{VerifiedChains, VerifiedPeer, recheck_resumed};
