//! Disconnect on revocation (RFC 5176) against the real binary: a session authenticated over
//! UDP gets a Class, its accounting Start echoes it, the certificate is revoked by rewriting the
//! CRL, and the NAS (a test socket that is also its CoA port) receives a Disconnect-Request signed
//! with its secret; the ACK, NAK and timeout paths are logged and counted.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use certradius::radius::coa;
use certradius::radius::{Packet, SharedSecret, attr};
use certradius_testkit::peer::{self, Conversation, Nas, Next, Outcome, Supplicant};
use common::{SECRET, Server, random16};

struct Setup {
    server: Server,
    nas: UdpSocket,
    live_crl: PathBuf,
    /// The root's CRL, copied so a test can replace it (revoking the intermediate).
    live_root_crl: PathBuf,
    pki: PathBuf,
    records: PathBuf,
    config: PathBuf,
    control: PathBuf,
    _dir: tempfile::TempDir,
}

/// A server whose one client is `nas`, a loopback socket that also takes Disconnect-Requests.
fn setup(name: &str, coa: &str) -> Setup {
    setup_with(name, coa, "")
}

/// As [`setup`], with more `[accounting]` keys.
fn setup_with(name: &str, coa: &str, accounting: &str) -> Setup {
    let pki = common::pki("disconnect");
    let dir = tempfile::tempdir().unwrap();
    let nas = UdpSocket::bind("127.0.0.1:0").unwrap();
    nas.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let coa_port = nas.local_addr().unwrap().port();
    let live_crl = dir.path().join("live.crl.pem");
    std::fs::copy(pki.join("intermediate-empty.crl.pem"), &live_crl).unwrap();
    let live_root_crl = dir.path().join("root.crl.pem");
    std::fs::copy(pki.join("ca.crl.pem"), &live_root_crl).unwrap();
    let records = dir.path().join("acct.jsonl");
    let control = dir.path().join("ctl.sock");
    let text = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[[client]]
name = "test-nas"
address = "127.0.0.1"
secret = "{SECRET}"
coa_port = {coa_port}

[tls]
certificate_file = "{pki}/server.pem"
private_key_file = "{pki}/server.key"
ca_file = "{pki}/ca.pem"
crl_file = ["{root}", "{live}", "{pki}/sub-intermediate.crl.pem"]

[accounting]
listen = ["127.0.0.1:0"]
file = "{records}"
{accounting}

[coa]
control_socket = "{control}"
{coa}
"#,
        pki = pki.display(),
        live = live_crl.display(),
        root = live_root_crl.display(),
        records = records.display(),
        control = control.display(),
    );
    let path = dir.path().join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    let server = Server::start(&path, &dir.path().join(format!("{name}.log")));
    Setup {
        server,
        nas,
        live_crl,
        live_root_crl,
        pki,
        records,
        config: path,
        control,
        _dir: dir,
    }
}

fn exchange(s: &UdpSocket, to: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    s.send_to(packet, to).unwrap();
    let mut buf = vec![0u8; 4096];
    s.recv_from(&mut buf).ok().map(|(n, _)| buf[..n].to_vec())
}

/// EAP-TLS with the certificate that the full CRL revokes; returns the Class of the Accept.
fn authenticate(s: &Setup) -> Vec<u8> {
    authenticate_outcome(s, &s.nas).unwrap_or_else(|| panic!("rejected:\n{}", s.server.log_text()))
}

/// The Class of the Access-Accept, or None on Access-Reject.
fn authenticate_outcome(s: &Setup, socket: &UdpSocket) -> Option<Vec<u8>> {
    authenticate_as(s, socket, "revoked")
}

/// The Class of the Access-Accept for `client-{name}`, or None on Access-Reject.
fn authenticate_as(s: &Setup, socket: &UdpSocket, name: &str) -> Option<Vec<u8>> {
    let cfg = peer::client_config(
        &s.pki.join("ca.pem"),
        &s.pki.join(format!("client-{name}.pem")),
        &s.pki.join(format!("client-{name}.key")),
        &[&rustls::version::TLS13],
    )
    .unwrap();
    let sup = Supplicant::new(cfg, "radius.certradius.test", b"alice", 1400).unwrap();
    let mut conv = Conversation::new(sup, Nas::new(SECRET.as_bytes()));
    let mut packet = conv.start(random16());
    for _ in 0..50 {
        let reply = (0..5)
            .find_map(|_| exchange(socket, s.server.addr, &packet))
            .expect("no reply after 5 tries");
        match conv.on_reply(&reply, random16()).unwrap() {
            Next::Send(p) => packet = p,
            Next::Done(o) => {
                let Outcome::Accepted { reply, .. } = *o else {
                    return None;
                };
                let classes: Vec<_> = reply
                    .attributes
                    .iter()
                    .filter(|(t, _)| *t == attr::CLASS)
                    .map(|(_, v)| v.clone())
                    .collect();
                assert_eq!(classes.len(), 1, "one Class in the Access-Accept");
                return Some(classes[0].clone());
            }
        }
    }
    panic!("no end")
}

/// Accounting Start for the session, carrying the Class; waits for the Accounting-Response.
fn accounting_start(s: &Setup, class: &[u8]) {
    accounting_start_to(s, s.server.acct.expect("accounting listener"), class);
}

/// As [`accounting_start`], to the accounting listener `acct` (another instance).
fn accounting_start_to(s: &Setup, acct: SocketAddr, class: &[u8]) {
    let req = certradius_testkit::acct::request(
        SECRET.as_bytes(),
        42,
        &[
            (attr::ACCT_STATUS_TYPE, &1u32.to_be_bytes()),
            (attr::ACCT_SESSION_ID, b"sess-0001"),
            (attr::USER_NAME, b"alice"),
            (attr::CALLING_STATION_ID, b"02-00-00-00-00-01"),
            (attr::NAS_IP_ADDRESS, &[127, 0, 0, 1]),
            (attr::ACCT_INTERIM_INTERVAL, &600u32.to_be_bytes()),
            (attr::CLASS, class),
        ],
    );
    let reply = (0..5)
        .find_map(|_| exchange(&s.nas, acct, &req))
        .expect("no Accounting-Response");
    assert!(certradius_testkit::acct::is_response_to(
        &reply,
        &req,
        SECRET.as_bytes()
    ));
}

/// Revokes the certificate and returns the first Disconnect-Request (within 15 s) and its sender.
fn revoke_and_receive(s: &Setup) -> (Vec<u8>, SocketAddr) {
    std::fs::copy(s.pki.join("intermediate.crl.pem"), &s.live_crl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = vec![0u8; 4096];
    while Instant::now() < deadline {
        if let Ok((n, from)) = s.nas.recv_from(&mut buf) {
            return (buf[..n].to_vec(), from);
        }
    }
    panic!("no Disconnect-Request:\n{}", s.server.log_text())
}

/// As [`revoke_and_receive`], writing the revoking CRL again (a new modification time) every
/// 2 s, the CRL watcher's period, until a Disconnect-Request comes (within 20 s).
fn revoke_until_received(s: &Setup) -> (Vec<u8>, SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = vec![0u8; 4096];
    while Instant::now() < deadline {
        std::fs::copy(s.pki.join("intermediate.crl.pem"), &s.live_crl).unwrap();
        let written = Instant::now();
        while written.elapsed() < Duration::from_secs(2) {
            if let Ok((n, from)) = s.nas.recv_from(&mut buf) {
                return (buf[..n].to_vec(), from);
            }
        }
    }
    panic!("no Disconnect-Request:\n{}", s.server.log_text())
}

fn check_request(req: &[u8]) {
    coa::verify_request(req, &SharedSecret::new(SECRET.as_bytes().to_vec()))
        .expect("Request Authenticator and Message-Authenticator verify with the NAS secret");
    let p = Packet::decode(req).unwrap();
    assert_eq!(u8::from(p.code()), coa::DISCONNECT_REQUEST);
    assert_eq!(
        p.attributes().next().unwrap().typ,
        attr::MESSAGE_AUTHENTICATOR
    );
    assert_eq!(p.first(attr::ACCT_SESSION_ID), Some(&b"sess-0001"[..]));
    assert_eq!(p.first(attr::USER_NAME), Some(&b"alice"[..]));
    assert_eq!(
        p.first(attr::CALLING_STATION_ID),
        Some(&b"02-00-00-00-00-01"[..])
    );
    assert_eq!(p.first(attr::NAS_IP_ADDRESS), Some(&[127, 0, 0, 1][..]));
    let ts = u32::from_be_bytes(p.first(attr::EVENT_TIMESTAMP).unwrap().try_into().unwrap());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(u64::from(ts).abs_diff(now) < 60, "Event-Timestamp is now");
}

fn wait_for_log(s: &Setup, needle: &str) {
    s.server.wait_for_log(needle, Duration::from_secs(10));
}

/// Stops the server gracefully and returns its final counter line.
fn counters(mut s: Setup) -> String {
    s.server.signal("TERM");
    s.server.wait_exit(Duration::from_secs(30));
    s.server.final_counters()
}

fn session(name: &str, coa: &str) -> (Setup, Vec<u8>, SocketAddr) {
    let s = setup(name, coa);
    let class = authenticate(&s);
    assert_eq!(class.len(), 16);
    assert_eq!(&class[..4], b"CRad");
    accounting_start(&s, &class);
    // The record names the certificate the session was authenticated with.
    let records = std::fs::read_to_string(&s.records).unwrap();
    assert!(
        records.contains("\"certificate_serial\"") && records.contains("\"certificate_issuer\""),
        "{records}"
    );
    let (req, from) = revoke_and_receive(&s);
    check_request(&req);
    (s, req, from)
}

/// The test NAS answers the request's sender, as RFC 5176 §2.2 says.
fn answer(s: &Setup, req: &[u8], to: SocketAddr, nak: Option<u32>) {
    let a = coa::answer(req, &SharedSecret::new(SECRET.as_bytes().to_vec()), nak).unwrap();
    s.nas.send_to(&a, to).unwrap();
}

#[test]
fn revoked_certificate_is_disconnected_and_the_ack_is_counted() {
    let (s, req, from) = session("ack", "timeout_ms = 2000\nretries = 1");
    // A forged answer (not signed with the NAS secret) is ignored and counted.
    let forged = coa::answer(&req, &SharedSecret::new(b"not-the-secret".to_vec()), None).unwrap();
    s.nas.send_to(&forged, from).unwrap();
    wait_for_log(&s, "answer to Disconnect-Request ignored");
    answer(&s, &req, from, None);
    wait_for_log(&s, "Disconnect-ACK");
    let c = counters(s);
    assert!(c.contains("disconnect_bad_answers=1"), "{c}");
    assert!(c.contains("disconnect_acks=1"), "{c}");
    assert!(c.contains("disconnect_requests=1"), "{c}");
}

/// Revoking an intermediate CA disconnects what it issued: a client whose leaf is not revoked,
/// issued by the intermediate, is live; the root's CRL is replaced by one revoking the
/// intermediate, and its session gets the same Disconnect-Request a revoked leaf gets.
#[test]
fn revoking_the_intermediate_disconnects_the_sessions_it_issued() {
    let s = setup("chain", "timeout_ms = 2000\nretries = 1");
    let class = authenticate_as(&s, &s.nas, "ecdsa")
        .unwrap_or_else(|| panic!("rejected:\n{}", s.server.log_text()));
    accounting_start(&s, &class);
    std::fs::copy(
        s.pki.join("ca-revoking-intermediate.crl.pem"),
        &s.live_root_crl,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = vec![0u8; 4096];
    let (req, from) = loop {
        assert!(
            Instant::now() < deadline,
            "no Disconnect-Request:\n{}",
            s.server.log_text()
        );
        if let Ok((n, from)) = s.nas.recv_from(&mut buf) {
            break (buf[..n].to_vec(), from);
        }
    };
    check_request(&req);
    answer(&s, &req, from, None);
    wait_for_log(&s, "Disconnect-ACK");
    let c = counters(s);
    assert!(c.contains("disconnect_acks=1"), "{c}");
}

#[test]
fn nak_with_error_cause_is_logged_and_counted() {
    let (s, req, from) = session("nak", "timeout_ms = 2000\nretries = 1");
    answer(&s, &req, from, Some(503));
    wait_for_log(&s, "Disconnect-NAK");
    assert!(s.server.log_text().contains("error_cause=503"));
    let c = counters(s);
    assert!(c.contains("disconnect_naks=1"), "{c}");
}

#[test]
fn silent_nas_gets_retransmissions_then_a_timeout() {
    let (s, first, _) = session("timeout", "timeout_ms = 200\nretries = 2");
    let mut buf = vec![0u8; 4096];
    let mut copies = 1;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && copies < 3 {
        if let Ok((n, _)) = s.nas.recv_from(&mut buf) {
            assert_eq!(&buf[..n], &first[..], "retransmitted unchanged");
            copies += 1;
        }
    }
    assert_eq!(copies, 3, "the first request and 2 retries");
    wait_for_log(&s, "timed out after 3 attempt");
    let c = counters(s);
    assert!(c.contains("disconnect_timeouts=1"), "{c}");
    assert!(c.contains("disconnect_requests=3"), "{c}");
}

fn cli(s: &Setup, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_certradius"))
        .args(args)
        .arg("--config")
        .arg(&s.config)
        .env_remove("CERTRADIUS_LOG")
        .output()
        .unwrap()
}

#[test]
fn operator_lists_sessions_and_disconnects_one_by_hand() {
    use std::os::unix::fs::PermissionsExt;
    // Revocation off: only the operator disconnects.
    let s = setup("operator", "disconnect_on_revocation = false");
    let class = authenticate(&s);
    accounting_start(&s, &class);
    let mode = std::fs::metadata(&s.control).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "control socket mode");
    let out = cli(&s, &["sessions"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("sess-0001\t"))
        .unwrap_or_else(|| panic!("session not listed:\n{text}"));
    assert!(line.contains("alice") && line.contains("CN="), "{line}");
    // The certificate revoked by CRL: nothing is sent on its own. The new CRL is in force once
    // the certificate is refused (from another port of the NAS, so no reply lands on `nas`);
    // a Disconnect-Request would be on its way by then.
    std::fs::copy(s.pki.join("intermediate.crl.pem"), &s.live_crl).unwrap();
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    other
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    assert!(
        common::wait_until(Duration::from_secs(15), || authenticate_outcome(&s, &other)
            .is_none()),
        "the rewritten CRL did not refuse the certificate within 15 s:\n{}",
        s.server.log_text()
    );
    let mut buf = vec![0u8; 4096];
    assert!(
        s.nas.recv_from(&mut buf).is_err(),
        "disconnect_on_revocation = false"
    );
    let (s, out) = std::thread::scope(|scope| {
        let cmd = scope.spawn(|| cli(&s, &["disconnect", "--session", "sess-0001"]));
        let deadline = Instant::now() + Duration::from_secs(10);
        let (req, from) = loop {
            assert!(Instant::now() < deadline, "no Disconnect-Request");
            if let Ok((n, from)) = s.nas.recv_from(&mut buf) {
                break (buf[..n].to_vec(), from);
            }
        };
        check_request(&req);
        answer(&s, &req, from, None);
        let out = cmd.join().unwrap();
        (&s, out)
    });
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && text.contains("Disconnect-ACK"),
        "{text}"
    );
    let out = cli(s, &["disconnect", "--session", "no-such"]);
    assert!(!out.status.success());
}

#[test]
fn ocsp_revoked_answer_disconnects_the_live_session() {
    let s = setup("ocsp", "timeout_ms = 2000\nretries = 1");
    let Some(r) = common::ocsp_responder(&s.pki) else {
        return;
    };
    // Authenticated while OCSP is off and the CRL does not list it.
    let class = authenticate(&s);
    accounting_start(&s, &class);
    // OCSP turned on (SIGHUP); the next authentication with the same certificate is answered
    // "revoked" by the responder, which also ends the live session.
    let mut text = std::fs::read_to_string(&s.config).unwrap();
    text.push_str(&format!("\n[ocsp]\nenable = true\nurl = \"{}\"\n", r.url));
    std::fs::write(&s.config, text).unwrap();
    s.server.signal("HUP");
    wait_for_log(&s, "configuration reloaded");
    // A second port of the same NAS, so the Disconnect-Request is not taken for a reply.
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    other
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    assert!(
        authenticate_outcome(&s, &other).is_none(),
        "revoked per OCSP must be refused"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; 4096];
    let (req, from) = loop {
        assert!(
            Instant::now() < deadline,
            "no Disconnect-Request:\n{}",
            s.server.log_text()
        );
        if let Ok((n, from)) = s.nas.recv_from(&mut buf) {
            break (buf[..n].to_vec(), from);
        }
    };
    check_request(&req);
    answer(&s, &req, from, None);
    wait_for_log(&s, "Disconnect-ACK");
    assert!(s.server.log_text().contains("certificate revoked per OCSP"));
}

/// The open sessions are in the accounting database with their certificate: a server that did
/// not see them (another instance sharing the database, or this one after a restart) still
/// disconnects them when a CRL revokes their certificate.
#[test]
fn open_sessions_in_the_database_are_disconnected_after_a_restart() {
    if common::pg::skip() {
        return;
    }
    let pg_dir = tempfile::tempdir().unwrap();
    let pg = common::pg::Pg::new(pg_dir.path());
    let extra = format!(
        "database_url = \"{}\"\nauto_migrate = true\nqueue_dir = \"{}\"",
        pg.url(),
        pg_dir.path().display()
    );
    let mut s = setup_with("db-restart", "timeout_ms = 2000\nretries = 1", &extra);
    let class = authenticate(&s);
    accounting_start(&s, &class);
    pg.wait_for(
        "SELECT acctsessionid FROM radacct WHERE acctstoptime IS NULL \
         AND certificate_serial IS NOT NULL",
        &["sess-0001"],
        20,
    );
    // The server that saw the session is gone, and its memory with it.
    s.server.child.kill().unwrap();
    s.server.child.wait().unwrap();
    let log = s.config.with_extension("second.log");
    s.server = Server::start(&s.config, &log);
    // The CRL watcher takes its first look at the files when the server starts serving, and a
    // change made before that look is its starting point, not a change: written again every
    // watcher period until the Disconnect-Request comes.
    let (req, from) = revoke_until_received(&s);
    check_request(&req);
    answer(&s, &req, from, None);
    wait_for_log(&s, "Disconnect-ACK");
}

/// Two instances share the database and the CRL: the session is authenticated and accounted on
/// the first, the second finds it in `radacct`; a revocation makes both look, and exactly one
/// sends the Disconnect-Request: the one that claims the session in the database.
#[test]
fn two_instances_on_one_database_send_one_disconnect() {
    if common::pg::skip() {
        return;
    }
    let pg_dir = tempfile::tempdir().unwrap();
    let pg = common::pg::Pg::new(pg_dir.path());
    let queue_a = pg_dir.path().join("queue-a");
    let extra = format!(
        "database_url = \"{}\"\nauto_migrate = true\nqueue_dir = \"{}\"",
        pg.url(),
        queue_a.display()
    );
    let s = setup_with("pool-a", "timeout_ms = 2000\nretries = 1", &extra);
    // The second instance: the same configuration, its own control socket and queue.
    let text = std::fs::read_to_string(&s.config)
        .unwrap()
        .replace(
            &s.control.display().to_string(),
            &s.control.with_extension("b").display().to_string(),
        )
        .replace(
            &queue_a.display().to_string(),
            &pg_dir.path().join("queue-b").display().to_string(),
        );
    let config_b = s.config.with_extension("b.toml");
    std::fs::write(&config_b, text).unwrap();
    let b = Server::start(&config_b, &s.config.with_extension("b.log"));
    let class = authenticate(&s);
    accounting_start(&s, &class);
    pg.wait_for(
        "SELECT acctsessionid FROM radacct WHERE acctstoptime IS NULL \
         AND certificate_serial IS NOT NULL",
        &["sess-0001"],
        20,
    );
    let (req, from) = revoke_and_receive(&s);
    check_request(&req);
    answer(&s, &req, from, None);
    // Three CRL watcher periods for a second Disconnect-Request, which must not come.
    let quiet = Instant::now() + Duration::from_secs(6);
    let mut buf = vec![0u8; 4096];
    while Instant::now() < quiet {
        if let Ok((n, from)) = s.nas.recv_from(&mut buf) {
            panic!(
                "a second Disconnect-Request ({n} octets from {from}):\n{}\n{}",
                s.server.log_text(),
                b.log_text()
            );
        }
    }
    assert_eq!(
        pg.query("SELECT count(*) FROM radacct WHERE disconnect_claimed_by IS NOT NULL"),
        ["1"]
    );
    let mut b = b;
    b.signal("TERM");
    b.wait_exit(Duration::from_secs(30));
    let cb = b.final_counters();
    let ca = counters(s);
    let skipped = [&ca, &cb]
        .iter()
        .filter(|c| c.contains("disconnect_claimed_elsewhere=1"))
        .count();
    let sent = [&ca, &cb]
        .iter()
        .filter(|c| c.contains("disconnect_requests=1"))
        .count();
    assert_eq!((sent, skipped), (1, 1), "A: {ca}\nB: {cb}");
}

/// An instance killed with -9 while it holds a Disconnect claim (its NAS has not answered):
/// another instance sharing the database takes the claim over once `claim_timeout_secs` has
/// passed and sends the Disconnect-Request itself.
#[test]
fn a_claim_of_a_killed_instance_is_taken_over() {
    if common::pg::skip() {
        return;
    }
    let pg_dir = tempfile::tempdir().unwrap();
    let pg = common::pg::Pg::new(pg_dir.path());
    let queue_a = pg_dir.path().join("queue-a");
    let extra = format!(
        "database_url = \"{}\"\nauto_migrate = true\nqueue_dir = \"{}\"",
        pg.url(),
        queue_a.display()
    );
    let coa = "timeout_ms = 2000\nretries = 3\nclaim_timeout_secs = 5";
    let mut s = setup_with("takeover-a", coa, &extra);
    // The second instance watches its own copy of the CRL, so it learns of the revocation only
    // once the first is dead.
    let crl_b = s.live_crl.with_extension("b.pem");
    std::fs::copy(s.pki.join("intermediate-empty.crl.pem"), &crl_b).unwrap();
    let text = std::fs::read_to_string(&s.config)
        .unwrap()
        .replace(
            &s.control.display().to_string(),
            &s.control.with_extension("b").display().to_string(),
        )
        .replace(
            &queue_a.display().to_string(),
            &pg_dir.path().join("queue-b").display().to_string(),
        )
        .replace(
            &s.live_crl.display().to_string(),
            &crl_b.display().to_string(),
        );
    let config_b = s.config.with_extension("b.toml");
    std::fs::write(&config_b, text).unwrap();
    let mut b = Server::start(&config_b, &s.config.with_extension("b.log"));
    let class = authenticate(&s);
    accounting_start(&s, &class);
    pg.wait_for(
        "SELECT acctsessionid FROM radacct WHERE acctstoptime IS NULL \
         AND certificate_serial IS NOT NULL",
        &["sess-0001"],
        20,
    );
    // The first instance claims and sends; the NAS stays silent; the instance is killed.
    let (req, _) = revoke_and_receive(&s);
    check_request(&req);
    s.server.child.kill().unwrap();
    s.server.child.wait().unwrap();
    let mut buf = vec![0u8; 4096];
    while s.nas.recv_from(&mut buf).is_ok() {}
    assert_eq!(
        pg.query("SELECT count(*) FROM radacct WHERE disconnect_claimed_by IS NOT NULL"),
        ["1"]
    );
    // The second instance sees the revocation, finds the claim held, and takes it over.
    std::fs::copy(s.pki.join("intermediate.crl.pem"), &crl_b).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (req, from) = loop {
        assert!(
            Instant::now() < deadline,
            "no Disconnect-Request from the second instance:\n{}",
            b.log_text()
        );
        if let Ok((n, from)) = s.nas.recv_from(&mut buf) {
            break (buf[..n].to_vec(), from);
        }
    };
    check_request(&req);
    answer(&s, &req, from, None);
    b.wait_for_log("Disconnect-ACK", Duration::from_secs(10));
    assert!(
        b.log_text().contains("taking over the Disconnect claim"),
        "{}",
        b.log_text()
    );
    pg.wait_for(
        "SELECT count(*) FROM radacct WHERE disconnect_claimed_at = 'infinity'",
        &["1"],
        10,
    );
    b.signal("TERM");
    b.wait_exit(Duration::from_secs(30));
}

/// A session authenticated by one instance and accounted on another: the Class is linked through
/// the database (`certradius_auth`), so its `radacct` row names the certificate, and revoking the
/// intermediate that issued it (the root's CRL) disconnects it exactly once.
#[test]
fn accounting_on_another_instance_is_linked_through_the_database() {
    if common::pg::skip() {
        return;
    }
    let pg_dir = tempfile::tempdir().unwrap();
    let pg = common::pg::Pg::new(pg_dir.path());
    let queue_a = pg_dir.path().join("queue-a");
    let extra = format!(
        "database_url = \"{}\"\nauto_migrate = true\nqueue_dir = \"{}\"",
        pg.url(),
        queue_a.display()
    );
    let s = setup_with("link-a", "timeout_ms = 2000\nretries = 1", &extra);
    let text = std::fs::read_to_string(&s.config)
        .unwrap()
        .replace(
            &s.control.display().to_string(),
            &s.control.with_extension("b").display().to_string(),
        )
        .replace(
            &queue_a.display().to_string(),
            &pg_dir.path().join("queue-b").display().to_string(),
        );
    let config_b = s.config.with_extension("b.toml");
    std::fs::write(&config_b, text).unwrap();
    let mut b = Server::start(&config_b, &s.config.with_extension("b.log"));
    let class = authenticate_as(&s, &s.nas, "ecdsa")
        .unwrap_or_else(|| panic!("rejected:\n{}", s.server.log_text()));
    let hex: String = class.iter().map(|x| format!("{x:02x}")).collect();
    pg.wait_for(
        &format!("SELECT count(*) FROM certradius_auth WHERE class = '0x{hex}'"),
        &["1"],
        20,
    );
    accounting_start_to(&s, b.acct.expect("accounting listener"), &class);
    pg.wait_for(
        "SELECT acctsessionid FROM radacct WHERE acctstoptime IS NULL \
         AND certificate_serial IS NOT NULL",
        &["sess-0001"],
        20,
    );
    std::fs::copy(
        s.pki.join("ca-revoking-intermediate.crl.pem"),
        &s.live_root_crl,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = vec![0u8; 4096];
    let (req, from) = loop {
        assert!(
            Instant::now() < deadline,
            "no Disconnect-Request:\n{}\n{}",
            s.server.log_text(),
            b.log_text()
        );
        if let Ok((n, from)) = s.nas.recv_from(&mut buf) {
            break (buf[..n].to_vec(), from);
        }
    };
    check_request(&req);
    answer(&s, &req, from, None);
    let quiet = Instant::now() + Duration::from_secs(6);
    while Instant::now() < quiet {
        if let Ok((n, from)) = s.nas.recv_from(&mut buf) {
            panic!("a second Disconnect-Request ({n} octets from {from})");
        }
    }
    b.signal("TERM");
    b.wait_exit(Duration::from_secs(30));
    let cb = b.final_counters();
    let ca = counters(s);
    let sent = [&ca, &cb]
        .iter()
        .filter(|c| c.contains("disconnect_requests=1"))
        .count();
    assert_eq!(sent, 1, "A: {ca}\nB: {cb}");
}
