//! Certificate and CRL signatures verified once (RFC 5280 §6.1.3 (a)(1), §6.3.3 (f)): the
//! signature of every CA certificate and CRL a path runs through, remembered by what was signed.
//!
//! WebPKI verifies every signature of a path on every handshake: the supplicant's leaf by its
//! intermediate CA, the intermediate by the root, and each CRL it consults by its issuer. All
//! supplicants of a campus share the intermediates and the CRLs, so all but the leaf's signature
//! are the same computation each time: one ECDSA P-256 verification of the test PKI's
//! intermediate was 7% of a paced authentication's CPU (BENCHMARKS.md, round 3, part 11).
//!
//! A verification is a pure function of the algorithm, the public key, the signed octets and
//! the signature, so its outcome can be remembered under a SHA-256 of all four: only a
//! successful one, and only the outcome. Everything else about the path — validity times, name
//! and path-length constraints, key usage, revocation — WebPKI still checks on every handshake.
//! The leaf's own signature is never remembered (it is a different computation per device, and
//! a benchmark whose supplicants all present one certificate would otherwise flatter itself).
//!
//! A `fips` build does not remember anything: there every verification stays with the
//! validated module.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
#[cfg(test)]
use std::sync::Arc;
use std::sync::{Mutex, OnceLock};

use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};

use crate::core::guard::lock;
use crate::crypto::digest;

/// Signatures remembered (32 octets each, plus the queue): far more CA certificates and CRLs
/// than a campus has, and a bound on what a stream of chains from peers could make us keep.
const CAPACITY: usize = 4096;

/// The wrapped algorithms, once built (see `remembering`).
static ALL: OnceLock<&'static [&'static dyn SignatureVerificationAlgorithm]> = OnceLock::new();

thread_local! {
    /// The to-be-signed part of the leaf being verified on this thread (see `LeafGuard`).
    static LEAF_TBS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The provider's certificate signature algorithms, each remembering what it verified.
/// `mapping` (the TLS handshake's own signatures: always new messages) is left as it is.
pub fn remembering(algs: WebPkiSupportedAlgorithms) -> WebPkiSupportedAlgorithms {
    if cfg!(feature = "fips") {
        return algs;
    }
    // `all` must be `'static`: built once per process (the provider is the same every time).
    let all = *ALL.get_or_init(|| {
        let wrapped: Vec<&'static dyn SignatureVerificationAlgorithm> = algs
            .all
            .iter()
            .map(|&inner| {
                let memo: &'static Remembering = Box::leak(Box::new(Remembering { inner }));
                memo as &'static dyn SignatureVerificationAlgorithm
            })
            .collect();
        Vec::leak(wrapped)
    });
    WebPkiSupportedAlgorithms {
        all,
        mapping: algs.mapping,
    }
}

/// While alive, the leaf `der` is being verified on this thread: its own signature is verified
/// afresh, never remembered.
pub struct LeafGuard(());

impl LeafGuard {
    pub fn new(der: &[u8]) -> Self {
        LEAF_TBS.with(|l| {
            let mut l = l.borrow_mut();
            l.clear();
            l.extend_from_slice(to_be_signed(der).unwrap_or(&[]));
        });
        LeafGuard(())
    }
}

impl Drop for LeafGuard {
    fn drop(&mut self) {
        LEAF_TBS.with(|l| l.borrow_mut().clear());
    }
}

/// The first element of a DER SEQUENCE (a certificate's tbsCertificate, RFC 5280 §4.1), with
/// its header; None when `der` is not a SEQUENCE holding one.
fn to_be_signed(der: &[u8]) -> Option<&[u8]> {
    use der::{Decode, Header, Reader, SliceReader, Tag};
    let mut reader = SliceReader::new(der).ok()?;
    let outer = Header::decode(&mut reader).ok()?;
    if outer.tag() != Tag::Sequence {
        return None;
    }
    reader.tlv_bytes().ok()
}

fn is_leaf(message: &[u8]) -> bool {
    LEAF_TBS.with(|l| {
        let l = l.borrow();
        !l.is_empty() && l.as_slice() == message
    })
}

/// The verified signatures, oldest first out.
struct Verified {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

fn verified() -> &'static Mutex<Verified> {
    static VERIFIED: OnceLock<Mutex<Verified>> = OnceLock::new();
    VERIFIED.get_or_init(|| {
        Mutex::new(Verified {
            set: HashSet::new(),
            order: VecDeque::new(),
        })
    })
}

impl Verified {
    fn insert(&mut self, key: [u8; 32]) {
        if !self.set.insert(key) {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

struct Remembering {
    inner: &'static dyn SignatureVerificationAlgorithm,
}

impl std::fmt::Debug for Remembering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remembering({:?})", self.inner)
    }
}

impl Remembering {
    /// SHA-256 over the algorithm identifiers and the three inputs, each length-prefixed so no
    /// two different inputs hash the same octets.
    fn key(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> Option<[u8; 32]> {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for part in [
            self.inner.public_key_alg_id().as_ref(),
            self.inner.signature_alg_id().as_ref(),
            public_key,
            message,
            signature,
        ] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        <[u8; 32]>::try_from(ctx.finish().as_ref()).ok()
    }
}

impl SignatureVerificationAlgorithm for Remembering {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        if is_leaf(message) {
            return self.inner.verify_signature(public_key, message, signature);
        }
        let Some(key) = self.key(public_key, message, signature) else {
            return self.inner.verify_signature(public_key, message, signature);
        };
        if lock(verified()).set.contains(&key) {
            return Ok(());
        }
        self.inner
            .verify_signature(public_key, message, signature)?;
        lock(verified()).insert(key);
        Ok(())
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.signature_alg_id()
    }

    fn fips(&self) -> bool {
        self.inner.fips()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests may read the clock
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use rustls::pki_types::{CertificateDer, UnixTime};
    use rustls::server::danger::ClientCertVerifier;

    use super::*;

    /// Verifies `b"good"` only, and counts every call.
    #[derive(Debug)]
    struct Counting(AtomicUsize);

    impl SignatureVerificationAlgorithm for Counting {
        fn verify_signature(&self, _: &[u8], _: &[u8], sig: &[u8]) -> Result<(), InvalidSignature> {
            self.0.fetch_add(1, Ordering::SeqCst);
            if sig == b"good" {
                Ok(())
            } else {
                Err(InvalidSignature)
            }
        }
        fn public_key_alg_id(&self) -> AlgorithmIdentifier {
            rustls::pki_types::alg_id::ECDSA_P256
        }
        fn signature_alg_id(&self) -> AlgorithmIdentifier {
            rustls::pki_types::alg_id::ECDSA_SHA256
        }
        fn fips(&self) -> bool {
            false
        }
    }

    #[test]
    fn a_good_signature_is_verified_once_a_bad_one_every_time() {
        static INNER: Counting = Counting(AtomicUsize::new(0));
        let memo = Remembering { inner: &INNER };
        let calls = || INNER.0.load(Ordering::SeqCst);
        // A message no other test uses: the set of verified signatures is the process's.
        let message = b"a_good_signature_is_verified_once";
        assert!(memo.verify_signature(b"key", message, b"good").is_ok());
        assert!(memo.verify_signature(b"key", message, b"good").is_ok());
        assert_eq!(calls(), 1);
        // Another key, another signature: verified afresh.
        assert!(memo.verify_signature(b"key2", message, b"good").is_ok());
        assert_eq!(calls(), 2);
        for _ in 0..2 {
            assert!(memo.verify_signature(b"key", message, b"bad").is_err());
        }
        assert_eq!(calls(), 4);
    }

    #[test]
    fn the_leaf_being_verified_is_never_remembered() {
        static INNER: Counting = Counting(AtomicUsize::new(0));
        let memo = Remembering { inner: &INNER };
        // A certificate-shaped SEQUENCE { tbs SEQUENCE { 01 02 }, ... }.
        let tbs = [0x30, 0x02, 0x01, 0x02];
        let leaf = [0x30, 0x07, 0x30, 0x02, 0x01, 0x02, 0x05, 0x01, 0x00];
        {
            let _leaf = LeafGuard::new(&leaf);
            for _ in 0..2 {
                assert!(memo.verify_signature(b"k", &tbs, b"good").is_ok());
            }
        }
        assert_eq!(INNER.0.load(Ordering::SeqCst), 2);
        // The same octets outside a leaf's verification (say, a CA certificate): remembered.
        for _ in 0..2 {
            assert!(memo.verify_signature(b"k", &tbs, b"good").is_ok());
        }
        assert_eq!(INNER.0.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn to_be_signed_reads_short_and_long_form_lengths() {
        assert_eq!(
            to_be_signed(&[0x30, 0x05, 0x30, 0x01, 0xaa, 0x05, 0x00]),
            Some(&[0x30, 0x01, 0xaa][..])
        );
        let mut long = vec![0x30, 0x81, 0x83, 0x30, 0x81, 0x80];
        long.extend([7u8; 0x80]);
        long.extend([0x05, 0x00]);
        assert_eq!(to_be_signed(&long).map(<[u8]>::len), Some(0x83));
        assert_eq!(to_be_signed(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(to_be_signed(&[0x30, 0x05, 0x30, 0x09]), None);
        assert_eq!(to_be_signed(&[]), None);
        // A SET is no certificate.
        assert_eq!(to_be_signed(&[0x31, 0x03, 0x30, 0x01, 0xaa]), None);
    }

    /// (issuer's public key, to-be-signed octets, signature) of `cert` signed by `issuer`, as
    /// WebPKI hands them to the algorithm.
    fn signed(cert: &[u8], issuer: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let (_, c) = x509_parser::parse_x509_certificate(cert).unwrap();
        let (_, i) = x509_parser::parse_x509_certificate(issuer).unwrap();
        (
            i.public_key().subject_public_key.data.to_vec(),
            c.tbs_certificate.as_ref().to_vec(),
            c.signature_value.data.to_vec(),
        )
    }

    fn remembered((key, tbs, sig): &(Vec<u8>, Vec<u8>, Vec<u8>)) -> bool {
        let set = &lock(verified()).set;
        ALL.get().unwrap().iter().any(|alg| {
            let memo = Remembering { inner: *alg };
            // `ALL` holds the wrappers; the key is over the algorithm's identifiers, which the
            // wrapper passes through.
            memo.key(key, tbs, sig).is_some_and(|k| set.contains(&k))
        })
    }

    #[test]
    fn a_verified_chain_leaves_its_intermediate_remembered_and_its_leaf_not() {
        let dir = tempfile::tempdir().unwrap();
        certradius_pki::generate(dir.path()).unwrap();
        let load = |name: &str| crate::x509::pem::load_certs("t", &dir.path().join(name)).unwrap();
        let (roots, chain) = (load("ca.pem"), load("client-rsa.pem"));
        let mut store = rustls::RootCertStore::empty();
        store.add_parsable_certificates(roots.clone());
        let verifier = crate::tls::client_verifier::ClientVerifier::new(
            rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(store),
                crate::tls::provider(),
            )
            .build()
            .unwrap(),
            &[],
        );
        let (leaf, intermediates): (&CertificateDer<'_>, _) = chain.split_first().unwrap();
        let intermediate = intermediates.first().unwrap();
        assert!(
            verifier
                .verify_client_cert(leaf, intermediates, UnixTime::now())
                .is_ok()
        );
        assert!(remembered(&signed(intermediate, &roots[0])));
        assert!(!remembered(&signed(leaf, intermediate)));
        // A second verification still checks the leaf and succeeds.
        assert!(
            verifier
                .verify_client_cert(leaf, intermediates, UnixTime::now())
                .is_ok()
        );
    }
}
