//! `[server]`: listening sockets, concurrency, the duplicate cache and the state file.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// UDP addresses to listen on, IPv4 or IPv6 (`"[::1]:1812"`). Port 0 picks a free port.
    #[serde(deserialize_with = "super::values::socket_addrs")]
    pub listen: Vec<SocketAddr>,
    /// Runtime worker threads; 0 means one per CPU.
    pub threads: usize,
    /// Requests waiting for a worker or being processed at once. Past it a request that would
    /// start a conversation is dropped (the NAS retransmits), and one continuing a conversation
    /// pushes out the newest waiting new one (`core::queue`).
    pub max_in_flight: usize,
    /// A request that has waited this long for a worker is thrown away unserved: its NAS has
    /// retransmitted or given up (set it near the NAS's retransmission timer × tries).
    pub max_queue_wait_ms: u64,
    /// A FreeRADIUS-format dictionary to load instead of the built-in one.
    pub dictionary: Option<PathBuf>,
    /// How long a reply stays cached to answer retransmissions (RFC 5080 §2.2.2).
    pub duplicate_cache_secs: u64,
    /// Most replies cached for retransmissions.
    pub duplicate_cache_entries: usize,
    /// Where learned per-client state (the "auto" Message-Authenticator policy) is kept, so it
    /// survives a restart. Relative: in the state directory (`paths`).
    pub state_file: PathBuf,
    /// Packets per second a source that is no configured client may send before the rest of
    /// that second is dropped unread and unlogged (0: no limit).
    pub bad_packet_rate_per_source: u32,
    /// On SIGTERM/SIGINT: how long conversations in flight may take to finish before we exit.
    pub shutdown_grace_secs: u64,
    /// While not ready (`server/health.rs`): answer as usual, or leave Access-Requests and
    /// Status-Server unanswered so the NAS fails over.
    pub when_unready: super::WhenUnready,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 1812))],
            threads: 0,
            max_in_flight: 16384,
            max_queue_wait_ms: 10_000,
            dictionary: None,
            duplicate_cache_secs: 10,
            duplicate_cache_entries: 65536,
            state_file: "certradius.state".into(),
            bad_packet_rate_per_source: 100,
            shutdown_grace_secs: 5,
            when_unready: super::WhenUnready::Serve,
        }
    }
}
