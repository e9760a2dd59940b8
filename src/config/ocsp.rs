//! `[ocsp]`: OCSP (RFC 6960) checking of client certificates.

use serde::Deserialize;

use super::values::OcspMode;

/// `[ocsp]`: OCSP (RFC 6960) checking of client certificates after the handshake.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OcspConfig {
    pub enable: bool,
    /// Responder URL for every certificate; unset: the certificate's AIA OCSP URL.
    pub url: Option<String>,
    /// A lookup taking longer is "unavailable"; other authentications never wait on it.
    pub timeout_ms: u64,
    /// Accept when the responder is unavailable or does not know the certificate.
    pub soft_fail: bool,
    /// "ocsp": the responder decides; "ocsp_then_crl": when it is unavailable, the CRL check
    /// (tls.crl_file) decides.
    pub mode: OcspMode,
    /// Send a nonce (RFC 8954) and require it back when the responder echoes one.
    pub use_nonce: bool,
    /// Responses cached (honouring nextUpdate), and for at most this long.
    pub cache_max_entries: usize,
    pub cache_max_secs: u64,
    /// Lookups in progress at once; beyond it a lookup is "unavailable" at once.
    pub max_concurrent_lookups: usize,
}

impl Default for OcspConfig {
    fn default() -> Self {
        OcspConfig {
            enable: false,
            url: None,
            timeout_ms: 2000,
            soft_fail: false,
            mode: OcspMode::Ocsp,
            use_nonce: true,
            cache_max_entries: 65536,
            cache_max_secs: 3600,
            max_concurrent_lookups: 256,
        }
    }
}
