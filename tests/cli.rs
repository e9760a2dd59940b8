//! The command line as an operator uses it: the first run on the embedded default (creates the
//! test PKI, prints how to authenticate), `check` naming the key at fault, `test-pki`, and
//! `ticket-key`.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn certradius() -> Command {
    Command::new(env!("CARGO_BIN_EXE_certradius"))
}

#[test]
fn first_run_creates_the_test_pki_and_says_how_to_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = certradius()
        .current_dir(dir.path())
        // The embedded default listens on 127.0.0.1:1812; a test must not depend on that port.
        .env("CERTRADIUS__SERVER__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("eapol_test -c testbed/eapol_test/tls13.conf") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.contains("certradius: listening on udp 127.0.0.1:"),
        "{seen}"
    );
    assert!(seen.contains("-s testing123"), "{seen}");
    assert!(
        seen.contains("eapol_test -c testbed/eapol_test/tls13.conf"),
        "{seen}"
    );
    for f in [
        "ca.pem",
        "server.pem",
        "server.key",
        "client-rsa.pem",
        "client-ecdsa.key",
    ] {
        assert!(
            dir.path().join("testbed/pki").join(f).exists(),
            "{f} not created"
        );
    }
}

#[test]
fn check_accepts_a_good_config_and_names_the_key_at_fault() {
    let pki = common::pki("cli");
    let dir = tempfile::tempdir().unwrap();
    let good = common::write_config(dir.path(), &pki, "good", "", "");
    let out = certradius()
        .args(["check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("configuration OK"));
    // The default build: aws-lc-rs, not in FIPS mode (no `fips` feature).
    assert!(
        stdout.contains("crypto provider aws-lc-rs, FIPS mode off"),
        "{stdout}"
    );

    let cases = [
        // The key does not belong to the certificate.
        (
            format!(
                "private_key_file = \"{}\"",
                pki.join("client-ecdsa.key").display()
            ),
            "tls.private_key_file",
        ),
        ("fragment_size = 20".to_string(), "tls.fragment_size"),
        (
            "tls_min_version = \"1.1\"".to_string(),
            "tls.tls_min_version",
        ),
        ("fragment_sise = 300".to_string(), "fragment_sise"),
        (
            "crl_file = [\"/nonexistent.crl\"]".to_string(),
            "tls.crl_file",
        ),
    ];
    for (i, (line, key)) in cases.iter().enumerate() {
        let path = common::write_config(dir.path(), &pki, &format!("bad{i}"), line, "");
        // A later duplicate key would be a TOML error: drop the default line it overrides.
        let text = std::fs::read_to_string(&path).unwrap();
        let name = line.split(' ').next().unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with(name) || l.contains(line.as_str()))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&path, text).unwrap();
        let out = certradius()
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{line}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(key),
            "{line}: the message must name {key}: {err}"
        );
    }
    let rules = common::write_config(
        dir.path(),
        &pki,
        "rules",
        "",
        "[[authorize.rule]]\nname = \"x\"\n[authorize.rule.reply]\nTunnel-Typo = 13\n",
    );
    let out = certradius()
        .args(["check", "--config"])
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Tunnel-Typo"));
}

#[test]
fn test_pki_and_ticket_key_commands() {
    let dir = tempfile::tempdir().unwrap();
    let out = certradius()
        .arg("test-pki")
        .arg(dir.path().join("p"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(dir.path().join("p/ca.pem").exists());
    assert!(String::from_utf8_lossy(&out.stdout).contains("TEST PKI"));
    let keys = dir.path().join("tickets.keys");
    for _ in 0..2 {
        assert!(
            certradius()
                .arg("ticket-key")
                .arg(&keys)
                .status()
                .unwrap()
                .success()
        );
    }
    let text = std::fs::read_to_string(&keys).unwrap();
    assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 2);
}

/// `check` warns 30 days before a certificate expires and says when it has: the server
/// certificate of the test PKI, looked at 40 days, 20 days before its notAfter and a day after.
#[test]
fn check_warns_before_a_certificate_expires_and_after() {
    let pki = common::pki("cli");
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write_config(dir.path(), &pki, "expiry", "", "");
    let loaded = certradius::server::reload::load(Some(&cfg), None).unwrap();
    let pem = std::fs::read(pki.join("server.pem")).unwrap();
    let (_, der) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let not_after = der.parse_x509().unwrap().validity().not_after.timestamp();
    let at = |offset_days: i64| {
        let t = not_after + offset_days * 86_400;
        std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap())
    };
    let server_warnings = |offset_days: i64| -> Vec<String> {
        certradius::server::check::report_at(&loaded, at(offset_days))
            .warnings
            .into_iter()
            .filter(|w| w.starts_with("server certificate"))
            .collect()
    };
    assert_eq!(server_warnings(-40), Vec::<String>::new());
    let soon = server_warnings(-20);
    assert!(
        soon.len() == 1
            && (soon[0].contains("expires in 19 days") || soon[0].contains("expires in 20 days")),
        "{soon:?}"
    );
    let gone = server_warnings(1);
    assert!(
        gone.len() == 1 && gone[0].contains("has expired"),
        "{gone:?}"
    );
}
