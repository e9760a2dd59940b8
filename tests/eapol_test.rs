//! eapol_test (wpa_supplicant's RADIUS test client) against the real binary: the reference
//! supplicant for every behaviour we claim. Each conf in `testbed/eapol_test/` is run with its
//! `testbed/pki/` paths pointed at a freshly generated PKI; `fail-*.conf` must be refused.
//!
//! Without eapol_test the tests print a loud SKIP — except under CI (`CI` set), where a missing
//! eapol_test is a failure: CI must never pass without the supplicant having run.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{SECRET, Server};

fn eapol_test_available() -> bool {
    common::require_tool("eapol_test", "apt-get install eapoltest")
}

fn conf_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/eapol_test")
}

/// Copies a committed conf, pointing its `testbed/pki/` paths at `pki`.
fn conf_for(name: &str, pki: &Path, out: &Path) -> PathBuf {
    let text = std::fs::read_to_string(conf_dir().join(format!("{name}.conf"))).unwrap();
    let text = text.replace("testbed/pki/", &format!("{}/", pki.display()));
    let path = out.join(format!("{name}.conf"));
    std::fs::write(&path, text).unwrap();
    path
}

struct Run {
    ok: bool,
    output: String,
}

fn eapol_test(conf: &Path, server: &Server) -> Run {
    let out = Command::new("eapol_test")
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
        .unwrap();
    Run {
        ok: out.status.success(),
        output: String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr),
    }
}

/// The last per-authentication log line of the server.
fn last_auth_line(server: &Server) -> String {
    // The line is written right after the reply is sent; give the logger a moment.
    for _ in 0..50 {
        if let Some(l) =
            server.log_text().lines().rev().find(|l| {
                l.contains("authentication finished") || l.contains("authentication refused")
            })
        {
            return l.to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    String::new()
}

fn expect_success(name: &str, server: &Server, pki: &Path, dir: &Path, version: &str) -> String {
    let before = server.log_text().matches("authentication finished").count();
    let run = eapol_test(&conf_for(name, pki, dir), server);
    assert!(
        run.ok,
        "{name}: eapol_test failed\n{}\nserver log:\n{}",
        tail(&run.output),
        server.log_text()
    );
    assert!(
        run.output.contains("MPPE keys OK: 1  mismatch: 0"),
        "{name}: no MPPE keys OK line\n{}",
        tail(&run.output)
    );
    assert!(
        run.output.contains("SUCCESS"),
        "{name}: {}",
        tail(&run.output)
    );
    let mut line = String::new();
    for _ in 0..50 {
        if server.log_text().matches("authentication finished").count() > before {
            line = last_auth_line(server);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(line.contains("outcome=accept"), "{name}: {line}");
    assert!(
        line.contains(&format!("tls_version={version}")),
        "{name}: expected {version}: {line}"
    );
    let rt = line
        .split("round_trips=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or("?");
    eprintln!("{name}: {version}, {rt} round trips");
    run.output
}

fn expect_refusal(name: &str, server: &Server, pki: &Path, dir: &Path, reason: &str) -> String {
    let run = eapol_test(&conf_for(name, pki, dir), server);
    assert!(
        !run.ok,
        "{name}: eapol_test must fail\n{}",
        tail(&run.output)
    );
    assert!(
        !run.output.contains("MPPE keys OK: 1"),
        "{name}: keys were handed out\n{}",
        tail(&run.output)
    );
    let log = server.log_text();
    assert!(
        log.contains(&format!("reason={reason} ")),
        "{name}: reason {reason} not logged:\n{log}"
    );
    run.output
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

fn server_with(pki: &Path, dir: &Path, name: &str, fragment_size: usize) -> Server {
    let cfg = common::write_config(
        dir,
        pki,
        name,
        &format!("fragment_size = {fragment_size}"),
        "",
    );
    Server::start(&cfg, &dir.join(format!("{name}.log")))
}

#[test]
fn eapol_test_tls12_tls13_rsa_ecdsa_at_several_fragment_sizes() {
    if !eapol_test_available() {
        return;
    }
    let pki = common::pki("eapol");
    let dir = tempfile::tempdir().unwrap();
    for fragment_size in [300usize, 1024, 1400] {
        let server = server_with(
            &pki,
            dir.path(),
            &format!("frag{fragment_size}"),
            fragment_size,
        );
        eprintln!("server fragment_size={fragment_size}:");
        expect_success("tls12", &server, &pki, dir.path(), "TLSv1.2");
        expect_success("tls13", &server, &pki, dir.path(), "TLSv1.3");
        expect_success("ecdsa12", &server, &pki, dir.path(), "TLSv1.2");
        expect_success("ecdsa13", &server, &pki, dir.path(), "TLSv1.3");
        expect_success("frag300", &server, &pki, dir.path(), "TLSv1.2");
        expect_success("frag300-tls13", &server, &pki, dir.path(), "TLSv1.3");
        expect_success("frag1400", &server, &pki, dir.path(), "TLSv1.3");
    }
}

fn crl_config(pki: &Path, dir: &Path, name: &str, crls: &[PathBuf], extra_tls: &str) -> PathBuf {
    let list = crls
        .iter()
        .map(|p| format!("\"{}\"", p.display()))
        .collect::<Vec<_>>()
        .join(", ");
    common::write_config(
        dir,
        pki,
        name,
        &format!("crl_file = [{list}]\ncheck_crl = \"chain\"\n{extra_tls}"),
        "",
    )
}

fn all_crls(pki: &Path) -> Vec<PathBuf> {
    [
        "ca.crl.pem",
        "intermediate.crl.pem",
        "sub-intermediate.crl.pem",
    ]
    .iter()
    .map(|f| pki.join(f))
    .collect()
}

/// Every committed conf against a server checking CRLs over the whole chain: `fail-*.conf` must
/// be refused with the reason its first line names ("must be refused: REASON"), every other
/// conf must succeed with MPPE keys OK.
#[test]
fn every_committed_conf_behaves_as_it_says() {
    if !eapol_test_available() {
        return;
    }
    let pki = common::pki("eapol");
    let dir = tempfile::tempdir().unwrap();
    let cfg = crl_config(&pki, dir.path(), "all", &all_crls(&pki), "");
    // Identity binding and authorization rules as an operator would write them.
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(
        r#"
[identity]
match_fields = ["cn", "san_email", "san_upn"]
templates = ["host/{san_dns}"]

[authorize]
default = "reject"
reply_message = true

[[authorize.rule]]
name = "machines"
[authorize.rule.match]
subject_cn = "host/*"
[authorize.rule.reply]
Tunnel-Type = "VLAN"
Tunnel-Medium-Type = "IEEE-802"
Tunnel-Private-Group-Id = "200"

[[authorize.rule]]
name = "staff"
[authorize.rule.match]
subject_cn = "*@certradius.test"
[authorize.rule.reply]
Tunnel-Type = "VLAN"
Tunnel-Medium-Type = "IEEE-802"
Tunnel-Private-Group-Id = "100"
Session-Timeout = 28800
"#,
    );
    std::fs::write(&cfg, text).unwrap();
    let server = Server::start(&cfg, &dir.path().join("all.log"));
    let mut names: Vec<String> = std::fs::read_dir(conf_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".conf").map(str::to_string)
        })
        .collect();
    names.sort();
    let mut refused = 0;
    for name in &names {
        let text = std::fs::read_to_string(conf_dir().join(format!("{name}.conf"))).unwrap();
        if name.starts_with("fail-") {
            let reason = text
                .split("must be refused: ")
                .nth(1)
                .and_then(|r| {
                    r.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .next()
                })
                .unwrap_or_else(|| panic!("{name}.conf does not name its refusal reason"));
            let out = expect_refusal(name, &server, &pki, dir.path(), reason);
            // reply_message = true: the NAS is told the stable reason.
            assert!(
                out.contains("code=3 (Access-Reject)"),
                "{name}: no Access-Reject"
            );
            assert!(
                out.contains(&format!("'Access rejected: {reason}'")),
                "{name}: no Reply-Message with the reason"
            );
            refused += 1;
        } else {
            let version = if text.contains("tls_disable_tlsv1_3=1") {
                "TLSv1.2"
            } else {
                "TLSv1.3"
            };
            let out = expect_success(name, &server, &pki, dir.path(), version);
            // The rule's VLAN attributes reached the NAS (RFC 3580 §3.31): Tunnel-Type VLAN
            // (13), Tunnel-Medium-Type IEEE-802 (6), Tunnel-Private-Group-Id "100" or "200".
            let vlan = if name == "machine" {
                "323030"
            } else {
                "313030"
            };
            let attr = |n: &str, v: &str| {
                out.split(&format!("Attribute {n}"))
                    .nth(1)
                    .and_then(|rest| rest.lines().nth(1))
                    .is_some_and(|l| l.trim() == format!("Value: {v}"))
            };
            assert!(attr("64 (Tunnel-Type)", "0000000d"), "{name}: Tunnel-Type");
            assert!(
                attr("65 (Tunnel-Medium-Type)", "00000006"),
                "{name}: Tunnel-Medium-Type"
            );
            assert!(
                attr("81 (Tunnel-Private-Group-Id)", vlan),
                "{name}: VLAN {vlan}"
            );
            let rule = if name == "machine" {
                "rule=machines"
            } else {
                "rule=staff"
            };
            assert!(
                last_auth_line(&server).contains(rule),
                "{name}: {rule} not logged"
            );
        }
    }
    assert!(refused >= 7, "only {refused} fail-*.conf found");
}

/// A CRL replaced on disk takes effect without a restart; a broken replacement is refused and
/// the last good CRL stays in force.
#[test]
fn crl_replaced_on_disk_takes_effect_without_restart() {
    if !eapol_test_available() {
        return;
    }
    let pki = common::pki("eapol");
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.crl.pem");
    std::fs::copy(pki.join("intermediate-empty.crl.pem"), &live).unwrap();
    let crls = vec![
        pki.join("ca.crl.pem"),
        live.clone(),
        pki.join("sub-intermediate.crl.pem"),
    ];
    let cfg = crl_config(&pki, dir.path(), "live", &crls, "");
    let server = Server::start(&cfg, &dir.path().join("live.log"));
    let conf = conf_for("fail-revoked", &pki, dir.path());
    assert!(
        eapol_test(&conf, &server).ok,
        "not revoked yet: must succeed\n{}",
        server.log_text()
    );
    // Publish the new CRL the way publishers do: write aside, then rename over.
    let tmp = dir.path().join("live.crl.pem.new");
    std::fs::copy(pki.join("intermediate.crl.pem"), &tmp).unwrap();
    std::fs::rename(&tmp, &live).unwrap();
    let t0 = std::time::Instant::now();
    let mut refused = false;
    while t0.elapsed() < std::time::Duration::from_secs(8) {
        if !eapol_test(&conf, &server).ok {
            refused = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(
        refused,
        "the new CRL was not in force after 8 s:\n{}",
        server.log_text()
    );
    eprintln!("new CRL in force after {:?}", t0.elapsed());
    assert!(server.log_text().contains("reason=cert_revoked "));
    // A broken CRL is refused; the revocation stays in force.
    std::fs::write(
        &tmp,
        b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    )
    .unwrap();
    std::fs::rename(&tmp, &live).unwrap();
    let t0 = std::time::Instant::now();
    while !server
        .log_text()
        .contains("files changed on disk: configuration reload refused")
    {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(8),
            "the broken CRL was not refused within 8 s:\n{}",
            server.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        !eapol_test(&conf, &server).ok,
        "the last good CRL must stay in force"
    );
    // A good client still authenticates throughout.
    assert!(eapol_test(&conf_for("tls13", &pki, dir.path()), &server).ok);
}

#[test]
fn expired_crl_is_refused_unless_allowed() {
    if !eapol_test_available() {
        return;
    }
    let pki = common::pki("eapol");
    let dir = tempfile::tempdir().unwrap();
    let crls = vec![
        pki.join("ca.crl.pem"),
        pki.join("intermediate-expired.crl.pem"),
        pki.join("sub-intermediate.crl.pem"),
    ];
    let cfg = crl_config(&pki, dir.path(), "expired", &crls, "");
    let server = Server::start(&cfg, &dir.path().join("expired.log"));
    expect_refusal("tls13", &server, &pki, dir.path(), "crl_expired");
    drop(server);
    let cfg = crl_config(
        &pki,
        dir.path(),
        "allowed",
        &crls,
        "allow_expired_crl = true",
    );
    let server = Server::start(&cfg, &dir.path().join("allowed.log"));
    expect_success("tls13", &server, &pki, dir.path(), "TLSv1.3");
    expect_refusal("fail-revoked", &server, &pki, dir.path(), "cert_revoked");
}

/// eapol_test's re-authentication (`-r 1`) resumes the TLS session: both authentications get
/// MPPE keys, the second one resumed, for TLS 1.2 and 1.3.
#[test]
fn eapol_test_reauthentication_resumes_the_session() {
    if !eapol_test_available() {
        return;
    }
    let pki = common::pki("eapol");
    let dir = tempfile::tempdir().unwrap();
    let server = server_with(&pki, dir.path(), "resume", 1024);
    for name in ["tls12", "tls13"] {
        let before = server.log_text().matches("resumed=true").count();
        let out = Command::new("eapol_test")
            .arg("-c")
            .arg(conf_for(name, &pki, dir.path()))
            .args(["-a", "127.0.0.1", "-p", &server.addr.port().to_string()])
            .args(["-s", SECRET, "-t", "15", "-r", "1"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{name}: {}", tail(&text));
        assert!(
            text.contains("MPPE keys OK: 2  mismatch: 0"),
            "{name}: {}",
            tail(&text)
        );
        assert!(text.contains("resumed=1"), "{name}: OpenSSL did not resume");
        let mut after = before;
        for _ in 0..50 {
            after = server.log_text().matches("resumed=true").count();
            if after > before {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(
            after,
            before + 1,
            "{name}: the server did not log a resumed authentication"
        );
    }
}

/// eapol_test still authenticates while the server is flooded with garbage on loopback: from a
/// configured client's address (bad authenticators) and from an unknown one. The flood is
/// bounded in count and stops when the authentications are done.
#[test]
fn eapol_test_succeeds_during_a_garbage_flood() {
    if !eapol_test_available() {
        return;
    }
    let pki = common::pki("eapol");
    let dir = tempfile::tempdir().unwrap();
    let server = server_with(&pki, dir.path(), "flood", 1024);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let addr = server.addr;
    let flooders: Vec<_> = ["127.0.0.1:0", "127.0.0.3:0"]
        .into_iter()
        .map(|bind| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let s = std::net::UdpSocket::bind(bind).unwrap();
                let mut sent = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && sent < 200_000 {
                    let mut junk = [0u8; 300];
                    getrandom::fill(&mut junk).unwrap();
                    junk[0] = 1;
                    junk[2] = 1;
                    junk[3] = 44;
                    let _ = s.send_to(&junk, addr);
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    for name in ["tls12", "tls13", "ecdsa13"] {
        let version = if name == "tls12" {
            "TLSv1.2"
        } else {
            "TLSv1.3"
        };
        expect_success(name, &server, &pki, dir.path(), version);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent: u32 = flooders.into_iter().map(|f| f.join().unwrap()).sum();
    eprintln!("{sent} garbage packets sent during the authentications");
    assert!(sent > 1000, "the flood did not run");
    let log = server.log_text();
    assert!(
        log.matches("packet dropped").count() < 50,
        "drops must be rate-limited in the log"
    );
}
