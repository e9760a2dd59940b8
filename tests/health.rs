//! `[health]` and `server.when_unready` against the real binary: `/readyz` answers 200 with a
//! good configuration and 503 naming the CRL once the CRL in force is past nextUpdate (the
//! file replaced on disk, the watcher reloads), `/healthz` stays 200, the `certradius_ready`
//! gauge and the change counter follow; under `when_unready = "silent"` an Access-Request and a
//! Status-Server go unanswered while not ready (accounting is still answered and recorded), and
//! both are answered again once a fresh CRL is put in place; with a database configured,
//! `/readyz` names it while it is stopped and is 200 again once it is back.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use certradius::radius::{Code, Packet, PacketBuilder, SharedSecret, attr};
use certradius_testkit::acct;
use common::Server;
use common::metrics::{metrics_addr, sample, scrape};

/// The health address the server logged.
fn health_addr(server: &Server) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(a) = server
            .log_text()
            .lines()
            .find_map(|l| l.split("health: serving http://").nth(1))
            .and_then(|r| r.split('/').next())
        {
            return a.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no health line in the log");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// GET `path`: (status code, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
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
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    if path != "/nope" {
        assert!(head.contains("application/json"), "{head}");
    }
    (code, body.to_string())
}

/// Polls `/readyz` until it answers `code` (at most 15 s: the watcher's period and the
/// monitor's second); returns the body.
fn wait_readyz(addr: SocketAddr, server: &Server, code: u16) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (got, body) = get(addr, "/readyz");
        if got == code {
            return serde_json::from_str(&body).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "/readyz did not answer {code} within 15 s: {got} {body}\nlog:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A config with `[health]`, `[metrics]`, accounting to a file, `crl` as the CRL file, and
/// `server.when_unready = "silent"` when `silent`.
fn config(dir: &Path, crl: &Path, silent: bool) -> std::path::PathBuf {
    let pki = common::pki("health");
    let path = common::write_config(
        dir,
        &pki,
        "health",
        &format!("crl_file = \"{}\"", crl.display()),
        &format!(
            "[health]\nlisten = \"127.0.0.1:0\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n\
             [accounting]\nlisten = [\"127.0.0.1:0\"]\nfile = \"{}\"\n",
            dir.join("acct.jsonl").display()
        ),
    );
    if silent {
        let listen = "listen = [\"127.0.0.1:0\"]\n";
        let text = std::fs::read_to_string(&path).unwrap().replacen(
            listen,
            &format!("{listen}when_unready = \"silent\"\n"),
            1,
        );
        std::fs::write(&path, text).unwrap();
    }
    path
}

/// Puts `from` (a file of the test PKI) in place of `live` the way publishers do: rename over.
fn replace(live: &Path, from: &str) {
    let pki = common::pki("health");
    let tmp = live.with_extension("tmp");
    std::fs::copy(pki.join(from), &tmp).unwrap();
    std::fs::rename(&tmp, live).unwrap();
}

#[test]
fn readyz_is_200_when_ready_and_503_naming_the_crl_once_it_is_past_next_update() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.crl.pem");
    replace(&live, "intermediate.crl.pem");
    let cfg = config(dir.path(), &live, false);
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_certradius"))
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        text.contains(
            "health http://127.0.0.1:0/healthz, http://127.0.0.1:0/readyz (when unready: Serve)"
        ),
        "{text}"
    );
    let server = Server::start(&cfg, &dir.path().join("server.log"));
    let health = health_addr(&server);
    let metrics = metrics_addr(&server);

    let ready = wait_readyz(health, &server, 200);
    assert_eq!(ready, serde_json::json!({"ready": true, "failing": []}));
    assert_eq!(get(health, "/healthz").0, 200);
    assert_eq!(get(health, "/nope").0, 404);
    assert_eq!(sample(&scrape(metrics), "certradius_ready"), 1.0);

    replace(&live, "intermediate-expired.crl.pem");
    let unready = wait_readyz(health, &server, 503);
    assert_eq!(unready["ready"], false, "{unready}");
    let failing: Vec<&str> = unready["failing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(failing.len(), 1, "{unready}");
    assert!(failing[0].starts_with("crl: "), "{unready}");
    assert!(failing[0].contains("nextUpdate"), "{unready}");
    // The process still serves.
    assert_eq!(get(health, "/healthz").0, 200);
    let body = scrape(metrics);
    assert_eq!(sample(&body, "certradius_ready"), 0.0, "{body}");
    assert_eq!(
        sample(&body, "certradius_readiness_changes_total"),
        1.0,
        "{body}"
    );
    server.wait_for_log("not ready: crl: ", Duration::from_secs(5));
    // `serve` (the default): Status-Server is still answered while not ready.
    let sock = nas_socket();
    assert!(status_server(&sock, server.addr, 7).is_some());
}

fn nas_socket() -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    sock
}

fn exchange(sock: &UdpSocket, to: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    sock.send_to(packet, to).unwrap();
    let mut buf = [0u8; 4096];
    sock.recv_from(&mut buf)
        .ok()
        .map(|(n, _)| buf[..n].to_vec())
}

/// A Status-Server (RFC 5997); Some(the reply's code) when answered.
fn status_server(sock: &UdpSocket, to: SocketAddr, id: u8) -> Option<Code> {
    let secret = SharedSecret::new(common::SECRET.as_bytes().to_vec());
    let request = PacketBuilder::new(Code::StatusServer, id)
        .encode_request(&secret, common::random16())
        .unwrap();
    let reply = exchange(sock, to, &request)?;
    Some(Packet::decode(&reply).unwrap().code())
}

/// The first Access-Request of an EAP-TLS conversation; Some(the reply's code) when answered.
fn access_request(sock: &UdpSocket, to: SocketAddr) -> Option<Code> {
    let pki = common::pki("health");
    let mut conversation = common::conversation(&pki, "rsa", common::SECRET);
    let request = conversation.start(common::random16());
    let reply = exchange(sock, to, &request)?;
    Some(Packet::decode(&reply).unwrap().code())
}

fn accounting_answered(sock: &UdpSocket, to: SocketAddr, id: u8) -> bool {
    let secret = common::SECRET.as_bytes();
    let p = acct::request(
        secret,
        id,
        &[
            (attr::ACCT_STATUS_TYPE, &1u32.to_be_bytes()),
            (attr::ACCT_SESSION_ID, format!("S-{id}").as_bytes()),
            (attr::USER_NAME, b"alice@certradius.test"),
        ],
    );
    exchange(sock, to, &p).is_some_and(|r| acct::is_response_to(&r, &p, secret))
}

#[test]
fn silent_while_unready_leaves_access_requests_and_status_server_unanswered_until_ready() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.crl.pem");
    replace(&live, "intermediate-expired.crl.pem");
    let cfg = config(dir.path(), &live, true);
    let server = Server::start(&cfg, &dir.path().join("server.log"));
    let health = health_addr(&server);
    let metrics = metrics_addr(&server);
    let unready = wait_readyz(health, &server, 503);
    assert!(
        unready["failing"][0].as_str().unwrap().starts_with("crl: "),
        "{unready}"
    );

    let sock = nas_socket();
    assert_eq!(
        access_request(&sock, server.addr),
        None,
        "answered while unready"
    );
    assert_eq!(
        status_server(&sock, server.addr, 1),
        None,
        "answered while unready"
    );
    // Accounting is still recorded and answered: nothing is lost while the NAS fails over.
    assert!(accounting_answered(&sock, server.acct.unwrap(), 1));
    let recorded = std::fs::read_to_string(dir.path().join("acct.jsonl")).unwrap();
    assert_eq!(recorded.lines().count(), 1, "{recorded}");
    let body = scrape(metrics);
    assert_eq!(
        sample(
            &body,
            "certradius_packets_dropped_total{reason=\"not_ready\"}"
        ),
        2.0,
        "{body}"
    );
    server.wait_for_log(
        "go unanswered so the NAS fails over",
        Duration::from_secs(5),
    );

    // A fresh CRL: the watcher reloads, the monitor sees it, and the server answers again.
    replace(&live, "intermediate.crl.pem");
    let ready = wait_readyz(health, &server, 200);
    assert_eq!(ready["ready"], true, "{ready}");
    server.wait_for_log("ready: every check passes again", Duration::from_secs(5));
    assert_eq!(
        status_server(&sock, server.addr, 2),
        Some(Code::AccessAccept)
    );
    assert_eq!(
        access_request(&sock, server.addr),
        Some(Code::AccessChallenge)
    );
    let body = scrape(metrics);
    assert_eq!(sample(&body, "certradius_ready"), 1.0, "{body}");
    // Not ready at start (a change from the initial "ready"), then ready again.
    assert_eq!(
        sample(&body, "certradius_readiness_changes_total"),
        2.0,
        "{body}"
    );
}

/// With `accounting.database_url`, the database is part of readiness: stopped, `/readyz`
/// names it; started again, the writer reconnects and the server is ready again.
#[test]
fn readyz_names_the_database_while_it_is_down() {
    if common::pg::skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pg = common::pg::Pg::new(dir.path());
    let pki = common::pki("health");
    let cfg = common::write_config(
        dir.path(),
        &pki,
        "db",
        "",
        &format!(
            "[health]\nlisten = \"127.0.0.1:0\"\n[accounting]\nlisten = [\"127.0.0.1:0\"]\n\
             database_url = \"{}\"\nauto_migrate = true\nqueue_dir = \"{}\"\n",
            pg.url(),
            dir.path().join("queue").display()
        ),
    );
    let server = Server::start(&cfg, &dir.path().join("server.log"));
    let health = health_addr(&server);
    wait_readyz(health, &server, 200);
    pg.stop();
    let unready = wait_readyz(health, &server, 503);
    let failing = unready["failing"][0].as_str().unwrap();
    assert!(failing.starts_with("database: "), "{unready}");
    pg.start();
    wait_readyz(health, &server, 200);
}
