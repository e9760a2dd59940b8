//! `--perf`: a cross-check of the `/proc` context-switch counts with the kernel's own software
//! counters, `perf stat -e context-switches,cpu-migrations -p PID` (Debian: `linux-perf`),
//! attached to the server for the length of the run. Optional: without perf, or without the
//! permission to attach (`kernel.perf_event_paranoid`), the run goes on and reports `-`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `perf stat`.
pub struct PerfStat {
    child: Child,
    output: PathBuf,
}

/// What `perf stat` counted on the server's threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerfCounts {
    pub context_switches: u64,
    pub cpu_migrations: u64,
}

impl PerfStat {
    /// Attaches `perf stat` to process `pid`; `None` (with a note on stderr) if it cannot.
    pub fn start(pid: u32) -> Option<Self> {
        let output = std::env::temp_dir().join(format!("loadgen-perf-{}.csv", std::process::id()));
        let child = Command::new("perf")
            .args([
                "stat",
                "-x",
                ",",
                "-e",
                "context-switches,cpu-migrations",
                "-p",
            ])
            .arg(pid.to_string())
            .arg("-o")
            .arg(&output)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(child) => {
                // perf needs a moment to open its counters on every thread; what the idle
                // server does meanwhile is counted too (a few timer wake-ups).
                std::thread::sleep(Duration::from_millis(300));
                Some(PerfStat { child, output })
            }
            Err(e) => {
                eprintln!("loadgen: --perf: cannot run perf: {e}");
                None
            }
        }
    }

    /// Stops perf (SIGINT makes it print its counts) and reads them.
    pub fn finish(mut self) -> Option<PerfCounts> {
        let stopped = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.output).ok();
        let _ = std::fs::remove_file(&self.output);
        let counts = text.as_deref().and_then(parse);
        if counts.is_none() {
            eprintln!("loadgen: --perf: perf stat counted nothing (not permitted?)");
        }
        counts
    }
}

/// Parses `perf stat -x ,` output: `VALUE,UNIT,EVENT,...` per line, `#` comments.
fn parse(text: &str) -> Option<PerfCounts> {
    let mut counts = PerfCounts::default();
    let mut seen = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut fields = line.split(',');
        let (Some(value), Some(_unit), Some(event)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Ok(value) = value.trim().parse::<u64>() else {
            continue;
        };
        match event.trim() {
            "context-switches" | "cs" => counts.context_switches = value,
            "cpu-migrations" | "migrations" => counts.cpu_migrations = value,
            _ => continue,
        }
        seen += 1;
    }
    (seen > 0).then_some(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_perf_stat_csv() {
        let text = "# started on Fri Dec  4 18:00:00 2026\n\n\
                    12345,,context-switches,2001234567,100.00,,\n\
                    67,,cpu-migrations,2001234567,100.00,,\n";
        assert_eq!(
            parse(text),
            Some(PerfCounts {
                context_switches: 12345,
                cpu_migrations: 67
            })
        );
    }

    #[test]
    fn an_uncounted_event_is_no_figure() {
        let text = "<not supported>,,context-switches,0,100.00,,\n";
        assert_eq!(parse(text), None);
    }
}
