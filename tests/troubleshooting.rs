//! Troubleshooting a device against the real binary over loopback UDP (issue 20, parts 4 and 6):
//! - the audit record of every EAP-TLS authentication whose handshake started carries what the
//!   supplicant's ClientHello offered (RFC 8446 §4.1.2, by IANA name), what was negotiated
//!   (version, the client's CertificateVerify scheme, the group), and the NAS's NAS-Port-Type
//!   and Framed-MTU as sent; a failed handshake's log line carries the one-line summary;
//! - `certradius why KEY` answers from the running server, by MAC in any spelling and by
//!   identity, with the last attempts (accept and reject), as a table and as JSON, for
//!   EAP-TLS and MAB.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use certradius::eap::{self, EapPacket, TlsFrame};
use certradius::radius::{Code, Packet};
use certradius_testkit::peer::{self, Conversation, Next, Outcome};
use common::{SECRET, Server, random16, wait_until};
use serde_json::Value;

/// The MAC the test kit's NAS sends as Calling-Station-Id.
const MAC: &str = "02-00-00-00-00-01";

struct Setup {
    server: Server,
    dir: tempfile::TempDir,
    config: PathBuf,
    pki: PathBuf,
}

fn setup(name: &str) -> Setup {
    setup_with(name, "", &[])
}

/// `more` is added to the configuration (`{dir}` in it names the test's directory), and
/// `files` (name, text) are written there before the server starts.
fn setup_with(name: &str, more: &str, files: &[(&str, &str)]) -> Setup {
    let pki = common::pki("troubleshooting");
    let dir = tempfile::tempdir().unwrap();
    for (file, text) in files {
        std::fs::write(dir.path().join(file), text).unwrap();
    }
    let extra = format!(
        "[audit]\nfile = \"{d}/audit.jsonl\"\n\n[coa]\ncontrol_socket = \"{d}/control.sock\"\n\n{more}",
        d = dir.path().display(),
        more = more.replace("{dir}", &dir.path().display().to_string()),
    );
    let config = common::write_config(dir.path(), &pki, name, "", &extra);
    let server = Server::start(&config, &dir.path().join(format!("{name}.log")));
    Setup {
        server,
        dir,
        config,
        pki,
    }
}

/// A supplicant with the test PKI's `client-KEY` certificate, offering `versions`.
fn conversation(
    pki: &Path,
    key: &str,
    identity: &[u8],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Conversation {
    let cfg = peer::client_config(
        &pki.join("ca.pem"),
        &pki.join(format!("client-{key}.pem")),
        &pki.join(format!("client-{key}.key")),
        versions,
    )
    .unwrap();
    let sup = peer::Supplicant::new(cfg, "radius.certradius.test", identity, 1400).unwrap();
    Conversation::new(sup, peer::Nas::new(SECRET.as_bytes()))
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

/// One whole conversation over UDP: true when accepted. A TLS alert from the server aborts
/// the supplicant's rustls; it then answers with an empty EAP-TLS response, as a supplicant
/// does (RFC 5216 §2.1.3), and the server ends with Access-Reject.
fn authenticate(server: &Server, mut conv: Conversation) -> bool {
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
                let eap = Packet::decode(&reply).unwrap().eap_message().unwrap();
                let id = EapPacket::decode(&eap).unwrap().identifier;
                let ack = eap::tls_response(id, &TlsFrame::ack());
                let last = exchange(&s, server.addr, &conv.nas.access_request(&ack, random16()));
                assert_eq!(Packet::decode(&last).unwrap().code(), Code::AccessReject);
                return false;
            }
        }
    }
    panic!("no end")
}

fn audit(s: &Setup, n: usize) -> Vec<Value> {
    let path = s.dir.path().join("audit.jsonl");
    let read = || -> Vec<Value> { common::json_lines(&path) };
    assert!(
        wait_until(Duration::from_secs(5), || read().len() >= n),
        "expected {n} audit records:\n{}",
        s.server.log_text()
    );
    read()
}

fn names(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect()
}

#[test]
fn the_audit_record_says_what_the_supplicant_offered_and_what_was_negotiated() {
    use rustls::version::{TLS12, TLS13};
    let s = setup("audit");
    let tls13 = conversation(&s.pki, "ecdsa", b"bob@certradius.test", &[&TLS13, &TLS12]);
    assert!(authenticate(&s.server, tls13));
    let tls12 = conversation(&s.pki, "rsa", b"alice@certradius.test", &[&TLS12]);
    assert!(authenticate(&s.server, tls12));
    let untrusted = conversation(&s.pki, "untrusted", b"mallory@certradius.test", &[&TLS13]);
    assert!(!authenticate(&s.server, untrusted));
    let records = audit(&s, 3);

    let r = &records[0];
    assert_eq!(r["outcome"], "accept", "{r}");
    let hello = &r["client_hello"];
    assert_eq!(names(&hello["versions"]), ["TLSv1.3", "TLSv1.2"], "{r}");
    assert!(
        names(&hello["cipher_suites"]).contains(&"TLS_AES_128_GCM_SHA256"),
        "{r}"
    );
    let sigs = names(&hello["signature_schemes"]);
    assert!(sigs.contains(&"rsa_pss_rsae_sha256") && sigs.contains(&"ecdsa_secp256r1_sha256"));
    assert!(names(&hello["groups"]).contains(&"x25519"), "{r}");
    assert_eq!(r["tls_version"], "TLSv1.3");
    // An ECDSA P-256 client key signs its CertificateVerify with ecdsa_secp256r1_sha256.
    assert_eq!(r["signature_scheme"], "ecdsa_secp256r1_sha256", "{r}");
    assert!(r["group"].is_string(), "{r}");
    // As the test kit's NAS sends them: Wireless-802.11 (19) and 1400.
    assert_eq!(r["nas_port_type"], 19, "{r}");
    assert_eq!(r["framed_mtu"], 1400, "{r}");

    let r = &records[1];
    assert_eq!(r["outcome"], "accept", "{r}");
    assert_eq!(names(&r["client_hello"]["versions"]), ["TLSv1.2"], "{r}");
    assert_eq!(r["tls_version"], "TLSv1.2");
    let scheme = r["signature_scheme"].as_str().unwrap();
    assert!(
        scheme.starts_with("rsa_"),
        "an RSA key signs with an RSA scheme: {r}"
    );

    let r = &records[2];
    assert_eq!(r["outcome"], "reject", "{r}");
    assert_eq!(names(&r["client_hello"]["versions"]), ["TLSv1.3"], "{r}");
    assert_eq!(r["signature_scheme"], Value::Null, "never verified: {r}");
    assert_eq!(r["nas_port_type"], 19, "{r}");
    // The log line of the failed handshake carries the one-line summary.
    let log = s.server.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("Access-Reject") && l.contains("client_hello="))
        .unwrap_or_else(|| panic!("no ClientHello on the refusal's line:\n{log}"));
    assert!(line.contains("versions=TLSv1.3 suites=TLS_"), "{line}");
    // Accepted authentications keep their log line as it was.
    assert!(
        !log.lines()
            .any(|l| l.contains("Access-Accept") && l.contains("client_hello=")),
        "{log}"
    );
}

fn why(s: &Setup, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_certradius"))
        .arg("why")
        .args(args)
        .arg("--config")
        .arg(&s.config)
        .env_remove("CERTRADIUS_LOG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status.success(), format!("{text}{err}"))
}

#[test]
fn why_shows_the_last_attempts_by_mac_and_by_identity() {
    use rustls::version::{TLS12, TLS13};
    let s = setup("why");
    let expired = conversation(&s.pki, "expired", b"bob@certradius.test", &[&TLS13, &TLS12]);
    assert!(!authenticate(&s.server, expired));
    let good = conversation(&s.pki, "ecdsa", b"bob@certradius.test", &[&TLS13, &TLS12]);
    assert!(authenticate(&s.server, good));
    audit(&s, 2);

    for key in [
        MAC,
        "02:00:00:00:00:01",
        "0200.0000.0001",
        "bob@certradius.test",
    ] {
        let (ok, text) = why(&s, &[key]);
        // Shown with --nocapture: the README's sample session comes from here.
        eprintln!("$ certradius why {key}\n{text}");
        assert!(ok, "{key}: {text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            format!("supplicant {key}: mac {MAC}, identity bob@certradius.test"),
            "{text}"
        );
        assert!(lines[1].starts_with("time"), "{text}");
        assert_eq!(lines.len(), 4, "a header and two attempts:\n{text}");
        for want in [
            "loopback (127.0.0.1)",
            "eap-tls",
            "reject",
            "cert_expired",
            "TLSv1.3",
        ] {
            assert!(lines[2].contains(want), "{want} in {}", lines[2]);
        }
        assert!(lines[3].contains("accept"), "{text}");
    }

    let (ok, json) = why(&s, &["020000000001", "--json"]);
    eprintln!("$ certradius why 020000000001 --json\n{json}");
    assert!(ok, "{json}");
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["mac"], MAC);
    assert_eq!(v["identity"], "bob@certradius.test");
    let attempts = v["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{v}");
    assert_eq!(attempts[0]["outcome"], "reject");
    assert_eq!(attempts[0]["reason"], "cert_expired");
    assert!(!attempts[0]["detail"].as_str().unwrap().is_empty(), "{v}");
    assert_eq!(attempts[0]["nas"], "loopback");
    assert_eq!(attempts[0]["nas_address"], "127.0.0.1");
    assert!(attempts[0]["round_trips"].as_u64().unwrap() >= 3, "{v}");
    assert_eq!(attempts[1]["outcome"], "accept");
    assert_eq!(attempts[1]["tls_version"], "TLSv1.3");

    // A device never seen: exit 1 and says so.
    let (ok, text) = why(&s, &["02:00:00:00:00:99"]);
    assert!(!ok);
    assert!(text.contains("no attempts recorded"), "{text}");
}

#[test]
fn why_covers_mab_accepts_and_rejects() {
    use certradius_testkit::mab::{MabRequest, Reply};
    const PRINTER: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
    const STRANGER: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x66];
    let s = setup_with(
        "mab",
        "[mab]\nenabled = true\nallow_file = \"{dir}/mab.csv\"\n",
        &[("mab.csv", "00:11:22:33:44:55,20,printer\n")],
    );
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let send = |mac: [u8; 6], id: u8| -> Code {
        let auth = random16();
        let reply = exchange(
            &sock,
            s.server.addr,
            &MabRequest::cisco(mac).encode(SECRET, id, auth),
        );
        Reply::read(&reply, SECRET, &auth).unwrap().code
    };
    assert_eq!(
        send(PRINTER, 1),
        Code::AccessAccept,
        "{}",
        s.server.log_text()
    );
    assert_eq!(send(STRANGER, 2), Code::AccessReject);

    let (ok, text) = why(&s, &["0011.2233.4455"]);
    eprintln!("$ certradius why 0011.2233.4455\n{text}");
    assert!(ok, "{text}");
    let last = text.lines().last().unwrap();
    for want in ["mab", "accept", "loopback (127.0.0.1)"] {
        assert!(last.contains(want), "{want} in {last}");
    }
    let (ok, json) = why(&s, &["00-11-22-33-44-66", "--json"]);
    assert!(ok, "{json}");
    let v: Value = serde_json::from_str(&json).unwrap();
    let attempts = v["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{v}");
    assert_eq!(attempts[0]["method"], "mab");
    assert_eq!(attempts[0]["outcome"], "reject");
    assert_eq!(attempts[0]["reason"], "mab_unknown_device");
    assert_eq!(attempts[0]["tls_version"], "-");
}
