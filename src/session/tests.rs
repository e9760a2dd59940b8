//! A whole conversation in memory (a real rustls supplicant from the test kit, bytes in and out)
//! with the certificate checks, the rules and an OCSP lookup on: the leaf certificate is parsed
//! once per authentication, however many steps read it.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::UnixTime;

use super::*;
use crate::authz::Checked;
use crate::authz::rules::RulePolicy;
use crate::config::Config;
use crate::eap::EapPacket;
use crate::radius::dictionary::Dictionary;
use crate::x509::checks::CertChecks;
use crate::x509::{ocsp, parse_count};
use certradius_testkit::peer::{PeerStep, Supplicant, client_config};

/// Rules that read the certificate (identity binding, subject, SAN, issuer, serial) and the
/// operator checks (allowed issuer, key usage) all on, as a deployment would have them.
fn context(pki: &Path, dir: &Path) -> SessionContext {
    let text = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[[client]]
name = "loopback"
address = "127.0.0.1"
secret = "testing123"

[tls]
certificate_file = "{pki}/server.pem"
private_key_file = "{pki}/server.key"
ca_file = "{pki}/ca.pem"
allowed_issuers = ["certradius Test Intermediate CA"]
check_key_usage = true

[identity]
match_fields = ["cn", "san_email"]

[authorize]
default = "reject"

[[authorize.rule]]
name = "staff"
[authorize.rule.match]
subject_cn = "bob*"
san_email = "*@certradius.test"
issuer_cn = "certradius Test Intermediate CA"
serial = "*"
"#,
        pki = pki.display()
    );
    let path = dir.join("certradius.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = Config::load_with_env(Some(&path), false).unwrap();
    let rules = RulePolicy::build(&cfg.identity, &cfg.authorize, &Dictionary::embedded()).unwrap();
    SessionContext {
        tls: crate::tls::server_config(&cfg.tls).unwrap(),
        fragment_size: Some(1024),
        reassembly: crate::eap::ReassemblyLimits {
            max_message_len: 64 * 1024,
            max_fragments: 64,
        },
        reassembly_budget: None,
        policy: Arc::new(Checked {
            checks: CertChecks::from_config(&cfg.tls),
            inner: rules,
        }),
        ocsp: Some(OcspPolicy::default()),
        directory: None,
    }
}

#[test]
#[allow(clippy::disallowed_methods)] // tests may read the clock
fn the_leaf_is_parsed_once_per_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    certradius_pki::generate(&pki).unwrap();
    let cx = context(&pki, dir.path());
    let leaf_der =
        crate::tls::load_certs("client", &pki.join("client-ecdsa.pem")).unwrap()[0].to_vec();
    let now = Now::new(std::time::Instant::now(), UnixTime::now());
    let request = RequestInfo::default();

    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let client = client_config(
            &pki.join("ca.pem"),
            &pki.join("client-ecdsa.pem"),
            &pki.join("client-ecdsa.key"),
            &[version],
        )
        .unwrap();
        let mut peer = Supplicant::new(
            client,
            "radius.certradius.test",
            b"bob@certradius.test",
            1024,
        )
        .unwrap();
        parse_count::reset();

        let identity = peer.identity_response(1);
        let (first, mut step) =
            Session::start(&EapPacket::decode(&identity).unwrap(), &cx, now.monotonic).unwrap();
        let mut session = Some(first);
        let mut lookups = 0;
        let summary = loop {
            let conversation = session.take();
            let eap = match step {
                Step::Challenge(eap) => eap,
                Step::Lookup(lookup) => {
                    let crate::session::Lookup::Revocation(lookup) = *lookup else {
                        panic!("a directory lookup without [directory]");
                    };
                    // What the shell does with the lookup: cache, responder URL, request.
                    lookups += 1;
                    let issuer = lookup.issuer.clone().expect("issuer of the test leaf");
                    let mut cache = ocsp::Cache::new(8, std::time::Duration::from_secs(60));
                    assert!(
                        cache
                            .get(&lookup.leaf, &issuer, std::time::SystemTime::now())
                            .is_none()
                    );
                    let _urls = ocsp::responder_urls(&lookup.leaf);
                    ocsp::build_query(&lookup.leaf, &issuer, "http://ocsp.test/".into(), None)
                        .unwrap();
                    let paused = conversation.expect("a paused conversation");
                    (session, step) = paused.resume(
                        crate::session::Answer::Revocation(RevocationVerdict::Good),
                        &cx,
                        &request,
                    );
                    continue;
                }
                Step::Accept { eap, summary, .. } => {
                    assert!(matches!(peer.handle(&eap).unwrap(), PeerStep::Success(_)));
                    break summary;
                }
                Step::Reject { reason, .. } => panic!("{version:?}: rejected: {reason:?}"),
                Step::Discard(code) => panic!("{version:?}: discarded: {code}"),
            };
            let PeerStep::Respond(response) = peer.handle(&eap).unwrap() else {
                panic!("{version:?}: the supplicant stopped early");
            };
            let going_on = conversation.expect("a conversation waiting for the response");
            (session, step) =
                going_on.handle(&EapPacket::decode(&response).unwrap(), &cx, &request, now);
        };
        assert_eq!(lookups, 1, "{version:?}: one OCSP lookup");
        let peer_seen = summary.peer.expect("the summary names the verified peer");
        assert_eq!(peer_seen.leaf_der(), leaf_der.as_slice());
        assert_eq!(
            parse_count::of(&leaf_der),
            1,
            "{version:?}: the leaf is parsed once per authentication"
        );
    }
}
