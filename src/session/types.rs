//! What a conversation works with and reports: its context from the configuration, the
//! [`Step`] each EAP-Response leads to (RFC 3579 §2.6: Access-Challenge, -Accept or -Reject), the
//! refusal [`Reason`], the per-authentication [`Summary`], and the revocation lookup the shell
//! performs (RFC 6960) when a conversation pauses for it.

use std::sync::Arc;
use std::time::Instant;

use super::{DEFAULT_FRAGMENT_SIZE, FOLLOWED_MTU_MAX, MAX_FRAGMENT_FOR_RADIUS};
use crate::authz::{Grant, Policy};
use crate::eap::{ReassemblyBudget, ReassemblyLimits, TLS_HEADER_OVERHEAD};
use crate::reason::ReasonCode;
use crate::tls::keys::SessionKeys;
use crate::tls::{self, TlsFailure, VerifiedPeer};

/// Everything a session needs from the server's configuration.
pub struct SessionContext {
    /// The server certificate, CAs and CRLs; a reload brings a new context (a conversation
    /// keeps the one it started with).
    pub tls: tls::TlsSetup,
    /// `tls.fragment_size`; None: follow the NAS's Framed-MTU (see `max_fragment`).
    pub fragment_size: Option<usize>,
    pub reassembly: ReassemblyLimits,
    /// Reassembly octets of all conversations together (`eap.max_reassembly_bytes_total`).
    pub reassembly_budget: Option<Arc<ReassemblyBudget>>,
    pub policy: Arc<dyn Policy>,
    /// OCSP checking of client certificates; None: off.
    pub ocsp: Option<OcspPolicy>,
    /// `[directory]`: the account the certificate names is looked up after the certificate
    /// (and OCSP) checks; None: off.
    pub directory: Option<DirectoryPolicy>,
}

impl SessionContext {
    /// TLS data per EAP-TLS request.
    ///
    /// - `tls.fragment_size` set: that size, lowered to what Framed-MTU allows (RFC 3580 §3.15:
    ///   the largest EAP packet the NAS's link carries).
    /// - Unset, and the NAS sends Framed-MTU: what it allows, up to a [`FOLLOWED_MTU_MAX`]-octet
    ///   EAP packet. A NAS that says 1400 (hostapd, eapol_test and most switches and controllers
    ///   do) gets the server's first flight of a typical RSA certificate in one Access-Challenge
    ///   instead of two: one round trip less per authentication.
    /// - Unset, and no Framed-MTU: [`DEFAULT_FRAGMENT_SIZE`], which fits any link.
    ///
    /// Never more than the RADIUS packet limit allows, never less than 64.
    pub fn max_fragment(&self, framed_mtu: Option<u32>) -> usize {
        let by_mtu = framed_mtu.map(|mtu| (mtu as usize).saturating_sub(TLS_HEADER_OVERHEAD));
        let n = match (self.fragment_size, by_mtu) {
            (Some(configured), Some(by_mtu)) => configured.min(by_mtu),
            (Some(configured), None) => configured,
            (None, Some(by_mtu)) => by_mtu.min(FOLLOWED_MTU_MAX - TLS_HEADER_OVERHEAD),
            (None, None) => DEFAULT_FRAGMENT_SIZE,
        };
        n.clamp(64, MAX_FRAGMENT_FOR_RADIUS)
    }
}

/// A stable, machine-readable reason (for logs and counters) with a human detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: ReasonCode,
    pub detail: String,
    /// The client certificate refused during the handshake (no verified peer exists then).
    pub cert: Option<Arc<crate::tls::CertName>>,
}

impl Reason {
    pub fn new(code: ReasonCode, detail: impl Into<String>) -> Self {
        Reason {
            code,
            detail: detail.into(),
            cert: None,
        }
    }
}

impl From<TlsFailure> for Reason {
    fn from(f: TlsFailure) -> Self {
        Reason {
            code: f.reason,
            detail: f.detail,
            cert: f.cert,
        }
    }
}

/// What the per-authentication log line reports.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The EAP identity exactly as the peer sent it (echoed in User-Name byte for byte).
    pub identity: Vec<u8>,
    pub peer: Option<VerifiedPeer>,
    /// The CA certificates of the peer's verified chain as (issuer, serial hex), leaf excluded
    /// (`tls::CaCerts::chain_of`); empty without a verified peer.
    pub ca_chain: Vec<(String, String)>,
    pub tls_version: &'static str,
    pub cipher_suite: String,
    pub round_trips: u32,
    pub started: Instant,
    pub resumed: bool,
    /// What the peer's ClientHello offered, when its first flight was one.
    pub client_hello: Option<crate::tls::client_hello::ClientHello>,
    /// The scheme of the client's CertificateVerify, once verified.
    pub signature_scheme: Option<rustls::SignatureScheme>,
    /// The key exchange group the handshake used.
    pub group: Option<rustls::NamedGroup>,
    /// The account's groups (`[directory] group_attribute`), when the directory was asked and
    /// found it.
    pub directory_groups: Option<Arc<[String]>>,
    /// The certificate facts the directory was searched with (when it found the account): what
    /// `revalidate_secs` searches again for the live session.
    pub directory_facts: Option<Arc<crate::directory::filter::FilterFacts>>,
}

#[must_use]
#[derive(Debug)]
pub enum Step {
    /// Send an Access-Challenge carrying this EAP-Request.
    Challenge(Vec<u8>),
    /// Send an Access-Accept with EAP-Success, the MPPE keys and the granted attributes.
    Accept {
        eap: Vec<u8>,
        keys: SessionKeys,
        grant: Grant,
        summary: Box<Summary>,
    },
    /// Send an Access-Reject with EAP-Failure.
    Reject {
        eap: Vec<u8>,
        reason: Reason,
        summary: Box<Summary>,
    },
    /// Send nothing: the response does not belong to this conversation's current exchange.
    Discard(ReasonCode),
    /// Pause: the shell performs the lookup (OCSP, directory), then calls `resume`.
    Lookup(Box<Lookup>),
}

/// What the shell must look up before the conversation goes on.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The certificate's revocation status (RFC 6960).
    Revocation(RevocationLookup),
    /// The account the certificate names (`[directory]`, RFC 4511).
    Directory(DirectoryLookup),
}

/// The shell's answer to a [`Lookup`], of the same kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Revocation(RevocationVerdict),
    Directory(DirectoryVerdict),
}

/// The directory lookup: the certificate facts `user_filter` placeholders are filled from
/// (the shell builds the RFC 4515 filter, which is also the cache key).
#[derive(Debug, Clone)]
pub struct DirectoryLookup {
    pub facts: crate::directory::filter::FilterFacts,
}

/// What the directory said about the account, as the session applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryVerdict {
    /// Exactly one entry, enabled: its groups become the rule match field `directory_group`.
    Found {
        groups: Arc<[String]>,
        /// The account's `objectSid` (string form), when read and present.
        sid: Option<String>,
    },
    /// No entry, several, or the certificate lacks a field the filter names (the detail says).
    NotFound(String),
    /// The entry does not match `enabled_filter`.
    Disabled(String),
    /// Every URL failed and no usable cached answer.
    Unavailable(String),
}

/// `[directory]` as the session needs it.
#[derive(Debug, Clone, Default)]
pub struct DirectoryPolicy {
    /// KB5014754 strong mapping: the certificate's SID against the account's `objectSid`.
    pub sid_binding: crate::config::directory::SidBinding,
}

/// What the shell must look up before the conversation can be decided.
#[derive(Debug, Clone)]
pub struct RevocationLookup {
    /// The peer's end-entity certificate, parsed once when it was verified (issuer, serial and
    /// responder URLs for the request; issuer and serial for a Disconnect when it is revoked).
    pub leaf: Arc<crate::x509::Leaf>,
    /// The issuer's certificate (from the peer's chain or our CA files); None if not found.
    pub issuer: Option<Vec<u8>>,
    pub url_override: Option<String>,
}

/// The shell's answer to a [`RevocationLookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationVerdict {
    Good,
    Revoked(String),
    Unknown,
    Unavailable(String),
}

/// `[ocsp]` as the session needs it.
#[derive(Debug, Clone, Default)]
pub struct OcspPolicy {
    pub url_override: Option<String>,
    /// Accept when the responder cannot be reached, times out or does not know the certificate.
    pub soft_fail: bool,
    /// When the responder cannot be reached, the CRL check (done in the handshake) decides.
    pub crl_fallback: bool,
}
