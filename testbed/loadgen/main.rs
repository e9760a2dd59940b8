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
//! CPU figures: the server's from `/proc/PID/task/TID/schedstat` (nanoseconds on a CPU, thread
//! by thread; `/proc/PID/stat`'s 10 ms ticks when a thread exited with its time) before and after
//! the run and its peak RSS from `/proc/PID/status` (VmHWM); the generator's own from its process
//! CPU clock. Both are printed per authentication, with the generator's share of a core, so a
//! reader can see which side was the bottleneck. The server's context switches (voluntary ones
//! are wake-ups) from `/proc/PID/task/*/status`, and with `--perf` from `perf stat` as well.
//!
//! `--pace-ms N` makes every supplicant think about N ms before each request, as real ones and
//! eapol_test do, so that the server sees the idle gaps of a real load (see `pace.rs`).
// A load generator is all shell: it owns its sockets and reads the clock (.clippy.toml keeps
// both out of the sans-IO protocol core, which this is not part of).
#![allow(clippy::disallowed_methods)]

mod baseline;
mod nas;
mod pace;
mod perf;
mod report;
mod rng;
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
use crate::report::{Measured, report};
use crate::stats::Stats;

/// Raw-TLS handshakes run and discarded before the baseline is measured.
const BASELINE_WARMUP: usize = 30;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "loadgen",
    about = "EAP-TLS load generator: simulated NAS + supplicant pairs over RADIUS/UDP"
)]
struct Args {
    /// RADIUS server to load (loopback or your own test hosts only). Several, comma-separated,
    /// make every simulated NAS list them as primary and secondaries and fail over on timeout
    /// (the NAS's first choices rotate through the list; see `nas.rs`).
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
    /// EAP identity of the supplicants; `{n}` in it becomes the conversation's number (0, 1, ...),
    /// one distinct user per conversation (e.g. `user{n}@example.org` for a directory storm).
    #[arg(long, default_value = "loadgen@certradius.test")]
    identity: String,
    /// With `{n}` in --identity: cycle through this many identities (0: a new one for every
    /// conversation).
    #[arg(long, default_value_t = 0)]
    identities: u64,
    /// Raw-TLS baseline: the server's certificate chain (PEM). With --server-key, runs
    /// --baseline in-memory mutual-TLS handshakes before the load and as many after it, and
    /// reports them together (each run's figure beside).
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
    /// With --pace-ms, each request waits that long after the previous reply.
    #[arg(long)]
    status_server: bool,
    /// Supplicant think time: each supplicant waits about this many milliseconds (uniformly
    /// 0.8-1.2 times it) after a reply before sending its next request, and after a finished
    /// authentication before starting the next, as eapol_test and real devices do; the server
    /// then sees idle gaps. Waiting sleeps on a timer with microsecond resolution (no CPU); the
    /// gaps actually sent are reported. Give --threads equal to --concurrency so that one
    /// supplicant's TLS work never delays another's request. 0: answer at once.
    #[arg(long, default_value_t = 0.0, conflicts_with = "storm")]
    pace_ms: f64,
    /// Also count the server's context switches and CPU migrations with
    /// `perf stat -p SERVER_PID` during the run (a cross-check of /proc; needs perf and
    /// --server-pid).
    #[arg(long, requires = "server_pid")]
    perf: bool,
    /// Pool failover drill: send SIGKILL to this process (one of the servers) --kill-after-ms
    /// into the run, as a crashed or powered-off server would stop answering.
    #[arg(long, requires = "kill_after_ms")]
    kill_pid: Option<u32>,
    /// When to kill --kill-pid, from the start of the run.
    #[arg(long, requires = "kill_pid")]
    kill_after_ms: Option<u64>,
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
    if !(0.0..=60_000.0).contains(&args.pace_ms) {
        return Err("--pace-ms must be in [0, 60000]".into());
    }
    let pace = Duration::from_secs_f64(args.pace_ms / 1000.0);
    let servers = args
        .server
        .split(',')
        .map(|one| {
            one.trim()
                .to_socket_addrs()
                .map_err(|e| format!("--server {one}: {e}"))?
                .next()
                .ok_or_else(|| format!("--server {one}: no address"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let Some(&server) = servers.first() else {
        return Err("--server: no address".into());
    };
    if servers.iter().any(|s| s.is_ipv4() != server.is_ipv4()) {
        return Err("--server: give all IPv4 or all IPv6 addresses".into());
    }
    if args.status_server {
        return status_server(args, server, pace);
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

    // The raw-TLS yardstick, run before the load and again after it (see `Baseline::runs`).
    let baseline_setup = match (&args.server_cert, &args.server_key, clients.first()) {
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
            Some((client.clone(), server_cfg))
        }
        _ => None,
    };
    let measure_baseline = || -> Result<_, String> {
        let Some((client, server_cfg)) = &baseline_setup else {
            return Ok(None);
        };
        let run = |pace| baseline::run(client, server_cfg, &args.server_name, args.baseline, pace);
        let hot = run(Duration::ZERO)?;
        let paced = match args.baseline_pace_us {
            0 => None,
            us => Some(run(Duration::from_micros(us))?),
        };
        Ok(Some((hot, paced)))
    };
    // A few handshakes first, not counted: the process's first ones pay for faulting in
    // aws-lc's tables and rustls's lazily built state, which moved the figure taken before the
    // load by up to a third against the one after it.
    if let Some((client, server_cfg)) = &baseline_setup {
        baseline::run(
            client,
            server_cfg,
            &args.server_name,
            BASELINE_WARMUP.min(args.baseline),
            Duration::ZERO,
        )?;
    }
    let baseline_before = measure_baseline()?;

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
        Some(pid) => Some((stats::process_cpu(pid)?, stats::thread_switches(pid)?)),
        None => None,
    };
    let perf = match args.server_pid {
        Some(pid) if args.perf => perf::PerfStat::start(pid),
        _ => None,
    };
    let own_before = stats::own_process_cpu();
    let machine_before = stats::machine_busy()?;
    let start = Instant::now();
    let killer = match (args.kill_pid, args.kill_after_ms) {
        (Some(pid), Some(after)) => Some(std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(after));
            let killed = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            eprintln!(
                "loadgen: {} server process {pid} at {after} ms",
                if killed { "killed" } else { "could not kill" }
            );
        })),
        _ => None,
    };
    let plan = Arc::new(Plan {
        servers,
        sockets: std::sync::atomic::AtomicUsize::new(0),
        secret: args.secret.as_bytes().to_vec(),
        clients,
        resuming,
        resume_share: (args.resume / 100.0).clamp(0.0, 1.0),
        server_name: args.server_name.clone(),
        identity: args.identity.clone(),
        identities: AtomicU64::new(0),
        identity_cycle: args.identities,
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
        pace,
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
    if let Some(k) = killer {
        let _ = k.join();
    }
    let own_cpu = stats::own_process_cpu().saturating_sub(own_before);
    let machine = stats::machine_busy()?.saturating_sub(machine_before);
    let (server, switches) = match (args.server_pid, &server_before) {
        (Some(pid), Some((cpu, switches))) => (
            Some((
                pid,
                stats::cpu_between(cpu, &stats::process_cpu(pid)?),
                stats::peak_rss_kib(pid)?,
            )),
            Some(stats::switches_between(
                switches,
                &stats::thread_switches(pid)?,
            )),
        ),
        _ => (None, None),
    };
    let perf = perf.and_then(perf::PerfStat::finish);
    let baseline = match (baseline_before, measure_baseline()?) {
        (Some((hot, paced)), Some((hot_after, paced_after))) => Some((
            hot.merge(hot_after),
            paced.zip(paced_after).map(|(p, later)| p.merge(later)),
        )),
        (before, _) => before,
    };

    report(
        args,
        &mut total,
        &Measured {
            wall,
            own_cpu,
            machine,
            server,
            switches,
            perf,
            baseline,
            threads,
            sockets: sockets_total,
            certs: pairs.len(),
        },
    );
    Ok(total.failed() == 0 && total.succeeded > 0)
}

/// `--status-server`: the per-round-trip floor, with the server's CPU and context switches per
/// round trip.
fn status_server(
    args: &Args,
    server: std::net::SocketAddr,
    pace: Duration,
) -> Result<bool, String> {
    let count = args.count.unwrap_or(10_000);
    let before = match args.server_pid {
        Some(pid) => Some((stats::process_cpu(pid)?, stats::thread_switches(pid)?)),
        None => None,
    };
    let perf = match args.server_pid {
        Some(pid) if args.perf => perf::PerfStat::start(pid),
        _ => None,
    };
    let answered = status::run(server, args.secret.as_bytes(), count, pace)?;
    let measured = match (args.server_pid, before) {
        (Some(pid), Some((cpu, switches))) => Some((
            stats::cpu_between(&cpu, &stats::process_cpu(pid)?),
            stats::switches_between(&switches, &stats::thread_switches(pid)?),
        )),
        _ => None,
    };
    let perf = perf.and_then(perf::PerfStat::finish);
    let per = |v: f64| v / answered.max(1) as f64;
    let field =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    println!(
        "summary: status_server answered={answered} of {count} server_cpu_us_per_round_trip={} \
         server_ctx_per_round_trip={} server_wakeups_per_round_trip={} perf_ctx_per_round_trip={} \
         pace_ms={}",
        field(measured.map(|(c, _)| per(c.as_secs_f64() * 1e6)), 1),
        field(measured.map(|(_, s)| per(s.total() as f64)), 2),
        field(measured.map(|(_, s)| per(s.voluntary as f64)), 2),
        field(perf.map(|p| per(p.context_switches as f64)), 2),
        args.pace_ms,
    );
    Ok(answered == count)
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
