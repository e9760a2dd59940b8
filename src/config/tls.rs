//! `[tls]`: the server certificate, client trust anchors, versions, fragmenting (RFC 5216
//! §2.1.5), CRLs (RFC 5280 §5) and resumption.

use std::path::PathBuf;

use serde::Deserialize;

use super::values::{CrlScope, SignatureSchemeName, TlsVersion};

/// One path or a list of paths.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl OneOrMany {
    pub fn paths(&self) -> Vec<PathBuf> {
        match self {
            OneOrMany::One(p) => vec![p.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// One URL or a list of URLs.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum UrlList {
    One(String),
    Many(Vec<String>),
}

impl UrlList {
    pub fn urls(&self) -> Vec<String> {
        match self {
            UrlList::One(u) => vec![u.clone()],
            UrlList::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The server's certificate chain (PEM, leaf first).
    pub certificate_file: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1; or encrypted PKCS#8).
    pub private_key_file: PathBuf,
    /// For an encrypted `private_key_file`: a file whose first line is its password.
    pub private_key_password_file: Option<PathBuf>,
    /// CA certificates that client certificates must chain to (PEM; roots and intermediates).
    pub ca_file: OneOrMany,
    /// "1.2" or "1.3".
    pub tls_min_version: TlsVersion,
    pub tls_max_version: TlsVersion,
    /// The signature schemes the CertificateRequest offers and a client's CertificateVerify
    /// may use (IANA names); empty: every scheme the crypto provider verifies. The signatures
    /// on the chain's certificates are not limited by it.
    pub client_signature_schemes: Vec<SignatureSchemeName>,
    /// TLS data octets per EAP-TLS packet we send (RFC 5216 §2.1.5), lowered further by
    /// Framed-MTU from the NAS. Unset: what the NAS's Framed-MTU allows (up to a 1400-octet EAP
    /// packet), 1024 when it sends none (`SessionContext::max_fragment`).
    pub fragment_size: Option<usize>,
    /// CRL files (PEM with one or more CRLs, or DER), re-read within seconds of changing.
    pub crl_file: OneOrMany,
    /// CRLs fetched over http:// (RFC 5280 §4.2.1.13), verified against their issuer in
    /// `ca_file`, cached in the state directory (`x509/crl_fetch.rs`).
    pub crl_url: UrlList,
    /// Fetch each CRL again this often (and at the latest when a tenth of its validity is left).
    pub crl_refresh_secs: u64,
    /// Also fetch the CRLs named by the CRL Distribution Points of the `ca_file` certificates.
    pub crl_from_certificates: bool,
    /// Where fetched CRLs are cached: `crl-cache/` next to `server.state_file` (set at load).
    #[serde(skip)]
    pub crl_cache_dir: Option<PathBuf>,
    /// `[directory]` is configured, so ldap:// and ldaps:// CRL sources are read through it
    /// (set at load).
    #[serde(skip)]
    pub crl_ldap: bool,
    /// "chain" (every certificate below the trust anchor), "leaf", or "none". Unset: "chain"
    /// when `crl_file`, `crl_url` or `crl_from_certificates` is set, else "none".
    pub check_crl: Option<CrlScope>,
    /// Accept certificates while a CRL is past its nextUpdate (default: refuse them).
    pub allow_expired_crl: bool,
    /// Accept a certificate whose issuer has no CRL loaded (default: refuse, `revocation_unknown`).
    pub allow_unknown_revocation_status: bool,
    /// Warn this long before a CRL's nextUpdate.
    pub crl_expiry_warning_hours: u64,
    /// Only client certificates issued by these CAs (issuer CN or whole DN); empty: any CA in
    /// `ca_file`.
    pub allowed_issuers: Vec<String>,
    /// Weakest client keys accepted.
    pub min_rsa_key_bits: usize,
    pub min_ec_key_bits: usize,
    /// When a client certificate has keyUsage, it must allow digitalSignature.
    pub check_key_usage: bool,
    /// TLS session resumption (TLS 1.2 tickets and IDs, TLS 1.3 PSK tickets). A resumed
    /// session re-checks the certificate (validity, CRLs) and the policy.
    pub resumption: bool,
    /// How long a session can be resumed.
    pub session_lifetime_secs: u32,
    /// Sessions remembered for TLS 1.2 session-ID resumption (size it for your users).
    pub session_cache_size: usize,
    /// Ticket keys shared by a pool of servers (see `certradius ticket-key`); unset: a random
    /// key per process.
    pub ticket_key_file: Option<PathBuf>,
    /// TLS 1.3 tickets sent after each full handshake.
    pub tls13_tickets: usize,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            certificate_file: "testbed/pki/server.pem".into(),
            private_key_file: "testbed/pki/server.key".into(),
            private_key_password_file: None,
            ca_file: OneOrMany::One("testbed/pki/ca.pem".into()),
            tls_min_version: TlsVersion::V1_2,
            tls_max_version: TlsVersion::V1_3,
            client_signature_schemes: Vec::new(),
            fragment_size: None,
            crl_file: OneOrMany::Many(Vec::new()),
            crl_url: UrlList::Many(Vec::new()),
            crl_refresh_secs: 3600,
            crl_from_certificates: false,
            crl_cache_dir: None,
            crl_ldap: false,
            check_crl: None,
            allow_expired_crl: false,
            allow_unknown_revocation_status: false,
            crl_expiry_warning_hours: 72,
            allowed_issuers: Vec::new(),
            min_rsa_key_bits: 2048,
            min_ec_key_bits: 256,
            check_key_usage: true,
            resumption: true,
            session_lifetime_secs: 3600,
            session_cache_size: 65536,
            ticket_key_file: None,
            tls13_tickets: 1,
        }
    }
}

impl TlsConfig {
    /// `check_crl`, with its default resolved: "chain" when CRLs are configured (`crl_file`,
    /// `crl_url`, `crl_from_certificates`), else "none".
    pub fn crl_scope(&self) -> CrlScope {
        match self.check_crl {
            Some(scope) => scope,
            None if self.crl_file.paths().is_empty()
                && self.crl_url.urls().is_empty()
                && !self.crl_from_certificates =>
            {
                CrlScope::None
            }
            None => CrlScope::Chain,
        }
    }
}

/// An ldap:// or ldaps:// URL (RFC 4516): a CRL source read through the `[directory]` settings.
pub fn is_ldap_url(url: &str) -> bool {
    let lower = |n: usize| url.get(..n).map(str::to_ascii_lowercase);
    lower(7).as_deref() == Some("ldap://") || lower(8).as_deref() == Some("ldaps://")
}
