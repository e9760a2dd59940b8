//! TLS to PostgreSQL (`accounting.database_url` with libpq's `sslmode` and `sslrootcert`)
//! against a throwaway cluster started with `ssl=on` and the test PKI's server certificate
//! (DNS name `radius.certradius.test`, signed by the root `ca.pem`): `verify-full` with that
//! CA and that name writes accounting over TLS (the server's `pg_stat_ssl` says so);
//! `verify-full` to a name the certificate does not carry is refused with a message naming the
//! name; `verify-ca` does not check the name; `check` says which mode is in force and warns on
//! `disable` to a host that is not this one.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use certradius::radius::attr;
use certradius_testkit::acct;
use common::pg::{Pg, skip};

/// RFC 3986 §2.1 percent-encoding of everything but unreserved characters.
fn pct(path: &Path) -> String {
    path.as_os_str()
        .as_encoded_bytes()
        .iter()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (*b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The cluster with ssl=on, serving the test PKI's server certificate.
fn cluster(dir: &Path) -> (Pg, PathBuf) {
    let pki = common::pki("accounting_db_tls");
    let pg = Pg::with_tls(
        dir,
        Some((&pki.join("server.pem"), &pki.join("server.key"))),
    );
    (pg, pki)
}

/// `host` is the name TLS checks; the connection goes to 127.0.0.1 (`hostaddr`).
fn url(pg: &Pg, host: &str, query: &str) -> String {
    format!(
        "postgresql://postgres@{host}:{}/postgres?hostaddr=127.0.0.1&application_name=certradius-tls&{query}",
        pg.port()
    )
}

fn config(dir: &Path, pki: &Path, name: &str, url: &str) -> PathBuf {
    common::write_config(
        dir,
        pki,
        name,
        "",
        &format!(
            "[accounting]\nlisten = [\"127.0.0.1:0\"]\ndatabase_url = \"{url}\"\n\
             auto_migrate = true\nqueue_dir = \"{}\"\n",
            dir.join(format!("{name}-queue")).display()
        ),
    )
}

fn run(args: &[&str], cfg: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certradius"))
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .unwrap()
}

#[test]
fn verify_full_with_the_right_ca_and_name_writes_over_tls() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (pg, pki) = cluster(dir.path());
    let query = format!(
        "sslmode=verify-full&sslrootcert={}",
        pct(&pki.join("ca.pem"))
    );
    let cfg = config(
        dir.path(),
        &pki,
        "full",
        &url(&pg, "radius.certradius.test", &query),
    );
    let out = run(&["check"], &cfg);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("sslmode=verify-full (TLS, certificate chain and host name checked)"),
        "{text}"
    );
    let server = common::Server::start(&cfg, &dir.path().join("full.log"));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let p = acct::request(
        common::SECRET.as_bytes(),
        1,
        &[
            (attr::ACCT_STATUS_TYPE, &1u32.to_be_bytes()),
            (attr::ACCT_SESSION_ID, b"TLS-1"),
            (attr::USER_NAME, b"alice"),
        ],
    );
    let mut answered = false;
    for _ in 0..30 {
        sock.send_to(&p, server.acct.unwrap()).unwrap();
        let mut buf = [0u8; 4096];
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            answered = acct::is_response_to(&buf[..n], &p, common::SECRET.as_bytes());
            break;
        }
    }
    assert!(answered, "no Accounting-Response:\n{}", server.log_text());
    pg.wait_for("SELECT acctsessionid FROM radacct", &["TLS-1"], 20);
    // The writer's connection is encrypted.
    pg.wait_for(
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'certradius-tls'",
        &["t"],
        10,
    );
    assert!(
        server.log_text().contains("accounting database connected"),
        "{}",
        server.log_text()
    );
    assert!(!server.log_text().contains("records are queued on disk"));
}

#[test]
fn verify_full_refuses_a_certificate_for_another_name_and_verify_ca_does_not_check_it() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (pg, pki) = cluster(dir.path());
    let root = pct(&pki.join("ca.pem"));
    // The certificate names radius.certradius.test; we connect as "localhost".
    let cfg = config(
        dir.path(),
        &pki,
        "wrong",
        &url(
            &pg,
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={root}"),
        ),
    );
    let out = run(&["db", "migrate"], &cfg);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not valid for name"), "{err}");
    assert!(err.contains("localhost"), "{err}");
    assert!(err.contains("sslmode=verify-full"), "{err}");

    // verify-ca: the same chain, the name not checked.
    let cfg = config(
        dir.path(),
        &pki,
        "ca",
        &url(
            &pg,
            "localhost",
            &format!("sslmode=verify-ca&sslrootcert={root}"),
        ),
    );
    let out = run(&["db", "migrate"], &cfg);
    assert!(out.status.success(), "{out:?}");
    // A CA the certificate does not chain to is refused under verify-ca too.
    let other = pct(&pki.join("untrusted-ca.pem"));
    let cfg = config(
        dir.path(),
        &pki,
        "other",
        &url(
            &pg,
            "localhost",
            &format!("sslmode=verify-ca&sslrootcert={other}"),
        ),
    );
    let out = run(&["db", "migrate"], &cfg);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("UnknownIssuer") || err.contains("unknown issuer"),
        "{err}"
    );
}

#[test]
fn check_names_the_mode_and_warns_on_disable_to_another_host() {
    let dir = tempfile::tempdir().unwrap();
    let pki = common::pki("accounting_db_tls");
    let cfg = config(
        dir.path(),
        &pki,
        "remote",
        "postgresql://radius@192.0.2.10/radius?sslmode=disable",
    );
    let out = run(&["check"], &cfg);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("sslmode=disable (no TLS)"), "{text}");
    assert!(
        text.contains("sslmode=disable to 192.0.2.10, not on this host"),
        "{text}"
    );
    // The same to the local host is no warning; libpq's default is prefer.
    let cfg = config(
        dir.path(),
        &pki,
        "local",
        "postgresql://radius@127.0.0.1/radius",
    );
    let out = run(&["check"], &cfg);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("sslmode=prefer"), "{text}");
    assert!(!text.contains("not on this host"), "{text}");
}
