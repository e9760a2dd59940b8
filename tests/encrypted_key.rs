//! Encrypted server keys (`[tls] private_key_password_file`): FreeRADIUS's own test PKI, built
//! by its own Makefile (`raddb/certs`, Debian's `/usr/share/doc/freeradius/examples/certs`),
//! keeps every key encrypted with the password `whatever` as PKCS#8 PBES2. certradius serves
//! its `server.pem` (certificate and encrypted key in one file, as FreeRADIUS is configured)
//! and eapol_test authenticates with its `client.crt` / `client.key` over TLS 1.2 and 1.3.
//! Without the password, with a wrong one, and with OpenSSL's legacy PEM encryption, `check`
//! refuses the key with a message naming the format and the knob, and never the password.
//!
//! Needs make, openssl, eapol_test and the `freeradius` package: a loud SKIP locally, a failure
//! under CI (`.ci/run` installs them).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{SECRET, Server};

const FREERADIUS_CERTS: &str = "/usr/share/doc/freeradius/examples/certs";
const PASSWORD: &str = "whatever";

fn tools_present() -> bool {
    common::require_tool("make", "apt-get install make")
        && common::require_tool("openssl", "apt-get install openssl")
        && common::require_tool("eapol_test", "apt-get install eapoltest")
        && common::require(
            Path::new(FREERADIUS_CERTS).join("Makefile").exists(),
            "FreeRADIUS's test PKI Makefile",
            "apt-get install freeradius",
        )
}

/// Copies FreeRADIUS's `certs` directory and runs its Makefile (without the slow DH parameters,
/// which EAP-TLS with ECDHE does not use).
fn freeradius_pki(dir: &Path) -> PathBuf {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    for entry in std::fs::read_dir(FREERADIUS_CERTS).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), certs.join(entry.file_name())).unwrap();
        }
    }
    let out = Command::new("make")
        .args(["ca", "server", "client"])
        .current_dir(&certs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "FreeRADIUS's Makefile failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let server_pem = std::fs::read_to_string(certs.join("server.pem")).unwrap();
    assert!(
        server_pem.contains("BEGIN ENCRYPTED PRIVATE KEY"),
        "FreeRADIUS's server.pem no longer holds an encrypted PKCS#8 key: the test tests nothing"
    );
    certs
}

fn config(dir: &Path, certs: &Path, key: &Path, password_file: Option<&Path>) -> PathBuf {
    let password = password_file
        .map(|p| format!("private_key_password_file = \"{}\"", p.display()))
        .unwrap_or_default();
    let text = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[[client]]
name = "loopback"
address = "127.0.0.1"
secret = "{SECRET}"

[tls]
certificate_file = "{certs}/server.pem"
private_key_file = "{key}"
{password}
ca_file = "{certs}/ca.pem"
"#,
        certs = certs.display(),
        key = key.display(),
    );
    let path = dir.join("encrypted.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn check(config: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_certradius"))
        .args(["check", "--config"])
        .arg(config)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn write_password(dir: &Path, name: &str, password: &str) -> PathBuf {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, format!("{password}\n").as_bytes()).unwrap();
    path
}

fn eapol_test(dir: &Path, certs: &Path, server: &Server, tls13: bool) -> String {
    let conf = dir.join(format!("client-{tls13}.conf"));
    std::fs::write(
        &conf,
        format!(
            "network={{\n key_mgmt=WPA-EAP\n eap=TLS\n identity=\"user@example.org\"\n \
             ca_cert=\"{c}/ca.pem\"\n client_cert=\"{c}/client.crt\"\n \
             private_key=\"{c}/client.key\"\n private_key_passwd=\"{PASSWORD}\"\n \
             phase1=\"tls_disable_tlsv1_3={}\"\n}}\n",
            u8::from(!tls13),
            c = certs.display()
        ),
    )
    .unwrap();
    let out = Command::new("eapol_test")
        .arg("-c")
        .arg(&conf)
        .args(["-a", "127.0.0.1", "-p"])
        .arg(server.addr.port().to_string())
        .args(["-s", SECRET, "-t", "15"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("MPPE keys OK: 1  mismatch: 0"),
        "eapol_test (TLS 1.3 offered: {tls13}) failed:\n{}\nserver log:\n{}",
        text.lines().rev().take(40).collect::<Vec<_>>().join("\n"),
        server.log_text()
    );
    text
}

#[test]
fn freeradius_test_pki_with_its_encrypted_key_authenticates_eapol_test() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = freeradius_pki(dir.path());
    let password = write_password(dir.path(), "server.key.password", PASSWORD);
    let cfg = config(
        dir.path(),
        &certs,
        &certs.join("server.pem"),
        Some(&password),
    );
    let (ok, text) = check(&cfg);
    assert!(
        ok,
        "check refused the encrypted key with its password:\n{text}"
    );

    let server = Server::start(&cfg, &dir.path().join("server.log"));
    for (tls13, version) in [(false, "1.2"), (true, "1.3")] {
        eapol_test(dir.path(), &certs, &server, tls13);
        let log = server.log_text();
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains("authentication finished"))
            .unwrap_or_default();
        assert!(
            line.contains("outcome=accept") && line.contains(&format!("tls_version=TLSv{version}")),
            "expected an accept over TLS {version}: {line}"
        );
    }
    assert!(
        !server.log_text().contains(PASSWORD),
        "the key's password reached the log"
    );
}

#[test]
fn an_encrypted_key_without_or_with_a_wrong_password_is_refused_by_name() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = freeradius_pki(dir.path());
    let key = certs.join("server.pem");

    let (ok, text) = check(&config(dir.path(), &certs, &key, None));
    assert!(!ok, "an encrypted key loaded without a password:\n{text}");
    assert!(
        text.contains("ENCRYPTED PRIVATE KEY") && text.contains("tls.private_key_password_file"),
        "the error must name the format and the knob:\n{text}"
    );

    let wrong = write_password(dir.path(), "wrong.password", "not-the-password");
    let (ok, text) = check(&config(dir.path(), &certs, &key, Some(&wrong)));
    assert!(!ok, "a wrong password was accepted:\n{text}");
    assert!(
        text.contains("cannot decrypt") && !text.contains("not-the-password"),
        "a wrong password must be named as such, without printing it:\n{text}"
    );

    // OpenSSL's legacy PEM encryption: refused with the conversion command.
    let legacy = certs.join("server-legacy.key");
    let out = Command::new("openssl")
        .args(["rsa", "-traditional", "-aes256", "-in"])
        .arg(certs.join("server.key"))
        .args([
            "-passin",
            "pass:whatever",
            "-passout",
            "pass:whatever",
            "-out",
        ])
        .arg(&legacy)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read_to_string(&legacy)
            .unwrap()
            .contains("Proc-Type: 4,ENCRYPTED")
    );
    let right = write_password(dir.path(), "right.password", PASSWORD);
    let (ok, text) = check(&config(dir.path(), &certs, &legacy, Some(&right)));
    assert!(!ok, "a legacy-encrypted key was accepted:\n{text}");
    assert!(
        text.contains("Proc-Type: 4,ENCRYPTED") && text.contains("openssl pkey"),
        "the error must say how to convert the key:\n{text}"
    );
}
