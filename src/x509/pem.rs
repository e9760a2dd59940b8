//! Reading certificates and private keys from PEM files (RFC 7468), for the server's own
//! configuration and the trust anchors. Every error names the configuration key and the file.
//!
//! A server key may be encrypted as PKCS#8 `ENCRYPTED PRIVATE KEY` (RFC 5958 §3, PBES2 of
//! RFC 8018 §6.2: what `openssl req -keyout`, `openssl pkcs8 -topk8` and FreeRADIUS's
//! `raddb/certs` Makefile write); its password comes from a file named by the
//! `private_key_password_file` knob. Decryption is the `pkcs8` crate's (RustCrypto), not ours.
//! The legacy OpenSSL PEM encryption (`Proc-Type: 4,ENCRYPTED`, a non-standard MD5-based key
//! derivation) is refused with the command that converts it.

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

/// Reads an unencrypted private key (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(key: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    load_server_key(KeyFiles {
        key,
        path,
        password_key: "private_key_password_file",
        password_file: None,
    })
}

/// Where a server's private key and, for an encrypted one, its password come from, with the
/// configuration keys that name them (for the errors).
pub struct KeyFiles<'a> {
    pub key: &'static str,
    pub path: &'a Path,
    pub password_key: &'static str,
    pub password_file: Option<&'a Path>,
}

const ENCRYPTED_PKCS8_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// Reads a private key that may be encrypted (PKCS#8 PBES2) when `password_file` is given.
pub fn load_server_key(files: KeyFiles<'_>) -> Result<PrivateKeyDer<'static>, PemError> {
    let KeyFiles { key, path, .. } = files;
    let bytes = std::fs::read(path).map_err(|e| file_err(key, path, e))?;
    if let Some(block) = pem_block(&bytes, ENCRYPTED_PKCS8_LABEL) {
        return decrypt_pkcs8(&files, block);
    }
    if contains(&bytes, b"Proc-Type: 4,ENCRYPTED") {
        return Err(file_err(
            key,
            path,
            format!(
                "the key uses OpenSSL's legacy PEM encryption (Proc-Type: 4,ENCRYPTED), which \
                 certradius does not read: convert it to encrypted PKCS#8 with `openssl pkey -in \
                 {0} -aes256 -out {0}.p8` (or decrypt it with `openssl pkey -in {0} -out \
                 {0}.plain`, mode 0600) and point {1} at the result",
                path.display(),
                key
            ),
        ));
    }
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| file_err(key, path, format!("no usable private key: {e}")))
}

fn decrypt_pkcs8(files: &KeyFiles<'_>, block: &[u8]) -> Result<PrivateKeyDer<'static>, PemError> {
    let KeyFiles {
        key,
        path,
        password_key,
        password_file,
    } = *files;
    let Some(password_file) = password_file else {
        return Err(file_err(
            key,
            path,
            format!(
                "the key is encrypted (PKCS#8 ENCRYPTED PRIVATE KEY): set {password_key} to a \
                 file (mode 0600) whose first line is its password"
            ),
        ));
    };
    let password = read_password(password_key, password_file)?;
    let (label, der) = pem_rfc7468::decode_vec(block)
        .map_err(|e| file_err(key, path, format!("bad PEM in the encrypted key: {e}")))?;
    if label != ENCRYPTED_PKCS8_LABEL {
        return Err(file_err(key, path, "bad PEM in the encrypted key"));
    }
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice())
        .map_err(|e| file_err(key, path, format!("not an encrypted PKCS#8 key: {e}")))?;
    let plain = info.decrypt(password.as_bytes()).map_err(|e| {
        file_err(
            key,
            path,
            format!(
                "cannot decrypt the key with the password in {password_key} ({}): {}",
                password_file.display(),
                decrypt_hint(&e)
            ),
        )
    })?;
    Ok(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into()))
}

/// What to tell the operator when decryption fails: a wrong password and an unsupported
/// scheme look different to them.
fn decrypt_hint(e: &pkcs8::Error) -> String {
    match e {
        pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::UnsupportedAlgorithm { .. }) => {
            "the encryption scheme is not supported (PBES2 with AES-CBC or 3DES and \
             PBKDF2/scrypt is): re-encrypt it with `openssl pkcs8 -topk8 -v2 aes256`"
                .to_string()
        }
        _ => format!("wrong password or damaged key ({e})"),
    }
}

/// The first line of the password file, without its line ending. The password itself never
/// appears in an error.
fn read_password(password_key: &'static str, file: &Path) -> Result<String, PemError> {
    let text = std::fs::read_to_string(file).map_err(|e| file_err(password_key, file, e))?;
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(file_err(password_key, file, "the first line is empty"));
    }
    Ok(line.to_string())
}

/// The first PEM block with this label, BEGIN line to END line inclusive.
fn pem_block<'a>(bytes: &'a [u8], label: &str) -> Option<&'a [u8]> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = find(bytes, begin.as_bytes())?;
    let rest = bytes.get(start..)?;
    let stop = find(rest, end.as_bytes())? + end.len();
    rest.get(..stop)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_encrypted_block_among_others() {
        let file =
            b"Bag Attributes\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n\
            -----BEGIN ENCRYPTED PRIVATE KEY-----\nBBBB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let block = pem_block(file, ENCRYPTED_PKCS8_LABEL).unwrap();
        assert!(block.starts_with(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        assert!(block.ends_with(b"-----END ENCRYPTED PRIVATE KEY-----"));
        assert!(
            pem_block(
                b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nno end",
                "ENCRYPTED PRIVATE KEY"
            )
            .is_none()
        );
    }

    #[test]
    fn an_encrypted_key_without_password_names_the_knob_and_the_password_file_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem");
        std::fs::write(
            &key,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        let files = |password_file| KeyFiles {
            key: "tls.private_key_file",
            path: &key,
            password_key: "tls.private_key_password_file",
            password_file,
        };
        let e = load_server_key(files(None)).unwrap_err().to_string();
        assert!(e.contains("tls.private_key_password_file"), "{e}");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\r\nsecond line\n").unwrap();
        assert_eq!(read_password("k", &pw).unwrap(), "s3cret");
        let e = load_server_key(files(Some(&pw))).unwrap_err().to_string();
        assert!(!e.contains("s3cret"), "{e}");
        std::fs::write(&pw, "\n").unwrap();
        assert!(read_password("k", &pw).is_err());
    }
}
