//! The real binary over loopback UDP: what a NAS and an attacker on the network see.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::random16;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use certradius::radius::{Code, Packet, PacketBuilder, SharedSecret, attr};
use certradius_testkit::peer::{Conversation, Next, Outcome};
use common::{SECRET, Server};

fn socket(bind: &str) -> UdpSocket {
    let s = UdpSocket::bind(bind).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    s
}

fn exchange(s: &UdpSocket, to: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    s.send_to(packet, to).unwrap();
    let mut buf = vec![0u8; 4096];
    match s.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

fn conversation(pki: &Path, client: &str) -> Conversation {
    common::conversation(pki, client, SECRET)
}

/// A whole EAP-TLS authentication over UDP; retransmits a lost reply like a NAS would.
fn authenticate(server: &Server, pki: &Path) -> Outcome {
    authenticate_patiently(server, pki, 5)
}

/// The same, with `tries` transmissions of each request (700 ms apart) before giving up.
fn authenticate_patiently(server: &Server, pki: &Path, tries: usize) -> Outcome {
    authenticate_at(server.addr, pki, tries)
}

/// The same against one of the server's listening addresses.
fn authenticate_at(addr: SocketAddr, pki: &Path, tries: usize) -> Outcome {
    let s = socket("127.0.0.1:0");
    let mut conv = conversation(pki, "ecdsa");
    let mut packet = conv.start(random16());
    for _ in 0..50 {
        let mut reply = None;
        for _ in 0..tries {
            reply = exchange(&s, addr, &packet);
            if reply.is_some() {
                break;
            }
        }
        let reply = reply.unwrap_or_else(|| panic!("no reply after {tries} tries"));
        match conv.on_reply(&reply, random16()).unwrap() {
            Next::Send(p) => packet = p,
            Next::Done(o) => return *o,
        }
    }
    panic!("no end")
}

fn start(name: &str, extra: &str) -> (Server, tempfile::TempDir, std::path::PathBuf) {
    let pki = common::pki("udp");
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write_config(dir.path(), &pki, name, "", extra);
    let server = Server::start(&cfg, &dir.path().join(format!("{name}.log")));
    (server, dir, pki)
}

fn identity_request(secret: &[u8], authenticator: [u8; 16], with_ma: bool) -> Vec<u8> {
    let mut b = PacketBuilder::new(Code::AccessRequest, 7);
    b.attr(attr::USER_NAME, b"bob").unwrap();
    b.eap_message(&certradius::eap::packet::encode(
        certradius::eap::EapCode::Response,
        1,
        Some(certradius::eap::EapType::Identity),
        b"bob",
    ));
    let p = b
        .encode_request(&SharedSecret::new(secret.to_vec()), authenticator)
        .unwrap();
    if with_ma {
        return p;
    }
    strip_message_authenticator(&p)
}

/// Removes the Message-Authenticator attribute (first after the header) and fixes Length.
fn strip_message_authenticator(p: &[u8]) -> Vec<u8> {
    assert_eq!(p[20], attr::MESSAGE_AUTHENTICATOR);
    let mut out = p[..20].to_vec();
    out.extend_from_slice(&p[38..]);
    let len = out.len() as u16;
    out[2..4].copy_from_slice(&len.to_be_bytes());
    out
}

#[test]
fn good_authentication_over_udp_ipv4() {
    let (server, _d, pki) = start("good", "");
    let Outcome::Accepted { keys_match, .. } = authenticate(&server, &pki) else {
        panic!("rejected:\n{}", server.log_text())
    };
    assert!(keys_match);
}

#[test]
fn ipv6_listener_serves_an_ipv6_client() {
    // The NAS's socket first: without an IPv6 loopback the server could not listen either.
    let s = UdpSocket::bind("[::1]:0");
    let why = s
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    if !common::require(
        s.is_ok(),
        "an IPv6 loopback (::1)",
        &format!("binding [::1]:0 failed: {why}"),
    ) {
        return;
    }
    let s = s.unwrap();
    let pki = common::pki("udp");
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write_config(dir.path(), &pki, "v6", "", "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("listen = [\"127.0.0.1:0\"]", "listen = [\"[::1]:0\"]")
        .replace("address = \"127.0.0.1\"", "address = \"::1\"");
    std::fs::write(&cfg, text).unwrap();
    let server = Server::start(&cfg, &dir.path().join("v6.log"));
    assert!(server.addr.is_ipv6());
    s.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let reply = exchange(
        &s,
        server.addr,
        &identity_request(SECRET.as_bytes(), random16(), true),
    )
    .expect("IPv6 NAS gets an answer");
    assert_eq!(
        Packet::decode(&reply).unwrap().code(),
        Code::AccessChallenge
    );
}

#[test]
fn unknown_nas_bad_authenticator_and_missing_message_authenticator_are_ignored() {
    let (server, _d, pki) = start("ignored", "");
    // From 127.0.0.2: no [[client]] for it.
    let stranger = socket("127.0.0.2:0");
    assert!(
        exchange(
            &stranger,
            server.addr,
            &identity_request(SECRET.as_bytes(), random16(), true)
        )
        .is_none()
    );
    let s = socket("127.0.0.1:0");
    // Wrong shared secret: the Message-Authenticator does not verify.
    assert!(
        exchange(
            &s,
            server.addr,
            &identity_request(b"wrong", random16(), true)
        )
        .is_none()
    );
    // EAP-Message without Message-Authenticator (RFC 3579 §3.2).
    assert!(
        exchange(
            &s,
            server.addr,
            &identity_request(SECRET.as_bytes(), random16(), false)
        )
        .is_none()
    );
    // Garbage of every length.
    for n in [0usize, 1, 19, 20, 21, 100, 4096] {
        let junk: Vec<u8> = (0..n).map(|i| (i * 7 + 1) as u8).collect();
        assert!(exchange(&s, server.addr, &junk).is_none());
    }
    // The server is still alive and serving.
    let Outcome::Accepted { keys_match, .. } = authenticate(&server, &pki) else {
        panic!("rejected")
    };
    assert!(keys_match);
    let log = server.log_text();
    for reason in [
        "unknown_client",
        "bad_message_authenticator",
        "missing_message_authenticator",
        "malformed_packet",
    ] {
        assert!(log.contains(reason), "{reason} not logged:\n{log}");
    }
}

#[test]
fn retransmission_gets_a_byte_identical_reply() {
    let (server, _d, _pki) = start("dup", "");
    let s = socket("127.0.0.1:0");
    let req = identity_request(SECRET.as_bytes(), random16(), true);
    let a = exchange(&s, server.addr, &req).unwrap();
    let b = exchange(&s, server.addr, &req).unwrap();
    assert_eq!(a, b, "a retransmission must get the cached reply");
    // A new request (new authenticator) starts a new conversation: a different State.
    let c = exchange(
        &s,
        server.addr,
        &identity_request(SECRET.as_bytes(), random16(), true),
    )
    .unwrap();
    let state = |r: &[u8]| {
        Packet::decode(r)
            .unwrap()
            .first(attr::STATE)
            .unwrap()
            .to_vec()
    };
    assert_ne!(state(&a), state(&c));
}

#[test]
fn status_server_is_answered_with_access_accept() {
    let (server, _d, _pki) = start("status", "");
    let s = socket("127.0.0.1:0");
    let secret = SharedSecret::new(SECRET.as_bytes().to_vec());
    let auth = random16();
    let req = PacketBuilder::new(Code::StatusServer, 42)
        .encode_request(&secret, auth)
        .unwrap();
    let reply = exchange(&s, server.addr, &req).expect("Status-Server answered");
    let p = Packet::decode(&reply).unwrap();
    assert_eq!(p.code(), Code::AccessAccept);
    assert_eq!(p.identifier(), 42);
    certradius::radius::auth::verify_response_authenticator(&p, &secret, &auth).unwrap();
    certradius::radius::auth::verify_message_authenticator(&p, &secret, Some(&auth)).unwrap();
    // Without Message-Authenticator: ignored (RFC 5997 §3).
    let bare = strip_message_authenticator(&req);
    assert!(exchange(&s, server.addr, &bare).is_none());
}

#[test]
fn expired_session_state_is_rejected() {
    let (server, _d, pki) = start("expiry", "[eap]\nsession_timeout_secs = 1\n");
    let s = socket("127.0.0.1:0");
    let mut conv = conversation(&pki, "ecdsa");
    let first = conv.start(random16());
    let reply = exchange(&s, server.addr, &first).unwrap();
    let auth = random16();
    let Next::Send(second) = conv.on_reply(&reply, auth).unwrap() else {
        panic!()
    };
    std::thread::sleep(Duration::from_millis(2500));
    let reply = exchange(&s, server.addr, &second).expect("a reject, not silence");
    let r = conv.nas.read_reply(&reply, &auth).unwrap();
    assert_eq!(r.code, Code::AccessReject);
    assert_eq!(r.eap.as_deref().map(|e| e[0]), Some(4), "EAP-Failure");
}

/// Two listening sockets and a burst of whole authentications on one: more than the receive
/// threads process inline, so the workers take the sockets while requests queue up and give
/// them back when they run out of work. Whatever order the threads finish in, both sockets keep
/// being answered, during the burst and after it.
#[test]
fn a_burst_on_one_socket_leaves_both_sockets_answered() {
    let second = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let pki = common::pki("udp");
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write_config(dir.path(), &pki, "two", "", "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "listen = [\"127.0.0.1:0\"]",
        &format!("listen = [\"127.0.0.1:0\", \"{second}\"]"),
    );
    std::fs::write(&cfg, text).unwrap();
    let server = Server::start(&cfg, &dir.path().join("two.log"));
    for round in 0..2 {
        let burst: Vec<_> = (0..16)
            .map(|n| {
                let (pki, addr) = (pki.clone(), if n % 4 == 0 { second } else { server.addr });
                std::thread::spawn(move || authenticate_at(addr, &pki, 5))
            })
            .collect();
        for (n, supplicant) in burst.into_iter().enumerate() {
            let outcome = supplicant.join().unwrap();
            assert!(
                matches!(
                    outcome,
                    Outcome::Accepted {
                        keys_match: true,
                        ..
                    }
                ),
                "round {round}, supplicant {n}: {outcome:?}"
            );
        }
        // The burst is over: the sockets are the receive threads' again.
        for addr in [second, server.addr] {
            let outcome = authenticate_at(addr, &pki, 3);
            assert!(
                matches!(
                    outcome,
                    Outcome::Accepted {
                        keys_match: true,
                        ..
                    }
                ),
                "round {round}, after the burst, on {addr}: {outcome:?}"
            );
        }
    }
}

#[test]
fn garbage_flood_does_not_stop_a_concurrent_authentication() {
    let (server, _d, pki) = start("flood", "");
    let addr = server.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut sent = 0u32;
            // Bounded: at most 50,000 packets or until the authentication is done.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && sent < 50_000 {
                let mut junk = [0u8; 64];
                getrandom::fill(&mut junk).unwrap();
                junk[0] = 1; // looks like an Access-Request
                let _ = s.send_to(&junk, addr);
                sent += 1;
            }
            sent
        })
    };
    for _ in 0..3 {
        let Outcome::Accepted { keys_match, .. } = authenticate(&server, &pki) else {
            panic!("rejected under flood")
        };
        assert!(keys_match);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = flooder.join().unwrap();
    assert!(sent > 0);
    // Rate-limited: far fewer warning lines than garbage packets.
    let warnings = server.log_text().matches("packet dropped").count();
    assert!(warnings < 20, "{warnings} warning lines for {sent} packets");
}

/// A re-authentication storm in miniature: more supplicants start at once than the server will
/// hold conversations for (`eap.max_sessions = 4`). The ones past the bound get no answer, their
/// NAS retransmits (a patient one: 30 tries, since about 4 get in per 700 ms retransmission
/// round), and every one of them ends authenticated: a storm degrades into retransmissions, never
/// into Access-Rejects (which would fail the supplicant at once).
#[test]
fn a_storm_past_the_session_bound_ends_with_everybody_authenticated() {
    let (server, _d, pki) = start("storm", "[eap]\nmax_sessions = 4\n");
    let server = std::sync::Arc::new(server);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(24));
    let supplicants: Vec<_> = (0..24)
        .map(|_| {
            let (server, pki, barrier) = (server.clone(), pki.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                authenticate_patiently(&server, &pki, 30)
            })
        })
        .collect();
    for s in supplicants {
        let Outcome::Accepted { keys_match, .. } = s.join().unwrap() else {
            panic!("a supplicant was rejected in the storm")
        };
        assert!(keys_match);
    }
    let log = server.log_text();
    assert!(
        log.contains("eap.max_sessions reached: new conversation dropped"),
        "the bound was never reached, so this test showed nothing:\n{log}"
    );
    assert!(!log.contains("outcome=\"reject\"") && !log.contains("outcome=reject"));
}
