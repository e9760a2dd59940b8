//! Putting a new configuration in force: one [`Snapshot`] (clients, TLS setup with its
//! certificate, CAs and CRLs, policy, OCSP policy, EAP limits, dictionary, RadSec TLS, inventory)
//! replaces the old one in a single pointer swap. The shell builds and checks the snapshot first
//! (`server::reload`, whatever triggered the reload); this only swaps.
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

use super::clients::Clients;
use super::handle::Core;
use super::sessions::StateKey;
use super::snapshot::Snapshot;
use super::snapshot::session_context;
use crate::authz::Policy;
use crate::config::Config;
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
        self.current.load().cx.clone()
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
    pub fn install(&self, mut snapshot: Snapshot) {
        // Pin the running conversations to the context they started on, before it is replaced.
        // Lock order as in `prune_pinned`: the session table, then the pinned map.
        let old = self.current.load_full();
        if let Ok(table) = self.sessions.lock()
            && let Ok(mut map) = self.pinned.map.lock()
        {
            for key in table.keys() {
                map.entry(key).or_insert_with(|| old.cx.clone());
            }
            if !map.is_empty() {
                self.pinned.any.store(true, Ordering::Release);
            }
        }
        snapshot.generation = old.generation.wrapping_add(1);
        self.current.store(Arc::new(snapshot));
    }

    /// The parts of a snapshot that the core itself carries from one configuration to the next
    /// (the reassembly budget) and the client table built against the one in force.
    pub fn next_parts(
        &self,
        config: &Config,
        tls: crate::tls::TlsSetup,
        policy: Arc<dyn Policy>,
    ) -> (Clients, SessionContext) {
        let old = self.current.load();
        let clients = Clients::after(&config.clients, Some(&old.clients));
        let cx = session_context(config, tls, policy, old.cx.reassembly_budget.clone());
        (clients, cx)
    }

    /// Puts a configuration made of these parts in force (tests and callers without RadSec,
    /// metrics or CRL-driven Disconnects; the server builds a whole snapshot in
    /// `server::reload`).
    pub fn reload(
        &self,
        config: &Config,
        tls: crate::tls::TlsSetup,
        policy: Arc<dyn Policy>,
        dictionary: Dictionary,
    ) {
        let (clients, cx) = self.next_parts(config, tls, policy);
        let old = self.current.load_full();
        self.install(Snapshot {
            config: Arc::new(config.clone()),
            clients: Arc::new(clients),
            cx: Arc::new(cx),
            dictionary: Arc::new(dictionary),
            radsec: old.radsec.clone(),
            crls: old.crls.clone(),
            inventory: old.inventory.clone(),
            mab: old.mab.clone(),
            directory: old.directory.clone(),
            generation: 0,
        });
    }
}
