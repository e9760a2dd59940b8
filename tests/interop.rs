//! The interoperability matrix of `testbed/interop/README.md`, row by row, against the real
//! binary: TLS 1.2 and 1.3, RSA and ECDSA on both sides, per-NAS TLS versions (`[[client]]
//! tls_min_version` / `tls_max_version`, several NAS on loopback: `eapol_test -A` binds the
//! source), a supplicant that refuses the server certificate, a version mismatch, no client
//! certificate, and a restricted `client_signature_schemes`. Each row asserts the outcome, the
//! reason and the negotiated version from the audit line.
//!
//! eapol_test is required (a loud SKIP locally, a failure under CI).
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use certradius_testkit::peer::{Conversation, Nas, Next, Supplicant};
use common::{SECRET, Server};

/// One row of the table.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    server: String,
    nas: String,
    client: String,
    tls13: bool,
    ca: String,
    runner: String,
    outcome: String,
    reason: String,
    version: String,
}

fn matrix() -> Vec<Row> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/interop/README.md");
    let text = std::fs::read_to_string(path).unwrap();
    let rows: Vec<Row> = text
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| row "))
        .map(|l| {
            let c: Vec<String> = l
                .trim_matches('|')
                .split('|')
                .map(|s| s.trim().to_string())
                .collect();
            assert_eq!(c.len(), 10, "a matrix row has 10 columns: {l}");
            Row {
                name: c[0].clone(),
                server: c[1].clone(),
                nas: c[2].clone(),
                client: c[3].clone(),
                tls13: c[4] == "yes",
                ca: c[5].clone(),
                runner: c[6].clone(),
                outcome: c[7].clone(),
                reason: c[8].clone(),
                version: c[9].clone(),
            }
        })
        .collect();
    assert!(rows.len() >= 10, "the matrix lost its rows");
    rows
}

fn server_config(dir: &Path, pki: &Path, kind: &str) -> PathBuf {
    let (cert, key) = match kind {
        "rsa" => ("server-rsa.pem", "server-rsa.key"),
        _ => ("server.pem", "server.key"),
    };
    let schemes = if kind == "ecdsa-only" {
        "client_signature_schemes = [\"ecdsa_secp256r1_sha256\"]"
    } else {
        ""
    };
    let p = pki.display();
    let text = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[[client]]
name = "default"
address = "127.0.0.1"
secret = "{SECRET}"

[[client]]
name = "capped-1.2"
address = "127.0.0.2"
secret = "{SECRET}"
tls_max_version = "1.2"

[[client]]
name = "only-1.3"
address = "127.0.0.3"
secret = "{SECRET}"
tls_min_version = "1.3"

[tls]
certificate_file = "{p}/{cert}"
private_key_file = "{p}/{key}"
ca_file = "{p}/ca.pem"
crl_file = ["{p}/ca.crl.pem", "{p}/intermediate.crl.pem", "{p}/sub-intermediate.crl.pem"]
{schemes}

[audit]
file = "{audit}"
"#,
        audit = dir.join(format!("audit-{kind}.jsonl")).display(),
    );
    let path = dir.join(format!("{kind}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn eapol_test(dir: &Path, pki: &Path, row: &Row, addr: SocketAddr) -> String {
    let conf = dir.join(format!("{}.conf", row.name));
    let p = pki.display();
    std::fs::write(
        &conf,
        format!(
            "network={{\n key_mgmt=WPA-EAP\n eap=TLS\n identity=\"{name}@certradius.test\"\n \
             ca_cert=\"{p}/{ca}.pem\"\n client_cert=\"{p}/client-{c}.pem\"\n \
             private_key=\"{p}/client-{c}.key\"\n phase1=\"tls_disable_tlsv1_3={v}\"\n}}\n",
            name = row.name,
            ca = row.ca,
            c = row.client,
            v = u8::from(!row.tls13),
        ),
    )
    .unwrap();
    let out = Command::new("eapol_test")
        .arg("-c")
        .arg(&conf)
        .args(["-a", "127.0.0.1", "-p"])
        .arg(addr.port().to_string())
        .args(["-A", &row.nas, "-s", SECRET, "-t", "10"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The device without a client certificate: the test kit's supplicant, whose TLS client has
/// no certificate to present.
fn without_certificate(pki: &Path, row: &Row, addr: SocketAddr) {
    let mut roots = rustls::RootCertStore::empty();
    for c in certradius::tls::load_certs("ca", &pki.join("ca.pem")).unwrap() {
        roots.add(c).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(certradius::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let identity = format!("{}@certradius.test", row.name);
    let sup = Supplicant::new(
        std::sync::Arc::new(cfg),
        "radius.certradius.test",
        identity.as_bytes(),
        1400,
    )
    .unwrap();
    let mut conv = Conversation::new(sup, Nas::new(SECRET.as_bytes()));
    let s = UdpSocket::bind(format!("{}:0", row.nas)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut packet = conv.start(common::random16());
    for _ in 0..20 {
        s.send_to(&packet, addr).unwrap();
        let mut buf = vec![0u8; 4096];
        let (n, _) = s.recv_from(&mut buf).expect("a reply");
        match conv.on_reply(&buf[..n], common::random16()) {
            Ok(Next::Send(p)) => packet = p,
            Ok(Next::Done(_)) | Err(_) => return,
        }
    }
}

/// The audit record of `row` (identity `ROW@certradius.test`), waiting for it to be written.
fn audit_record(audit: &Path, row: &Row) -> serde_json::Value {
    let identity = format!("{}@certradius.test", row.name);
    let mut found = None;
    let written = common::wait_until(Duration::from_secs(5), || {
        let text = std::fs::read_to_string(audit).unwrap_or_default();
        found = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .rfind(|v| v["identity"] == identity.as_str());
        found.is_some()
    });
    assert!(written, "{}: no audit record for {identity}", row.name);
    found.unwrap()
}

#[test]
fn every_row_of_the_interop_matrix() {
    if !common::require_tool("eapol_test", "apt-get install eapoltest") {
        return;
    }
    let pki = common::pki("interop");
    let dir = tempfile::tempdir().unwrap();
    let rows = matrix();
    let mut servers: BTreeMap<String, Server> = BTreeMap::new();
    let mut failures = Vec::new();
    for row in &rows {
        let server = servers.entry(row.server.clone()).or_insert_with(|| {
            let cfg = server_config(dir.path(), &pki, &row.server);
            Server::start(&cfg, &dir.path().join(format!("{}.log", row.server)))
        });
        let output = match row.runner.as_str() {
            "eapol_test" => eapol_test(dir.path(), &pki, row, server.addr),
            "testkit" => {
                without_certificate(&pki, row, server.addr);
                String::new()
            }
            other => panic!("{}: unknown runner {other}", row.name),
        };
        let audit = dir.path().join(format!("audit-{}.jsonl", row.server));
        let record = audit_record(&audit, row);
        let got = (
            record["outcome"].as_str().unwrap_or("?").to_string(),
            record["reason"].as_str().unwrap_or("-").to_string(),
            record["tls_version"].as_str().unwrap_or("-").to_string(),
        );
        // A certificate refused during the handshake is named in the audit line.
        let named = !row.reason.starts_with("cert_") || record["subject"].is_string();
        if !named || got != (row.outcome.clone(), row.reason.clone(), row.version.clone()) {
            let tail: Vec<&str> = output.lines().rev().take(15).collect();
            failures.push(format!(
                "{}: want {} {} {}, got {got:?}\n  audit: {record}\n  eapol_test (last lines, reversed): {}",
                row.name,
                row.outcome,
                row.reason,
                row.version,
                tail.join(" | ")
            ));
        }
        eprintln!("{}: {got:?}", row.name);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
