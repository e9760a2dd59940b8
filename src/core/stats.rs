//! Counters and rate-limited warnings.
//!
//! Every packet the server drops or refuses is counted under a stable reason name (the same
//! names the log lines use), and logged at most once per reason and source per interval, with the
//! number of occurrences that were not logged: a flood of garbage costs a counter increment, not a
//! line of output per packet.
//!
//! The enum of counters is the one list: each entry declares where it shows on `/metrics`
//! ([`Counter::export`]), so the scrape is generated from it and a counter cannot be forgotten.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::Transport;
use crate::reason::{ReasonCode, ReasonKind};

macro_rules! families {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $help:literal,)*) => {
        /// A counter family on `/metrics` (the encoder appends `_total`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Family {
            $($(#[$doc])* $variant,)*
        }

        impl Family {
            /// Every family, in the order of the scrape.
            pub const ALL: &'static [Family] = &[$(Family::$variant,)*];

            /// The metric name, without `_total`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Family::$variant => $name,)*
                }
            }

            /// The `# HELP` text.
            pub const fn help(self) -> &'static str {
                match self {
                    $(Family::$variant => $help,)*
                }
            }
        }
    };
}

families! {
    PacketsReceived = "certradius_packets_received",
        "Datagrams and stream packets handed to the authentication path",
    AccessRequests = "certradius_access_requests",
        "Access-Requests that passed the authenticator checks and were processed",
    Replies = "certradius_replies",
        "Replies of the authentication path by type: access_accept, access_reject, access_challenge, status_server (answers to Status-Server, RFC 5997)",
    PacketsDropped = "certradius_packets_dropped",
        "Packets discarded without an answer, by reason",
    DuplicateRequests = "certradius_duplicate_requests",
        "Retransmissions recognised by the duplicate cache: answered from it, or dropped while the original was still being processed",
    ConversationsStarted = "certradius_conversations_started",
        "EAP-TLS conversations started",
    ConversationsExpired = "certradius_conversations_expired",
        "Conversations abandoned idle past eap.session_timeout_secs",
    RevocationLookups = "certradius_revocation_lookups",
        "Authentications paused for an OCSP lookup (each then counted by result in certradius_ocsp_lookups_total)",
    OcspLookups = "certradius_ocsp_lookups",
        "OCSP lookups by result: cache_hit, queried (a request sent), busy (max_concurrent_lookups reached), unreachable, bad_response",
    DirectoryLookups = "certradius_directory_lookups",
        "Directory (LDAP) lookups by result: found, not_found, disabled (searched), error (every URL failed), cache_hit (a fresh cached answer, or an expired one served by accept_cached)",
    ConfigReloads = "certradius_config_reloads",
        "Configuration reloads (SIGHUP and the certificate/CRL file watchers) by result",
    AccountingRequests = "certradius_accounting_requests",
        "Accounting-Requests (RFC 2866) by outcome: received (verified), answered (recorded, Accounting-Response sent), duplicate (retransmission)",
    AccountingDbRecords = "certradius_accounting_db_records",
        "Accounting records for PostgreSQL: written (directly), queued (on disk while the database was away), replayed (from the queue)",
    AccountingDbErrors = "certradius_accounting_db_errors",
        "Failed PostgreSQL connections, writes and replays",
    Disconnects = "certradius_disconnects",
        "Disconnect-Requests (RFC 5176): sent (every transmission), ack, nak, timeout, bad_answer (a reply that failed verification, ignored)",
    Connections = "certradius_connections",
        "RADIUS/TCP (RFC 6613) and RadSec (RFC 6614) connections by transport and outcome: accepted, then the refusals and abnormal ends",
    StreamRequests = "certradius_stream_requests",
        "Packets received on RADIUS/TCP and RadSec connections, by transport",
    Radius11Connections = "certradius_radius_1_1_connections",
        "RadSec connections that negotiated RADIUS/1.1 by ALPN (RFC 9765)",
    ReadinessChanges = "certradius_readiness_changes",
        "Changes between ready and not ready (server/health.rs)",
    CrlFetches = "certradius_crl_fetch",
        "CRL fetches (tls.crl_url, tls.crl_from_certificates) by result: ok, http_error, invalid, wrong_issuer, too_large, timeout, error",
}

/// Where a counter shows on `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    /// Read at scrape time as this sample; counters with the same sample add up.
    Sample(Sample),
    /// The total of a family's samples (e.g. every dropped packet): not a series of its own.
    TotalOf(Family),
    /// Counted per finished authentication by the metrics observer, as
    /// `certradius_authentications_total{outcome="reject",reason}` (a [`ReasonKind::Rejected`]).
    Authentications,
    /// A [`ReasonKind::ConnectionRefused`] reason names the log line; the connection counters
    /// ([`Family::Connections`]) count the event.
    Connections,
}

/// One series: a family and up to two labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub family: Family,
    pub labels: [Option<(&'static str, &'static str)>; 2],
}

impl Export {
    const fn plain(family: Family) -> Export {
        Export::Sample(Sample {
            family,
            labels: [None, None],
        })
    }

    const fn labelled(family: Family, key: &'static str, value: &'static str) -> Export {
        Export::Sample(Sample {
            family,
            labels: [Some((key, value)), None],
        })
    }
}

macro_rules! counters {
    ($($(#[$doc:meta])* $variant:ident = $name:literal => $export:expr,)*) => {
        /// A counter: the events counted apart from the reasons, one reason, or one outcome of
        /// a stream connection.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Counter {
            $($(#[$doc])* $variant,)*
            /// A packet dropped or an authentication refused for this reason.
            Reason(ReasonCode),
            /// A RADIUS/TCP or RadSec connection ended in (or reached) this outcome; made by
            /// [`Counter::connection`].
            Connection(StreamTransport, ConnectionOutcome),
            /// A packet received on a RADIUS/TCP or RadSec connection; made by
            /// [`Counter::stream_request`].
            StreamRequest(StreamTransport),
        }

        impl Counter {
            const PLAIN: &'static [Counter] = &[$(Counter::$variant,)*];

            /// The stable name (the same as the reason's for [`Counter::Reason`]).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Counter::$variant => $name,)*
                    Counter::Reason(r) => r.as_str(),
                    Counter::Connection(t, o) => o.counter_name(t),
                    Counter::StreamRequest(StreamTransport::Tcp) => "tcp_requests",
                    Counter::StreamRequest(StreamTransport::Tls) => "tls_requests",
                }
            }

            /// Where it shows on `/metrics`.
            pub const fn export(self) -> Export {
                match self {
                    $(Counter::$variant => $export,)*
                    Counter::Reason(r) => reason_export(r),
                    Counter::Connection(t, o) => Export::Sample(Sample {
                        family: Family::Connections,
                        labels: [Some(("transport", t.as_str())), Some(("outcome", o.as_str()))],
                    }),
                    Counter::StreamRequest(t) => {
                        Export::labelled(Family::StreamRequests, "transport", t.as_str())
                    }
                }
            }
        }
    };
}

use Export as E;
use Family as F;

counters! {
    PacketsReceived = "packets_received" => E::plain(F::PacketsReceived),
    PacketsDropped = "packets_dropped" => E::TotalOf(F::PacketsDropped),
    RateLimitedSource = "rate_limited_source"
        => E::labelled(F::PacketsDropped, "reason", "rate_limited_source"),
    AccessRequests = "access_requests" => E::plain(F::AccessRequests),
    AccessAccepts = "access_accepts" => E::labelled(F::Replies, "type", "access_accept"),
    AccessRejects = "access_rejects" => E::labelled(F::Replies, "type", "access_reject"),
    AccessChallenges = "access_challenges" => E::labelled(F::Replies, "type", "access_challenge"),
    StatusServer = "status_server" => E::labelled(F::Replies, "type", "status_server"),
    DuplicateAnsweredFromCache = "duplicate_answered_from_cache"
        => E::labelled(F::DuplicateRequests, "action", "answered_from_cache"),
    DuplicateInProgressDropped = "duplicate_in_progress_dropped"
        => E::labelled(F::DuplicateRequests, "action", "dropped_in_progress"),
    SessionsStarted = "sessions_started" => E::plain(F::ConversationsStarted),
    SessionsExpired = "sessions_expired" => E::plain(F::ConversationsExpired),
    /// A reply that could not be encoded: the request goes unanswered.
    ReplyEncodeFailed = "reply_encode_failed"
        => E::labelled(F::PacketsDropped, "reason", "reply_encode_failed"),
    OverloadedDropped = "overloaded_dropped"
        => E::labelled(F::PacketsDropped, "reason", "overloaded"),
    QueueExpiredDropped = "queue_expired_dropped"
        => E::labelled(F::PacketsDropped, "reason", "queue_expired"),
    /// A new conversation refused while draining on SIGTERM (`server/drain.rs`).
    DrainDropped = "drain_dropped" => E::labelled(F::PacketsDropped, "reason", "draining"),
    /// Access-Request or Status-Server left unanswered while not ready, under
    /// `server.when_unready = "silent"` (`core/readiness.rs`).
    NotReadyDropped = "not_ready_dropped"
        => E::labelled(F::PacketsDropped, "reason", "not_ready"),
    /// Ready to not ready or back (`server/health.rs`).
    ReadinessChanges = "readiness_changes" => E::plain(F::ReadinessChanges),
    /// Radius/1.1 packets that could not be translated (RFC 9765).
    Radius11Malformed = "radius_1_1_malformed"
        => E::labelled(F::PacketsDropped, "reason", "radius_1_1_malformed"),
    RevocationLookups = "revocation_lookups" => E::plain(F::RevocationLookups),
    OcspRequests = "ocsp_requests" => E::labelled(F::OcspLookups, "result", "queried"),
    OcspCacheHits = "ocsp_cache_hits" => E::labelled(F::OcspLookups, "result", "cache_hit"),
    OcspLookupsRefusedBusy = "ocsp_lookups_refused_busy"
        => E::labelled(F::OcspLookups, "result", "busy"),
    OcspBadResponse = "ocsp_bad_response"
        => E::labelled(F::OcspLookups, "result", "bad_response"),
    /// The responder could not be reached or did not answer in `ocsp.timeout_ms` (the
    /// conversations then rejected, under `ocsp_require`, count as `ocsp_unavailable`).
    OcspUnreachable = "ocsp_unreachable"
        => E::labelled(F::OcspLookups, "result", "unreachable"),
    DirectoryFound = "directory_found" => E::labelled(F::DirectoryLookups, "result", "found"),
    DirectoryNotFound = "directory_not_found"
        => E::labelled(F::DirectoryLookups, "result", "not_found"),
    DirectoryDisabled = "directory_disabled"
        => E::labelled(F::DirectoryLookups, "result", "disabled"),
    DirectoryError = "directory_error" => E::labelled(F::DirectoryLookups, "result", "error"),
    DirectoryCacheHit = "directory_cache_hit"
        => E::labelled(F::DirectoryLookups, "result", "cache_hit"),
    AccountingRequests = "accounting_requests"
        => E::labelled(F::AccountingRequests, "result", "received"),
    AccountingResponses = "accounting_responses"
        => E::labelled(F::AccountingRequests, "result", "answered"),
    AccountingDuplicates = "accounting_duplicates"
        => E::labelled(F::AccountingRequests, "result", "duplicate"),
    AccountingDbWritten = "accounting_db_written"
        => E::labelled(F::AccountingDbRecords, "result", "written"),
    AccountingQueued = "accounting_queued"
        => E::labelled(F::AccountingDbRecords, "result", "queued"),
    AccountingReplayed = "accounting_replayed"
        => E::labelled(F::AccountingDbRecords, "result", "replayed"),
    AccountingDbErrors = "accounting_db_errors" => E::plain(F::AccountingDbErrors),
    /// Every reload, whatever triggered it (SIGHUP, a certificate or CRL file changed on disk).
    ConfigReloads = "config_reloads" => E::labelled(F::ConfigReloads, "result", "success"),
    ConfigReloadFailed = "config_reload_failed"
        => E::labelled(F::ConfigReloads, "result", "failure"),
    Radius11Connections = "radius_1_1_connections" => E::plain(F::Radius11Connections),
    DisconnectRequests = "disconnect_requests" => E::labelled(F::Disconnects, "result", "sent"),
    DisconnectAcks = "disconnect_acks" => E::labelled(F::Disconnects, "result", "ack"),
    DisconnectNaks = "disconnect_naks" => E::labelled(F::Disconnects, "result", "nak"),
    DisconnectTimeouts = "disconnect_timeouts"
        => E::labelled(F::Disconnects, "result", "timeout"),
    DisconnectClaimedElsewhere = "disconnect_claimed_elsewhere"
        => E::labelled(F::Disconnects, "result", "claimed_elsewhere"),
    DisconnectBadAnswers = "disconnect_bad_answers"
        => E::labelled(F::Disconnects, "result", "bad_answer"),
    CrlFetchOk = "crl_fetch_ok" => E::labelled(F::CrlFetches, "result", "ok"),
    CrlFetchNotModified = "crl_fetch_not_modified"
        => E::labelled(F::CrlFetches, "result", "not_modified"),
    CrlFetchHttpError = "crl_fetch_http_error"
        => E::labelled(F::CrlFetches, "result", "http_error"),
    CrlFetchInvalid = "crl_fetch_invalid" => E::labelled(F::CrlFetches, "result", "invalid"),
    CrlFetchWrongIssuer = "crl_fetch_wrong_issuer"
        => E::labelled(F::CrlFetches, "result", "wrong_issuer"),
    CrlFetchTooLarge = "crl_fetch_too_large"
        => E::labelled(F::CrlFetches, "result", "too_large"),
    CrlFetchTimeout = "crl_fetch_timeout" => E::labelled(F::CrlFetches, "result", "timeout"),
    CrlFetchError = "crl_fetch_error" => E::labelled(F::CrlFetches, "result", "error"),
}

/// A reason is exported according to its kind.
const fn reason_export(r: ReasonCode) -> Export {
    match r.kind() {
        ReasonKind::Dropped => Export::labelled(Family::PacketsDropped, "reason", r.as_str()),
        ReasonKind::Rejected => Export::Authentications,
        ReasonKind::ConnectionRefused => Export::Connections,
    }
}

impl From<ReasonCode> for Counter {
    fn from(r: ReasonCode) -> Self {
        Counter::Reason(r)
    }
}

/// The transport of a stream connection (UDP has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamTransport {
    /// RADIUS/TCP (RFC 6613).
    Tcp,
    /// RadSec, RADIUS over TLS (RFC 6614).
    Tls,
}

impl StreamTransport {
    pub const ALL: &'static [StreamTransport] = &[StreamTransport::Tcp, StreamTransport::Tls];

    /// The `transport` label, the same word as a `[[client]]`'s `transport`.
    pub const fn as_str(self) -> &'static str {
        match self {
            StreamTransport::Tcp => "tcp",
            StreamTransport::Tls => "tls",
        }
    }
}

impl From<Transport> for StreamTransport {
    /// The stream listeners serve everything that is not TLS as RADIUS/TCP.
    fn from(t: Transport) -> Self {
        match t {
            Transport::Tls => StreamTransport::Tls,
            Transport::Tcp | Transport::Udp => StreamTransport::Tcp,
        }
    }
}

macro_rules! connection_outcomes {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// What became of a RADIUS/TCP or RadSec connection: `Accepted` counts every connection
        /// taken in, the others the refusals and the ends that were not the peer's orderly close.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ConnectionOutcome {
            $($(#[$doc])* $variant,)*
        }

        impl ConnectionOutcome {
            pub const ALL: &'static [ConnectionOutcome] = &[$(ConnectionOutcome::$variant,)*];

            /// The `outcome` label.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ConnectionOutcome::$variant => $name,)*
                }
            }

            /// The counter's stable name: `tcp_connections_<outcome>`, `tls_connections_<outcome>`.
            const fn counter_name(self, transport: StreamTransport) -> &'static str {
                match (transport, self) {
                    $(
                        (StreamTransport::Tcp, ConnectionOutcome::$variant) => {
                            concat!("tcp_connections_", $name)
                        }
                        (StreamTransport::Tls, ConnectionOutcome::$variant) => {
                            concat!("tls_connections_", $name)
                        }
                    )*
                }
            }
        }
    };
}

connection_outcomes! {
    /// Taken in from an address that has a `[[client]]` of this transport (TLS: before the
    /// handshake).
    Accepted = "accepted",
    /// The TLS handshake failed or did not finish within `radsec.handshake_timeout_secs`.
    HandshakeFailed = "handshake_failed",
    /// No `[[client]]` of this transport has the address, or (TLS) none has the NAS
    /// certificate's name, or the peer did not negotiate a required RADIUS/1.1.
    RefusedUnknownClient = "refused_unknown_client",
    /// `radsec.max_connections` or `max_connections_per_client` reached.
    RefusedMaxConnections = "refused_max_connections",
    /// A packet Length that cannot be framed (RFC 6613 §2.6.4): the connection is closed.
    FramingError = "framing_error",
    /// The peer closed the connection in the middle of a packet.
    ClosedMidPacket = "closed_mid_packet",
    /// No complete packet within `radsec.idle_timeout_secs`.
    IdleClosed = "idle_closed",
    /// The peer did not read a reply in time.
    WriteTimeout = "write_timeout",
}

impl Counter {
    /// The counter of a stream connection's outcome on `transport`.
    pub fn connection(transport: Transport, outcome: ConnectionOutcome) -> Counter {
        Counter::Connection(transport.into(), outcome)
    }

    /// The counter of packets received on stream connections of `transport`.
    pub fn stream_request(transport: Transport) -> Counter {
        Counter::StreamRequest(transport.into())
    }

    /// Its slot: the plain counters first, then one per reason, per connection outcome and
    /// transport, per stream transport.
    fn index(self) -> usize {
        let reasons = Counter::PLAIN.len();
        let connections = reasons + ReasonCode::ALL.len();
        let outcomes = ConnectionOutcome::ALL.len();
        let requests = connections + StreamTransport::ALL.len() * outcomes;
        match self {
            Counter::Reason(r) => reasons + r as usize,
            Counter::Connection(t, o) => connections + t as usize * outcomes + o as usize,
            Counter::StreamRequest(t) => requests + t as usize,
            plain => Counter::PLAIN
                .iter()
                .position(|c| *c == plain)
                .unwrap_or_default(),
        }
    }

    /// Every counter, in slot order.
    pub fn all() -> impl Iterator<Item = Counter> {
        let connections = StreamTransport::ALL.iter().flat_map(|t| {
            ConnectionOutcome::ALL
                .iter()
                .map(|o| Counter::Connection(*t, *o))
        });
        Counter::PLAIN
            .iter()
            .copied()
            .chain(ReasonCode::ALL.iter().map(|r| Counter::Reason(*r)))
            .chain(connections)
            .chain(
                StreamTransport::ALL
                    .iter()
                    .map(|t| Counter::StreamRequest(*t)),
            )
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
    /// How long directory lookups took, cache hits included (observed by the shell, exported
    /// as `certradius_directory_lookup_duration_seconds`).
    pub directory_duration: prometheus_client::metrics::histogram::Histogram,
}

/// Buckets of the directory lookup histogram, in seconds: a cache hit is microseconds, a
/// search milliseconds, a dead URL `timeout_ms`.
pub const DIRECTORY_BUCKETS: [f64; 12] = [
    0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

impl Default for Stats {
    fn default() -> Self {
        Stats {
            counters: Counter::all().map(|_| AtomicU64::new(0)).collect(),
            limiter: Mutex::default(),
            queued: AtomicU64::new(0),
            directory_duration: prometheus_client::metrics::histogram::Histogram::new(
                DIRECTORY_BUCKETS,
            ),
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

    #[test]
    fn stream_counters_name_their_transport() {
        let s = Stats::default();
        s.incr(Counter::connection(
            Transport::Tls,
            ConnectionOutcome::HandshakeFailed,
        ));
        // The stream listeners serve a `udp` client's address as plain TCP; so does the counter.
        s.incr(Counter::connection(
            Transport::Udp,
            ConnectionOutcome::Accepted,
        ));
        s.incr(Counter::stream_request(Transport::Tcp));
        assert_eq!(
            s.report(),
            "tcp_connections_accepted=1 tcp_requests=1 tls_connections_handshake_failed=1"
        );
        assert_eq!(
            Counter::connection(Transport::Tcp, ConnectionOutcome::IdleClosed).export(),
            Export::Sample(Sample {
                family: Family::Connections,
                labels: [Some(("transport", "tcp")), Some(("outcome", "idle_closed"))],
            })
        );
    }
}
