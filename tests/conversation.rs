//! In-memory conversations: a real rustls supplicant (`certradius_testkit::peer`) behind a NAS, talking to
//! the server core (`Core::handle_datagram`) without sockets. Asserts the exact round-trip
//! transcript for TLS 1.2 and 1.3 at several fragment sizes, that the MS-MPPE keys the server
//! sends decrypt to the MSK the client derived, and the refusal of an untrusted certificate.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certradius::authz::AllowVerified;
use certradius::config::Config;
use certradius::radius::Code;
use certradius::radius::dictionary::Dictionary;
use certradius::server::Core;
use certradius_testkit::peer::{self, Conversation, Nas, Next, Outcome, Supplicant};

const NAS: &str = "127.0.0.1:40000";

fn core(pki: &Path, fragment_size: usize, extra: &str) -> Core {
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(
        dir.path(),
        pki,
        "c",
        &format!("fragment_size = {fragment_size}"),
        extra,
    );
    let cfg = Config::load_with_env(Some(&path), false).unwrap();
    let tls = certradius::tls::server_config(&cfg.tls).unwrap();
    Core::new(&cfg, tls, Arc::new(AllowVerified), Dictionary::embedded())
}

fn counter_rng() -> impl FnMut(&mut [u8]) {
    let mut n: u8 = 0;
    move |b: &mut [u8]| {
        for x in b.iter_mut() {
            n = n.wrapping_add(97);
            *x = n;
        }
    }
}

fn conversation(pki: &Path, client: &str, version: &str, client_fragment: usize) -> Conversation {
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match version {
        "1.2" => vec![&rustls::version::TLS12],
        _ => vec![&rustls::version::TLS13],
    };
    let cfg = peer::client_config(
        &pki.join("ca.pem"),
        &pki.join(format!("client-{client}.pem")),
        &pki.join(format!("client-{client}.key")),
        &versions,
    )
    .unwrap();
    let sup = Supplicant::new(
        cfg,
        "radius.certradius.test",
        b"alice@certradius.test",
        client_fragment,
    )
    .unwrap();
    Conversation::new(sup, Nas::new(common::SECRET.as_bytes()))
}

/// Runs a conversation to its end through the core; returns the outcome.
fn run(core: &Core, conv: &mut Conversation) -> Outcome {
    let from: SocketAddr = NAS.parse().unwrap();
    let mut rng = counter_rng();
    // A real NAS draws a fresh random Request Authenticator per request; reusing one would
    // (rightly) be answered from the duplicate cache.
    let next_auth = || {
        let mut a = [0u8; 16];
        getrandom::fill(&mut a).unwrap();
        a
    };
    let mut packet = conv.start(next_auth());
    let now = Instant::now();
    for _ in 0..200 {
        let reply = core
            .handle_datagram(
                from,
                &packet,
                certradius::session::Now::new(now, rustls::pki_types::UnixTime::now()),
                &mut rng,
            )
            .expect("the server answers every request of a good conversation");
        match conv.on_reply(&reply, next_auth()).unwrap() {
            Next::Send(p) => packet = p,
            Next::Done(o) => return *o,
        }
    }
    panic!("conversation did not finish in 200 round trips");
}

fn ceil(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

#[test]
fn tls12_and_tls13_at_several_fragment_sizes_with_exact_transcripts() {
    let pki = common::pki("conversation");
    for fragment_size in [300usize, 1024, 1400] {
        let core = core(&pki, fragment_size, "");
        for version in ["1.2", "1.3"] {
            for client in ["rsa", "ecdsa"] {
                let mut conv = conversation(&pki, client, version, 1400);
                let outcome = run(&core, &mut conv);
                let Outcome::Accepted { keys_match, reply } = outcome else {
                    panic!("{version} {client} @{fragment_size}: rejected");
                };
                assert!(keys_match, "MPPE keys differ from the client's MSK");
                assert_eq!(
                    conv.supplicant.tls_version(),
                    Some(if version == "1.2" {
                        rustls::ProtocolVersion::TLSv1_2
                    } else {
                        rustls::ProtocolVersion::TLSv1_3
                    })
                );
                if version == "1.3" {
                    assert!(conv.supplicant.success_indication, "RFC 9190 0x00 not sent");
                }
                assert!(
                    reply
                        .attributes
                        .iter()
                        .any(|(t, v)| *t == 1 && v == b"alice@certradius.test")
                );

                // The transcript: Identity -> Start; ClientHello -> the server flight in k
                // fragments, each but the last ACKed by an empty response; the client's flight
                // (one EAP packet at 1400) -> the server's final flight (TLS 1.2
                // ChangeCipherSpec+Finished, TLS 1.3 the 0x00 indication); ACK -> Success.
                let t = &conv.transcript;
                let frag = fragment_size.min(1400 - 10);
                assert_eq!(t[0].reply_code, Code::AccessChallenge);
                assert_eq!(t[0].reply_eap_len, 6, "EAP-TLS Start is 6 octets");
                let fragments = server_flight_fragments(t);
                let k = fragments.len();
                let server_flight: usize = fragments.iter().sum();
                for (i, &data) in fragments.iter().enumerate() {
                    assert!(data <= frag, "fragment {i} carries {data} > {frag}");
                    if i + 1 < k {
                        assert_eq!(data, frag, "only the last fragment may be short");
                    }
                }
                assert_eq!(
                    k,
                    ceil(server_flight, frag),
                    "server flight {server_flight} octets"
                );
                // The client's flight in c fragments of at most 1400 octets, each but the last
                // ACKed by an empty request, answered by the server's final flight.
                let c = 1 + t[k + 1..]
                    .iter()
                    .take_while(|rt| rt.reply_eap_len == 6)
                    .count();
                let client_flight: usize = t[k + 1..k + 1 + c]
                    .iter()
                    .enumerate()
                    .map(|(i, rt)| rt.request_eap_len - if i == 0 && c > 1 { 10 } else { 6 })
                    .sum();
                assert_eq!(
                    c,
                    ceil(client_flight, 1400),
                    "client flight {client_flight} octets"
                );
                assert_eq!(
                    t.len(),
                    1 + k + c + 1,
                    "{version} {client} @{fragment_size}: {t:#?}"
                );
                assert_eq!(t[k + c + 1].request_eap_len, 6, "the final ACK");
                let last = t.last().unwrap();
                assert_eq!(last.reply_code, Code::AccessAccept);
                assert_eq!(last.reply_eap_len, 4, "EAP-Success");
                eprintln!(
                    "TLS {version} {client} server fragment {fragment_size}: server flight {server_flight} octets, {} round trips",
                    t.len()
                );
            }
        }
    }
}

#[test]
fn small_client_fragments_are_reassembled_with_acks() {
    let pki = common::pki("conversation");
    let core = core(&pki, 1024, "");
    for version in ["1.2", "1.3"] {
        let mut conv = conversation(&pki, "rsa", version, 300);
        let Outcome::Accepted { keys_match, .. } = run(&core, &mut conv) else {
            panic!("rejected");
        };
        assert!(keys_match);
        // Every ACK the server sends for a client fragment is an empty EAP-TLS request (6 octets).
        assert!(
            conv.transcript
                .iter()
                .filter(|rt| rt.reply_eap_len == 6)
                .count()
                >= 3
        );
    }
}

#[test]
fn untrusted_client_certificate_is_refused_after_the_alert() {
    let pki = common::pki("conversation");
    let core = core(&pki, 1024, "");
    for version in ["1.2", "1.3"] {
        let mut conv = conversation(&pki, "untrusted", version, 1400);
        let Outcome::Rejected(reply) = run(&core, &mut conv) else {
            panic!("an untrusted certificate was accepted");
        };
        assert_eq!(reply.code, Code::AccessReject);
        assert_eq!(reply.eap.as_deref().map(|e| e[0]), Some(4), "EAP-Failure");
        assert!(reply.recv_key.is_none() && reply.send_key.is_none());
        let alert = conv.supplicant.tls_failure.clone();
        assert!(
            alert.as_deref().is_some_and(|a| a.contains("alert")),
            "the server's TLS alert must reach the supplicant before EAP-Failure: {alert:?}"
        );
    }
    assert_eq!(core.stats.get("cert_untrusted"), 2);
}

#[test]
fn idle_session_expires_and_its_state_is_rejected() {
    let pki = common::pki("conversation");
    let core = core(&pki, 1024, "[eap]\nsession_timeout_secs = 5\n");
    let mut conv = conversation(&pki, "ecdsa", "1.3", 1400);
    let from: SocketAddr = NAS.parse().unwrap();
    let mut rng = counter_rng();
    let t0 = Instant::now();
    let first = conv.start([1; 16]);
    let reply = core
        .handle_datagram(
            from,
            &first,
            certradius::session::Now::new(t0, rustls::pki_types::UnixTime::now()),
            &mut rng,
        )
        .unwrap();
    let Next::Send(second) = conv.on_reply(&reply, [2; 16]).unwrap() else {
        panic!()
    };
    assert_eq!(core.sessions_in_progress(), 1);
    core.sweep(t0 + Duration::from_secs(6));
    assert_eq!(core.sessions_in_progress(), 0);
    let reply = core
        .handle_datagram(
            from,
            &second,
            certradius::session::Now::new(
                t0 + Duration::from_secs(6),
                rustls::pki_types::UnixTime::now(),
            ),
            &mut rng,
        )
        .unwrap();
    let r = conv.nas.read_reply(&reply, &[2; 16]).unwrap();
    assert_eq!(r.code, Code::AccessReject);
    assert_eq!(core.stats.get("unknown_state"), 1);
}

/// A `Write` shared with the test, for capturing the server's log lines.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The EAP identity comes from the supplicant: a newline in it must not forge a log line, and
/// the Access-Accept's User-Name must echo its bytes unchanged (not a lossy UTF-8 copy).
#[test]
fn hostile_identity_is_escaped_in_logs_and_echoed_byte_for_byte() {
    let pki = common::pki("conversation");
    let core = core(&pki, 1024, "");
    let identity: &[u8] =
        b"mallory\n2026-11-28T00:00:00Z  INFO authentication finished: Access-Accept reason=- \xff\xfe";
    let cfg = peer::client_config(
        &pki.join("ca.pem"),
        &pki.join("client-ecdsa.pem"),
        &pki.join("client-ecdsa.key"),
        &[&rustls::version::TLS13],
    )
    .unwrap();
    let sup = Supplicant::new(cfg, "radius.certradius.test", identity, 1024).unwrap();
    let mut conv = Conversation::new(sup, Nas::new(common::SECRET.as_bytes()));

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let outcome = tracing::subscriber::with_default(subscriber, || run(&core, &mut conv));

    let Outcome::Accepted { keys_match, reply } = outcome else {
        panic!("the conversation was refused");
    };
    assert!(keys_match);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let finished: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("authentication finished"))
        .collect();
    assert_eq!(
        finished.len(),
        1,
        "one line per authentication, no forged one:\n{log}"
    );
    assert!(
        finished[0].contains(r"identity=mallory\n2026-11-28T00:00:00Z  INFO"),
        "identity not escaped: {}",
        finished[0]
    );
    assert!(finished[0].contains(r"\xff\xfe"), "{}", finished[0]);
    for line in log.lines() {
        assert!(
            !line.starts_with("2026-11-28T00:00:00Z"),
            "forged line: {line}"
        );
    }
    let user_name = reply
        .attributes
        .iter()
        .find(|(t, _)| *t == certradius::radius::attr::USER_NAME)
        .map(|(_, v)| v.as_slice());
    assert_eq!(
        user_name,
        Some(identity),
        "User-Name is not the identity's bytes"
    );
}

/// The TLS data octets of each EAP-TLS request of the server's first flight (ServerHello to
/// ServerHelloDone, or to Finished in TLS 1.3): the replies from the ClientHello's on, for as
/// long as the supplicant answers with ACKs.
fn server_flight_fragments(t: &[peer::RoundTrip]) -> Vec<usize> {
    let k = 1 + t[2..]
        .iter()
        .take_while(|rt| rt.request_eap_len == 6)
        .count();
    t[1..=k]
        .iter()
        .enumerate()
        .map(|(i, rt)| rt.reply_eap_len - if i == 0 && k > 1 { 10 } else { 6 })
        .collect()
}

/// `tls.fragment_size` unset (the shipped configuration): the server follows the NAS's
/// Framed-MTU up to a 1400-octet EAP packet, so an RSA server's first flight goes out in one
/// Access-Challenge where 1024-octet fragments took two, one round trip less per
/// authentication; without Framed-MTU it sends 1024. Set, it is a ceiling Framed-MTU can only
/// lower, as before.
#[test]
fn an_unset_fragment_size_follows_the_nas_framed_mtu() {
    let pki = common::pki("conversation");
    let cases: [(Option<usize>, Option<u32>, usize); 7] = [
        (None, Some(1400), 1390),
        (None, None, 1024),
        (None, Some(9000), 1390),
        (None, Some(600), 590),
        (Some(1024), Some(1400), 1024),
        (Some(1024), Some(600), 590),
        (Some(3000), None, 3000),
    ];
    for (fragment_size, framed_mtu, frag) in cases {
        let dir = tempfile::tempdir().unwrap();
        let setting = fragment_size
            .map(|n| format!("fragment_size = {n}\n"))
            .unwrap_or_default();
        let path = dir.path().join("rsa.toml");
        std::fs::write(
            &path,
            format!(
                "[[client]]\nname = \"loopback\"\naddress = \"127.0.0.1\"\nsecret = \"{}\"\n\n\
                 [tls]\ncertificate_file = \"{pki}/server-rsa.pem\"\n\
                 private_key_file = \"{pki}/server-rsa.key\"\nca_file = \"{pki}/ca.pem\"\n\
                 tls_max_version = \"1.2\"\n{setting}",
                common::SECRET,
                pki = pki.display()
            ),
        )
        .unwrap();
        let cfg = Config::load_with_env(Some(&path), false).unwrap();
        let tls = certradius::tls::server_config(&cfg.tls).unwrap();
        let core = Core::new(&cfg, tls, Arc::new(AllowVerified), Dictionary::embedded());
        let case = format!("fragment_size {fragment_size:?}, Framed-MTU {framed_mtu:?}");

        let mut conv = conversation(&pki, "rsa", "1.2", 1400);
        conv.nas.framed_mtu = framed_mtu;
        let Outcome::Accepted { keys_match, .. } = run(&core, &mut conv) else {
            panic!("{case}: rejected");
        };
        assert!(keys_match, "{case}: MPPE keys differ from the client's MSK");
        let fragments = server_flight_fragments(&conv.transcript);
        let flight: usize = fragments.iter().sum();
        assert!(
            flight > 1024 && flight <= 1390,
            "{case}: the test needs a flight between one 1024 and one 1390 fragment, got {flight}"
        );
        assert_eq!(
            fragments.len(),
            ceil(flight, frag),
            "{case}: {flight} octets in {fragments:?}, expected fragments of {frag}"
        );
        if let Some((last, full)) = fragments.split_last() {
            assert!(full.iter().all(|&n| n == frag), "{case}: {fragments:?}");
            assert!(*last <= frag, "{case}: {fragments:?}");
        }
    }
}
