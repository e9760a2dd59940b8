//! OCSP lookups (RFC 6960, RFC 5019) as the shell performs them for the request driver: bounded
//! in number (`ocsp.max_concurrent_lookups`), each bounded by `ocsp.timeout_ms`, answers cached
//! until nextUpdate.
//!
//! The client is state, not configuration: it lives as long as the server, and each lookup reads
//! the `[ocsp]` settings of the snapshot in force, so a reload changes them without a second
//! thing to swap. The cache is emptied when its own bounds change.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tracing::{debug, warn};

use super::{monotonic_clock, os_rng, wall_clock};
use crate::config::OcspConfig;
use crate::core::Core;
use crate::core::guard::lock;
use crate::core::stats::Counter;
use crate::escape::Escaped;
use crate::session::{RevocationLookup, RevocationVerdict};
use crate::x509::ocsp;

/// The response cache with the bounds it was made with.
struct Cached {
    entries: usize,
    max_secs: u64,
    cache: ocsp::Cache,
}

impl Cached {
    fn new(config: &OcspConfig) -> Cached {
        Cached {
            entries: config.cache_max_entries,
            max_secs: config.cache_max_secs,
            cache: ocsp::Cache::new(
                config.cache_max_entries,
                Duration::from_secs(config.cache_max_secs),
            ),
        }
    }
}

pub struct OcspClient {
    cache: Mutex<Cached>,
    /// Lookups waiting on a responder now.
    in_flight: AtomicUsize,
}

/// Gives a lookup slot back when the lookup ends, however it ends.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl OcspClient {
    pub fn new(config: &OcspConfig) -> OcspClient {
        OcspClient {
            cache: Mutex::new(Cached::new(config)),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// The cache's verdict, made anew when the configured bounds changed since it was made.
    fn cached(
        &self,
        config: &OcspConfig,
        leaf: &crate::x509::Leaf,
        issuer: &[u8],
    ) -> Option<ocsp::Verdict> {
        let mut c = lock(&self.cache);
        if c.entries != config.cache_max_entries || c.max_secs != config.cache_max_secs {
            *c = Cached::new(config);
        }
        c.cache.get(leaf, issuer, wall_clock())
    }

    fn claim(&self, max: usize) -> Option<Slot<'_>> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(&self.in_flight);
        (before < max.max(1)).then_some(slot)
    }

    /// RFC 6960 lookup of the peer's certificate. Never takes longer than `ocsp.timeout_ms`.
    pub async fn lookup(&self, core: &Core, lookup: &RevocationLookup) -> RevocationVerdict {
        let snapshot = core.snapshot();
        let config = &snapshot.config.ocsp;
        let Some(issuer) = &lookup.issuer else {
            return RevocationVerdict::Unavailable("the issuer certificate is unknown".into());
        };
        if let Some(v) = self.cached(config, &lookup.leaf, issuer) {
            core.stats.incr(Counter::OcspCacheHits);
            return crate::core::revocation::verdict_of(&v.status);
        }
        let url = match &lookup.url_override {
            Some(u) => u.clone(),
            None => match ocsp::responder_urls(&lookup.leaf).into_iter().next() {
                Some(u) => u,
                None => {
                    return RevocationVerdict::Unavailable(
                        "no OCSP responder: the certificate has no AIA OCSP URL and ocsp.url is unset"
                            .into(),
                    );
                }
            },
        };
        let Some(_slot) = self.claim(config.max_concurrent_lookups) else {
            core.stats.incr(Counter::OcspLookupsRefusedBusy);
            return RevocationVerdict::Unavailable(
                "ocsp.max_concurrent_lookups lookups already in progress".into(),
            );
        };
        let nonce = config.use_nonce.then(|| {
            let mut n = vec![0u8; 16];
            os_rng(&mut n);
            n
        });
        let query = match ocsp::build_query(&lookup.leaf, issuer, url.clone(), nonce) {
            Ok(q) => q,
            Err(e) => return RevocationVerdict::Unavailable(format!("OCSP request: {e}")),
        };
        core.stats.incr(Counter::OcspRequests);
        let timeout = Duration::from_millis(config.timeout_ms);
        let started = monotonic_clock();
        let response = match ocsp::fetch(&query, timeout).await {
            Ok(r) => r,
            Err(e) => {
                core.stats.incr(Counter::OcspUnreachable);
                warn!(url = %Escaped::str(&url), "OCSP responder unavailable after {:?}: {e}", started.elapsed());
                return RevocationVerdict::Unavailable(format!("{url}: {e}"));
            }
        };
        let now = wall_clock();
        let verdict = match ocsp::verify_response(&query, &response, issuer, now) {
            Ok(v) => v,
            Err(e) => {
                core.stats.incr(Counter::OcspBadResponse);
                warn!(url = %Escaped::str(&url), "OCSP response refused: {e}");
                return RevocationVerdict::Unavailable(format!("{url}: {e}"));
            }
        };
        if crate::core::revocation::too_old_to_trust(&verdict, now) {
            return RevocationVerdict::Unavailable(format!(
                "{url}: response without nonce or nextUpdate is older than 5 minutes"
            ));
        }
        lock(&self.cache)
            .cache
            .put(&lookup.leaf, issuer, &verdict, now);
        debug!(url = %Escaped::str(&url), status = ?verdict.status, "OCSP answered in {:?}", started.elapsed());
        crate::core::revocation::verdict_of(&verdict.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_slots_are_bounded_and_given_back() {
        let c = OcspClient::new(&OcspConfig::default());
        let a = c.claim(2).unwrap();
        let b = c.claim(2).unwrap();
        assert!(c.claim(2).is_none(), "a third lookup past the bound");
        drop(a);
        assert!(c.claim(2).is_some());
        drop(b);
        assert_eq!(c.in_flight.load(Ordering::Relaxed), 0);
    }
}
