//! The client-certificate verifier as the handshake sees it: rustls's WebPKI verifier (RFC 5280
//! §6 path validation, CRLs) wrapped to do two things it does not.
//!
//! - **Signature schemes** (`tls.client_signature_schemes`): the CertificateRequest offers only
//!   the configured schemes (RFC 8446 §4.3.2 `signature_algorithms`; RFC 5246 §7.4.4
//!   `supported_signature_algorithms`), and a CertificateVerify made with another is refused
//!   (RFC 8446 §4.4.3: the scheme MUST be one the request offered; rustls leaves that check to
//!   the verifier). The signatures on the chain's certificates are checked by the inner verifier
//!   with every algorithm it knows: an ECDSA client certificate issued by an RSA CA still
//!   verifies when only ECDSA schemes are listed.
//! - **Naming the refused certificate**: when the chain is refused (revoked, expired, untrusted)
//!   rustls keeps nothing of it, so the operator could not tell which certificate it was. The
//!   wrapper records the leaf's subject, issuer and serial in a per-thread slot that
//!   [`take_refused`] empties; `TlsEngine::feed` reads it right after rustls returned, on the
//!   same thread (rustls calls the verifier synchronously inside `process_new_packets`).

use std::cell::RefCell;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

/// The certificate a refusal is about, as the log line and the audit object name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertName {
    pub subject: String,
    pub issuer: String,
    /// Lowercase hex, as `openssl x509 -serial` prints it.
    pub serial: String,
}

impl CertName {
    /// The name of a DER certificate; None when it does not parse (nothing to name).
    pub fn of(der: &[u8]) -> Option<Arc<CertName>> {
        let leaf = crate::x509::Leaf::parse(der).ok()?;
        Some(Arc::new(CertName {
            subject: leaf.subject,
            issuer: leaf.issuer,
            serial: leaf.serial_hex,
        }))
    }
}

thread_local! {
    static REFUSED: RefCell<Option<Arc<CertName>>> = const { RefCell::new(None) };
    static SIGNATURE: std::cell::Cell<Option<SignatureOutcome>> = const { std::cell::Cell::new(None) };
}

/// The certificate the verifier refused on this thread since the last call, if any.
pub fn take_refused() -> Option<Arc<CertName>> {
    REFUSED.with(|r| r.borrow_mut().take())
}

/// What became of the client's CertificateVerify: rustls checks it but does not report its
/// scheme on the server side, so the verifier notes it for the audit record and the refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureOutcome {
    /// Verified with this scheme.
    Verified(SignatureScheme),
    /// Made with a scheme `client_signature_schemes` does not allow.
    NotAllowed(SignatureScheme),
    /// The chain verified; this signature did not.
    Invalid(SignatureScheme),
}

/// The client CertificateVerify checked on this thread since the last call, if any.
pub fn take_signature() -> Option<SignatureOutcome> {
    SIGNATURE.with(std::cell::Cell::take)
}

/// The IANA name of a scheme (`rsa_pss_rsae_sha256`), or its code point.
pub fn scheme_name(scheme: SignatureScheme) -> String {
    super::client_hello::signature_scheme_name(u16::from(scheme)).into_owned()
}

/// Notes the CertificateVerify's scheme and verdict (for the audit record and the refusal).
fn signature_verdict(
    scheme: SignatureScheme,
    verdict: Result<HandshakeSignatureValid, Error>,
) -> Result<HandshakeSignatureValid, Error> {
    let outcome = match verdict {
        Ok(_) => SignatureOutcome::Verified(scheme),
        Err(_) => SignatureOutcome::Invalid(scheme),
    };
    SIGNATURE.with(|s| s.set(Some(outcome)));
    verdict
}

fn record_refused(der: &[u8]) {
    let name = CertName::of(der);
    REFUSED.with(|r| *r.borrow_mut() = name);
}

/// The verifier every handshake of a configuration uses (see the module doc).
#[derive(Debug)]
pub struct ClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    /// The schemes offered and accepted; None: whatever the inner verifier supports.
    schemes: Option<Vec<SignatureScheme>>,
    /// Revocation is checked but no CRL is loaded yet (every `tls.crl_url` still to be
    /// fetched, nothing cached): WebPKI given no CRL checks nothing, so a chain it accepts is
    /// refused here as of unknown revocation status rather than let through.
    no_crl_yet: bool,
}

impl ClientVerifier {
    /// `schemes` empty: no restriction.
    pub fn new(inner: Arc<dyn ClientCertVerifier>, schemes: &[u16]) -> Self {
        let schemes = (!schemes.is_empty())
            .then(|| schemes.iter().map(|&c| SignatureScheme::from(c)).collect());
        ClientVerifier {
            inner,
            schemes,
            no_crl_yet: false,
        }
    }

    /// See `no_crl_yet`.
    pub fn refusing_until_crls(mut self, no_crl_yet: bool) -> Self {
        self.no_crl_yet = no_crl_yet;
        self
    }

    fn allowed(&self, scheme: SignatureScheme) -> Result<(), Error> {
        match &self.schemes {
            Some(list) if !list.contains(&scheme) => {
                SIGNATURE.with(|s| s.set(Some(SignatureOutcome::NotAllowed(scheme))));
                Err(Error::General(format!(
                    "the supplicant signed its CertificateVerify with {}, which \
                 client_signature_schemes does not allow",
                    scheme_name(scheme)
                )))
            }
            _ => Ok(()),
        }
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verdict = {
            let _leaf = super::verified_signatures::LeafGuard::new(end_entity.as_ref());
            self.inner
                .verify_client_cert(end_entity, intermediates, now)
        };
        // A path that verified, or failed only for want of a CRL: its intermediates may issue
        // CRLs to fetch. `x509/crl_fetch.rs` uses one only after checking its signature
        // against a `ca_file` CA.
        if matches!(
            &verdict,
            Ok(_)
                | Err(Error::InvalidCertificate(
                    rustls::CertificateError::UnknownRevocationStatus
                ))
        ) {
            crate::x509::crl_fetch::saw_intermediates(intermediates);
        }
        let verdict = verdict.and_then(|ok| {
            if self.no_crl_yet {
                Err(Error::InvalidCertificate(
                    rustls::CertificateError::UnknownRevocationStatus,
                ))
            } else {
                Ok(ok)
            }
        });
        if verdict.is_err() {
            record_refused(end_entity.as_ref());
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.allowed(dss.scheme)?;
        signature_verdict(
            dss.scheme,
            self.inner.verify_tls12_signature(message, cert, dss),
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.allowed(dss.scheme)?;
        signature_verdict(
            dss.scheme,
            self.inner.verify_tls13_signature(message, cert, dss),
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        let all = self.inner.supported_verify_schemes();
        match &self.schemes {
            Some(list) => all.into_iter().filter(|s| list.contains(s)).collect(),
            None => all,
        }
    }
}
