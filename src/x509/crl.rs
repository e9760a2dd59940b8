//! Certificate revocation lists for client certificates (RFC 5280 §5, §6.3).
//!
//! CRL files (PEM, possibly several CRLs in one file, or DER) are read here and handed to
//! rustls's WebPKI verifier, which does the checking: the whole chain or the leaf only, an
//! expired CRL (past nextUpdate) refused unless allowed. The shell watches the files and rebuilds
//! the TLS configuration when they change (or on SIGHUP); a CRL that does not parse is refused and
//! the last good configuration stays in force. Conversations in flight keep the configuration
//! they started with.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustls::pki_types::CertificateRevocationListDer;
use rustls::pki_types::pem::PemObject;

use tracing::{error, warn};

use crate::config::TlsConfig;

/// One CRL as loaded, with what the operator needs to know about it.
#[derive(Debug, Clone)]
pub struct LoadedCrl {
    pub der: CertificateRevocationListDer<'static>,
    pub file: PathBuf,
    pub issuer: String,
    pub revoked: usize,
    pub this_update: Option<SystemTime>,
    pub next_update: Option<SystemTime>,
}

/// A CRL file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("tls.crl_file: {}: {message}", path.display())]
pub struct CrlError {
    pub path: PathBuf,
    pub message: String,
}

fn crl_err(path: &Path, message: impl std::fmt::Display) -> CrlError {
    CrlError {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Reads every CRL of every configured file. A file with no CRL in it is an error: a typo must
/// not silently turn revocation checking off.
pub fn load(paths: &[PathBuf]) -> Result<Vec<LoadedCrl>, CrlError> {
    let mut out = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| crl_err(path, e))?;
        let ders: Vec<CertificateRevocationListDer<'static>> = if bytes.starts_with(b"-----") {
            parse_pem(&bytes).map_err(|e| crl_err(path, format!("bad PEM: {e}")))?
        } else {
            vec![CertificateRevocationListDer::from(bytes)]
        };
        if ders.is_empty() {
            return Err(crl_err(path, "no X509 CRL in the file"));
        }
        for der in ders {
            out.push(describe(der, path)?);
        }
    }
    Ok(out)
}

/// Every CRL of a PEM text.
pub fn parse_pem(
    bytes: &[u8],
) -> Result<Vec<CertificateRevocationListDer<'static>>, rustls::pki_types::pem::Error> {
    CertificateRevocationListDer::pem_slice_iter(bytes).collect()
}

/// Reads what the operator needs to know of a CRL (its signature is not checked here).
pub fn describe(
    der: CertificateRevocationListDer<'static>,
    path: &Path,
) -> Result<LoadedCrl, CrlError> {
    let (_, crl) = x509_parser::parse_x509_crl(der.as_ref())
        .map_err(|e| crl_err(path, format!("not a CRL: {e}")))?;
    let at = |t: x509_parser::time::ASN1Time| {
        let secs = u64::try_from(t.timestamp()).ok()?;
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
    };
    let next_update = crl.next_update().and_then(at);
    let this_update = at(crl.last_update());
    Ok(LoadedCrl {
        this_update,
        issuer: crl.issuer().to_string(),
        revoked: crl.iter_revoked_certificates().count(),
        next_update,
        file: path.to_path_buf(),
        der,
    })
}

/// What a CRL's freshness means at `now`.
#[derive(Debug, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    ExpiresSoon(Duration),
    Expired(Duration),
}

pub fn freshness(crl: &LoadedCrl, now: SystemTime, warn_before: Duration) -> Freshness {
    let Some(next) = crl.next_update else {
        return Freshness::Fresh;
    };
    match next.duration_since(now) {
        Ok(left) if left <= warn_before => Freshness::ExpiresSoon(left),
        Ok(_) => Freshness::Fresh,
        Err(e) => Freshness::Expired(e.duration()),
    }
}

/// The files whose change means "rebuild the TLS configuration": CRLs, and the server
/// certificate, key and CA files (renewals are picked up the same way). A cheap fingerprint:
/// (path, modification time, length) of each.
pub fn watched_files(cfg: &TlsConfig) -> Vec<PathBuf> {
    let mut v = vec![cfg.certificate_file.clone(), cfg.private_key_file.clone()];
    v.extend(cfg.private_key_password_file.clone());
    v.extend(cfg.ca_file.paths());
    v.extend(cfg.crl_file.paths());
    v.extend(cfg.ticket_key_file.clone());
    // Fetched CRLs land in the cache: its files changing puts them in force.
    v.extend(super::crl_fetch::cache_files(cfg));
    v
}

/// The `crl_file` CRLs and the cached fetched ones (`x509/crl_fetch.rs`).
pub fn load_all(cfg: &TlsConfig) -> Result<Vec<LoadedCrl>, CrlError> {
    let mut crls = load(&cfg.crl_file.paths())?;
    crls.extend(super::crl_fetch::load_cached(cfg));
    Ok(crls)
}

pub type Fingerprint = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

pub fn fingerprint(files: &[PathBuf]) -> Fingerprint {
    files
        .iter()
        .map(|p| {
            let meta = std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            (p.clone(), meta)
        })
        .collect()
}

/// Logs each CRL's freshness: a warning well before nextUpdate, an error once past it.
pub fn report_freshness(crls: &[LoadedCrl], tls: &TlsConfig, now: SystemTime) {
    let warn_before = Duration::from_secs(tls.crl_expiry_warning_hours.saturating_mul(3600));
    for crl in crls {
        match freshness(crl, now, warn_before) {
            Freshness::Fresh => {}
            Freshness::ExpiresSoon(left) => warn!(
                file = %crl.file.display(),
                issuer = %crl.issuer,
                "CRL reaches its nextUpdate in {} hours: publish a new one, or certificates it covers will be refused",
                left.as_secs() / 3600
            ),
            Freshness::Expired(ago) => error!(
                file = %crl.file.display(),
                issuer = %crl.issuer,
                allow_expired_crl = tls.allow_expired_crl,
                "CRL is past its nextUpdate by {} hours",
                ago.as_secs() / 3600
            ),
        }
    }
}
