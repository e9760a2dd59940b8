//! The tokio shell around the sans-IO core: the only place with sockets, the clock, the OS RNG,
//! task spawning and signals (see `handle.rs` for the request path itself).
//!
//! One receive loop per listening socket hands each datagram to a task, bounded by
//! `server.max_in_flight` (the excess is dropped and counted: a NAS retransmits, RFC 5080 §2.2.1);
//! the CPU work of TLS runs on the runtime's worker threads. A sweeper evicts idle conversations
//! once a second.

pub mod clients;
pub mod dedup;
pub mod handle;
pub mod sessions;
pub mod stats;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, error, info, warn};

pub use handle::Core;

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
}

/// Logs each CRL's freshness: a warning well before nextUpdate, an error once past it.
pub fn report_crls(tls: &crate::config::TlsConfig) {
    let Ok(crls) = crate::revocation::load(&tls.crl_file.paths()) else {
        return;
    };
    let warn_before = Duration::from_secs(tls.crl_expiry_warning_hours.saturating_mul(3600));
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now();
    for crl in crls {
        match crate::revocation::freshness(&crl, now, warn_before) {
            crate::revocation::Freshness::Fresh => {}
            crate::revocation::Freshness::ExpiresSoon(left) => warn!(
                file = %crl.file.display(),
                issuer = %crl.issuer,
                "CRL reaches its nextUpdate in {} hours: publish a new one, or certificates it covers will be refused",
                left.as_secs() / 3600
            ),
            crate::revocation::Freshness::Expired(ago) => error!(
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
            let crls = crate::revocation::load(&tls.crl_file.paths()).unwrap_or_default();
            let revoked: usize = crls.iter().map(|c| c.revoked).sum();
            info!(
                crls = crls.len(),
                revoked, "{why}: TLS configuration reloaded (new conversations use it)"
            );
            report_crls(tls);
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
    } = options;
    let permits = Arc::new(Semaphore::new(max_in_flight));
    let mut loops = Vec::new();
    for socket in sockets {
        let socket = Arc::new(socket);
        loops.push(tokio::spawn(receive_loop(
            core.clone(),
            socket,
            permits.clone(),
            shutdown.clone(),
        )));
    }
    let sweeper = {
        let core = core.clone();
        let mut shutdown = shutdown.clone();
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
            let files = crate::revocation::watched_files(&tls);
            let mut seen = crate::revocation::fingerprint(&files);
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            let mut n: u64 = 0;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        n += 1;
                        let now = crate::revocation::fingerprint(&files);
                        if now != seen {
                            seen = now;
                            reload_tls(&core, &tls, "files changed on disk");
                        } else if n.is_multiple_of(1800) {
                            report_crls(&tls);
                        }
                    }
                    _ = reload.notified() => {
                        seen = crate::revocation::fingerprint(&files);
                        reload_tls(&core, &tls, "SIGHUP");
                    }
                    _ = shutdown.changed() => break,
                }
            }
        })
    };
    let _ = shutdown.wait_for(|stop| *stop).await;
    let _ = watcher.await;
    for l in loops {
        let _ = l.await;
    }
    let _ = sweeper.await;
    // Let requests already being processed finish and send their replies.
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        permits.acquire_many(u32::try_from(max_in_flight).unwrap_or(u32::MAX)),
    )
    .await;
    info!("stopped; counters: {}", core.stats.report());
}

#[allow(clippy::disallowed_methods)]
async fn receive_loop(
    core: Arc<Core>,
    socket: Arc<UdpSocket>,
    permits: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
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
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            core.stats.incr("overloaded_dropped");
            continue;
        };
        let datagram = buf.get(..len).unwrap_or(&[]).to_vec();
        let core = core.clone();
        let socket = socket.clone();
        tokio::spawn(async move {
            let reply = core.handle_datagram(from, &datagram, Instant::now(), &mut os_rng);
            if let Some(reply) = reply
                && let Err(e) = socket.send_to(&reply, from).await
            {
                debug!("send_to {from}: {e}");
            }
            drop(permit);
        });
    }
}
