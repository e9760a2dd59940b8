//! The configuration in force, as one immutable value: the NAS clients, the EAP-TLS context
//! (server certificate, CAs, CRLs, OCSP policy, identity binding, rules, EAP limits), the MAB
//! allow list, the dictionary, the RadSec TLS configuration, what the certificate and CRL files
//! held (for the metrics and the Disconnect on revocation), and the parsed configuration itself.
//!
//! Every reload — SIGHUP, or a certificate/CRL/RadSec file changed on disk — builds a whole new
//! snapshot in the shell (`server::reload`) and puts it in force with one pointer swap
//! ([`Core::install`](super::Core::install)): a request sees either the old configuration or the
//! new one, never a mix (a new client table with the old CRLs, say). Building reads files, so it
//! lives in the shell; the snapshot itself is plain data.

use std::sync::Arc;
use std::time::Duration;

use super::clients::Clients;
use crate::authz::Policy;
use crate::config::Config;
use crate::eap::{ReassemblyBudget, ReassemblyLimits};
use crate::mab::AllowList;
use crate::radius::dictionary::Dictionary;
use crate::session::OcspPolicy;
use crate::session::SessionContext;
use crate::x509::crl::LoadedCrl;
use crate::x509::inventory::Inventory;

/// One configuration, every part of it read and checked.
pub struct Snapshot {
    /// The configuration file as parsed, paths resolved (the shell rebuilds from it when files
    /// change on disk, and compares it with the next one on SIGHUP).
    pub config: Arc<Config>,
    /// The NAS allowed to talk to us; a client keeps its identity ([`Client::id`]) across
    /// snapshots by name.
    ///
    /// [`Client::id`]: super::clients::Client::id
    pub clients: Arc<Clients>,
    /// What a new conversation runs on (conversations in progress keep theirs, see `reload.rs`).
    pub cx: Arc<SessionContext>,
    pub dictionary: Arc<Dictionary>,
    /// RadSec (RFC 6614) server configuration; None when `[radsec] listen` is empty.
    pub radsec: Option<Arc<rustls::ServerConfig>>,
    /// The CRLs of `tls.crl_file` as read for this snapshot (Disconnect on revocation).
    pub crls: Arc<Vec<LoadedCrl>>,
    /// Certificates and CRLs of the configuration, for the metrics.
    pub inventory: Arc<Inventory>,
    /// The MAC Authentication Bypass allow list (`[mab] allow_file`); None: `[mab]` is off.
    pub mab: Option<Arc<AllowList>>,
    /// `[directory]` as the shell's lookups use it (password and CA read); None: off.
    pub directory: Option<Arc<crate::directory::client::Settings>>,
    /// Counts the snapshots put in force: a stream connection re-checks its client when it
    /// changes.
    pub generation: u64,
}

impl Snapshot {
    /// `eap.session_timeout_secs`.
    pub fn session_timeout(&self) -> Duration {
        Duration::from_secs(self.config.eap.session_timeout_secs)
    }
}

/// The EAP-TLS context a configuration gives new conversations. `budget`: the reassembly
/// budget of the configuration before (it counts octets held by conversations of every
/// configuration, so a reload keeps it; a changed `eap.max_reassembly_bytes_total` needs a
/// restart).
pub fn session_context(
    config: &Config,
    tls: crate::tls::TlsSetup,
    policy: Arc<dyn Policy>,
    budget: Option<Arc<ReassemblyBudget>>,
) -> SessionContext {
    SessionContext {
        tls,
        fragment_size: config.tls.fragment_size,
        reassembly: ReassemblyLimits {
            max_message_len: config.eap.max_tls_message_size,
            max_fragments: config.eap.max_fragments,
        },
        reassembly_budget: Some(
            budget.unwrap_or_else(|| ReassemblyBudget::new(config.eap.max_reassembly_bytes_total)),
        ),
        policy,
        ocsp: ocsp_policy(config),
        directory: config
            .directory
            .as_ref()
            .map(|d| crate::session::DirectoryPolicy {
                sid_binding: d.effective_sid_binding(),
            }),
    }
}

fn ocsp_policy(config: &Config) -> Option<OcspPolicy> {
    let o = &config.ocsp;
    if !o.enable {
        return None;
    }
    let crl_configured = config.tls.crl_scope() != crate::config::CrlScope::None;
    Some(OcspPolicy {
        url_override: o.url.clone().filter(|u| !u.is_empty()),
        soft_fail: o.soft_fail,
        crl_fallback: o.mode == crate::config::OcspMode::OcspThenCrl && crl_configured,
    })
}
