//! RFC 2866 accounting against the real binary: radclient and the testkit NAS send
//! Start / Interim-Update / Stop; responses are verified and every record is in the file once;
//! a wrong secret gets no answer; a retransmission is answered from the cache and recorded once;
//! after kill -9 every acknowledged record is in the file.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::Write;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use certradius::radius::attr;
use certradius_testkit::acct;

fn server(dir: &Path, name: &str, extra: &str) -> (common::Server, std::path::PathBuf) {
    let pki = common::pki("accounting");
    let file = dir.join(format!("{name}.jsonl"));
    let cfg = common::write_config(
        dir,
        &pki,
        name,
        "",
        &format!(
            "[accounting]\nlisten = [\"127.0.0.1:0\"]\nfile = \"{}\"\n{extra}",
            file.display()
        ),
    );
    let s = common::Server::start(&cfg, &dir.join(format!("{name}.log")));
    assert!(s.acct.is_some(), "no accounting listener reported");
    (s, file)
}

fn records(file: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn exchange(sock: &UdpSocket, to: std::net::SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    sock.send_to(packet, to).unwrap();
    let mut buf = [0u8; 4096];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

fn status(t: u32) -> [u8; 4] {
    t.to_be_bytes()
}

#[test]
fn start_interim_stop_recorded_once_each_and_wrong_secret_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (s, file) = server(dir.path(), "nas", "");
    let to = s.acct.unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let secret = common::SECRET.as_bytes();
    let mut id = 0u8;
    for (t, time) in [(1u32, 0u32), (3, 60), (2, 120)] {
        id += 1;
        let p = acct::request(
            secret,
            id,
            &[
                (attr::ACCT_STATUS_TYPE, &status(t)),
                (attr::ACCT_SESSION_ID, b"S-0001"),
                (attr::USER_NAME, b"alice@certradius.test"),
                (attr::CALLING_STATION_ID, b"02-00-00-00-00-01"),
                (attr::CALLED_STATION_ID, b"AA-BB-CC-DD-EE-FF:corp"),
                (attr::FRAMED_IP_ADDRESS, &[10, 1, 2, 3]),
                (attr::ACCT_SESSION_TIME, &time.to_be_bytes()),
                (attr::ACCT_INPUT_OCTETS, &1000u32.to_be_bytes()),
            ],
        );
        let reply = exchange(&sock, to, &p).expect("an Accounting-Response");
        assert!(acct::is_response_to(&reply, &p, secret));
        if t == 3 {
            // A retransmission: the same reply, byte for byte, and no second record.
            let again = exchange(&sock, to, &p).expect("the cached Accounting-Response");
            assert_eq!(again, reply);
        }
    }
    // Wrong secret: silently discarded (RFC 2866 §3), nothing recorded.
    let bad = acct::request(
        b"not-the-secret",
        9,
        &[(attr::ACCT_STATUS_TYPE, &status(1))],
    );
    assert!(exchange(&sock, to, &bad).is_none());

    let recs = records(&file);
    let kinds: Vec<&str> = recs
        .iter()
        .map(|r| r["acct_status_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Start", "Interim-Update", "Stop"]);
    let stop = &recs[2];
    assert_eq!(stop["acct_session_id"], "S-0001");
    assert_eq!(stop["user_name"], "alice@certradius.test");
    assert_eq!(stop["calling_station_id"], "02-00-00-00-00-01");
    assert_eq!(stop["called_station_id"], "AA-BB-CC-DD-EE-FF:corp");
    assert_eq!(stop["framed_ip"], "10.1.2.3");
    assert_eq!(stop["acct_session_time"], 120);
    assert_eq!(stop["acct_input_octets"], 1000);
    assert_eq!(stop["nas"], "127.0.0.1");
    assert_eq!(recs[0]["acct_unique_id"], stop["acct_unique_id"]);
    assert!(stop["time"].as_str().unwrap().ends_with('Z'));
    assert!(
        s.log_text().contains("bad_accounting_authenticator"),
        "the wrong secret is logged with its reason"
    );
}

#[test]
fn radclient_start_and_stop_are_answered_and_recorded() {
    if !common::require_tool("radclient", "apt-get install freeradius-utils") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (s, file) = server(
        dir.path(),
        "radclient",
        "fsync = \"interval\"\nfsync_interval_ms = 50\n",
    );
    let to = s.acct.unwrap();
    for (kind, extra) in [
        ("Start", ""),
        (
            "Stop",
            "Acct-Session-Time = 42\nAcct-Terminate-Cause = User-Request\n",
        ),
    ] {
        let mut child = Command::new("radclient")
            .args([
                "-x",
                "-r",
                "2",
                "-t",
                "2",
                &to.to_string(),
                "acct",
                common::SECRET,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        write!(
            child.stdin.take().unwrap(),
            "Acct-Status-Type = {kind}\nAcct-Session-Id = \"rc-1\"\nUser-Name = \"bob\"\nCalling-Station-Id = \"02-00-00-00-00-02\"\n{extra}"
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "radclient failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("Accounting-Response"), "{text}");
    }
    let recs = records(&file);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1]["acct_status_type"], "Stop");
    assert_eq!(recs[1]["acct_terminate_cause"], "User-Request");
    assert_eq!(recs[1]["acct_session_time"], 42);
}

#[test]
fn kill_9_loses_nothing_that_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, file) = server(dir.path(), "crash", "");
    let to = s.acct.unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let secret = common::SECRET.as_bytes();
    let mut acked = 0;
    for i in 0..200u32 {
        let sid = format!("K-{i}");
        let p = acct::request(
            secret,
            (i % 256) as u8,
            &[
                (attr::ACCT_STATUS_TYPE, &status(1)),
                (attr::ACCT_SESSION_ID, sid.as_bytes()),
            ],
        );
        if exchange(&sock, to, &p).is_some_and(|r| acct::is_response_to(&r, &p, secret)) {
            acked += 1;
        }
    }
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let whole: Vec<&str> = text
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .collect();
    assert_eq!(acked, 200);
    assert!(
        whole.len() >= acked,
        "{} lines on disk, {acked} acknowledged",
        whole.len()
    );
    for (i, l) in whole.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["acct_session_id"], format!("K-{i}"));
    }
}
