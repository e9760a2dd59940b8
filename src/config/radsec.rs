//! `[radsec]` (RADIUS over TLS, RFC 6614) and `[tcp]` (RADIUS over TCP, RFC 6613): stream
//! listeners, their certificates and the bounds that keep a misbehaving peer from holding the
//! server hostage. RADIUS/1.1 (RFC 9765) is negotiated by ALPN on the RadSec listener.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::tls::OneOrMany;
use super::values::TlsVersion;

/// `radius_1_1 = "allow" | "require" | "off"` (RFC 9765 §3.1 ALPN negotiation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Radius11 {
    /// `radius/1.1` offered, peers without ALPN get RADIUS/1.0.
    #[default]
    Allow,
    /// Only `radius/1.1`; a peer that does not negotiate it is closed.
    Require,
    /// Not offered.
    Off,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RadsecConfig {
    /// TLS addresses (e.g. `"127.0.0.1:2083"`); empty: no RadSec listener.
    #[serde(deserialize_with = "super::values::socket_addrs")]
    pub listen: Vec<SocketAddr>,
    /// The server's RadSec certificate chain (PEM, leaf first); may differ from the EAP one.
    pub certificate_file: PathBuf,
    pub private_key_file: PathBuf,
    /// For an encrypted `private_key_file`: a file whose first line is its password.
    pub private_key_password_file: Option<PathBuf>,
    /// CAs that issue NAS certificates (PEM).
    pub ca_file: OneOrMany,
    /// "1.2" or "1.3".
    pub tls_min_version: TlsVersion,
    /// CRLs for NAS certificates (PEM or DER).
    pub crl_file: OneOrMany,
    pub radius_1_1: Radius11,
    /// A connection with no complete packet for this long is closed.
    pub idle_timeout_secs: u64,
    /// The TLS handshake must finish within this.
    pub handshake_timeout_secs: u64,
    /// Open connections, all NAS and both stream transports (RadSec and TCP) together.
    pub max_connections: usize,
    /// Open connections from one `[[client]]`.
    pub max_connections_per_client: usize,
}

impl Default for RadsecConfig {
    fn default() -> Self {
        RadsecConfig {
            listen: Vec::new(),
            certificate_file: "testbed/pki/server.pem".into(),
            private_key_file: "testbed/pki/server.key".into(),
            private_key_password_file: None,
            ca_file: OneOrMany::One("testbed/pki/ca.pem".into()),
            tls_min_version: TlsVersion::V1_2,
            crl_file: OneOrMany::Many(Vec::new()),
            radius_1_1: Radius11::Allow,
            idle_timeout_secs: 120,
            handshake_timeout_secs: 10,
            max_connections: 1024,
            max_connections_per_client: 32,
        }
    }
}

/// The RFC 6614 §2.3 shared secret of a RadSec client that configures none.
pub const DEFAULT_RADSEC_SECRET: &str = "radsec";

/// Per-client checks for the stream transports (an unset secret is refused by the caller for
/// UDP and TCP clients).
pub(super) fn check_client(i: usize, c: &super::ClientConfig) -> Result<(), super::ConfigError> {
    use super::Transport;
    if c.certificate_name.is_some() && c.transport != Transport::Tls {
        return Err(super::ConfigError::invalid(
            format!("client[{i}].certificate_name"),
            "only applies to transport = \"tls\"",
        ));
    }
    if c.certificate_name.as_deref() == Some("") {
        return Err(super::ConfigError::invalid(
            format!("client[{i}].certificate_name"),
            "must not be empty",
        ));
    }
    Ok(())
}

/// RFC 6614 §2.3: a RadSec client without a configured secret uses "radsec".
pub(super) fn default_secrets(clients: &mut [super::ClientConfig]) {
    for c in clients {
        if c.transport == super::Transport::Tls && c.secret.expose().is_empty() {
            c.secret = super::Secret::new(DEFAULT_RADSEC_SECRET);
        }
    }
}

/// `[radsec]` bounds: timeouts of at least a second and at most a year (a larger one would
/// overflow a deadline), at least one connection.
pub(super) fn check_section(r: &RadsecConfig) -> Result<(), super::ConfigError> {
    for (key, v) in [
        ("radsec.idle_timeout_secs", r.idle_timeout_secs),
        ("radsec.handshake_timeout_secs", r.handshake_timeout_secs),
    ] {
        if v == 0 {
            return Err(super::ConfigError::invalid(key, "must be at least 1"));
        }
        if v > super::MAX_DURATION_SECS {
            return Err(super::ConfigError::invalid(
                key,
                format!(
                    "is longer than a year ({} s), the most allowed",
                    super::MAX_DURATION_SECS
                ),
            ));
        }
    }
    for (key, v) in [
        ("radsec.max_connections", r.max_connections),
        (
            "radsec.max_connections_per_client",
            r.max_connections_per_client,
        ),
    ] {
        if v == 0 {
            return Err(super::ConfigError::invalid(key, "must be at least 1"));
        }
    }
    Ok(())
}
