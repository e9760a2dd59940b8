//! Authorization after authentication: who, with a verified certificate, gets onto which network.
//!
//! The policy runs once per conversation, after rustls has verified the certificate chain
//! (RFC 5216 §5.3: the server decides whether the authenticated peer may have access). It sees the
//! [`VerifiedPeer`] (a proof that verification happened) and the RADIUS request's attributes, and
//! returns a [`Decision`]: reject with a stable reason, or accept with reply attributes to send to
//! the NAS (RFC 2868 / RFC 3580 VLAN attributes, Filter-Id, Session-Timeout, Class, ...).
//!
//! MAC Authentication Bypass requests (`mab`) have no certificate: after the allow list admitted
//! one, [`Policy::authorize_mab`] lets the rules that name `method = "mab"` refine (or refuse)
//! it; rules that do not name the method never see MAB requests.

mod evaluate;
pub(crate) mod glob;
mod identity;
pub mod rules;

use std::net::IpAddr;

use crate::tls::VerifiedPeer;

/// How the request authenticates: the rule match field `method`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Method {
    /// EAP-TLS (RFC 5216, RFC 9190): a verified client certificate.
    #[default]
    EapTls,
    /// MAC Authentication Bypass: a listed MAC, no proof beyond the switch port.
    Mab,
}

impl Method {
    /// The stable name: rule match values, the audit log's `method`, the metrics label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::EapTls => "eap-tls",
            Method::Mab => "mab",
        }
    }
}

/// The RADIUS request attributes a policy may match on.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo<'a> {
    pub method: Method,
    pub nas: Option<IpAddr>,
    pub user_name: Option<&'a [u8]>,
    pub calling_station_id: Option<&'a [u8]>,
    pub called_station_id: Option<&'a [u8]>,
    pub nas_port_type: Option<u32>,
    pub framed_mtu: Option<u32>,
    /// The account's groups from `[directory]` (the rule match field `directory_group`); None
    /// when no directory was asked.
    pub directory_groups: Option<&'a [String]>,
}

/// One attribute to add to an Access-Accept, already encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyAttribute {
    /// `None` for a standard attribute, `Some(vendor)` for a Vendor-Specific sub-attribute.
    pub vendor: Option<u32>,
    pub typ: u8,
    pub value: Vec<u8>,
}

/// What an accepted peer is granted, and the rule that granted it (for the log line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    pub rule: Option<String>,
    pub attributes: Vec<ReplyAttribute>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Accept(Grant),
    Reject {
        reason: crate::reason::ReasonCode,
        detail: String,
    },
}

pub trait Policy: Send + Sync {
    fn authorize(
        &self,
        identity: &[u8],
        peer: &VerifiedPeer,
        request: &RequestInfo<'_>,
    ) -> Decision;

    /// A Reply-Message for an Access-Reject with this reason, if the operator wants the NAS to
    /// see one. Only the stable reason name, never certificate details.
    fn reject_message(&self, _reason: &str) -> Option<String> {
        None
    }

    /// The first rule naming `method = "mab"` that matches a MAB request the allow list
    /// admitted: its decision, or None (no such rule: the allow list's VLAN applies).
    fn authorize_mab(&self, _request: &RequestInfo<'_>) -> Option<Decision> {
        None
    }
}

/// Every peer whose chain verified is accepted, with no extra attributes.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowVerified;

impl Policy for AllowVerified {
    fn authorize(&self, _: &[u8], _: &VerifiedPeer, _: &RequestInfo<'_>) -> Decision {
        Decision::Accept(Grant::default())
    }
}

/// Certificate checks first (issuer, key strength, key usage), then the inner policy.
pub struct Checked<P> {
    pub checks: crate::x509::checks::CertChecks,
    pub inner: P,
}

impl<P: Policy> Policy for Checked<P> {
    fn authorize(
        &self,
        identity: &[u8],
        peer: &VerifiedPeer,
        request: &RequestInfo<'_>,
    ) -> Decision {
        if let Err((reason, detail)) = self.checks.check(peer.leaf()) {
            return Decision::Reject { reason, detail };
        }
        self.inner.authorize(identity, peer, request)
    }

    fn reject_message(&self, reason: &str) -> Option<String> {
        self.inner.reject_message(reason)
    }

    fn authorize_mab(&self, request: &RequestInfo<'_>) -> Option<Decision> {
        // No certificate to check: the certificate checks do not apply.
        self.inner.authorize_mab(request)
    }
}
