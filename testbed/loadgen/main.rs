//! `loadgen`: many simulated NAS + EAP-TLS supplicant pairs over UDP against any RADIUS server
//! (certradius, FreeRADIUS, ...), reporting throughput, latency, round trips and CPU per
//! authentication, next to a raw-TLS yardstick.
//!
//! ```text
//! cargo run --release --example loadgen -- --server 127.0.0.1:1812 --secret testing123 \
//!     --ca pki/ca.pem --cert pki/client-ecdsa.pem --key pki/client-ecdsa.key \
//!     --tls 1.3 --concurrency 32 --count 2000 --server-pid $(pidof certradius) \
//!     --server-cert pki/server.pem --server-key pki/server.key
//! ```
//!
//! Each generator thread runs a tokio current-thread runtime with its share of NAS sockets;
//! each socket multiplexes up to 256 conversations by RADIUS Identifier (see `nas.rs`). The
//! supplicant and NAS logic is `certradius_testkit::peer` (RFC 5216 / RFC 9190 peer side, RFC 3579
//! NAS side), so every Access-Accept counted as a success had its Response Authenticator,
//! Message-Authenticator and MS-MPPE keys (RFC 2548) verified against the supplicant's MSK.
//!
//! CPU figures: the server's from `/proc/PID/stat` (utime + stime, all threads) before and after
//! the run and its peak RSS from `/proc/PID/status` (VmHWM); the generator's own from its process
//! CPU clock. Both are printed per authentication, with the generator's share of a core, so a
//! reader can see which side was the bottleneck.
// A load generator is all shell: it owns its sockets and reads the clock (.clippy.toml keeps
// both out of the sans-IO protocol core, which this is not part of).
#![allow(clippy::disallowed_methods)]

mod baseline;
mod nas;
mod stats;
mod status;

use std::hash::{BuildHasher, Hasher};
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::nas::{NasSocket, Plan};
use crate::stats::{Failure, Percentiles, Stats};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "loadgen",
    about = "EAP-TLS load generator: simulated NAS + supplicant pairs over RADIUS/UDP"
)]
struct Args {
    /// RADIUS server to load (loopback or your own test hosts only).
    #[arg(long, default_value = "127.0.0.1:1812")]
    server: String,
    /// RADIUS shared secret.
    #[arg(long, default_value = "testing123")]
    secret: String,
    /// CA certificate(s) the supplicants verify the server with (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// Client certificate chain (PEM).
    #[arg(long, requires = "key", required_unless_present = "cert_dir")]
    cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Directory of client-*.pem / client-*.key pairs, used round-robin (every one must be
    /// acceptable to the server, or its conversations count as rejects).
    #[arg(long, conflicts_with_all = ["cert", "key"])]
    cert_dir: Option<PathBuf>,
    /// TLS name the supplicants verify in the server certificate.
    #[arg(long, default_value = "radius.certradius.test")]
    server_name: String,
    /// TLS version the supplicants offer (only that one).
    #[arg(long, default_value = "1.2", value_parser = ["1.2", "1.3"])]
    tls: String,
    /// Largest TLS data per EAP-TLS fragment the supplicant sends.
    #[arg(long, default_value_t = 1024)]
    fragment_size: usize,
    /// Framed-MTU attribute in each Access-Request (0: leave it out).
    #[arg(long, default_value_t = 1400)]
    framed_mtu: u32,
    /// Conversations in flight at once, all threads together.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Authentications to run (default 1000 unless --duration is given).
    #[arg(long)]
    count: Option<u64>,
    /// Start new authentications for this many seconds, then drain.
    #[arg(long)]
    duration: Option<f64>,
    /// Share of authentications (percent) that resume an earlier TLS session: those
    /// supplicants share a session store, the others keep none.
    #[arg(long, default_value_t = 0.0)]
    resume: f64,
    /// Percentage of (authentic) replies to drop on purpose; the request is then retransmitted.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Retransmit a request that has had no reply for this long.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Retransmissions before a conversation counts as a timeout.
    #[arg(long, default_value_t = 5)]
    retries: u32,
    /// Accept a valid Message-Authenticator that is not the first attribute of a reply (servers
    /// older than the 2024 BlastRADIUS hardening, e.g. FreeRADIUS before 3.2.5). The reply is
    /// still fully verified.
    #[arg(long)]
    lenient_message_authenticator: bool,
    /// Server process to read CPU time and peak RSS of (/proc/PID).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Storm mode: this many supplicants (NAS conversations) all start within
    /// --storm-window-ms, each NAS retransmitting every --retransmit-ms up to --tries times;
    /// reports the time until 99% and 100% are authenticated. Sets --count and --concurrency.
    #[arg(long)]
    storm: Option<u64>,
    /// Storm mode: the window within which every supplicant starts.
    #[arg(long, default_value_t = 1000)]
    storm_window_ms: u64,
    /// NAS retransmission timer (overrides --timeout-ms).
    #[arg(long)]
    retransmit_ms: Option<u64>,
    /// Transmissions of one Access-Request before the NAS gives up (overrides --retries:
    /// retries = tries - 1).
    #[arg(long)]
    tries: Option<u32>,
    /// Generator threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// EAP identity of the supplicants.
    #[arg(long, default_value = "loadgen@certradius.test")]
    identity: String,
    /// Raw-TLS baseline: the server's certificate chain (PEM). With --server-key, runs
    /// --baseline in-memory mutual-TLS handshakes before the load.
    #[arg(long, requires = "server_key")]
    server_cert: Option<PathBuf>,
    /// Raw-TLS baseline: the server's private key (PEM).
    #[arg(long, requires = "server_cert")]
    server_key: Option<PathBuf>,
    /// Number of raw-TLS baseline handshakes.
    #[arg(long, default_value_t = 300)]
    baseline: usize,
    /// Also run the raw-TLS baseline paced: this many microseconds of idle before each server
    /// flight, as at one conversation in flight (0: not run). Reported as
    /// `raw_tls_paced_server_ms` and `ratio_paced`.
    #[arg(long, default_value_t = 0)]
    baseline_pace_us: u64,
    /// Instead of authentications: --count Status-Server requests one at a time, and the
    /// server's CPU per round trip (the floor under every round trip of an authentication).
    #[arg(long)]
    status_server: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        // Some authentications failed: the report says which and why.
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<bool, String> {
    if !(0.0..100.0).contains(&args.loss) {
        return Err("--loss must be in [0, 100)".into());
    }
    if args.concurrency == 0 || args.threads == 0 {
        return Err("--concurrency and --threads must be at least 1".into());
    }
    let server = args
        .server
        .to_socket_addrs()
        .map_err(|e| format!("--server {}: {e}", args.server))?
        .next()
        .ok_or_else(|| format!("--server {}: no address", args.server))?;
    if args.status_server {
        let count = args.count.unwrap_or(10_000);
        let before = args.server_pid.map(stats::process_cpu).transpose()?;
        let answered = status::run(server, args.secret.as_bytes(), count)?;
        let cpu = match (args.server_pid, before) {
            (Some(pid), Some(b)) => Some(stats::process_cpu(pid)?.saturating_sub(b)),
            _ => None,
        };
        let per_rt = cpu.map_or("-".to_string(), |c| {
            format!("{:.1}", c.as_secs_f64() * 1e6 / answered.max(1) as f64)
        });
        println!(
            "summary: status_server answered={answered} of {count} server_cpu_us_per_round_trip={per_rt}"
        );
        return Ok(answered == count);
    }
    let (version, expect_version) = match args.tls.as_str() {
        "1.3" => (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
        _ => (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
    };
    let pairs = client_pairs(args)?;
    let mut clients = Vec::new();
    let mut resuming = Vec::new();
    for (cert, key) in &pairs {
        let config = certradius_testkit::peer::client_config(&args.ca, cert, key, &[version])
            .map_err(|e| format!("{}: {e}", cert.display()))?;
        // Every authentication is a full handshake: the supplicants keep no TLS sessions, so a
        // server offering resumption never gets the chance (and the raw-TLS baseline, which
        // reuses this configuration, stays a full handshake too).
        // With --resume, a share of the conversations use a second configuration whose session
        // store is shared: after its first full handshake those resume.
        resuming.push(config.clone());
        let mut config = (*config).clone();
        config.resumption = rustls::client::Resumption::disabled();
        clients.push(Arc::new(config));
    }

    let baseline = match (&args.server_cert, &args.server_key, clients.first()) {
        (Some(cert), Some(key), Some(client)) if args.baseline > 0 => {
            let version: certradius::config::TlsVersion =
                args.tls.parse().map_err(|e| format!("--tls: {e}"))?;
            let tls = certradius::config::TlsConfig {
                certificate_file: cert.clone(),
                private_key_file: key.clone(),
                ca_file: certradius::config::OneOrMany::One(args.ca.clone()),
                tls_min_version: version,
                tls_max_version: version,
                ..Default::default()
            };
            let server_cfg = certradius::tls::server_config(&tls)
                .map_err(|e| format!("baseline server config: {e}"))?
                .config;
            let hot = baseline::run(
                client,
                &server_cfg,
                &args.server_name,
                args.baseline,
                Duration::ZERO,
            )?;
            let paced = if args.baseline_pace_us > 0 {
                Some(baseline::run(
                    client,
                    &server_cfg,
                    &args.server_name,
                    args.baseline,
                    Duration::from_micros(args.baseline_pace_us),
                )?)
            } else {
                None
            };
            Some((hot, paced))
        }
        _ => None,
    };

    let mut args = args.clone();
    if let Some(n) = args.storm {
        args.count = Some(n);
        args.concurrency = usize::try_from(n).map_err(|_| "--storm too large")?.max(1);
    }
    if let Some(t) = args.retransmit_ms {
        args.timeout_ms = t;
    }
    if let Some(t) = args.tries {
        args.retries = t.saturating_sub(1);
    }
    let args = &args;
    let count = match (args.count, args.duration) {
        (None, None) => Some(1000),
        (c, _) => c,
    };
    let server_before = match args.server_pid {
        Some(pid) => Some(stats::process_cpu(pid)?),
        None => None,
    };
    let own_before = stats::own_process_cpu();
    let machine_before = stats::machine_busy()?;
    let start = Instant::now();
    let plan = Arc::new(Plan {
        server,
        secret: args.secret.as_bytes().to_vec(),
        clients,
        resuming,
        resume_share: (args.resume / 100.0).clamp(0.0, 1.0),
        server_name: args.server_name.clone(),
        identity: args.identity.as_bytes().to_vec(),
        fragment_size: args.fragment_size,
        framed_mtu: (args.framed_mtu > 0).then_some(args.framed_mtu),
        expect_version,
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
        retries: args.retries,
        lenient_message_authenticator: args.lenient_message_authenticator,
        loss: args.loss / 100.0,
        count,
        deadline: args
            .duration
            .map(|s| start + Duration::from_secs_f64(s.max(0.0))),
        started: AtomicU64::new(0),
        t0: start,
        storm_window: args
            .storm
            .map(|_| Duration::from_millis(args.storm_window_ms.max(1))),
    });

    // Split concurrency over threads, and each thread's share over sockets of <= 256.
    let threads = args.threads.min(args.concurrency);
    let mut handles = Vec::new();
    let mut sockets_total = 0;
    for t in 0..threads {
        let share = args.concurrency / threads + usize::from(t < args.concurrency % threads);
        let sockets = share.div_ceil(256);
        sockets_total += sockets;
        let widths: Vec<usize> = (0..sockets)
            .map(|s| share / sockets + usize::from(s < share % sockets))
            .collect();
        let plan = plan.clone();
        let seed = random_seed() ^ (t as u64);
        handles.push(std::thread::spawn(move || {
            generator_thread(plan, widths, seed)
        }));
    }
    let mut total = Stats::default();
    for h in handles {
        let s = h
            .join()
            .map_err(|_| "a generator thread panicked".to_string())??;
        total.merge(s);
    }
    let wall = start.elapsed();
    let own_cpu = stats::own_process_cpu().saturating_sub(own_before);
    let machine = stats::machine_busy()?.saturating_sub(machine_before);
    let server = match (args.server_pid, server_before) {
        (Some(pid), Some(before)) => Some((
            pid,
            stats::process_cpu(pid)?.saturating_sub(before),
            stats::peak_rss_kib(pid)?,
        )),
        _ => None,
    };

    report(
        args,
        &mut total,
        &Measured {
            wall,
            own_cpu,
            machine,
            server,
            baseline,
            threads,
            sockets: sockets_total,
            certs: pairs.len(),
        },
    );
    Ok(total.failed() == 0 && total.succeeded > 0)
}

fn generator_thread(plan: Arc<Plan>, widths: Vec<usize>, seed: u64) -> Result<Stats, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(async move {
        let mut set = tokio::task::JoinSet::new();
        for (i, width) in widths.into_iter().enumerate() {
            let nas = NasSocket::new(plan.clone(), width, seed.rotate_left(i as u32 * 7))?;
            set.spawn(nas.run());
        }
        let mut total = Stats::default();
        while let Some(r) = set.join_next().await {
            total.merge(r.map_err(|e| format!("NAS task: {e}"))?);
        }
        Ok(total)
    })
}

/// The (certificate, key) pairs the supplicants use.
fn client_pairs(args: &Args) -> Result<Vec<(PathBuf, PathBuf)>, String> {
    if let (Some(c), Some(k)) = (&args.cert, &args.key) {
        return Ok(vec![(c.clone(), k.clone())]);
    }
    let Some(dir) = &args.cert_dir else {
        return Err("give --cert and --key, or --cert-dir".into());
    };
    let mut pairs = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("client-") && name.ends_with(".pem") {
            let key = path.with_extension("key");
            if Path::new(&key).is_file() {
                pairs.push((path.clone(), key));
            }
        }
    }
    pairs.sort();
    if pairs.is_empty() {
        return Err(format!(
            "{}: no client-*.pem with a matching .key",
            dir.display()
        ));
    }
    Ok(pairs)
}

fn random_seed() -> u64 {
    // std's per-process random hasher keys are seeded from the OS; good enough for a seed.
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

struct Measured {
    wall: Duration,
    own_cpu: Duration,
    /// Busy CPU time of the whole machine during the run.
    machine: Duration,
    /// (pid, CPU used during the run, VmHWM KiB)
    server: Option<(u32, Duration, u64)>,
    /// The raw-TLS baseline back to back, and paced (--baseline-pace-us).
    baseline: Option<(baseline::Baseline, Option<baseline::Baseline>)>,
    threads: usize,
    sockets: usize,
    certs: usize,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(args: &Args, s: &mut Stats, m: &Measured) {
    let ok = s.succeeded;
    let per_auth = |d: Duration| {
        if ok == 0 { f64::NAN } else { ms(d) / ok as f64 }
    };
    let secs = m.wall.as_secs_f64();
    println!(
        "loadgen: {} against {} | TLS {} | {} generator thread(s), {} NAS socket(s), concurrency {}, {} client certificate(s)",
        match (args.count, args.duration) {
            (_, Some(d)) => format!("{d} s"),
            (Some(c), None) => format!("{c} authentications"),
            (None, None) => "1000 authentications".into(),
        },
        args.server,
        args.tls,
        m.threads,
        m.sockets,
        args.concurrency,
        m.certs,
    );
    let failures: Vec<String> = Failure::ALL
        .iter()
        .map(|f| format!("{} {}", f.name(), s.failures.get(f).copied().unwrap_or(0)))
        .collect();
    println!(
        "  succeeded {ok}, failed {} ({})",
        s.failed(),
        failures.join(", ")
    );
    for (f, example) in &s.failure_examples {
        println!("    first {}: {example}", f.name());
    }
    let versions: Vec<String> = s
        .tls_versions
        .iter()
        .map(|(v, n)| format!("{v} x{n}"))
        .collect();
    println!("  negotiated: {}", versions.join(", "));
    let rate = ok as f64 / secs;
    println!("  throughput: {rate:.1} authentications/s over {secs:.2} s");
    if s.resumed > 0 || s.succeeded > 0 {
        println!(
            "  resumed: {} of {} authentications ({} full)",
            s.resumed,
            s.succeeded,
            s.succeeded.saturating_sub(s.resumed)
        );
    }
    let rts: u64 = s.round_trips.iter().map(|&r| u64::from(r)).sum();
    let rt_mean = if ok == 0 { 0.0 } else { rts as f64 / ok as f64 };
    println!(
        "  round trips per authentication: {rt_mean:.2} (min {}, max {})",
        s.round_trips.iter().min().copied().unwrap_or(0),
        s.round_trips.iter().max().copied().unwrap_or(0)
    );
    let auth_p = Percentiles::of(&mut s.auth_latency_us);
    let rt_p = Percentiles::of(&mut s.round_trip_us);
    if let Some(p) = &auth_p {
        println!("  latency per authentication: {p}");
    }
    if let Some(p) = &rt_p {
        println!("  latency per round trip:     {p}");
    }
    if let Some(n) = args.storm {
        s.done_at_us.sort_unstable();
        let at = |share: f64| -> String {
            let need = ((n as f64) * share).ceil() as usize;
            match need.checked_sub(1).and_then(|i| s.done_at_us.get(i)) {
                Some(&us) => format!("{:.2} s", f64::from(us) / 1e6),
                None => "never".into(),
            }
        };
        println!(
            "  storm: {n} supplicants started within {} ms, NAS retransmitting every {} ms, {} tries; \
             99% authenticated after {}, 100% after {}",
            args.storm_window_ms,
            args.timeout_ms,
            args.retries + 1,
            at(0.99),
            at(1.0)
        );
    }
    println!(
        "  retransmissions {}, replies dropped on purpose {} (--loss {}%), replies discarded {}",
        s.retransmissions, s.dropped_on_purpose, args.loss, s.discarded
    );
    if let Some((pid, cpu, hwm)) = m.server {
        println!(
            "  server pid {pid}: CPU {:.0} ms = {:.3} ms/auth, {:.0}% of one core; peak RSS (VmHWM) {:.1} MiB",
            ms(cpu),
            per_auth(cpu),
            100.0 * cpu.as_secs_f64() / secs,
            hwm as f64 / 1024.0
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "  generator: CPU {:.0} ms = {:.3} ms/auth, {:.0}% of one core ({:.0}% of the machine's {cores} cores; \
         the baseline's in-process handshakes are not included)",
        ms(m.own_cpu),
        per_auth(m.own_cpu),
        100.0 * m.own_cpu.as_secs_f64() / secs,
        100.0 * m.own_cpu.as_secs_f64() / secs / cores as f64,
    );
    // Whatever else ran: the machine's busy time less ours and the server's (if known).
    let others = m
        .machine
        .saturating_sub(m.own_cpu)
        .saturating_sub(m.server.map_or(Duration::ZERO, |(_, c, _)| c));
    let others_pct = 100.0 * others.as_secs_f64() / secs / cores as f64;
    println!(
        "  machine: {:.0}% of its {cores} cores busy; other processes {others_pct:.0}% of the machine{}",
        100.0 * m.machine.as_secs_f64() / secs / cores as f64,
        if others_pct > 5.0 {
            " (throughput and latency are not representative)"
        } else {
            ""
        }
    );
    let mut ratio = None;
    let mut ratio_paced = None;
    if let Some((b, paced)) = &m.baseline {
        let per = b.server_per_handshake();
        println!(
            "  raw TLS baseline: {} in-memory mutual-TLS handshakes ({}), server side {:.3} ms CPU each (client side {:.3} ms)",
            b.handshakes,
            b.version,
            ms(per),
            ms(b.client_cpu) / b.handshakes.max(1) as f64
        );
        if let Some(p) = paced {
            println!(
                "  raw TLS baseline paced ({} us idle before each server flight): server side {:.3} ms CPU each",
                args.baseline_pace_us,
                ms(p.server_per_handshake())
            );
        }
        if let Some((_, cpu, _)) = m.server {
            let r = per_auth(cpu) / ms(per);
            ratio = Some(r);
            println!(
                "  server CPU per EAP-TLS authentication / raw server-side handshake CPU = {r:.2}"
            );
            if let Some(p) = paced {
                let r = per_auth(cpu) / ms(p.server_per_handshake());
                ratio_paced = Some(r);
                println!("  ... / paced raw server-side handshake CPU = {r:.2}");
            }
        }
    }
    // One line for scripts and tables.
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    println!(
        "summary: tls={} ok={ok} failed={} auth_per_s={rate:.1} rt_per_auth={rt_mean:.2} \
         auth_p50_ms={} auth_p99_ms={} rt_p50_ms={} rt_p99_ms={} server_cpu_ms_per_auth={} \
         server_peak_rss_mib={} generator_cpu_ms_per_auth={:.3} generator_core_pct={:.0} \
         raw_tls_server_ms={} ratio={} raw_tls_paced_server_ms={} ratio_paced={} \
         others_pct={others_pct:.0}",
        args.tls,
        s.failed(),
        opt(auth_p.as_ref().map(|p| p.p50)),
        opt(auth_p.as_ref().map(|p| p.p99)),
        opt(rt_p.as_ref().map(|p| p.p50)),
        opt(rt_p.as_ref().map(|p| p.p99)),
        opt(m.server.map(|(_, c, _)| per_auth(c))),
        opt(m.server.map(|(_, _, h)| h as f64 / 1024.0)),
        per_auth(m.own_cpu),
        100.0 * m.own_cpu.as_secs_f64() / secs,
        opt(m
            .baseline
            .as_ref()
            .map(|(b, _)| ms(b.server_per_handshake()))),
        opt(ratio),
        opt(m
            .baseline
            .as_ref()
            .and_then(|(_, p)| p.as_ref())
            .map(|p| ms(p.server_per_handshake()))),
        opt(ratio_paced),
    );
}
