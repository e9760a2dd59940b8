//! Learned Message-Authenticator state: a client configured with
//! `require_message_authenticator = "auto"` that once sent a valid Message-Authenticator (RFC 3579
//! §3.2) must send it from then on (the BlastRADIUS defence, CVE-2024-3596). The shell keeps the
//! learned set in the state file so it survives a restart.

use std::sync::atomic::Ordering;

use super::handle::Core;

impl Core {
    /// The clients that have learned to require Message-Authenticator ("auto"), by configured
    /// address, and whether that changed since the last call (so the shell rewrites the state
    /// file only when needed).
    pub fn learned_state(&self) -> (bool, Vec<String>) {
        let dirty = self.learned_dirty.swap(false, Ordering::Relaxed);
        let learned = self
            .current
            .load()
            .clients
            .iter()
            .filter(|c| c.has_learned())
            .map(|c| c.address.clone())
            .collect();
        (dirty, learned)
    }

    /// Restores learned state read from the state file at start.
    pub fn restore_learned(&self, addresses: &[String]) -> usize {
        let mut n = 0;
        for c in self.current.load().clients.iter() {
            if c.require_message_authenticator == crate::config::RequireMessageAuthenticator::Auto
                && addresses.iter().any(|a| a == &c.address)
            {
                c.set_learned(true);
                n += 1;
            }
        }
        n
    }
}
