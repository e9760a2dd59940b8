//! Shared by the integration tests: a test PKI generated once per test binary, configs that
//! point at it, and the real server binary started on an ephemeral loopback port.
#![allow(
    clippy::disallowed_methods,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod pg;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const SECRET: &str = "testing123";

/// The address in one of the server's announcements on stdout (`event` "listening" or
/// "accounting"): `certradius: listening on udp ADDR` in text mode,
/// `{"event":"listening","transport":"udp","addr":"ADDR"}` in JSON mode.
pub fn announced(line: &str, event: &str, transport: &str) -> Option<SocketAddr> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        return (v["event"] == event && v["transport"] == transport)
            .then(|| v["addr"].as_str().unwrap().parse().unwrap());
    }
    let text = if event == "listening" {
        "listening on"
    } else {
        "accounting on"
    };
    line.strip_prefix(&format!("certradius: {text} {transport} "))
        .map(|a| a.trim().parse().unwrap())
}

/// The test PKI for this test binary (generated once, under cargo's per-target temp dir).
pub fn pki(binary: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pki-{binary}"));
        let _ = std::fs::remove_dir_all(&dir);
        certradius_pki::generate(&dir).expect("generate test PKI");
        dir
    })
    .clone()
}

/// A config file for the real binary: loopback, ephemeral port, this PKI.
pub fn write_config(dir: &Path, pki: &Path, name: &str, extra_tls: &str, extra: &str) -> PathBuf {
    let text = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[[client]]
name = "loopback"
address = "127.0.0.1"
secret = "{SECRET}"

[tls]
certificate_file = "{pki}/server.pem"
private_key_file = "{pki}/server.key"
ca_file = "{pki}/ca.pem"
{extra_tls}

{extra}
"#,
        pki = pki.display()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The release-or-debug `certradius` binary, running until dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// The accounting listener, when `[accounting] listen` is set.
    pub acct: Option<SocketAddr>,
    pub log: PathBuf,
}

impl Server {
    pub fn start(config: &Path, log: &Path) -> Server {
        Self::start_with_env(config, log, &[])
    }

    pub fn start_with_env(config: &Path, log: &Path, env: &[(&str, &str)]) -> Server {
        Self::start_with_args(config, log, env, &[])
    }

    /// Extra command-line arguments after `serve` (e.g. `--log-format json`).
    pub fn start_with_args(
        config: &Path,
        log: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Server {
        let logfile = std::fs::File::create(log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_certradius"));
        cmd.arg("serve")
            .args(args)
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(logfile))
            .env_remove("CERTRADIUS_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn certradius");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut acct = None;
        let addr = loop {
            assert!(
                Instant::now() < deadline,
                "server did not report its address"
            );
            match lines.next() {
                Some(Ok(line)) => {
                    acct = acct.or(announced(&line, "accounting", "udp"));
                    if let Some(a) = announced(&line, "listening", "udp") {
                        break a;
                    }
                }
                _ => panic!(
                    "server exited before listening; log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                ),
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            addr,
            acct,
            log: log.to_path_buf(),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh random Request Authenticator, as a real NAS draws one per request.
pub fn random16() -> [u8; 16] {
    let mut a = [0u8; 16];
    getrandom::fill(&mut a).unwrap();
    a
}

/// The OS RNG in the shape `Core::handle_datagram` takes.
pub fn rng(b: &mut [u8]) {
    getrandom::fill(b).unwrap();
}

/// The test supplicant (identity `bob@certradius.test`, TLS 1.3 or 1.2, the test PKI's
/// `client-<key>` certificate, 1400-octet fragments) behind a NAS that uses `secret`.
pub fn conversation(pki: &Path, key: &str, secret: &str) -> certradius_testkit::peer::Conversation {
    use certradius_testkit::peer;
    let cfg = peer::client_config(
        &pki.join("ca.pem"),
        &pki.join(format!("client-{key}.pem")),
        &pki.join(format!("client-{key}.key")),
        &[&rustls::version::TLS13, &rustls::version::TLS12],
    )
    .unwrap();
    let sup =
        peer::Supplicant::new(cfg, "radius.certradius.test", b"bob@certradius.test", 1400).unwrap();
    peer::Conversation::new(sup, peer::Nas::new(secret.as_bytes()))
}
