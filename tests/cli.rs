//! The command line as an operator uses it: the first run on the embedded default (creates the
//! test PKI, prints how to authenticate, keeps its state in `testbed/state/`), `check` naming the
//! key at fault, `test-pki`, `ticket-key`, `sessions` from `/` under `$STATE_DIRECTORY`, and
//! `--log-format json` writing nothing but JSON.
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

/// Polls `what` every 50 ms for at most 10 s; whether it became true.
fn within_10s(mut what: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !what() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

fn kill(signal: &str, child: &std::process::Child) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn first_run_creates_the_test_pki_and_says_how_to_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = certradius()
        .current_dir(dir.path())
        // The embedded default listens on 127.0.0.1:1812 and :1813; a test must not depend on
        // those ports.
        .env("CERTRADIUS__SERVER__LISTEN", "127.0.0.1:0")
        .env("CERTRADIUS__ACCOUNTING__LISTEN", "127.0.0.1:0")
        .env_remove("STATE_DIRECTORY")
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
    // Its state (accounting file, control socket) goes to testbed/state/, not the working
    // directory (the repository root under `cargo run`).
    let state = dir.path().join("testbed/state");
    let socket = state.join("certradius.sock");
    let socket_made = within_10s(|| socket.exists());
    let _ = child.kill();
    let _ = child.wait();
    assert!(socket_made, "no control socket in testbed/state/");
    assert!(state.join("certradius-accounting.jsonl").exists());
    for f in [
        "certradius.sock",
        "certradius-accounting.jsonl",
        "certradius.state",
    ] {
        assert!(!dir.path().join(f).exists(), "{f} in the working directory");
    }
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

/// Under systemd the server runs with `$STATE_DIRECTORY` and an operator runs `certradius
/// sessions` from wherever their shell is: both must find the same control socket, and a
/// SIGHUP must not claim the state paths changed.
#[test]
fn sessions_works_from_root_under_state_directory() {
    let pki = common::pki("cli");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let cfg = common::write_config(
        dir.path(),
        &pki,
        "statedir",
        "",
        "[coa]\ncontrol_socket = \"ctl.sock\"\n",
    );
    let env = [("STATE_DIRECTORY", state.to_str().unwrap())];
    let server = common::Server::start_with_env(&cfg, &dir.path().join("statedir.log"), &env);
    let socket = state.join("ctl.sock");
    assert!(within_10s(|| socket.exists()), "{}", server.log_text());
    let sessions = |state_directory: Option<&str>| {
        let mut cmd = certradius();
        cmd.arg("sessions")
            .arg("--config")
            .arg(&cfg)
            .current_dir("/")
            .env_remove("CERTRADIUS_LOG")
            .env_remove("STATE_DIRECTORY");
        if let Some(d) = state_directory {
            cmd.env("STATE_DIRECTORY", d);
        }
        cmd.output().unwrap()
    };
    let out = sessions(Some(state.to_str().unwrap()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("acct_session_id\tnas\t"), "{stdout}");
    // Without it, the relative socket is looked for in / (and not found there).
    let out = sessions(None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("control socket ctl.sock"), "{err}");

    // A reload resolves the paths the same way: no state path "changed".
    kill("-HUP", &server.child);
    assert!(
        within_10s(|| server.log_text().contains("configuration reloaded")),
        "{}",
        server.log_text()
    );
    let log = server.log_text();
    assert!(!log.contains("takes effect only after a restart"), "{log}");
}

/// `--log-format json`: a log shipper reading the journal (stdout and stderr both) meets only
/// JSON objects, the addresses included; here on the embedded default, which also announces
/// its accounting listener and prints how to try it.
#[test]
fn json_log_format_writes_only_json_on_stdout_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = dir.path().join("stderr.log");
    let mut child = certradius()
        .args(["serve", "--log-format", "json"])
        .current_dir(dir.path())
        .env("CERTRADIUS__SERVER__LISTEN", "127.0.0.1:0")
        .env("CERTRADIUS__ACCOUNTING__LISTEN", "127.0.0.1:0")
        .env_remove("STATE_DIRECTORY")
        .env_remove("CERTRADIUS_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()))
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut addr = None;
    while addr.is_none() && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        addr = common::announced(&line, "listening", "udp");
        stdout.push(line);
    }
    let Some(addr) = addr else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no listening event: {stdout:?}");
    };
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    let socket = dir.path().join("testbed/state/certradius.sock");
    // Its last start-up step; then stop it cleanly, so the stopping lines are logged too.
    let _ = within_10s(|| socket.exists());
    kill("-TERM", &child);
    stdout.extend(lines.map_while(Result::ok));
    assert!(child.wait().unwrap().success());
    let stderr = std::fs::read_to_string(&stderr).unwrap();
    let mut events = Vec::new();
    for line in stdout.iter().map(String::as_str).chain(stderr.lines()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(v.is_object(), "{line}");
        if let Some(e) = v["event"].as_str() {
            events.push(e.to_string());
        }
    }
    assert_eq!(events, ["accounting", "listening", "try_it"], "{stdout:?}");
    assert!(stderr.lines().count() >= 2, "{stderr}");
}
