//! The report of a run: the human-readable lines, then one `summary:` line of `key=value` pairs
//! for scripts (run-benchmarks.sh, ab-light.sh and the compare scripts read fields by name, so new
//! fields go at the end and `-` stands for "not measured").

use std::time::Duration;

use crate::stats::{Failure, Percentiles, Stats, Switches};
use crate::{Args, baseline, perf};

pub struct Measured {
    pub wall: Duration,
    pub own_cpu: Duration,
    /// Busy CPU time of the whole machine during the run.
    pub machine: Duration,
    /// (pid, CPU used during the run, VmHWM KiB)
    pub server: Option<(u32, Duration, u64)>,
    /// The server's context switches during the run (/proc, every thread).
    pub switches: Option<Switches>,
    /// The same, counted by `perf stat` (--perf).
    pub perf: Option<perf::PerfCounts>,
    /// The raw-TLS baseline back to back, and paced (--baseline-pace-us).
    pub baseline: Option<(baseline::Baseline, Option<baseline::Baseline>)>,
    pub threads: usize,
    pub sockets: usize,
    pub certs: usize,
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn report(args: &Args, s: &mut Stats, m: &Measured) {
    let ok = s.succeeded;
    let per_auth = |d: Duration| {
        if ok == 0 { f64::NAN } else { ms(d) / ok as f64 }
    };
    let secs = m.wall.as_secs_f64();
    print_header(args, s, m);
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
    let gap_mean = pace_gaps(args, s);
    let auth_p = Percentiles::of(&mut s.auth_latency_us);
    let rt_p = Percentiles::of(&mut s.round_trip_us);
    if let Some(p) = &auth_p {
        println!("  latency per authentication: {p}");
    }
    if let Some(p) = &rt_p {
        println!("  latency per round trip:     {p}");
    }
    let storm_at = storm_times(args, s);
    println!(
        "  retransmissions {}, replies dropped on purpose {} (--loss {}%), replies discarded {}",
        s.retransmissions, s.dropped_on_purpose, args.loss, s.discarded
    );
    if !s.by_server.is_empty() || s.failovers > 0 {
        println!(
            "  pool: servers found dead {} (per NAS), conversations started again elsewhere {}, \
             per server (ok/resumed) {}",
            s.failovers,
            s.restarted,
            per_server(s)
        );
    }
    print_server(m, ok, secs);
    let per_count = |n: u64| {
        if ok == 0 {
            f64::NAN
        } else {
            n as f64 / ok as f64
        }
    };
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
    let (ratio, ratio_paced) = baseline_ratios(args, m, m.server.map(|(_, c, _)| per_auth(c)));
    // One line for scripts and tables.
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    println!(
        "summary: tls={} ok={ok} failed={} auth_per_s={rate:.1} rt_per_auth={rt_mean:.2} \
         auth_p50_ms={} auth_p99_ms={} rt_p50_ms={} rt_p99_ms={} server_cpu_ms_per_auth={} \
         server_peak_rss_mib={} generator_cpu_ms_per_auth={:.3} generator_core_pct={:.0} \
         raw_tls_server_ms={} ratio={} raw_tls_paced_server_ms={} ratio_paced={} \
         others_pct={others_pct:.0} server_ctx_per_auth={} server_wakeups_per_auth={} \
         server_preempt_per_auth={} perf_ctx_per_auth={} perf_migrations_per_auth={} pace_ms={} \
         pace_gap_mean_ms={} storm_p99_s={} storm_all_s={} failovers={} restarted={} \
         per_server={}",
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
        opt(m.switches.map(|w| per_count(w.total()))),
        opt(m.switches.map(|w| per_count(w.voluntary))),
        opt(m.switches.map(|w| per_count(w.involuntary))),
        opt(m.perf.map(|p| per_count(p.context_switches))),
        opt(m.perf.map(|p| per_count(p.cpu_migrations))),
        args.pace_ms,
        opt(gap_mean),
        storm_field(storm_at.map(|(p99, _)| p99)),
        storm_field(storm_at.map(|(_, all)| all)),
        s.failovers,
        s.restarted,
        per_server(s),
    );
}

/// `ok/resumed` of each server, comma-separated (`-` with one server).
fn per_server(s: &Stats) -> String {
    if s.by_server.is_empty() {
        return "-".into();
    }
    s.by_server
        .iter()
        .map(|(ok, resumed)| format!("{ok}/{resumed}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A storm's time in the summary: `-` without a storm, `never` if that share never got in.
fn storm_field(v: Option<Option<f64>>) -> String {
    match v {
        None => "-".into(),
        Some(None) => "never".into(),
        Some(Some(s)) => format!("{s:.3}"),
    }
}

/// Storm mode: prints and returns the seconds until 99% and 100% were authenticated (`None`
/// inside: never; `None`: not a storm).
fn storm_times(args: &Args, s: &mut Stats) -> Option<(Option<f64>, Option<f64>)> {
    let n = args.storm?;
    s.done_at_us.sort_unstable();
    let at = |share: f64| -> Option<f64> {
        let need = ((n as f64) * share).ceil() as usize;
        let i = need.checked_sub(1)?;
        s.done_at_us.get(i).map(|&us| f64::from(us) / 1e6)
    };
    let show = |v: Option<f64>| v.map_or("never".to_string(), |v| format!("{v:.2} s"));
    println!(
        "  storm: {n} supplicants started within {} ms, NAS retransmitting every {} ms, {} tries; \
         99% authenticated after {}, 100% after {}",
        args.storm_window_ms,
        args.timeout_ms,
        args.retries + 1,
        show(at(0.99)),
        show(at(1.0))
    );
    Some((at(0.99), at(1.0)))
}

/// The server's CPU, peak RSS and context switches per authentication.
fn print_server(m: &Measured, ok: u64, secs: f64) {
    let per = |n: u64| {
        if ok == 0 {
            f64::NAN
        } else {
            n as f64 / ok as f64
        }
    };
    let per_auth = |d: Duration| {
        if ok == 0 { f64::NAN } else { ms(d) / ok as f64 }
    };
    if let Some((pid, cpu, hwm)) = m.server {
        println!(
            "  server pid {pid}: CPU {:.0} ms = {:.3} ms/auth, {:.0}% of one core; peak RSS (VmHWM) {:.1} MiB",
            ms(cpu),
            per_auth(cpu),
            100.0 * cpu.as_secs_f64() / secs,
            hwm as f64 / 1024.0
        );
    }
    if let Some(sw) = &m.switches {
        println!(
            "  server context switches: {:.2}/auth = {:.2} wake-ups (voluntary: a thread slept and was woken) + {:.2} preemptions; \
             {} thread(s) ran{}",
            per(sw.total()),
            per(sw.voluntary),
            per(sw.involuntary),
            sw.active_threads,
            if sw.exited_threads > 0 {
                format!(
                    ", {} exited during the run (their switches are missing)",
                    sw.exited_threads
                )
            } else {
                String::new()
            }
        );
    }
    if let Some(p) = &m.perf {
        println!(
            "  perf stat on the server: {:.2} context switches/auth, {:.2} CPU migrations/auth",
            per(p.context_switches),
            per(p.cpu_migrations)
        );
    }
}

/// The raw-TLS yardstick's lines, and the server's CPU per authentication (ms) divided by it,
/// back to back and paced.
fn baseline_ratios(
    args: &Args,
    m: &Measured,
    server_per_auth: Option<f64>,
) -> (Option<f64>, Option<f64>) {
    let mut ratio = None;
    let mut ratio_paced = None;
    let Some((b, paced)) = &m.baseline else {
        return (None, None);
    };
    {
        let per = b.server_per_handshake();
        let runs = |b: &baseline::Baseline| {
            b.runs_ms()
                .map(|r| format!(" (before the load / after it: {r})"))
                .unwrap_or_default()
        };
        println!(
            "  raw TLS baseline: {} in-memory mutual-TLS handshakes ({}), server side {:.3} ms CPU each{} (client side {:.3} ms)",
            b.handshakes,
            b.version,
            ms(per),
            runs(b),
            ms(b.client_cpu) / b.handshakes.max(1) as f64
        );
        if let Some(p) = paced {
            println!(
                "  raw TLS baseline paced ({} us idle before each server flight): server side {:.3} ms CPU each{}",
                args.baseline_pace_us,
                ms(p.server_per_handshake()),
                runs(p)
            );
        }
        if let Some(cpu_per_auth) = server_per_auth {
            let r = cpu_per_auth / ms(per);
            ratio = Some(r);
            println!(
                "  server CPU per EAP-TLS authentication / raw server-side handshake CPU = {r:.2}"
            );
            if let Some(p) = paced {
                let r = cpu_per_auth / ms(p.server_per_handshake());
                ratio_paced = Some(r);
                println!("  ... / paced raw server-side handshake CPU = {r:.2}");
            }
        }
    }
    (ratio, ratio_paced)
}

/// What ran, and how it ended.
fn print_header(args: &Args, s: &Stats, m: &Measured) {
    let ok = s.succeeded;
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
}

/// `--pace-ms`: prints the idle gaps actually sent and returns their mean (ms).
fn pace_gaps(args: &Args, s: &mut Stats) -> Option<f64> {
    let gap_p = Percentiles::of(&mut s.pace_gap_us);
    let gap_mean = (!s.pace_gap_us.is_empty()).then(|| {
        s.pace_gap_us.iter().map(|&g| f64::from(g)).sum::<f64>() / s.pace_gap_us.len() as f64 / 1e3
    });
    if let (Some(p), Some(mean)) = (&gap_p, gap_mean) {
        println!(
            "  paced: --pace-ms {}; idle gap before each request as sent: mean {mean:.2} ms, {p}",
            args.pace_ms
        );
    }
    gap_mean
}
