//! Session resumption: resumed authentications work for TLS 1.2 and 1.3 and cost fewer round
//! trips; a resumed session is re-checked against revocation; a pool of two servers sharing a
//! ticket key file resumes each other's sessions.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{random16, rng};

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use certradius::authz::AllowVerified;
use certradius::config::Config;
use certradius::radius::dictionary::Dictionary;
use certradius::server::Core;
use certradius_testkit::peer::{self, Conversation, Nas, Next, Outcome, Supplicant};
use common::{SECRET, Server};

fn client(pki: &Path, name: &str, version: &str) -> Arc<rustls::ClientConfig> {
    let v: &'static rustls::SupportedProtocolVersion = if version == "1.2" {
        &rustls::version::TLS12
    } else {
        &rustls::version::TLS13
    };
    peer::client_config(
        &pki.join("ca.pem"),
        &pki.join(format!("client-{name}.pem")),
        &pki.join(format!("client-{name}.key")),
        &[v],
    )
    .unwrap()
}

/// One authentication through `send` (in-process core or UDP); returns outcome, resumed, round trips.
fn authenticate(
    cfg: &Arc<rustls::ClientConfig>,
    mut send: impl FnMut(&[u8]) -> Vec<u8>,
) -> (Outcome, bool, usize) {
    let sup = Supplicant::new(cfg.clone(), "radius.certradius.test", b"alice", 1024).unwrap();
    let mut conv = Conversation::new(sup, Nas::new(SECRET.as_bytes()));
    let mut packet = conv.start(random16());
    loop {
        let reply = send(&packet);
        match conv.on_reply(&reply, random16()).unwrap() {
            Next::Send(p) => packet = p,
            Next::Done(o) => {
                return (*o, conv.supplicant.resumed(), conv.transcript.len());
            }
        }
    }
}

fn core_with(cfg_path: &Path) -> (Core, Config) {
    let cfg = Config::load_with_env(Some(cfg_path), false).unwrap();
    let tls = certradius::tls::server_config(&cfg.tls).unwrap();
    let core = Core::new(&cfg, tls, Arc::new(AllowVerified), Dictionary::embedded());
    (core, cfg)
}

fn in_process(core: &Core) -> impl FnMut(&[u8]) -> Vec<u8> + '_ {
    let from: SocketAddr = "127.0.0.1:42000".parse().unwrap();
    move |p: &[u8]| {
        core.handle_datagram(from, p, certradius::server::now(), &mut rng)
            .unwrap()
    }
}

#[test]
fn resumed_authentications_for_tls12_and_tls13() {
    let pki = common::pki("resumption");
    let dir = tempfile::tempdir().unwrap();
    let (core, _) = core_with(&common::write_config(dir.path(), &pki, "r", "", ""));
    for version in ["1.2", "1.3"] {
        for name in ["rsa", "ecdsa"] {
            let cfg = client(&pki, name, version);
            let (first, resumed, full_rt) = authenticate(&cfg, in_process(&core));
            assert!(matches!(
                first,
                Outcome::Accepted {
                    keys_match: true,
                    ..
                }
            ));
            assert!(!resumed);
            let (second, resumed, resumed_rt) = authenticate(&cfg, in_process(&core));
            assert!(
                matches!(
                    second,
                    Outcome::Accepted {
                        keys_match: true,
                        ..
                    }
                ),
                "TLS {version} {name}: resumed authentication refused"
            );
            assert!(
                resumed,
                "TLS {version} {name}: the second authentication did not resume"
            );
            assert!(
                resumed_rt < full_rt,
                "{resumed_rt} round trips resumed vs {full_rt} full"
            );
            eprintln!("TLS {version} {name}: full {full_rt} round trips, resumed {resumed_rt}");
        }
    }
}

#[test]
fn resumption_off_means_full_handshakes() {
    let pki = common::pki("resumption");
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), &pki, "off", "resumption = false", "");
    let (core, _) = core_with(&path);
    let cfg = client(&pki, "ecdsa", "1.3");
    authenticate(&cfg, in_process(&core));
    let (o, resumed, _) = authenticate(&cfg, in_process(&core));
    assert!(matches!(o, Outcome::Accepted { .. }));
    assert!(!resumed);
}

#[test]
fn resumed_session_is_rechecked_against_a_new_crl() {
    let pki = common::pki("resumption");
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.crl.pem");
    std::fs::copy(pki.join("intermediate-empty.crl.pem"), &live).unwrap();
    let crls = format!(
        "crl_file = [\"{}\", \"{}\", \"{}\"]",
        pki.join("ca.crl.pem").display(),
        live.display(),
        pki.join("sub-intermediate.crl.pem").display()
    );
    let path = common::write_config(dir.path(), &pki, "crl", &crls, "");
    let (core, cfg) = core_with(&path);
    // Both versions cache a session while the certificate is still good.
    let clients: Vec<_> = ["1.2", "1.3"]
        .iter()
        .map(|v| client(&pki, "revoked", v))
        .collect();
    for c in &clients {
        let (o, _, _) = authenticate(c, in_process(&core));
        assert!(matches!(o, Outcome::Accepted { .. }), "not revoked yet");
        let (o, resumed, _) = authenticate(c, in_process(&core));
        assert!(resumed && matches!(o, Outcome::Accepted { .. }));
    }
    // Revoke it. The reloaded configuration keeps the session cache, so the clients resume —
    // and are refused by the re-check.
    std::fs::copy(pki.join("intermediate.crl.pem"), &live).unwrap();
    core.reload(
        &cfg,
        certradius::tls::rebuild(&cfg.tls, &core.tls_setup()).unwrap(),
        Arc::new(AllowVerified),
        Dictionary::embedded(),
    );
    for c in &clients {
        let before = core.stats.get("cert_revoked");
        let (o, resumed, _) = authenticate(c, in_process(&core));
        assert!(resumed, "the client resumed its session");
        assert!(
            matches!(o, Outcome::Rejected(_)),
            "a revoked certificate must not resume"
        );
        assert_eq!(core.stats.get("cert_revoked"), before + 1);
    }
}

#[test]
fn certificate_expired_since_the_session_began_is_refused() {
    // The re-check runs the verifier at the current time: a certificate that expired after the
    // session was cached fails exactly like an expired one presented in full.
    let pki = common::pki("resumption");
    let dir = tempfile::tempdir().unwrap();
    let (core, _) = core_with(&common::write_config(dir.path(), &pki, "exp", "", ""));
    let setup = core.tls_setup();
    let chain = certradius::tls::load_certs("t", &pki.join("client-ecdsa.pem")).unwrap();
    let now = rustls::pki_types::UnixTime::now();
    assert!(
        certradius::tls::recheck_resumed(setup.verifier.as_ref(), &setup.verified, &chain, now)
            .is_ok()
    );
    let in_three_years = rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(
        now.as_secs() + 3 * 365 * 86400,
    ));
    let err = certradius::tls::recheck_resumed(
        setup.verifier.as_ref(),
        &setup.verified,
        &chain,
        in_three_years,
    )
    .unwrap_err();
    assert_eq!(err.reason, "cert_expired");
}

#[test]
fn two_instances_sharing_a_ticket_key_file_resume_each_others_sessions() {
    let pki = common::pki("resumption");
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("tickets.keys");
    certradius::tls::resumption::rotate_key_file(&keys, 2).unwrap();
    let extra = format!("ticket_key_file = \"{}\"", keys.display());
    let a = Server::start(
        &common::write_config(dir.path(), &pki, "a", &extra, ""),
        &dir.path().join("a.log"),
    );
    let b = Server::start(
        &common::write_config(dir.path(), &pki, "b", &extra, ""),
        &dir.path().join("b.log"),
    );
    let udp = |server: &Server| {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let addr = server.addr;
        move |p: &[u8]| {
            s.send_to(p, addr).unwrap();
            let mut buf = vec![0u8; 4096];
            let (n, _) = s.recv_from(&mut buf).unwrap();
            buf[..n].to_vec()
        }
    };
    for version in ["1.2", "1.3"] {
        let cfg = client(&pki, "ecdsa", version);
        let (o, resumed, _) = authenticate(&cfg, udp(&a));
        assert!(
            matches!(
                o,
                Outcome::Accepted {
                    keys_match: true,
                    ..
                }
            ) && !resumed
        );
        let (o, resumed, _) = authenticate(&cfg, udp(&b));
        assert!(
            matches!(
                o,
                Outcome::Accepted {
                    keys_match: true,
                    ..
                }
            ),
            "TLS {version}: B refused A's session\n{}",
            b.log_text()
        );
        assert!(resumed, "TLS {version}: B did not resume A's session");
    }
    assert!(b.log_text().contains("resumed=true"));
}
