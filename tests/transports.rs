//! One table of scenarios, run over every transport against the real binary: UDP (RFC 2865),
//! RADIUS/TCP (RFC 6613) and RadSec (RFC 6614). Whatever a NAS relies on from the request path
//! must not depend on how its requests arrive:
//!
//! - **accept**: a valid client certificate gets an Access-Accept whose MS-MPPE keys (RFC 2548
//!   §2.4) are the supplicant's own (RFC 5216 §2.3);
//! - **reject by CRL**: a certificate the CRL in force revokes gets an Access-Reject;
//! - **OCSP-revoked → Disconnect**: a session is authenticated and its accounting Start echoes
//!   the Class; OCSP is turned on (SIGHUP) and the responder (`openssl ocsp`) says the same
//!   certificate is revoked (the CRL does not list it): its next authentication is refused and
//!   the live session gets a Disconnect-Request (RFC 5176 §3) on its NAS's `coa_port`;
//! - **drain**: after SIGTERM a conversation in progress still completes, a new conversation's
//!   first Access-Request is not answered (RFC 5080 §2.2.1: the NAS fails over) and
//!   `drain_dropped` counts it;
//! - **debug filter**: `--debug-filter` dumps the requests of a matching conversation in the log
//!   and not those of another.
//!
//! Every cell starts its own server with all three listeners and one NAS per transport, all at
//! 127.0.0.1 with the same secret and `coa_port`. Accounting and Disconnect stay on UDP, as RFC
//! 5176 NAS take them. Tests are named `<scenario>::<transport>`: `cargo test --test transports
//! tcp` runs a column, `cargo test --test transports accept::` a row.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use certradius::radius::coa;
use certradius::radius::{Packet, SharedSecret, attr};
use certradius_testkit::peer::{Conversation, Next, Outcome};
use certradius_testkit::radsec;
use common::{SECRET, Server, Streams, random16};
use tokio::net::{TcpStream, UdpSocket};

/// How a NAS reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
    RadSec,
}

/// One behaviour of the request path, the same over every transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Accept,
    RejectByCrl,
    OcspRevokedDisconnects,
    DrainRefusesNewConversation,
    DebugFilter,
}

/// The table: each row a scenario, each column a transport; one test per cell.
macro_rules! table {
    ($($row:ident => $scenario:expr,)*) => {
        $(
            mod $row {
                use super::{Scenario, Transport, run};
                #[test]
                fn udp() {
                    run($scenario, Transport::Udp);
                }
                #[test]
                fn tcp() {
                    run($scenario, Transport::Tcp);
                }
                #[test]
                fn radsec() {
                    run($scenario, Transport::RadSec);
                }
            }
        )*
    };
}

table! {
    accept => Scenario::Accept,
    reject_by_crl => Scenario::RejectByCrl,
    ocsp_revoked_disconnects => Scenario::OcspRevokedDisconnects,
    drain_refuses_a_new_conversation => Scenario::DrainRefusesNewConversation,
    debug_filter => Scenario::DebugFilter,
}

fn run(scenario: Scenario, transport: Transport) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let bench = Bench::start(scenario, transport).await;
            match scenario {
                Scenario::Accept => accept(&bench).await,
                Scenario::RejectByCrl => reject_by_crl(&bench).await,
                Scenario::OcspRevokedDisconnects => ocsp_revoked_disconnects(&bench).await,
                Scenario::DrainRefusesNewConversation => drain(bench).await,
                Scenario::DebugFilter => debug_filter(&bench).await,
            }
        });
}

// ---------------------------------------------------------------------------------------------
// The scenarios

async fn accept(b: &Bench) {
    let o = b.authenticate(b.conversation("ecdsa")).await;
    assert!(
        matches!(
            o,
            Outcome::Accepted {
                keys_match: true,
                ..
            }
        ),
        "{:?}: expected an Access-Accept with the supplicant's MS-MPPE keys, got {o:?}\n{}",
        b.transport,
        b.server.log_text()
    );
}

async fn reject_by_crl(b: &Bench) {
    let o = b.authenticate(b.conversation("revoked")).await;
    assert!(
        matches!(o, Outcome::Rejected(_)),
        "{:?}: a certificate the CRL revokes must be refused, got {o:?}",
        b.transport
    );
    b.server
        .wait_for_log("reason=cert_revoked", Duration::from_secs(5));
}

async fn ocsp_revoked_disconnects(b: &Bench) {
    let Some(responder) = common::ocsp_responder(&b.pki) else {
        return;
    };
    // Authenticated while OCSP is off (the CRL in force does not list the certificate), and
    // live: its accounting Start echoes the Class of the Access-Accept.
    let class = match b.authenticate(b.conversation("revoked")).await {
        Outcome::Accepted { reply, .. } => reply
            .attributes
            .iter()
            .find(|(t, _)| *t == attr::CLASS)
            .map(|(_, v)| v.clone())
            .expect("a Class in the Access-Accept"),
        o => panic!(
            "not accepted while OCSP is off: {o:?}\n{}",
            b.server.log_text()
        ),
    };
    b.accounting_start(&class).await;
    // OCSP on; the next authentication with the same certificate is answered "revoked" by the
    // responder, which also ends the live session.
    let mut text = std::fs::read_to_string(&b.config).unwrap();
    text.push_str(&format!(
        "\n[ocsp]\nenable = true\nurl = \"{}\"\n",
        responder.url
    ));
    std::fs::write(&b.config, text).unwrap();
    b.server.signal("HUP");
    b.server
        .wait_for_log("configuration reloaded", Duration::from_secs(10));
    let o = b.authenticate(b.conversation("revoked")).await;
    assert!(
        matches!(o, Outcome::Rejected(_)),
        "{:?}: revoked per OCSP must be refused, got {o:?}",
        b.transport
    );
    let Some((request, from)) = b.coa_receive(Duration::from_secs(10)).await else {
        panic!(
            "{:?}: no Disconnect-Request on the NAS's coa_port within 10 s after OCSP said \
             revoked:\n{}",
            b.transport,
            b.server.log_text()
        );
    };
    let secret = SharedSecret::new(SECRET.as_bytes().to_vec());
    coa::verify_request(&request, &secret).expect("signed with the NAS secret");
    let p = Packet::decode(&request).unwrap();
    assert_eq!(u8::from(p.code()), coa::DISCONNECT_REQUEST);
    assert_eq!(
        p.first(attr::ACCT_SESSION_ID),
        Some(b.session_id().as_bytes())
    );
    let ack = coa::answer(&request, &secret, None).unwrap();
    b.coa.send_to(&ack, from).await.unwrap();
    b.server
        .wait_for_log("Disconnect-ACK", Duration::from_secs(10));
    assert!(b.server.log_text().contains("certificate revoked per OCSP"));
}

async fn drain(mut b: Bench) {
    // A conversation in progress: two round trips into the handshake.
    let mut going = b.link().await;
    let mut conv = b.conversation("ecdsa");
    let mut packet = conv.start(random16());
    for _ in 0..2 {
        let reply = going.exchange(&packet).await;
        match conv.on_reply(&reply, random16()).unwrap() {
            Next::Send(p) => packet = p,
            Next::Done(o) => panic!("finished after two round trips: {o:?}"),
        }
    }
    // The NAS's other connection (or socket), open before the drain starts.
    let mut other = b.link().await;
    b.server.signal("TERM");
    b.server.wait_for_log(
        "draining: new conversations are refused",
        Duration::from_secs(10),
    );
    // Not answered: nothing within 3 s, or the connection closed (also no answer: the NAS fails
    // over).
    let mut late = b.conversation("ecdsa");
    let sent = other.try_send(&late.start(random16())).await;
    if sent.is_ok()
        && let Some(reply) = other.recv(Duration::from_secs(3)).await
    {
        panic!(
            "{:?}: a new conversation was answered during the drain ({} octets, code {})",
            b.transport,
            reply.len(),
            reply[0]
        );
    }
    // The one in progress completes.
    let o = finish(&mut going, conv, packet).await;
    assert!(
        matches!(
            o,
            Outcome::Accepted {
                keys_match: true,
                ..
            }
        ),
        "{:?}: the conversation in progress must complete during the drain: {o:?}",
        b.transport
    );
    let status = b.server.wait_exit(Duration::from_secs(25));
    assert!(status.success(), "{status:?}\n{}", b.server.log_text());
    let counters = b.server.final_counters();
    assert!(
        counters.split_whitespace().any(|c| c == "drain_dropped=1"),
        "{:?}: the refused Access-Request is counted once: {counters}",
        b.transport
    );
}

async fn debug_filter(b: &Bench) {
    // `--debug-filter calling_station_id=02:00:00:00:00:01` (another MAC spelling than the NAS
    // sends) is on the command line; this conversation's NAS sends another MAC first.
    let mut other = b.conversation("ecdsa");
    other.nas.calling_station_id = Some(b"02-00-00-00-00-99".to_vec());
    let (o, _) = b.authenticate_keeping(other).await;
    assert!(matches!(o, Outcome::Accepted { .. }), "{o:?}");
    let dumps = || b.server.log_text().matches("received from").count();
    assert_eq!(
        dumps(),
        0,
        "{:?}: a conversation the filter does not match was dumped:\n{}",
        b.transport,
        b.server.log_text()
    );
    let matching = b.conversation("ecdsa");
    let (o, conv) = b.authenticate_keeping(matching).await;
    assert!(matches!(o, Outcome::Accepted { .. }), "{o:?}");
    // Every Access-Request of the matching conversation is dumped, and only those.
    let requests = conv.transcript.len();
    assert!(requests >= 2);
    assert!(
        common::wait_until(Duration::from_secs(5), || dumps() >= requests),
        "{:?}: the {requests} requests of a conversation the filter matches were not all \
         dumped within 5 s ({} dumps):\n{}",
        b.transport,
        dumps(),
        b.server.log_text()
    );
    assert_eq!(
        dumps(),
        requests,
        "{:?}: one dump per request of the matching conversation:\n{}",
        b.transport,
        b.server.log_text()
    );
}

// ---------------------------------------------------------------------------------------------
// The server, its NAS and their links

const NAS_CERT_NAME: &str = "laptop42.certradius.test";

/// A server with all three listeners for one cell of the table; the NAS's UDP socket sends
/// accounting and takes Disconnect-Requests (it is every client's `coa_port`).
struct Bench {
    server: Server,
    transport: Transport,
    pki: PathBuf,
    config: PathBuf,
    coa: UdpSocket,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn start(scenario: Scenario, transport: Transport) -> Bench {
        let pki = common::pki("transports");
        let dir = tempfile::tempdir().unwrap();
        let coa = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let config = write_config(dir.path(), &pki, scenario, coa.local_addr().unwrap().port());
        let args: &[&str] = match scenario {
            Scenario::DebugFilter => &[
                "--debug",
                "--debug-filter",
                "calling_station_id=02:00:00:00:00:01",
            ],
            _ => &[],
        };
        let server = Server::start_with_streams(
            &config,
            &dir.path().join("server.log"),
            args,
            Streams {
                tcp: true,
                tls: true,
            },
        );
        Bench {
            server,
            transport,
            pki,
            config,
            coa,
            _dir: dir,
        }
    }

    /// The test supplicant with the PKI's `client-<key>` certificate, behind a NAS with the
    /// shared secret.
    fn conversation(&self, key: &str) -> Conversation {
        common::conversation(&self.pki, key, SECRET)
    }

    /// A new connection (UDP: socket) of the NAS to the server.
    async fn link(&self) -> Link {
        match self.transport {
            Transport::Udp => {
                let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                Link::Udp(socket, self.server.addr)
            }
            Transport::Tcp => {
                Link::Tcp(TcpStream::connect(self.server.tcp.unwrap()).await.unwrap())
            }
            Transport::RadSec => {
                let cfg = radsec::client_config(
                    &self.pki.join("ca.pem"),
                    &[&self.pki.join("client-machine.pem")],
                    &self.pki.join("client-machine.key"),
                    &[&rustls::version::TLS13, &rustls::version::TLS12],
                    &[],
                )
                .unwrap();
                let tls = radsec::connect(self.server.tls.unwrap(), cfg, "radius.certradius.test")
                    .await
                    .unwrap();
                Link::Tls(Box::new(tls))
            }
        }
    }

    /// A whole conversation on a new link.
    async fn authenticate(&self, conv: Conversation) -> Outcome {
        self.authenticate_keeping(conv).await.0
    }

    /// As [`Bench::authenticate`], giving the conversation back (for its transcript).
    async fn authenticate_keeping(&self, mut conv: Conversation) -> (Outcome, Conversation) {
        let mut link = self.link().await;
        let first = conv.start(random16());
        let (o, conv) = finish_keeping(&mut link, conv, first).await;
        (o, conv)
    }

    fn session_id(&self) -> String {
        format!("sess-{:?}", self.transport)
    }

    /// Accounting Start for the session, echoing `class`, from the NAS's UDP socket.
    async fn accounting_start(&self, class: &[u8]) {
        let session = self.session_id();
        let req = certradius_testkit::acct::request(
            SECRET.as_bytes(),
            42,
            &[
                (attr::ACCT_STATUS_TYPE, &1u32.to_be_bytes()),
                (attr::ACCT_SESSION_ID, session.as_bytes()),
                (attr::USER_NAME, b"revoked@certradius.test"),
                (attr::CALLING_STATION_ID, b"02-00-00-00-00-01"),
                (attr::NAS_IP_ADDRESS, &[127, 0, 0, 1]),
                (attr::ACCT_INTERIM_INTERVAL, &600u32.to_be_bytes()),
                (attr::CLASS, class),
            ],
        );
        let to = self.server.acct.expect("accounting listener");
        for _ in 0..5 {
            self.coa.send_to(&req, to).await.unwrap();
            if let Some((reply, _)) = self.coa_receive(Duration::from_secs(2)).await {
                assert!(
                    certradius_testkit::acct::is_response_to(&reply, &req, SECRET.as_bytes()),
                    "not the Accounting-Response"
                );
                return;
            }
        }
        panic!("no Accounting-Response:\n{}", self.server.log_text());
    }

    /// The next datagram on the NAS's UDP socket, within `within`.
    async fn coa_receive(&self, within: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = vec![0u8; 4096];
        let (n, from) = tokio::time::timeout(within, self.coa.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        Some((buf[..n].to_vec(), from))
    }
}

fn write_config(dir: &Path, pki: &Path, scenario: Scenario, coa_port: u16) -> PathBuf {
    // Only the CRL scenario has the one revoking client-revoked in force; the OCSP scenario
    // needs a certificate the CRL does not list.
    let intermediate_crl = match scenario {
        Scenario::RejectByCrl => "intermediate.crl.pem",
        _ => "intermediate-empty.crl.pem",
    };
    let client = |name: &str, transport: &str, extra: &str| {
        format!(
            "[[client]]\nname = \"{name}\"\naddress = \"127.0.0.1\"\ntransport = \"{transport}\"\n\
             secret = \"{SECRET}\"\ncoa_port = {coa_port}\n{extra}\n"
        )
    };
    let text = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
shutdown_grace_secs = 20
state_file = "{dir}/state.json"

{udp}
{tcp}
{tls}

[tls]
certificate_file = "{pki}/server.pem"
private_key_file = "{pki}/server.key"
ca_file = "{pki}/ca.pem"
crl_file = ["{pki}/ca.crl.pem", "{pki}/{intermediate_crl}", "{pki}/sub-intermediate.crl.pem"]

[radsec]
listen = ["127.0.0.1:0"]
certificate_file = "{pki}/server.pem"
private_key_file = "{pki}/server.key"
ca_file = "{pki}/ca.pem"

[tcp]
listen = ["127.0.0.1:0"]

[accounting]
listen = ["127.0.0.1:0"]
file = "{dir}/accounting.jsonl"

[coa]
timeout_ms = 2000
retries = 1
control_socket = "{dir}/control.sock"
"#,
        udp = client("udp-nas", "udp", ""),
        tcp = client("tcp-nas", "tcp", ""),
        tls = client(
            "radsec-nas",
            "tls",
            &format!("certificate_name = \"{NAS_CERT_NAME}\"")
        ),
        pki = pki.display(),
        dir = dir.display(),
    );
    let path = dir.join("transports.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// One NAS connection: a UDP socket, a TCP connection or a RadSec (TLS) connection.
enum Link {
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpStream),
    Tls(Box<radsec::TlsStream>),
}

impl Link {
    async fn send(&mut self, packet: &[u8]) {
        self.try_send(packet).await.unwrap();
    }

    async fn try_send(&mut self, packet: &[u8]) -> std::io::Result<()> {
        match self {
            Link::Udp(s, to) => s.send_to(packet, *to).await.map(drop),
            Link::Tcp(s) => radsec::write_packet(s, packet).await,
            Link::Tls(s) => radsec::write_packet(s, packet).await,
        }
    }

    /// The next packet from the server within `within`; None when nothing came or the server
    /// closed the connection.
    async fn recv(&mut self, within: Duration) -> Option<Vec<u8>> {
        let got = match self {
            Link::Udp(s, _) => {
                let mut buf = vec![0u8; 4096];
                tokio::time::timeout(within, s.recv_from(&mut buf))
                    .await
                    .map(|r| r.ok().map(|(n, _)| buf[..n].to_vec()))
            }
            Link::Tcp(s) => tokio::time::timeout(within, radsec::read_packet(s))
                .await
                .map(|r| r.ok().flatten()),
            Link::Tls(s) => tokio::time::timeout(within, radsec::read_packet(s))
                .await
                .map(|r| r.ok().flatten()),
        };
        got.ok().flatten()
    }

    /// Sends a request and returns its reply, as a NAS does: over UDP retransmitted unchanged
    /// (RFC 5080 §2.2.1) up to five times, over a stream sent once (RFC 6613 §2.6).
    async fn exchange(&mut self, packet: &[u8]) -> Vec<u8> {
        let (tries, wait) = match self {
            Link::Udp(..) => (5, Duration::from_secs(2)),
            Link::Tcp(_) | Link::Tls(_) => (1, Duration::from_secs(20)),
        };
        for _ in 0..tries {
            self.send(packet).await;
            if let Some(reply) = self.recv(wait).await {
                return reply;
            }
        }
        panic!("no reply to a request after {tries} attempt(s) of {wait:?}");
    }
}

/// Drives `conv` from `packet` (its last request) to the end.
async fn finish(link: &mut Link, conv: Conversation, packet: Vec<u8>) -> Outcome {
    finish_keeping(link, conv, packet).await.0
}

async fn finish_keeping(
    link: &mut Link,
    mut conv: Conversation,
    mut packet: Vec<u8>,
) -> (Outcome, Conversation) {
    for _ in 0..50 {
        let reply = link.exchange(&packet).await;
        match conv.on_reply(&reply, random16()).unwrap() {
            Next::Send(p) => packet = p,
            Next::Done(o) => return (*o, conv),
        }
    }
    panic!("the conversation did not end in 50 round trips");
}
