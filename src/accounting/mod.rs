//! RADIUS accounting (RFC 2866), sans IO: an Accounting-Request checked and decoded into an
//! [`AcctRecord`], the record as one JSON line, and the Accounting-Response.
//!
//! - RFC 2866 §3: the Request Authenticator of an Accounting-Request is
//!   `MD5(Code + Identifier + Length + 16 zero octets + Attributes + Secret)`; a mismatch (a wrong
//!   shared secret) is silently discarded, as RFC 2866 §3 requires.
//! - RFC 3579 §3.2 / RFC 5080 §2.2.2: a Message-Authenticator, when present, is checked too
//!   (computed with a zeroed Authenticator field, as for other hash-authenticated requests).
//! - RFC 2866 §4.1: the server answers only after the record is stored; the shell
//!   (`server/accounting.rs`) holds the response until the record is durable.
//! - RFC 2866 §5 and RFC 2869 §5.1–5.3: the attributes recorded (status type, session id, octets
//!   and Gigawords, packets, session time, terminate cause, Event-Timestamp, interim interval).

pub mod record;
pub mod sql;

pub use record::{AcctRecord, StatusType, decode};
