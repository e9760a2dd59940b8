//! The core judges certificates by the time it is given, not by the system clock: rustls's own
//! validity check of the client certificate in a full handshake (RFC 5280 §6.1.3 (a)(2), done by
//! the WebPKI verifier) reads the `Now` of the datagram being processed (`tls::clock`). A
//! certificate valid today is refused with `cert_expired` when the server's `now` is a day after
//! its notAfter, and the same handshake at the real time succeeds.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certradius::authz::AllowVerified;
use certradius::config::Config;
use certradius::radius::Code;
use certradius::radius::dictionary::Dictionary;
use certradius::server::Core;
use certradius::session::Now;
use certradius_testkit::peer::{self, Conversation, Nas, Next, Outcome, Supplicant};
use rustls::pki_types::UnixTime;

const NAS: &str = "127.0.0.1:40000";

fn core(pki: &Path) -> Core {
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), pki, "virtual-time", "", "");
    let cfg = Config::load_with_env(Some(&path), false).unwrap();
    let tls = certradius::tls::server_config(&cfg.tls).unwrap();
    Core::new(&cfg, tls, Arc::new(AllowVerified), Dictionary::embedded())
}

fn conversation(pki: &Path, version: &'static rustls::SupportedProtocolVersion) -> Conversation {
    let cfg = peer::client_config(
        &pki.join("ca.pem"),
        &pki.join("client-ecdsa.pem"),
        &pki.join("client-ecdsa.key"),
        &[version],
    )
    .unwrap();
    let sup = Supplicant::new(cfg, "radius.certradius.test", b"bob@certradius.test", 1400).unwrap();
    Conversation::new(sup, Nas::new(common::SECRET.as_bytes()))
}

/// Runs a conversation to its end with every datagram handled at `wall`.
fn run(core: &Core, conv: &mut Conversation, wall: UnixTime) -> Outcome {
    let from: SocketAddr = NAS.parse().unwrap();
    let mut n: u8 = 0;
    let mut rng = move |b: &mut [u8]| {
        for x in b.iter_mut() {
            n = n.wrapping_add(97);
            *x = n;
        }
    };
    let next_auth = || {
        let mut a = [0u8; 16];
        getrandom::fill(&mut a).unwrap();
        a
    };
    let mut packet = conv.start(next_auth());
    let now = Now::new(Instant::now(), wall);
    for _ in 0..50 {
        let reply = core
            .handle_datagram(from, &packet, now, &mut rng)
            .expect("the server answers every request");
        match conv.on_reply(&reply, next_auth()).unwrap() {
            Next::Send(p) => packet = p,
            Next::Done(o) => return *o,
        }
    }
    panic!("conversation did not finish in 50 round trips");
}

/// The client certificate's notAfter, seconds since the epoch.
fn not_after(pem: &Path) -> u64 {
    let der = certradius::tls::load_certs("client", pem)
        .unwrap()
        .remove(0);
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    u64::try_from(cert.validity().not_after.timestamp()).unwrap()
}

#[test]
fn a_full_handshake_a_day_after_not_after_is_refused_as_expired() {
    let pki = common::pki("virtual_time");
    let core = core(&pki);
    let expired_since_yesterday = UnixTime::since_unix_epoch(Duration::from_secs(
        not_after(&pki.join("client-ecdsa.pem")) + 86_400,
    ));
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        // Today the certificate is valid: accepted.
        let mut today = conversation(&pki, version);
        let Outcome::Accepted { keys_match, .. } = run(&core, &mut today, UnixTime::now()) else {
            panic!("{version:?}: refused at the real time");
        };
        assert!(keys_match);

        // The same client, the server's clock a day past notAfter: refused, after the alert.
        let mut later = conversation(&pki, version);
        let Outcome::Rejected(reply) = run(&core, &mut later, expired_since_yesterday) else {
            panic!("{version:?}: a certificate expired yesterday was accepted");
        };
        assert_eq!(reply.code, Code::AccessReject);
        assert_eq!(reply.eap.as_deref().map(|e| e[0]), Some(4), "EAP-Failure");
        let alert = later.supplicant.tls_failure.clone();
        assert!(
            alert.as_deref().is_some_and(|a| a.contains("alert")),
            "the server's TLS alert reaches the supplicant before EAP-Failure: {alert:?}"
        );
    }
    assert_eq!(core.stats.get("cert_expired"), 2);
    assert_eq!(core.stats.get("cert_untrusted"), 0);
}
