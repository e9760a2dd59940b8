//! certradius's sans-IO core at a supplicant's pace, in memory: full EAP-TLS authentications
//! through `Core::handle_datagram` (RADIUS decode, Message-Authenticator, duplicate cache,
//! EAP-TLS reassembly and fragmentation, rustls, policy, MS-MPPE keys, the log line and the
//! reply) with no socket, no runtime and no kernel round trip, each request after an idle gap.
//! Every authentication is interleaved with one raw rustls handshake (server side timed, same
//! certificates and `tls::server_config`) after the same idle gaps, so both run under the same
//! cache-cooling conditions and the same load from the rest of the machine: their ratio is what
//! the core costs around the TLS handshake, far steadier on a shared machine than two figures
//! from separate runs. The paced loadgen's figure minus this one is the shell (tokio, the UDP
//! system calls, the loopback round trip). See BENCHMARKS.md, performance round 3.
//!
//!   cargo run --release --example core-paced -- [--count 150] [--rounds 3] [--pace-ms 3]
//!       [--tls 1.2|1.3] [--key rsa|ecdsa] [--pki DIR] [--idle sleep|spin]
//!
//! It also prints the CPU of each request of the conversation beside each server flight of the
//! raw handshake: where the core's cost above the handshake sits, and what an idle gap adds to
//! each step.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use certradius_testkit::in_memory::{self, InMemory, arg};
use certradius_testkit::peer::{Conversation, Nas, Next, Outcome, Supplicant};
use rustls::{ClientConnection, ServerConnection};

/// CPU time of the calling thread: only the server side's work is counted, never the sleep.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

fn main() {
    let count: usize = arg("--count", "150").parse().expect("--count");
    let rounds: usize = arg("--rounds", "3").parse().expect("--rounds");
    let pace =
        Duration::from_secs_f64(arg("--pace-ms", "3").parse::<f64>().expect("--pace-ms") / 1000.0);
    let version = arg("--tls", "1.2");
    SPIN.store(
        arg("--idle", "sleep") == "spin",
        std::sync::atomic::Ordering::Relaxed,
    );
    let key = arg("--key", "rsa");
    let dir = PathBuf::from(arg("--pki", "target/core-paced-pki"));
    // The benchmarks' server (testbed/loadgen/common.sh): one client, the defaults.
    let InMemory {
        core,
        client,
        raw_server,
    } = in_memory::build(&dir, &key, &version, None).unwrap();

    let (hot, _) = raw(&client, &raw_server, count, Duration::ZERO);
    println!(
        "raw handshake back to back: {:.3} ms server CPU ({count} handshakes, TLS {version}, {key})",
        ms(hot)
    );
    let from: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let mut rng = |b: &mut [u8]| getrandom::fill(b).unwrap();
    let mut counter = 0u128;
    let mut next_authenticator = || {
        counter += 1;
        counter.to_be_bytes()
    };
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let mut core_cpu = Duration::ZERO;
        let mut raw_cpu = Duration::ZERO;
        let mut requests = 0usize;
        // CPU per request by its place in the conversation (identity, ClientHello, ...).
        let mut by_step: Vec<Duration> = Vec::new();
        // The raw handshake's the same way: connection set-up with the first flight, then each
        // flight after.
        let mut raw_by_flight: Vec<Duration> = Vec::new();
        for i in 0..count {
            let (spent, flights) = raw(&client, &raw_server, 1, pace);
            raw_cpu += spent;
            if raw_by_flight.len() < flights.len() {
                raw_by_flight.resize(flights.len(), Duration::ZERO);
            }
            for (sum, flight) in raw_by_flight.iter_mut().zip(flights) {
                *sum += flight;
            }
            let supplicant =
                Supplicant::new(client.clone(), "radius.certradius.test", b"bob", 1400).unwrap();
            let mut nas = Nas::new(in_memory::SECRET.as_bytes());
            nas.calling_station_id =
                Some(format!("02-00-00-00-{:02x}-{:02x}", i >> 8 & 255, i & 255).into_bytes());
            let mut conversation = Conversation::new(supplicant, nas);
            let mut request = conversation.start(next_authenticator());
            let mut step = 0usize;
            loop {
                idle(pace);
                let t = thread_cpu();
                let reply = core
                    .handle_datagram(from, &request, certradius::server::now(), &mut rng)
                    .expect("a reply to every request");
                let spent = thread_cpu().saturating_sub(t);
                core_cpu += spent;
                if by_step.len() <= step {
                    by_step.resize(step + 1, Duration::ZERO);
                }
                if let Some(slot) = by_step.get_mut(step) {
                    *slot += spent;
                }
                step += 1;
                requests += 1;
                match conversation.on_reply(&reply, next_authenticator()).unwrap() {
                    Next::Send(p) => request = p,
                    Next::Done(outcome) => {
                        assert!(
                            matches!(
                                *outcome,
                                Outcome::Accepted {
                                    keys_match: true,
                                    ..
                                }
                            ),
                            "every authentication is accepted with matching keys"
                        );
                        break;
                    }
                }
            }
        }
        let n = u32::try_from(count).unwrap_or(u32::MAX).max(1);
        let (core_per, raw_per) = (core_cpu / n, raw_cpu / n);
        let ratio = ms(core_per) / ms(raw_per);
        ratios.push(ratio);
        println!(
            "round {round}: core {:.3} ms/auth ({:.1} requests), raw handshake after the same gaps {:.3} ms; core / raw {ratio:.3}; core / raw back to back {:.3}",
            ms(core_per),
            requests as f64 / count as f64,
            ms(raw_per),
            ms(core_per) / ms(hot)
        );
        let per = |sums: &[Duration]| {
            sums.iter()
                .map(|d| format!("{:.0}", d.as_secs_f64() * 1e6 / count as f64))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "  CPU per step, us: core per request {}; raw per server flight {}",
            per(&by_step),
            per(&raw_by_flight)
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "summary: core_over_raw_same_gaps_median={:.3} rounds={rounds} count={count} pace_ms={}",
        ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN),
        pace.as_secs_f64() * 1000.0
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `n` raw handshakes; the server side's CPU per handshake, and the sum over the handshakes of
/// each server flight's (the connection's set-up counted with the first). With a non-zero
/// `pace`, the thread sleeps that long before each server flight.
fn raw(
    client: &Arc<rustls::ClientConfig>,
    server: &Arc<rustls::ServerConfig>,
    n: usize,
    pace: Duration,
) -> (Duration, Vec<Duration>) {
    let name = rustls::pki_types::ServerName::try_from("radius.certradius.test").unwrap();
    let mut cpu = Duration::ZERO;
    let mut flights: Vec<Duration> = Vec::new();
    for _ in 0..n {
        let mut c = ClientConnection::new(client.clone(), name.clone()).unwrap();
        let t = thread_cpu();
        let mut s = ServerConnection::new(server.clone()).unwrap();
        let mut flight_cpu = thread_cpu().saturating_sub(t);
        let mut flight = 0;
        while c.is_handshaking() || s.is_handshaking() || c.wants_write() || s.wants_write() {
            let mut to_server = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut to_server).unwrap();
            }
            if !pace.is_zero() {
                idle(pace);
            }
            let t = thread_cpu();
            let mut data = &to_server[..];
            while !data.is_empty() {
                s.read_tls(&mut data).unwrap();
                s.process_new_packets().unwrap();
            }
            let mut to_client = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut to_client).unwrap();
            }
            flight_cpu += thread_cpu().saturating_sub(t);
            cpu += flight_cpu;
            if flights.len() <= flight {
                flights.resize(flight + 1, Duration::ZERO);
            }
            if let Some(sum) = flights.get_mut(flight) {
                *sum += flight_cpu;
            }
            flight += 1;
            flight_cpu = Duration::ZERO;
            let mut data = &to_client[..];
            while !data.is_empty() {
                c.read_tls(&mut data).unwrap();
                c.process_new_packets().unwrap();
            }
        }
    }
    (cpu / u32::try_from(n).unwrap_or(u32::MAX).max(1), flights)
}

/// Set by `--idle spin`: the gaps are spent spinning on the clock instead of sleeping.
static SPIN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One idle gap: asleep, or with `--idle spin` busy on this thread (which tells whether what a
/// gap costs the next request comes from the CPU going idle or from the time that passed).
fn idle(d: Duration) {
    if SPIN.load(std::sync::atomic::Ordering::Relaxed) {
        let t = std::time::Instant::now();
        while t.elapsed() < d {
            std::hint::spin_loop();
        }
    } else {
        std::thread::sleep(d);
    }
}
