//! Counters and rate-limited warnings.
//!
//! Every packet the server drops or refuses is counted under a stable reason name (the same
//! names the log lines use), and logged at most once per reason and source per interval, with the
//! number of occurrences that were not logged: a flood of garbage costs a counter increment, not a
//! line of output per packet.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One warning per reason and source per this long.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Distinct (reason, source) pairs remembered for rate limiting; past it the memory is reset, so
/// a spoofed-source flood cannot grow it without bound.
const MAX_LIMITER_KEYS: usize = 4096;

/// (reason, source) -> (last logged, suppressed since).
type Limiter = HashMap<(&'static str, Option<IpAddr>), (Instant, u64)>;

#[derive(Default)]
pub struct Stats {
    counters: Mutex<BTreeMap<&'static str, u64>>,
    limiter: Mutex<Limiter>,
}

impl Stats {
    pub fn incr(&self, name: &'static str) {
        if let Ok(mut c) = self.counters.lock() {
            *c.entry(name).or_insert(0) += 1;
        }
    }

    pub fn get(&self, name: &str) -> u64 {
        self.counters
            .lock()
            .ok()
            .and_then(|c| c.get(name).copied())
            .unwrap_or(0)
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.counters.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Returns `Some(suppressed)` when a warning for this reason and source may be logged now,
    /// with how many were swallowed since the last one.
    pub fn should_log(
        &self,
        reason: &'static str,
        source: Option<IpAddr>,
        now: Instant,
    ) -> Option<u64> {
        let mut map = self.limiter.lock().ok()?;
        if map.len() >= MAX_LIMITER_KEYS && !map.contains_key(&(reason, source)) {
            map.retain(|_, (last, _)| now.saturating_duration_since(*last) < LOG_INTERVAL);
            if map.len() >= MAX_LIMITER_KEYS {
                map.clear();
            }
        }
        match map.get_mut(&(reason, source)) {
            Some((last, suppressed)) => {
                if now.saturating_duration_since(*last) >= LOG_INTERVAL {
                    let n = *suppressed;
                    *last = now;
                    *suppressed = 0;
                    Some(n)
                } else {
                    *suppressed += 1;
                    None
                }
            }
            None => {
                map.insert((reason, source), (now, 0));
                Some(0)
            }
        }
    }

    /// One line with every counter, for the periodic and the shutdown report.
    pub fn report(&self) -> String {
        self.snapshot()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests may read the clock
mod tests {
    use super::*;

    #[test]
    fn warnings_are_rate_limited_per_reason_and_source() {
        let s = Stats::default();
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(s.should_log("x", Some(a), t0), Some(0));
        assert_eq!(s.should_log("x", Some(a), t0), None);
        assert_eq!(s.should_log("x", Some(a), t0), None);
        assert_eq!(s.should_log("x", Some(b), t0), Some(0));
        assert_eq!(s.should_log("y", Some(a), t0), Some(0));
        assert_eq!(s.should_log("x", Some(a), t0 + LOG_INTERVAL), Some(2));
    }

    #[test]
    fn limiter_memory_is_bounded() {
        let s = Stats::default();
        let t0 = Instant::now();
        for i in 0..20_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            s.should_log("flood", Some(ip), t0);
        }
        assert!(s.limiter.lock().unwrap().len() <= MAX_LIMITER_KEYS);
    }
}
