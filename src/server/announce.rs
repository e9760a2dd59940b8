//! What the server tells its caller on stdout (the addresses it listens on, the "try it"
//! banner) and its fatal start-up errors on stderr, in the log format chosen at start.
//!
//! Text mode keeps the exact lines tests and scripts parse (`certradius: listening on udp ADDR`).
//! JSON mode (`--log-format json`, `[log] format = "json"`) writes one JSON object per line on
//! stdout too, `{"event":"listening","transport":"udp","addr":"127.0.0.1:1812"}`: under systemd
//! both streams reach the journal, and a log shipper must never meet a line that is not JSON.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

/// Set once by `main` before anything is announced; text until then.
static JSON: AtomicBool = AtomicBool::new(false);

/// Chooses the format of every later announcement (`main`, right after the log format is known).
pub fn set_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

/// Whether announcements are JSON objects.
pub fn is_json() -> bool {
    JSON.load(Ordering::Relaxed)
}

#[derive(Serialize)]
struct Listening<'a> {
    event: &'a str,
    transport: &'a str,
    addr: SocketAddr,
}

/// `transport` (`udp`, `tcp`, `tls`) serves RADIUS authentication on `addr`. Machine-readable:
/// tests and scripts that start us on port 0 read it.
pub fn listening(transport: &str, addr: SocketAddr) {
    socket("listening", "listening on", transport, addr);
}

/// The RFC 2866 accounting listener is on `addr` (UDP). Printed before the authentication
/// line(s), which callers wait for.
pub fn accounting(addr: SocketAddr) {
    socket("accounting", "accounting on", "udp", addr);
}

fn socket(event: &str, text: &str, transport: &str, addr: SocketAddr) {
    let line = if is_json() {
        let v = Listening {
            event,
            transport,
            addr,
        };
        serde_json::to_string(&v).unwrap_or_default()
    } else {
        format!("certradius: {text} {transport} {addr}")
    };
    stdout_line(&line);
}

/// Any JSON object (JSON mode only: the caller words its own text for text mode).
pub fn event(value: &impl Serialize) {
    if let Ok(line) = serde_json::to_string(value) {
        stdout_line(&line);
    }
}

/// A fatal start-up error: `certradius: MESSAGE` on stderr in text mode, an ERROR log object
/// (the tracing subscriber's JSON) in JSON mode.
pub fn error(message: &str) {
    if is_json() {
        tracing::error!("{message}");
    } else {
        let _ = writeln!(std::io::stderr().lock(), "certradius: {message}");
    }
}

/// One whole line; a closed stdout (the caller stopped reading) must not stop the server.
fn stdout_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_announcement_carries_what_the_text_line_says() {
        let v = Listening {
            event: "listening",
            transport: "udp",
            addr: "127.0.0.1:1812".parse().unwrap(),
        };
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"event":"listening","transport":"udp","addr":"127.0.0.1:1812"}"#
        );
    }
}
