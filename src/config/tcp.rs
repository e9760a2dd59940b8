//! `[tcp]`: RADIUS over TCP (RFC 6613), for NAS on trusted links that cannot do TLS. The
//! connection bounds of `[radsec]` (idle timeout, caps) apply to these connections too.

use std::net::SocketAddr;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TcpConfig {
    /// TCP addresses (e.g. `"127.0.0.1:1812"`); empty: no RADIUS/TCP listener.
    #[serde(deserialize_with = "super::values::socket_addrs")]
    pub listen: Vec<SocketAddr>,
}
