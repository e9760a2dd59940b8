//! A pool of three instances behaving as one service (README "Running a pool"): the real binary
//! on 127.0.0.11, .12 and .13, one throwaway PostgreSQL, one ticket-key file and one CRL.
//!
//! - Sessions authenticated on one instance and accounted on another land in the one `radacct`
//!   with their certificate (the Class link in `certradius_auth`).
//! - The load generator plays NAS that list the three servers and fail over on timeout (RFC 5080
//!   §2.2.1); one instance is killed with -9 in the middle of a storm and every supplicant still
//!   ends authenticated, those caught mid-conversation starting again elsewhere, returning ones
//!   resuming their TLS sessions on the survivors (shared ticket keys).
//! - A revocation then produces exactly one Disconnect-Request (RFC 5176) per session, even for
//!   the session whose instance is dead, from whichever survivor claimed it in the database.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use certradius::radius::coa;
use certradius::radius::{Packet, SharedSecret, attr};
use certradius_testkit::peer::{self, Conversation, Nas, Next, Outcome, Supplicant};
use common::{SECRET, Server, random16};

const HOSTS: [&str; 3] = ["127.0.0.11", "127.0.0.12", "127.0.0.13"];

/// The load generator built beside the server binary (`cargo test` builds the examples; a
/// single `cargo test --test pool` may not have, so it is built here when missing).
fn loadgen() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_certradius"));
    let path = bin.parent().unwrap().join("examples").join("loadgen");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", "loadgen"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "cargo build --example loadgen");
    }
    path
}

/// The Class of the Access-Accept for `client-{name}` through `server`, and whether the TLS
/// session resumed; `cfg` carries the supplicant's session store across calls.
fn authenticate(
    cfg: &std::sync::Arc<rustls::ClientConfig>,
    socket: &UdpSocket,
    server: SocketAddr,
) -> (Vec<u8>, bool) {
    let sup = Supplicant::new(cfg.clone(), "radius.certradius.test", b"alice", 1400).unwrap();
    let mut conv = Conversation::new(sup, Nas::new(SECRET.as_bytes()));
    let mut packet = conv.start(random16());
    let mut buf = vec![0u8; 4096];
    for _ in 0..50 {
        let reply = (0..5)
            .find_map(|_| {
                socket.send_to(&packet, server).unwrap();
                socket
                    .recv_from(&mut buf)
                    .ok()
                    .map(|(n, _)| buf[..n].to_vec())
            })
            .unwrap_or_else(|| panic!("no reply from {server} after 5 tries"));
        match conv.on_reply(&reply, random16()).unwrap() {
            Next::Send(p) => packet = p,
            Next::Done(o) => {
                let Outcome::Accepted {
                    reply,
                    keys_match: true,
                    ..
                } = *o
                else {
                    panic!("{server} did not accept");
                };
                let class = reply
                    .attributes
                    .iter()
                    .find(|(t, _)| *t == attr::CLASS)
                    .map(|(_, v)| v.clone())
                    .expect("a Class in the Access-Accept");
                return (class, conv.supplicant.resumed());
            }
        }
    }
    panic!("no end")
}

/// Accounting-Start of session `id` carrying `class`, to the accounting listener `acct`.
fn accounting_start(socket: &UdpSocket, acct: SocketAddr, id: &str, class: &[u8]) {
    let req = certradius_testkit::acct::request(
        SECRET.as_bytes(),
        7,
        &[
            (attr::ACCT_STATUS_TYPE, &1u32.to_be_bytes()),
            (attr::ACCT_SESSION_ID, id.as_bytes()),
            (attr::USER_NAME, b"alice"),
            (attr::CALLING_STATION_ID, b"02-00-00-00-00-01"),
            (attr::NAS_IP_ADDRESS, &[127, 0, 0, 1]),
            (attr::CLASS, class),
        ],
    );
    let mut buf = vec![0u8; 4096];
    let reply = (0..5)
        .find_map(|_| {
            socket.send_to(&req, acct).unwrap();
            socket
                .recv_from(&mut buf)
                .ok()
                .map(|(n, _)| buf[..n].to_vec())
        })
        .unwrap_or_else(|| panic!("no Accounting-Response from {acct}"));
    assert!(certradius_testkit::acct::is_response_to(
        &reply,
        &req,
        SECRET.as_bytes()
    ));
}

/// `key=value` pairs of the load generator's `summary:` line.
fn summary(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("summary: "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}"))
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn three_instances_fail_over_resume_account_and_disconnect_once() {
    if common::pg::skip() {
        return;
    }
    let pki = common::pki("pool");
    let dir = tempfile::tempdir().unwrap();
    let pg = common::pg::Pg::new(dir.path());
    let keys = dir.path().join("tickets.keys");
    certradius::tls::resumption::rotate_key_file(&keys, 2).unwrap();
    let crl = dir.path().join("live.crl.pem");
    std::fs::copy(pki.join("intermediate-empty.crl.pem"), &crl).unwrap();
    // The NAS: the tests' own socket sends the single conversations and accounting, and takes
    // the Disconnect-Requests on its CoA port.
    let nas = UdpSocket::bind("127.0.0.1:0").unwrap();
    nas.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let coa_port = nas.local_addr().unwrap().port();
    let mut servers: Vec<Server> = HOSTS
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let text = format!(
                r#"
[server]
listen = ["{host}:0"]

[[client]]
name = "campus-nas"
address = "127.0.0.1"
secret = "{SECRET}"
coa_port = {coa_port}

[tls]
certificate_file = "{pki}/server.pem"
private_key_file = "{pki}/server.key"
ca_file = "{pki}/ca.pem"
crl_file = ["{pki}/ca.crl.pem", "{crl}"]
ticket_key_file = "{keys}"

[accounting]
listen = ["{host}:0"]
database_url = "{url}"
auto_migrate = true
queue_dir = "{queue}"

[coa]
control_socket = "{control}"
timeout_ms = 2000
retries = 1
"#,
                pki = pki.display(),
                crl = crl.display(),
                keys = keys.display(),
                url = pg.url(),
                queue = dir.path().join(format!("queue-{i}")).display(),
                control = dir.path().join(format!("ctl-{i}.sock")).display(),
            );
            let path = dir.path().join(format!("instance-{i}.toml"));
            std::fs::write(&path, text).unwrap();
            Server::start(&path, &dir.path().join(format!("instance-{i}.log")))
        })
        .collect();
    let logs = |servers: &[Server]| {
        servers
            .iter()
            .enumerate()
            .map(|(i, s)| format!("--- instance {i} ---\n{}", s.log_text()))
            .collect::<String>()
    };
    for (s, host) in servers.iter().zip(HOSTS) {
        assert_eq!(s.addr.ip().to_string(), host);
    }

    // Authenticated on instance i, accounted on instance i+1: every instance writes to the one
    // radacct, and every row names the certificate through the Class link.
    let revoked = peer::client_config(
        &pki.join("ca.pem"),
        &pki.join("client-revoked.pem"),
        &pki.join("client-revoked.key"),
        &[&rustls::version::TLS13],
    )
    .unwrap();
    for i in 0..3 {
        let (class, _) = authenticate(&revoked, &nas, servers[i].addr);
        let hex: String = class.iter().map(|x| format!("{x:02x}")).collect();
        pg.wait_for(
            &format!("SELECT count(*) FROM certradius_auth WHERE class = '0x{hex}'"),
            &["1"],
            20,
        );
        let acct = servers[(i + 1) % 3].acct.expect("accounting listener");
        accounting_start(&nas, acct, &format!("pool-{i}"), &class);
    }
    pg.wait_for(
        "SELECT acctsessionid FROM radacct WHERE certificate_serial IS NOT NULL \
         ORDER BY acctsessionid",
        &["pool-0", "pool-1", "pool-2"],
        20,
    );

    // A session begun on instance 1 resumes on instance 2 (one ticket-key file).
    let ecdsa = peer::client_config(
        &pki.join("ca.pem"),
        &pki.join("client-ecdsa.pem"),
        &pki.join("client-ecdsa.key"),
        &[&rustls::version::TLS13],
    )
    .unwrap();
    let (_, first) = authenticate(&ecdsa, &nas, servers[1].addr);
    let (_, second) = authenticate(&ecdsa, &nas, servers[2].addr);
    assert!(!first && second, "resumed on another instance: {second}");

    // The storm: 3 NAS (their first choices rotate over the pool), 240 supplicants within 4 s,
    // half of them returning devices that resume; instance 0 is killed after 1.5 s.
    let victim = servers[0].child.id();
    let out = Command::new(loadgen())
        .args([
            "--server",
            &servers
                .iter()
                .map(|s| s.addr.to_string())
                .collect::<Vec<_>>()
                .join(","),
            "--secret",
            SECRET,
            "--ca",
            pki.join("ca.pem").to_str().unwrap(),
            "--cert",
            pki.join("client-ecdsa.pem").to_str().unwrap(),
            "--key",
            pki.join("client-ecdsa.key").to_str().unwrap(),
            "--tls",
            "1.3",
            "--storm",
            "240",
            "--storm-window-ms",
            "4000",
            "--retransmit-ms",
            "700",
            "--tries",
            "3",
            "--threads",
            "3",
            "--resume",
            "50",
            "--kill-pid",
            &victim.to_string(),
            "--kill-after-ms",
            "1500",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("killed server process {victim}")),
        "{stderr}"
    );
    let _ = servers[0].child.wait();
    let s = summary(&stdout);
    assert!(
        out.status.success() && s["ok"] == "240" && s["failed"] == "0",
        "every supplicant ends authenticated:\n{stdout}\n{stderr}\n{}",
        logs(&servers)
    );
    assert!(
        s["failovers"].parse::<u64>().unwrap() >= 1,
        "the NAS whose server died failed over:\n{stdout}"
    );
    let per_server: Vec<(u64, u64)> = s["per_server"]
        .split(',')
        .map(|p| {
            let (ok, resumed) = p.split_once('/').unwrap();
            (ok.parse().unwrap(), resumed.parse().unwrap())
        })
        .collect();
    assert_eq!(per_server.len(), 3, "{stdout}");
    for (i, (ok, resumed)) in per_server.iter().enumerate().skip(1) {
        assert!(
            *ok > 0 && *resumed > 0,
            "survivor {i} authenticated and resumed: {stdout}"
        );
    }
    eprintln!("{stdout}");

    // Revocation: the survivors both see it; each session is disconnected exactly once, the one
    // accounted on the dead instance included.
    std::fs::copy(pki.join("intermediate.crl.pem"), &crl).unwrap();
    let secret = SharedSecret::new(SECRET.as_bytes().to_vec());
    let mut sessions = Vec::new();
    let mut buf = vec![0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(40);
    // Until all three came, then three CRL watcher periods for a duplicate, which must not come.
    let mut quiet_until = None;
    loop {
        let now = Instant::now();
        if quiet_until.is_some_and(|q| now >= q) {
            break;
        }
        assert!(
            now < deadline,
            "Disconnect-Requests so far {sessions:?}:\n{}",
            logs(&servers)
        );
        let Ok((n, from)) = nas.recv_from(&mut buf) else {
            continue;
        };
        let req = &buf[..n];
        coa::verify_request(req, &secret).expect("signed with the NAS secret");
        let p = Packet::decode(req).unwrap();
        assert_eq!(u8::from(p.code()), coa::DISCONNECT_REQUEST);
        let id = String::from_utf8(p.first(attr::ACCT_SESSION_ID).unwrap().to_vec()).unwrap();
        assert_ne!(
            from.ip().to_string(),
            HOSTS[0],
            "the dead instance sent a Disconnect"
        );
        sessions.push(id);
        nas.send_to(&coa::answer(req, &secret, None).unwrap(), from)
            .unwrap();
        if sessions.len() == 3 && quiet_until.is_none() {
            quiet_until = Some(Instant::now() + Duration::from_secs(6));
        }
    }
    sessions.sort();
    assert_eq!(
        sessions,
        ["pool-0", "pool-1", "pool-2"],
        "one Disconnect per session:\n{}",
        logs(&servers)
    );
    assert_eq!(
        pg.query("SELECT count(*) FROM radacct WHERE disconnect_claimed_by IS NOT NULL"),
        ["3"]
    );
    for s in servers.iter_mut().skip(1) {
        s.signal("TERM");
        s.wait_exit(Duration::from_secs(30));
    }
}
