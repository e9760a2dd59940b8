//! `[eap]`: conversation bounds (RFC 3748 sessions, RFC 5216 §2.1.5 reassembly).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EapConfig {
    /// A conversation idle longer than this is forgotten; its State is then rejected.
    pub session_timeout_secs: u64,
    /// Conversations in progress at once, all NAS together.
    pub max_sessions: usize,
    /// Largest TLS message a peer may send us, reassembled from its fragments.
    pub max_tls_message_size: usize,
    /// Most fragments one peer TLS message may be split into.
    pub max_fragments: u32,
    /// Reassembly octets held by all conversations together; a fragment that would exceed it
    /// refuses its conversation (`reassembly_budget_exceeded`).
    pub max_reassembly_bytes_total: usize,
}

impl Default for EapConfig {
    fn default() -> Self {
        EapConfig {
            session_timeout_secs: 60,
            max_sessions: 65536,
            max_tls_message_size: 65536,
            max_fragments: 256,
            max_reassembly_bytes_total: 64 * 1024 * 1024,
        }
    }
}
