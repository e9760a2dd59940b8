//! What the configured files hold, for operators: the server certificate and the CA
//! certificates with their notAfter (RFC 5280 §4.1.2.5), and the CRLs with their nextUpdate
//! (RFC 5280 §5.1.2.5). Read by `certradius check` and exported as metrics after every (re)load.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{RadsecConfig, TlsConfig};

/// One certificate of the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct CertExpiry {
    /// `"server"` (the leaf of `tls.certificate_file`), `"ca"` (each of `tls.ca_file`) or
    /// `"radsec"` (the leaf of `radsec.certificate_file`, when RadSec listens).
    pub role: &'static str,
    pub subject: String,
    pub file: String,
    /// notBefore in unix seconds.
    pub not_before: i64,
    /// notAfter in unix seconds.
    pub not_after: i64,
}

/// One CRL of the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct CrlExpiry {
    pub issuer: String,
    pub file: String,
    /// nextUpdate in unix seconds; None when the CRL has none.
    pub next_update: Option<i64>,
}

/// Everything [`read`] found; files it could not read are in `errors` (key: message).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    pub certificates: Vec<CertExpiry>,
    pub crls: Vec<CrlExpiry>,
    pub errors: Vec<String>,
    /// Fetched CRL sources (`tls.crl_url`, CDPs) with no usable CRL yet while revocation is
    /// checked and unknown status refused: the clients they cover are refused.
    pub crl_pending: Vec<String>,
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Adds the certificates of `path` (only the leaf unless `all`) under `role`.
fn add_certs(inv: &mut Inventory, role: &'static str, key: &'static str, path: &Path, all: bool) {
    match super::pem::load_certs(key, path) {
        Ok(certs) => {
            let take = if all { certs.len() } else { 1 };
            for der in certs.iter().take(take) {
                match super::parse_certificate(der) {
                    Ok((_, cert)) => inv.certificates.push(CertExpiry {
                        role,
                        subject: cert.subject().to_string(),
                        file: path.display().to_string(),
                        not_before: cert.validity().not_before.timestamp(),
                        not_after: cert.validity().not_after.timestamp(),
                    }),
                    Err(e) => inv
                        .errors
                        .push(format!("{key} {}: certificate: {e}", path.display())),
                }
            }
        }
        Err(e) => inv.errors.push(e.to_string()),
    }
}

/// Reads the certificate, CA and CRL files named by `[tls]`.
pub fn read(tls: &TlsConfig) -> Inventory {
    let mut inv = Inventory::default();
    add_certs(
        &mut inv,
        "server",
        "tls.certificate_file",
        &tls.certificate_file,
        false,
    );
    for p in tls.ca_file.paths() {
        add_certs(&mut inv, "ca", "tls.ca_file", &p, true);
    }
    match super::crl::load_all(tls) {
        Ok(crls) => {
            for c in crls {
                inv.crls.push(CrlExpiry {
                    issuer: c.issuer.clone(),
                    file: c.file.display().to_string(),
                    next_update: c.next_update.map(unix),
                });
            }
        }
        Err(e) => inv.errors.push(e.to_string()),
    }
    if tls.crl_scope() != crate::config::CrlScope::None
        && !tls.allow_unknown_revocation_status
        && let Some(dir) = &tls.crl_cache_dir
    {
        for url in super::crl_fetch::sources(tls).0 {
            let cached = super::crl_fetch::cache_path(dir, &url)
                .display()
                .to_string();
            if !inv.crls.iter().any(|c| c.file == cached) {
                inv.crl_pending.push(url);
            }
        }
    }
    inv
}

/// Adds the RadSec server certificate when `[radsec]` listens: NAS that reach us over RadSec
/// refuse it once expired, as supplicants refuse the EAP one.
pub fn read_radsec(radsec: &RadsecConfig, inv: &mut Inventory) {
    if !radsec.listen.is_empty() {
        add_certs(
            inv,
            "radsec",
            "radsec.certificate_file",
            &radsec.certificate_file,
            false,
        );
    }
}

/// Whole days from `now` to `t` (negative once past).
pub fn days_until(t: i64, now: SystemTime) -> i64 {
    (t - unix(now)).div_euclid(86_400)
}

/// `now` in unix seconds.
pub fn unix_now(now: SystemTime) -> i64 {
    unix(now)
}
