//! CRLs that fetch themselves (`tls.crl_url`, `tls.crl_from_certificates`) against the real
//! binary, with a scripted HTTP server on 127.0.0.1 in the test: a revoked client is refused
//! once the fetched CRL arrives (in-process supplicant and eapol_test); each bad answer — 404,
//! an HTML page, a CRL signed by another key, an endless body, a server that never answers —
//! keeps the last good CRL and counts its result in `certradius_crl_fetch_total`; a restart with
//! the URL dead starts from the disk cache; a CA's CRL Distribution Point is followed; a refetch
//! is conditional and a 304 keeps the cached CRL.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certradius::eap::{self, EapPacket, TlsFrame};
use certradius::radius::{Code, Packet};
use certradius_testkit::peer::{self, Conversation, Nas, Next, Outcome, Supplicant};
use common::metrics::{metrics_addr, sample, scrape};
use common::{SECRET, Server, random16};

/// Now, in rcgen's time type (std durations added to it: no direct dependency on `time`).
macro_rules! now_utc {
    () => {
        rcgen::date_time_ymd(1970, 1, 1)
            + std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
    };
}

/// What the scripted server answers on a path.
#[derive(Clone)]
enum Reply {
    Body(Vec<u8>),
    Status(u16),
    Html,
    /// 200 with a body that goes on for 1 GB (close-delimited).
    Endless,
    /// Accepts, reads the request, never answers.
    Hang,
    /// 200 with this body, its ETag and a Last-Modified; 304 to a request whose If-None-Match
    /// names the ETag.
    Conditional {
        body: Vec<u8>,
        etag: String,
    },
}

/// A tiny HTTP/1.1 server on 127.0.0.1 port 0, stopped when dropped.
struct PkiHttp {
    addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    endless_sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    /// 304 answers sent.
    not_modified: Arc<AtomicU64>,
}

impl PkiHttp {
    fn start() -> PkiHttp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let endless_sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let not_modified = Arc::new(AtomicU64::new(0));
        let (r, e, s, n, m) = (
            routes.clone(),
            endless_sent.clone(),
            stop.clone(),
            requests.clone(),
            not_modified.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (r, e, s, n, m) = (r.clone(), e.clone(), s.clone(), n.clone(), m.clone());
                std::thread::spawn(move || serve(conn, &r, &e, &s, (&n, &m)));
            }
        });
        PkiHttp {
            addr,
            routes,
            endless_sent,
            stop,
            requests,
            not_modified,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_string(), reply);
    }
}

impl Drop for PkiHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag and closes the listener.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(
    mut conn: TcpStream,
    routes: &Mutex<HashMap<String, Reply>>,
    endless_sent: &AtomicU64,
    stop: &AtomicBool,
    (requests, not_modified): (&AtomicU64, &AtomicU64),
) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    requests.fetch_add(1, Ordering::SeqCst);
    let text = String::from_utf8_lossy(&head);
    let path = text.split(' ').nth(1).unwrap_or("/").to_string();
    let reply = routes.lock().unwrap().get(&path).cloned();
    let respond = |conn: &mut TcpStream, status: &str, ctype: &str, body: &[u8]| {
        let _ = write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = conn.write_all(body);
    };
    match reply {
        None | Some(Reply::Status(404)) => {
            respond(&mut conn, "404 Not Found", "text/plain", b"no such CRL\n")
        }
        Some(Reply::Status(code)) => respond(&mut conn, &format!("{code} X"), "text/plain", b""),
        Some(Reply::Body(b)) => respond(&mut conn, "200 OK", "application/pkix-crl", &b),
        Some(Reply::Html) => respond(
            &mut conn,
            "200 OK",
            "text/html",
            b"<html><body><h1>Captive portal</h1>Please log in.</body></html>\n",
        ),
        Some(Reply::Endless) => {
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nConnection: close\r\n\r\n",
            );
            let chunk = vec![0x30u8; 64 * 1024];
            let mut sent: u64 = 0;
            while sent < 1 << 30 && !stop.load(Ordering::SeqCst) {
                if conn.write_all(&chunk).is_err() {
                    break;
                }
                sent += chunk.len() as u64;
                endless_sent.store(sent, Ordering::SeqCst);
            }
        }
        Some(Reply::Conditional { body, etag }) => {
            let asks_for = text
                .lines()
                .find_map(|l| {
                    l.strip_prefix("if-none-match: ")
                        .or(l.strip_prefix("If-None-Match: "))
                })
                .map(str::trim);
            if asks_for == Some(etag.as_str()) {
                not_modified.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    conn,
                    "HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n"
                );
            } else {
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nETag: {etag}\r\n\
                     Last-Modified: Sun, 06 Dec 2026 04:00:00 GMT\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(&body);
            }
        }
        Some(Reply::Hang) => {
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(30) && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn pki() -> PathBuf {
    common::pki("crl_fetch")
}

/// A server with the root's and the sub-intermediate's CRLs as files and the intermediate's
/// fetched from `url`; `[metrics]` on; the state directory is `state`.
fn start(dir: &Path, state: &Path, name: &str, url: &str) -> Server {
    start_urls(dir, state, name, &[url])
}

/// The same with several `crl_url` sources.
fn start_urls(dir: &Path, state: &Path, name: &str, urls: &[&str]) -> Server {
    let pki = pki();
    let urls = urls
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let cfg = common::write_config(
        dir,
        &pki,
        name,
        &format!(
            "crl_file = [\"{}\", \"{}\"]\ncrl_url = [{urls}]\ncrl_refresh_secs = 1\n",
            pki.join("ca.crl.pem").display(),
            pki.join("sub-intermediate.crl.pem").display()
        ),
        "[metrics]\nlisten = \"127.0.0.1:0\"\n",
    );
    // The intermediates in ca_file too, as operators list them: a fetched CRL is verified
    // against its issuer, which must be known.
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        &format!("ca_file = \"{}/ca.pem\"", pki.display()),
        &format!(
            "ca_file = [\"{p}/ca.pem\", \"{p}/intermediate.pem\", \"{p}/sub-intermediate.pem\"]",
            p = pki.display()
        ),
    );
    std::fs::write(&cfg, text).unwrap();
    Server::start_with_env(
        &cfg,
        &dir.join(format!("{name}.log")),
        &[("STATE_DIRECTORY", state.to_str().unwrap())],
    )
}

fn exchange(s: &UdpSocket, to: SocketAddr, packet: &[u8]) -> Vec<u8> {
    for _ in 0..5 {
        s.send_to(packet, to).unwrap();
        let mut buf = vec![0u8; 4096];
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            return buf[..n].to_vec();
        }
    }
    panic!("no reply after 5 tries");
}

fn conversation_with(cert: &Path, key: &Path) -> Conversation {
    let cfg =
        peer::client_config(&pki().join("ca.pem"), cert, key, &[&rustls::version::TLS13]).unwrap();
    let sup = Supplicant::new(cfg, "radius.certradius.test", b"x", 1400).unwrap();
    Conversation::new(sup, Nas::new(SECRET.as_bytes()))
}

/// One whole conversation with the test PKI's `client-<name>` certificate: true when accepted.
fn accepted(server: &Server, name: &str) -> bool {
    let pki = pki();
    accepted_with(
        server,
        &pki.join(format!("client-{name}.pem")),
        &pki.join(format!("client-{name}.key")),
    )
}

/// A TLS alert from the server aborts the supplicant's rustls; it then answers with an empty
/// EAP-TLS response, as a supplicant does (RFC 5216 §2.1.3), and the server ends with
/// Access-Reject.
fn accepted_with(server: &Server, cert: &Path, key: &Path) -> bool {
    let mut conv = conversation_with(cert, key);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut packet = conv.start(random16());
    for _ in 0..50 {
        let reply = exchange(&s, server.addr, &packet);
        match conv.on_reply(&reply, random16()) {
            Ok(Next::Send(p)) => packet = p,
            Ok(Next::Done(o)) => {
                return matches!(
                    *o,
                    Outcome::Accepted {
                        keys_match: true,
                        ..
                    }
                );
            }
            Err(_) => {
                let decoded = Packet::decode(&reply).unwrap();
                if decoded.code() == Code::AccessReject {
                    return false;
                }
                let eap = decoded.eap_message().unwrap();
                let id = EapPacket::decode(&eap).unwrap().identifier;
                let ack = eap::tls_response(id, &TlsFrame::ack());
                let last = exchange(&s, server.addr, &conv.nas.access_request(&ack, random16()));
                assert_eq!(Packet::decode(&last).unwrap().code(), Code::AccessReject);
                return false;
            }
        }
    }
    panic!("conversation did not end");
}

fn fetches(server: &Server, result: &str) -> f64 {
    let body = scrape(metrics_addr(server));
    sample(
        &body,
        &format!("certradius_crl_fetch_total{{result=\"{result}\"}}"),
    )
}

/// Waits (at most `within`) until `what` holds.
fn wait(server: &Server, within: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(
            t0.elapsed() < within,
            "{what}: not within {within:?}\nlog:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until `result` was counted at least `n` times.
fn wait_count(server: &Server, result: &str, n: f64, within: Duration) {
    wait(
        server,
        within,
        &format!("crl fetch {result} >= {n}"),
        || fetches(server, result) >= n,
    );
}

fn pem(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// The intermediate's CRL with the intermediate's name as issuer but signed by the untrusted
/// CA's key.
fn forged_crl() -> Vec<u8> {
    let pki = pki();
    let key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(pki.join("untrusted-ca.key")).unwrap())
            .unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(
        &std::fs::read_to_string(pki.join("intermediate.pem")).unwrap(),
        key,
    )
    .unwrap();
    let now = now_utc!();
    let params = rcgen::CertificateRevocationListParams {
        this_update: now - Duration::from_secs(3600),
        next_update: now + Duration::from_secs(30 * 86400),
        crl_number: rcgen::SerialNumber::from_slice(&[9]),
        issuing_distribution_point: None,
        revoked_certs: Vec::new(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    params
        .signed_by(&issuer)
        .unwrap()
        .pem()
        .unwrap()
        .into_bytes()
}

/// VmHWM (peak resident memory) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn fetched_crl_refuses_the_revoked_client_and_bad_answers_keep_the_last_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let pki = pki();
    let http = PkiHttp::start();
    http.set(
        "/intermediate.crl",
        Reply::Body(pem(&pki.join("intermediate-empty.crl.pem"))),
    );
    let url = http.url("/intermediate.crl");
    let server = start(dir.path(), &state, "fetch", &url);
    wait_count(&server, "ok", 1.0, Duration::from_secs(15));
    // The empty CRL is in force once its cache file is seen by the watcher (within 2 s).
    wait(
        &server,
        Duration::from_secs(10),
        "empty CRL in force",
        || accepted(&server, "revoked"),
    );

    // The CRL that revokes the client is published: refused once fetched.
    http.set(
        "/intermediate.crl",
        Reply::Body(pem(&pki.join("intermediate.crl.pem"))),
    );
    wait(
        &server,
        Duration::from_secs(15),
        "revocation in force",
        || !accepted(&server, "revoked"),
    );
    assert!(server.log_text().contains("reason=cert_revoked "));
    assert!(accepted(&server, "ecdsa"), "a good client is accepted");

    // Each bad answer: counted under its result, the revocation stays in force.
    let bad: [(&str, Reply); 3] = [
        ("http_error", Reply::Status(404)),
        ("invalid", Reply::Html),
        ("wrong_issuer", Reply::Body(forged_crl())),
    ];
    for (result, reply) in bad {
        let before = fetches(&server, result);
        http.set("/intermediate.crl", reply);
        wait_count(&server, result, before + 1.0, Duration::from_secs(15));
        assert!(
            !accepted(&server, "revoked"),
            "{result}: last good CRL kept"
        );
        assert!(accepted(&server, "ecdsa"), "{result}: good client accepted");
    }
    let log = server.log_text();
    assert!(
        log.contains("result=\"http_error\"") || log.contains("result=http_error"),
        "{log}"
    );
    assert!(log.contains("not signed by its key"), "{log}");

    // A 1 GB body: the read stops at the limit, memory stays bounded.
    http.set("/intermediate.crl", Reply::Endless);
    wait_count(&server, "too_large", 1.0, Duration::from_secs(30));
    http.set("/intermediate.crl", Reply::Status(404));
    let sent = http.endless_sent.load(Ordering::SeqCst);
    let peak = peak_rss_kib(server.child.id());
    eprintln!(
        "endless body: {} MiB sent before the server stopped reading; server peak RSS {} MiB",
        sent >> 20,
        peak >> 10
    );
    assert!(
        sent < 256 << 20,
        "the fetch did not stop at the limit: {sent} bytes"
    );
    assert!(peak < 400 << 10, "peak RSS {peak} KiB");
    assert!(!accepted(&server, "revoked"));

    // A server that accepts and never answers: the fetch ends at its time limit, and others
    // authenticate meanwhile.
    let before = fetches(&server, "timeout");
    http.set("/intermediate.crl", Reply::Hang);
    let asked = http.requests.load(Ordering::SeqCst);
    wait(&server, Duration::from_secs(10), "hanging request", || {
        http.requests.load(Ordering::SeqCst) > asked
    });
    assert!(
        accepted(&server, "ecdsa"),
        "authentication during a hanging fetch"
    );
    assert!(!accepted(&server, "revoked"));
    wait_count(&server, "timeout", before + 1.0, Duration::from_secs(30));

    // Restart with the URL dead: the cached CRL is in force from the start.
    drop(server);
    drop(http);
    let server = start(dir.path(), &state, "restart", &url);
    assert!(
        !accepted(&server, "revoked"),
        "cached CRL in force after restart\n{}",
        server.log_text()
    );
    assert!(accepted(&server, "ecdsa"));
    wait_count(&server, "error", 1.0, Duration::from_secs(15));
    assert!(
        !accepted(&server, "revoked"),
        "still refused after the failed fetch"
    );
    let check = Command::new(env!("CARGO_BIN_EXE_certradius"))
        .arg("check")
        .arg("--config")
        .arg(dir.path().join("restart.toml"))
        .env("STATE_DIRECTORY", &state)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(out.contains("Fetched CRLs"), "{out}");
    assert!(out.contains("cached: "), "{out}");
}

/// A CA that publishes rarely is not downloaded every `crl_refresh_secs`: the refetch carries
/// the ETag and a 304 keeps the cached CRL in force, counted as `not_modified`; a new CRL (new
/// ETag) is downloaded and put in force; with its cache file gone, the fetch is unconditional.
#[test]
fn a_refetch_is_conditional_and_a_304_keeps_the_cached_crl() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let pki = pki();
    let http = PkiHttp::start();
    let revoking = Reply::Conditional {
        body: pem(&pki.join("intermediate.crl.pem")),
        etag: "\"v1\"".into(),
    };
    http.set("/intermediate.crl", revoking);
    let url = http.url("/intermediate.crl");
    let server = start(dir.path(), &state, "conditional", &url);
    wait_count(&server, "ok", 1.0, Duration::from_secs(15));
    wait(
        &server,
        Duration::from_secs(10),
        "revocation in force",
        || !accepted(&server, "revoked"),
    );

    // Refetched every second: each time a 304, and the CRL stays in force.
    wait_count(&server, "not_modified", 2.0, Duration::from_secs(15));
    assert!(http.not_modified.load(Ordering::SeqCst) >= 2);
    assert_eq!(fetches(&server, "ok"), 1.0, "downloaded once");
    assert!(
        !accepted(&server, "revoked"),
        "the cached CRL stays in force"
    );
    assert!(accepted(&server, "ecdsa"));

    // The CA publishes a new CRL (new ETag): downloaded, verified, in force.
    http.set(
        "/intermediate.crl",
        Reply::Conditional {
            body: pem(&pki.join("intermediate-empty.crl.pem")),
            etag: "\"v2\"".into(),
        },
    );
    wait_count(&server, "ok", 2.0, Duration::from_secs(15));
    wait(
        &server,
        Duration::from_secs(10),
        "the new CRL in force",
        || accepted(&server, "revoked"),
    );

    // The cache emptied by hand: the next fetch downloads the body again instead of asking
    // "changed since?" for a file that is no longer there.
    let cache = std::fs::read_dir(state.join("crl-cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "crl"))
        .collect::<Vec<_>>();
    assert_eq!(cache.len(), 1, "{cache:?}");
    std::fs::remove_file(&cache[0]).unwrap();
    let ok = fetches(&server, "ok");
    wait_count(&server, "ok", ok + 1.0, Duration::from_secs(15));
    assert!(cache[0].is_file(), "the cache file is written again");
}

/// Sources are fetched side by side: one that accepts and never answers (until the 10 s fetch
/// limit) does not hold up the next one, whose CRL is in force meanwhile.
#[test]
fn a_hanging_source_does_not_hold_up_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let pki = pki();
    let http = PkiHttp::start();
    http.set("/hang.crl", Reply::Hang);
    http.set(
        "/intermediate.crl",
        Reply::Body(pem(&pki.join("intermediate.crl.pem"))),
    );
    let (hang, good) = (http.url("/hang.crl"), http.url("/intermediate.crl"));
    let server = start_urls(dir.path(), &state, "parallel", &[&hang, &good]);
    let t0 = Instant::now();
    // The fetch limit is 10 s: one after the other, the good CRL would come after it.
    wait_count(&server, "ok", 1.0, Duration::from_secs(6));
    assert_eq!(
        fetches(&server, "timeout"),
        0.0,
        "the hanging fetch is still open"
    );
    eprintln!(
        "good CRL fetched {:?} after start, the other source hanging",
        t0.elapsed()
    );
    wait(
        &server,
        Duration::from_secs(10),
        "revocation in force",
        || !accepted(&server, "revoked"),
    );
    wait_count(&server, "timeout", 1.0, Duration::from_secs(20));
}

#[test]
fn crl_from_certificates_follows_the_distribution_point_of_a_ca() {
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
        DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
        RevocationReason, RevokedCertParams, SerialNumber,
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let http = PkiHttp::start();
    let now = now_utc!();

    // A root whose CDP points at the scripted server, and two clients under it.
    let root_key = KeyPair::generate().unwrap();
    let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
    root.distinguished_name
        .push(DnType::CommonName, "CDP Test Root");
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec![
            "ldap:///CN=CDP%20Test%20Root,CN=cdp,DC=example?certificateRevocationList".into(),
            http.url("/root.crl"),
        ],
    }];
    root.not_before = now - Duration::from_secs(86400);
    root.not_after = now + Duration::from_secs(30 * 86400);
    let root_cert = root.self_signed(&root_key).unwrap();
    let issuer = Issuer::new(root, root_key);
    let leaf = |name: &str, serial: u8| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, format!("{name}@certradius.test"));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.serial_number = Some(SerialNumber::from_slice(&[serial]));
        p.not_before = now - Duration::from_secs(86400);
        p.not_after = now + Duration::from_secs(30 * 86400);
        let cert = p.signed_by(&key, &issuer).unwrap();
        let cert_path = dir.path().join(format!("{name}.pem"));
        let key_path = dir.path().join(format!("{name}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    };
    let good = leaf("carol", 7);
    let revoked = leaf("dave", 8);
    let crl = CertificateRevocationListParams {
        this_update: now - Duration::from_secs(3600),
        next_update: now + Duration::from_secs(7 * 86400),
        crl_number: SerialNumber::from_slice(&[1]),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from_slice(&[8]),
            revocation_time: now - Duration::from_secs(3600),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .unwrap();
    // Not published yet: 404 until the first assertions are done.
    http.set("/root.crl", Reply::Status(404));
    let root_path = dir.path().join("cdp-root.pem");
    std::fs::write(&root_path, root_cert.pem()).unwrap();

    let pki = pki();
    let cfg = dir.path().join("cdp.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[[client]]\nname = \"loopback\"\n\
             address = \"127.0.0.1\"\nsecret = \"{SECRET}\"\n\n[tls]\n\
             certificate_file = \"{p}/server.pem\"\nprivate_key_file = \"{p}/server.key\"\n\
             ca_file = \"{root}\"\ncrl_from_certificates = true\ncrl_refresh_secs = 1\n\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n",
            p = pki.display(),
            root = root_path.display()
        ),
    )
    .unwrap();
    let server = Server::start_with_env(
        &cfg,
        &dir.path().join("cdp.log"),
        &[("STATE_DIRECTORY", state.to_str().unwrap())],
    );
    // Until the CRL is fetched, nobody is accepted: revocation is checked, and unknown.
    wait_count(&server, "http_error", 1.0, Duration::from_secs(15));
    assert!(!accepted_with(&server, &good.0, &good.1));
    assert!(server.log_text().contains("reason=revocation_unknown "));
    // DER this time: whatever the server sends.
    http.set("/root.crl", Reply::Body(crl.der().to_vec()));
    wait_count(&server, "ok", 1.0, Duration::from_secs(15));
    wait(&server, Duration::from_secs(10), "CDP CRL in force", || {
        accepted_with(&server, &good.0, &good.1)
    });
    assert!(
        !accepted_with(&server, &revoked.0, &revoked.1),
        "{}",
        server.log_text()
    );
    assert!(server.log_text().contains("reason=cert_revoked "));
    let log = server.log_text();
    assert!(
        log.contains("needs the [directory] section"),
        "the ldap:// point is skipped with a clear line\n{log}"
    );
    assert_eq!(
        log.matches("needs the [directory] section").count(),
        1,
        "{log}"
    );
}

fn eapol_conf(name: &str, dir: &Path) -> PathBuf {
    let conf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("testbed/eapol_test/{name}.conf"));
    let text = std::fs::read_to_string(conf)
        .unwrap()
        .replace("testbed/pki/", &format!("{}/", pki().display()));
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, text).unwrap();
    path
}

/// eapol_test (bounded by its own `-t 15`): true when it authenticated.
fn eapol_test(conf: &Path, server: &Server) -> bool {
    Command::new("eapol_test")
        .arg("-c")
        .arg(conf)
        .arg("-a")
        .arg(server.addr.ip().to_string())
        .arg("-p")
        .arg(server.addr.port().to_string())
        .arg("-s")
        .arg(SECRET)
        .arg("-t")
        .arg("15")
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn eapol_test_is_refused_once_the_fetched_crl_revokes_its_certificate() {
    if !common::require_tool("eapol_test", "apt-get install eapoltest") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let pki = pki();
    let http = PkiHttp::start();
    http.set(
        "/i.crl",
        Reply::Body(pem(&pki.join("intermediate-empty.crl.pem"))),
    );
    let server = start(dir.path(), &state, "eapol", &http.url("/i.crl"));
    let conf = eapol_conf("fail-revoked", dir.path());
    wait(
        &server,
        Duration::from_secs(15),
        "empty CRL fetched",
        || eapol_test(&conf, &server),
    );
    http.set(
        "/i.crl",
        Reply::Body(pem(&pki.join("intermediate.crl.pem"))),
    );
    wait(
        &server,
        Duration::from_secs(20),
        "fetched revocation",
        || !eapol_test(&conf, &server),
    );
    assert!(server.log_text().contains("reason=cert_revoked "));
    assert!(eapol_test(&eapol_conf("tls13", dir.path()), &server));
}

/// GET `path` on the `[health]` listener the server logged: (status, body).
fn health_get(server: &Server, path: &str) -> (u16, String) {
    server.wait_for_log("health: serving http://", Duration::from_secs(10));
    let addr: SocketAddr = server
        .log_text()
        .lines()
        .find_map(|l| l.split("health: serving http://").nth(1))
        .and_then(|r| r.split('/').next())
        .expect("a health line in the log")
        .parse()
        .unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.to_string(),
    )
}

#[test]
fn readyz_follows_the_fetched_crl() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let pki = pki();
    let http = PkiHttp::start();
    http.set("/i.crl", Reply::Status(404));
    let url = http.url("/i.crl");
    let server = start(dir.path(), &state, "ready", &url);
    let cfg = dir.path().join("ready.toml");
    let text = std::fs::read_to_string(&cfg).unwrap() + "\n[health]\nlisten = \"127.0.0.1:0\"\n";
    std::fs::write(&cfg, text).unwrap();
    drop(server);
    let log = dir.path().join("ready2.log");
    let server =
        Server::start_with_env(&cfg, &log, &[("STATE_DIRECTORY", state.to_str().unwrap())]);
    wait(
        &server,
        Duration::from_secs(15),
        "503 naming the URL",
        || {
            let (code, body) = health_get(&server, "/readyz");
            code == 503 && body.contains("no CRL fetched yet") && body.contains("/i.crl")
        },
    );
    http.set(
        "/i.crl",
        Reply::Body(pem(&pki.join("intermediate-expired.crl.pem"))),
    );
    wait(
        &server,
        Duration::from_secs(15),
        "503 past nextUpdate",
        || {
            let (code, body) = health_get(&server, "/readyz");
            code == 503 && body.contains("crl: ") && body.contains("past its nextUpdate")
        },
    );
    http.set(
        "/i.crl",
        Reply::Body(pem(&pki.join("intermediate.crl.pem"))),
    );
    wait(
        &server,
        Duration::from_secs(15),
        "200 with a fresh CRL",
        || health_get(&server, "/readyz").0 == 200,
    );
}

#[test]
fn an_intermediate_seen_in_a_client_chain_verifies_its_fetched_crl_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let pki = pki();
    let http = PkiHttp::start();
    http.set(
        "/i.crl",
        Reply::Body(pem(&pki.join("intermediate.crl.pem"))),
    );
    let url = http.url("/i.crl");
    // ca_file is the root only: the intermediate is known from client chains alone.
    let cfg = common::write_config(
        dir.path(),
        &pki,
        "seen",
        &format!(
            "crl_file = [\"{}\", \"{}\"]\ncrl_url = \"{url}\"\ncrl_refresh_secs = 1\n",
            pki.join("ca.crl.pem").display(),
            pki.join("sub-intermediate.crl.pem").display()
        ),
        "[metrics]\nlisten = \"127.0.0.1:0\"\n",
    );
    let env = [("STATE_DIRECTORY", state.to_str().unwrap())];
    let server = Server::start_with_env(&cfg, &dir.path().join("seen.log"), &env);
    // Its issuer unknown, the CRL is refused.
    wait_count(&server, "wrong_issuer", 1.0, Duration::from_secs(15));
    // A client presents the intermediate (refused: its CRL is not loaded yet).
    assert!(!accepted(&server, "ecdsa"));
    assert!(server.log_text().contains("reason=revocation_unknown "));
    // The CRL now verifies against it, and is put in force.
    wait_count(&server, "ok", 1.0, Duration::from_secs(15));
    wait(&server, Duration::from_secs(10), "CRL in force", || {
        accepted(&server, "ecdsa")
    });
    assert!(!accepted(&server, "revoked"));
    assert!(server.log_text().contains("reason=cert_revoked "));
    wait(
        &server,
        Duration::from_secs(10),
        "intermediate kept",
        || state.join("crl-cache/intermediates.pem").exists(),
    );
    // After a restart with the URL dead, the cached CRL verifies against the kept intermediate.
    drop(server);
    drop(http);
    let server = Server::start_with_env(&cfg, &dir.path().join("seen2.log"), &env);
    assert!(!accepted(&server, "revoked"), "{}", server.log_text());
    assert!(server.log_text().contains("reason=cert_revoked "));
    assert!(accepted(&server, "ecdsa"));
}

#[test]
fn crl_from_certificates_follows_the_distribution_point_of_an_intermediate_seen_in_a_chain() {
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
        DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
        RevocationReason, RevokedCertParams, SerialNumber,
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let http = PkiHttp::start();
    let now = now_utc!();
    let ca = |name: &str, cdp: String| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.crl_distribution_points = vec![CrlDistributionPoint { uris: vec![cdp] }];
        p.not_before = now - Duration::from_secs(86400);
        p.not_after = now + Duration::from_secs(30 * 86400);
        p
    };
    let crl = |issuer: &Issuer<'_, KeyPair>, revoked: &[u8]| {
        CertificateRevocationListParams {
            this_update: now - Duration::from_secs(3600),
            next_update: now + Duration::from_secs(7 * 86400),
            crl_number: SerialNumber::from_slice(&[1]),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&[*s]),
                    revocation_time: now - Duration::from_secs(3600),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(issuer)
        .unwrap()
        .pem()
        .unwrap()
        .into_bytes()
    };
    let root_key = KeyPair::generate().unwrap();
    let root_params = ca("CDP Root 2", http.url("/root.crl"));
    let root_cert = root_params.self_signed(&root_key).unwrap();
    let root = Issuer::new(root_params, root_key);
    let int_key = KeyPair::generate().unwrap();
    let int_params = ca("CDP Intermediate", http.url("/int.crl"));
    let int_cert = int_params.signed_by(&int_key, &root).unwrap();
    let int = Issuer::new(int_params, int_key);
    let leaf = |name: &str, serial: u8| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, format!("{name}@certradius.test"));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.serial_number = Some(SerialNumber::from_slice(&[serial]));
        p.not_before = now - Duration::from_secs(86400);
        p.not_after = now + Duration::from_secs(30 * 86400);
        let cert = p.signed_by(&key, &int).unwrap();
        let cert_path = dir.path().join(format!("{name}.pem"));
        let key_path = dir.path().join(format!("{name}.key"));
        // The chain as a supplicant sends it: leaf, then the intermediate.
        std::fs::write(&cert_path, cert.pem() + &int_cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    };
    let good = leaf("frank", 10);
    let revoked = leaf("erin", 9);
    http.set("/root.crl", Reply::Body(crl(&root, &[])));
    http.set("/int.crl", Reply::Body(crl(&int, &[9])));
    let root_path = dir.path().join("cdp-root2.pem");
    std::fs::write(&root_path, root_cert.pem()).unwrap();
    let pki = pki();
    let cfg = dir.path().join("cdp2.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[[client]]\nname = \"loopback\"\n\
             address = \"127.0.0.1\"\nsecret = \"{SECRET}\"\n\n[tls]\n\
             certificate_file = \"{p}/server.pem\"\nprivate_key_file = \"{p}/server.key\"\n\
             ca_file = \"{root}\"\ncrl_from_certificates = true\ncrl_refresh_secs = 1\n\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n",
            p = pki.display(),
            root = root_path.display()
        ),
    )
    .unwrap();
    let server = Server::start_with_env(
        &cfg,
        &dir.path().join("cdp2.log"),
        &[("STATE_DIRECTORY", state.to_str().unwrap())],
    );
    // The root's CRL comes from the root's CDP; the intermediate's CDP is not known yet.
    wait_count(&server, "ok", 1.0, Duration::from_secs(15));
    // A client presents the intermediate: refused (no CRL of it yet), but now it is known.
    wait(
        &server,
        Duration::from_secs(10),
        "revocation_unknown",
        || {
            !accepted_with(&server, &good.0, &good.1)
                && server.log_text().contains("reason=revocation_unknown ")
        },
    );
    wait(
        &server,
        Duration::from_secs(15),
        "intermediate's CRL in force",
        || accepted_with(&server, &good.0, &good.1),
    );
    assert!(
        !accepted_with(&server, &revoked.0, &revoked.1),
        "{}",
        server.log_text()
    );
    assert!(server.log_text().contains("reason=cert_revoked "));
}
