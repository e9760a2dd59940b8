//! What tests need from outside the repository: programs on `PATH` (openssl, eapol_test,
//! radsecproxy, promtool, ...) and an `openssl ocsp` responder (RFC 6960) serving the test PKI.
//!
//! A missing tool never lets a test pass without having run: locally the test prints a loud
//! SKIPPED line and returns; under CI (the `CI` environment variable set) it fails, so a CI
//! image that lost a tool is noticed instead of silently testing less.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Whether a test may go on: `found` passes through; when false, a loud SKIPPED line (naming
/// `what`, how to `install` it and the test) and false, or a panic under CI.
pub fn require(found: bool, what: &str, install: &str) -> bool {
    if found {
        return true;
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("this test");
    if std::env::var_os("CI").is_some() {
        panic!("{what} is not available ({install}), and CI must not skip {test}");
    }
    eprintln!("\n*** SKIPPED: {what} not available ({install}); {test} did NOT run ***\n");
    false
}

/// [`require`] for a program on `PATH`.
pub fn require_tool(program: &str, install: &str) -> bool {
    require(on_path(program), program, install)
}

/// Whether `program` is an executable file on `PATH` (or at that path, when it has a `/`).
/// Looking is enough: running a tool to probe it may start a daemon (radsecproxy) or read stdin
/// (openssl).
pub fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(Path::new(program));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| executable(&d.join(program))))
}

/// How long `openssl ocsp` may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// `openssl ocsp` on loopback answering from the test PKI's `ocsp-index.txt` (it marks
/// `client-revoked` revoked) with the delegated responder certificate `ocsp.pem`; killed when
/// dropped.
pub struct OcspResponder {
    child: Child,
    /// `http://127.0.0.1:PORT/`, for `[ocsp] url`.
    pub url: String,
}

impl OcspResponder {
    /// Starts the responder for the PKI in `pki` (as written by `certradius_pki::generate`),
    /// with `extra` arguments for `openssl ocsp`, and waits until it listens.
    pub fn start(pki: &Path, extra: &[&str]) -> std::io::Result<OcspResponder> {
        // A port nobody listens on (bound, then released for openssl to take).
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        // OpenSSL 3.0 takes a bare port here (it binds every address); tests only use loopback.
        let mut child = Command::new("openssl")
            .args(["ocsp", "-index"])
            .arg(pki.join("ocsp-index.txt"))
            .args(["-port", &port.to_string(), "-rsigner"])
            .arg(pki.join("ocsp.pem"))
            .arg("-rkey")
            .arg(pki.join("ocsp.key"))
            .arg("-CA")
            .arg(pki.join("intermediate.pem"))
            .args(["-ndays", "1"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let responder = |child| OcspResponder {
            child,
            url: format!("http://127.0.0.1:{port}/"),
        };
        let Some(stdout) = child.stdout.take() else {
            return Err(std::io::Error::other("openssl ocsp: no stdout"));
        };
        // Drained for the responder's whole life, so it never blocks on a full pipe.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // Ready once it prints `ACCEPT ...`. Probing the port instead would not do: OpenSSL 3.0's
        // responder hangs on a connection closed without a request.
        #[allow(clippy::disallowed_methods)] // a test tool's start-up deadline, not the core's time
        let started = Instant::now();
        loop {
            match rx.recv_timeout(START_TIMEOUT.saturating_sub(started.elapsed())) {
                Ok(line) if line.contains("ACCEPT") => return Ok(responder(child)),
                Ok(_) => {}
                Err(e) => {
                    let mut r = responder(child);
                    let status = r.child.try_wait();
                    return Err(std::io::Error::other(format!(
                        "openssl ocsp did not start listening within {START_TIMEOUT:?} ({e}; exit: {status:?})"
                    )));
                }
            }
        }
    }
}

impl Drop for OcspResponder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_is_found_on_path_or_by_its_path_and_a_missing_one_is_not() {
        assert!(on_path("sh"));
        assert!(on_path("/bin/sh"));
        assert!(!on_path("certradius-no-such-tool"));
        assert!(!on_path("/nonexistent/sh"));
        // A file that is not executable is not a tool.
        use std::os::unix::fs::PermissionsExt;
        let plain = std::env::temp_dir().join(format!("certradius-outside-{}", std::process::id()));
        std::fs::write(&plain, "").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let found = on_path(plain.to_str().unwrap());
        std::fs::remove_file(&plain).unwrap();
        assert!(!found);
        assert!(require(true, "sh", "always there"));
    }
}
