//! Shared by the integration tests: a test PKI generated once per test binary, configs that
//! point at it, the real server binary started on ephemeral loopback ports, and what tests need
//! from outside (tools on `PATH`, an `openssl ocsp` responder): present, or a loud SKIPPED
//! locally and a failure under CI.
#![allow(
    clippy::disallowed_methods,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod metrics;
pub mod pg;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[allow(unused_imports)] // each test binary uses some of them
pub use certradius_testkit::outside::{OcspResponder, require, require_tool};

pub const SECRET: &str = "testing123";

/// The test PKI's OCSP responder (`openssl ocsp`), or None when openssl is missing (a loud
/// SKIPPED; a failure under CI).
pub fn ocsp_responder(pki: &Path) -> Option<OcspResponder> {
    if !require_tool("openssl", "apt-get install openssl") {
        return None;
    }
    Some(OcspResponder::start(pki, &[]).expect("openssl ocsp responder"))
}

/// The records of a JSON-lines file the server is appending to (the audit log, accounting),
/// without a last line it has not finished writing: a read can land between the start and the
/// end of one record. A missing file has no records yet.
pub fn json_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Polls `what` every 50 ms until it is true (true) or `within` has passed (false).
#[must_use]
pub fn wait_until(within: Duration, mut what: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !what() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

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
    /// The RADIUS/TCP and RadSec listeners, when started with [`Server::start_with_streams`].
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
    pub log: PathBuf,
}

/// The stream listeners a server is expected to announce.
#[derive(Debug, Clone, Copy, Default)]
pub struct Streams {
    pub tcp: bool,
    pub tls: bool,
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
        Self::launch(config, log, env, args, Streams::default())
    }

    /// As [`Server::start_with_args`], also waiting for the `[tcp]` / `[radsec]` listeners.
    pub fn start_with_streams(
        config: &Path,
        log: &Path,
        args: &[&str],
        streams: Streams,
    ) -> Server {
        Self::launch(config, log, &[], args, streams)
    }

    fn launch(
        config: &Path,
        log: &Path,
        env: &[(&str, &str)],
        args: &[&str],
        streams: Streams,
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
        let (mut addr, mut acct, mut tcp, mut tls) = (None, None, None, None);
        // The UDP line comes after the accounting one and before the stream ones.
        while addr.is_none() || (streams.tcp && tcp.is_none()) || (streams.tls && tls.is_none()) {
            assert!(
                Instant::now() < deadline,
                "server did not report its addresses"
            );
            let Some(Ok(line)) = lines.next() else {
                panic!(
                    "server exited before listening; log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            };
            let parse = |event: &str, transport: &str| announced(&line, event, transport);
            acct = acct.or(parse("accounting", "udp"));
            addr = addr.or(parse("listening", "udp"));
            tcp = tcp.or(parse("listening", "tcp"));
            tls = tls.or(parse("listening", "tls"));
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            addr: addr.unwrap(),
            acct,
            tcp,
            tls,
            log: log.to_path_buf(),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most `within`) until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log_text().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "{needle:?} not logged within {within:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `sig` (`"HUP"`, `"TERM"`, ...) to the server.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Waits (at most `within`) for the server to exit on its own.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {within:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The final counter line of a server that has stopped (`stopped; counters: a=1 b=2 ...`).
    pub fn final_counters(&self) -> String {
        let log = self.log_text();
        log.lines()
            .find(|l| l.contains("stopped; counters:"))
            .unwrap_or_else(|| panic!("no final counters in the log:\n{log}"))
            .to_string()
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
