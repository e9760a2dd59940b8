//! A stream connection keeps its NAS across reloads: a SIGHUP that reorders, inserts and removes
//! `[[client]]` entries under an open RadSec (RFC 6614) and an open RADIUS/TCP (RFC 6613)
//! connection leaves each answering with its own NAS's shared secret (RFC 2865 §3 Response
//! Authenticator), and closes it once its client is gone or no longer matches.
//!
//! The defect this guards against: a connection that held its client's position in the list was
//! rebound by such a reload to whichever client took that position — another NAS's name and
//! secret.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use certradius::radius::{Code, Packet, PacketBuilder, SharedSecret};
use certradius_testkit::radsec;
use common::{Server, Streams};
use tokio::io::{AsyncRead, AsyncWrite};

const NAS_NAME: &str = "laptop42.certradius.test";

/// SIGHUP, then waits until the log says the reload number `n` is in force.
fn reload(s: &Server, n: usize) {
    s.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while s
        .log_text()
        .matches("SIGHUP: configuration reloaded")
        .count()
        < n
    {
        assert!(
            Instant::now() < deadline,
            "reload {n} not in force:\n{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn client(name: &str, address: &str, transport: &str, secret: &str) -> String {
    let cert = if transport == "tls" {
        format!("certificate_name = \"{NAS_NAME}\"\n")
    } else {
        String::new()
    };
    format!(
        "[[client]]\nname = \"{name}\"\naddress = \"{address}\"\ntransport = \"{transport}\"\nsecret = \"{secret}\"\n{cert}\n"
    )
}

fn write(dir: &Path, pki: &Path, clients: &[String]) -> PathBuf {
    let extra = format!(
        "[radsec]\nlisten = [\"127.0.0.1:0\"]\ncertificate_file = \"{pki}/server.pem\"\n\
         private_key_file = \"{pki}/server.key\"\nca_file = \"{pki}/ca.pem\"\n\n\
         [tcp]\nlisten = [\"127.0.0.1:0\"]\n\n{}",
        clients.concat(),
        pki = pki.display()
    );
    common::write_config(dir, pki, "identity", "", &extra)
}

/// Sends a Status-Server signed with `secret` and returns whether an answer came whose Response
/// Authenticator is right for `secret`. None: no answer (the connection was closed).
async fn answered_with<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut S,
    id: u8,
    secret: &str,
) -> Option<bool> {
    let secret = SharedSecret::new(secret.as_bytes().to_vec());
    let auth = common::random16();
    let request = PacketBuilder::new(Code::StatusServer, id)
        .encode_request(&secret, auth)
        .unwrap();
    radsec::write_packet(c, &request).await.ok()?;
    let reply = tokio::time::timeout(Duration::from_secs(5), radsec::read_packet(c))
        .await
        .ok()?
        .ok()??;
    let p = Packet::decode(&reply).unwrap();
    assert_eq!(p.identifier(), id);
    Some(certradius::radius::auth::verify_response_authenticator(&p, &secret, &auth).is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_inserted_and_removed_clients_never_rebind_an_open_connection() {
    let pki = common::pki("identity");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let config = write(
        dir.path(),
        &pki,
        &[
            client("tcp-nas", "127.0.0.1", "tcp", "tcp-secret"),
            client("tls-nas", "127.0.0.1", "tls", "tls-secret"),
            client("far-away", "10.9.9.9", "tcp", "other-secret"),
        ],
    );
    let s = Server::start_with_streams(
        &config,
        &log,
        &[],
        Streams {
            tcp: true,
            tls: true,
        },
    );
    let (tls_addr, tcp_addr) = (s.tls.unwrap(), s.tcp.unwrap());
    let nas = radsec::client_config(
        &pki.join("ca.pem"),
        &[&pki.join("client-machine.pem")],
        &pki.join("client-machine.key"),
        &[&rustls::version::TLS13],
        &[],
    )
    .unwrap();
    let mut tls = radsec::connect(tls_addr, nas, "radius.certradius.test")
        .await
        .unwrap();
    let mut tcp = tokio::net::TcpStream::connect(tcp_addr).await.unwrap();
    assert_eq!(answered_with(&mut tcp, 1, "tcp-secret").await, Some(true));
    assert_eq!(answered_with(&mut tls, 1, "tls-secret").await, Some(true));

    // Reordered, with clients inserted in front that match the same address and transport
    // (a more specific prefix would even win a fresh match): each connection stays with its NAS.
    write(
        dir.path(),
        &pki,
        &[
            client("far-away", "10.9.9.9", "tcp", "other-secret"),
            client("tls-intruder", "127.0.0.1", "tls", "intruder-secret"),
            client("tcp-intruder", "127.0.0.1", "tcp", "intruder-secret"),
            client("tls-nas", "127.0.0.0/8", "tls", "tls-secret"),
            client("tcp-nas", "127.0.0.0/8", "tcp", "tcp-secret"),
        ],
    );
    reload(&s, 1);
    assert_eq!(answered_with(&mut tcp, 2, "tcp-secret").await, Some(true));
    assert_eq!(answered_with(&mut tls, 2, "tls-secret").await, Some(true));

    // "tcp-nas" removed, "tls-nas" moved to addresses this connection is not from: both closed,
    // not handed to the intruders that now match their address.
    write(
        dir.path(),
        &pki,
        &[
            client("tcp-intruder", "127.0.0.1", "tcp", "intruder-secret"),
            client("tls-intruder", "127.0.0.1", "tls", "intruder-secret"),
            client("tls-nas", "10.0.0.0/8", "tls", "tls-secret"),
        ],
    );
    reload(&s, 2);
    assert_eq!(answered_with(&mut tcp, 3, "tcp-secret").await, None);
    assert_eq!(answered_with(&mut tls, 3, "tls-secret").await, None);
    let log = s.log_text();
    assert!(
        log.matches("after a reload its [[client]] is gone or no longer matches")
            .count()
            >= 2,
        "{log}"
    );
    assert!(!log.contains("intruder-secret"), "a secret reached the log");
}
