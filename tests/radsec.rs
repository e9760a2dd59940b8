//! RadSec (RFC 6614) and RADIUS/TCP (RFC 6613) against the real binary: EAP-TLS end to end with
//! MPPE keys over TLS 1.2 and 1.3 links, many requests in flight on one connection, one-byte
//! writes, a stalled peer while another is served, a peer closing mid-packet, bad framing, an
//! untrusted NAS certificate, a wrong `certificate_name`, Status-Server, ALPN, and TCP.
//!
//! The NAS certificate is the test PKI's `client-machine.pem` (clientAuth, DNS SAN
//! `laptop42.certradius.test`, issued by the intermediate, chain in the file).
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certradius::radius::{Code, Packet, PacketBuilder, SharedSecret};
use certradius_testkit::peer::{self, Conversation, Next, Outcome};
use certradius_testkit::radsec;
use common::random16;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

const NAS_NAME: &str = "laptop42.certradius.test";

struct Streams {
    child: Child,
    log: PathBuf,
    tls: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    _dir: tempfile::TempDir,
}

impl Drop for Streams {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Streams {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn pki() -> PathBuf {
    common::pki("radsec")
}

/// Starts the server with a RadSec listener (and a TCP one when `tcp`), `radsec_extra` lines
/// in `[radsec]` and `clients` as extra `[[client]]` tables.
fn start(radsec_extra: &str, clients: &str, tcp: bool) -> Streams {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let tcp_section = if tcp {
        "[tcp]\nlisten = [\"127.0.0.1:0\"]\n"
    } else {
        ""
    };
    let extra = format!(
        r#"
[radsec]
listen = ["127.0.0.1:0"]
certificate_file = "{pki}/server.pem"
private_key_file = "{pki}/server.key"
ca_file = "{pki}/ca.pem"
{radsec_extra}

{tcp_section}

{clients}
"#,
        pki = pki.display()
    );
    let config = common::write_config(dir.path(), &pki, "radsec", "", &extra);
    let log = dir.path().join("server.log");
    let logfile = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_certradius"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(logfile))
        .env_remove("CERTRADIUS_LOG")
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut tls_addr, mut tcp_addr) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tls_addr.is_none() || (tcp && tcp_addr.is_none()) {
        assert!(Instant::now() < deadline, "no listening lines");
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(a) = line.strip_prefix("certradius: listening on tls ") {
                    tls_addr = Some(a.trim().parse().unwrap());
                }
                if let Some(a) = line.strip_prefix("certradius: listening on tcp ") {
                    tcp_addr = Some(a.trim().parse().unwrap());
                }
            }
            _ => panic!(
                "server exited; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Streams {
        child,
        log,
        tls: tls_addr,
        tcp: tcp_addr,
        _dir: dir,
    }
}

/// A `tls` client for the loopback NAS certificate, secret defaulting to "radsec".
fn tls_client(name: &str) -> String {
    format!(
        "[[client]]\nname = \"radsec-nas\"\naddress = \"127.0.0.1\"\ntransport = \"tls\"\ncertificate_name = \"{name}\"\n"
    )
}

const TCP_CLIENT: &str = "[[client]]\nname = \"tcp-nas\"\naddress = \"127.0.0.1\"\ntransport = \"tcp\"\nsecret = \"tcpsecret\"\n";

fn nas_tls(
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
    cert: &str,
) -> Arc<rustls::ClientConfig> {
    let pki = pki();
    radsec::client_config(
        &pki.join("ca.pem"),
        &[&pki.join(format!("client-{cert}.pem"))],
        &pki.join(format!("client-{cert}.key")),
        versions,
        alpn,
    )
    .unwrap()
}

async fn connect(
    s: &Streams,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> radsec::TlsStream {
    radsec::connect(
        s.tls.unwrap(),
        nas_tls(versions, &[], "machine"),
        "radius.certradius.test",
    )
    .await
    .unwrap()
}

fn conversation(pki: &Path, secret: &str) -> Conversation {
    common::conversation(pki, "ecdsa", secret)
}

/// A whole EAP-TLS authentication over a stream; `byte_at_a_time` writes every request one
/// octet per write.
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    secret: &str,
    byte_at_a_time: bool,
) -> Outcome {
    let mut conv = conversation(&pki(), secret);
    let mut packet = conv.start(random16());
    for _ in 0..50 {
        if byte_at_a_time {
            for b in &packet {
                stream.write_all(&[*b]).await.unwrap();
                stream.flush().await.unwrap();
            }
        } else {
            radsec::write_packet(stream, &packet).await.unwrap();
        }
        let reply = tokio::time::timeout(Duration::from_secs(20), radsec::read_packet(stream))
            .await
            .expect("reply in time")
            .unwrap()
            .expect("a reply, not end of stream");
        match conv.on_reply(&reply, random16()).unwrap() {
            Next::Send(p) => packet = p,
            Next::Done(outcome) => return *outcome,
        }
    }
    panic!("conversation did not finish");
}

fn assert_accepted_with_keys(o: &Outcome) {
    match o {
        Outcome::Accepted { keys_match, .. } => assert!(keys_match, "MPPE keys do not match"),
        Outcome::Rejected(r) => panic!("rejected: {r:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eap_tls_over_radsec_tls12_and_tls13_with_mppe_keys() {
    let s = start("", &tls_client(NAS_NAME), false);
    for (version, expected) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let mut c = connect(&s, &[version]).await;
        assert_eq!(c.get_ref().1.protocol_version(), Some(expected));
        let o = authenticate(&mut c, "radsec", false).await;
        assert_accepted_with_keys(&o);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_at_a_time() {
    let s = start("", &tls_client(NAS_NAME), false);
    let mut c = connect(&s, &[&rustls::version::TLS13]).await;
    let o = authenticate(&mut c, "radsec", true).await;
    assert_accepted_with_keys(&o);
}

fn status_server(id: u8, secret: &[u8]) -> (Vec<u8>, [u8; 16]) {
    let auth = random16();
    let b = PacketBuilder::new(Code::StatusServer, id);
    (
        b.encode_request(&SharedSecret::new(secret.to_vec()), auth)
            .unwrap(),
        auth,
    )
}

fn identity_request(id: u8, secret: &[u8]) -> Vec<u8> {
    let mut b = PacketBuilder::new(Code::AccessRequest, id);
    b.eap_message(&[2, 1, 0, 8, 1, b'b', b'o', b'b']);
    b.encode_request(&SharedSecret::new(secret.to_vec()), random16())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_server_and_many_requests_in_flight_on_one_connection() {
    let s = start("", &tls_client(NAS_NAME), false);
    let mut c = connect(&s, &[&rustls::version::TLS13]).await;
    let (ss, _) = status_server(200, b"radsec");
    radsec::write_packet(&mut c, &ss).await.unwrap();
    let r = radsec::read_packet(&mut c).await.unwrap().unwrap();
    let p = Packet::decode(&r).unwrap();
    assert_eq!(p.code(), Code::AccessAccept, "Status-Server answered");
    assert_eq!(p.identifier(), 200);
    // 100 Access-Requests in one write: every one answered, each by its identifier.
    let mut all = Vec::new();
    for id in 0..100u8 {
        all.extend(identity_request(id, b"radsec"));
    }
    radsec::write_packet(&mut c, &all).await.unwrap();
    let mut seen = [false; 100];
    for _ in 0..100 {
        let r = tokio::time::timeout(Duration::from_secs(20), radsec::read_packet(&mut c))
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let p = Packet::decode(&r).unwrap();
        assert_eq!(p.code(), Code::AccessChallenge);
        seen[usize::from(p.identifier())] = true;
    }
    assert!(seen.iter().all(|s| *s));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_half_open_peers_do_not_block_another() {
    let s = start("idle_timeout_secs = 3", &tls_client(NAS_NAME), false);
    // A peer that sends requests and never reads its replies.
    let mut stalled = connect(&s, &[&rustls::version::TLS13]).await;
    let mut flood = Vec::new();
    for id in 0..=255u8 {
        flood.extend(status_server(id, b"radsec").0);
    }
    for _ in 0..8 {
        let _ = tokio::time::timeout(Duration::from_secs(2), stalled.write_all(&flood)).await;
    }
    // A peer that sent half a packet and went quiet.
    let mut half = connect(&s, &[&rustls::version::TLS12]).await;
    half.write_all(&identity_request(1, b"radsec")[..10])
        .await
        .unwrap();
    half.flush().await.unwrap();
    // Another NAS is served meanwhile.
    let mut c = connect(&s, &[&rustls::version::TLS13]).await;
    let o = authenticate(&mut c, "radsec", false).await;
    assert_accepted_with_keys(&o);
    // The half-open peer is closed by the idle timeout.
    let end = tokio::time::timeout(Duration::from_secs(10), radsec::read_packet(&mut half)).await;
    assert!(
        matches!(end, Ok(Ok(None)) | Ok(Err(_))),
        "idle peer not closed: {end:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_closing_mid_packet_and_bad_length() {
    let s = start("", &tls_client(NAS_NAME), false);
    {
        let mut c = connect(&s, &[&rustls::version::TLS13]).await;
        c.write_all(&identity_request(1, b"radsec")[..30])
            .await
            .unwrap();
        c.shutdown().await.unwrap();
    }
    // A Length of 5000: the connection is closed (no resynchronising a stream).
    let mut c = connect(&s, &[&rustls::version::TLS13]).await;
    c.write_all(&[1, 1, 0x13, 0x88]).await.unwrap();
    c.write_all(&[0; 40]).await.unwrap();
    c.flush().await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), radsec::read_packet(&mut c)).await;
    assert!(matches!(end, Ok(Ok(None)) | Ok(Err(_))), "{end:?}");
    // The server still serves.
    let mut c = connect(&s, &[&rustls::version::TLS12]).await;
    assert_accepted_with_keys(&authenticate(&mut c, "radsec", false).await);
    let log = s.log_text();
    assert!(log.contains("RADIUS Length 5000 is outside"), "{log}");
}

/// The connection is refused at the TLS layer or closed right after it: the first read ends.
async fn refused(s: &Streams, cfg: Arc<rustls::ClientConfig>) {
    match radsec::connect(s.tls.unwrap(), cfg, "radius.certradius.test").await {
        Err(_) => {}
        Ok(mut c) => {
            let (ss, _) = status_server(1, b"radsec");
            let _ = radsec::write_packet(&mut c, &ss).await;
            let r = tokio::time::timeout(Duration::from_secs(5), radsec::read_packet(&mut c))
                .await
                .unwrap();
            assert!(matches!(r, Ok(None) | Err(_)), "answered: {r:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_nas_certificate_and_wrong_certificate_name() {
    let s = start("", &tls_client(NAS_NAME), false);
    refused(&s, nas_tls(&[&rustls::version::TLS13], &[], "untrusted")).await;
    refused(&s, nas_tls(&[&rustls::version::TLS12], &[], "untrusted")).await;
    // Trusted, but not the configured certificate_name.
    refused(&s, nas_tls(&[&rustls::version::TLS13], &[], "ecdsa")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = s.log_text();
    assert!(log.contains("RadSec handshake failed"), "{log}");
    assert!(
        log.contains("matches no [[client]] certificate_name"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radius_over_tcp() {
    let s = start("", TCP_CLIENT, true);
    let mut c = tokio::net::TcpStream::connect(s.tcp.unwrap())
        .await
        .unwrap();
    assert_accepted_with_keys(&authenticate(&mut c, "tcpsecret", false).await);
    // TCP clients do not reach the RadSec listener (no tls client for the address).
    refused(&s, nas_tls(&[&rustls::version::TLS13], &[], "machine")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_caps() {
    let s = start(
        "max_connections_per_client = 1",
        &tls_client(NAS_NAME),
        false,
    );
    let mut first = connect(&s, &[&rustls::version::TLS13]).await;
    let (ss, _) = status_server(1, b"radsec");
    radsec::write_packet(&mut first, &ss).await.unwrap();
    assert!(radsec::read_packet(&mut first).await.unwrap().is_some());
    refused(&s, nas_tls(&[&rustls::version::TLS13], &[], "machine")).await;
    let (ss, _) = status_server(2, b"radsec");
    radsec::write_packet(&mut first, &ss).await.unwrap();
    assert!(radsec::read_packet(&mut first).await.unwrap().is_some());
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The slot is given back when the connection ends.
    let mut again = connect(&s, &[&rustls::version::TLS13]).await;
    radsec::write_packet(&mut again, &ss).await.unwrap();
    assert!(radsec::read_packet(&mut again).await.unwrap().is_some());
    assert!(s.log_text().contains("max_connections_per_client reached"));
}

// ---------------------------------------------------------------------------------------------
// Interop: eapol_test → radsecproxy (UDP) → certradius (RadSec)

/// Whether `tool` runs; SKIPPED loudly without it, a failure under CI.
fn tool_available(tool: &str, package: &str) -> bool {
    common::require_tool(tool, &format!("apt-get install {package}"))
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// radsecproxy listening on a loopback UDP port, forwarding everything to certradius over TLS
/// with the NAS certificate, until dropped.
struct Radsecproxy {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Radsecproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn radsecproxy(dir: &Path, target: SocketAddr, tls_version: &str) -> Radsecproxy {
    let pki = pki();
    let port = free_udp_port();
    let log = dir.join(format!("radsecproxy-{tls_version}.log"));
    let conf = dir.join(format!("radsecproxy-{tls_version}.conf"));
    std::fs::write(
        &conf,
        format!(
            r#"ListenUDP 127.0.0.1:{port}
LogLevel 5
LogDestination file://{log}

tls certradius {{
    CACertificateFile {pki}/ca.pem
    CertificateFile {pki}/client-machine.pem
    CertificateKeyFile {pki}/client-machine.key
    TlsVersion {tls_version}
}}

client eapol_test {{
    host 127.0.0.1
    type udp
    secret {secret}
}}

server certradius {{
    host 127.0.0.1
    port {tport}
    type tls
    tls certradius
    CertificateNameCheck off
    secret radsec
}}

realm * {{
    server certradius
}}
"#,
            log = log.display(),
            pki = pki.display(),
            secret = common::SECRET,
            tport = target.port(),
        ),
    )
    .unwrap();
    let child = Command::new("radsecproxy")
        .arg("-f")
        .arg("-c")
        .arg(&conf)
        .arg("-i")
        .arg(dir.join(format!("radsecproxy-{tls_version}.pid")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Give it time to bind and connect.
    std::thread::sleep(Duration::from_millis(800));
    Radsecproxy { child, port, log }
}

#[test]
fn eapol_test_through_radsecproxy_over_tls12_and_tls13() {
    if !tool_available("eapol_test", "eapoltest") || !tool_available("radsecproxy", "radsecproxy") {
        return;
    }
    let s = start("", &tls_client(NAS_NAME), false);
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let eapol_conf = dir.path().join("eapol.conf");
    std::fs::write(
        &eapol_conf,
        format!(
            "network={{\n key_mgmt=WPA-EAP\n eap=TLS\n identity=\"bob@certradius.test\"\n ca_cert=\"{p}/ca.pem\"\n client_cert=\"{p}/client-ecdsa.pem\"\n private_key=\"{p}/client-ecdsa.key\"\n phase1=\"tls_disable_tlsv1_3=0\"\n}}\n",
            p = pki.display()
        ),
    )
    .unwrap();
    for version in ["TLS1_2", "TLS1_3"] {
        let proxy = radsecproxy(dir.path(), s.tls.unwrap(), version);
        let out = Command::new("eapol_test")
            .arg("-c")
            .arg(&eapol_conf)
            .arg("-a")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(proxy.port.to_string())
            .arg("-s")
            .arg(common::SECRET)
            .arg("-t")
            .arg("20")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let proxy_log = std::fs::read_to_string(&proxy.log).unwrap_or_default();
        assert!(
            out.status.success() && text.contains("SUCCESS"),
            "eapol_test via radsecproxy ({version}) failed:\n{}\n--- radsecproxy:\n{proxy_log}\n--- certradius:\n{}",
            &text[text.len().saturating_sub(3000)..],
            s.log_text()
        );
        assert!(
            text.contains("MPPE keys OK: 1  mismatch: 0"),
            "MPPE keys not OK through radsecproxy ({version})"
        );
        let want = format!("client=radsec-nas version=\"TLSv{}\"", &version[3..]);
        assert!(
            s.log_text().contains(&want),
            "no RadSec connection with {want}:\n{}",
            s.log_text()
        );
        eprintln!("radsecproxy {version}: eapol_test SUCCESS, MPPE keys OK");
    }
}

// ---------------------------------------------------------------------------------------------
// RADIUS/1.1 (RFC 9765)

const ALPN_11: &[u8] = b"radius/1.1";

async fn connect_alpn(s: &Streams, alpn: &[&[u8]]) -> std::io::Result<radsec::TlsStream> {
    radsec::connect(
        s.tls.unwrap(),
        nas_tls(&[&rustls::version::TLS13], alpn, "machine"),
        "radius.certradius.test",
    )
    .await
}

/// A whole EAP-TLS authentication in RADIUS/1.1: every reply echoes the Token, has zero
/// reserved octets and no Message-Authenticator; the MS-MPPE keys arrive as plain values equal
/// to the supplicant's.
async fn authenticate_v11(c: &mut radsec::TlsStream) {
    use certradius::radius::attr;
    let mut sup = conversation(&pki(), "radsec").supplicant;
    let mut eap = sup.identity_response(1);
    let mut state: Option<Vec<u8>> = None;
    for round in 0..50u32 {
        let token = 0x5000_0000 + round;
        let req = radsec::v11_request(1, token, Some(&eap), state.as_deref());
        radsec::write_packet(c, &req).await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(20), radsec::read_packet(c))
            .await
            .unwrap()
            .unwrap()
            .expect("a RADIUS/1.1 reply");
        let p = Packet::decode(&reply).unwrap();
        assert_eq!(
            &p.authenticator()[..4],
            &token.to_be_bytes(),
            "Token echoed"
        );
        assert_eq!(&p.authenticator()[4..], &[0; 12], "reserved octets zero");
        assert!(p.first(attr::MESSAGE_AUTHENTICATOR).is_none());
        state = p.first(attr::STATE).map(|s| s.to_vec());
        let reply_eap = p.eap_message().expect("EAP-Message");
        match p.code() {
            Code::AccessChallenge => match sup.handle(&reply_eap).unwrap() {
                peer::PeerStep::Respond(r) => eap = r,
                other => panic!("{other:?}"),
            },
            Code::AccessAccept => {
                let keys = match sup.handle(&reply_eap).unwrap() {
                    peer::PeerStep::Success(k) => k,
                    other => panic!("{other:?}"),
                };
                let ms: Vec<_> = p.vendor_attributes(attr::VENDOR_MICROSOFT).collect();
                let recv = ms.iter().find(|a| a.typ == attr::MS_MPPE_RECV_KEY).unwrap();
                let send = ms.iter().find(|a| a.typ == attr::MS_MPPE_SEND_KEY).unwrap();
                assert_eq!(recv.value, keys.mppe_recv_key(), "plain MS-MPPE-Recv-Key");
                assert_eq!(send.value, keys.mppe_send_key(), "plain MS-MPPE-Send-Key");
                return;
            }
            other => panic!("unexpected {other}"),
        }
    }
    panic!("RADIUS/1.1 conversation did not finish");
}

/// RADIUS/1.0 Status-Server on `c` is answered (with a verified Message-Authenticator).
async fn status_v10(c: &mut radsec::TlsStream) {
    let secret = SharedSecret::new(b"radsec".to_vec());
    let (ss, auth) = status_server(9, b"radsec");
    radsec::write_packet(c, &ss).await.unwrap();
    let r = radsec::read_packet(c).await.unwrap().unwrap();
    let p = Packet::decode(&r).unwrap();
    certradius::radius::auth::verify_message_authenticator(&p, &secret, Some(&auth)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radius_1_1_allow() {
    let s = start("", &tls_client(NAS_NAME), false);
    let mut c = connect_alpn(&s, &[ALPN_11]).await.unwrap();
    assert_eq!(c.get_ref().1.alpn_protocol(), Some(ALPN_11));
    authenticate_v11(&mut c).await;
    // Status-Server in RADIUS/1.1: no Message-Authenticator needed.
    radsec::write_packet(&mut c, &radsec::v11_request(12, 77, None, None))
        .await
        .unwrap();
    let r = radsec::read_packet(&mut c).await.unwrap().unwrap();
    assert_eq!(Packet::decode(&r).unwrap().code(), Code::AccessAccept);
    assert_eq!(&r[4..8], &77u32.to_be_bytes());
    // Without ALPN: RADIUS/1.0 as before.
    let mut c = connect_alpn(&s, &[]).await.unwrap();
    assert_eq!(c.get_ref().1.alpn_protocol(), None);
    status_v10(&mut c).await;
    assert_accepted_with_keys(&authenticate(&mut c, "radsec", false).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radius_1_1_require() {
    let s = start("radius_1_1 = \"require\"", &tls_client(NAS_NAME), false);
    // No ALPN: closed.
    refused(&s, nas_tls(&[&rustls::version::TLS13], &[], "machine")).await;
    // radius/1.0 only: no common protocol, the handshake fails.
    assert!(connect_alpn(&s, &[b"radius/1.0"]).await.is_err());
    let mut c = connect_alpn(&s, &[ALPN_11, b"radius/1.0"]).await.unwrap();
    assert_eq!(c.get_ref().1.alpn_protocol(), Some(ALPN_11));
    authenticate_v11(&mut c).await;
    assert!(s.log_text().contains("did not negotiate radius/1.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radius_1_1_off() {
    let s = start("radius_1_1 = \"off\"", &tls_client(NAS_NAME), false);
    // radius/1.1 offered but not taken: RADIUS/1.0.
    let mut c = connect_alpn(&s, &[ALPN_11, b"radius/1.0"]).await.unwrap();
    assert_eq!(c.get_ref().1.alpn_protocol(), None);
    status_v10(&mut c).await;
    let mut c = connect_alpn(&s, &[]).await.unwrap();
    assert_accepted_with_keys(&authenticate(&mut c, "radsec", false).await);
}

// ---------------------------------------------------------------------------------------------
// Configuration and `certradius check`

fn check(extra: &str) -> (bool, String) {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &pki, "check", "", extra);
    let out = Command::new(env!("CARGO_BIN_EXE_certradius"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn check_lists_radsec_listeners_and_nas_trust() {
    let pki = pki();
    let (ok, out) = check(&format!(
        "[radsec]\nlisten = [\"127.0.0.1:2083\"]\ncertificate_file = \"{p}/server.pem\"\nprivate_key_file = \"{p}/server.key\"\nca_file = \"{p}/ca.pem\"\ncrl_file = \"{p}/ca.crl.pem\"\ntls_min_version = \"1.3\"\nradius_1_1 = \"require\"\nidle_timeout_secs = 60\nhandshake_timeout_secs = 5\nmax_connections = 10\nmax_connections_per_client = 2\n\n[tcp]\nlisten = [\"127.0.0.1:1812\"]\n\n{}\n{TCP_CLIENT}",
        tls_client(NAS_NAME),
        p = pki.display()
    ));
    assert!(ok, "{out}");
    assert!(
        out.contains("RadSec listen 127.0.0.1:2083 (TLS >= 1.3, radius_1_1 Require)"),
        "{out}"
    );
    assert!(out.contains("certradius Test Root"), "{out}");
    assert!(out.contains("1 CRL file(s)"), "{out}");
    assert!(out.contains("RADIUS/TCP listen 127.0.0.1:1812"), "{out}");
    assert!(
        out.contains("client radsec-nas 127.0.0.1: tls, certificate_name laptop42.certradius.test"),
        "{out}"
    );
    assert!(out.contains("client tcp-nas 127.0.0.1: tcp"), "{out}");
}

#[test]
fn secrets_required_for_udp_and_tcp_but_not_tls() {
    let (ok, out) =
        check("[[client]]\nname = \"t\"\naddress = \"10.0.0.1\"\ntransport = \"tcp\"\n");
    assert!(!ok);
    assert!(out.contains("client[1].secret"), "{out}");
    let (ok, out) = check("[[client]]\nname = \"u\"\naddress = \"10.0.0.1\"\n");
    assert!(!ok);
    assert!(out.contains("client[1].secret"), "{out}");
    let (ok, out) =
        check("[[client]]\nname = \"r\"\naddress = \"10.0.0.0/8\"\ntransport = \"tls\"\n");
    assert!(ok, "{out}");
    let (ok, out) = check(
        "[[client]]\nname = \"x\"\naddress = \"10.0.0.1\"\nsecret = \"s\"\ncertificate_name = \"a\"\n",
    );
    assert!(!ok);
    assert!(out.contains("only applies to transport"), "{out}");
    let (ok, out) = check(
        "[[client]]\nname = \"x\"\naddress = \"10.0.0.1\"\nsecret = \"s\"\ntransport = \"dtls\"\n",
    );
    assert!(!ok, "{out}");
    let (ok, out) = check("[radsec]\nradius_1_1 = \"maybe\"\n");
    assert!(!ok, "{out}");
    let (ok, out) = check("[radsec]\nidle_timeout_secs = 99999999999\n");
    assert!(!ok && out.contains("radsec.idle_timeout_secs"), "{out}");
    let (ok, out) = check("[radsec]\nmax_connections_per_client = 0\n");
    assert!(
        !ok && out.contains("radsec.max_connections_per_client"),
        "{out}"
    );
}

/// A connection from `cert` answers a Status-Server (true) or is refused (false).
async fn accepted(s: &Streams, cert: &str) -> bool {
    let Ok(mut c) = radsec::connect(
        s.tls.unwrap(),
        nas_tls(&[&rustls::version::TLS13], &[], cert),
        "radius.certradius.test",
    )
    .await
    else {
        return false;
    };
    let (ss, _) = status_server(3, b"radsec");
    if radsec::write_packet(&mut c, &ss).await.is_err() {
        return false;
    }
    matches!(
        tokio::time::timeout(Duration::from_secs(5), radsec::read_packet(&mut c)).await,
        Ok(Ok(Some(_)))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nas_crl_checked_and_reloaded_from_disk() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let crl = dir.path().join("nas.crl.pem");
    let read = |f: &str| std::fs::read_to_string(pki.join(f)).unwrap();
    std::fs::write(
        &crl,
        read("ca.crl.pem") + &read("intermediate-empty.crl.pem"),
    )
    .unwrap();
    let any_nas = "[[client]]\nname = \"any-nas\"\naddress = \"127.0.0.1\"\ntransport = \"tls\"\n";
    let s = start(&format!("crl_file = \"{}\"", crl.display()), any_nas, false);
    assert!(
        accepted(&s, "revoked").await,
        "not yet revoked in the CRL in force"
    );
    let tmp = dir.path().join("nas.crl.tmp");
    std::fs::write(&tmp, read("ca.crl.pem") + &read("intermediate.crl.pem")).unwrap();
    std::fs::rename(&tmp, &crl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    while accepted(&s, "revoked").await {
        assert!(
            Instant::now() < deadline,
            "revoked NAS certificate still accepted after the CRL changed:\n{}",
            s.log_text()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(accepted(&s, "machine").await);
    assert!(
        s.log_text()
            .contains("files changed on disk: configuration reloaded")
    );
    // A broken CRL file: refused, the last good configuration stays.
    std::fs::write(&crl, "garbage").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(accepted(&s, "machine").await);
    assert!(!accepted(&s, "revoked").await);
    let log = s.log_text();
    assert!(
        log.contains("files changed on disk: configuration reload refused")
            && log.contains("radsec.crl_file"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_closed_by_the_write_timeout() {
    let s = start("", TCP_CLIENT, true);
    let mut stalled = tokio::net::TcpStream::connect(s.tcp.unwrap())
        .await
        .unwrap();
    let mut flood = Vec::new();
    for id in 0..=255u8 {
        flood.extend(status_server(id, b"tcpsecret").0);
    }
    // Write until the server stops reading (its replies fill the buffers), then keep the
    // connection open without reading: the server must give up on it.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut closed = false;
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), stalled.write_all(&flood)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                closed = true;
                break;
            }
            Err(_) => {
                if s.log_text().contains("did not read a reply") {
                    closed = true;
                    break;
                }
            }
        }
    }
    assert!(
        closed,
        "a peer that never reads was not closed:\n{}",
        s.log_text()
    );
    // Meanwhile and afterwards another NAS is served.
    let mut c = tokio::net::TcpStream::connect(s.tcp.unwrap())
        .await
        .unwrap();
    assert_accepted_with_keys(&authenticate(&mut c, "tcpsecret", false).await);
}
