//! OCSP against a real responder (`openssl ocsp` on loopback, started by the test) and the
//! real binary: good and revoked certificates, an unreachable and a silent responder (hard
//! and soft fail, bounded by the timeout, not stalling other authentications), the CRL
//! fallback, and a NAS retransmission during a lookup answered without a second lookup.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::random16;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use certradius_testkit::peer::{self, Conversation, Nas, Next, Outcome, Supplicant};
use common::{OcspResponder, SECRET, Server};

fn openssl_available() -> bool {
    common::require_tool("openssl", "apt-get install openssl")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `openssl ocsp` serving the test PKI's index with its delegated responder certificate.
fn responder(pki: &Path) -> OcspResponder {
    OcspResponder::start(pki, &[]).expect("openssl ocsp responder")
}

/// A responder that accepts connections and never answers; counts them.
fn silent_responder() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            c.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });
    (url, count)
}

fn server(pki: &Path, dir: &Path, name: &str, ocsp: &str, extra_tls: &str) -> Server {
    let cfg = common::write_config(
        dir,
        pki,
        name,
        extra_tls,
        &format!("[ocsp]\nenable = true\n{ocsp}\n"),
    );
    Server::start(&cfg, &dir.join(format!("{name}.log")))
}

/// One authentication over UDP; `retransmit` sends every request that many extra times.
fn authenticate(
    pki: &Path,
    name: &str,
    addr: SocketAddr,
    retransmit: usize,
) -> (Outcome, Duration) {
    let cfg = peer::client_config(
        &pki.join("ca.pem"),
        &pki.join(format!("client-{name}.pem")),
        &pki.join(format!("client-{name}.key")),
        &[&rustls::version::TLS13],
    )
    .unwrap();
    let sup = Supplicant::new(cfg, "radius.certradius.test", b"x", 1400).unwrap();
    let mut conv = Conversation::new(sup, Nas::new(SECRET.as_bytes()));
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t0 = Instant::now();
    let mut packet = conv.start(random16());
    loop {
        s.send_to(&packet, addr).unwrap();
        for _ in 0..retransmit {
            std::thread::sleep(Duration::from_millis(50));
            s.send_to(&packet, addr).unwrap();
        }
        // Retransmissions earn copies of earlier replies: skip those for older requests.
        let mut buf = vec![0u8; 4096];
        let n = loop {
            let (n, _) = s.recv_from(&mut buf).expect("a reply");
            if buf[1] == packet[1] {
                break n;
            }
        };
        match conv.on_reply(&buf[..n], random16()).unwrap() {
            Next::Send(p) => packet = p,
            Next::Done(o) => return (*o, t0.elapsed()),
        }
    }
}

fn accepted(o: &Outcome) -> bool {
    matches!(
        o,
        Outcome::Accepted {
            keys_match: true,
            ..
        }
    )
}

#[test]
fn good_and_revoked_with_a_real_responder() {
    if !openssl_available() {
        return;
    }
    let pki = common::pki("ocsp");
    let dir = tempfile::tempdir().unwrap();
    let r = responder(&pki);
    let srv = server(
        &pki,
        dir.path(),
        "real",
        &format!("url = \"{}\"", r.url),
        "",
    );
    assert!(
        accepted(&authenticate(&pki, "ecdsa", srv.addr, 0).0),
        "{}",
        srv.log_text()
    );
    let (o, _) = authenticate(&pki, "revoked", srv.addr, 0);
    assert!(
        matches!(o, Outcome::Rejected(_)),
        "revoked by OCSP must be refused"
    );
    let log = srv.log_text();
    assert!(log.contains("reason=cert_revoked"), "{log}");
    assert!(log.contains("OCSP: revoked"), "{log}");
}

#[test]
fn unreachable_responder_hard_fails_and_soft_fails() {
    if !openssl_available() {
        return;
    }
    let pki = common::pki("ocsp");
    let dir = tempfile::tempdir().unwrap();
    let closed = format!("http://127.0.0.1:{}/", free_port());
    let hard = server(&pki, dir.path(), "hard", &format!("url = \"{closed}\""), "");
    let (o, _) = authenticate(&pki, "ecdsa", hard.addr, 0);
    assert!(matches!(o, Outcome::Rejected(_)));
    assert!(hard.log_text().contains("reason=ocsp_unavailable"));
    let soft = server(
        &pki,
        dir.path(),
        "soft",
        &format!("url = \"{closed}\"\nsoft_fail = true"),
        "",
    );
    assert!(accepted(&authenticate(&pki, "ecdsa", soft.addr, 0).0));
}

#[test]
fn silent_responder_is_bounded_by_the_timeout_and_stalls_nobody() {
    if !openssl_available() {
        return;
    }
    let pki = common::pki("ocsp");
    let dir = tempfile::tempdir().unwrap();
    let (url, connections) = silent_responder();
    let srv = server(
        &pki,
        dir.path(),
        "silent",
        &format!("url = \"{url}\"\ntimeout_ms = 700\nsoft_fail = true"),
        "",
    );
    // Eight authentications at once: each waits for its own lookup (at most the timeout), none
    // waits for another's.
    let t0 = Instant::now();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let pki = pki.clone();
            let addr = srv.addr;
            std::thread::spawn(move || authenticate(&pki, "ecdsa", addr, 0))
        })
        .collect();
    for h in handles {
        let (o, took) = h.join().unwrap();
        assert!(
            accepted(&o),
            "soft-fail accepts when the responder is silent"
        );
        assert!(
            took < Duration::from_millis(700 + 1500),
            "one authentication took {took:?}"
        );
    }
    assert!(
        t0.elapsed() < Duration::from_millis(700 + 2500),
        "lookups ran one after another: {:?}",
        t0.elapsed()
    );
    assert_eq!(connections.load(Ordering::SeqCst), 8);
}

#[test]
fn retransmission_during_a_lookup_is_not_a_second_lookup() {
    if !openssl_available() {
        return;
    }
    let pki = common::pki("ocsp");
    let dir = tempfile::tempdir().unwrap();
    let (url, connections) = silent_responder();
    let srv = server(
        &pki,
        dir.path(),
        "retx",
        &format!("url = \"{url}\"\ntimeout_ms = 600"),
        "",
    );
    // Every request is retransmitted three times, 50 ms apart — including the one that
    // triggers the lookup.
    let (o, _) = authenticate(&pki, "ecdsa", srv.addr, 3);
    assert!(
        matches!(o, Outcome::Rejected(_)),
        "hard fail on a silent responder"
    );
    assert_eq!(connections.load(Ordering::SeqCst), 1, "exactly one lookup");
    assert!(srv.log_text().contains("reason=ocsp_unavailable"));
}

#[test]
fn ocsp_then_crl_falls_back_to_the_crl() {
    if !openssl_available() {
        return;
    }
    let pki = common::pki("ocsp");
    let dir = tempfile::tempdir().unwrap();
    let closed = format!("http://127.0.0.1:{}/", free_port());
    let crls = format!(
        "crl_file = [\"{}\", \"{}\", \"{}\"]",
        pki.join("ca.crl.pem").display(),
        pki.join("intermediate.crl.pem").display(),
        pki.join("sub-intermediate.crl.pem").display()
    );
    let srv = server(
        &pki,
        dir.path(),
        "fallback",
        &format!("url = \"{closed}\"\nmode = \"ocsp_then_crl\""),
        &crls,
    );
    assert!(
        accepted(&authenticate(&pki, "ecdsa", srv.addr, 0).0),
        "{}",
        srv.log_text()
    );
    let (o, _) = authenticate(&pki, "revoked", srv.addr, 0);
    assert!(matches!(o, Outcome::Rejected(_)));
    assert!(srv.log_text().contains("reason=cert_revoked"));
}

#[test]
fn eapol_test_is_refused_for_a_certificate_revoked_by_ocsp() {
    if !openssl_available() {
        return;
    }
    if !common::require_tool("eapol_test", "apt-get install eapoltest") {
        return;
    }
    let pki = common::pki("ocsp");
    let dir = tempfile::tempdir().unwrap();
    let r = responder(&pki);
    let srv = server(
        &pki,
        dir.path(),
        "eapol",
        &format!("url = \"{}\"", r.url),
        "",
    );
    let run = |conf: &str| {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("testbed/eapol_test/{conf}.conf")),
        )
        .unwrap()
        .replace("testbed/pki/", &format!("{}/", pki.display()));
        let path = dir.path().join(format!("{conf}.conf"));
        std::fs::write(&path, text).unwrap();
        let out = Command::new("eapol_test")
            .arg("-c")
            .arg(&path)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &srv.addr.port().to_string(),
                "-s",
                SECRET,
            ])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, out) = run("tls13");
    assert!(
        ok && out.contains("MPPE keys OK: 1  mismatch: 0"),
        "{}",
        srv.log_text()
    );
    let (ok, _) = run("fail-revoked");
    assert!(!ok);
    assert!(srv.log_text().contains("reason=cert_revoked"));
}
