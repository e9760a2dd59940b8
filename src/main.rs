//! The `certradius` command: `serve` (the default), `check`, `mab-test MAC`, `test-pki DIR`.
//!
//! Exit codes: 0 success, 1 a runtime failure (cannot bind, PKI generation failed),
//! 2 a configuration error (the message names the key). `check`: 0 clean, 1 warnings only
//! (a certificate expiring within 30 days, a CRL past nextUpdate, the default secret on a
//! non-loopback client), 2 errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing::warn;

use certradius::config::Config;
use certradius::server;
use certradius::server::reload::load;
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
    Check {
        /// Also bind to `[directory]` and search IDENTITY (used for every placeholder):
        /// prints the entry's DN, enabled state and groups (never the password).
        #[arg(long, value_name = "IDENTITY")]
        directory_test: Option<String>,
    },
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
    /// Why was this device refused: the last attempts of one supplicant (a MAC in any spelling,
    /// or an identity) from the running server (through its control socket): time, NAS,
    /// outcome, reason, detail, TLS version, round trips, rule. Exit 1 when none is recorded.
    Why {
        /// 00:11:22:33:44:55, 0011.2233.4455, 001122334455, ... or an EAP identity / User-Name.
        key: String,
        /// One JSON object instead of the table (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Send a Disconnect-Request (RFC 5176) for one live session of the running server.
    Disconnect {
        /// The session's Acct-Session-Id, as `certradius sessions` prints it.
        #[arg(long)]
        session: String,
    },
    /// Print what a MAC Authentication Bypass request for MAC would get ([mab] allow_file and
    /// the rules naming method = "mab"). Exit code 0: accepted, 1: refused.
    MabTest {
        /// The device's MAC, in any spelling (00:11:22:33:44:55, 0011.2233.4455, ...).
        mac: String,
        /// The NAS the request would come from (for rules matching nas_address).
        #[arg(long, value_name = "ADDR")]
        nas: Option<std::net::IpAddr>,
    },
    /// Accounting database: `db migrate` creates or upgrades the `radacct` table at
    /// `accounting.database_url`.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Turn another server's configuration into a certradius configuration.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Write the man page certradius.1 into DIR (for packaging).
    #[command(hide = true)]
    Manpage { dir: PathBuf },
    /// Print the shell completion script for SHELL (bash, zsh, fish, ...) on stdout.
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Read a FreeRADIUS 3.x configuration directory (radiusd.conf and what it includes) and
    /// write a commented certradius configuration (stdout without -o). What is not translated
    /// is listed on stderr. Exit code 0: translated and loads, 1: loads with untranslated
    /// parts, 2: no loadable configuration.
    Freeradius {
        /// The FreeRADIUS configuration directory, e.g. /etc/freeradius/3.0.
        raddb_dir: PathBuf,
        /// Where to write the configuration (created with mode 0600).
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
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
        Command::TestPki { dir } => test_pki(&dir),
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
        Command::Check { directory_test } => {
            check(cli.config.as_deref(), directory_test.as_deref())
        }
        Command::Serve => {
            if let Err(e) = ensure_default_pki(cli.config.as_deref()) {
                server::announce::error(&e);
                return ExitCode::from(1);
            }
            server::start::serve(cli.config.as_deref(), cli.debug_filter)
        }
        Command::MabTest { mac, nas } => server::mab::command(cli.config.as_deref(), &mac, nas),
        Command::Sessions => server::control::command(cli.config.as_deref(), "sessions".into()),
        Command::Why { key, json } => server::why::command(cli.config.as_deref(), &key, json),
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
        Command::Import {
            command: ImportCommand::Freeradius { raddb_dir, output },
        } => ExitCode::from(certradius::import::freeradius(
            &raddb_dir,
            output.as_deref(),
        )),
        Command::Manpage { dir } => manpage(&dir),
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

/// `certradius check`: 0 clean, 1 warnings only, 2 errors.
fn check(path: Option<&Path>, directory_test: Option<&str>) -> ExitCode {
    let loaded = match load(path, None) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("certradius: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
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
    if directory_test.is_some_and(|identity| !directory_check(&loaded.config, identity)) {
        return ExitCode::from(2);
    }
    if report.warnings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `certradius check --directory-test IDENTITY`: one bind and one search, as the server would.
fn directory_check(config: &certradius::config::Config, identity: &str) -> bool {
    use certradius::directory::{client, filter::FilterFacts};
    let Some(section) = &config.directory else {
        eprintln!("certradius: --directory-test: no [directory] section");
        return false;
    };
    let settings = match client::Settings::from_config(section) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("certradius: configuration error: {e}");
            return false;
        }
    };
    let one = vec![identity.to_string()];
    let facts = FilterFacts {
        identity: Some(identity.to_string()),
        subject_cn: one.clone(),
        san_email: one.clone(),
        san_upn: one.clone(),
        san_dns: one,
        sid: identity.starts_with("S-1-").then(|| identity.to_string()),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("certradius: --directory-test: {e}");
            return false;
        }
    };
    println!(
        "\ndirectory test for {}:",
        certradius::escape::Escaped::str(identity)
    );
    match runtime.block_on(client::lookup(&settings, &facts)) {
        Ok(client::Outcome::Found { dn, groups, sid }) => {
            println!("  dn: {dn}\n  enabled: yes");
            if let Some(sid) = sid {
                println!("  objectSid: {sid}");
            }
            println!("  groups ({}):", groups.len());
            for g in groups.iter() {
                println!("    {g}");
            }
            true
        }
        Ok(client::Outcome::Disabled { dn }) => {
            println!("  dn: {dn}\n  enabled: no (directory_account_disabled)");
            true
        }
        Ok(client::Outcome::NotFound { count, missing }) => {
            match missing {
                Some(field) => println!("  not found: the filter needs {{{field}}}"),
                None => println!("  not found: {count} entries (directory_user_not_found)"),
            }
            true
        }
        Err(e) => {
            eprintln!("certradius: directory unavailable: {e}");
            false
        }
    }
}

/// `certradius test-pki DIR`.
fn test_pki(dir: &Path) -> ExitCode {
    match generate_test_pki(dir) {
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
    }
}

/// `certradius manpage DIR`: writes certradius.1 there.
fn manpage(dir: &Path) -> ExitCode {
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
