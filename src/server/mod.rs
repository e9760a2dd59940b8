//! The tokio shell around the sans-IO core: the only place with sockets, the clock, the OS RNG,
//! task spawning and signals (see `handle.rs` for the request path itself).
//!
//! One receive loop per listening socket hands each datagram to a task, bounded by
//! `server.max_in_flight` (the excess is dropped and counted: a NAS retransmits, RFC 5080 §2.2.1);
//! the CPU work of TLS runs on the runtime's worker threads. A sweeper evicts idle conversations
//! once a second.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, error, info, warn};

pub use crate::core::{Core, Handled};

pub mod audit;
pub mod debug_filter;
pub mod drain;
pub mod notify;

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
    #[allow(clippy::disallowed_methods)]
    pub async fn lookup(&self, core: &Core, lookup: &RevocationLookup) -> RevocationVerdict {
        use crate::x509::ocsp;
        let Some(issuer) = &lookup.issuer else {
            return RevocationVerdict::Unavailable("the issuer certificate is unknown".into());
        };
        let now = std::time::SystemTime::now();
        if let Ok(mut cache) = self.cache.lock()
            && let Some(v) = cache.get(&lookup.leaf, issuer, now)
        {
            core.stats.incr("ocsp_cache_hits");
            return verdict_of(&v.status);
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
            core.stats.incr("ocsp_lookups_refused_busy");
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
        core.stats.incr("ocsp_requests");
        let timeout = Duration::from_millis(self.config.timeout_ms);
        let started = Instant::now();
        let response = match ocsp::fetch(&query, timeout).await {
            Ok(r) => r,
            Err(e) => {
                core.stats.incr("ocsp_unavailable");
                warn!(%url, "OCSP responder unavailable after {:?}: {e}", started.elapsed());
                return RevocationVerdict::Unavailable(format!("{url}: {e}"));
            }
        };
        let now = std::time::SystemTime::now();
        let verdict = match ocsp::verify_response(&query, &response, issuer, now) {
            Ok(v) => v,
            Err(e) => {
                core.stats.incr("ocsp_bad_response");
                warn!(%url, "OCSP response refused: {e}");
                return RevocationVerdict::Unavailable(format!("{url}: {e}"));
            }
        };
        // A response with neither our nonce nor a nextUpdate could be a replay of any age:
        // only trust it when it was produced just now.
        if !verdict.nonce_echoed
            && verdict.next_update.is_none()
            && now
                .duration_since(verdict.this_update)
                .is_ok_and(|age| age > Duration::from_secs(300))
        {
            return RevocationVerdict::Unavailable(format!(
                "{url}: response without nonce or nextUpdate is older than 5 minutes"
            ));
        }
        if let Ok(mut cache) = self.cache.lock() {
            cache.put(&lookup.leaf, issuer, &verdict, now);
        }
        debug!(%url, status = ?verdict.status, "OCSP answered in {:?}", started.elapsed());
        verdict_of(&verdict.status)
    }
}

fn verdict_of(status: &crate::x509::ocsp::CertStatus) -> RevocationVerdict {
    match status {
        crate::x509::ocsp::CertStatus::Good => RevocationVerdict::Good,
        crate::x509::ocsp::CertStatus::Revoked { reason } => RevocationVerdict::Revoked(format!(
            "revoked ({})",
            reason.as_deref().unwrap_or("no reason given")
        )),
        crate::x509::ocsp::CertStatus::Unknown => RevocationVerdict::Unknown,
    }
}

/// Opens a UDP socket; IPv6 sockets are IPv6-only so that `0.0.0.0:1812` and `[::]:1812` can
/// both be listed.
#[allow(clippy::disallowed_methods)]
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
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// The OS RNG for State values and MPPE salts. A machine that cannot produce randomness must
/// not authenticate anyone with predictable State values: stop instead.
fn os_rng(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        error!("the operating system's random number generator failed: {e}; stopping");
        std::process::abort();
    }
}

const STATE_KEY: &str = "message_authenticator_required";

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
    let addresses: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix(STATE_KEY))
        .map(|a| a.trim().to_string())
        .collect();
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
    let mut text = String::from(
        "# certradius learned state: clients that sent a valid Message-Authenticator and must\n\
         # from now on (require_message_authenticator = \"auto\"). Delete a line to forget one.\n",
    );
    for a in learned {
        text.push_str(STATE_KEY);
        text.push(' ');
        text.push_str(&a);
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    let result = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        warn!("server.state_file {}: cannot write: {e}", path.display());
    }
}

/// What the shell needs besides the core and the sockets.
pub struct Options {
    pub max_in_flight: usize,
    /// Where to persist learned "auto" Message-Authenticator state (None: nothing to persist).
    pub state_file: Option<PathBuf>,
    /// The `[tls]` section, to rebuild the TLS configuration when its files change.
    pub tls: crate::config::TlsConfig,
    /// Notified on SIGHUP: rebuild the TLS configuration now.
    pub reload: Arc<tokio::sync::Notify>,
    /// `[ocsp]` lookups (None: OCSP off).
    pub ocsp: Option<Arc<OcspClient>>,
    /// `server.shutdown_grace_secs`: how long conversations in flight may take to finish.
    pub shutdown_grace: Duration,
    /// `--debug-filter`: packets matching run inside the `debug_dump` span (empty: no span).
    pub debug_filter: Vec<debug_filter::DebugFilter>,
}

/// Reads the CRL files and logs their freshness (at start and every hour).
pub fn report_crls(tls: &crate::config::TlsConfig) {
    if let Ok(crls) = crate::x509::crl::load(&tls.crl_file.paths()) {
        report_freshness(&crls, tls);
    }
}

/// Logs each CRL's freshness: a warning well before nextUpdate, an error once past it.
fn report_freshness(crls: &[crate::x509::crl::LoadedCrl], tls: &crate::config::TlsConfig) {
    let warn_before = Duration::from_secs(tls.crl_expiry_warning_hours.saturating_mul(3600));
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now();
    for crl in crls {
        match crate::x509::crl::freshness(crl, now, warn_before) {
            crate::x509::crl::Freshness::Fresh => {}
            crate::x509::crl::Freshness::ExpiresSoon(left) => warn!(
                file = %crl.file.display(),
                issuer = %crl.issuer,
                "CRL reaches its nextUpdate in {} hours: publish a new one, or certificates it covers will be refused",
                left.as_secs() / 3600
            ),
            crate::x509::crl::Freshness::Expired(ago) => error!(
                file = %crl.file.display(),
                issuer = %crl.issuer,
                allow_expired_crl = tls.allow_expired_crl,
                "CRL is past its nextUpdate by {} hours",
                ago.as_secs() / 3600
            ),
        }
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
            report_freshness(&crls, tls);
        }
        Err(e) => {
            core.stats.incr("tls_reload_failed");
            error!("{why}: new TLS configuration refused, the last good one stays in force: {e}");
        }
    }
}

/// Serves on the given sockets until `shutdown` turns true.
#[allow(clippy::disallowed_methods)]
pub async fn run(
    core: Arc<Core>,
    sockets: Vec<UdpSocket>,
    options: Options,
    mut shutdown: watch::Receiver<bool>,
) {
    let Options {
        max_in_flight,
        state_file,
        tls,
        reload,
        ocsp,
        shutdown_grace,
        debug_filter,
    } = options;
    let debug_filter = Arc::new(debug_filter);
    let permits = Arc::new(Semaphore::new(max_in_flight));
    // `shutdown` starts the drain (drain.rs); `exit` ends the loops once it is over.
    let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (exit_tx, exit) = watch::channel(false);
    let mut loops = Vec::new();
    for socket in sockets {
        let socket = Arc::new(socket);
        loops.push(tokio::spawn(receive_loop(
            core.clone(),
            socket,
            permits.clone(),
            ocsp.clone(),
            Drain {
                draining: draining.clone(),
                exit: exit.clone(),
                debug_filter: debug_filter.clone(),
            },
        )));
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
                core.sweep(Instant::now());
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
            let files = crate::x509::crl::watched_files(&tls);
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
                        } else if n.is_multiple_of(1800) {
                            report_crls(&tls);
                        }
                    }
                    _ = reload.notified() => {
                        seen = crate::x509::crl::fingerprint(&files);
                        reload_tls(&core, &tls, "SIGHUP");
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
    let started = Instant::now();
    let in_flight = core.sessions_in_progress();
    info!(
        in_flight,
        grace_secs = shutdown_grace.as_secs(),
        "draining: new conversations are refused"
    );
    let all = u32::try_from(max_in_flight).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(shutdown_grace, async {
        loop {
            if core.sessions_in_progress() == 0 && permits.available_permits() >= max_in_flight {
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

/// What a receive loop needs to know about the drain.
struct Drain {
    draining: Arc<std::sync::atomic::AtomicBool>,
    exit: watch::Receiver<bool>,
    debug_filter: Arc<Vec<debug_filter::DebugFilter>>,
}

#[allow(clippy::disallowed_methods)]
async fn receive_loop(
    core: Arc<Core>,
    socket: Arc<UdpSocket>,
    permits: Arc<Semaphore>,
    ocsp: Option<Arc<OcspClient>>,
    drain: Drain,
) {
    let Drain {
        draining,
        exit: mut shutdown,
        debug_filter,
    } = drain;
    // RFC 2865 §3: 4096 octets is the largest RADIUS packet; one more tells us it was longer.
    let mut buf = vec![0u8; 4097];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (len, from) = match received {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems; keep serving.
                debug!("recv_from: {e}");
                continue;
            }
        };
        let datagram = buf.get(..len).unwrap_or(&[]);
        if draining.load(std::sync::atomic::Ordering::Relaxed)
            && drain::starts_conversation(datagram)
        {
            core.stats.incr("drain_dropped");
            continue;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            core.stats.incr("overloaded_dropped");
            continue;
        };
        let datagram = buf.get(..len).unwrap_or(&[]).to_vec();
        let span = if !debug_filter.is_empty()
            && debug_filter::matches(
                &debug_filter,
                from,
                core.clients().lookup(from.ip()).map(|c| c.name.as_str()),
                &datagram,
            ) {
            tracing::info_span!("debug_dump", dump = true)
        } else {
            tracing::Span::none()
        };
        let core = core.clone();
        let socket = socket.clone();
        let ocsp = ocsp.clone();
        let task = async move {
            let reply = match core.handle(from, &datagram, Instant::now(), &mut os_rng) {
                Handled::Reply(r) => Some(r),
                Handled::Silent => None,
                Handled::Lookup(pending) => {
                    // The lookup waits on the network, not the CPU: it gives its in-flight
                    // permit back, and is bounded by ocsp.max_concurrent_lookups instead.
                    drop(permit);
                    let verdict = match &ocsp {
                        Some(client) => client.lookup(&core, &pending.lookup).await,
                        None => RevocationVerdict::Unavailable("OCSP is not configured".into()),
                    };
                    core.resume(*pending, verdict, Instant::now(), &mut os_rng)
                }
            };
            if let Some(reply) = reply
                && let Err(e) = socket.send_to(&reply, from).await
            {
                debug!("send_to {from}: {e}");
            }
        };
        tokio::spawn(tracing::Instrument::instrument(task, span));
    }
}
