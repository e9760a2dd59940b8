//! Operating the real binary: the Prometheus endpoint (scraped, checked with `promtool`), the
//! shipped alert rules, and SIGHUP reloading the whole configuration while authentications run.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certradius_testkit::peer::{self, Conversation, Nas, Next, Outcome, Supplicant};
use common::metrics::{metrics_addr, sample, scrape};
use common::{SECRET, Server, random16};

/// An outside tool: present, or a loud SKIPPED (a failure under CI).
fn tool(name: &str, package: &str) -> bool {
    common::require_tool(name, &format!("apt-get install {package}"))
}

fn config(dir: &Path, pki: &Path, secret: &str, server_cert: &str, rules: &str) -> PathBuf {
    let text = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[[client]]
name = "loopback"
address = "127.0.0.1"
secret = "{secret}"

[tls]
certificate_file = "{pki}/{server_cert}.pem"
private_key_file = "{pki}/{server_cert}.key"
ca_file = "{pki}/ca.pem"
crl_file = ["{pki}/ca.crl.pem", "{pki}/intermediate.crl.pem"]

[metrics]
listen = "127.0.0.1:0"

{rules}
"#,
        pki = pki.display()
    );
    let path = dir.join("c.toml");
    // Written whole then renamed, as an operator's deployment tool would.
    let tmp = dir.join("c.toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn wait_for_log(server: &Server, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.log_text().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One whole EAP-TLS authentication over UDP with the testkit peer.
fn authenticate(addr: SocketAddr, pki: &Path, secret: &str) -> Result<Outcome, String> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut conv = common::conversation(pki, "ecdsa", secret);
    let mut packet = conv.start(random16());
    let mut buf = vec![0u8; 4096];
    for _ in 0..50 {
        let mut reply = None;
        for _ in 0..5 {
            s.send_to(&packet, addr).unwrap();
            if let Ok((n, _)) = s.recv_from(&mut buf) {
                reply = Some(buf[..n].to_vec());
                break;
            }
        }
        let reply = reply.ok_or("no reply after 5 tries")?;
        match conv
            .on_reply(&reply, random16())
            .map_err(|e| format!("{e:?}"))?
        {
            Next::Send(p) => packet = p,
            Next::Done(o) => return Ok(*o),
        }
    }
    Err("no end".into())
}

fn accepted(o: &Result<Outcome, String>) -> bool {
    matches!(
        o,
        Ok(Outcome::Accepted {
            keys_match: true,
            ..
        })
    )
}

#[test]
fn metrics_are_scraped_count_an_accept_and_pass_promtool() {
    let pki = common::pki("operations");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &pki, SECRET, "server", "");
    let server = Server::start(&cfg, &dir.path().join("m.log"));
    let addr = metrics_addr(&server);
    let accept =
        r#"certradius_authentications_total{outcome="accept",reason="none",method="eap-tls"}"#;
    let before = scrape(addr);
    assert_eq!(sample(&before, accept), 0.0);
    assert!(accepted(&authenticate(server.addr, &pki, SECRET)));
    let body = scrape(addr);
    assert_eq!(sample(&body, accept), 1.0, "{body}");
    assert!(
        sample(
            &body,
            r#"certradius_requests_total{type="access_request",client="loopback"}"#
        ) >= 3.0,
        "{body}"
    );
    for series in [
        "certradius_authentication_duration_seconds_count{tls_version=\"TLSv1.3\"}",
        "certradius_authentication_round_trips_count{tls_version=\"TLSv1.3\"}",
    ] {
        assert_eq!(sample(&body, series), 1.0, "{series}\n{body}");
    }
    for needle in [
        "certradius_conversations_in_progress ",
        "certradius_requests_queued 0",
        "certradius_packets_dropped_total{reason=\"unknown_client\"} 0",
        "certradius_duplicate_requests_total{action=\"answered_from_cache\"}",
        "certradius_ocsp_lookups_total{result=\"cache_hit\"}",
        "certradius_certificate_expiry_timestamp_seconds{role=\"server\",subject=\"O=certradius test, CN=radius.certradius.test\"}",
        "certradius_certificate_expiry_timestamp_seconds{role=\"ca\",",
        "certradius_crl_next_update_timestamp_seconds{issuer=",
        "certradius_config_reloads_total{result=\"success\"} 0",
    ] {
        assert!(body.contains(needle), "{needle} missing:\n{body}");
    }
    // Every series the shipped dashboard and alert rules use exists in the scrape.
    for file in [
        "testbed/grafana/certradius.json",
        "testbed/prometheus/alerts.yml",
    ] {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
        for (i, _) in text.match_indices("certradius_") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if name.len() > "certradius_".len() {
                assert!(
                    body.contains(&name),
                    "{file} uses {name}, not in the scrape"
                );
            }
        }
    }
    // Anything but GET /metrics is refused; the endpoint keeps serving.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 404"), "{out}");
    // A request head over the 8 KiB bound is refused, not buffered.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let _ = s.write_all(big.as_bytes());
    let mut out = [0u8; 12];
    s.read_exact(&mut out).unwrap();
    assert_eq!(&out, b"HTTP/1.1 431");
    if tool("promtool", "prometheus") {
        let file = dir.path().join("scrape.txt");
        std::fs::write(&file, &body).unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("promtool check metrics < {}", file.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn alert_rules_pass_promtool() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/prometheus/alerts.yml");
    assert!(rules.exists());
    if !tool("promtool", "prometheus") {
        return;
    }
    let out = Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The certificates in eapol_test's `-o` file (what the server presented), whitespace removed.
fn served_certificates(server: &Server, pki: &Path, dir: &Path, secret: &str) -> Vec<String> {
    let conf = dir.join("eapol.conf");
    std::fs::write(
        &conf,
        format!(
            "network={{\n key_mgmt=WPA-EAP\n eap=TLS\n identity=\"alice@certradius.test\"\n ca_cert=\"{p}/ca.pem\"\n client_cert=\"{p}/client-rsa.pem\"\n private_key=\"{p}/client-rsa.key\"\n}}\n",
            p = pki.display()
        ),
    )
    .unwrap();
    let out_file = dir.join("server-cert.pem");
    let _ = std::fs::remove_file(&out_file);
    let out = Command::new("eapol_test")
        .arg("-c")
        .arg(&conf)
        .arg("-a")
        .arg(server.addr.ip().to_string())
        .arg("-p")
        .arg(server.addr.port().to_string())
        .arg("-s")
        .arg(secret)
        .arg("-t")
        .arg("15")
        .arg("-o")
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "eapol_test failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    pem_bodies(&std::fs::read_to_string(&out_file).unwrap())
}

fn pem_bodies(text: &str) -> Vec<String> {
    text.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .filter_map(|c| c.split("-----END").next())
        .map(|c| c.split_whitespace().collect())
        .collect()
}

fn leaf(pki: &Path, name: &str) -> String {
    pem_bodies(&std::fs::read_to_string(pki.join(format!("{name}.pem"))).unwrap())[0].clone()
}

#[test]
fn sighup_reloads_secret_certificate_and_rules_while_authentications_run() {
    let pki = common::pki("operations");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &pki, SECRET, "server", "");
    let server = Server::start(&cfg, &dir.path().join("r.log"));
    let metrics = metrics_addr(&server);
    let pid = server.child.id().to_string();
    let hup = || {
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    let eapol = tool("eapol_test", "eapoltest");
    if eapol {
        let served = served_certificates(&server, &pki, dir.path(), SECRET);
        assert!(served.contains(&leaf(&pki, "server")));
    }

    // The authentication loop: the NAS's secret is switched between two conversations, as an
    // operator changes it on the NAS and the server together; every conversation must succeed.
    let secret = Arc::new(Mutex::new(SECRET.to_string()));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let worker = {
        let (secret, stop, ok, failed, failures) = (
            secret.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
            failures.clone(),
        );
        let (addr, pki) = (server.addr, pki.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // Holding the lock for a whole conversation: the secret changes only between two.
                let s = secret.lock().unwrap();
                let outcome = authenticate(addr, &pki, &s);
                drop(s);
                if accepted(&outcome) {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{:?}", outcome.err()));
                }
            }
        })
    };
    let wait_ok = |n: usize| {
        let target = ok.load(Ordering::Relaxed) + n;
        let deadline = Instant::now() + Duration::from_secs(60);
        while ok.load(Ordering::Relaxed) < target {
            assert!(Instant::now() < deadline, "the loop stalled");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_ok(3);

    // 1. A rotated server certificate and new rules, while the loop runs.
    let rules = "[authorize]\ndefault = \"reject\"\n[[authorize.rule]]\nname = \"reloaded-vlan\"\n[authorize.rule.reply]\nTunnel-Type = \"VLAN\"\nTunnel-Medium-Type = \"IEEE-802\"\nTunnel-Private-Group-Id = \"300\"\n";
    config(dir.path(), &pki, SECRET, "server-rsa", rules);
    hup();
    wait_for_log(&server, "configuration reloaded", 1);
    wait_ok(3);
    assert!(server.log_text().contains("rule=reloaded-vlan"));
    if eapol {
        let served = served_certificates(&server, &pki, dir.path(), SECRET);
        assert!(
            served.contains(&leaf(&pki, "server-rsa")),
            "the rotated certificate is not served"
        );
        assert!(!served.contains(&leaf(&pki, "server")));
    }

    // 2. A broken file is refused; the running configuration keeps serving.
    std::fs::write(&cfg, "[server\nthis is not TOML").unwrap();
    hup();
    wait_for_log(&server, "configuration reload refused", 1);
    wait_ok(3);
    let body = scrape(metrics);
    assert_eq!(
        sample(
            &body,
            r#"certradius_config_reloads_total{result="failure"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &body,
            r#"certradius_config_reloads_total{result="success"}"#
        ),
        1.0
    );

    // 3. A changed client secret, between two conversations of the running loop.
    {
        let mut s = secret.lock().unwrap();
        config(dir.path(), &pki, "a-new-secret", "server-rsa", rules);
        hup();
        wait_for_log(&server, "configuration reloaded", 2);
        *s = "a-new-secret".to_string();
    }
    wait_ok(3);
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();
    // The old secret is no longer accepted: its requests are dropped unanswered.
    assert!(authenticate(server.addr, &pki, SECRET).is_err());
    let body = scrape(metrics);
    assert!(
        sample(
            &body,
            r#"certradius_packets_dropped_total{reason="bad_message_authenticator"}"#
        ) >= 1.0
    );
    assert_eq!(
        sample(
            &body,
            r#"certradius_config_reloads_total{result="success"}"#
        ),
        2.0
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed authentications across reloads: {:?}",
        failures.lock().unwrap()
    );
    eprintln!(
        "{} authentications across 3 reloads, 0 failed",
        ok.load(Ordering::Relaxed)
    );
    assert!(ok.load(Ordering::Relaxed) >= 12);
}

#[test]
fn check_prints_a_summary_and_tells_warnings_from_errors() {
    let pki = common::pki("operations");
    let dir = tempfile::tempdir().unwrap();
    let run = |path: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_certradius"))
            .args(["check", "--config"])
            .arg(path)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Clean: exit 0, every section present, days to expiry shown.
    let clean = config(dir.path(), &pki, SECRET, "server", "");
    let (code, out, err) = run(&clean);
    assert_eq!(code, Some(0), "{out}{err}");
    for needle in [
        "configuration OK",
        "listeners:",
        "udp 127.0.0.1:0",
        "metrics http://127.0.0.1:0/metrics",
        "clients (1):",
        "loopback 127.0.0.1",
        "server O=certradius test, CN=radius.certradius.test",
        "ca     O=certradius test, CN=certradius Test Root CA",
        " days)",
        "CRLs (check_crl",
        "nextUpdate",
        "OCSP: off",
        "rules (0, default accept)",
    ] {
        assert!(out.contains(needle), "{needle} missing:\n{out}");
    }
    assert!(!out.contains("warning"), "{out}");
    // Warnings only: exit 1, each named.
    let text = std::fs::read_to_string(&clean)
        .unwrap()
        .replace("intermediate.crl.pem", "intermediate-expired.crl.pem")
        + "\n[[client]]\nname = \"lobby\"\naddress = \"10.1.2.0/24\"\nsecret = \"testing123\"\n";
    let warned = dir.path().join("warned.toml");
    std::fs::write(&warned, text).unwrap();
    let (code, out, err) = run(&warned);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("warnings (2):"), "{out}");
    assert!(out.contains("client[1].secret"), "{out}");
    assert!(out.contains("is past its nextUpdate"), "{out}");
    // Errors: exit 2, the key named.
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[tls]\nfragment_size = 1\n").unwrap();
    let (code, _, err) = run(&broken);
    assert_eq!(code, Some(2));
    assert!(err.contains("tls.fragment_size"), "{err}");
}

/// Refuses everyone: stands in for rules that changed under a running conversation.
struct RejectAll;

impl certradius::authz::Policy for RejectAll {
    fn authorize(
        &self,
        _: &[u8],
        _: &certradius::tls::VerifiedPeer,
        _: &certradius::authz::RequestInfo<'_>,
    ) -> certradius::authz::Decision {
        certradius::authz::Decision::Reject {
            reason: certradius::reason::ReasonCode::RuleReject,
            detail: "reloaded".into(),
        }
    }
}

#[test]
fn a_conversation_in_flight_finishes_on_the_configuration_it_started_with() {
    use certradius::config::Config;
    use certradius::radius::dictionary::Dictionary;
    use certradius::server::Core;
    let pki = common::pki("operations");
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), &pki, SECRET, "server", "");
    let cfg = Config::load_with_env(Some(&path), false).unwrap();
    let tls = certradius::tls::server_config(&cfg.tls).unwrap();
    let core = Core::new(
        &cfg,
        tls,
        Arc::new(certradius::authz::AllowVerified),
        Dictionary::embedded(),
    );
    let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let now = || certradius::session::Now::new(Instant::now(), rustls::pki_types::UnixTime::now());
    let new_conv = || {
        let cfg = peer::client_config(
            &pki.join("ca.pem"),
            &pki.join("client-ecdsa.pem"),
            &pki.join("client-ecdsa.key"),
            &[&rustls::version::TLS13],
        )
        .unwrap();
        let sup =
            Supplicant::new(cfg, "radius.certradius.test", b"bob@certradius.test", 1400).unwrap();
        Conversation::new(sup, Nas::new(SECRET.as_bytes()))
    };
    // Drives a conversation; `reload_after` round trips in, the configuration is replaced.
    let run = |conv: &mut Conversation, mut reload_after: Option<usize>| -> Outcome {
        let mut packet = conv.start(random16());
        for i in 0..100 {
            if reload_after == Some(i) {
                reload_after = None;
                let rotated = config(dir.path(), &pki, SECRET, "server-rsa", "");
                let cfg = Config::load_with_env(Some(&rotated), false).unwrap();
                let tls = certradius::tls::server_config(&cfg.tls).unwrap();
                core.reload(&cfg, tls, Arc::new(RejectAll), Dictionary::embedded());
            }
            let reply = core
                .handle_datagram(from, &packet, now(), &mut common::rng)
                .expect("an answer");
            match conv.on_reply(&reply, random16()).unwrap() {
                Next::Send(p) => packet = p,
                Next::Done(o) => return *o,
            }
        }
        panic!("no end")
    };
    // Started before the reload: accepted by the policy it started with.
    let first = run(&mut new_conv(), Some(2));
    assert!(matches!(
        first,
        Outcome::Accepted {
            keys_match: true,
            ..
        }
    ));
    // Started after it: the new policy decides.
    let second = run(&mut new_conv(), None);
    assert!(matches!(second, Outcome::Rejected(_)));
}
