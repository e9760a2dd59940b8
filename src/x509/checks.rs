//! Checks on the client certificate beyond chain validation, each with a stable reject reason.
//!
//! rustls's WebPKI verifier already enforces what RFC 5280 §6 path validation covers: the chain
//! to a configured CA, each certificate's validity period (`cert_expired`,
//! `cert_not_yet_valid`), the clientAuth extended key usage (`eku_missing`, RFC 5280 §4.2.1.12)
//! and CRLs (`cert_revoked`). What is operator policy rather than path validation lives here:
//! - allowed issuers (`issuer_not_allowed`): only certificates issued by the listed CAs, so a
//!   shared root's other intermediates cannot reach this network;
//! - minimum key strength (`key_too_weak`): RSA modulus and EC field size in bits;
//! - key usage (`key_usage_invalid`, RFC 5280 §4.2.1.3): when the extension is present it must
//!   allow digitalSignature, which TLS client authentication (CertificateVerify) needs.

use super::facts::{KeySize, Leaf};
use crate::config::TlsConfig;
use crate::reason::ReasonCode;

#[derive(Debug, Clone)]
pub struct CertChecks {
    allowed_issuers: Vec<String>,
    min_rsa_bits: usize,
    min_ec_bits: usize,
    check_key_usage: bool,
}

/// `(reason, detail)` of a failed check.
pub type Failure = (ReasonCode, String);

impl CertChecks {
    pub fn from_config(cfg: &TlsConfig) -> Self {
        CertChecks {
            allowed_issuers: cfg.allowed_issuers.clone(),
            min_rsa_bits: cfg.min_rsa_key_bits,
            min_ec_bits: cfg.min_ec_key_bits,
            check_key_usage: cfg.check_key_usage,
        }
    }

    /// Runs the checks on the leaf parsed once for this authentication.
    pub fn check(&self, leaf: &Leaf) -> Result<(), Failure> {
        if !self.allowed_issuers.is_empty() {
            let issuer = &leaf.issuer;
            let issuer_cn = leaf.issuer_cn_first.as_str();
            let allowed = self
                .allowed_issuers
                .iter()
                .any(|a| a.eq_ignore_ascii_case(issuer) || a.eq_ignore_ascii_case(issuer_cn));
            if !allowed {
                return Err((
                    ReasonCode::IssuerNotAllowed,
                    format!("issuer {issuer:?} is not in tls.allowed_issuers"),
                ));
            }
        }
        match leaf.key {
            KeySize::Rsa(bits) if bits < self.min_rsa_bits => {
                return Err((
                    ReasonCode::KeyTooWeak,
                    format!(
                        "RSA key of {bits} bits, tls.min_rsa_key_bits is {}",
                        self.min_rsa_bits
                    ),
                ));
            }
            KeySize::Ec(bits) if bits < self.min_ec_bits => {
                return Err((
                    ReasonCode::KeyTooWeak,
                    format!(
                        "EC key of {bits} bits, tls.min_ec_key_bits is {}",
                        self.min_ec_bits
                    ),
                ));
            }
            _ => {}
        }
        if self.check_key_usage {
            match &leaf.key_usage {
                Ok(Some(false)) => {
                    return Err((
                        ReasonCode::KeyUsageInvalid,
                        "keyUsage does not allow digitalSignature".into(),
                    ));
                }
                Err(e) => return Err((ReasonCode::KeyUsageInvalid, format!("bad keyUsage: {e}"))),
                Ok(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(dir: &std::path::Path, name: &str) -> Leaf {
        let chain =
            crate::x509::pem::load_certs("t", &dir.join(format!("client-{name}.pem"))).unwrap();
        Leaf::parse(&chain[0]).unwrap()
    }

    #[test]
    fn issuer_key_strength_and_key_usage() {
        let dir = tempfile::tempdir().unwrap();
        certradius_pki::generate(dir.path()).unwrap();
        let mut cfg = TlsConfig::default();
        let ok = CertChecks::from_config(&cfg);
        assert!(ok.check(&peer(dir.path(), "rsa")).is_ok());
        assert!(ok.check(&peer(dir.path(), "ecdsa")).is_ok());

        cfg.allowed_issuers = vec!["certradius Test Intermediate CA".into()];
        let c = CertChecks::from_config(&cfg);
        assert!(c.check(&peer(dir.path(), "ecdsa")).is_ok());
        assert_eq!(
            c.check(&peer(dir.path(), "longchain")).unwrap_err().0,
            "issuer_not_allowed"
        );

        cfg.allowed_issuers.clear();
        cfg.min_rsa_key_bits = 3072;
        let c = CertChecks::from_config(&cfg);
        assert_eq!(
            c.check(&peer(dir.path(), "rsa")).unwrap_err().0,
            "key_too_weak"
        );
        assert!(c.check(&peer(dir.path(), "ecdsa")).is_ok());
        cfg.min_ec_key_bits = 384;
        let c = CertChecks::from_config(&cfg);
        assert_eq!(
            c.check(&peer(dir.path(), "ecdsa")).unwrap_err().0,
            "key_too_weak"
        );
    }
}
