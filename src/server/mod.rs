//! The tokio shell around the sans-IO core: the only place with sockets, the clock, the OS RNG,
//! task spawning and signals (see `handle.rs` for the request path itself).
//!
//! One receive loop per listening socket; a datagram is processed on the task that received it
//! when the server is idle, and otherwise queued for one worker per runtime thread, conversations
//! in progress first (`dispatch.rs`, `core::queue`), bounded by `server.max_in_flight` (the
//! excess is dropped and counted: a NAS retransmits, RFC 5080 §2.2.1). A sweeper evicts idle
//! conversations once a second.

pub mod accounting;
pub mod acct_db;
pub mod announce;
pub mod coa;
pub mod control;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, error, info, warn};

pub mod check;
pub mod metrics;
pub mod reload;

pub use crate::core::{Core, Handled};

pub mod audit;
pub mod debug_filter;
mod dispatch;
pub mod drain;
pub mod notify;

use crate::core::stats::Counter;
use crate::reason::ReasonCode;
use crate::session::Now;

pub mod radsec;
pub mod stream;
use crate::session::{RevocationLookup, RevocationVerdict};

/// OCSP lookups as the shell performs them: bounded in number, each bounded by the timeout, with
/// a response cache honouring nextUpdate.
pub struct OcspClient {
    config: crate::config::OcspConfig,
    cache: std::sync::Mutex<crate::x509::ocsp::Cache>,
    lookups: Semaphore,
}

impl OcspClient {
    pub fn new(config: &crate::config::OcspConfig) -> Option<Arc<Self>> {
        if !config.enable {
            return None;
        }
        Some(Arc::new(OcspClient {
            cache: std::sync::Mutex::new(crate::x509::ocsp::Cache::new(
                config.cache_max_entries,
                Duration::from_secs(config.cache_max_secs),
            )),
            lookups: Semaphore::new(config.max_concurrent_lookups.max(1)),
            config: config.clone(),
        }))
    }

    /// RFC 6960 lookup of the peer's certificate. Never takes longer than `ocsp.timeout_ms`.
    pub async fn lookup(&self, core: &Core, lookup: &RevocationLookup) -> RevocationVerdict {
        use crate::x509::ocsp;
        let Some(issuer) = &lookup.issuer else {
            return RevocationVerdict::Unavailable("the issuer certificate is unknown".into());
        };
        let now = wall_clock();
        if let Ok(mut cache) = self.cache.lock()
            && let Some(v) = cache.get(&lookup.leaf, issuer, now)
        {
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
        let Ok(_permit) = self.lookups.try_acquire() else {
            core.stats.incr(Counter::OcspLookupsRefusedBusy);
            return RevocationVerdict::Unavailable(
                "ocsp.max_concurrent_lookups lookups already in progress".into(),
            );
        };
        let nonce = self.config.use_nonce.then(|| {
            let mut n = vec![0u8; 16];
            os_rng(&mut n);
            n
        });
        let query = match ocsp::build_query(&lookup.leaf, issuer, url.clone(), nonce) {
            Ok(q) => q,
            Err(e) => return RevocationVerdict::Unavailable(format!("OCSP request: {e}")),
        };
        core.stats.incr(Counter::OcspRequests);
        let timeout = Duration::from_millis(self.config.timeout_ms);
        let started = monotonic_clock();
        let response = match ocsp::fetch(&query, timeout).await {
            Ok(r) => r,
            Err(e) => {
                core.stats.incr(ReasonCode::OcspUnavailable);
                warn!(url = %crate::escape::Escaped::str(&url), "OCSP responder unavailable after {:?}: {e}", started.elapsed());
                return RevocationVerdict::Unavailable(format!("{url}: {e}"));
            }
        };
        let now = wall_clock();
        let verdict = match ocsp::verify_response(&query, &response, issuer, now) {
            Ok(v) => v,
            Err(e) => {
                core.stats.incr(Counter::OcspBadResponse);
                warn!(url = %crate::escape::Escaped::str(&url), "OCSP response refused: {e}");
                return RevocationVerdict::Unavailable(format!("{url}: {e}"));
            }
        };
        if crate::core::revocation::too_old_to_trust(&verdict, now) {
            return RevocationVerdict::Unavailable(format!(
                "{url}: response without nonce or nextUpdate is older than 5 minutes"
            ));
        }
        if let Ok(mut cache) = self.cache.lock() {
            cache.put(&lookup.leaf, issuer, &verdict, now);
        }
        debug!(url = %crate::escape::Escaped::str(&url), status = ?verdict.status, "OCSP answered in {:?}", started.elapsed());
        crate::core::revocation::verdict_of(&verdict.status)
    }
}

/// Both clocks, read together for one datagram: the only way time enters the core.
#[expect(
    clippy::disallowed_methods,
    reason = "the shell reads the clock and hands it to the sans-IO core"
)]
pub fn now() -> Now {
    Now::new(Instant::now(), rustls::pki_types::UnixTime::now())
}

#[expect(
    clippy::disallowed_methods,
    reason = "the shell reads the clock and hands it to the sans-IO core"
)]
pub(crate) fn monotonic_clock() -> Instant {
    Instant::now()
}

#[expect(
    clippy::disallowed_methods,
    reason = "the shell reads the clock and hands it to the sans-IO core"
)]
pub(crate) fn wall_clock() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// The receive buffer asked for each UDP socket.
const RECV_BUFFER: usize = 4 << 20;

/// Opens a UDP socket; IPv6 sockets are IPv6-only so that `0.0.0.0:1812` and `[::]:1812` can
/// both be listed.
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Bursts of re-associating clients arrive faster than one scheduler tick.
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    // Linux reports twice what it granted, capped by net.core.rmem_max (208 KiB by default).
    if let Ok(granted) = socket.recv_buffer_size()
        && granted < RECV_BUFFER
    {
        warn!(
            "udp {addr}: the kernel granted a {} KiB receive buffer instead of {} KiB; a storm of \
             re-authentications may overflow it (raise net.core.rmem_max, e.g. sysctl -w \
             net.core.rmem_max={RECV_BUFFER})",
            granted / 2048,
            RECV_BUFFER / 1024
        );
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// The random generator for State values, Class values and MPPE salts: the crypto library's
/// (aws-lc's DRBG, seeded from the OS, in FIPS mode the module's approved one; *ring*'s is the OS
/// generator), which also saves a `getrandom` system call per draw. A machine that cannot produce
/// randomness must not authenticate anyone with predictable State values: stop instead.
pub(crate) fn os_rng(buf: &mut [u8]) {
    use crate::crypto::rand::SecureRandom;
    if crate::crypto::rand::SystemRandom::new().fill(buf).is_err() {
        error!("the random number generator failed; stopping");
        std::process::abort();
    }
}

/// Reads the learned per-client state (clients on `require_message_authenticator = "auto"` that
/// have sent a valid Message-Authenticator) so a restart does not reopen the BlastRADIUS window.
pub fn load_state(core: &Core, path: &Path) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            warn!("server.state_file {}: cannot read: {e}", path.display());
            return;
        }
    };
    let addresses = crate::core::state_file::parse(&text);
    let n = core.restore_learned(&addresses);
    if n > 0 {
        info!(
            "server.state_file {}: {n} client(s) already require Message-Authenticator (auto)",
            path.display()
        );
    }
}

/// Writes the learned state atomically (temporary file, then rename) when it changed.
fn save_state(core: &Core, path: &Path) {
    let (dirty, learned) = core.learned_state();
    if !dirty {
        return;
    }
    let text = crate::core::state_file::render(&learned);
    let tmp = path.with_extension("tmp");
    let result = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        warn!("server.state_file {}: cannot write: {e}", path.display());
    }
}

/// What the shell needs besides the core and the sockets.
pub struct Options {
    pub max_in_flight: usize,
    /// `server.max_queue_wait_ms`: how long a request may wait for a worker.
    pub max_queue_wait: Duration,
    /// Where to persist learned "auto" Message-Authenticator state (None: nothing to persist).
    pub state_file: Option<PathBuf>,
    /// The `[tls]` section, to rebuild the TLS configuration when its files change.
    pub tls: crate::config::TlsConfig,
    /// Notified on SIGHUP: reload the whole configuration now.
    pub reload: Arc<tokio::sync::Notify>,
    /// Reloads the configuration file; holds the `[ocsp]` lookups in force.
    pub reloader: Arc<reload::Reloader>,
    /// `server.shutdown_grace_secs`: how long conversations in flight may take to finish.
    pub shutdown_grace: Duration,
    /// `--debug-filter`: packets matching run inside the `debug_dump` span (empty: no span).
    pub debug_filter: Vec<debug_filter::DebugFilter>,
    /// RadSec and RADIUS/TCP listeners (`stream::bind`), if any are configured.
    pub streams: Option<stream::Streams>,
    /// Live sessions, disconnected when their certificate is revoked (RFC 5176).
    pub coa: Arc<coa::Coa>,
}

/// Reads the CRL files and logs their freshness (at start and every hour).
pub fn report_crls(tls: &crate::config::TlsConfig) {
    if let Ok(crls) = crate::x509::crl::load(&tls.crl_file.paths()) {
        crate::x509::crl::report_freshness(&crls, tls, wall_clock());
    }
}

/// Rebuilds the TLS configuration; on failure the last good one stays in force.
fn reload_tls(core: &Core, tls: &crate::config::TlsConfig, why: &str) {
    let rebuilt = match core.tls_setup() {
        Some(previous) => crate::tls::rebuild(tls, &previous),
        None => crate::tls::server_config(tls),
    };
    match rebuilt {
        Ok(config) => {
            core.reload_tls(config);
            let crls = crate::x509::crl::load(&tls.crl_file.paths()).unwrap_or_default();
            let revoked: usize = crls.iter().map(|c| c.revoked).sum();
            info!(
                crls = crls.len(),
                revoked, "{why}: TLS configuration reloaded (new conversations use it)"
            );
            crate::x509::crl::report_freshness(&crls, tls, wall_clock());
        }
        Err(e) => {
            core.stats.incr(Counter::ConfigReloadFailed);
            error!("{why}: new TLS configuration refused, the last good one stays in force: {e}");
        }
    }
}

/// Serves on the given sockets until `shutdown` turns true.
pub async fn run(
    core: Arc<Core>,
    sockets: Vec<UdpSocket>,
    options: Options,
    mut shutdown: watch::Receiver<bool>,
) {
    let Options {
        max_in_flight,
        max_queue_wait,
        state_file,
        tls,
        reload,
        reloader,
        shutdown_grace,
        debug_filter,
        streams,
        coa,
    } = options;
    let ocsp = reloader.ocsp.clone();
    let debug_filter = Arc::new(debug_filter);
    let permits = Arc::new(Semaphore::new(max_in_flight));
    // `shutdown` starts the drain (drain.rs); `exit` ends the loops once it is over.
    let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (exit_tx, exit) = watch::channel(false);
    // Stream connections stop with the UDP loops, once the drain is over.
    let streams = streams.map(|s| {
        tokio::spawn(stream::serve(
            core.clone(),
            s,
            ocsp.clone(),
            permits.clone(),
            exit.clone(),
        ))
    });
    let sockets: Vec<Arc<UdpSocket>> = sockets.into_iter().map(Arc::new).collect();
    let dispatcher = dispatch::Dispatcher::new(
        core.clone(),
        (max_in_flight, max_queue_wait),
        (ocsp.clone(), coa.clone()),
        debug_filter,
        draining.clone(),
        sockets.clone(),
    );
    let mut loops = Vec::new();
    for socket in sockets {
        loops.push(tokio::spawn(
            dispatcher.clone().receive_loop(socket, exit.clone()),
        ));
    }
    // One worker per runtime thread: each takes queued requests when the receive loops cannot
    // keep up processing them inline.
    for _ in 0..tokio::runtime::Handle::current().metrics().num_workers() {
        loops.push(tokio::spawn(dispatcher.clone().worker(exit.clone())));
    }
    let sweeper = {
        let core = core.clone();
        let mut shutdown = exit.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut n: u64 = 0;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.changed() => break,
                }
                core.sweep(monotonic_clock());
                if let Some(path) = &state_file {
                    save_state(&core, path);
                }
                n += 1;
                if n.is_multiple_of(60) {
                    notify::status(&status_line(&core, "serving"));
                }
                if n.is_multiple_of(300) {
                    info!("counters: {}", core.stats.report());
                }
            }
        })
    };
    let watcher = {
        let core = core.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            // Files are polled every 2 s (a change takes effect within 5 s, as promised in the
            // docs), rather than inotify: it works the same on every filesystem and for files
            // replaced by rename, which is how CRL publishers usually write them.
            let mut tls = tls;
            let mut files = crate::x509::crl::watched_files(&tls);
            let mut seen = crate::x509::crl::fingerprint(&files);
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            let mut n: u64 = 0;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        n += 1;
                        let now = crate::x509::crl::fingerprint(&files);
                        if now != seen {
                            seen = now;
                            reload_tls(&core, &tls, "files changed on disk");
                            coa.check_crls(&tls);
                        } else if n.is_multiple_of(1800) {
                            report_crls(&tls);
                        }
                    }
                    _ = reload.notified() => {
                        if reloader.reload_all("SIGHUP")
                            && let Some(t) = reloader.tls()
                        {
                            tls = t;
                            files = crate::x509::crl::watched_files(&tls);
                        }
                        coa.check_crls(&tls);
                        seen = crate::x509::crl::fingerprint(&files);
                        notify::ready(&status_line(&core, "reloaded"));
                    }
                    _ = shutdown.changed() => break,
                }
            }
        })
    };
    let _ = shutdown.wait_for(|stop| *stop).await;
    // Drain: no new conversations; those in flight finish within the grace period.
    draining.store(true, std::sync::atomic::Ordering::SeqCst);
    let started = monotonic_clock();
    let in_flight = core.sessions_in_progress();
    info!(
        in_flight,
        grace_secs = shutdown_grace.as_secs(),
        "draining: new conversations are refused"
    );
    let all = u32::try_from(max_in_flight).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(shutdown_grace, async {
        loop {
            if core.sessions_in_progress() == 0
                && dispatcher.idle()
                && permits.available_permits() >= max_in_flight
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .is_ok();
    let left = core.sessions_in_progress();
    if drained {
        info!("drained in {:?}", started.elapsed());
    } else {
        warn!(
            left,
            "grace period over: {left} conversation(s) still in flight are abandoned"
        );
    }
    let _ = exit_tx.send(true);
    let _ = watcher.await;
    for l in loops {
        let _ = l.await;
    }
    let _ = sweeper.await;
    if let Some(s) = streams {
        let _ = s.await;
    }
    // Let requests already being processed send their replies.
    let _ = tokio::time::timeout(Duration::from_secs(1), permits.acquire_many(all)).await;
    info!("stopped; counters: {}", core.stats.report());
}

/// A short `STATUS=` line for systemd.
pub fn status_line(core: &Core, what: &str) -> String {
    format!(
        "{what}; {} conversation(s) in progress",
        core.sessions_in_progress()
    )
}
