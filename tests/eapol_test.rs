//! eapol_test (wpa_supplicant's RADIUS test client) against the real binary: the reference
//! supplicant for every behaviour we claim. Each conf in `testbed/eapol_test/` is run with its
//! `testbed/pki/` paths pointed at a freshly generated PKI; `fail-*.conf` must be refused.
//!
//! Without eapol_test the tests print a loud SKIP — except under CI (`CI` set), where a missing
//! eapol_test is a failure: CI must never pass without the supplicant having run.
#![allow(
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
    let found = Command::new("eapol_test")
        .arg("-h")
        .output()
        .map(|_| true)
        .unwrap_or(false);
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!(
                "eapol_test is not installed, and CI must not skip the eapol_test suite (apt-get install eapoltest)"
            );
        }
        eprintln!(
            "\n*** SKIPPED: eapol_test not found (apt-get install eapoltest); the eapol_test suite did NOT run ***\n"
        );
    }
    found
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

fn expect_success(name: &str, server: &Server, pki: &Path, dir: &Path, version: &str) {
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
}

fn expect_refusal(name: &str, server: &Server, pki: &Path, dir: &Path, reason: &str) {
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

#[test]
fn eapol_test_refusals() {
    if !eapol_test_available() {
        return;
    }
    let pki = common::pki("eapol");
    let dir = tempfile::tempdir().unwrap();
    let server = server_with(&pki, dir.path(), "refusals", 1024);
    expect_refusal(
        "fail-untrusted",
        &server,
        &pki,
        dir.path(),
        "cert_untrusted",
    );
}
