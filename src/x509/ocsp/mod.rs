//! OCSP checking of client certificates (RFC 6960), split the way the server is: sans-IO parts
//! (request building, response verification, a response cache, all with `now` passed in) and one
//! async function, [`fetch`], that the tokio shell calls between them.
//!
//! - RFC 5280 §4.2.2.1: the responder's location comes from the leaf's Authority Information
//!   Access extension, access method id-ad-ocsp ([`responder_urls`], read when the leaf was
//!   parsed, `x509::facts`).
//! - RFC 6960 §4.1.1: the request is one `Request` whose `CertID` hashes the issuer's name and key
//!   with SHA-1 (what responders match on; `openssl ocsp` among them), plus the serial number.
//! - RFC 8954: the nonce extension, 1 to 32 octets, as `OCTET STRING` inside `extnValue`.
//! - RFC 6960 §4.2.1: `OCSPResponse`, `BasicOCSPResponse`; §4.2.2.2: who may sign it (the issuer
//!   itself, or a responder certificate issued directly by the issuer carrying id-kp-OCSPSigning);
//!   §4.2.2.1 and §3.2: `thisUpdate` must not be in the future, `nextUpdate` not in the past.
//! - RFC 6960 Appendix A.1: HTTP POST with `Content-Type: application/ocsp-request`.
//! - RFC 5019 (the lightweight profile): responses may be pre-produced, without a nonce, and
//!   clients cache them until `nextUpdate` ([`Cache`]). RFC 5280 §5.3.1: revocation reason names.
//!
//! The delegated responder certificate's own revocation status is not checked: responders for
//! this use carry id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1), and checking it would need another
//! round trip to the very responder being judged.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use super::Leaf;
use crate::crypto::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};
use crate::crypto::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use der::asn1::{AnyRef, BitStringRef, GeneralizedTime, IntRef, ObjectIdentifier};
use der::{Decode, DecodeValue, Encode, Reader, Sequence, SliceReader, Tag, TagNumber, Tagged};
use x509_parser::certificate::X509Certificate;

/// The most response body [`fetch`] reads; real responses are a few KiB.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Clock difference tolerated between us and the responder for `thisUpdate`.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// RFC 8954: a nonce is 1 to 32 octets.
pub const MAX_NONCE_LEN: usize = 32;

mod asn1;
mod cache;
mod http;
mod request;
mod verify;

use asn1::*;
pub use cache::Cache;
pub use http::fetch;
use request::*;
pub use request::{Query, build_query, responder_urls};
pub use verify::{CertStatus, Verdict, signed_by, verify_response};

/// Why an OCSP check did not produce a verdict. The responder-side variants say what the
/// responder (or whoever answered in its place) did.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum OcspError {
    #[error("malformed OCSP response: {0}")]
    Malformed(String),
    #[error("OCSP responder answered status {0} ({name})", name = status_name(*.0))]
    Unsuccessful(u8),
    #[error("OCSP response signature does not verify")]
    BadSignature,
    #[error("OCSP response signed by neither the issuer nor a responder certificate it authorized")]
    UnauthorizedResponder,
    #[error("OCSP response has no status for the certificate asked about")]
    NoMatchingResponse,
    #[error("OCSP response echoes a different nonce (replayed or mixed-up response)")]
    NonceMismatch,
    #[error("OCSP response is not current (thisUpdate in the future or nextUpdate passed)")]
    Stale,
    #[error("OCSP HTTP exchange failed: {0}")]
    Http(String),
    #[error("OCSP responder did not answer in time")]
    Timeout,
    /// What the caller handed over cannot be used: a leaf or issuer certificate that does not
    /// parse, a leaf not issued by that issuer, a nonce of the wrong size.
    #[error("cannot check OCSP: {0}")]
    BadInput(String),
}

/// RFC 6960 §4.2.1 OCSPResponseStatus names, for logs.
fn status_name(status: u8) -> &'static str {
    match status {
        0 => "successful",
        1 => "malformedRequest",
        2 => "internalError",
        3 => "tryLater",
        5 => "sigRequired",
        6 => "unauthorized",
        _ => "unknown status",
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests may read the clock
mod tests {
    use super::*;
    use certradius_pki::{self, PkiPaths};
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc;
    use std::time::Instant;

    const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

    fn chain(path: &Path) -> Vec<Vec<u8>> {
        CertificateDer::pem_file_iter(path)
            .unwrap()
            .map(|c| c.unwrap().to_vec())
            .collect()
    }

    fn first(path: &Path) -> Vec<u8> {
        chain(path).remove(0)
    }

    fn parsed(der: &[u8]) -> Leaf {
        Leaf::parse(der).unwrap()
    }

    fn test_pki() -> (tempfile::TempDir, PkiPaths) {
        let dir = tempfile::tempdir().unwrap();
        certradius_pki::generate(dir.path()).unwrap();
        let paths = PkiPaths::new(dir.path());
        (dir, paths)
    }

    /// The responder tests need `openssl`; without it they say so loudly, and fail under CI.
    fn openssl_present() -> bool {
        let ok = Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "openssl is required for the OCSP responder tests under CI"
            );
            eprintln!("SKIP: `openssl` not found; OCSP responder test not run");
        }
        ok
    }

    fn openssl(args: &[&str], dir: &Path) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A port nobody listens on (bound then released).
    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// A real `openssl ocsp` responder on loopback, killed when dropped.
    struct Responder {
        child: Child,
        url: String,
    }

    impl Drop for Responder {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    struct ResponderSpec<'a> {
        index: PathBuf,
        ca: PathBuf,
        rsigner: PathBuf,
        rkey: PathBuf,
        extra: &'a [&'a str],
    }

    fn start_responder(spec: &ResponderSpec<'_>) -> Responder {
        let port = free_port();
        // OpenSSL 3.0 takes a bare port here (it binds every address); we only talk to loopback.
        let mut child = Command::new("openssl")
            .arg("ocsp")
            .arg("-index")
            .arg(&spec.index)
            .args(["-port", &port.to_string()])
            .arg("-rsigner")
            .arg(&spec.rsigner)
            .arg("-rkey")
            .arg(&spec.rkey)
            .arg("-CA")
            .arg(&spec.ca)
            .args(["-nrequest", "10", "-ndays", "1"])
            .args(spec.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout for the responder's whole life so it never blocks on the pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let responder = Responder {
            child,
            url: format!("http://127.0.0.1:{port}/"),
        };
        // `ACCEPT ...` is printed (to stdout) once the socket listens. Probing the port instead
        // would not do: OpenSSL 3.0's responder hangs on a connection closed without a request.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.starts_with("ACCEPT") => return responder,
                Ok(_) => {}
                Err(e) => panic!("openssl ocsp did not start: {e}"),
            }
        }
    }

    /// The test PKI's delegated responder for the intermediate.
    fn delegated(p: &PkiPaths, extra: &'static [&'static str]) -> Responder {
        start_responder(&ResponderSpec {
            index: p.ocsp_index(),
            ca: p.intermediate_cert(),
            rsigner: p.ocsp_cert(),
            rkey: p.ocsp_key(),
            extra,
        })
    }

    async fn ask(
        leaf: &[u8],
        issuer: &[u8],
        url: &str,
        nonce: Option<Vec<u8>>,
    ) -> (Query, Vec<u8>) {
        let query = build_query(&parsed(leaf), issuer, url.to_owned(), nonce).unwrap();
        let response = fetch(&query, FETCH_TIMEOUT).await.unwrap();
        (query, response)
    }

    #[tokio::test]
    async fn good_certificate_from_delegated_responder() {
        if !openssl_present() {
            return;
        }
        let (_dir, p) = test_pki();
        let responder = delegated(&p, &[]);
        let leaf = first(&p.client_cert("ecdsa"));
        let issuer = first(&p.intermediate_cert());
        let nonce = vec![0x5a; 16];
        let (query, der) = ask(&leaf, &issuer, &responder.url, Some(nonce)).await;
        let now = SystemTime::now();
        let verdict = verify_response(&query, &der, &issuer, now).unwrap();
        assert_eq!(verdict.status, CertStatus::Good);
        assert!(verdict.nonce_echoed, "openssl ocsp echoes the nonce");
        let next = verdict.next_update.expect("-ndays 1 sets nextUpdate");
        assert!(next > now && verdict.this_update <= now + CLOCK_SKEW);

        // Without a nonce: still good, nothing echoed.
        let (plain_query, plain) = ask(&leaf, &issuer, &responder.url, None).await;
        let plain_verdict = verify_response(&plain_query, &plain, &issuer, now).unwrap();
        assert_eq!(plain_verdict.status, CertStatus::Good);
        assert!(!plain_verdict.nonce_echoed);

        // The same response does not answer a query with another nonce (a replay) ...
        let other_nonce = build_query(
            &parsed(&leaf),
            &issuer,
            responder.url.clone(),
            Some(vec![1; 16]),
        )
        .unwrap();
        assert_eq!(
            verify_response(&other_nonce, &der, &issuer, now),
            Err(OcspError::NonceMismatch)
        );
        // ... nor a question about another certificate ...
        let revoked = first(&p.client_cert("revoked"));
        let other_cert =
            build_query(&parsed(&revoked), &issuer, responder.url.clone(), None).unwrap();
        assert_eq!(
            verify_response(&other_cert, &der, &issuer, now),
            Err(OcspError::NoMatchingResponse)
        );
        // ... nor is it current after nextUpdate or well before thisUpdate ...
        assert_eq!(
            verify_response(&query, &der, &issuer, next + Duration::from_secs(1)),
            Err(OcspError::Stale)
        );
        let early = verdict.this_update - CLOCK_SKEW - Duration::from_secs(60);
        assert_eq!(
            verify_response(&query, &der, &issuer, early),
            Err(OcspError::Stale)
        );
        // ... but within the skew it is.
        let slightly_early = verdict.this_update - CLOCK_SKEW + Duration::from_secs(1);
        assert!(verify_response(&query, &der, &issuer, slightly_early).is_ok());
        // A CA that did not issue the responder certificate does not authorize it,
        let root = first(&p.ca_cert());
        assert_eq!(
            verify_response(&query, &der, &root, now),
            Err(OcspError::UnauthorizedResponder)
        );
        // nor does the intermediate once the responder certificate has expired (825 days).
        let much_later = now + Duration::from_secs(900 * 86_400);
        assert_eq!(
            verify_response(&query, &der, &issuer, much_later),
            Err(OcspError::UnauthorizedResponder)
        );
    }

    #[tokio::test]
    async fn revoked_certificate_by_key_id() {
        if !openssl_present() {
            return;
        }
        let (_dir, p) = test_pki();
        // ResponderID byKey this time (RFC 6960 §4.2.1 KeyHash).
        let responder = delegated(&p, &["-resp_key_id"]);
        let leaf = first(&p.client_cert("revoked"));
        let issuer = first(&p.intermediate_cert());
        let (query, der) = ask(&leaf, &issuer, &responder.url, Some(vec![7; 32])).await;
        let verdict = verify_response(&query, &der, &issuer, SystemTime::now()).unwrap();
        assert_eq!(
            verdict.status,
            CertStatus::Revoked {
                reason: Some("keyCompromise".into())
            }
        );
        assert!(verdict.nonce_echoed);
    }

    #[tokio::test]
    async fn tampered_responses_are_refused_without_panicking() {
        if !openssl_present() {
            return;
        }
        let (_dir, p) = test_pki();
        let responder = delegated(&p, &[]);
        let leaf = first(&p.client_cert("ecdsa"));
        let issuer = first(&p.intermediate_cert());
        let nonce = vec![0xa5; 20];
        let (query, der) = ask(&leaf, &issuer, &responder.url, Some(nonce.clone())).await;
        let now = SystemTime::now();
        assert!(verify_response(&query, &der, &issuer, now).is_ok());

        // A changed byte inside the signed data (here, in the echoed nonce).
        let at = der.windows(nonce.len()).position(|w| w == nonce).unwrap();
        let mut tampered = der.clone();
        tampered[at] ^= 0x01;
        assert_eq!(
            verify_response(&query, &tampered, &issuer, now),
            Err(OcspError::BadSignature)
        );
        // Every single-bit change anywhere is refused (and none panics).
        for i in 0..der.len() * 8 {
            let mut flipped = der.clone();
            flipped[i / 8] ^= 1 << (i % 8);
            let result = verify_response(&query, &flipped, &issuer, now);
            assert!(result.is_err(), "bit {i} flipped was accepted: {result:?}");
        }
        // So is every truncation.
        for len in 0..der.len() {
            assert!(verify_response(&query, &der[..len], &issuer, now).is_err());
        }
    }

    /// A self-contained RSA CA made with openssl that signs its responses itself.
    fn rsa_ca(dir: &Path) -> (Vec<u8>, Vec<u8>) {
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "rsa-ca.key",
                "-out",
                "rsa-ca.pem",
                "-subj",
                "/CN=OCSP RSA Test CA",
                "-days",
                "2",
            ],
            dir,
        );
        openssl(
            &[
                "req",
                "-x509",
                "-CA",
                "rsa-ca.pem",
                "-CAkey",
                "rsa-ca.key",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.pem",
                "-subj",
                "/CN=rsa-issued leaf",
                "-days",
                "1",
            ],
            dir,
        );
        let out = Command::new("openssl")
            .args(["x509", "-in", "leaf.pem", "-noout", "-serial"])
            .current_dir(dir)
            .output()
            .unwrap();
        let serial = String::from_utf8(out.stdout).unwrap();
        let serial = serial.trim().trim_start_matches("serial=");
        std::fs::write(
            dir.join("index.txt"),
            format!("V\t301231235959Z\t\t{serial}\tunknown\t/CN=rsa-issued leaf\n"),
        )
        .unwrap();
        (first(&dir.join("leaf.pem")), first(&dir.join("rsa-ca.pem")))
    }

    #[tokio::test]
    async fn issuer_signed_rsa_pkcs1_and_pss() {
        if !openssl_present() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (leaf, issuer) = rsa_ca(dir.path());
        let spec = |extra| ResponderSpec {
            index: dir.path().join("index.txt"),
            ca: dir.path().join("rsa-ca.pem"),
            rsigner: dir.path().join("rsa-ca.pem"),
            rkey: dir.path().join("rsa-ca.key"),
            extra,
        };
        let accepted: [&[&str]; 4] = [
            &[],
            &["-rmd", "sha384"],
            &["-rmd", "sha512"],
            &[
                "-rmd",
                "sha256",
                "-rsigopt",
                "rsa_padding_mode:pss",
                "-rsigopt",
                "rsa_pss_saltlen:digest",
            ],
        ];
        for extra in accepted {
            let responder = start_responder(&spec(extra));
            let (query, der) = ask(&leaf, &issuer, &responder.url, Some(vec![3; 8])).await;
            let verdict = verify_response(&query, &der, &issuer, SystemTime::now());
            assert_eq!(
                verdict.map(|v| (v.status, v.nonce_echoed)),
                Ok((CertStatus::Good, true)),
                "{extra:?}"
            );
        }
        // PSS with a salt length ring does not do (max) is refused, not misverified.
        let responder = start_responder(&spec(&[
            "-rsigopt",
            "rsa_padding_mode:pss",
            "-rsigopt",
            "rsa_pss_saltlen:max",
        ]));
        let (query, der) = ask(&leaf, &issuer, &responder.url, None).await;
        let result = verify_response(&query, &der, &issuer, SystemTime::now());
        assert!(matches!(result, Err(OcspError::Malformed(_))), "{result:?}");
    }

    #[tokio::test]
    async fn closed_port_fails_fast() {
        let query = sample_query(format!("http://127.0.0.1:{}/", free_port()));
        let start = Instant::now();
        let result = fetch(&query, Duration::from_secs(5)).await;
        assert!(matches!(result, Err(OcspError::Http(_))), "{result:?}");
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn silent_responder_times_out() {
        // The kernel completes the handshake from the backlog; nobody ever reads or answers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ocsp", listener.local_addr().unwrap());
        let query = sample_query(url);
        let timeout = Duration::from_millis(500);
        let start = Instant::now();
        let result = fetch(&query, timeout).await;
        let elapsed = start.elapsed();
        assert_eq!(result, Err(OcspError::Timeout));
        assert!(elapsed >= timeout && elapsed < timeout + Duration::from_secs(1));
        drop(listener);
    }

    /// Serves one canned HTTP answer to one connection.
    fn canned_server(answer: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let mut buf = [0u8; 4096];
            // Read the request (until the client pauses), then answer and hang up.
            while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
            let _ = conn.write_all(&answer);
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn http_errors_and_oversized_bodies_are_refused() {
        let not_found =
            canned_server(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec());
        let result = fetch(&sample_query(not_found), FETCH_TIMEOUT).await;
        assert!(
            matches!(&result, Err(OcspError::Http(m)) if m.contains("404")),
            "{result:?}"
        );

        let size = MAX_RESPONSE_BYTES + 1000;
        let mut huge = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n").into_bytes();
        huge.resize(huge.len() + size, 0x30);
        let result = fetch(&sample_query(canned_server(huge)), FETCH_TIMEOUT).await;
        assert!(
            matches!(&result, Err(OcspError::Http(m)) if m.contains("larger")),
            "{result:?}"
        );

        // A body without Content-Length, ended by the close, is read whole.
        let mut close_delimited = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        close_delimited.extend_from_slice(&[0x30, 0x03, 0x0a, 0x01, 0x03]);
        let result = fetch(&sample_query(canned_server(close_delimited)), FETCH_TIMEOUT).await;
        assert_eq!(result, Ok(vec![0x30, 0x03, 0x0a, 0x01, 0x03]));
    }

    #[tokio::test]
    async fn bad_urls_are_refused() {
        for url in [
            "https://127.0.0.1/",
            "not a url",
            "http:///nohost",
            "ldap://x/",
        ] {
            let result = fetch(&sample_query(url.into()), FETCH_TIMEOUT).await;
            assert!(
                matches!(result, Err(OcspError::Http(_))),
                "{url}: {result:?}"
            );
        }
    }

    /// A query built from fixed, tiny certificates (no PKI generation, no network).
    fn sample_query(url: String) -> Query {
        let (leaf, issuer) = rcgen_pair(&[]);
        build_query(&parsed(&leaf), &issuer, url, Some(vec![9; 4])).unwrap()
    }

    /// An rcgen CA and a leaf it issued with the given extra extensions; DER of both.
    fn rcgen_pair(extensions: &[rcgen::CustomExtension]) -> (Vec<u8>, Vec<u8>) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rcgen test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let mut leaf_params = CertificateParams::new(vec!["leaf.test".into()]).unwrap();
        leaf_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rcgen test leaf");
        leaf_params.custom_extensions = extensions.to_vec();
        let leaf = leaf_params
            .signed_by(&KeyPair::generate().unwrap(), &issuer)
            .unwrap();
        (leaf.der().to_vec(), ca_cert.der().to_vec())
    }

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        assert!(content.len() < 128, "short form only");
        let mut v = vec![tag, content.len() as u8];
        v.extend_from_slice(content);
        v
    }

    #[test]
    fn responder_urls_from_authority_information_access() {
        // id-ad-ocsp (1.3.6.1.5.5.7.48.1) and id-ad-caIssuers (1.3.6.1.5.5.7.48.2).
        let ad_ocsp = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
        let ad_ca_issuers = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
        let access = |method: &[u8], uri: &str| {
            let mut content = method.to_vec();
            content.extend(tlv(0x86, uri.as_bytes())); // [6] IMPLICIT IA5String
            tlv(0x30, &content)
        };
        let mut descriptions = access(&ad_ca_issuers, "http://pki.test/ca.crt");
        descriptions.extend(access(&ad_ocsp, "http://ocsp.test/"));
        descriptions.extend(access(&ad_ocsp, "http://ocsp2.test:8080/x"));
        let aia = rcgen::CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 1, 1],
            tlv(0x30, &descriptions),
        );
        let (leaf, _) = rcgen_pair(&[aia]);
        assert_eq!(
            responder_urls(&parsed(&leaf)),
            vec!["http://ocsp.test/", "http://ocsp2.test:8080/x"]
        );
        let (plain, _) = rcgen_pair(&[]);
        assert!(responder_urls(&parsed(&plain)).is_empty());
        // Something that is not a certificate never gets this far: it has no `Leaf`.
        assert!(Leaf::parse(b"not a certificate").is_err());
    }

    #[test]
    fn request_encoding() {
        let (leaf_der, issuer) = rcgen_pair(&[]);
        let leaf = parsed(&leaf_der);
        for bad in [0, MAX_NONCE_LEN + 1] {
            assert!(matches!(
                build_query(&leaf, &issuer, String::new(), Some(vec![1; bad])),
                Err(OcspError::BadInput(_))
            ));
        }
        // The leaf as its own issuer: the names do not match.
        assert!(matches!(
            build_query(&leaf, &leaf_der, String::new(), None),
            Err(OcspError::BadInput(_))
        ));
        assert!(matches!(
            build_query(&leaf, b"junk", String::new(), None),
            Err(OcspError::BadInput(_))
        ));

        let query = build_query(&leaf, &issuer, "u".into(), Some(vec![0xee; 32])).unwrap();
        let request = OcspRequest::from_der(&query.request_der).unwrap();
        let [single] = request.tbs_request.request_list.as_slice() else {
            panic!("one request");
        };
        let (_, leaf_x509) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
        let (_, issuer_x509) = x509_parser::parse_x509_certificate(&issuer).unwrap();
        assert_eq!(single.req_cert.hash_algorithm.algorithm, oid::SHA1);
        assert_eq!(
            single.req_cert.serial_number.as_bytes(),
            leaf_x509.raw_serial()
        );
        assert_eq!(
            single.req_cert.issuer_name_hash,
            digest(&SHA1_FOR_LEGACY_USE_ONLY, issuer_x509.subject().as_raw()).as_ref()
        );
        assert_eq!(
            single.req_cert.issuer_key_hash,
            digest(
                &SHA1_FOR_LEGACY_USE_ONLY,
                &issuer_x509.public_key().subject_public_key.data
            )
            .as_ref()
        );
        let extensions = request.tbs_request.request_extensions.unwrap();
        let [nonce] = extensions.as_slice() else {
            panic!("one extension");
        };
        assert_eq!(nonce.extn_id, oid::OCSP_NONCE);
        let mut wrapped = vec![0x04, 32];
        wrapped.extend([0xee; 32]);
        assert_eq!(nonce.extn_value, wrapped.as_slice());

        let without = build_query(&leaf, &issuer, "u".into(), None).unwrap();
        let request = OcspRequest::from_der(&without.request_der).unwrap();
        assert!(request.tbs_request.request_extensions.is_none());
    }

    #[test]
    fn unsuccessful_and_garbage_responses() {
        let (leaf, issuer) = rcgen_pair(&[]);
        let query = build_query(&parsed(&leaf), &issuer, String::new(), None).unwrap();
        let now = SystemTime::now();
        // OCSPResponse { responseStatus tryLater }
        let try_later = [0x30, 0x03, 0x0a, 0x01, 0x03];
        let err = verify_response(&query, &try_later, &issuer, now).unwrap_err();
        assert_eq!(err, OcspError::Unsuccessful(3));
        assert!(err.to_string().contains("tryLater"));
        // successful but no responseBytes
        let empty = [0x30, 0x03, 0x0a, 0x01, 0x00];
        assert!(matches!(
            verify_response(&query, &empty, &issuer, now),
            Err(OcspError::Malformed(_))
        ));
        for junk in [&b""[..], b"\x30", b"\x30\x80\x00\x00", b"<html>busy</html>"] {
            assert!(matches!(
                verify_response(&query, junk, &issuer, now),
                Err(OcspError::Malformed(_))
            ));
        }
    }

    #[test]
    fn response_data_tolerates_an_explicit_v1() {
        let body = |with_version: bool| {
            let mut content = Vec::new();
            if with_version {
                content.extend(tlv(0xa0, &tlv(0x02, &[0]))); // [0] EXPLICIT INTEGER v1
            }
            content.extend(tlv(0xa1, &tlv(0x30, &[]))); // byName, an empty Name
            content.extend(tlv(0x18, b"20260101000000Z")); // producedAt
            content.extend(tlv(0x30, &[])); // no responses
            tlv(0x30, &content)
        };
        for with_version in [false, true] {
            let der = body(with_version);
            let data = ResponseData::from_der(&der).unwrap();
            assert_eq!(data.version, 0);
            assert!(data.responses.is_empty());
        }
    }

    fn verdict(status: CertStatus, now: SystemTime, next: Option<Duration>) -> Verdict {
        Verdict {
            status,
            this_update: now,
            next_update: next.map(|d| now + d),
            nonce_echoed: true,
        }
    }

    #[test]
    fn cache_honours_next_update_max_age_and_bound() {
        let (_dir, p) = test_pki();
        let issuer = first(&p.intermediate_cert());
        let a = parsed(&first(&p.client_cert("ecdsa")));
        let b = parsed(&first(&p.client_cert("revoked")));
        let c = parsed(&first(&p.client_cert("machine")));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let secs = |s| now + Duration::from_secs(s);

        let mut cache = Cache::new(2, Duration::from_secs(3600));
        let good = verdict(CertStatus::Good, now, Some(Duration::from_secs(60)));
        cache.put(&a, &issuer, &good, now);
        assert_eq!(cache.get(&a, &issuer, secs(59)), Some(good.clone()));
        assert_eq!(cache.get(&a, &issuer, secs(60)), None, "nextUpdate reached");
        assert!(cache.is_empty(), "expired entries are dropped on lookup");

        // max_age caps a far (or absent) nextUpdate.
        let mut short = Cache::new(4, Duration::from_secs(10));
        let revoked = verdict(CertStatus::Revoked { reason: None }, now, None);
        short.put(&b, &issuer, &revoked, now);
        assert_eq!(short.get(&b, &issuer, secs(9)), Some(revoked.clone()));
        assert_eq!(short.get(&b, &issuer, secs(10)), None);
        let far = verdict(CertStatus::Good, now, Some(Duration::from_secs(86_400)));
        short.put(&a, &issuer, &far, now);
        assert_eq!(short.get(&a, &issuer, secs(10)), None);

        // Unknown and already-stale verdicts are not kept.
        cache.put(&a, &issuer, &verdict(CertStatus::Unknown, now, None), now);
        let stale = Verdict {
            next_update: Some(now - Duration::from_secs(1)),
            ..good.clone()
        };
        cache.put(&b, &issuer, &stale, now);
        assert!(cache.is_empty());

        // Bounded: a third entry evicts the one expiring first.
        let long = verdict(CertStatus::Good, now, Some(Duration::from_secs(600)));
        cache.put(&a, &issuer, &long, now);
        cache.put(&b, &issuer, &good, now);
        cache.put(&c, &issuer, &long, now);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&b, &issuer, now).is_none());
        assert!(cache.get(&a, &issuer, now).is_some());
        assert!(cache.get(&c, &issuer, now).is_some());
        // Replacing an existing entry does not evict anything.
        cache.put(&a, &issuer, &good, now);
        assert_eq!(cache.len(), 2);

        // Keyed on the issuer too, and garbage is simply a miss.
        let root = first(&p.ca_cert());
        assert!(cache.get(&a, &root, now).is_none());
        assert!(cache.get(&a, b"junk", now).is_none());
        assert!(
            Cache::new(0, Duration::from_secs(60))
                .get(&a, &issuer, now)
                .is_none()
        );
    }
}
