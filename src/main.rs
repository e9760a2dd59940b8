//! The `certradius` command: `serve` (the default), `check`, `test-pki DIR`.
//!
//! Exit codes: 0 success, 1 a runtime failure (cannot bind, PKI generation failed),
//! 2 a configuration error (the message names the key). `check`: 0 clean, 1 warnings only
//! (a certificate expiring within 30 days, a CRL past nextUpdate, the default secret on a
//! non-loopback client), 2 errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::{error, info, warn};

use certradius::config::Config;
use certradius::server::reload::load;
use certradius::server::{self, Core};
#[cfg(feature = "test-pki")]
use certradius_pki as pki;

#[derive(Parser)]
#[command(
    name = "certradius",
    version = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("CERTRADIUS_GIT_COMMIT"), ")"),
    about = "802.1X EAP-TLS RADIUS authentication server"
)]
struct Cli {
    /// Configuration file (TOML). Without it, the embedded default (loopback, test PKI) is used.
    #[arg(long, short = 'c', global = true)]
    config: Option<PathBuf>,
    /// Trace every packet of every conversation (like `radiusd -X`).
    #[arg(long, short = 'X', global = true)]
    debug: bool,
    /// With --debug: dump only packets matching KEY=VALUE (keys calling_station_id, user_name,
    /// nas = client name or address); may be repeated (any matches).
    #[arg(long, global = true, value_name = "KEY=VALUE")]
    debug_filter: Vec<server::debug_filter::DebugFilter>,
    /// Log line format; overrides `[log] format` of the configuration.
    #[arg(long, global = true, value_name = "text|json")]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve RADIUS (what a bare `certradius` does).
    Serve,
    /// Validate the configuration and the files it names, then exit.
    Check,
    /// Write a test PKI (CA, intermediate, server and client certificates) into DIR.
    TestPki { dir: PathBuf },
    /// Create or rotate a TLS session ticket key file shared by a pool of servers: a new key
    /// first (it seals new tickets), the previous ones kept to open tickets already issued.
    TicketKey {
        file: PathBuf,
        /// Previous keys to keep.
        #[arg(long, default_value_t = 2)]
        keep: usize,
    },
    /// List the live sessions of the running server with their certificate (through its control
    /// socket, `[coa] control_socket`).
    Sessions,
    /// Send a Disconnect-Request (RFC 5176) for one live session of the running server.
    Disconnect {
        /// The session's Acct-Session-Id, as `certradius sessions` prints it.
        #[arg(long)]
        session: String,
    },
    /// Accounting database: `db migrate` creates or upgrades the `radacct` table at
    /// `accounting.database_url`.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Write the man page certradius.1 into DIR (for packaging).
    #[command(hide = true)]
    Manpage { dir: PathBuf },
    /// Print the shell completion script for SHELL (bash, zsh, fish, ...) on stdout.
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Create the `radacct` table (FreeRADIUS's columns and the certificate), or add what an
    /// existing one lacks; safe to run again and from several hosts.
    Migrate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = match cli.log_format {
        Some(f) => matches!(f, LogFormatArg::Json),
        // The configuration is read again (and its errors reported) by the command itself.
        None => Config::load(cli.config.as_deref())
            .is_ok_and(|c| c.log.format == certradius::config::log::LogFormat::Json),
    };
    init_tracing(cli.debug, !cli.debug_filter.is_empty(), json);
    server::announce::set_json(json);
    match cli.command.unwrap_or(Command::Serve) {
        Command::TestPki { dir } => match generate_test_pki(&dir) {
            Ok(files) => {
                println!(
                    "wrote a TEST PKI (never for production) to {}:",
                    dir.display()
                );
                for f in files {
                    println!("  {}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("certradius: test-pki: {e}");
                ExitCode::from(1)
            }
        },
        Command::TicketKey { file, keep } => {
            match certradius::tls::resumption::rotate_key_file(&file, keep) {
                Ok(n) => {
                    println!(
                        "{}: new ticket key first, {n} key(s) in the file; copy it to every server of the pool (they re-read it within 5 s)",
                        file.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("certradius: ticket-key: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Check => match load(cli.config.as_deref(), None) {
            Ok(loaded) => {
                // 0: clean, 1: warnings only, 2: errors.
                let streams = match server::radsec::describe(&loaded.config) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("certradius: configuration error: {e}");
                        return ExitCode::from(2);
                    }
                };
                let report = server::check::report(&loaded);
                print!("{}", report.text);
                if !streams.is_empty() {
                    println!("\nstream listeners and NAS trust:\n{streams}");
                }
                if report.warnings.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("certradius: configuration error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Serve => serve(cli.config.as_deref(), cli.debug_filter),
        Command::Sessions => server::control::command(cli.config.as_deref(), "sessions".into()),
        Command::Disconnect { session } => {
            server::control::command(cli.config.as_deref(), format!("disconnect {session}"))
        }
        Command::Db {
            command: DbCommand::Migrate,
        } => match Config::load(cli.config.as_deref()) {
            Ok(config) => match server::acct_db::migrate_command(&config.accounting) {
                Ok(()) => {
                    println!("certradius: the radacct table is ready");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("certradius: db migrate: {e}");
                    ExitCode::from(1)
                }
            },
            Err(e) => {
                eprintln!("certradius: configuration error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Manpage { dir } => {
            use clap::CommandFactory;
            let page = clap_mangen::Man::new(Cli::command());
            let mut out = Vec::new();
            let path = dir.join("certradius.1");
            match page
                .render(&mut out)
                .and_then(|()| std::fs::write(&path, out))
            {
                Ok(()) => {
                    println!("{}", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("certradius: manpage: {}: {e}", path.display());
                    ExitCode::from(1)
                }
            }
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "certradius",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
    }
}

fn init_tracing(debug: bool, filtered: bool, json: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if debug && filtered {
        // Debug events only inside the span the shell opens for matching packets.
        "info,[debug_dump{dump=true}]=debug"
    } else if debug {
        "certradius=debug,info"
    } else {
        "info"
    };
    let filter =
        EnvFilter::try_from_env("CERTRADIUS_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    if json {
        // One JSON object per line (timestamp, level, fields, message), for log shippers.
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .init();
        return;
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// With the embedded default configuration, a missing test PKI is created on first start.
fn ensure_default_pki(path: Option<&Path>) -> Result<(), String> {
    if path.is_some() {
        return Ok(());
    }
    let config = Config::load(None).map_err(|e| e.to_string())?;
    let cert = &config.tls.certificate_file;
    if cert.exists() {
        return Ok(());
    }
    let dir = cert.parent().unwrap_or(Path::new("."));
    if test_pki_exists(dir) {
        return Ok(());
    }
    warn!(
        "{} is missing: creating a TEST PKI in {} (for trying certradius out, never for production)",
        cert.display(),
        dir.display()
    );
    generate_test_pki(dir).map_err(|e| format!("cannot create the test PKI: {e}"))?;
    Ok(())
}

#[cfg(feature = "test-pki")]
fn generate_test_pki(dir: &Path) -> Result<Vec<PathBuf>, String> {
    pki::generate(dir).map_err(|e| e.to_string())
}

#[cfg(not(feature = "test-pki"))]
fn generate_test_pki(_dir: &Path) -> Result<Vec<PathBuf>, String> {
    Err("this build has no test PKI generator (cargo feature `test-pki` is off)".into())
}

#[cfg(feature = "test-pki")]
fn test_pki_exists(dir: &Path) -> bool {
    pki::exists(dir)
}

#[cfg(not(feature = "test-pki"))]
fn test_pki_exists(_dir: &Path) -> bool {
    false
}

fn serve(path: Option<&Path>, debug_filter: Vec<server::debug_filter::DebugFilter>) -> ExitCode {
    if let Err(e) = ensure_default_pki(path) {
        eprintln!("certradius: {e}");
        return ExitCode::from(1);
    }
    let (core, audit) = match prepare(path) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let rt = match runtime(core.snapshot().config.server.threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("certradius: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(serve_on(core, audit, path, debug_filter))
}

/// The configuration read and checked, made into the core's first snapshot; the audit log
/// opened. Err: the exit code (2 for a configuration error).
fn prepare(
    path: Option<&Path>,
) -> Result<(Arc<Core>, Option<Arc<server::audit::AuditLog>>), ExitCode> {
    let loaded = load(path, None).map_err(|e| {
        eprintln!("certradius: configuration error: {e}");
        ExitCode::from(2)
    })?;
    // Relative state paths were resolved at load (config::paths); their directory is made here.
    if let Err(e) = loaded.config.create_state_directory() {
        eprintln!("certradius: state directory: {e}");
        return Err(ExitCode::from(1));
    }
    warn_private_key_mode(&loaded.config.tls.private_key_file);
    let audit = match &loaded.config.audit.file {
        Some(file) => match server::audit::AuditLog::open(file, loaded.dictionary.clone()) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("certradius: audit.file {}: {e}", file.display());
                return Err(ExitCode::from(1));
            }
        },
        None => None,
    };
    let snapshot = server::reload::snapshot_of(loaded, None).map_err(|e| {
        eprintln!("certradius: configuration error: {e}");
        ExitCode::from(2)
    })?;
    certradius::tls::warm_up();
    Ok((Arc::new(Core::with_snapshot(snapshot)), audit))
}

fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    // Poll the sockets after every task rather than every 61st: a worker's task runs several
    // requests (dispatch.rs), and a quiet NAS's datagram must not wait behind a storming one's
    // for tens of milliseconds. An epoll_wait with no timeout per task costs nothing measurable
    // next to a TLS handshake (BENCHMARKS.md, round 2).
    rt.event_interval(1);
    if threads > 0 {
        rt.worker_threads(threads);
    }
    rt.build()
}

/// Binds UDP sockets; Err: the exit code, after saying which address failed.
fn bind_udp(addrs: &[std::net::SocketAddr], what: &str) -> Result<Vec<UdpSocket>, ExitCode> {
    let mut sockets = Vec::new();
    for addr in addrs {
        match server::bind(*addr) {
            Ok(s) => sockets.push(s),
            Err(e) => {
                eprintln!("certradius: cannot listen{what} on udp {addr}: {e}");
                return Err(ExitCode::from(1));
            }
        }
    }
    Ok(sockets)
}

/// Everything a running server has, started in order, until a signal stops it.
async fn serve_on(
    core: Arc<Core>,
    audit: Option<Arc<server::audit::AuditLog>>,
    path: Option<&Path>,
    debug_filter: Vec<server::debug_filter::DebugFilter>,
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
        fragment_size = config.tls.fragment_size,
        "certradius {} ready",
        env!("CARGO_PKG_VERSION")
    );
    if path.is_none()
        && let Some(a) = sockets.first().and_then(|s| s.local_addr().ok())
    {
        print_try_it(a, &config);
    }
    server::notify::ready(&format!(
        "listening on {} socket(s), {} client(s)",
        sockets.len(),
        config.clients.len()
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let coa = server::coa::Coa::new(
        core.clone(),
        &config.coa,
        config.accounting.database_url.as_ref(),
    );
    if let Err(code) = observe(&core, &config, audit.clone(), &coa, &stop_rx).await {
        return code;
    }
    let reload = Arc::new(tokio::sync::Notify::new());
    {
        let reload = reload.clone();
        let audit = audit.clone();
        tokio::spawn(async move {
            wait_for_signal(signals, &reload, audit.as_deref()).await;
            server::notify::stopping("draining conversations in flight");
            let _ = stop_tx.send(true);
        });
    }
    server::report_crls(&core);
    let uses_auto = config.clients.iter().any(|c| {
        c.require_message_authenticator == certradius::config::RequireMessageAuthenticator::Auto
    });
    let state_file = uses_auto.then(|| config.server.state_file.clone());
    if let Some(path) = &state_file {
        server::load_state(&core, path);
    }
    if let Err(e) = server::accounting::start(
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
        eprintln!("certradius: accounting: {e}");
        return ExitCode::from(1);
    }
    let control = server::control::path(&config);
    if let Err(e) = server::control::start(coa.clone(), &control, stop_rx.clone()) {
        warn!(path = %control.display(), "control socket not available: {e}");
    }
    let options = server::Options {
        max_in_flight: config.server.max_in_flight,
        max_queue_wait: std::time::Duration::from_millis(config.server.max_queue_wait_ms),
        state_file,
        reloader: server::reload::Reloader::new(core.clone(), path, coa.clone()),
        reload,
        shutdown_grace: std::time::Duration::from_secs(config.server.shutdown_grace_secs),
        debug_filter,
        streams,
        coa,
    };
    server::run(core, sockets, options, stop_rx).await;
    if let Some(a) = &audit {
        a.flush(std::time::Duration::from_secs(2));
        if a.dropped() > 0 {
            warn!(dropped = a.dropped(), "audit log: records were dropped");
        }
    }
    ExitCode::SUCCESS
}

type Listeners = (
    Vec<UdpSocket>,
    Vec<UdpSocket>,
    Option<server::stream::Streams>,
);

/// Binds every listener (authentication, accounting, streams) and prints one machine-readable
/// line each: callers that start us on port 0 read them.
fn listen(config: &Config) -> Result<Listeners, ExitCode> {
    let sockets = bind_udp(&config.server.listen, "")?;
    let acct_sockets = bind_udp(&config.accounting.listen, " for accounting")?;
    for s in &acct_sockets {
        if let Ok(a) = s.local_addr() {
            // Printed before the authentication line that callers wait for.
            server::announce::accounting(a);
        }
    }
    for s in &sockets {
        if let Ok(a) = s.local_addr() {
            server::announce::listening("udp", a);
        }
    }
    let streams = server::stream::bind(config).map_err(|e| {
        eprintln!("certradius: {e}");
        ExitCode::from(1)
    })?;
    Ok((sockets, acct_sockets, streams))
}

/// Who is told about every finished authentication: the audit log, the Disconnect bookkeeping
/// and, with `[metrics] listen`, the Prometheus endpoint (started here).
async fn observe(
    core: &Arc<Core>,
    config: &Config,
    audit: Option<Arc<server::audit::AuditLog>>,
    coa: &Arc<server::coa::Coa>,
    stop: &watch::Receiver<bool>,
) -> Result<(), ExitCode> {
    let mut observers: Vec<Arc<dyn certradius::core::events::AuthObserver>> = Vec::new();
    if let Some(a) = audit {
        observers.push(a);
    }
    observers.push(coa.clone());
    if let Some(listen) = config.metrics.listen {
        let m = server::metrics::Metrics::new(core.clone());
        if let Err(e) = server::metrics::start(listen, m.clone(), stop.clone()).await {
            eprintln!("certradius: cannot listen on tcp {listen} (metrics.listen): {e}");
            return Err(ExitCode::from(1));
        }
        observers.push(m);
    }
    core.set_observers(observers);
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
    if server::announce::is_json() {
        server::announce::event(&serde_json::json!({ "event": "try_it", "commands": commands }));
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
    audit: Option<&server::audit::AuditLog>,
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
                server::notify::reloading();
                if let Some(a) = audit {
                    a.reopen();
                }
                reload.notify_one();
            }
        }
    }
}
