//! Directory-backed authorization (LDAP, RFC 4511; Active Directory).
//!
//! - [`filter`] (pure): turns the `[directory] user_filter` template and the verified
//!   certificate's facts into an RFC 4515 search filter (every value escaped), and compares
//!   group DNs (RFC 4514) for the rule match field `directory_group`.
//! - [`client`] (I/O, on the tokio runtime): the pooled, bound connection per URL, the search,
//!   the enabled check, the groups (nested ones with the Active Directory preset) and
//!   `objectSid` (MS-DTYP §2.4.2); the readiness probe.
//! - [`service`] (I/O): the positive/negative cache and the coalescing of identical lookups.
//!
//! The session never calls these: it returns a lookup as a step, the shell
//! (`server/directory.rs`) performs it here and hands the verdict back.

pub mod client;
pub mod crl;
mod entry;
pub mod filter;
pub mod service;
