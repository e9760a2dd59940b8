//! Reloading everything the request path reads from the configuration: the clients, the TLS
//! setup (certificate, key, CAs, CRLs), the policy (identity binding, rules), OCSP policy,
//! EAP limits and the dictionary. The shell parses and validates all of it first
//! (`server::reload`); this only swaps, each part as one pointer store.
//!
//! A conversation in flight finishes on the configuration it started with: its TLS engine (so
//! the certificate, CAs and CRLs) lives in the session, and the rest of its context (policy,
//! OCSP policy, fragment size) is pinned to its State key at the reload until the conversation
//! ends. Requests being handled during the swap finish on what they already loaded, so a reload
//! never drops a packet. The NAS clients table applies to the next packet (a changed secret
//! must take effect at once).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::clients::Clients;
use super::handle::Core;
use super::sessions::StateKey;
use crate::authz::Policy;
use crate::config::Config;
use crate::eap::ReassemblyLimits;
use crate::radius::dictionary::Dictionary;
use crate::session::SessionContext;

/// The contexts of conversations started before a reload, by State key.
#[derive(Default)]
pub struct Pinned {
    /// Nothing pinned: the common case costs one atomic load per packet.
    any: AtomicBool,
    map: Mutex<HashMap<StateKey, Arc<SessionContext>>>,
}

impl Core {
    /// The context a conversation runs on: the one it started with if a reload happened since.
    pub(super) fn cx_for(&self, key: &StateKey) -> Arc<SessionContext> {
        if self.pinned.any.load(Ordering::Acquire)
            && let Ok(map) = self.pinned.map.lock()
            && let Some(cx) = map.get(key)
        {
            return cx.clone();
        }
        self.cx.load_full()
    }

    /// Forgets the contexts of conversations that ended (called by `sweep`).
    pub(super) fn prune_pinned(&self) {
        if !self.pinned.any.load(Ordering::Acquire) {
            return;
        }
        let Ok(table) = self.sessions.lock() else {
            return;
        };
        if let Ok(mut map) = self.pinned.map.lock() {
            map.retain(|k, _| table.contains(k));
            if map.is_empty() {
                self.pinned.any.store(false, Ordering::Release);
            }
        }
    }

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
        // Pin the running conversations to the context they started on, before it is replaced.
        // Lock order as in `prune_pinned`: the session table, then the pinned map.
        let old = self.cx.load_full();
        if let Ok(table) = self.sessions.lock()
            && let Ok(mut map) = self.pinned.map.lock()
        {
            for key in table.keys() {
                map.entry(key).or_insert_with(|| old.clone());
            }
            if !map.is_empty() {
                self.pinned.any.store(true, Ordering::Release);
            }
        }
        clients.carry_over(&self.clients.load());
        self.cx.store(Arc::new(SessionContext {
            tls: std::sync::RwLock::new(tls),
            fragment_size: config.tls.fragment_size,
            reassembly: ReassemblyLimits {
                max_message_len: config.eap.max_tls_message_size,
                max_fragments: config.eap.max_fragments,
            },
            // The budget counts octets held by conversations of every configuration, so it
            // is kept across reloads (a changed eap.max_reassembly_bytes_total needs a restart).
            reassembly_budget: self.cx.load().reassembly_budget.clone(),
            policy,
            ocsp: super::handle::ocsp_policy(config),
        }));
        self.clients.store(Arc::new(clients));
        self.dictionary.store(Arc::new(dictionary));
        self.session_timeout.store(Arc::new(Duration::from_secs(
            config.eap.session_timeout_secs,
        )));
    }
}
