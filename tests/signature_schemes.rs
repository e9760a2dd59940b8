//! `tls.client_signature_schemes` and what a TPM-held key can sign, answered in memory against
//! the server's real rustls configuration (`certradius::tls::server_config`):
//!
//! - a client's CertificateVerify in RSA-PSS with the digest-length salt (RFC 8446 §4.2.3) is
//!   accepted; the same with the **maximum** salt length (what some TPMs produce) is refused —
//!   the answer the README gives, with its remedy (TLS 1.2 and `rsa_pkcs1_sha256` for the NAS
//!   of those devices);
//! - with `client_signature_schemes` limited, the CertificateRequest offers only those schemes
//!   and a client that signs with another is refused; an ECDSA client certificate issued by an
//!   RSA-signed chain still verifies when only ECDSA schemes are listed.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;
use std::sync::Arc;

use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

/// An RSA client key that signs every CertificateVerify as RSA-PSS-SHA256 with `salt_len`.
#[derive(Debug)]
struct PssKey {
    key: rsa::PrivateKey,
    salt_len: usize,
}

impl SigningKey for PssKey {
    /// Signs with RSA-PSS whatever the server offered, as a misbehaving device might: the
    /// server must refuse it when its list does not allow PSS.
    fn choose_scheme(&self, _offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        Some(Box::new(PssSigner {
            key: self.key.clone(),
            salt_len: self.salt_len,
        }))
    }
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::RSA
    }
}

#[derive(Debug)]
struct PssSigner {
    key: rsa::PrivateKey,
    salt_len: usize,
}

impl Signer for PssSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let signer = rsa::pss::SigningKey::<rsa::sha2::Sha256>::new_with_salt_len(
            self.key.clone(),
            self.salt_len,
        );
        let sig = signer
            .try_sign_with_rng(&mut getrandom::SysRng, message)
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        Ok(sig.to_vec())
    }
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::RSA_PSS_SHA256
    }
}

#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesClientCert for Fixed {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

fn roots(pki: &Path) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for c in certradius::tls::load_certs("ca", &pki.join("ca.pem")).unwrap() {
        roots.add(c).unwrap();
    }
    roots
}

fn chain(pki: &Path, name: &str) -> Vec<CertificateDer<'static>> {
    certradius::tls::load_certs("client", &pki.join(format!("client-{name}.pem"))).unwrap()
}

/// The client-rsa certificate with a PSS signer of this salt length.
fn pss_client(pki: &Path, salt_len: usize, tls13: bool) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read_to_string(pki.join("client-rsa.key")).unwrap();
    let key = rsa::PrivateKey::from_pkcs8_pem(&pem).unwrap();
    let certified = CertifiedKey::new(chain(pki, "rsa"), Arc::new(PssKey { key, salt_len }));
    let versions: &[&'static rustls::SupportedProtocolVersion] = if tls13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12]
    };
    let cfg = rustls::ClientConfig::builder_with_provider(certradius::tls::provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots(pki))
        .with_client_cert_resolver(Arc::new(Fixed(Arc::new(certified))));
    Arc::new(cfg)
}

/// A client with a file key (rustls signs with the scheme it prefers among those offered).
fn file_client(pki: &Path, name: &str, tls13: bool) -> Arc<rustls::ClientConfig> {
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = if tls13 {
        vec![&rustls::version::TLS13]
    } else {
        vec![&rustls::version::TLS12]
    };
    certradius_testkit::peer::client_config(
        &pki.join("ca.pem"),
        &pki.join(format!("client-{name}.pem")),
        &pki.join(format!("client-{name}.key")),
        &versions,
    )
    .unwrap()
}

fn server(pki: &Path, extra_tls: &str) -> Arc<rustls::ServerConfig> {
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), pki, "s", extra_tls, "");
    let cfg = certradius::config::Config::load_with_env(Some(&path), false).unwrap();
    certradius::tls::server_config(&cfg.tls).unwrap().config
}

/// Runs a handshake in memory through the server's own engine (`TlsEngine`, as a
/// conversation drives it); Err carries the server's reason and detail, or the client's error.
fn handshake(
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
) -> Result<(), String> {
    let name = ServerName::try_from("radius.certradius.test").unwrap();
    let mut c = rustls::ClientConnection::new(client, name).unwrap();
    let mut s = certradius::tls::TlsEngine::new(server).unwrap();
    for _ in 0..20 {
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        s.feed(&buf, rustls::pki_types::UnixTime::now())
            .map_err(|f| format!("server: {}: {}", f.reason, f.detail))?;
        let out = s.take_output();
        let mut rd = out.as_slice();
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            if let Err(e) = c.process_new_packets() {
                return Err(format!("client: {e}"));
            }
        }
        if !s.is_handshaking() && !c.is_handshaking() {
            return Ok(());
        }
    }
    Err("handshake did not finish".into())
}

#[test]
fn rsa_pss_with_the_maximum_salt_length_is_refused_the_digest_length_accepted() {
    let pki = common::pki("signature_schemes");
    let server = server(&pki, "");
    // RSA-2048: 256-octet encoded message; the maximum salt is 256 - 32 - 2 octets.
    for tls13 in [false, true] {
        handshake(pss_client(&pki, 32, tls13), server.clone())
            .unwrap_or_else(|e| panic!("digest-length salt (TLS 1.3: {tls13}) refused: {e}"));
        let e = handshake(pss_client(&pki, 222, tls13), server.clone())
            .expect_err("a maximum-length salt was accepted");
        eprintln!("maximum salt, TLS 1.3 {tls13}: {e}");
        assert!(
            e.starts_with("server: client_signature_invalid") && e.contains("rsa_pss_rsae_sha256"),
            "TLS 1.3 {tls13}: {e}"
        );
    }
}

#[test]
fn limited_schemes_are_all_that_is_offered_and_accepted() {
    let pki = common::pki("signature_schemes");
    // Only PKCS#1: a TLS 1.2 RSA client signs with it; a PSS signature is refused.
    let pkcs1 = server(&pki, "client_signature_schemes = [\"rsa_pkcs1_sha256\"]");
    handshake(file_client(&pki, "rsa", false), pkcs1.clone()).unwrap();
    let e = handshake(pss_client(&pki, 32, false), pkcs1.clone()).unwrap_err();
    eprintln!("PSS against a PKCS#1-only server: {e}");
    assert!(e.starts_with("server: tls_incompatible"), "{e}");
    // TLS 1.3 forbids PKCS#1 in CertificateVerify (RFC 8446 §4.2.3): no client can comply.
    assert!(handshake(file_client(&pki, "rsa", true), pkcs1).is_err());

    // Only ECDSA P-256: the ECDSA client (chain signed by the test PKI's CAs) verifies in both
    // versions; the RSA client has nothing it may sign with.
    let ecdsa = server(
        &pki,
        "client_signature_schemes = [\"ecdsa_secp256r1_sha256\"]",
    );
    for tls13 in [false, true] {
        handshake(file_client(&pki, "ecdsa", tls13), ecdsa.clone())
            .unwrap_or_else(|e| panic!("ECDSA client refused (TLS 1.3: {tls13}): {e}"));
        assert!(handshake(file_client(&pki, "rsa", tls13), ecdsa.clone()).is_err());
    }
}

#[test]
fn an_unknown_scheme_name_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let pki = common::pki("signature_schemes");
    let path = common::write_config(
        dir.path(),
        &pki,
        "bad",
        "client_signature_schemes = [\"rsa_pkcs1_sha256\", \"RSA_PSS_SHA256\"]",
        "",
    );
    let e = certradius::config::Config::load_with_env(Some(&path), false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("client_signature_schemes") && e.contains("RSA_PSS_SHA256"),
        "{e}"
    );
}
