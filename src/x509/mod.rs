//! X.509 certificate facts and checks beyond the chain rustls verifies: RFC 5280 §4.2 extensions
//! (key usage, EKU, SAN), §5 and §6.3 CRLs, and RFC 6960 OCSP.
//!
//! Every certificate this crate reads with x509-parser goes through [`parse_certificate`], so a
//! unit test can count how often a certificate was parsed (the client's leaf: once per
//! authentication, see [`facts::Leaf`]).

pub mod checks;
pub(crate) mod crl;
pub(crate) mod crl_fetch;
pub mod facts;
pub mod inventory;
pub(crate) mod ocsp;
pub mod pem;
pub mod rollover;

pub use facts::Leaf;

use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;

/// Parses one DER certificate (x509-parser); the rest of the input is returned as x509-parser
/// returns it.
pub(crate) fn parse_certificate(
    der: &[u8],
) -> Result<(&[u8], X509Certificate<'_>), x509_parser::nom::Err<X509Error>> {
    #[cfg(test)]
    parse_count::record(der);
    x509_parser::parse_x509_certificate(der)
}

/// [`parse_certificate`] with every extension left as its raw value (`X509Extension::value`),
/// for a caller that decodes the few it reads itself: decoding all of them eagerly (basic
/// constraints, key identifiers, EKU, CRL distribution points, ...) was more than half of parsing
/// a client's leaf, on every authentication.
pub(crate) fn parse_certificate_shallow(
    der: &[u8],
) -> Result<(&[u8], X509Certificate<'_>), x509_parser::nom::Err<X509Error>> {
    use x509_parser::nom::Parser;
    #[cfg(test)]
    parse_count::record(der);
    x509_parser::certificate::X509CertificateParser::new()
        .with_deep_parse_extensions(false)
        .parse(der)
}

/// How often this thread parsed a given certificate (tests only): the proof that the leaf is
/// parsed once per authentication.
#[cfg(test)]
pub(crate) mod parse_count {
    use std::cell::RefCell;

    thread_local! {
        static PARSED: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    pub(crate) fn record(der: &[u8]) {
        PARSED.with(|p| p.borrow_mut().push(der.to_vec()));
    }

    /// Forgets what this thread parsed so far.
    pub(crate) fn reset() {
        PARSED.with(|p| p.borrow_mut().clear());
    }

    /// How many times this thread parsed exactly `der` since the last [`reset`].
    pub(crate) fn of(der: &[u8]) -> usize {
        PARSED.with(|p| p.borrow().iter().filter(|d| d.as_slice() == der).count())
    }
}
