//! What `core::attempts` (the record behind `certradius why`) costs at its bound, measured with
//! a counting allocator: 100,000 supplicants, each known by a MAC and an identity, 8 attempts
//! each. The numbers are those the module doc and the README quote.
//!
//! One test in this binary: the allocator's counters are process-wide, so nothing may run
//! beside it.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::alloc::System;
use std::net::Ipv4Addr;
use std::time::Duration;

use certradius::core::attempts::{ATTEMPTS_PER_SUPPLICANT, Attempts, DEFAULT_MAX_KEYS, Key};
use certradius::core::events::AuthEvent;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SUPPLICANTS: u32 = 100_000;
const MIB: f64 = 1024.0 * 1024.0;
/// glibc malloc's cost per live allocation beyond what was asked (header and rounding to 16).
const MALLOC_OVERHEAD: usize = 16;

/// Live bytes asked for, and live bytes with the allocator's own overhead estimated.
fn live() -> (usize, usize) {
    let s = GLOBAL.stats();
    // A realloc's growth or shrinkage is already in bytes_allocated / bytes_deallocated.
    let bytes = s.bytes_allocated - s.bytes_deallocated;
    let blocks = s.allocations - s.deallocations;
    (bytes, bytes + blocks * MALLOC_OVERHEAD)
}

fn fill(attempts: &Attempts, distinct_details: bool) {
    for i in 0..SUPPLICANTS {
        let mac = format!(
            "02:00:{:02x}:{:02x}:{:02x}:00",
            i >> 16,
            (i >> 8) & 0xff,
            i & 0xff
        );
        let identity = format!("host/laptop{i:06}.corp.example.org");
        for n in 0..ATTEMPTS_PER_SUPPLICANT as u32 {
            // A typical refusal's detail is 40 to 80 octets.
            let detail = if distinct_details {
                format!("invalid peer certificate: expired at {i}.{n}, checked at 1796451600")
            } else {
                "invalid peer certificate: Expired".to_string()
            };
            let e = AuthEvent {
                outcome: "reject",
                method: "eap-tls",
                reason: Some("cert_expired"),
                detail: &detail,
                identity: identity.as_bytes(),
                user_name: Some(identity.as_bytes()),
                nas_name: "building-7-switch",
                nas_addr: Ipv4Addr::new(10, 7, (i >> 8) as u8, 1).into(),
                calling_station_id: Some(mac.as_bytes()),
                called_station_id: None,
                tls_version: "TLSv1.3",
                cipher_suite: "",
                serial: None,
                subject: None,
                issuer: None,
                ca_chain: &[],
                resumed: false,
                round_trips: 5,
                duration: Duration::ZERO,
                rule: None,
                granted: &[],
                class: None,
                client_hello: None,
                signature_scheme: None,
                group: None,
                nas_port_type: None,
                framed_mtu: None,
                directory_groups: None,
                directory_facts: None,
                peer: None,
            };
            attempts.record(&e, 1_796_451_600 + u64::from(n));
        }
    }
}

#[test]
fn one_hundred_thousand_supplicants_times_eight_attempts() {
    let mut report = Vec::new();
    for distinct in [false, true] {
        let before = live();
        let attempts = Attempts::new(DEFAULT_MAX_KEYS);
        fill(&attempts, distinct);
        let after = live();
        assert_eq!(attempts.len(), 2 * SUPPLICANTS as usize, "nothing evicted");
        let w = attempts.why(&Key::parse("02:00:00:00:00:00"));
        assert_eq!(w.attempts.len(), ATTEMPTS_PER_SUPPLICANT);
        let asked = (after.0 - before.0) as f64 / MIB;
        let with_malloc = (after.1 - before.1) as f64 / MIB;
        report.push((distinct, asked, with_malloc));
        eprintln!(
            "attempts: {SUPPLICANTS} supplicants x {ATTEMPTS_PER_SUPPLICANT}, {} details: \
             {asked:.1} MiB asked, ~{with_malloc:.1} MiB with malloc overhead",
            if distinct { "distinct" } else { "repeated" }
        );
        drop(attempts);
    }
    // The bounds the documentation states.
    let (_, _, repeated) = report[0];
    let (_, _, distinct) = report[1];
    assert!(repeated <= 64.0, "repeated details: {repeated:.1} MiB");
    assert!(distinct <= 128.0, "distinct details: {distinct:.1} MiB");
}
