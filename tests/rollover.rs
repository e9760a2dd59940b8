//! Server certificate rollover against the real binary: the certificate in service is recorded
//! in the state directory; `check` compares a new configuration with it (a renewal from the same
//! CA with the same names is clean, one from another CA with another name warns, naming who
//! refuses it and the reason a failed rollover shows as); a SIGHUP to such a certificate logs the
//! same warnings.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{SECRET, Server};

/// A server certificate for `radius2.certradius.test` issued by the test PKI's untrusted CA.
fn other_ca_certificate(pki: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(pki.join("untrusted-ca.key")).unwrap())
            .unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(
        &std::fs::read_to_string(pki.join("untrusted-ca.pem")).unwrap(),
        ca_key,
    )
    .unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["radius2.certradius.test".into()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "radius2.certradius.test");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (c, k) = (dir.join("other.pem"), dir.join("other.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

fn config(dir: &Path, pki: &Path, cert: &Path, key: &Path) -> PathBuf {
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[[client]]\nname = \"loopback\"\naddress = \
         \"127.0.0.1\"\nsecret = \"{SECRET}\"\n\n[tls]\ncertificate_file = \"{}\"\n\
         private_key_file = \"{}\"\nca_file = \"{}/ca.pem\"\n",
        cert.display(),
        key.display(),
        pki.display()
    );
    let path = dir.join("rollover.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn check(config: &Path, state: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_certradius"))
        .args(["check", "--config"])
        .arg(config)
        .env("STATE_DIRECTORY", state)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn check_and_reload_warn_when_the_new_server_certificate_changes_what_supplicants_pin() {
    let pki = common::pki("rollover");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let cfg = config(
        dir.path(),
        &pki,
        &pki.join("server.pem"),
        &pki.join("server.key"),
    );
    let state_env = state.to_str().unwrap();
    let server = Server::start_with_env(
        &cfg,
        &dir.path().join("server.log"),
        &[("STATE_DIRECTORY", state_env)],
    );
    let served = state.join("served-certificate.pem");
    assert!(
        common::wait_until(Duration::from_secs(5), || served.exists()),
        "the certificate in service was not recorded in the state directory"
    );

    // A renewal from the same CA with the same names (the RSA server certificate): clean.
    let same = config(
        dir.path(),
        &pki,
        &pki.join("server-rsa.pem"),
        &pki.join("server-rsa.key"),
    );
    let (code, text) = check(&same, &state);
    assert!(
        text.contains("same issuing CA, subject and DNS names"),
        "{text}"
    );
    assert!(
        !text.contains("rollover:") || !text.contains("DIFFERS"),
        "{text}"
    );
    assert_eq!(code, 0, "{text}");

    // Another CA and another name: check warns (exit 1) and says who will refuse it.
    let (cert, key) = other_ca_certificate(&pki, dir.path());
    let other = config(dir.path(), &pki, &cert, &key);
    let (code, text) = check(&other, &state);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("Untrusted CA") && text.contains("pin the issuing CA"),
        "{text}"
    );
    assert!(text.contains("radius2.certradius.test"), "{text}");
    assert!(
        text.contains("supplicant_rejected_server_certificate"),
        "{text}"
    );

    // The same configuration put in force by SIGHUP: the reload warns in the log.
    assert_eq!(
        other, cfg,
        "the test rewrote the served configuration's file"
    );
    server.signal("HUP");
    server.wait_for_log("server certificate rollover", Duration::from_secs(10));
    server.wait_for_log("configuration reloaded", Duration::from_secs(10));
    let (_, text) = check(&other, &state);
    assert!(
        text.contains("same issuing CA, subject and DNS names"),
        "after the reload the new certificate is the one in service:\n{text}\nserver log:\n{}",
        server.log_text()
    );
}
