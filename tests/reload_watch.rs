//! The file-watch reload is the same reload as SIGHUP: a CRL replaced on disk (no signal) moves
//! the CRL gauge of `/metrics` within 10 s, and a broken CRL file is refused and counted as a
//! failed reload that `/metrics` shows (the alert `CertradiusReloadFailed` reads it).
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::Server;
use common::metrics::{metrics_addr, scrape};

/// Scrapes until `ok` holds for the body, at most 10 s.
fn wait_for(addr: SocketAddr, server: &Server, what: &str, ok: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = scrape(addr);
        if ok(&body) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within 10 s; /metrics:\n{body}\nlog:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn crl_series(body: &str) -> Vec<&str> {
    body.lines()
        .filter(|l| l.starts_with("certradius_crl_next_update_timestamp_seconds{"))
        .collect()
}

#[test]
fn a_crl_replaced_on_disk_moves_the_gauge_and_a_broken_one_counts_a_failed_reload() {
    let pki = common::pki("reload_watch");
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.crl.pem");
    let read = |f: &str| std::fs::read_to_string(pki.join(f)).unwrap();
    std::fs::write(&live, read("ca.crl.pem")).unwrap();
    let config = common::write_config(
        dir.path(),
        &pki,
        "reload_watch",
        &format!("crl_file = \"{}\"", live.display()),
        "[metrics]\nlisten = \"127.0.0.1:0\"\n",
    );
    let server = Server::start(&config, &dir.path().join("server.log"));
    let addr = metrics_addr(&server);
    let before = scrape(addr);
    assert_eq!(crl_series(&before).len(), 1, "{before}");

    // A second CRL (the intermediate's) appears, renamed over the file as publishers do.
    let tmp = dir.path().join("live.crl.tmp");
    std::fs::write(&tmp, read("ca.crl.pem") + &read("intermediate.crl.pem")).unwrap();
    std::fs::rename(&tmp, &live).unwrap();
    wait_for(addr, &server, "the new CRL in the gauge", |b| {
        crl_series(b).len() == 2
    });
    assert!(
        server
            .log_text()
            .contains("files changed on disk: configuration reloaded")
    );

    // A broken CRL: refused, counted, the last good configuration (and its gauge) stays.
    std::fs::write(&live, "not a CRL").unwrap();
    wait_for(addr, &server, "a failed reload counted", |b| {
        b.lines()
            .any(|l| l == "certradius_config_reloads_total{result=\"failure\"} 1")
    });
    assert_eq!(crl_series(&scrape(addr)).len(), 2);
    assert!(
        server
            .log_text()
            .contains("files changed on disk: configuration reload refused")
    );
}
