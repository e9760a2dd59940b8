//! The tokio shell around the sans-IO core: the only place with sockets, the clock, the OS RNG,
//! task spawning and signals (see `core/handle.rs` for the request path itself).
//!
//! The transports only frame: UDP (`dispatch.rs`: one receive thread per socket, a queue and one
//! worker per runtime thread, bounded by `server.max_in_flight`, the excess dropped and counted
//! since a NAS retransmits, RFC 5080 §2.2.1), RADIUS/TCP and RadSec (`stream/`). Each hands
//! (client, request bytes, where the reply goes) to the one request driver (`driver.rs`), and
//! one reload (`reload.rs`) puts a whole new configuration snapshot in force for all of them. A
//! sweeper evicts idle conversations once a second.

pub mod accounting;
pub mod acct_db;
pub mod announce;
pub mod coa;
pub mod control;
pub mod crl_fetch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

pub mod check;
pub mod health;
mod http;
pub mod mab;
pub mod metrics;
pub mod reload;
pub mod rollover;

pub use crate::core::{Core, Handled};

pub mod audit;
pub mod debug_filter;
mod directory;
mod dispatch;
pub mod drain;
mod driver;
pub mod notify;
mod ocsp;
mod pg_tls;

use crate::session::Now;

pub mod radsec;
pub mod start;
pub mod stream;
pub mod udp;
pub mod why;

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
/// both be listed. Non-blocking, not yet registered with a runtime.
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
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
    Ok(socket.into())
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
    /// Notified on SIGHUP: reload the whole configuration now.
    pub reload: Arc<tokio::sync::Notify>,
    /// The one reload, for SIGHUP and the file watchers.
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

/// Logs the freshness of the CRLs in force (at start; the reload task repeats it hourly).
pub fn report_crls(core: &Core) {
    let s = core.snapshot();
    crate::x509::crl::report_freshness(&s.crls, &s.config.tls, wall_clock());
}

/// Serves on the given sockets until `shutdown` turns true, then drains: new conversations are
/// refused, those in flight get `server.shutdown_grace_secs` to finish.
pub async fn run(
    core: Arc<Core>,
    sockets: Vec<udp::UdpEndpoint>,
    options: Options,
    mut shutdown: watch::Receiver<bool>,
) {
    let driver = driver::Driver::new(core.clone(), options.coa.clone(), options.debug_filter);
    // `shutdown` starts the drain; `exit` ends the loops once it is over.
    let (exit_tx, exit) = watch::channel(false);
    let sockets: Vec<Arc<udp::UdpEndpoint>> = sockets.into_iter().map(Arc::new).collect();
    let dispatcher = dispatch::Dispatcher::new(
        driver.clone(),
        (options.max_in_flight, options.max_queue_wait),
        sockets.clone(),
    );
    let mut tasks = Vec::new();
    // Stream connections stop with the UDP loops, once the drain is over.
    if let Some(s) = options.streams {
        tasks.push(tokio::spawn(stream::serve(
            driver.clone(),
            s,
            options.max_in_flight,
            exit.clone(),
        )));
    }
    // One receive thread per socket, outside the runtime (dispatch.rs says why).
    let stop_receiving = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut receivers = Vec::new();
    for (n, socket) in sockets.into_iter().enumerate() {
        let (dispatcher, stop) = (dispatcher.clone(), stop_receiving.clone());
        let runtime = tokio::runtime::Handle::current();
        let spawned = std::thread::Builder::new()
            .name(format!("udp-receive-{n}"))
            .spawn(move || dispatcher.receive_thread(socket, runtime, stop));
        match spawned {
            Ok(thread) => receivers.push(thread),
            Err(e) => error!("cannot start the receive thread of udp socket {n}: {e}"),
        }
    }
    // One worker per runtime thread: each takes queued requests when the receive threads cannot
    // keep up processing them inline.
    for _ in 0..tokio::runtime::Handle::current().metrics().num_workers() {
        tasks.push(tokio::spawn(dispatcher.clone().worker(exit.clone())));
    }
    tasks.push(spawn_sweeper(
        core.clone(),
        options.state_file,
        exit.clone(),
    ));
    tasks.push(directory::spawn_revalidation(
        core.clone(),
        driver.directory(),
        options.coa.clone(),
        exit.clone(),
    ));
    let reloads = tokio::spawn(
        options
            .reloader
            .clone()
            .run(options.reload.clone(), shutdown.clone()),
    );
    let _ = shutdown.wait_for(|stop| *stop).await;
    drain(&core, &driver, &dispatcher, options.shutdown_grace).await;
    let _ = exit_tx.send(true);
    stop_receiving.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = reloads.await;
    for t in tasks {
        let _ = t.await;
    }
    let _ = tokio::task::spawn_blocking(move || {
        for thread in receivers {
            let _ = thread.join();
        }
    })
    .await;
    // Let requests already being processed send their replies.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while driver.busy() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    info!("stopped; counters: {}", core.stats.report());
}

/// Evicts idle conversations, persists learned state, and reports, until `exit`.
fn spawn_sweeper(
    core: Arc<Core>,
    state_file: Option<PathBuf>,
    mut exit: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut n: u64 = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = exit.changed() => break,
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
}

/// The drain: no new conversations on any transport (the driver refuses them); those in flight
/// finish within the grace period.
async fn drain(
    core: &Core,
    driver: &driver::Driver,
    dispatcher: &dispatch::Dispatcher,
    grace: Duration,
) {
    driver.start_drain();
    let started = monotonic_clock();
    let in_flight = core.sessions_in_progress();
    info!(
        in_flight,
        grace_secs = grace.as_secs(),
        "draining: new conversations are refused"
    );
    let drained = tokio::time::timeout(grace, async {
        while core.sessions_in_progress() > 0 || !dispatcher.idle() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .is_ok();
    if drained {
        info!("drained in {:?}", started.elapsed());
    } else {
        let left = core.sessions_in_progress();
        warn!(
            left,
            "grace period over: {left} conversation(s) still in flight are abandoned"
        );
    }
}

/// A short `STATUS=` line for systemd.
pub fn status_line(core: &Core, what: &str) -> String {
    format!(
        "{what}; {} conversation(s) in progress",
        core.sessions_in_progress()
    )
}
