//! The raw-TLS yardstick: full mutual-TLS handshakes between a rustls `ClientConnection` and a
//! `ServerConnection` in memory, with the same certificates, TLS version and server
//! configuration (`certradius::tls::server_config`) as the server under test. Only the server
//! side is timed, with the thread CPU clock around each server call, so the figure is what a TLS
//! handshake alone costs a server; EAP-TLS per authentication divided by it is the overhead of
//! EAP framing, RADIUS, fragmentation round trips, key export and bookkeeping.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection};

use crate::stats::thread_cpu;

pub struct Baseline {
    pub handshakes: usize,
    /// Server-side CPU of all handshakes.
    pub server_cpu: Duration,
    /// Client-side CPU of all handshakes, for reference.
    pub client_cpu: Duration,
    pub version: String,
    /// Server-side CPU per handshake of each run merged into this one, in order (one run: one
    /// entry). loadgen measures before and after the load: a yardstick taken in one noisy
    /// moment of a shared machine moved the ratios by a third.
    pub runs: Vec<Duration>,
}

impl Baseline {
    /// This run and `later` as one yardstick: their handshakes and CPU added up.
    pub fn merge(mut self, later: Baseline) -> Baseline {
        self.handshakes += later.handshakes;
        self.server_cpu += later.server_cpu;
        self.client_cpu += later.client_cpu;
        self.runs.extend(later.runs);
        self
    }

    /// The runs' figures in ms, "a / b", when there was more than one.
    pub fn runs_ms(&self) -> Option<String> {
        (self.runs.len() > 1).then(|| {
            self.runs
                .iter()
                .map(|d| format!("{:.3}", d.as_secs_f64() * 1e3))
                .collect::<Vec<_>>()
                .join(" / ")
        })
    }

    pub fn server_per_handshake(&self) -> Duration {
        self.server_cpu
            .checked_div(u32::try_from(self.handshakes).unwrap_or(u32::MAX))
            .unwrap_or_default()
    }
}

/// Runs `n` handshakes on the calling thread. With a non-zero `pace`, the thread sleeps that long
/// before each server step: the server's flights then run after an idle gap, as they do at one
/// conversation in flight (caches and branch predictors cooled by whatever ran meanwhile, an idle
/// vCPU woken), which is the fair yardstick for light-load figures.
pub fn run(
    client: &Arc<rustls::ClientConfig>,
    server: &Arc<rustls::ServerConfig>,
    server_name: &str,
    n: usize,
    pace: Duration,
) -> Result<Baseline, String> {
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| format!("server name {server_name:?}: {e}"))?;
    // certradius's configuration reads the time of the conversation its engine is processing
    // (`certradius::tls::clock`); a bare `ServerConnection` has none, so it gets rustls's own clock.
    let mut raw = (**server).clone();
    raw.time_provider = Arc::new(rustls::time_provider::DefaultTimeProvider);
    let server = &Arc::new(raw);
    let mut server_cpu = Duration::ZERO;
    let mut client_cpu = Duration::ZERO;
    let mut version = String::new();
    for _ in 0..n {
        let t = thread_cpu();
        let mut c = ClientConnection::new(client.clone(), name.clone())
            .map_err(|e| format!("client: {e}"))?;
        client_cpu += thread_cpu().saturating_sub(t);

        let t = thread_cpu();
        let mut s = ServerConnection::new(server.clone()).map_err(|e| format!("server: {e}"))?;
        server_cpu += thread_cpu().saturating_sub(t);

        // Each pass moves one flight each way; a full handshake needs at most three passes.
        let mut passes = 0;
        while c.is_handshaking() || s.is_handshaking() || c.wants_write() || s.wants_write() {
            passes += 1;
            if passes > 10 {
                return Err("handshake did not finish in 10 flights".into());
            }
            let t = thread_cpu();
            let to_server = drain(&mut c)?;
            client_cpu += thread_cpu().saturating_sub(t);

            if !pace.is_zero() {
                std::thread::sleep(pace);
            }
            let t = thread_cpu();
            feed(&to_server, |rd| {
                s.read_tls(rd)
                    .map_err(|e| format!("server read_tls: {e}"))?;
                s.process_new_packets()
                    .map_err(|e| format!("server rejected the handshake: {e}"))?;
                Ok(())
            })?;
            let to_client = drain(&mut s)?;
            server_cpu += thread_cpu().saturating_sub(t);

            let t = thread_cpu();
            feed(&to_client, |rd| {
                c.read_tls(rd)
                    .map_err(|e| format!("client read_tls: {e}"))?;
                c.process_new_packets()
                    .map_err(|e| format!("client rejected the handshake: {e}"))?;
                Ok(())
            })?;
            client_cpu += thread_cpu().saturating_sub(t);
        }
        version = certradius::tls::version_name(s.protocol_version()).to_string();
    }
    let mut baseline = Baseline {
        handshakes: n,
        server_cpu,
        client_cpu,
        version,
        runs: Vec::new(),
    };
    baseline.runs.push(baseline.server_per_handshake());
    Ok(baseline)
}

/// Everything a connection has to send now.
fn drain<D>(conn: &mut rustls::ConnectionCommon<D>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while conn.wants_write() {
        match conn.write_tls(&mut out) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("write_tls: {e}")),
        }
    }
    Ok(out)
}

/// Hands `data` to a connection: read some records, process them, until all is consumed.
fn feed(
    mut data: &[u8],
    mut read_and_process: impl FnMut(&mut &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    while !data.is_empty() {
        let before = data.len();
        read_and_process(&mut data)?;
        if data.len() == before {
            return Err("read_tls accepted nothing".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(handshakes: usize, per_ms: u64) -> Baseline {
        let per = Duration::from_millis(per_ms);
        Baseline {
            handshakes,
            server_cpu: per * u32::try_from(handshakes).unwrap(),
            client_cpu: Duration::ZERO,
            version: "TLSv1.2".into(),
            runs: vec![per],
        }
    }

    #[test]
    fn the_runs_before_and_after_the_load_make_one_yardstick_and_stay_visible() {
        let one = run_of(100, 1);
        assert_eq!(
            one.runs_ms(),
            None,
            "a single run has nothing to show beside it"
        );
        let both = one.merge(run_of(100, 3));
        assert_eq!(both.handshakes, 200);
        assert_eq!(both.server_per_handshake(), Duration::from_millis(2));
        assert_eq!(both.runs_ms().as_deref(), Some("1.000 / 3.000"));
    }
}
