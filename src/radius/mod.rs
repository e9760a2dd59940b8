//! RADIUS codec for the authentication server: packet decoding (RFC 2865 §3, §5),
//! packet building with Message-Authenticator (RFC 3579 §3.2) and Response
//! Authenticator (RFC 2865 §3), EAP-Message reassembly (RFC 3579 §3.1) and
//! MS-MPPE key encryption (RFC 2548 §2.4.2, §2.4.3).
//!
//! Decoding borrows the received datagram and validates the whole attribute area
//! once, so the accessors on [`Packet`] never fail afterwards. The request path's cheap
//! questions before that decode (State present? User-Name? the duplicate key) go through
//! [`peek`], the one raw attribute walker.

pub mod attr;
pub mod auth;
pub mod builder;
pub mod coa;
pub mod dictionary;
pub mod mppe;
pub mod packet;
pub mod peek;
pub mod secret;
pub mod stream;
pub mod v11;
pub(crate) mod value;

pub use auth::{AuthError, verify_message_authenticator, verify_response_authenticator};
pub use builder::{EncodeError, PacketBuilder};
pub use mppe::MppeError;
pub use packet::{Attribute, Code, DecodeError, Packet};
pub use secret::SharedSecret;
