//! Replays the fuzzing corpus and every crash regression (`testbed/fuzz/corpus/<target>/*`,
//! `testbed/fuzz/regressions/<target>/*`) through the fuzz harness, so a plain `cargo test`
//! catches a regression without cargo-fuzz or a nightly compiler. The harness is the very file
//! the fuzz targets use (`testkit/src/fuzz.rs`).
//!
//! The ignored test `generate_seed_corpus` wrote the seeds the corpus started from: full
//! in-memory EAP-TLS conversations (TLS 1.2 and 1.3, RFC 5216 / RFC 9190) between
//! `certradius_testkit::peer` and the core, dumped per target (see testbed/fuzz/README.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use certradius_testkit::fuzz as harness;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use certradius::eap::{self, EapPacket, EapType, TlsFrame};
use certradius::radius::{Code, Packet};
use certradius_testkit::peer::{Conversation, Nas, Next, Outcome, Supplicant};
use harness::script;
use md5::{Digest, Md5};

/// The committed corpus holds far more than this; fewer means the files went missing and the
/// test would pass without testing anything.
const MIN_FILES: usize = 50;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.') && !name.ends_with(".md")
        })
        .collect();
    out.sort();
    out
}

#[test]
fn replay_corpus_and_regressions() {
    let root = fuzz_dir();
    let mut replayed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for target in harness::TARGETS {
        for kind in ["corpus", "regressions"] {
            for file in files(&root.join(kind).join(target)) {
                let data = std::fs::read(&file).unwrap();
                let outcome = std::panic::catch_unwind(|| harness::run(target, &data));
                if !matches!(outcome, Ok(true)) {
                    failures.push(file.display().to_string());
                }
                *replayed.entry(target).or_default() += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} input(s) panicked: {failures:#?}",
        failures.len()
    );
    for target in harness::TARGETS {
        assert!(
            replayed.get(target).copied().unwrap_or(0) > 0,
            "no corpus for {target} under {}",
            root.display()
        );
    }
    let total: usize = replayed.values().sum();
    assert!(
        total >= MIN_FILES,
        "only {total} files replayed: {replayed:?}"
    );
    // The handle_datagram corpus must reach the end of real handshakes, not just the decoders.
    let stats = &harness::fixture().core.stats;
    assert!(
        stats.get("access_accepts") > 0 && stats.get("access_challenges") > 0,
        "the handle_datagram corpus reached no Access-Accept: {}",
        stats.report()
    );
}

/// Seeds collected per target.
#[derive(Default)]
struct Seeds(BTreeMap<&'static str, Vec<Vec<u8>>>);

impl Seeds {
    fn add(&mut self, target: &'static str, data: Vec<u8>) {
        self.0.entry(target).or_default().push(data);
    }
}

struct Case {
    tls13: bool,
    cert: &'static str,
    /// Index into the harness's supplicant fragment sizes (1400, 1024, 300, 64).
    fragment: u8,
    /// Index into the harness's Framed-MTU values (none, 1400, 300, 64).
    mtu: u8,
    accepted: bool,
}

/// One real conversation against the fuzz fixture's core, dumped into `seeds`.
fn conversation(case: &Case, seed: u64, seeds: &mut Seeds) {
    let fx = harness::fixture();
    let tls13 = usize::from(case.tls13);
    let client = match case.cert {
        "ecdsa" => fx.clients[tls13].clone(),
        "rsa" => fx.clients[2 + tls13].clone(),
        "untrusted" => fx.untrusted[tls13].clone(),
        "expired" => fx.expired[tls13].clone(),
        other => panic!("no client certificate {other} in the fixture"),
    };
    let fragment = [1400, 1024, 300, 64][usize::from(case.fragment)];
    let supplicant = Supplicant::new(
        client,
        certradius_pki::SERVER_NAME,
        b"seed@certradius.test",
        fragment,
    )
    .unwrap();
    let mut nas = Nas::new(harness::SECRET);
    nas.framed_mtu = [None, Some(1400), Some(300), Some(64)][usize::from(case.mtu)];
    let mut conv = Conversation::new(supplicant, nas);
    let mut rng = harness::SplitMix::new(seed);
    let mut core_rng = harness::SplitMix::new(!seed);
    let now = fx.fresh_now();
    let wall = certradius::server::now().wall;
    let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();

    let mut request = conv.start(rng.authenticator());
    let mut requests = Vec::new();
    let mut peer_frames = Vec::new();
    let mut server_frames = Vec::new();
    let tls_data = |eap: &[u8]| {
        EapPacket::decode(eap)
            .ok()
            .filter(|p| p.typ == Some(EapType::Tls))
            .map(|p| p.type_data.to_vec())
    };
    let mut aborted = false;
    loop {
        let reply = fx
            .core
            .handle_datagram(
                from,
                &request,
                certradius::session::Now::new(now, wall),
                &mut |b| core_rng.fill(b),
            )
            .expect("the core answers every request of a real conversation");
        for (datagram, frames) in [(&request, &mut peer_frames), (&reply, &mut server_frames)] {
            seeds.add("radius_packet", datagram.clone());
            let eap = Packet::decode(datagram).unwrap().eap_message().unwrap();
            frames.extend(tls_data(&eap));
            seeds.add("eap_packet", eap);
        }
        requests.push(request);
        if aborted {
            assert_eq!(Packet::decode(&reply).unwrap().code(), Code::AccessReject);
            break;
        }
        match conv.on_reply(&reply, rng.authenticator()) {
            Ok(Next::Send(r)) => request = r,
            Ok(Next::Done(outcome)) => {
                match *outcome {
                    Outcome::Accepted { keys_match, .. } => {
                        assert!(case.accepted && keys_match, "{} was accepted", case.cert);
                    }
                    Outcome::Rejected(_) => assert!(!case.accepted, "{} was rejected", case.cert),
                }
                break;
            }
            Err(e) => {
                // The server refused the certificate with a TLS alert, which aborts our rustls
                // client; answer it with an empty EAP-TLS response as a supplicant does
                // (RFC 5216 §2.1.3), and the server ends with EAP-Failure.
                assert!(!case.accepted, "{}: {e}", case.cert);
                let eap = Packet::decode(&reply).unwrap().eap_message().unwrap();
                let id = EapPacket::decode(&eap).unwrap().identifier;
                let ack = eap::tls_response(id, &TlsFrame::ack());
                request = conv.nas.access_request(&ack, rng.authenticator());
                aborted = true;
            }
        }
    }

    seeds.add(
        "reassembler",
        harness::reassembler_input(31, 16384, 200, &peer_frames),
    );
    seeds.add(
        "reassembler",
        harness::reassembler_input(8, 4096, 99, &server_frames),
    );

    let header = script::header(
        case.tls13,
        case.cert == "rsa",
        case.fragment,
        case.mtu,
        false,
    );
    // The recorded EAP replayed verbatim: the handshake diverges once the server's fresh
    // randomness differs, but the structure up to there is real.
    let mut replay = vec![header];
    for r in &requests {
        let eap = Packet::decode(r).unwrap().eap_message().unwrap();
        script::record(&mut replay, script::EAP, &eap);
    }
    seeds.add("handle_datagram", replay);
    if matches!(case.cert, "rsa" | "ecdsa") {
        // The harness's own supplicant, live: reaches Access-Accept on every run.
        let mut live = vec![header];
        for _ in 0..=requests.len() {
            script::record(&mut live, script::PEER, &[]);
        }
        seeds.add("handle_datagram", live.clone());
        // The same, with the odd things a NAS and the network do mixed in.
        let mut tour = vec![header];
        script::record(&mut tour, script::PEER, &[]);
        script::record(&mut tour, script::RESEND, &[]);
        script::record(&mut tour, script::STATUS_SERVER, &[32, 3, b'n', b'a', b's']);
        script::record(&mut tour, script::PEER | script::OTHER_PORT, &[]);
        script::record(&mut tour, script::PEER | script::BAD_STATE, &[]);
        script::record(&mut tour, script::TIME, &[5]);
        for _ in 0..requests.len() {
            script::record(&mut tour, script::PEER, &[]);
        }
        script::record(&mut tour, script::RAW, &requests[0]);
        script::record(&mut tour, script::EAP_TLS, &[0]);
        script::record(
            &mut tour,
            script::PEER | script::NO_MESSAGE_AUTHENTICATOR,
            &[],
        );
        script::record(
            &mut tour,
            script::ATTRS,
            &[33, 4, 1, 2, 3, 4, 79, 5, 2, 1, 0, 5, 1],
        );
        script::record(&mut tour, script::PEER, &[]);
        script::record(&mut tour, script::PEER_CORRUPT, &[0, 20, 0xff, 0x01]);
        script::record(&mut tour, script::TIME, &[61]);
        script::record(&mut tour, script::PEER, &[]);
        seeds.add("handle_datagram", tour);
        // Unfinished TLS state for the lax client (no Message-Authenticator required).
        let mut lax = vec![script::header(
            case.tls13,
            false,
            case.fragment,
            case.mtu,
            true,
        )];
        lax.extend_from_slice(&live[1..]);
        script::record(&mut lax, script::ATTRS, &[1, 4, b'u', b's', b'e', b'r']);
        script::record(
            &mut lax,
            script::ATTRS | script::NO_MESSAGE_AUTHENTICATOR,
            &[33, 2, 0, 0],
        );
        seeds.add("handle_datagram", lax);
    }
}

/// Writes the seed corpus: `cargo test --test corpus_replay -- --ignored generate_seed_corpus`.
/// Output goes to `$SEED_CORPUS_DIR/<target>/` (default: testbed/fuzz/corpus), one file per
/// distinct input, named by its MD5.
#[test]
#[ignore = "writes files: run by hand to regenerate the seed corpus"]
fn generate_seed_corpus() {
    let cases = [
        (false, "ecdsa", 1, 0, true),
        (true, "ecdsa", 1, 0, true),
        (false, "rsa", 2, 2, true),
        (true, "rsa", 2, 2, true),
        (false, "ecdsa", 3, 3, true),
        (true, "ecdsa", 0, 1, true),
        (true, "untrusted", 1, 0, false),
        (false, "expired", 1, 0, false),
    ];
    let mut seeds = Seeds::default();
    for (i, &(tls13, cert, fragment, mtu, accepted)) in cases.iter().enumerate() {
        let case = Case {
            tls13,
            cert,
            fragment,
            mtu,
            accepted,
        };
        conversation(&case, 1 + i as u64, &mut seeds);
    }
    let out = std::env::var_os("SEED_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| fuzz_dir().join("corpus"));
    for (target, inputs) in &seeds.0 {
        let dir = out.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for input in inputs {
            let name: String = Md5::digest(input)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            std::fs::write(dir.join(format!("seed-{name}")), input).unwrap();
        }
        println!("{target}: {} seeds in {}", inputs.len(), dir.display());
    }
}
