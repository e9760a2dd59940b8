//! Reading certificates and private keys from PEM files (RFC 7468), for the server's own
//! configuration and the trust anchors. Every error names the configuration key and the file.

use std::fmt;
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A PEM file that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{key}: cannot read {path}: {message}")]
pub struct PemError {
    pub key: &'static str,
    pub path: String,
    pub message: String,
}

pub(crate) fn file_err(key: &'static str, path: &Path, message: impl fmt::Display) -> PemError {
    PemError {
        key,
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Reads every certificate in a PEM file; an empty file is an error.
pub fn load_certs(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let bytes = std::fs::read(path).map_err(|e| file_err(key, path, e))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(key, path, format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_err(key, path, "no CERTIFICATE block in the file"));
    }
    Ok(certs)
}

pub fn load_key(key: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    let bytes = std::fs::read(path).map_err(|e| file_err(key, path, e))?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| file_err(key, path, format!("no usable private key: {e}")))
}
