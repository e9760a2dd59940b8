//! Counters and rate-limited warnings.
//!
//! Every packet the server drops or refuses is counted under a stable reason name (the same
//! names the log lines use), and logged at most once per reason and source per interval, with the
//! number of occurrences that were not logged: a flood of garbage costs a counter increment, not a
//! line of output per packet.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::reason::ReasonCode;

macro_rules! counters {
    ($($variant:ident = $name:literal,)*) => {
        /// A counter: the events counted apart from the reasons, or one reason.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Counter {
            $($variant,)*
            /// A packet dropped or an authentication refused for this reason.
            Reason(ReasonCode),
        }

        impl Counter {
            const PLAIN: &'static [Counter] = &[$(Counter::$variant,)*];

            /// The stable name (the same as the reason's for [`Counter::Reason`]).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Counter::$variant => $name,)*
                    Counter::Reason(r) => r.as_str(),
                }
            }
        }
    };
}

counters! {
    PacketsReceived = "packets_received",
    PacketsDropped = "packets_dropped",
    RateLimitedSource = "rate_limited_source",
    AccessRequests = "access_requests",
    AccessAccepts = "access_accepts",
    AccessRejects = "access_rejects",
    AccessChallenges = "access_challenges",
    StatusServer = "status_server",
    DuplicateAnsweredFromCache = "duplicate_answered_from_cache",
    DuplicateInProgressDropped = "duplicate_in_progress_dropped",
    SessionsStarted = "sessions_started",
    SessionsExpired = "sessions_expired",
    ReplyEncodeFailed = "reply_encode_failed",
    OverloadedDropped = "overloaded_dropped",
    QueueExpiredDropped = "queue_expired_dropped",
    TlsReloads = "tls_reloads",
    TlsReloadFailed = "tls_reload_failed",
    RevocationLookups = "revocation_lookups",
    OcspRequests = "ocsp_requests",
    OcspCacheHits = "ocsp_cache_hits",
    OcspLookupsRefusedBusy = "ocsp_lookups_refused_busy",
    OcspBadResponse = "ocsp_bad_response",
    AccountingRequests = "accounting_requests",
    AccountingResponses = "accounting_responses",
    AccountingDuplicates = "accounting_duplicates",
    AccountingDbWritten = "accounting_db_written",
    AccountingQueued = "accounting_queued",
    AccountingReplayed = "accounting_replayed",
    AccountingDbErrors = "accounting_db_errors",
    ConfigReloads = "config_reloads",
    DrainDropped = "drain_dropped",
    ConfigReloadFailed = "config_reload_failed",
    RadsecConnections = "radsec_connections",
    RadsecRequests = "radsec_requests",
    RadsecHandshakeFailed = "radsec_handshake_failed",
    TcpConnections = "tcp_connections",
    TcpRequests = "tcp_requests",
    StreamRefusedUnknownClient = "stream_refused_unknown_client",
    StreamRefusedMaxConnections = "stream_refused_max_connections",
    StreamFramingError = "stream_framing_error",
    StreamClosedMidPacket = "stream_closed_mid_packet",
    StreamIdleClosed = "stream_idle_closed",
    StreamWriteTimeout = "stream_write_timeout",
    Radius11Connections = "radius_1_1_connections",
    Radius11Malformed = "radius_1_1_malformed",
    DisconnectRequests = "disconnect_requests",
    DisconnectAcks = "disconnect_acks",
    DisconnectNaks = "disconnect_naks",
    DisconnectTimeouts = "disconnect_timeouts",
    DisconnectBadAnswers = "disconnect_bad_answers",
}

impl From<ReasonCode> for Counter {
    fn from(r: ReasonCode) -> Self {
        Counter::Reason(r)
    }
}

impl Counter {
    /// Its slot: the plain counters first, then one per reason.
    fn index(self) -> usize {
        match self {
            Counter::Reason(r) => Counter::PLAIN.len() + r as usize,
            plain => Counter::PLAIN
                .iter()
                .position(|c| *c == plain)
                .unwrap_or_default(),
        }
    }

    /// Every counter, in slot order.
    pub fn all() -> impl Iterator<Item = Counter> {
        Counter::PLAIN
            .iter()
            .copied()
            .chain(ReasonCode::ALL.iter().map(|r| Counter::Reason(*r)))
    }
}

/// One warning per reason and source per this long.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Distinct (reason, source) pairs remembered for rate limiting; past it the memory is reset, so
/// a spoofed-source flood cannot grow it without bound.
const MAX_LIMITER_KEYS: usize = 4096;

/// (reason, source) -> (last logged, suppressed since).
type Limiter = HashMap<(ReasonCode, Option<IpAddr>), (Instant, u64)>;

/// One atomic per counter: counting takes no lock on the packet path.
pub struct Stats {
    counters: Box<[AtomicU64]>,
    limiter: Mutex<Limiter>,
    /// A gauge, not a counter: requests waiting for a worker (set by the shell's dispatcher).
    queued: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            counters: Counter::all().map(|_| AtomicU64::new(0)).collect(),
            limiter: Mutex::default(),
            queued: AtomicU64::new(0),
        }
    }
}

impl Stats {
    /// Records how many requests wait for a worker now.
    pub fn set_queued(&self, n: usize) {
        self.queued
            .store(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Requests waiting for a worker (the last value [`Stats::set_queued`] recorded).
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    pub fn add(&self, counter: impl Into<Counter>, n: u64) {
        if let Some(c) = self.counters.get(counter.into().index()) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn incr(&self, counter: impl Into<Counter>) {
        if let Some(c) = self.counters.get(counter.into().index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The value of the counter with this stable name (0 for a name that is no counter).
    pub fn get(&self, name: &str) -> u64 {
        Counter::all()
            .find(|c| c.as_str() == name)
            .map_or(0, |c| self.value(c))
    }

    pub fn value(&self, counter: Counter) -> u64 {
        self.counters
            .get(counter.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The counters that have counted something, by stable name.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        Counter::all()
            .map(|c| (c.as_str(), self.value(c)))
            .filter(|(_, v)| *v > 0)
            .collect()
    }

    /// Returns `Some(suppressed)` when a warning for this reason and source may be logged now,
    /// with how many were swallowed since the last one.
    pub fn should_log(
        &self,
        reason: ReasonCode,
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
        let (x, y) = (ReasonCode::MalformedPacket, ReasonCode::UnknownClient);
        assert_eq!(s.should_log(x, Some(a), t0), Some(0));
        assert_eq!(s.should_log(x, Some(a), t0), None);
        assert_eq!(s.should_log(x, Some(a), t0), None);
        assert_eq!(s.should_log(x, Some(b), t0), Some(0));
        assert_eq!(s.should_log(y, Some(a), t0), Some(0));
        assert_eq!(s.should_log(x, Some(a), t0 + LOG_INTERVAL), Some(2));
    }

    #[test]
    fn limiter_memory_is_bounded() {
        let s = Stats::default();
        let t0 = Instant::now();
        for i in 0..20_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            s.should_log(ReasonCode::UnknownClient, Some(ip), t0);
        }
        assert!(s.limiter.lock().unwrap().len() <= MAX_LIMITER_KEYS);
    }

    #[test]
    fn counters_keep_their_names_and_slots() {
        let s = Stats::default();
        let mut names = std::collections::BTreeSet::new();
        for (i, c) in Counter::all().enumerate() {
            assert_eq!(c.index(), i);
            assert!(names.insert(c.as_str()), "{} twice", c.as_str());
        }
        s.incr(Counter::AccessRejects);
        s.incr(ReasonCode::CertRevoked);
        s.incr(ReasonCode::CertRevoked);
        assert_eq!(s.get("access_rejects"), 1);
        assert_eq!(s.get("cert_revoked"), 2);
        assert_eq!(s.get("no_such_counter"), 0);
        assert_eq!(
            s.snapshot().into_iter().collect::<Vec<_>>(),
            [("access_rejects", 1), ("cert_revoked", 2)]
        );
        assert_eq!(s.report(), "access_rejects=1 cert_revoked=2");
    }
}
