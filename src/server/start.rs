//! `certradius serve`: the configuration loaded into the core's first snapshot, the sockets
//! bound (UDP RFC 2865 §3 and RFC 2866 accounting, RADIUS/TCP RFC 6613, RadSec RFC 6614), the
//! observers (audit, metrics, Disconnect bookkeeping), the control socket and the signals
//! (SIGHUP: the one reload; SIGTERM/SIGINT: the drain), then [`super::run`] until a stop.
//! Each step is a function, in the order a start takes them.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::debug_filter::DebugFilter;
use super::reload::load;
use super::udp::UdpEndpoint;
use crate::config::Config;
use crate::core::Core;

/// `certradius serve`: runs until SIGTERM or SIGINT (then drains). The exit code: 0 after a
/// clean stop, 1 when a socket or the runtime cannot be had, 2 for a configuration error.
pub fn serve(path: Option<&Path>, debug_filter: Vec<DebugFilter>) -> ExitCode {
    let (core, audit) = match prepare(path) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let rt = match runtime(core.snapshot().config.server.threads) {
        Ok(rt) => rt,
        Err(e) => {
            super::announce::error(&format!("cannot start the runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    rt.block_on(serve_on(core, audit, path, debug_filter))
}

/// The configuration read and checked, made into the core's first snapshot; the audit log
/// opened. Err: the exit code (2 for a configuration error).
fn prepare(
    path: Option<&Path>,
) -> Result<(Arc<Core>, Option<Arc<super::audit::AuditLog>>), ExitCode> {
    let loaded = load(path, None).map_err(|e| {
        super::announce::error(&format!("configuration error: {e}"));
        ExitCode::from(2)
    })?;
    // Relative state paths were resolved at load (config::paths); their directory is made here.
    if let Err(e) = loaded.config.create_state_directory() {
        super::announce::error(&format!("state directory: {e}"));
        return Err(ExitCode::from(1));
    }
    warn_private_key_mode(&loaded.config.tls.private_key_file);
    if let Some(password_file) = &loaded.config.tls.private_key_password_file {
        warn_private_key_mode(password_file);
    }
    let audit = match &loaded.config.audit.file {
        Some(file) => match super::audit::AuditLog::open(file, loaded.dictionary.clone()) {
            Ok(a) => Some(a),
            Err(e) => {
                super::announce::error(&format!("audit.file {}: {e}", file.display()));
                return Err(ExitCode::from(1));
            }
        },
        None => None,
    };
    let snapshot = super::reload::snapshot_of(loaded, None).map_err(|e| {
        super::announce::error(&format!("configuration error: {e}"));
        ExitCode::from(2)
    })?;
    super::rollover::record(&snapshot.config, &snapshot.cx.tls);
    crate::tls::warm_up();
    Ok((Arc::new(Core::with_snapshot(snapshot)), audit))
}

/// Tasks between two runs of the reactor while tasks are waiting (see `runtime`); public for
/// `testbed/echo-floor`, which measures the same runtime with nothing in the core.
pub const EVENT_INTERVAL: u32 = 8;

fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    // The reactor runs every 8th task (tokio's default is every 61st) and whenever a worker
    // finds nothing to do. It used to run after every task so that a quiet NAS's datagram would
    // not wait behind a storming one's; the authentication sockets are no longer in the reactor
    // (dispatch.rs), and every task cost an `epoll_wait` of its own. A worker's task runs at
    // most 8 requests, so streams and timers wait no more than about 64 requests' work under a
    // storm.
    rt.event_interval(EVENT_INTERVAL);
    if threads > 0 {
        rt.worker_threads(threads);
    }
    rt.build()
}

/// Binds UDP sockets and wraps each for its path (`register`: the authentication endpoint, or a
/// tokio socket for accounting); Err: the exit code, after saying which address failed.
fn bind_udp<S>(
    addrs: &[std::net::SocketAddr],
    what: &str,
    register: fn(std::net::UdpSocket) -> std::io::Result<S>,
) -> Result<Vec<S>, ExitCode> {
    let mut sockets = Vec::new();
    for addr in addrs {
        match super::bind(*addr).and_then(register) {
            Ok(s) => sockets.push(s),
            Err(e) => {
                super::announce::error(&format!("cannot listen{what} on udp {addr}: {e}"));
                return Err(ExitCode::from(1));
            }
        }
    }
    Ok(sockets)
}

/// Everything a running server has, started in order, until a signal stops it.
async fn serve_on(
    core: Arc<Core>,
    audit: Option<Arc<super::audit::AuditLog>>,
    path: Option<&Path>,
    debug_filter: Vec<DebugFilter>,
) -> ExitCode {
    let config = core.snapshot().config.clone();
    // Signal handlers first: a SIGHUP or SIGTERM right after "listening" (or READY=1) must find
    // them installed, not kill the process with the default action.
    let signals = Signals::install();
    let (sockets, acct_sockets, streams) = match listen(&config) {
        Ok(x) => x,
        Err(code) => return code,
    };
    info!(
        clients = config.clients.len(),
        tls = format!(
            "{}..{}",
            config.tls.tls_min_version, config.tls.tls_max_version
        ),
        fragment_size = %crate::session::fragment_size_label(config.tls.fragment_size),
        "certradius {} ready",
        env!("CARGO_PKG_VERSION")
    );
    if path.is_none()
        && let Some(a) = sockets.first().and_then(|s| s.local_addr().ok())
    {
        print_try_it(a, &config);
    }
    super::notify::ready(&format!(
        "listening on {} socket(s), {} client(s)",
        sockets.len(),
        config.clients.len()
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let coa = super::coa::Coa::new(
        core.clone(),
        &config.coa,
        config.accounting.database_url.as_ref(),
    );
    let attempts = Arc::new(crate::core::attempts::Attempts::default());
    if let Err(code) = observe(&core, &config, audit.clone(), &coa, &attempts, &stop_rx).await {
        return code;
    }
    let reload = Arc::new(tokio::sync::Notify::new());
    {
        let reload = reload.clone();
        let audit = audit.clone();
        tokio::spawn(async move {
            wait_for_signal(signals, &reload, audit.as_deref()).await;
            super::notify::stopping("draining conversations in flight");
            let _ = stop_tx.send(true);
        });
    }
    super::report_crls(&core);
    let uses_auto = config.clients.iter().any(|c| {
        c.require_message_authenticator == crate::config::RequireMessageAuthenticator::Auto
    });
    let state_file = uses_auto.then(|| config.server.state_file.clone());
    if let Some(path) = &state_file {
        super::load_state(&core, path);
    }
    if let Err(e) = super::accounting::start(
        core.clone(),
        acct_sockets,
        &config.accounting,
        &config.server.state_file,
        (
            config.server.duplicate_cache_entries,
            std::time::Duration::from_secs(config.server.duplicate_cache_secs),
        ),
        stop_rx.clone(),
        coa.clone(),
    ) {
        super::announce::error(&format!("accounting: {e}"));
        return ExitCode::from(1);
    }
    let control = super::control::path(&config);
    if let Err(e) = super::control::start(coa.clone(), attempts, &control, stop_rx.clone()) {
        warn!(path = %control.display(), "control socket not available: {e}");
    }
    // The fetcher starts once the reloader has fingerprinted the watched files, the CRL cache
    // among them: a CRL fetched from now on is a change it sees.
    let reloader = super::reload::Reloader::new(core.clone(), path, coa.clone());
    super::crl_fetch::start(core.clone(), stop_rx.clone());
    let options = super::Options {
        max_in_flight: config.server.max_in_flight,
        max_queue_wait: std::time::Duration::from_millis(config.server.max_queue_wait_ms),
        state_file,
        reloader,
        reload,
        shutdown_grace: std::time::Duration::from_secs(config.server.shutdown_grace_secs),
        debug_filter,
        streams,
        coa,
    };
    super::run(core, sockets, options, stop_rx).await;
    if let Some(a) = &audit {
        a.flush(std::time::Duration::from_secs(2));
        if a.dropped() > 0 {
            warn!(dropped = a.dropped(), "audit log: records were dropped");
        }
    }
    ExitCode::SUCCESS
}

type Listeners = (
    Vec<UdpEndpoint>,
    Vec<UdpSocket>,
    Option<super::stream::Streams>,
);

/// Binds every listener (authentication, accounting, streams) and prints one machine-readable
/// line each: callers that start us on port 0 read them.
fn listen(config: &Config) -> Result<Listeners, ExitCode> {
    let sockets = bind_udp(&config.server.listen, "", UdpEndpoint::new)?;
    let acct_sockets = bind_udp(
        &config.accounting.listen,
        " for accounting",
        UdpSocket::from_std,
    )?;
    for s in &acct_sockets {
        if let Ok(a) = s.local_addr() {
            // Printed before the authentication line that callers wait for.
            super::announce::accounting(a);
        }
    }
    for s in &sockets {
        if let Ok(a) = s.local_addr() {
            super::announce::listening("udp", a);
        }
    }
    let streams = super::stream::bind(config).map_err(|e| {
        super::announce::error(&format!("{e}"));
        ExitCode::from(1)
    })?;
    Ok((sockets, acct_sockets, streams))
}

/// Who is told about every finished authentication: the audit log, the Disconnect bookkeeping,
/// the last attempts per supplicant (`certradius why`) and, with `[metrics] listen`, the
/// Prometheus endpoint (started here); then the readiness monitor and `[health] listen`.
async fn observe(
    core: &Arc<Core>,
    config: &Config,
    audit: Option<Arc<super::audit::AuditLog>>,
    coa: &Arc<super::coa::Coa>,
    attempts: &Arc<crate::core::attempts::Attempts>,
    stop: &watch::Receiver<bool>,
) -> Result<(), ExitCode> {
    let mut observers: Vec<Arc<dyn crate::core::events::AuthObserver>> = Vec::new();
    if let Some(a) = audit {
        observers.push(a);
    }
    observers.push(coa.clone());
    observers.push(Arc::new(super::why::WhyObserver(attempts.clone())));
    if let Some(listen) = config.metrics.listen {
        let m = super::metrics::Metrics::new(core.clone());
        if let Err(e) = super::metrics::start(listen, m.clone(), stop.clone()).await {
            super::announce::error(&format!(
                "cannot listen on tcp {listen} (metrics.listen): {e}"
            ));
            return Err(ExitCode::from(1));
        }
        observers.push(m);
    }
    core.set_observers(observers);
    // Readiness is assessed with or without `[health]`: `server.when_unready` needs it.
    super::health::start_monitor(core.clone(), stop.clone());
    if let Some(listen) = config.health.listen
        && let Err(e) = super::health::start(listen, core.clone(), stop.clone()).await
    {
        super::announce::error(&format!(
            "cannot listen on tcp {listen} (health.listen): {e}"
        ));
        return Err(ExitCode::from(1));
    }
    Ok(())
}

/// How to authenticate against the embedded default, printed once it listens; in JSON mode one
/// `{"event":"try_it","commands":[...]}` object instead of the prose.
fn print_try_it(addr: std::net::SocketAddr, config: &Config) {
    let secret = config
        .clients
        .first()
        .map(|c| c.secret.expose().to_string())
        .unwrap_or_default();
    let commands: Vec<String> = ["tls12", "tls13"]
        .iter()
        .map(|v| {
            format!(
                "eapol_test -c testbed/eapol_test/{v}.conf -a {} -p {} -s {secret}",
                addr.ip(),
                addr.port()
            )
        })
        .collect();
    if super::announce::is_json() {
        super::announce::event(&serde_json::json!({ "event": "try_it", "commands": commands }));
        return;
    }
    println!();
    println!(
        "Authenticate against it with eapol_test (Debian package eapoltest), from the repository root:"
    );
    for c in &commands {
        println!("  {c}");
    }
    println!(
        "Success ends with \"MPPE keys OK: 1  mismatch: 0\" and \"SUCCESS\". Stop with Ctrl-C."
    );
    println!();
}

/// A private key others can read is one copy away from being someone else's server.
fn warn_private_key_mode(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            warn!(
                file = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "the private key file is readable by group or others: chmod 600 (or 640 with a dedicated group)"
            );
        }
    }
}

/// SIGTERM and SIGHUP streams, installed before the server says it is ready.
struct Signals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Option<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(term), Ok(hup)) => Some(Signals { term, hup }),
            (Err(e), _) | (_, Err(e)) => {
                error!("cannot watch SIGTERM/SIGHUP: {e}");
                None
            }
        }
    }
}

/// Returns on SIGINT or SIGTERM; SIGHUP asks for a reload of the whole configuration and reopens
/// the audit log, framed by RELOADING=1 / READY=1 for systemd (the READY comes from the reload).
async fn wait_for_signal(
    signals: Option<Signals>,
    reload: &tokio::sync::Notify,
    audit: Option<&super::audit::AuditLog>,
) {
    let Some(Signals { mut term, mut hup }) = signals else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => { info!("SIGINT: stopping"); return; }
            _ = term.recv() => { info!("SIGTERM: stopping"); return; }
            _ = hup.recv() => {
                info!("SIGHUP: reloading the configuration, reopening the audit log");
                super::notify::reloading();
                if let Some(a) = audit {
                    a.reopen();
                }
                reload.notify_one();
            }
        }
    }
}
