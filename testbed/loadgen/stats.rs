//! What the generator counts: successes, failures by reason, latencies, retransmissions, and the
//! CPU readings (`/proc/PID/task/TID/schedstat` and `/proc/PID/stat`, `/proc/PID/status`, the
//! generator's own process CPU clock) that turn throughput into "CPU per authentication", and the
//! server's context switches (`/proc/PID/task/TID/status`, every thread) that turn it into
//! "wake-ups per authentication".

use std::collections::BTreeMap;
use std::time::Duration;

/// Why a conversation did not end in a verified Access-Accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// No valid reply after every retransmission.
    Timeout,
    /// Access-Reject, or a fatal TLS alert from the server.
    Reject,
    /// A reply that decoded and authenticated but broke the EAP-TLS or RADIUS rules (what
    /// `Conversation::on_reply` refused), or a reply on an unexpected TLS version.
    BadReply,
    /// Access-Accept whose MS-MPPE keys differ from the supplicant's own MSK halves.
    KeysMismatch,
    /// The socket refused to send a request.
    SendError,
}

impl Failure {
    pub fn name(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Reject => "reject",
            Failure::BadReply => "bad reply",
            Failure::KeysMismatch => "keys mismatch",
            Failure::SendError => "send error",
        }
    }

    pub const ALL: [Failure; 5] = [
        Failure::Timeout,
        Failure::Reject,
        Failure::BadReply,
        Failure::KeysMismatch,
        Failure::SendError,
    ];
}

/// Counters and samples of one NAS socket; merged across sockets and threads at the end.
#[derive(Debug, Default)]
pub struct Stats {
    pub succeeded: u64,
    /// Of those, how many resumed an earlier TLS session.
    pub resumed: u64,
    pub failures: BTreeMap<Failure, u64>,
    /// The first message seen for each failure reason, to tell the reader what went wrong.
    pub failure_examples: BTreeMap<Failure, String>,
    /// Microseconds from the first Access-Request to the final reply, successful conversations.
    pub auth_latency_us: Vec<u32>,
    /// Microseconds from sending a request (first transmission) to its accepted reply.
    pub round_trip_us: Vec<u32>,
    /// Round trips of each successful conversation.
    pub round_trips: Vec<u32>,
    pub retransmissions: u64,
    /// Replies thrown away on purpose by `--loss`.
    pub dropped_on_purpose: u64,
    /// Replies with an Identifier we have no request for, that do not decode, or whose Response
    /// Authenticator does not match the outstanding request (late duplicates after a
    /// retransmission): silently discarded, as RFC 2865 §3 tells a NAS to.
    pub discarded: u64,
    /// Negotiated TLS version of each successful conversation ("TLSv1_3" ...).
    pub tls_versions: BTreeMap<String, u64>,
    /// Microseconds from the start of the run to each successful conversation's end (storm).
    pub done_at_us: Vec<u32>,
    /// `--pace-ms`: microseconds from a reply (or the end of a conversation) to the next request
    /// actually sent, the idle gap the server saw from this supplicant.
    pub pace_gap_us: Vec<u32>,
    /// Several servers: servers this NAS found dead (each counted once per NAS socket).
    pub failovers: u64,
    /// Several servers: conversations started again on another server after their own went
    /// silent.
    pub restarted: u64,
    /// Several servers: (successes, of which resumed) per server, in `--server` order.
    pub by_server: Vec<(u64, u64)>,
}

impl Stats {
    pub fn fail(&mut self, why: Failure, detail: impl FnOnce() -> String) {
        *self.failures.entry(why).or_default() += 1;
        self.failure_examples.entry(why).or_insert_with(detail);
    }

    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    pub fn merge(&mut self, other: Stats) {
        self.succeeded += other.succeeded;
        self.resumed += other.resumed;
        for (k, v) in other.failures {
            *self.failures.entry(k).or_default() += v;
        }
        for (k, v) in other.failure_examples {
            self.failure_examples.entry(k).or_insert(v);
        }
        self.auth_latency_us.extend(other.auth_latency_us);
        self.round_trip_us.extend(other.round_trip_us);
        self.round_trips.extend(other.round_trips);
        self.done_at_us.extend(other.done_at_us);
        self.pace_gap_us.extend(other.pace_gap_us);
        self.retransmissions += other.retransmissions;
        self.dropped_on_purpose += other.dropped_on_purpose;
        self.discarded += other.discarded;
        self.failovers += other.failovers;
        self.restarted += other.restarted;
        if self.by_server.len() < other.by_server.len() {
            self.by_server.resize(other.by_server.len(), (0, 0));
        }
        for (mine, theirs) in self.by_server.iter_mut().zip(other.by_server) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
        for (k, v) in other.tls_versions {
            *self.tls_versions.entry(k).or_default() += v;
        }
    }
}

pub fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// p50/p90/p99/max of microsecond samples, in milliseconds.
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of(samples: &mut [u32]) -> Option<Self> {
        samples.sort_unstable();
        let at = |q: f64| -> f64 {
            // Nearest-rank percentile.
            let rank = (q * samples.len() as f64).ceil() as usize;
            let i = rank.saturating_sub(1).min(samples.len().saturating_sub(1));
            samples
                .get(i)
                .map(|&us| f64::from(us) / 1000.0)
                .unwrap_or(0.0)
        };
        let max = f64::from(*samples.last()?) / 1000.0;
        Some(Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max,
        })
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2} ms",
            self.p50, self.p90, self.p99, self.max
        )
    }
}

/// Linux reports utime/stime in USER_HZ ticks, which is 100 on every architecture Linux
/// supports today (the kernel ABI fixes it; sysconf(_SC_CLK_TCK) returns it).
const USER_HZ: u64 = 100;

/// CPU time (user + system, all threads) that process `pid` has used so far, from
/// `/proc/PID/stat` fields 14 and 15. Resolution: 10 ms.
fn process_ticks(pid: u32) -> Result<Duration, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    let (_, rest) = text
        .rsplit_once(')')
        .ok_or_else(|| format!("{path}: no ')' after the command name"))?;
    // `rest` starts at field 3 (state); utime is field 14, stime field 15.
    let mut fields = rest.split_whitespace().skip(11);
    let mut tick = |name: &str| -> Result<u64, String> {
        fields
            .next()
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or_else(|| format!("{path}: unreadable {name}"))
    };
    let ticks = tick("utime")? + tick("stime")?;
    Ok(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// What a process had used at one moment: its tick count (every thread, those gone included)
/// and each live thread's time on a CPU in nanoseconds (`/proc/PID/task/TID/schedstat`, first
/// field), by thread id.
#[derive(Debug, Clone, Default)]
pub struct CpuReading {
    ticks: Duration,
    threads: BTreeMap<u32, u64>,
}

/// Reads process `pid`'s CPU use (see [`cpu_between`]).
pub fn process_cpu(pid: u32) -> Result<CpuReading, String> {
    let ticks = process_ticks(pid)?;
    let mut threads = BTreeMap::new();
    let dir = format!("/proc/{pid}/task");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            // A thread may exit between the listing and the read: it is simply not there.
            let ns = std::fs::read_to_string(entry.path().join("schedstat"))
                .ok()
                .and_then(|t| t.split_whitespace().next()?.parse().ok());
            if let Some(ns) = ns {
                threads.insert(tid, ns);
            }
        }
    }
    Ok(CpuReading { ticks, threads })
}

/// The CPU time used between two readings. Per thread from the nanosecond counters, so that a
/// few thousand round trips of 20 µs (an echo server at a supplicant's pace) are measured, not
/// rounded to 10 ms ticks; a thread created in between counts from zero. A thread that exited
/// in between takes its time with it: when the ticks say clearly more (by more than two ticks
/// and 2%) than the threads, the ticks are the answer.
pub fn cpu_between(before: &CpuReading, after: &CpuReading) -> Duration {
    let ticks = after.ticks.saturating_sub(before.ticks);
    let ns: u64 = after
        .threads
        .iter()
        .map(|(tid, &ns)| ns.saturating_sub(before.threads.get(tid).copied().unwrap_or(0)))
        .sum();
    let precise = Duration::from_nanos(ns);
    let slack = Duration::from_millis(2 * 1000 / USER_HZ) + precise / 50;
    if after.threads.is_empty() || ticks > precise + slack {
        ticks
    } else {
        precise
    }
}

/// Peak resident set size (`VmHWM`) of process `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path}: no VmHWM line"))
}

fn timespec(t: rustix::time::Timespec) -> Duration {
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(t.tv_nsec).unwrap_or(0);
    Duration::new(secs, nanos)
}

/// CPU time of this whole process (every generator thread), nanosecond resolution.
pub fn own_process_cpu() -> Duration {
    timespec(rustix::time::clock_gettime(
        rustix::time::ClockId::ProcessCPUTime,
    ))
}

/// CPU time of the calling thread only, nanosecond resolution.
pub fn thread_cpu() -> Duration {
    timespec(rustix::time::clock_gettime(
        rustix::time::ClockId::ThreadCPUTime,
    ))
}

/// Busy CPU time of the whole machine so far (every CPU: user, nice, system, irq, softirq,
/// steal), from the first line of `/proc/stat`. Minus the server's and the generator's own, it
/// shows whether something else competed for the CPUs during the run.
pub fn machine_busy() -> Result<Duration, String> {
    let text = std::fs::read_to_string("/proc/stat").map_err(|e| format!("/proc/stat: {e}"))?;
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or("/proc/stat: no cpu line")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user/nice).
    let busy: u64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Ok(Duration::from_millis(busy * 1000 / USER_HZ))
}

/// Context switches of one thread so far: (voluntary, involuntary).
pub type ThreadSwitches = BTreeMap<u32, (u64, u64)>;

/// Context switches of every thread of process `pid` (`voluntary_ctxt_switches` and
/// `nonvoluntary_ctxt_switches` of `/proc/PID/task/TID/status`), by thread id. `/proc/PID/status`
/// alone would count the main thread only.
pub fn thread_switches(pid: u32) -> Result<ThreadSwitches, String> {
    let dir = format!("/proc/{pid}/task");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))? {
        let Ok(entry) = entry else { continue };
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread may exit between the listing and the read: it is simply not counted.
        let Ok(text) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        out.insert(
            tid,
            (
                field("voluntary_ctxt_switches:"),
                field("nonvoluntary_ctxt_switches:"),
            ),
        );
    }
    Ok(out)
}

/// What the server's threads did between two readings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Switches {
    /// A thread blocked (epoll_wait, futex, recvfrom...) and was later woken: one wake-up each.
    pub voluntary: u64,
    /// A runnable thread was preempted (time slice over, or a higher-priority task woke).
    pub involuntary: u64,
    /// Threads that ran during the interval (switched at least once).
    pub active_threads: usize,
    /// Threads present before and gone after: their switches during the run are lost.
    pub exited_threads: usize,
}

impl Switches {
    pub fn total(&self) -> u64 {
        self.voluntary + self.involuntary
    }
}

/// The switches between `before` and `after`, thread by thread: a thread created during the run
/// counts from zero; one that exited during the run is counted as exited, not as negative.
pub fn switches_between(before: &ThreadSwitches, after: &ThreadSwitches) -> Switches {
    let mut s = Switches::default();
    for (tid, &(v, i)) in after {
        let (v0, i0) = before.get(tid).copied().unwrap_or((0, 0));
        let (dv, di) = (v.saturating_sub(v0), i.saturating_sub(i0));
        s.voluntary += dv;
        s.involuntary += di;
        if dv + di > 0 {
            s.active_threads += 1;
        }
    }
    s.exited_threads = before.keys().filter(|t| !after.contains_key(t)).count();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_summed_per_thread_and_the_ticks_win_when_a_thread_took_its_time_away() {
        let ms = Duration::from_millis;
        let reading = |ticks: u64, threads: &[(u32, u64)]| CpuReading {
            ticks: ms(ticks),
            threads: threads.iter().copied().collect(),
        };
        // 10 ran 3.5 ms, 11 was created and ran 0.25 ms: 3.75 ms where the ticks say 0 or 10.
        let before = reading(100, &[(10, 1_000_000), (12, 5_000_000)]);
        let after = reading(110, &[(10, 4_500_000), (11, 250_000), (12, 5_000_000)]);
        assert_eq!(cpu_between(&before, &after), Duration::from_micros(3750));
        // 12 exited after running 500 ms of the 510 the ticks saw: the ticks are the answer.
        let after = reading(610, &[(10, 4_500_000), (11, 250_000)]);
        assert_eq!(cpu_between(&before, &after), ms(510));
    }

    #[test]
    fn this_process_cpu_grows_with_work() {
        let before = process_cpu(std::process::id()).unwrap();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let spent = cpu_between(&before, &process_cpu(std::process::id()).unwrap());
        assert!(spent >= Duration::from_millis(20), "{spent:?}");
    }

    #[test]
    fn switches_are_summed_per_thread_and_new_threads_count_from_zero() {
        let before: ThreadSwitches = [(10, (100, 5)), (11, (40, 1)), (12, (7, 0))].into();
        // 10 ran, 11 slept through, 12 exited, 13 was created during the run.
        let after: ThreadSwitches = [(10, (160, 9)), (11, (40, 1)), (13, (3, 2))].into();
        let s = switches_between(&before, &after);
        assert_eq!(s.voluntary, 60 + 3);
        assert_eq!(s.involuntary, 4 + 2);
        assert_eq!(s.total(), 69);
        assert_eq!(s.active_threads, 2);
        assert_eq!(s.exited_threads, 1);
    }

    #[test]
    fn this_process_has_its_threads_switches() {
        let pid = std::process::id();
        let before = thread_switches(pid).unwrap();
        assert!(before.contains_key(&pid), "the main thread is a task too");
        // Sleeping blocks this thread: at least one voluntary switch.
        std::thread::sleep(Duration::from_millis(2));
        let after = thread_switches(pid).unwrap();
        assert!(switches_between(&before, &after).voluntary >= 1);
    }
}
