//! MAC Authentication Bypass against the real binary, with a test switch building the requests
//! Cisco (`mab`: PAP, Calling-Station-Id `00-11-22-33-44-55`, Service-Type = Call-Check) and
//! HPE/Aruba (CHAP) send (`certradius_testkit::mab`):
//!
//! - listed devices are accepted with their VLAN (RFC 3580 §3.31), over UDP, RADIUS/TCP and
//!   RadSec, replies signed with Message-Authenticator first; unknown ones refused;
//! - `[mab]` off: `mab_disabled`; a request that is no MAB keeps `no_eap_message`;
//! - every "bad input" of the feature: malformed User-Password and CHAP-Password, a User-Name
//!   that is another MAC than Calling-Station-Id, a MAC with a bad digit, and allow files with
//!   a duplicate, VLAN 0 or 4095, or 100 MB (refused at start, by `check` and on reload);
//! - rules naming `method = "mab"` refine the VLAN or refuse; rules that do not never apply;
//! - BlastRADIUS: a client that requires Message-Authenticator has a MAB request without it
//!   dropped and counted, `"auto"` serves a switch that never sends it;
//! - the allow file is re-read within 5 s of an edit or a rename, and a broken one is refused
//!   while the last good one stays;
//! - accounting links the session by Class (no certificate) and Disconnect by session works;
//! - the audit record and `certradius_authentications_total` carry the method;
//!   `--debug-filter calling_station_id=` follows a MAB device; `check` and `mab-test`.
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
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use certradius::radius::{Code, SharedSecret, attr, coa};
use certradius_testkit::mab::{MabRequest, Password, Reply};
use common::metrics::{metrics_addr, scrape};
use common::{SECRET, Server, Streams, random16, wait_until};

const PRINTER: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const CAMERA: [u8; 6] = [0xaa, 0xbb, 0xcc, 0x00, 0x00, 0x01];
const PHONE: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x07];
const STRANGER: [u8; 6] = [0x02, 0x99, 0x00, 0x00, 0x00, 0x01];

const ALLOW: &str = "# devices that cannot do 802.1X\n\
                     00:11:22:33:44:55,100,printer, 2nd floor\n\
                     AA-BB-CC-*,200,cameras\n\
                     0200.0000.0007\n";

/// A server with `[mab]` (`mab` is the section's body, empty: off), an audit log, metrics,
/// accounting and Disconnect, and the UDP client's `require_message_authenticator`.
struct Bench {
    server: Server,
    dir: tempfile::TempDir,
    config: PathBuf,
    allow: PathBuf,
}

fn config_text(
    dir: &Path,
    pki: &Path,
    mab: &str,
    require_ma: &str,
    rules: &str,
    coa_port: u16,
) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
state_file = "{dir}/state.json"

[[client]]
name = "udp-switch"
address = "127.0.0.1"
secret = "{SECRET}"
require_message_authenticator = {require_ma}
coa_port = {coa_port}

[[client]]
name = "tcp-switch"
address = "127.0.0.1"
transport = "tcp"
secret = "{SECRET}"

[[client]]
name = "radsec-switch"
address = "127.0.0.1"
transport = "tls"
secret = "{SECRET}"
certificate_name = "laptop42.certradius.test"

[tls]
certificate_file = "{pki}/server.pem"
private_key_file = "{pki}/server.key"
ca_file = "{pki}/ca.pem"

[radsec]
listen = ["127.0.0.1:0"]
certificate_file = "{pki}/server.pem"
private_key_file = "{pki}/server.key"
ca_file = "{pki}/ca.pem"

[tcp]
listen = ["127.0.0.1:0"]

[metrics]
listen = "127.0.0.1:0"

[audit]
file = "{dir}/audit.jsonl"

[accounting]
listen = ["127.0.0.1:0"]
file = "{dir}/accounting.jsonl"

[coa]
timeout_ms = 2000
retries = 1
control_socket = "{dir}/control.sock"

[mab]
{mab}

{rules}
"#,
        pki = pki.display(),
        dir = dir.display(),
    )
}

impl Bench {
    fn start(mab_on: bool, require_ma: &str, rules: &str, args: &[&str]) -> Bench {
        Self::start_with_coa(mab_on, require_ma, rules, args, 9)
    }

    fn start_with_coa(
        mab_on: bool,
        require_ma: &str,
        rules: &str,
        args: &[&str],
        coa_port: u16,
    ) -> Bench {
        let pki = common::pki("mab");
        let dir = tempfile::tempdir().unwrap();
        let allow = dir.path().join("mab.csv");
        std::fs::write(&allow, ALLOW).unwrap();
        let mab = if mab_on {
            format!("enabled = true\nallow_file = \"{}\"", allow.display())
        } else {
            String::new()
        };
        let config = dir.path().join("mab.toml");
        std::fs::write(
            &config,
            config_text(dir.path(), &pki, &mab, require_ma, rules, coa_port),
        )
        .unwrap();
        let server = Server::start_with_streams(
            &config,
            &dir.path().join("server.log"),
            args,
            Streams {
                tcp: true,
                tls: true,
            },
        );
        Bench {
            server,
            dir,
            config,
            allow,
        }
    }

    /// Sends `req` over UDP (retransmitted unchanged, RFC 5080 §2.2.1) and reads the reply;
    /// None when nothing comes back.
    fn send(&self, req: &MabRequest) -> Option<Reply> {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(700)))
            .unwrap();
        let auth = random16();
        let packet = req.encode(SECRET, 1, auth);
        let mut buf = vec![0u8; 4096];
        for _ in 0..3 {
            socket.send_to(&packet, self.server.addr).unwrap();
            if let Ok((n, _)) = socket.recv_from(&mut buf) {
                return Some(Reply::read(&buf[..n], SECRET, &auth).unwrap());
            }
        }
        None
    }

    fn accepted(&self, req: &MabRequest) -> Reply {
        let r = self
            .send(req)
            .unwrap_or_else(|| panic!("no reply:\n{}", self.server.log_text()));
        assert_eq!(r.code, Code::AccessAccept, "{}", self.server.log_text());
        r
    }

    /// Sends `req`, expects an Access-Reject, and returns the audit record's reason for it.
    fn rejected(&self, req: &MabRequest) -> String {
        let before = self.audit_lines().len();
        let r = self
            .send(req)
            .unwrap_or_else(|| panic!("no reply:\n{}", self.server.log_text()));
        assert_eq!(r.code, Code::AccessReject, "{}", self.server.log_text());
        assert_eq!(r.first(attr::EAP_MESSAGE), None, "MAB is not EAP");
        assert!(
            wait_until(Duration::from_secs(5), || self.audit_lines().len() > before),
            "no audit record"
        );
        let rec = self.audit_lines().pop().unwrap();
        assert_eq!(
            rec["user_name"],
            String::from_utf8_lossy(&req.user_name).as_ref()
        );
        rec["reason"].as_str().unwrap().to_string()
    }

    fn audit_lines(&self) -> Vec<serde_json::Value> {
        common::json_lines(&self.dir.path().join("audit.jsonl"))
    }

    /// The audit record for the latest authentication with this User-Name.
    fn audit_last(&self, user_name: &[u8]) -> serde_json::Value {
        let path = self.dir.path().join("audit.jsonl");
        let user = String::from_utf8_lossy(user_name).to_string();
        let mut found = None;
        assert!(
            wait_until(Duration::from_secs(5), || {
                found = common::json_lines(&path)
                    .into_iter()
                    .rev()
                    .find(|v| v["user_name"] == user.as_str());
                found.is_some()
            }),
            "no audit record for {user}"
        );
        found.unwrap()
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        cli(&self.config, args)
    }
}

fn cli(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_certradius"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("CERTRADIUS_LOG")
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------------------------------------
// Every transport

mod transports {
    use super::*;
    use certradius_testkit::radsec;
    use tokio::net::TcpStream as AsyncTcp;

    #[derive(Clone, Copy)]
    enum T {
        Udp,
        Tcp,
        RadSec,
    }

    #[test]
    fn udp() {
        run(T::Udp);
    }
    #[test]
    fn tcp() {
        run(T::Tcp);
    }
    #[test]
    fn radsec() {
        run(T::RadSec);
    }

    /// Cisco PAP and Aruba CHAP (with and without CHAP-Challenge) over one transport: listed
    /// MAC and vendor prefix accepted with their VLAN and a Class, no VLAN when the line has
    /// none, an unknown MAC refused.
    fn run(t: T) {
        let b = Bench::start(true, "true", "", &[]);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let pki = common::pki("mab");
                let exchange = |req: MabRequest| {
                    let b = &b;
                    let pki = pki.clone();
                    async move {
                        let auth = random16();
                        let packet = req.encode(SECRET, 9, auth);
                        let reply = match t {
                            T::Udp => {
                                let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                                s.send_to(&packet, b.server.addr).await.unwrap();
                                let mut buf = vec![0u8; 4096];
                                let (n, _) = tokio::time::timeout(
                                    Duration::from_secs(5),
                                    s.recv_from(&mut buf),
                                )
                                .await
                                .unwrap()
                                .unwrap();
                                buf[..n].to_vec()
                            }
                            T::Tcp => {
                                let mut s = AsyncTcp::connect(b.server.tcp.unwrap()).await.unwrap();
                                radsec::write_packet(&mut s, &packet).await.unwrap();
                                radsec::read_packet(&mut s).await.unwrap().unwrap()
                            }
                            T::RadSec => {
                                let cfg = radsec::client_config(
                                    &pki.join("ca.pem"),
                                    &[&pki.join("client-machine.pem")],
                                    &pki.join("client-machine.key"),
                                    &[&rustls::version::TLS13],
                                    &[],
                                )
                                .unwrap();
                                let mut s = radsec::connect(
                                    b.server.tls.unwrap(),
                                    cfg,
                                    "radius.certradius.test",
                                )
                                .await
                                .unwrap();
                                radsec::write_packet(&mut s, &packet).await.unwrap();
                                radsec::read_packet(&mut s).await.unwrap().unwrap()
                            }
                        };
                        Reply::read(&reply, SECRET, &auth).unwrap()
                    }
                };
                let printer = exchange(MabRequest::cisco(PRINTER)).await;
                assert_eq!(printer.code, Code::AccessAccept, "{}", b.server.log_text());
                assert_eq!(printer.vlan().unwrap().as_deref(), Some("100"));
                assert_eq!(&printer.first(attr::CLASS).unwrap()[..4], b"CRad");
                let camera = exchange(MabRequest::aruba(CAMERA)).await;
                assert_eq!(camera.code, Code::AccessAccept);
                assert_eq!(camera.vlan().unwrap().as_deref(), Some("200"));
                let mut no_challenge = MabRequest::aruba(PHONE);
                no_challenge.password = Password::Chap {
                    password: b"02-00-00-00-00-07".to_vec(),
                    challenge: None,
                };
                let phone = exchange(no_challenge).await;
                assert_eq!(phone.code, Code::AccessAccept);
                assert_eq!(
                    phone.vlan().unwrap(),
                    None,
                    "a line without VLAN sends none"
                );
                let stranger = exchange(MabRequest::cisco(STRANGER)).await;
                assert_eq!(stranger.code, Code::AccessReject);
            });
        for (who, method) in [(PRINTER, "mab"), (STRANGER, "mab")] {
            let rec = b.audit_last(MabRequest::cisco(who).user_name.as_slice());
            assert_eq!(rec["method"], method);
        }
        assert_eq!(
            b.audit_last(&MabRequest::cisco(STRANGER).user_name)["reason"],
            "mab_unknown_device"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Refusals, bad input, rules, BlastRADIUS

fn cisco_named(mac: [u8; 6], user_name: &str) -> MabRequest {
    MabRequest {
        user_name: user_name.as_bytes().to_vec(),
        calling_station_id: None,
        ..MabRequest::cisco(mac)
    }
}

#[test]
fn off_refuses_mab_disabled_and_other_requests_keep_no_eap_message() {
    let b = Bench::start(false, "true", "", &[]);
    assert_eq!(b.rejected(&MabRequest::cisco(PRINTER)), "mab_disabled");
    assert_eq!(b.rejected(&MabRequest::aruba(CAMERA)), "mab_disabled");
    assert_eq!(b.rejected(&cisco_named(PRINTER, "alice")), "no_eap_message");
    let rec = b.audit_lines().pop().unwrap();
    assert_eq!(rec["method"], "eap-tls", "no MAB request: {rec}");
    let body = scrape(metrics_addr(&b.server));
    for (series, n) in [
        (
            r#"certradius_authentications_total{outcome="reject",reason="mab_disabled",method="mab"} "#,
            "2",
        ),
        (
            r#"certradius_authentications_total{outcome="accept",reason="none",method="mab"} "#,
            "0",
        ),
        (
            r#"certradius_authentications_total{outcome="reject",reason="no_eap_message",method="eap-tls"} "#,
            "1",
        ),
    ] {
        assert!(
            body.contains(&format!("{series}{n}\n")),
            "{series}{n}\n{body}"
        );
    }
}

/// Every "bad input" bullet of the feature that arrives in a request.
#[test]
fn bad_requests_are_refused() {
    let b = Bench::start(true, "true", "", &[]);
    // Distinct unlisted MACs: the password is checked before the allow list.
    let mac = |n: u8| [0x02, 0, 0, 0, 0x10, n];
    let with = |n: u8, password: Password| MabRequest {
        password,
        ..MabRequest::cisco(mac(n))
    };
    for (n, password) in [
        (1, Password::PapRaw(vec![7; 144])),
        (2, Password::PapRaw(vec![7; 20])),
        (3, Password::PapRaw(vec![7; 15])),
        (4, Password::ChapRaw(vec![7; 16])),
        (5, Password::ChapRaw(vec![7; 18])),
        (6, Password::Pap(b"021000000099".to_vec())),
        (
            7,
            Password::Chap {
                password: b"not-the-mac".to_vec(),
                challenge: None,
            },
        ),
    ] {
        assert_eq!(
            b.rejected(&with(n, password)),
            "mab_bad_password",
            "case {n}"
        );
    }
    let detail = b.audit_lines()[0]["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("RFC 2865 §5.2"), "{detail}");
    // A User-Name that is a MAC, but another than Calling-Station-Id: no MAB request.
    let other = MabRequest {
        calling_station_id: Some(b"00-11-22-33-44-56".to_vec()),
        ..MabRequest::cisco(PRINTER)
    };
    assert_eq!(b.rejected(&other), "no_eap_message");
    // A MAC with a bad digit: no MAB request either.
    assert_eq!(
        b.rejected(&cisco_named(PRINTER, "00112233445G")),
        "no_eap_message"
    );
    // The same MAC in other spellings is one device.
    let spelled = MabRequest {
        user_name: b"00:11:22:33:44:55".to_vec(),
        calling_station_id: Some(b"0011.2233.4455".to_vec()),
        password: Password::Pap(b"00-11-22-33-44-55".to_vec()),
        message_authenticator: true,
    };
    assert_eq!(b.accepted(&spelled).vlan().unwrap().as_deref(), Some("100"));
}

const RULES: &str = r#"
[authorize]
default = "reject"

[[authorize.rule]]
name = "printers-to-voice"
match = { method = "mab", calling_station_id = "00-11-22-*" }
reply = { "Tunnel-Type" = "VLAN", "Tunnel-Medium-Type" = "IEEE-802", "Tunnel-Private-Group-Id" = "30" }

[[authorize.rule]]
name = "no-cameras-on-ethernet"
match = { method = "mab", calling_station_id = "aa*", nas_port_type = "Ethernet" }
action = "reject"

[[authorize.rule]]
name = "staff"
reply = { "Filter-Id" = "staff" }
"#;

#[test]
fn rules_naming_mab_refine_and_others_never_apply() {
    let b = Bench::start(true, "true", RULES, &[]);
    let printer = b.accepted(&MabRequest::cisco(PRINTER));
    assert_eq!(
        printer.vlan().unwrap().as_deref(),
        Some("30"),
        "the rule replaces the file's VLAN"
    );
    assert_eq!(b.audit_last(b"001122334455")["rule"], "printers-to-voice");
    assert_eq!(b.rejected(&MabRequest::aruba(CAMERA)), "rule_reject");
    // "staff" names no method and `default = "reject"` is for EAP-TLS: the phone gets the
    // allow file's answer (no VLAN), not Filter-Id.
    let phone = b.accepted(&MabRequest::cisco(PHONE));
    assert_eq!(phone.vlan().unwrap(), None);
    assert_eq!(phone.first(attr::FILTER_ID), None);
    let rec = b.audit_last(b"020000000007");
    assert_eq!(
        (rec["method"].as_str(), rec["rule"].as_str()),
        (Some("mab"), None)
    );
}

/// BlastRADIUS (CVE-2024-3596): the client's require_message_authenticator applies to MAB as
/// it is; "auto" serves a switch that never sends Message-Authenticator.
#[test]
fn message_authenticator_rules_hold_for_mab() {
    let bare = MabRequest {
        message_authenticator: false,
        ..MabRequest::cisco(PRINTER)
    };
    let b = Bench::start(true, "true", "", &[]);
    assert!(b.send(&bare).is_none(), "dropped without an answer");
    b.server.wait_for_log(
        "reason=missing_message_authenticator",
        Duration::from_secs(5),
    );
    b.accepted(&MabRequest::cisco(PRINTER));
    drop(b);
    let b = Bench::start(true, "\"auto\"", "", &[]);
    assert_eq!(b.accepted(&bare).vlan().unwrap().as_deref(), Some("100"));
    // Once the switch sent one, "auto" requires it.
    b.accepted(&MabRequest::aruba(CAMERA));
    assert!(
        b.send(&bare).is_none(),
        "auto learned Message-Authenticator"
    );
}

// ---------------------------------------------------------------------------------------------
// The allow file: reload, refusal, check, mab-test

#[test]
fn allow_file_changes_apply_within_5_s_and_a_broken_one_is_refused() {
    let b = Bench::start(true, "true", "", &[]);
    assert_eq!(
        b.rejected(&MabRequest::cisco(STRANGER)),
        "mab_unknown_device"
    );
    // Edited in place.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&b.allow)
        .unwrap();
    f.write_all(b"02:99:00:00:00:01,300,new\n").unwrap();
    drop(f);
    let mut vlan = None;
    assert!(
        wait_until(Duration::from_secs(5), || {
            vlan = b
                .send(&MabRequest::cisco(STRANGER))
                .filter(|r| r.code == Code::AccessAccept)
                .map(|r| r.vlan().unwrap());
            vlan.is_some()
        }),
        "an appended line was not in force within 5 s:\n{}",
        b.server.log_text()
    );
    assert_eq!(vlan.unwrap().as_deref(), Some("300"));
    // Replaced by rename: the printer is gone.
    let tmp = b.dir.path().join("mab.csv.new");
    std::fs::write(&tmp, "02:99:00:00:00:01,301\n").unwrap();
    std::fs::rename(&tmp, &b.allow).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || b
            .send(&MabRequest::cisco(PRINTER))
            .is_some_and(|r| r.code == Code::AccessReject)),
        "the renamed file was not in force within 5 s"
    );
    // Broken: refused whole, the last good list stays.
    std::fs::write(&b.allow, "02:99:00:00:00:01,301\n02:99:00:00:00:02,4095\n").unwrap();
    b.server.wait_for_log(
        "configuration reload refused, the running configuration stays: mab.allow_file",
        Duration::from_secs(5),
    );
    assert!(
        b.server
            .log_text()
            .contains("line 2: VLAN 4095 cannot be assigned")
    );
    let r = b.accepted(&MabRequest::cisco(STRANGER));
    assert_eq!(r.vlan().unwrap().as_deref(), Some("301"));
    // SIGHUP reads it again (fixed meanwhile).
    std::fs::write(&b.allow, ALLOW).unwrap();
    b.server.signal("HUP");
    assert!(wait_until(Duration::from_secs(5), || b
        .send(&MabRequest::cisco(PRINTER))
        .is_some_and(|r| r.code == Code::AccessAccept)));
}

#[test]
fn check_mab_test_and_serve_judge_the_allow_file() {
    let pki = common::pki("mab");
    let dir = tempfile::tempdir().unwrap();
    let allow = dir.path().join("mab.csv");
    std::fs::write(&allow, ALLOW).unwrap();
    let mab = format!("enabled = true\nallow_file = \"{}\"", allow.display());
    let config = dir.path().join("c.toml");
    std::fs::write(&config, config_text(dir.path(), &pki, &mab, "true", "", 9)).unwrap();
    let out = cli(&config, &["check"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "mab: on, allow_file {}: 2 MAC(s), 1 vendor prefix(es)",
            allow.display()
        )),
        "{}",
        text(&out)
    );
    let out = cli(&config, &["mab-test", "0011.2233.4455"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("Tunnel-Private-Group-Id = \"100\"")
            && text(&out).contains("Tunnel-Type = VLAN"),
        "{}",
        text(&out)
    );
    let out = cli(&config, &["mab-test", "AA-BB-CC-12-34-56"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("vendor prefix aa:bb:cc:*"),
        "{}",
        text(&out)
    );
    let out = cli(&config, &["mab-test", "02:99:00:00:00:01"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("reject mab_unknown_device"),
        "{}",
        text(&out)
    );
    let out = cli(&config, &["mab-test", "00:11:22"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // Broken files: check names the file and the line; serve refuses to start.
    let cases: [(&str, &str); 4] = [
        (
            "00:11:22:33:44:55,10\n0011.2233.4455,20\n",
            "line 2: 00:11:22:33:44:55 is already listed on line 1",
        ),
        ("00:11:22:33:44:55,0\n", "line 1: VLAN 0 cannot be assigned"),
        (
            "# x\n00:11:22:33:44:55,4095\n",
            "line 2: VLAN 4095 cannot be assigned",
        ),
        (
            "00:11:22:33:44:5G\n",
            "line 1: \"00:11:22:33:44:5G\" is not a MAC address: 'G' is not a hex digit",
        ),
    ];
    for (content, needle) in cases {
        std::fs::write(&allow, content).unwrap();
        let out = cli(&config, &["check"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let t = text(&out);
        assert!(
            t.contains(&format!("mab.allow_file {}: {needle}", allow.display())),
            "{t}"
        );
    }
    // 100 MB: refused with the limit, without reading it all.
    let f = std::fs::File::create(&allow).unwrap();
    f.set_len(100 * 1024 * 1024).unwrap();
    let out = cli(&config, &["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("104857600 octets, more than the limit of 16777216 (16 MiB)"),
        "{}",
        text(&out)
    );
    let mut serve = Command::new(env!("CARGO_BIN_EXE_certradius"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    assert!(wait_until(Duration::from_secs(20), || {
        status = serve.try_wait().unwrap();
        status.is_some()
    }));
    assert!(
        !status.unwrap().success(),
        "serve started with a 100 MB allow file"
    );
}

// ---------------------------------------------------------------------------------------------
// Accounting, Disconnect, debug filter

#[test]
fn accounting_links_a_mab_session_and_disconnect_by_session_works() {
    let nas = UdpSocket::bind("127.0.0.1:0").unwrap();
    nas.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let b = Bench::start_with_coa(true, "true", "", &[], nas.local_addr().unwrap().port());
    let accept = b.accepted(&MabRequest::cisco(PRINTER));
    let class = accept.first(attr::CLASS).unwrap().to_vec();
    let start = certradius_testkit::acct::request(
        SECRET.as_bytes(),
        42,
        &[
            (attr::ACCT_STATUS_TYPE, &1u32.to_be_bytes()),
            (attr::ACCT_SESSION_ID, b"mab-0001"),
            (attr::USER_NAME, b"001122334455"),
            (attr::CALLING_STATION_ID, b"00-11-22-33-44-55"),
            (attr::NAS_IP_ADDRESS, &[127, 0, 0, 1]),
            (attr::CLASS, &class),
        ],
    );
    let mut buf = vec![0u8; 4096];
    nas.send_to(&start, b.server.acct.unwrap()).unwrap();
    let (n, _) = nas.recv_from(&mut buf).unwrap();
    assert!(certradius_testkit::acct::is_response_to(
        &buf[..n],
        &start,
        SECRET.as_bytes()
    ));
    let sessions = text(&b.cli(&["sessions"]));
    let line = sessions
        .lines()
        .find(|l| l.starts_with("mab-0001"))
        .unwrap_or_else(|| panic!("{sessions}"));
    assert!(
        line.ends_with("\t-\t-"),
        "a MAB session has no certificate: {line}"
    );
    let out = std::thread::scope(|scope| {
        let cmd = scope.spawn(|| b.cli(&["disconnect", "--session", "mab-0001"]));
        let (n, from) = nas.recv_from(&mut buf).expect("Disconnect-Request");
        let req = buf[..n].to_vec();
        let p = certradius::radius::Packet::decode(&req).unwrap();
        assert_eq!(p.first(attr::ACCT_SESSION_ID), Some(&b"mab-0001"[..]));
        let ack = coa::answer(&req, &SharedSecret::new(SECRET.as_bytes().to_vec()), None).unwrap();
        nas.send_to(&ack, from).unwrap();
        cmd.join().unwrap()
    });
    assert!(
        out.status.success() && text(&out).contains("Disconnect-ACK"),
        "{}",
        text(&out)
    );
    let acct = std::fs::read_to_string(b.dir.path().join("accounting.jsonl")).unwrap();
    assert!(
        acct.contains("mab-0001") && acct.contains("\"certificate_serial\":null"),
        "{acct}"
    );
}

#[test]
fn debug_filter_follows_a_mab_device() {
    let b = Bench::start(
        true,
        "true",
        "",
        &[
            "--debug",
            "--debug-filter",
            "calling_station_id=00:11:22:33:44:55",
        ],
    );
    b.accepted(&MabRequest::aruba(CAMERA));
    b.accepted(&MabRequest::cisco(PRINTER));
    let log = b.server.log_text();
    assert_eq!(log.matches("received from").count(), 1, "{log}");
    let dump = log.split("received from").nth(1).unwrap();
    assert!(dump.contains("00-11-22-33-44-55"), "{dump}");
}

/// FreeRADIUS's radclient, a RADIUS client this project did not write, as a switch: Cisco-style
/// PAP and Aruba-style CHAP MAB requests for listed devices get Access-Accept with their VLAN,
/// an unlisted one Access-Reject.
#[test]
fn radclient_pap_and_chap_mab_requests() {
    if !common::require_tool("radclient", "apt-get install freeradius-utils") {
        return;
    }
    let b = Bench::start(true, "true", "", &[]);
    let ask = |attrs: &str| {
        let mut child = Command::new("radclient")
            .args([
                "-x",
                "-r",
                "2",
                "-t",
                "2",
                &b.server.addr.to_string(),
                "auth",
                SECRET,
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // radclient computes Message-Authenticator when the attribute is given (as 0x00).
        writeln!(
            child.stdin.take().unwrap(),
            "{attrs}Message-Authenticator = 0x00"
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let pap = ask(
        "User-Name = \"001122334455\"\nUser-Password = \"001122334455\"\n\
         Calling-Station-Id = \"00-11-22-33-44-55\"\nService-Type = Call-Check\n",
    );
    assert!(pap.contains("Received Access-Accept"), "{pap}");
    assert!(pap.contains("Tunnel-Private-Group-Id:0 = \"100\""), "{pap}");
    let chap = ask(
        "User-Name = \"aabbcc000001\"\nCHAP-Password = \"aabbcc000001\"\n\
         Calling-Station-Id = \"AA-BB-CC-00-00-01\"\n",
    );
    assert!(chap.contains("Received Access-Accept"), "{chap}");
    assert!(
        chap.contains("Tunnel-Private-Group-Id:0 = \"200\""),
        "{chap}"
    );
    let stranger = ask(
        "User-Name = \"029900000001\"\nUser-Password = \"029900000001\"\n\
         Calling-Station-Id = \"02-99-00-00-00-01\"\n",
    );
    assert!(stranger.contains("Received Access-Reject"), "{stranger}");
    assert!(b.server.log_text().contains("reason=mab_unknown_device"));
}
