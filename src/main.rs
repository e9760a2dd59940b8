//! The `certradius` command: `serve` (the default), `check`, `test-pki DIR`.
//!
//! Exit codes: 0 success, 1 a runtime failure (cannot bind, PKI generation failed),
//! 2 a configuration error (the message names the key).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio::sync::watch;
use tracing::{error, info, warn};

use certradius::authz::Checked;
use certradius::authz::rules::RulePolicy;
use certradius::config::Config;
use certradius::radius::dictionary::Dictionary;
use certradius::server::{self, Core};
use certradius::tls;
#[cfg(feature = "test-pki")]
use certradius_pki as pki;

#[derive(Parser)]
#[command(
    name = "certradius",
    version,
    about = "802.1X EAP-TLS RADIUS authentication server"
)]
struct Cli {
    /// Configuration file (TOML). Without it, the embedded default (loopback, test PKI) is used.
    #[arg(long, short = 'c', global = true)]
    config: Option<PathBuf>,
    /// Trace every packet of every conversation (like `radiusd -X`).
    #[arg(long, short = 'X', global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Option<Command>,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.debug);
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
        Command::Check => match check(cli.config.as_deref()) {
            Ok(msg) => {
                println!("{msg}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("certradius: configuration error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Serve => serve(cli.config.as_deref()),
    }
}

fn init_tracing(debug: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if debug {
        "certradius=debug,info"
    } else {
        "info"
    };
    let filter =
        EnvFilter::try_from_env("CERTRADIUS_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

struct Loaded {
    config: Config,
    tls: tls::TlsSetup,
    dictionary: Dictionary,
    policy: Checked<RulePolicy>,
}

fn load(path: Option<&Path>) -> Result<Loaded, String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let tls = tls::server_config(&config.tls).map_err(|e| e.to_string())?;
    let dictionary = match &config.server.dictionary {
        Some(p) => Dictionary::load(p).map_err(|e| format!("server.dictionary: {e}"))?,
        None => Dictionary::embedded(),
    };
    let rules = RulePolicy::build(&config.identity, &config.authorize, &dictionary)
        .map_err(|e| e.to_string())?;
    let policy = Checked {
        checks: certradius::x509::checks::CertChecks::from_config(&config.tls),
        inner: rules,
    };
    Ok(Loaded {
        config,
        tls,
        dictionary,
        policy,
    })
}

fn check(path: Option<&Path>) -> Result<String, String> {
    let loaded = load(path)?;
    let c = &loaded.config;
    let streams = server::stream::describe(c).map_err(|e| e.to_string())?;
    Ok(format!(
        "configuration OK: {} client(s), listen {}, TLS {}..{}, fragment_size {}, {} dictionary attributes, {} authorization rule(s)\n{streams}",
        c.clients.len(),
        c.server
            .listen
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        c.tls.tls_min_version,
        c.tls.tls_max_version,
        c.tls.fragment_size,
        loaded.dictionary.len(),
        loaded.policy.inner.rule_count()
    ))
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

fn serve(path: Option<&Path>) -> ExitCode {
    if let Err(e) = ensure_default_pki(path) {
        eprintln!("certradius: {e}");
        return ExitCode::from(1);
    }
    let loaded = match load(path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("certradius: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let addrs = loaded.config.server.listen.clone();
    let core = Arc::new(Core::new(
        &loaded.config,
        loaded.tls,
        Arc::new(loaded.policy),
        loaded.dictionary,
    ));
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if loaded.config.server.threads > 0 {
        rt.worker_threads(loaded.config.server.threads);
    }
    let rt = match rt.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("certradius: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let embedded = path.is_none();
    let config = loaded.config;
    rt.block_on(async move {
        let mut sockets = Vec::new();
        for addr in &addrs {
            match server::bind(*addr) {
                Ok(s) => sockets.push(s),
                Err(e) => {
                    eprintln!("certradius: cannot listen on udp {addr}: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        for s in &sockets {
            if let Ok(a) = s.local_addr() {
                // Machine-readable: tests and scripts that start us on port 0 read this line.
                println!("certradius: listening on udp {a}");
            }
        }
        let streams = match server::stream::bind(&config) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("certradius: {e}");
                return ExitCode::from(1);
            }
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
        if embedded && let Some(a) = sockets.first().and_then(|s| s.local_addr().ok()) {
            print_try_it(a, &config);
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let reload = Arc::new(tokio::sync::Notify::new());
        {
            let reload = reload.clone();
            tokio::spawn(async move {
                wait_for_signal(&reload).await;
                let _ = stop_tx.send(true);
            });
        }
        server::report_crls(&config.tls);
        let uses_auto = config.clients.iter().any(|c| {
            c.require_message_authenticator == certradius::config::RequireMessageAuthenticator::Auto
        });
        let state_file = uses_auto.then(|| config.server.state_file.clone());
        if let Some(path) = &state_file {
            server::load_state(&core, path);
        }
        let options = server::Options {
            max_in_flight: config.server.max_in_flight,
            state_file,
            tls: config.tls.clone(),
            reload,
            ocsp: server::OcspClient::new(&config.ocsp),
            streams,
        };
        server::run(core, sockets, options, stop_rx).await;
        ExitCode::SUCCESS
    })
}

fn print_try_it(addr: std::net::SocketAddr, config: &Config) {
    let secret = config
        .clients
        .first()
        .map(|c| c.secret.expose().to_string())
        .unwrap_or_default();
    println!();
    println!(
        "Authenticate against it with eapol_test (Debian package eapoltest), from the repository root:"
    );
    println!(
        "  eapol_test -c testbed/eapol_test/tls12.conf -a {} -p {} -s {secret}",
        addr.ip(),
        addr.port()
    );
    println!(
        "  eapol_test -c testbed/eapol_test/tls13.conf -a {} -p {} -s {secret}",
        addr.ip(),
        addr.port()
    );
    println!(
        "Success ends with \"MPPE keys OK: 1  mismatch: 0\" and \"SUCCESS\". Stop with Ctrl-C."
    );
    println!();
}

/// Returns on SIGINT or SIGTERM; SIGHUP asks for a TLS reload (CRLs, certificates).
async fn wait_for_signal(reload: &tokio::sync::Notify) {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(h)) => (t, h),
        (Err(e), _) | (_, Err(e)) => {
            error!("cannot watch SIGTERM/SIGHUP: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => { info!("SIGINT: stopping"); return; }
            _ = term.recv() => { info!("SIGTERM: stopping"); return; }
            _ = hup.recv() => { info!("SIGHUP: reloading TLS configuration and CRLs"); reload.notify_one(); }
        }
    }
}
