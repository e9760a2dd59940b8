//! Directory-backed authorization (LDAP, RFC 4511; Active Directory): the pure parts.
//!
//! [`filter`] turns the `[directory] user_filter` template and the verified certificate's facts
//! into an RFC 4515 search filter (every value escaped), and compares group DNs
//! (RFC 4514) for the rule match field `directory_group`.

pub mod client;
pub mod crl;
pub mod filter;
pub mod service;
