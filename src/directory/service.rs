//! The lookup as the server makes it: a positive/negative cache bounded in entries, identical
//! lookups in flight coalesced into one search, and `on_unavailable = "accept_cached"`.
//!
//! Keyed by the built filter (so two certificates naming the same account share one entry).
//! A storm of supplicants with a cold cache makes at most one search per distinct filter at a
//! time: later callers wait on the first one's answer instead of sending their own.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
// The shell's clock (this module performs I/O; the sans-IO core never reads a clock).
use tokio::time::Instant;

use super::client::{Outcome, Unavailable};

/// Entries kept at most; past it the oldest-expiring entries go first.
pub const MAX_ENTRIES: usize = 100_000;

/// Where an answer came from (for the metrics: `cache_hit` or the directory's verdict).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Directory,
    Cache,
    /// An expired positive entry served because every URL failed (`accept_cached`).
    StaleCache,
}

type Shared = Result<Outcome, Unavailable>;

struct Entry {
    outcome: Outcome,
    expires: Instant,
}

#[derive(Default)]
struct State {
    cache: HashMap<String, Entry>,
    in_flight: HashMap<String, watch::Receiver<Option<Shared>>>,
}

/// Cache and coalescing around a search function.
pub struct Service {
    state: Mutex<State>,
    positive: Duration,
    negative: Duration,
    accept_cached: bool,
    max_entries: usize,
}

impl Service {
    pub fn new(positive: Duration, negative: Duration, accept_cached: bool) -> Self {
        Service {
            state: Mutex::new(State::default()),
            positive,
            negative,
            accept_cached,
            max_entries: MAX_ENTRIES,
        }
    }

    #[cfg(test)]
    fn with_max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding it leaves a consistent map: keep using it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer for `filter`: a fresh cached one, the answer of a search already in flight,
    /// or a new search by `search`.
    pub async fn lookup<F, Fut>(&self, filter: &str, search: F) -> (Shared, Source)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Shared>,
    {
        self.lookup_with(filter, search, true).await
    }

    /// As [`Service::lookup`] without consulting the fresh cache (`revalidate_secs` asks the
    /// directory itself); the answer still refreshes the cache, and searches in flight are
    /// still shared.
    pub async fn refresh<F, Fut>(&self, filter: &str, search: F) -> (Shared, Source)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Shared>,
    {
        self.lookup_with(filter, search, false).await
    }

    async fn lookup_with<F, Fut>(&self, filter: &str, search: F, cached: bool) -> (Shared, Source)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Shared>,
    {
        let now = Instant::now();
        let (tx, mut waiting) = {
            let mut st = self.lock();
            if cached && let Some(e) = st.cache.get(filter).filter(|e| e.expires > now) {
                return (Ok(e.outcome.clone()), Source::Cache);
            }
            match st.in_flight.get(filter) {
                Some(rx) => (None, Some(rx.clone())),
                None => {
                    let (tx, rx) = watch::channel(None);
                    st.in_flight.insert(filter.to_string(), rx);
                    (Some(tx), None)
                }
            }
        };
        if let Some(rx) = waiting.as_mut() {
            // Coalesced: the first caller's answer. If it vanished (cancelled), unavailable.
            let answer = rx
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|v| v.clone())
                .unwrap_or_else(|| Err(Unavailable("lookup abandoned".into())));
            return self.after(filter, answer);
        }
        // Removes the in-flight mark even if this caller is cancelled mid-search, so later
        // lookups start a search of their own instead of waiting on a dead channel.
        let _mark = InFlight {
            service: self,
            filter,
        };
        let answer = search().await;
        {
            let mut st = self.lock();
            st.in_flight.remove(filter);
            if let Ok(outcome) = &answer {
                let ttl = match outcome {
                    Outcome::Found { .. } => self.positive,
                    _ => self.negative,
                };
                self.insert(&mut st, filter, outcome.clone(), Instant::now() + ttl);
            }
        }
        if let Some(tx) = tx {
            let _ = tx.send(Some(answer.clone()));
        }
        self.after(filter, answer)
    }

    /// `accept_cached`: an expired positive entry stands in for an unavailable directory.
    fn after(&self, filter: &str, answer: Shared) -> (Shared, Source) {
        if answer.is_err() && self.accept_cached {
            let st = self.lock();
            if let Some(e) = st
                .cache
                .get(filter)
                .filter(|e| matches!(e.outcome, Outcome::Found { .. }))
            {
                return (Ok(e.outcome.clone()), Source::StaleCache);
            }
        }
        (answer, Source::Directory)
    }

    fn insert(&self, st: &mut State, filter: &str, outcome: Outcome, expires: Instant) {
        if st.cache.len() >= self.max_entries && !st.cache.contains_key(filter) {
            // Evict the entry expiring first (O(n), only when full).
            if let Some(k) = st
                .cache
                .iter()
                .min_by_key(|(_, e)| e.expires)
                .map(|(k, _)| k.clone())
            {
                st.cache.remove(&k);
            }
        }
        st.cache
            .insert(filter.to_string(), Entry { outcome, expires });
    }

    /// Cached entries (for tests and the metrics).
    pub fn len(&self) -> usize {
        self.lock().cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct InFlight<'a> {
    service: &'a Service,
    filter: &'a str,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.service.lock().in_flight.remove(self.filter);
    }
}

/// A shared service.
pub type SharedService = Arc<Service>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn found() -> Outcome {
        Outcome::Found {
            dn: "uid=a".into(),
            groups: Arc::from(Vec::new()),
            sid: None,
        }
    }

    #[tokio::test]
    async fn coalesces_and_caches() {
        let svc = Arc::new(Service::new(
            Duration::from_secs(60),
            Duration::from_secs(1),
            false,
        ));
        let searches = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let svc = svc.clone();
            let searches = searches.clone();
            tasks.push(tokio::spawn(async move {
                svc.lookup("(uid=a)", || async move {
                    searches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(found())
                })
                .await
            }));
        }
        for t in tasks {
            let (answer, _) = t.await.unwrap();
            assert_eq!(answer, Ok(found()));
        }
        assert_eq!(searches.load(Ordering::SeqCst), 1);
        let (_, src) = svc.lookup("(uid=a)", || async { panic!("cached") }).await;
        assert_eq!(src, Source::Cache);
    }

    #[tokio::test]
    async fn accept_cached_serves_expired_positive_only() {
        let svc = Service::new(Duration::ZERO, Duration::ZERO, true);
        let _ = svc.lookup("(uid=a)", || async { Ok(found()) }).await;
        let down = || async { Err(Unavailable("down".into())) };
        let (answer, src) = svc.lookup("(uid=a)", down).await;
        assert_eq!((answer, src), (Ok(found()), Source::StaleCache));
        let (answer, _) = svc.lookup("(uid=b)", down).await;
        assert!(answer.is_err());
        let strict = Service::new(Duration::ZERO, Duration::ZERO, false);
        let _ = strict.lookup("(uid=a)", || async { Ok(found()) }).await;
        assert!(strict.lookup("(uid=a)", down).await.0.is_err());
    }

    #[tokio::test]
    async fn a_cancelled_search_does_not_block_later_ones() {
        let svc = Service::new(Duration::from_secs(60), Duration::from_secs(60), false);
        let slow = svc.lookup("(uid=a)", std::future::pending);
        let _ = tokio::time::timeout(Duration::from_millis(10), slow).await;
        let (answer, src) = svc.lookup("(uid=a)", || async { Ok(found()) }).await;
        assert_eq!((answer, src), (Ok(found()), Source::Directory));
    }

    #[tokio::test]
    async fn bounded_in_entries() {
        let svc = Service::new(Duration::from_secs(60), Duration::from_secs(60), false)
            .with_max_entries(10);
        for i in 0..100 {
            let _ = svc
                .lookup(&format!("(uid={i})"), || async { Ok(found()) })
                .await;
        }
        assert_eq!(svc.len(), 10);
    }
}
