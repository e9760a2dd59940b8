//! X.509 certificate facts and checks beyond the chain rustls verifies: RFC 5280 §4.2 extensions
//! (key usage, EKU, SAN), §5 and §6.3 CRLs, and RFC 6960 OCSP.

pub mod checks;
pub(crate) mod crl;
pub(crate) mod facts;
pub mod inventory;
pub(crate) mod ocsp;
pub mod pem;
