//! certradius as a service, against the real binary: sd_notify(3) messages on a socket the test
//! binds, graceful drain on SIGTERM with authentications in flight, the audit log (one line per
//! authentication, also after kill -9) and JSON log lines.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use certradius_testkit::peer::{Conversation, Next, Outcome};
use common::{SECRET, Server, random16};

fn signal(server: &Server, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(server.child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    s
}

fn exchange(s: &UdpSocket, to: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    s.send_to(packet, to).unwrap();
    let mut buf = vec![0u8; 4096];
    s.recv_from(&mut buf).ok().map(|(n, _)| buf[..n].to_vec())
}

fn conversation(pki: &Path) -> Conversation {
    common::conversation(pki, "ecdsa", SECRET)
}

/// One conversation driven step by step over its own socket.
struct Auth {
    s: UdpSocket,
    conv: Conversation,
    packet: Vec<u8>,
    done: Option<Outcome>,
}

impl Auth {
    fn new(pki: &Path) -> Auth {
        let mut conv = conversation(pki);
        let packet = conv.start(random16());
        Auth {
            s: socket(),
            conv,
            packet,
            done: None,
        }
    }

    /// One round trip (retransmitting a lost reply like a NAS); false once finished.
    fn step(&mut self, to: SocketAddr) -> bool {
        if self.done.is_some() {
            return false;
        }
        let reply = (0..5)
            .find_map(|_| exchange(&self.s, to, &self.packet))
            .expect("no reply after 5 tries");
        match self.conv.on_reply(&reply, random16()).unwrap() {
            Next::Send(p) => self.packet = p,
            Next::Done(o) => self.done = Some(*o),
        }
        self.done.is_none()
    }

    fn run(mut self, to: SocketAddr) -> Outcome {
        for _ in 0..50 {
            if !self.step(to) {
                break;
            }
        }
        self.done.expect("no end")
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

fn wait_exit(server: &mut Server, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "server still running after {within:?}; log:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Next datagram on the notify socket, or panic after 10 s.
fn next_notify(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .expect("no sd_notify message within 10 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn sd_notify_ready_reloading_stopping() {
    let pki = common::pki("service");
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let cfg = common::write_config(dir.path(), &pki, "notify", "", "");
    let state_dir = dir.path().join("state");
    std::fs::create_dir(&state_dir).unwrap();
    let mut server = Server::start_with_env(
        &cfg,
        &dir.path().join("notify.log"),
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("STATE_DIRECTORY", state_dir.to_str().unwrap()),
        ],
    );
    let ready = next_notify(&sock);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(ready.contains("STATUS=listening"), "{ready}");

    signal(&server, "HUP");
    let reloading = next_notify(&sock);
    assert!(reloading.lines().any(|l| l == "RELOADING=1"), "{reloading}");
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
    assert!(usec.parse::<u64>().unwrap() > 0);
    let ready = next_notify(&sock);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");

    // Still serving after the reload.
    assert!(accepted(&Auth::new(&pki).run(server.addr)));

    signal(&server, "TERM");
    let stopping = next_notify(&sock);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping}");
    let status = wait_exit(&mut server, Duration::from_secs(10));
    assert!(status.success(), "{status:?}\n{}", server.log_text());
}

#[test]
fn sigterm_drains_authentications_in_flight_and_audits_each_once() {
    let pki = common::pki("service");
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let extra = format!(
        "[log]\nformat = \"json\"\n\n[audit]\nfile = \"{}\"\n",
        audit.display()
    );
    let cfg = common::write_config(dir.path(), &pki, "drain", "", &extra);
    let cfg_text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[server]\n", "[server]\nshutdown_grace_secs = 5\n");
    std::fs::write(&cfg, cfg_text).unwrap();
    let mut server = Server::start(&cfg, &dir.path().join("drain.log"));
    let to = server.addr;

    // Four conversations, each two round trips in (handshake under way).
    let mut auths: Vec<Auth> = (0..4).map(|_| Auth::new(&pki)).collect();
    for a in &mut auths {
        assert!(a.step(to));
        assert!(a.step(to));
    }
    let term_at = Instant::now();
    signal(&server, "TERM");
    std::thread::sleep(Duration::from_millis(300));

    // A new conversation is not started any more: its first Access-Request goes unanswered.
    let mut late = conversation(&pki);
    let first = late.start(random16());
    assert!(exchange(&socket(), to, &first).is_none());

    // Those in flight all finish.
    for a in auths {
        let o = a.run(to);
        assert!(accepted(&o), "in-flight authentication failed: {o:?}");
    }
    let status = wait_exit(&mut server, Duration::from_secs(8));
    assert!(status.success(), "{status:?}\n{}", server.log_text());
    assert!(term_at.elapsed() < Duration::from_secs(7));

    // The audit log: exactly one complete JSON line per authentication.
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(text.ends_with('\n'));
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 4, "{text}");
    for r in &records {
        assert_eq!(r["outcome"], "accept");
        assert_eq!(r["identity"], "bob@certradius.test");
        assert_eq!(r["nas_name"], "loopback");
        assert_eq!(r["nas"], "127.0.0.1");
        for key in [
            "time",
            "reason",
            "calling_station_id",
            "called_station_id",
            "tls_version",
            "serial",
            "subject",
            "issuer",
            "resumed",
            "round_trips",
            "duration_ms",
            "rule",
            "granted",
        ] {
            assert!(r.get(key).is_some(), "no {key} in {r}");
        }
        assert!(r["time"].as_str().unwrap().ends_with('Z'));
        assert!(r["round_trips"].as_u64().unwrap() >= 2);
    }

    // JSON logs: every line on stderr is one JSON object.
    let log = server.log_text();
    let mut n = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(v.is_object());
        n += 1;
    }
    assert!(n >= 3, "too few log lines: {log}");
    assert!(log.contains("draining"), "{log}");
}

#[test]
fn audit_log_one_line_per_authentication_after_kill_9() {
    let pki = common::pki("service");
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let extra = format!("[audit]\nfile = \"{}\"\n", audit.display());
    let cfg = common::write_config(dir.path(), &pki, "kill9", "", &extra);
    let mut server = Server::start(&cfg, &dir.path().join("kill9.log"));
    let n = 8;
    for _ in 0..n {
        assert!(accepted(&Auth::new(&pki).run(server.addr)));
    }
    // The record of the last authentication is written by the writer thread just after the
    // reply; give it a moment, then kill -9 (no flush, no destructors).
    std::thread::sleep(Duration::from_millis(300));
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let text = std::fs::read_to_string(&audit).unwrap();
    let complete: Vec<&str> = text.split_inclusive('\n').collect();
    // Only the last line may lack its newline (here none is being written: all are whole).
    for (i, line) in complete.iter().enumerate() {
        if !line.ends_with('\n') {
            assert_eq!(i, complete.len() - 1, "a partial line before the end");
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["outcome"], "accept");
    }
    let whole = complete.iter().filter(|l| l.ends_with('\n')).count();
    assert_eq!(whole, n, "{text}");
}

#[test]
fn audit_log_reopened_on_sighup_and_debug_filter_limits_dumps() {
    let pki = common::pki("service");
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let extra = format!("[audit]\nfile = \"{}\"\n", audit.display());
    let cfg = common::write_config(dir.path(), &pki, "rotate", "", &extra);
    let log = dir.path().join("rotate.log");
    let server = Server::start_with_args(
        &cfg,
        &log,
        &[],
        &[
            "--debug",
            "--debug-filter",
            "user_name=nobody-here",
            "--log-format",
            "json",
        ],
    );
    assert!(accepted(&Auth::new(&pki).run(server.addr)));
    // logrotate: move the file away, then SIGHUP.
    let rotated = dir.path().join("audit.jsonl.1");
    std::thread::sleep(Duration::from_millis(200));
    std::fs::rename(&audit, &rotated).unwrap();
    signal(&server, "HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert!(accepted(&Auth::new(&pki).run(server.addr)));
    std::thread::sleep(Duration::from_millis(300));
    let old = std::fs::read_to_string(&rotated).unwrap();
    let new = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(old.lines().count(), 1, "{old}");
    assert_eq!(new.lines().count(), 1, "{new}");

    // --log-format json on the command line, and no packet dump for a filter nobody matches.
    let text = server.log_text();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert_ne!(v["level"], "DEBUG", "dumped despite the filter: {line}");
    }
    drop(server);

    // A filter matching the supplicant's Calling-Station-Id (another MAC spelling): dumped.
    let server = Server::start_with_args(
        &cfg,
        &log,
        &[],
        &[
            "--debug",
            "--debug-filter",
            "calling_station_id=02:00:00:00:00:01",
        ],
    );
    assert!(accepted(&Auth::new(&pki).run(server.addr)));
    std::thread::sleep(Duration::from_millis(200));
    let text = server.log_text();
    assert!(
        text.contains("DEBUG") && text.contains("received from"),
        "{text}"
    );
}

#[test]
fn warns_when_the_private_key_is_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let pki = common::pki("service");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("server.key");
    std::fs::copy(pki.join("server.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = common::write_config(dir.path(), &pki, "keymode", "", "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        &format!("{}/server.key", pki.display()),
        &key.display().to_string(),
    );
    std::fs::write(&cfg, text).unwrap();
    let server = Server::start(&cfg, &dir.path().join("keymode.log"));
    std::thread::sleep(Duration::from_millis(200));
    let log = server.log_text();
    assert!(
        log.contains("private key file is readable by group or others"),
        "{log}"
    );
}
