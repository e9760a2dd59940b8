//! Finished authentications as events, for the observers the shell plugs in (metrics, the audit
//! log, accounting's session linking) so that none of them needs a hook of its own in the
//! request path.
//!
//! The core calls every observer synchronously, once per authentication that ends in an
//! Access-Accept or Access-Reject (RFC 2865 §4.2, §4.3); observers must be cheap (count, copy,
//! queue) and must not block. Peer-supplied fields are raw bytes: an observer that prints them
//! escapes them.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::authz::ReplyAttribute;
use crate::tls::client_hello::ClientHello;

/// One finished authentication.
#[derive(Debug)]
pub struct AuthEvent<'a> {
    /// `"accept"` or `"reject"`.
    pub outcome: &'static str,
    /// How the request authenticated: `"eap-tls"` or `"mab"` ([`Method::as_str`]).
    ///
    /// [`Method::as_str`]: crate::authz::Method::as_str
    pub method: &'static str,
    /// The stable reason name of a refusal (`cert_revoked`, ...); `None` on accept.
    pub reason: Option<&'static str>,
    /// A longer, human-readable explanation of a refusal (may be empty).
    pub detail: &'a str,
    /// The EAP identity the peer gave (raw bytes, peer-supplied); empty when unknown; the
    /// User-Name (the MAC) of a MAB request.
    pub identity: &'a [u8],
    /// User-Name of the Access-Request (peer-supplied via the NAS).
    pub user_name: Option<&'a [u8]>,
    /// The NAS: the `[[client]]` name and the packet's source address.
    pub nas_name: &'a str,
    pub nas_addr: IpAddr,
    /// Calling-Station-Id (the supplicant's MAC) and Called-Station-Id (the AP MAC and SSID).
    pub calling_station_id: Option<&'a [u8]>,
    pub called_station_id: Option<&'a [u8]>,
    /// `"TLSv1.2"`, `"TLSv1.3"` or `"-"` when no handshake finished.
    pub tls_version: &'static str,
    pub cipher_suite: &'a str,
    /// The verified client certificate, when the handshake got that far.
    pub serial: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub issuer: Option<&'a str>,
    /// The CA certificates of the verified chain as (issuer, serial hex), leaf excluded; empty
    /// for MAB and refusals before verification.
    pub ca_chain: &'a [(String, String)],
    pub resumed: bool,
    pub round_trips: u32,
    /// From the first Access-Request of the conversation to this reply.
    pub duration: Duration,
    /// The authorization rule that granted access.
    pub rule: Option<&'a str>,
    /// Attributes granted by the policy (VLAN, Filter-Id, ...), as sent in the Access-Accept.
    pub granted: &'a [ReplyAttribute],
    /// The Class attribute sent in the Access-Accept, if any (RFC 2865 §5.25).
    pub class: Option<&'a [u8]>,
    /// What the supplicant's ClientHello offered, once an EAP-TLS handshake started.
    pub client_hello: Option<&'a ClientHello>,
    /// The scheme the client signed its CertificateVerify with, and the key exchange group.
    pub signature_scheme: Option<rustls::SignatureScheme>,
    pub group: Option<rustls::NamedGroup>,
    /// NAS-Port-Type (RFC 2865 §5.41; 15 Ethernet, 19 Wireless-802.11) and Framed-MTU
    /// (§5.12), as the NAS sent them.
    pub nas_port_type: Option<u32>,
    pub framed_mtu: Option<u32>,
    /// The account's groups from `[directory]`, when the directory found it.
    pub directory_groups: Option<&'a [String]>,
    /// The certificate facts the directory found the account with (for `revalidate_secs`).
    pub directory_facts: Option<&'a crate::directory::filter::FilterFacts>,
    /// The verified client certificate (for `revalidate_secs`: the rules are evaluated again).
    pub peer: Option<&'a crate::tls::VerifiedPeer>,
}

/// Something that wants to know about every finished authentication.
pub trait AuthObserver: Send + Sync {
    fn finished(&self, event: &AuthEvent<'_>);
}

/// The observers in force; cloned into the core at construction and on reload.
pub type Observers = Vec<Arc<dyn AuthObserver>>;
