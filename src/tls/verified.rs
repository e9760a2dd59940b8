//! The proof that a client certificate was verified (RFC 5216 §5.3: the server MUST verify the
//! peer's certificate chain; RFC 5280 §6 path validation, done by rustls's WebPKI verifier).
//!
//! A [`VerifiedPeer`] exists only after every check has run. After a full handshake rustls has
//! verified the chain. A resumed session (RFC 5077 tickets, TLS 1.2 session IDs, TLS 1.3 PSK)
//! brings back the certificate without verifying it again, so [`after_handshake`] runs the
//! verifier again with the configuration and the CRLs in force now ([`recheck_resumed`]).
//!
//! The leaf is parsed here, once per authentication, into the [`Leaf`] every later step reads
//! (checks, rules, OCSP, the live-session record); nothing after this parses it again.

use std::fmt;
use std::sync::Arc;

use rustls::ServerConnection;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;

use super::TlsFailure;
use super::client_verifier::CertName;
use crate::reason::ReasonCode;
use crate::x509::Leaf;

/// The verified peer of a completed handshake; re-verifies a resumed session's chain first.
pub(super) fn after_handshake(
    conn: &ServerConnection,
    verifier: &dyn ClientCertVerifier,
    verified: &VerifiedChains,
    now: UnixTime,
) -> Result<VerifiedPeer, TlsFailure> {
    let missing = |detail: &str| TlsFailure::new(ReasonCode::NoClientCertificate, detail);
    if conn.is_handshaking() {
        return Err(missing("the handshake is not complete"));
    }
    let chain = conn
        .peer_certificates()
        .ok_or_else(|| missing("handshake ended without a certificate"))?;
    let leaf = chain.first().map(|c| Leaf::parse(c.as_ref()));
    if conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
        let not_after = leaf
            .as_ref()
            .and_then(|l| l.as_ref().ok())
            .map(|l| l.not_after);
        recheck(verifier, verified, chain, not_after, now)?;
    }
    match leaf {
        Some(Ok(leaf)) => Ok(VerifiedPeer::new(chain.to_vec(), leaf)),
        _ => Err(missing("handshake ended without a certificate")),
    }
}

/// Chains this configuration has verified, and until when that verdict holds: the earliest
/// notAfter of the chain, and the earliest nextUpdate of the CRLs when expired CRLs are refused.
/// Same chain, same CRLs, same trust anchors, a time inside that window: the verifier would say
/// the same again, so a resumed session need not pay for its signatures twice. A reload (new
/// CRLs, new CAs) builds a new, empty one.
pub struct VerifiedChains {
    map: std::sync::Mutex<std::collections::HashMap<[u8; 32], u64>>,
    max_entries: usize,
    crl_until: Option<u64>,
}

impl VerifiedChains {
    pub fn new(max_entries: usize, crl_until: Option<u64>) -> Self {
        VerifiedChains {
            map: std::sync::Mutex::new(std::collections::HashMap::new()),
            max_entries: max_entries.max(1),
            crl_until,
        }
    }

    fn key(chain: &[CertificateDer<'_>]) -> [u8; 32] {
        let mut ctx = crate::crypto::digest::Context::new(&crate::crypto::digest::SHA256);
        for c in chain {
            ctx.update(&(c.as_ref().len() as u64).to_be_bytes());
            ctx.update(c.as_ref());
        }
        let mut k = [0u8; 32];
        k.copy_from_slice(ctx.finish().as_ref());
        k
    }

    /// Records a chain the verifier accepted. `leaf_not_after` is the leaf's notAfter when the
    /// caller has already read it (the leaf is then not parsed again).
    pub fn remember(&self, chain: &[CertificateDer<'_>], leaf_not_after: Option<i64>) {
        let mut until = self.crl_until.unwrap_or(u64::MAX);
        let skip = usize::from(leaf_not_after.is_some());
        let not_afters = leaf_not_after
            .into_iter()
            .map(Some)
            .chain(chain.iter().skip(skip).map(|c| {
                crate::x509::parse_certificate(c.as_ref())
                    .ok()
                    .map(|(_, cert)| cert.validity().not_after.timestamp())
            }));
        for not_after in not_afters {
            let Some(not_after) = not_after else {
                return;
            };
            until = until.min(u64::try_from(not_after).unwrap_or(0));
        }
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= self.max_entries {
                map.clear();
            }
            map.insert(Self::key(chain), until);
        }
    }

    fn holds(&self, chain: &[CertificateDer<'_>], now: UnixTime) -> bool {
        self.map
            .lock()
            .ok()
            .and_then(|m| m.get(&Self::key(chain)).copied())
            .is_some_and(|until| now.as_secs() < until)
    }
}

/// Re-verifies the certificate restored from a resumed session as if it were presented now:
/// chain, validity at `now`, extended key usage and the CRLs currently loaded (answered from
/// `verified` when this configuration already verified the same chain and nothing that could
/// change the answer has passed).
pub fn recheck_resumed(
    verifier: &dyn ClientCertVerifier,
    verified: &VerifiedChains,
    chain: &[CertificateDer<'static>],
    now: UnixTime,
) -> Result<(), TlsFailure> {
    recheck(verifier, verified, chain, None, now)
}

/// [`recheck_resumed`] with the leaf's notAfter when the caller has read it already.
fn recheck(
    verifier: &dyn ClientCertVerifier,
    verified: &VerifiedChains,
    chain: &[CertificateDer<'static>],
    leaf_not_after: Option<i64>,
    now: UnixTime,
) -> Result<(), TlsFailure> {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err(TlsFailure::new(
            ReasonCode::NoClientCertificate,
            "resumed session without a client certificate",
        ));
    };
    if verified.holds(chain, now) {
        return Ok(());
    }
    verifier
        .verify_client_cert(leaf, intermediates, now)
        .map_err(|e| TlsFailure {
            cert: CertName::of(leaf.as_ref()),
            ..TlsFailure::from(&e)
        })?;
    verified.remember(chain, leaf_not_after);
    Ok(())
}

/// A client whose certificate chain was verified: by rustls during a full handshake, or again by
/// [`recheck_resumed`] for a resumed session. Only [`after_handshake`] builds one (its
/// constructor is private to this module), so holding it is proof of verification. Cloning is
/// cheap: the chain and the parsed leaf are shared.
#[derive(Clone)]
pub struct VerifiedPeer {
    chain: Arc<[CertificateDer<'static>]>,
    leaf: Arc<Leaf>,
    pub subject: String,
    pub issuer: String,
    /// Serial number in lowercase hex, as operators compare it with `openssl x509 -serial`.
    pub serial: String,
}

impl fmt::Debug for VerifiedPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedPeer")
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .field("serial", &self.serial)
            .finish()
    }
}

impl VerifiedPeer {
    fn new(chain: Vec<CertificateDer<'static>>, leaf: Leaf) -> Self {
        VerifiedPeer {
            subject: leaf.subject.clone(),
            issuer: leaf.issuer.clone(),
            serial: leaf.serial_hex.clone(),
            chain: chain.into(),
            leaf: Arc::new(leaf),
        }
    }

    /// A peer from a certificate file, for unit tests of what consumes one.
    #[cfg(test)]
    pub(crate) fn for_test(chain: Vec<CertificateDer<'static>>) -> Option<Self> {
        let leaf = Leaf::parse(chain.first()?.as_ref()).ok()?;
        Some(Self::new(chain, leaf))
    }

    /// The end-entity certificate, parsed once for this authentication.
    pub fn leaf(&self) -> &Arc<Leaf> {
        &self.leaf
    }

    /// The DER of the end-entity certificate.
    pub fn leaf_der(&self) -> &[u8] {
        self.chain.first().map(|c| c.as_ref()).unwrap_or(&[])
    }

    /// The chain as the peer sent it, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }
}
