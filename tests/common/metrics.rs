//! `/metrics` as a test reads it: the address the server logged, a scrape (HTTP/1.1, the
//! Prometheus text format 0.0.4), one sample's value.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::Server;

/// The metrics address the server logged.
pub fn metrics_addr(server: &Server) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(a) = server
            .log_text()
            .lines()
            .find_map(|l| l.split("serving http://").nth(1))
            .and_then(|r| r.strip_suffix("/metrics"))
        {
            return a.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no metrics line in the log");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One scrape's body; the head must say 200 and the text format.
pub fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_string()
}

/// The value of one sample line (`name{labels} value`), 0 when absent.
pub fn sample(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}
