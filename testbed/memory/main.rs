//! Memory per conversation parked between round trips, measured exactly with a counting
//! allocator (live heap bytes), and the process RSS with many conversations in flight.
//!
//!   cargo run --release --example memory -- [--conversations 50000] [--tls 1.2|1.3] [--key ecdsa|rsa]
//!
//! Each conversation is driven to the point where the server has answered the ClientHello
//! with the first fragment of its flight and waits for the peer's ACK: the state a server holds
//! for the longest stretch of a full handshake. The supplicants are then dropped, so what stays
//! allocated is the server's: session table entry, rustls connection, the rest of the flight.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::alloc::System;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use certradius_testkit::in_memory::{self, InMemory, arg};
use certradius_testkit::peer::{Conversation, Nas, Next, Supplicant};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

// stats_alloc wraps the system allocator and counts (our crate forbids unsafe code, so the
// counting allocator comes from a crate).
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn live() -> isize {
    let s = GLOBAL.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let n: usize = arg("--conversations", "50000").parse().unwrap();
    let version = arg("--tls", "1.3");
    let key = arg("--key", "ecdsa");
    let dir = PathBuf::from(arg("--pki", "target/memory-pki"));
    let InMemory { core, client, .. } = in_memory::build(&dir, &key, &version, Some(n)).unwrap();
    let from: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let mut rng = |b: &mut [u8]| getrandom::fill(b).unwrap();
    let mut counter = 0u128;
    let mut auth = || {
        counter += 1;
        counter.to_be_bytes()
    };
    let live0 = live();
    let rss0 = rss_kib();
    let t0 = Instant::now();
    for i in 0..n {
        let sup = Supplicant::new(client.clone(), "radius.certradius.test", b"bob", 1400).unwrap();
        let mut nas = Nas::new(in_memory::SECRET.as_bytes());
        nas.calling_station_id = Some(
            format!(
                "02-00-00-{:02x}-{:02x}-{:02x}",
                i >> 16 & 255,
                i >> 8 & 255,
                i & 255
            )
            .into_bytes(),
        );
        let mut conv = Conversation::new(sup, nas);
        let a = auth();
        let mut packet = conv.start(a);
        // Identity -> Start, ClientHello -> first fragment of the server flight.
        for _ in 0..2 {
            let reply = core
                .handle_datagram(from, &packet, certradius::server::now(), &mut rng)
                .unwrap();
            match conv.on_reply(&reply, auth()).unwrap() {
                Next::Send(p) => packet = p,
                Next::Done(_) => panic!("finished early"),
            }
        }
        drop(conv);
    }
    let elapsed = t0.elapsed();
    let live1 = live();
    let rss1 = rss_kib();
    let parked = core.sessions_in_progress();
    assert_eq!(parked, n, "every conversation is parked");
    let per = (live1 - live0) as f64 / n as f64;
    println!(
        "TLS {version} {key}: {n} conversations parked in {:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "  heap per parked conversation: {:.1} KiB (live heap +{:.1} MiB, includes the duplicate cache entry)",
        per / 1024.0,
        (live1 - live0) as f64 / 1048576.0
    );
    println!(
        "  process RSS: {:.1} MiB -> {:.1} MiB with {n} conversations in flight",
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0
    );
}
