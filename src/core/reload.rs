//! Reloading everything the request path reads from the configuration: the clients, the TLS
//! setup (certificate, key, CAs, CRLs), the policy (identity binding, rules), OCSP policy,
//! EAP limits and the dictionary. The shell parses and validates all of it first
//! (`server::reload`); this only swaps, each part as one pointer store.
//!
//! A conversation in flight keeps the TLS engine (so the certificate, CAs and CRLs) it started
//! with; its later round trips and its authorization use what is in force when they arrive.
//! Requests being handled during the swap finish on the part they already loaded, so a reload
//! never drops a packet.

use std::sync::Arc;
use std::time::Duration;

use super::clients::Clients;
use super::handle::Core;
use super::stats::Counter;
use crate::authz::Policy;
use crate::config::Config;
use crate::eap::ReassemblyLimits;
use crate::radius::dictionary::Dictionary;
use crate::session::SessionContext;

impl Core {
    /// Puts a whole new configuration in force for the next request. The session table, the
    /// duplicate cache, the counters and what clients learned (by unchanged address) stay.
    pub fn reload(
        &self,
        config: &Config,
        tls: crate::tls::TlsSetup,
        policy: Arc<dyn Policy>,
        dictionary: Dictionary,
    ) {
        let mut clients = Clients::new(&config.clients);
        clients.carry_over(&self.clients.load());
        self.cx.store(Arc::new(SessionContext {
            tls: std::sync::RwLock::new(tls),
            fragment_size: config.tls.fragment_size,
            reassembly: ReassemblyLimits {
                max_message_len: config.eap.max_tls_message_size,
                max_fragments: config.eap.max_fragments,
            },
            policy,
            ocsp: super::handle::ocsp_policy(config),
        }));
        self.clients.store(Arc::new(clients));
        self.dictionary.store(Arc::new(dictionary));
        self.session_timeout.store(Arc::new(Duration::from_secs(
            config.eap.session_timeout_secs,
        )));
        self.stats.incr(Counter::TlsReloads);
    }
}
