//! Readiness as the shell last assessed it (`server/health.rs`): whether this instance can
//! authenticate now, and which parts cannot. The core reads no clock for it: the shell hands
//! the verdict in, and the request path only asks [`Readiness::drops_requests`].
//!
//! RFC 5997 §4: a NAS declares a server dead when Access-Requests and Status-Server go
//! unanswered, and fails over. A server that cannot authenticate but answers (every user
//! rejected) is never failed over, hence `server.when_unready = "silent"`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::core::guard::lock;

/// The readiness verdict and the facts the shell feeds it.
#[derive(Debug)]
pub struct Readiness {
    ready: AtomicBool,
    /// `server.when_unready = "silent"` in the configuration in force.
    silent: AtomicBool,
    /// The failing parts, `"crl: ..."`, empty when ready.
    failing: Mutex<Vec<String>>,
    /// Whether the accounting database writer holds a working connection (told by the writer;
    /// only consulted when `accounting.database_url` is set).
    database_up: AtomicBool,
    /// Why every `[directory]` URL failed, as the last probe or search found; None: usable
    /// (or no directory).
    directory_down: Mutex<Option<String>>,
}

impl Default for Readiness {
    /// Ready until the first assessment: a core built without a shell (tests, fuzzing, the load
    /// generator) serves.
    fn default() -> Self {
        Readiness {
            ready: AtomicBool::new(true),
            silent: AtomicBool::new(false),
            failing: Mutex::new(Vec::new()),
            database_up: AtomicBool::new(false),
            directory_down: Mutex::new(None),
        }
    }
}

impl Readiness {
    /// Records an assessment; Some(now ready) when the state changed.
    pub fn set(&self, failing: Vec<String>, silent: bool) -> Option<bool> {
        self.silent.store(silent, Ordering::Relaxed);
        let ready = failing.is_empty();
        *lock(&self.failing) = failing;
        let was = self.ready.swap(ready, Ordering::SeqCst);
        (was != ready).then_some(ready)
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// The failing parts of the last assessment.
    pub fn failing(&self) -> Vec<String> {
        lock(&self.failing).clone()
    }

    /// True when Access-Requests and Status-Server are to go unanswered (not ready, silent).
    pub fn drops_requests(&self) -> bool {
        self.silent.load(Ordering::Relaxed) && !self.ready.load(Ordering::Relaxed)
    }

    pub fn set_database_up(&self, up: bool) {
        self.database_up.store(up, Ordering::Relaxed);
    }

    pub fn database_up(&self) -> bool {
        self.database_up.load(Ordering::Relaxed)
    }

    /// Told by the shell's directory probe and lookups: Some(why) when every URL failed.
    pub fn set_directory_down(&self, why: Option<String>) {
        *lock(&self.directory_down) = why;
    }

    pub fn directory_down(&self) -> Option<String> {
        lock(&self.directory_down).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_reported_once_and_silence_needs_both() {
        let r = Readiness::default();
        assert!(r.is_ready() && !r.drops_requests());
        assert_eq!(r.set(Vec::new(), true), None);
        assert!(!r.drops_requests());
        assert_eq!(r.set(vec!["crl: stale".into()], false), Some(false));
        assert!(!r.drops_requests(), "serve: answered while unready");
        assert_eq!(r.set(vec!["crl: stale".into()], true), None);
        assert!(r.drops_requests());
        assert_eq!(r.failing(), vec!["crl: stale".to_string()]);
        assert_eq!(r.set(Vec::new(), true), Some(true));
        assert!(!r.drops_requests());
    }
}
