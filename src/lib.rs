//! certradius — an 802.1X EAP-TLS RADIUS authentication server.
//!
//! ```text
//!    UDP :1812 (IPv4 and IPv6)
//!       |
//!   [shell] server::run ............ owns sockets, the clock, the OS RNG, task spawning, signals
//!       |  (from, datagram, now, rng)
//!   [core] server::handle::Core::handle_datagram   (synchronous; now and rng are parameters)
//!       |   clients.lookup(from)          unknown NAS: drop + count
//!       |   dedup                         retransmission: resend the cached reply (RFC 5080 §2.2.2)
//!       |   radius::Packet::decode        malformed / bad Message-Authenticator: drop + count
//!       |   sessions.checkout(State) or Session::start(identity)
//!       |   Session::handle(eap, cx, request, now) -> Step
//!       |        eap::{packet, tls_frame, fragment}   framing, knows nothing of TLS
//!       |        tls::TlsEngine                        rustls over in-memory buffers
//!       |        policy::Policy::authorize             once, after the handshake
//!       |        keys                                  MSK/EMSK on success
//!       v   sessions.checkin; reply encode(step); dedup.put
//!    reply bytes -> shell send_to
//! ```
//!
//! RFC index: RADIUS RFC 2865 (packets), RFC 2548 (MS-MPPE keys), RFC 2868/3580 (VLAN attributes),
//! RFC 3579 (RADIUS support for EAP, Message-Authenticator), RFC 5080 (retransmissions),
//! RFC 5997 (Status-Server), RFC 3748 (EAP), RFC 5216 (EAP-TLS with TLS 1.2),
//! RFC 9190 (EAP-TLS with TLS 1.3), RFC 5705 (TLS exporters).
//!
//! Glossary: the *peer* (supplicant) is the device being authenticated; the *NAS* (access point or
//! switch, the EAP pass-through *authenticator*) relays EAP inside RADIUS to us, the
//! *authentication server*.

pub mod accounting;
pub mod authz;
pub mod config;
pub mod core;
pub(crate) mod crypto;
pub mod directory;
pub mod eap;
pub mod escape;
pub mod hex;
pub mod import;
pub mod live;
pub mod mab;
pub mod radius;
pub mod reason;
pub mod server;
pub mod session;
pub mod timefmt;
pub mod tls;
pub mod x509;
