//! What each fuzz target does with its input, and the invariants it asserts.
//!
//! Shared by the cargo-fuzz targets (`testbed/fuzz/fuzz_targets/*.rs`) and by the main crate's
//! `tests/corpus_replay.rs`, which includes this file with `#[path]` so that a plain `cargo test`
//! replays the committed corpus and every crash regression through exactly the same code. It
//! therefore depends only on `certradius` and on crates the main crate already has.
//!
//! A failed `assert!` here is a finding just like a panic inside certradius: a decoder accepted
//! something it cannot re-encode, a reassembled message differs from its fragments, a limit was
//! exceeded, or the server sent a reply a NAS could not verify.
//!
//! Input formats (all lenient: a short or odd input is used as far as it goes, never rejected):
//! - `radius_packet`, `eap_packet`: the datagram / EAP packet itself.
//! - `reassembler`: 4 header octets (`max_fragments % 32`, `max_message_len` as u16 BE `% 16385`,
//!   fragment size − 1 for the Fragmenter round trip), then records `[len u16 BE][EAP-TLS
//!   Type-Data]`.
//! - `client_hello`: the peer's first TLS records (what the EAP-TLS layer reassembles).
//! - `handle_datagram`: 1 header octet (see [`script`]), then records `[op][len u16 BE][payload]`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::peer::{PeerStep, Supplicant};
use certradius::authz::AllowVerified;
use certradius::config::Config;
use certradius::eap::{
    self, EapCode, EapPacket, EapType, Fragmenter, Progress, Reassembler, ReassemblyLimits,
    TlsFrame,
};
use certradius::radius::dictionary::Dictionary;
use certradius::radius::{self, Code, Packet, PacketBuilder, SharedSecret, attr};
use certradius::server::Core;

/// The shared secret of every client in the fuzzing configuration.
pub const SECRET: &[u8] = b"fuzz";

/// The names of the targets, as directories under `corpus/` and `regressions/`.
pub const TARGETS: [&str; 8] = [
    "radius_packet",
    "eap_packet",
    "reassembler",
    "handle_datagram",
    "radius_stream",
    "request_queue",
    "mab_allow_list",
    "client_hello",
];

/// Runs `data` through the target called `target`; false for an unknown name.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "radius_packet" => radius_packet(data),
        "eap_packet" => eap_packet(data),
        "reassembler" => reassembler(data),
        "handle_datagram" => handle_datagram(data),
        "radius_stream" => radius_stream(data),
        "request_queue" => request_queue(data),
        "mab_allow_list" => mab_allow_list(data),
        "client_hello" => client_hello(data),
        _ => return false,
    }
    true
}

fn secret() -> SharedSecret {
    SharedSecret::new(SECRET.to_vec())
}

// ---------------------------------------------------------------------------------------------
// radius_packet

/// `Packet::decode`, every accessor, both authenticator checks, MPPE key decryption, and a
/// re-encode of whatever decoded (as a request and as a response) that must verify.
pub fn radius_packet(data: &[u8]) {
    let Ok(p) = Packet::decode(data) else {
        return;
    };
    let secret = secret();
    let raw = p.raw();
    assert!((20..=4096).contains(&raw.len()) && raw.len() <= data.len());

    // The attribute iterator covers the attribute area exactly: validation and iteration agree.
    let mut covered = 20usize;
    let mut eap = Vec::new();
    let mut has_eap = false;
    for a in p.attributes() {
        assert!(a.value.len() <= 253);
        covered += 2 + a.value.len();
        assert!(p.first(a.typ).is_some() && p.count(a.typ) > 0);
        if a.typ == attr::EAP_MESSAGE {
            has_eap = true;
            eap.extend_from_slice(a.value);
        }
        if a.typ == attr::VENDOR_SPECIFIC
            && let Some(id) = a.value.first_chunk::<4>()
        {
            for v in p.vendor_attributes(u32::from_be_bytes(*id)) {
                assert!(v.value.len() <= 251);
            }
        }
    }
    assert_eq!(covered, raw.len(), "attributes do not cover the packet");
    assert_eq!(p.eap_message(), has_eap.then_some(eap));

    for v in p.vendor_attributes(attr::VENDOR_MICROSOFT) {
        if let Ok(key) = radius::mppe::decrypt_key(v.value, &secret, p.authenticator()) {
            assert!(key.len() <= 255);
        }
    }
    let _ = radius::verify_message_authenticator(&p, &secret, None);
    let _ = radius::verify_message_authenticator(&p, &secret, Some(&[0x5a; 16]));
    let _ = radius::verify_response_authenticator(&p, &secret, &[0x5a; 16]);

    // Rebuild from the decoded attributes: what decodes must re-encode and then verify.
    let mut b = PacketBuilder::new(p.code(), p.identifier());
    let others: Vec<_> = p
        .attributes()
        .filter(|a| a.typ != attr::MESSAGE_AUTHENTICATOR)
        .collect();
    for a in &others {
        b.attr(a.typ, a.value)
            .expect("a decoded attribute value always fits the builder");
    }
    let same_attributes = |q: &Packet<'_>| {
        let mut it = q.attributes();
        assert_eq!(
            it.next().map(|a| a.typ),
            Some(attr::MESSAGE_AUTHENTICATOR),
            "Message-Authenticator must come first"
        );
        assert!(
            it.eq(others.iter().copied()),
            "attributes changed in a re-encode"
        );
    };
    if let Ok(bytes) = b.encode_request(&secret, *p.authenticator()) {
        let q = Packet::decode(&bytes).expect("an encoded request decodes");
        assert_eq!((q.code(), q.identifier()), (p.code(), p.identifier()));
        same_attributes(&q);
        radius::verify_message_authenticator(&q, &secret, None)
            .expect("an encoded request verifies");
    }
    if let Ok(bytes) = b.encode_response(&secret, p.authenticator()) {
        let q = Packet::decode(&bytes).expect("an encoded response decodes");
        same_attributes(&q);
        radius::verify_response_authenticator(&q, &secret, p.authenticator())
            .expect("Response Authenticator of an encoded response");
        radius::verify_message_authenticator(&q, &secret, Some(p.authenticator()))
            .expect("Message-Authenticator of an encoded response");
    }
}

// ---------------------------------------------------------------------------------------------
// eap_packet

/// `EapPacket::decode`, then `TlsFrame::decode` for EAP-TLS; both must survive a re-encode, and a
/// decoded frame is pushed through a reassembler with the default limits.
pub fn eap_packet(data: &[u8]) {
    let Ok(p) = EapPacket::decode(data) else {
        return;
    };
    let again = eap::packet::encode(p.code, p.identifier, p.typ, p.type_data);
    assert_eq!(
        EapPacket::decode(&again),
        Ok(p),
        "EAP re-encode changed the packet"
    );
    assert_eq!(
        p.typ.is_some(),
        matches!(p.code, EapCode::Request | EapCode::Response)
    );
    if p.typ != Some(EapType::Tls) {
        return;
    }
    let Ok(frame) = TlsFrame::decode(p.type_data) else {
        return;
    };
    assert_eq!(frame.message_length.is_some(), frame.flags.length_included);
    let mut out = Vec::new();
    frame.encode(&mut out);
    assert_eq!(
        TlsFrame::decode(&out),
        Ok(frame),
        "EAP-TLS re-encode changed the frame"
    );
    let _ = frame.is_ack();

    let mut r = Reassembler::new(ReassemblyLimits::default());
    match r.push(&frame) {
        Ok(Progress::Complete(m)) => {
            assert!(!frame.flags.more_fragments);
            assert_eq!(m, frame.data);
        }
        Ok(Progress::NeedMore) => assert!(frame.flags.more_fragments && r.in_progress()),
        Err(_) => assert!(!r.in_progress()),
    }
}

// ---------------------------------------------------------------------------------------------
// reassembler

/// Splits `[len u16 BE][bytes]` records; a short last record takes what is left.
fn records16(mut rest: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (record, tail) = tail.split_at(len);
        rest = tail;
        Some(record)
    })
}

/// Feeds the recorded frames to a `Reassembler` with small limits and checks it against a model
/// (the concatenation of the accepted fragments), then round-trips everything that was received
/// through `Fragmenter` -> EAP-TLS response -> decoders -> `Reassembler`.
pub fn reassembler(data: &[u8]) {
    let Some((&[frags, len_hi, len_lo, size], rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let limits = ReassemblyLimits {
        max_fragments: u32::from(frags % 32),
        max_message_len: usize::from(u16::from_be_bytes([len_hi, len_lo])) % 16385,
    };
    let mut r = Reassembler::new(limits);
    let mut model = Vec::new();
    let mut count = 0u32;
    let mut everything = Vec::new();
    for record in records16(rest) {
        let Ok(frame) = TlsFrame::decode(record) else {
            continue;
        };
        let room = 16384usize.saturating_sub(everything.len());
        everything.extend_from_slice(frame.data.get(..room).unwrap_or(frame.data));
        count += 1;
        match r.push(&frame) {
            Ok(Progress::NeedMore) => {
                assert!(frame.flags.more_fragments && r.in_progress());
                model.extend_from_slice(frame.data);
                assert!(
                    model.len() <= limits.max_message_len,
                    "buffered past the limit"
                );
                assert!(
                    count <= limits.max_fragments,
                    "more fragments than the limit"
                );
            }
            Ok(Progress::Complete(message)) => {
                assert!(!frame.flags.more_fragments && !r.in_progress());
                model.extend_from_slice(frame.data);
                assert_eq!(
                    message, model,
                    "reassembled message differs from its fragments"
                );
                assert!(
                    message.len() <= limits.max_message_len,
                    "message past the limit"
                );
                assert!(
                    count <= limits.max_fragments,
                    "more fragments than the limit"
                );
                if let Some(announced) = frame.message_length {
                    assert_eq!(usize::try_from(announced).ok(), Some(message.len()));
                }
                model.clear();
                count = 0;
            }
            Err(_) => {
                assert!(!r.in_progress(), "an error must reset the reassembler");
                model.clear();
                count = 0;
            }
        }
    }

    // Whatever we fragment, we reassemble to the same octets, within exactly-tight limits.
    let mut fragmenter = Fragmenter::new(everything.clone(), usize::from(size) + 1);
    let mut wire = Vec::new();
    while let Some(frame) = fragmenter.next_frame() {
        wire.push(eap::tls_response(7, &frame));
    }
    assert!(fragmenter.is_done() && fragmenter.remaining() == 0);
    let tight = ReassemblyLimits {
        max_message_len: everything.len(),
        max_fragments: u32::try_from(wire.len()).unwrap_or(u32::MAX),
    };
    let mut r = Reassembler::new(tight);
    for (i, packet) in wire.iter().enumerate() {
        let p = EapPacket::decode(packet).expect("a tls_response decodes");
        assert_eq!(
            (p.code, p.identifier, p.typ),
            (EapCode::Response, 7, Some(EapType::Tls))
        );
        let frame = TlsFrame::decode(p.type_data).expect("a Fragmenter frame decodes");
        let progress = r
            .push(&frame)
            .expect("a Fragmenter sequence within the limits");
        if i + 1 < wire.len() {
            assert_eq!(progress, Progress::NeedMore);
        } else {
            assert_eq!(progress, Progress::Complete(everything.clone()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// handle_datagram

/// The `handle_datagram` input format, and helpers to write it (for the seed generator).
///
/// Header octet: bit 0 TLS 1.3 (else 1.2) for the built-in supplicant; bit 1 RSA client
/// certificate (else ECDSA); bits 2-3 the supplicant's fragment size (1400, 1024, 300, 64);
/// bits 4-5 Framed-MTU in requests (none, 1400, 300, 64); bit 6 send from 127.0.0.2, a client
/// that does not require Message-Authenticator (else 127.0.0.1, which does).
///
/// Each record is `[op][len u16 BE][payload]`. The low nibble of `op` picks the action; nibbles
/// 9-15 also mean [`PEER`], so most mutated records keep the conversation going:
pub mod script {
    /// The built-in supplicant answers the last Access-Challenge (or starts a new conversation
    /// with EAP-Response/Identity when there is none). Payload ignored.
    pub const PEER: u8 = 0;
    /// Like PEER, then XORs payload[2..] into the EAP packet at offset payload[0..2] (u16 BE).
    pub const PEER_CORRUPT: u8 = 1;
    /// The payload is the whole EAP-Message.
    pub const EAP: u8 = 2;
    /// The payload is EAP-TLS Type-Data, sent as EAP-Response/EAP-TLS with the Identifier of
    /// the last EAP-Request the server sent.
    pub const EAP_TLS: u8 = 3;
    /// The payload is `[type][len][value]` attributes added to an Access-Request (no EAP-Message
    /// unless the payload has one).
    pub const ATTRS: u8 = 4;
    /// The payload is sent as the datagram, unwrapped and unsigned.
    pub const RAW: u8 = 5;
    /// Sends the previous datagram again (a NAS retransmission). Payload ignored.
    pub const RESEND: u8 = 6;
    /// A Status-Server carrying the payload as attributes.
    pub const STATUS_SERVER: u8 = 7;
    /// payload[0] seconds pass, then the server sweeps idle conversations.
    pub const TIME: u8 = 8;

    /// Flag: leave out the State of the last Access-Challenge (otherwise every wrapped
    /// Access-Request carries it, so conversations progress).
    pub const NO_STATE: u8 = 0x10;
    /// Flag: send from a second source port of the same NAS.
    pub const OTHER_PORT: u8 = 0x20;
    /// Flag: flip the last bit of the State.
    pub const BAD_STATE: u8 = 0x40;
    /// Flag: remove the Message-Authenticator (which the builder puts first).
    pub const NO_MESSAGE_AUTHENTICATOR: u8 = 0x80;

    /// Header octet from its fields (each taken modulo its range).
    pub fn header(tls13: bool, rsa: bool, fragment: u8, mtu: u8, lax_client: bool) -> u8 {
        u8::from(tls13)
            | (u8::from(rsa) << 1)
            | ((fragment & 3) << 2)
            | ((mtu & 3) << 4)
            | (u8::from(lax_client) << 6)
    }

    /// Appends one record.
    pub fn record(out: &mut Vec<u8>, op: u8, payload: &[u8]) {
        let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
        out.push(op);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(payload.get(..usize::from(len)).unwrap_or(payload));
    }
}

/// The `reassembler` input: limits, fragment size, then one record per EAP-TLS Type-Data.
pub fn reassembler_input(
    max_fragments: u8,
    max_message_len: u16,
    fragment_size: u8,
    type_data: &[Vec<u8>],
) -> Vec<u8> {
    let mut out = vec![max_fragments];
    out.extend_from_slice(&max_message_len.to_be_bytes());
    out.push(fragment_size);
    for t in type_data {
        let len = u16::try_from(t.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(t.get(..usize::from(len)).unwrap_or(t));
    }
    out
}

/// Records per input: bounds the time one input can take.
const MAX_OPS: usize = 64;
/// Virtual seconds between two inputs: more than any input can advance the clock (MAX_OPS *
/// 255 s) plus the session and duplicate-cache lifetimes, so each input starts with an empty
/// server.
const EPOCH_SECS: u64 = 20_000;

/// The server and the supplicant configurations, built once per process.
pub struct Fixture {
    pub core: Core,
    /// Indexed by `tls13 as usize + 2 * rsa as usize` (ECDSA or RSA client certificate).
    pub clients: [Arc<rustls::ClientConfig>; 4],
    /// Supplicants the server must refuse, indexed by `tls13 as usize`: an untrusted and an
    /// expired client certificate (for the seed generator).
    pub untrusted: [Arc<rustls::ClientConfig>; 2],
    pub expired: [Arc<rustls::ClientConfig>; 2],
    base: Instant,
    /// The wall time handed to the core (certificates and CRLs are judged against it).
    wall: rustls::pki_types::UnixTime,
    epoch: AtomicU64,
}

/// Deletes a directory when dropped.
struct TempDir(Option<PathBuf>);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Fixture {
    /// Uses the PKI in `$CERTRADIUS_FUZZ_PKI` if set; otherwise generates a fresh one into a
    /// private temporary directory (a fraction of a second), loads everything from it into
    /// memory and deletes it, so nothing stale or half-written is ever shared between processes.
    fn build() -> Result<Fixture, String> {
        let (pki, _cleanup) = match std::env::var_os("CERTRADIUS_FUZZ_PKI") {
            Some(dir) => (PathBuf::from(dir), TempDir(None)),
            None => {
                // Built once per process, so the process id makes the name unique.
                let dir = std::env::temp_dir()
                    .join(format!("certradius-fuzz-pki-{}", std::process::id()));
                let cleanup = TempDir(Some(dir.clone()));
                certradius_pki::generate(&dir).map_err(|e| e.to_string())?;
                (dir, cleanup)
            }
        };
        let pki = pki.as_path();
        let text = format!(
            r#"
[server]
listen = ["127.0.0.1:0"]
duplicate_cache_entries = 256

[[client]]
name = "fuzz"
address = "127.0.0.1"
secret = "fuzz"
max_sessions = 16

[[client]]
name = "fuzz-lax"
address = "127.0.0.2"
secret = "fuzz"
require_message_authenticator = false
max_sessions = 16

[tls]
certificate_file = "{pki}/server.pem"
private_key_file = "{pki}/server.key"
ca_file = "{pki}/ca.pem"

[eap]
max_sessions = 32
max_tls_message_size = 16384
max_fragments = 32
"#,
            pki = pki.display()
        );
        let path = pki.join("certradius-fuzz.toml");
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        let cfg = Config::load_with_env(Some(&path), false).map_err(|e| e.to_string());
        let _ = std::fs::remove_file(&path);
        let cfg = cfg?;
        let tls = certradius::tls::server_config(&cfg.tls).map_err(|e| e.to_string())?;
        let core = Core::new(&cfg, tls, Arc::new(AllowVerified), Dictionary::embedded());
        let client = |version: &'static rustls::SupportedProtocolVersion, cert: &str| {
            crate::peer::client_config(
                &pki.join("ca.pem"),
                &pki.join(format!("client-{cert}.pem")),
                &pki.join(format!("client-{cert}.key")),
                &[version],
            )
            .map_err(|e| e.to_string())
        };
        let clients = [
            client(&rustls::version::TLS12, "ecdsa")?,
            client(&rustls::version::TLS13, "ecdsa")?,
            client(&rustls::version::TLS12, "rsa")?,
            client(&rustls::version::TLS13, "rsa")?,
        ];
        let untrusted = [
            client(&rustls::version::TLS12, "untrusted")?,
            client(&rustls::version::TLS13, "untrusted")?,
        ];
        let expired = [
            client(&rustls::version::TLS12, "expired")?,
            client(&rustls::version::TLS13, "expired")?,
        ];
        // The one clock read: the origin of the virtual time handed to the core.
        #[allow(clippy::disallowed_methods)]
        let (base, wall) = (Instant::now(), rustls::pki_types::UnixTime::now());
        Ok(Fixture {
            core,
            clients,
            untrusted,
            expired,
            base,
            wall,
            epoch: AtomicU64::new(0),
        })
    }

    /// A point in virtual time after everything earlier inputs did, with the server swept
    /// clean of their conversations (their duplicate-cache entries expire on the next lookup).
    pub fn fresh_now(&self) -> Instant {
        let epoch = self.epoch.fetch_add(1, Ordering::Relaxed) + 1;
        let now = self
            .base
            .checked_add(Duration::from_secs(epoch.saturating_mul(EPOCH_SECS)))
            .unwrap_or(self.base);
        self.core.sweep(now);
        now
    }
}

/// The process-wide fixture. Also turns on DEBUG logging into a sink, so the packet
/// descriptions the server formats only at DEBUG level run on hostile input too.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
            .with_writer(std::io::sink)
            .try_init();
        match Fixture::build() {
            Ok(f) => f,
            Err(e) => panic!("fuzz fixture: {e}"),
        }
    })
}

/// SplitMix64: the deterministic RNG handed to the core (State values, MPPE salts) and used
/// for Request Authenticators.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or(&bytes));
        }
    }

    pub fn authenticator(&mut self) -> [u8; 16] {
        let mut a = [0u8; 16];
        self.fill(&mut a);
        a
    }
}

/// Splits `[type][len][value]` attributes; `len` is the value length, cut to what is left and
/// to 253.
fn tlv(mut rest: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let Some((&[typ, len], tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(len).min(tail.len()).min(253);
        let (value, tail) = tail.split_at(len);
        out.push((typ, value));
        rest = tail;
    }
    out
}

/// One input's worth of NAS + supplicant driving the shared core.
struct Run<'a> {
    fx: &'a Fixture,
    now: Instant,
    rng: SplitMix,
    header: u8,
    supplicant: Option<Supplicant>,
    /// The EAP-Request of the last Access-Challenge, for the supplicant to answer.
    pending: Option<Vec<u8>>,
    /// The State of the last Access-Challenge.
    state: Option<Vec<u8>>,
    /// The Identifier of the last EAP-Request the server sent.
    eap_id: u8,
    radius_id: u8,
    last: Option<(SocketAddr, Vec<u8>)>,
}

impl Run<'_> {
    fn ip(&self) -> IpAddr {
        if self.header & 0x40 != 0 {
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
    }

    fn from(&self, op: u8) -> SocketAddr {
        let port = if op & script::OTHER_PORT != 0 {
            40001
        } else {
            40000
        };
        SocketAddr::new(self.ip(), port)
    }

    fn framed_mtu(&self) -> Option<u32> {
        [None, Some(1400), Some(300), Some(64)]
            .get(usize::from((self.header >> 4) & 3))
            .copied()
            .flatten()
    }

    /// The supplicant's answer to the pending challenge, or a new conversation's Identity.
    fn peer_eap(&mut self) -> Option<Vec<u8>> {
        if let (Some(s), Some(challenge)) = (self.supplicant.as_mut(), self.pending.take())
            && let Ok(PeerStep::Respond(eap)) = s.handle(&challenge)
        {
            return Some(eap);
        }
        let config = self.fx.clients.get(usize::from(self.header & 3))?.clone();
        let fragment = [1400, 1024, 300, 64]
            .get(usize::from((self.header >> 2) & 3))
            .copied()
            .unwrap_or(1024);
        let s = Supplicant::new(
            config,
            certradius_pki::SERVER_NAME,
            b"fuzz@certradius.test",
            fragment,
        )
        .ok()?;
        let eap = s.identity_response(self.radius_id);
        self.supplicant = Some(s);
        self.state = None;
        Some(eap)
    }

    fn op(&mut self, op: u8, payload: &[u8]) {
        let kind = match op & 0x0f {
            k @ 0..=8 => k,
            _ => script::PEER,
        };
        match kind {
            script::PEER => {
                if let Some(eap) = self.peer_eap() {
                    self.request(op, Code::AccessRequest, Some(&eap), &[]);
                }
            }
            script::PEER_CORRUPT => {
                if let Some(mut eap) = self.peer_eap() {
                    if let Some((pos, xor)) = payload.split_first_chunk::<2>()
                        && !eap.is_empty()
                    {
                        let len = eap.len();
                        let pos = usize::from(u16::from_be_bytes(*pos));
                        for (i, x) in xor.iter().enumerate() {
                            if let Some(b) = eap.get_mut((pos + i) % len) {
                                *b ^= x;
                            }
                        }
                    }
                    self.request(op, Code::AccessRequest, Some(&eap), &[]);
                }
            }
            script::EAP => self.request(op, Code::AccessRequest, Some(payload), &[]),
            script::EAP_TLS => {
                let eap = eap::packet::encode(
                    EapCode::Response,
                    self.eap_id,
                    Some(EapType::Tls),
                    payload,
                );
                self.request(op, Code::AccessRequest, Some(&eap), &[]);
            }
            script::ATTRS => self.request(op, Code::AccessRequest, None, &tlv(payload)),
            script::RAW => self.send(self.from(op), payload.to_vec()),
            script::RESEND => {
                if let Some((from, datagram)) = self.last.take() {
                    self.send(from, datagram);
                }
            }
            script::STATUS_SERVER => self.request(op, Code::StatusServer, None, &tlv(payload)),
            _ => {
                let secs = payload.first().copied().unwrap_or(0);
                self.now += Duration::from_secs(u64::from(secs));
                self.fx.core.sweep(self.now);
            }
        }
    }

    /// A signed request as a NAS builds it (RFC 3579 §3.2), carrying the conversation's State.
    fn request(&mut self, op: u8, code: Code, eap: Option<&[u8]>, extra: &[(u8, &[u8])]) {
        let id = self.radius_id;
        self.radius_id = self.radius_id.wrapping_add(1);
        let mut b = PacketBuilder::new(code, id);
        if code == Code::AccessRequest {
            let _ = b.attr(attr::USER_NAME, b"fuzz@certradius.test");
            let _ = b.attr(attr::NAS_IP_ADDRESS, &[127, 0, 0, 1]);
            let _ = b.attr(attr::CALLING_STATION_ID, b"02-00-00-00-00-01");
            let _ = b.attr(attr::NAS_PORT_TYPE, &19u32.to_be_bytes());
            if let Some(mtu) = self.framed_mtu() {
                let _ = b.attr(attr::FRAMED_MTU, &mtu.to_be_bytes());
            }
            if op & script::NO_STATE == 0
                && let Some(state) = &self.state
            {
                let mut state = state.clone();
                if op & script::BAD_STATE != 0
                    && let Some(last) = state.last_mut()
                {
                    *last ^= 1;
                }
                let _ = b.attr(attr::STATE, &state);
            }
        }
        for (typ, value) in extra {
            let _ = b.attr(*typ, value);
        }
        if let Some(eap) = eap {
            b.eap_message(eap);
        }
        let authenticator = self.rng.authenticator();
        let Ok(mut datagram) = b.encode_request(&secret(), authenticator) else {
            return;
        };
        if op & script::NO_MESSAGE_AUTHENTICATOR != 0 {
            strip_message_authenticator(&mut datagram);
        }
        self.send(self.from(op), datagram);
    }

    fn send(&mut self, from: SocketAddr, datagram: Vec<u8>) {
        let rng = &mut self.rng;
        let reply = self.fx.core.handle_datagram(
            from,
            &datagram,
            certradius::session::Now::new(self.now, self.fx.wall),
            &mut |b| rng.fill(b),
        );
        if let Some(reply) = reply {
            self.on_reply(&datagram, &reply);
        }
        self.last = Some((from, datagram));
    }

    /// Every reply must be one a NAS accepts; Access-Challenges drive the conversation.
    fn on_reply(&mut self, request: &[u8], reply: &[u8]) {
        let req = Packet::decode(request).expect("the server answered an undecodable request");
        let p = Packet::decode(reply).expect("the server's reply does not decode");
        let secret = secret();
        let auth = req.authenticator();
        assert_eq!(p.identifier(), req.identifier(), "reply Identifier");
        radius::verify_response_authenticator(&p, &secret, auth)
            .expect("reply Response Authenticator");
        radius::verify_message_authenticator(&p, &secret, Some(auth))
            .expect("reply Message-Authenticator");
        assert_eq!(
            p.attributes().next().map(|a| a.typ),
            Some(attr::MESSAGE_AUTHENTICATOR),
            "Message-Authenticator must be the first attribute of a reply"
        );
        let proxy_in: Vec<_> = req
            .attributes()
            .filter(|a| a.typ == attr::PROXY_STATE)
            .collect();
        let proxy_out: Vec<_> = p
            .attributes()
            .filter(|a| a.typ == attr::PROXY_STATE)
            .collect();
        assert_eq!(proxy_in, proxy_out, "Proxy-State must be echoed unchanged");
        match p.code() {
            Code::AccessChallenge => {
                let eap = p.eap_message().expect("an Access-Challenge carries EAP");
                let e = EapPacket::decode(&eap).expect("the server's EAP decodes");
                assert_eq!(e.code, EapCode::Request);
                self.eap_id = e.identifier;
                self.state = Some(
                    p.first(attr::STATE)
                        .expect("an Access-Challenge carries State")
                        .to_vec(),
                );
                self.pending = Some(eap);
            }
            Code::AccessAccept | Code::AccessReject => {
                // The conversation ended if this answered a request with its State.
                if req.first(attr::STATE) == self.state.as_deref() {
                    self.pending = None;
                    self.state = None;
                }
            }
            other => panic!("unexpected reply code {other}"),
        }
    }
}

/// Removes the Message-Authenticator that `encode_request` put first, fixing the Length.
fn strip_message_authenticator(datagram: &mut Vec<u8>) {
    if datagram.get(20..22) != Some(&[attr::MESSAGE_AUTHENTICATOR, 18][..]) {
        return;
    }
    datagram.drain(20..38);
    let len = u16::try_from(datagram.len())
        .unwrap_or(u16::MAX)
        .to_be_bytes();
    if let Some(field) = datagram.get_mut(2..4) {
        field.copy_from_slice(&len);
    }
}

/// Drives the shared `Core` with the records of one input (see [`script`]).
pub fn handle_datagram(data: &[u8]) {
    let Some((&header, rest)) = data.split_first() else {
        return;
    };
    let fx = fixture();
    let mut run = Run {
        fx,
        now: fx.fresh_now(),
        rng: SplitMix::new(0x6365_7274_7261_6469),
        header,
        supplicant: None,
        pending: None,
        state: None,
        eap_id: 0,
        radius_id: 0,
        last: None,
    };
    let mut rest = rest;
    for _ in 0..MAX_OPS {
        let Some((&op, tail)) = rest.split_first() else {
            break;
        };
        let (len, tail) = match tail.split_first_chunk::<2>() {
            Some((len, tail)) => (usize::from(u16::from_be_bytes(*len)), tail),
            None => (0, &[][..]),
        };
        let (payload, tail) = tail.split_at(len.min(tail.len()));
        run.op(op, payload);
        rest = tail;
    }
}

// ---------------------------------------------------------------------------------------------
// radius_stream

/// The RADIUS/TCP and RadSec framer (`radius::stream::Framer`): the first octet picks the read
/// size (1..=256 octets per push, as a peer writing in small pieces would), the rest is the
/// stream. Every packet handed out must be exactly its Length (20..=4096) and a prefix of what
/// is left of the stream; the octets held never exceed one packet plus one read; after an error
/// nothing more comes out.
pub fn radius_stream(data: &[u8]) {
    use certradius::radius::stream::{Framer, MAX_PACKET};
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first) + 1;
    let mut f = Framer::new();
    let mut consumed = 0usize;
    let mut broken = false;
    for piece in stream.chunks(chunk) {
        f.push(piece);
        loop {
            match f.next_packet() {
                Ok(Some(p)) => {
                    assert!(!broken, "a packet after a framing error");
                    let len = usize::from(u16::from_be_bytes([p[2], p[3]]));
                    assert_eq!(p.len(), len);
                    assert!((20..=MAX_PACKET).contains(&len));
                    assert_eq!(&stream[consumed..consumed + len], p.as_slice());
                    consumed += len;
                }
                Ok(None) => break,
                Err(_) => {
                    broken = true;
                    assert_eq!(f.pending(), 0, "a broken stream holds nothing");
                    break;
                }
            }
        }
        assert!(
            f.pending() < MAX_PACKET + chunk,
            "held {} octets",
            f.pending()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// request_queue

/// What the harness knows of one request it pushed.
struct Pushed {
    class: certradius::core::queue::Class,
    client: usize,
    key: Option<certradius::core::queue::RequestKey>,
    arrived: Duration,
}

/// The request queue (`core::queue`) with the classifier in front of it
/// (`server::drain::starts_conversation`, `queue::request_key`) on raw datagrams. The input is a
/// script of operations: push a datagram (from one of four NAS, on one of four ports), push a
/// copy of an earlier one (a retransmission), pop, let time pass. After each operation: the
/// length is bounded and adds up; a pop never hands out a request older than `max_wait`, never a
/// NAS's new conversation while a fresh one of that NAS in progress waits, and nothing when
/// something fresh waits; a copy of a fresh waiting request is refused as a duplicate; only a new
/// request is ever displaced, and never by its own NAS's.
pub fn request_queue(data: &[u8]) {
    use certradius::core::queue::{Class, Pushed as Outcome, Refused, RequestQueue, request_key};
    use std::collections::BTreeMap;

    const CAPACITY: usize = 8;
    const MAX_WAIT: Duration = Duration::from_millis(1000);
    #[allow(clippy::disallowed_methods)] // the queue only compares instants; any base will do
    let base = Instant::now();
    let mut queue: RequestQueue<u32> = RequestQueue::new(CAPACITY, MAX_WAIT);
    let mut live: BTreeMap<u32, Pushed> = BTreeMap::new();
    let mut history: Vec<(SocketAddrV4Bytes, Vec<u8>)> = Vec::new();
    let mut elapsed = Duration::ZERO;
    let mut next_id = 0u32;
    let fresh = |p: &Pushed, elapsed: Duration| elapsed.saturating_sub(p.arrived) <= MAX_WAIT;
    let mut rest = data;
    for _ in 0..MAX_OPS {
        let Some((&op, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        let now = base.checked_add(elapsed).unwrap_or(base);
        match op % 4 {
            0 | 1 => {
                // A new datagram (0), or a copy of an earlier one (1).
                let (from, datagram) = if op % 4 == 1 && !history.is_empty() {
                    let pick = usize::from(op / 4) % history.len();
                    match history.get(pick) {
                        Some(h) => h.clone(),
                        None => continue,
                    }
                } else {
                    let Some((&meta, tail)) = rest.split_first() else {
                        break;
                    };
                    let len = usize::from(meta & 0x3f).min(tail.len());
                    let (datagram, tail) = tail.split_at(len);
                    rest = tail;
                    let from = ([127, 0, 0, 1 + (meta >> 6)], 1812 + u16::from(op >> 6));
                    history.push((from, datagram.to_vec()));
                    (from, datagram.to_vec())
                };
                let addr = std::net::SocketAddr::from(from);
                let class = if certradius::server::drain::starts_conversation(&datagram) {
                    Class::New
                } else {
                    Class::Continuing
                };
                let key = request_key(addr, &datagram);
                let client = usize::from(from.0[3]);
                let twin_waits =
                    key.is_some() && live.values().any(|p| p.key == key && fresh(p, elapsed));
                let before = queue.len();
                let id = next_id;
                next_id += 1;
                let pushed = queue.push(id, class, client, key, now);
                if matches!(pushed, Outcome::Queued | Outcome::QueuedDisplacing(_)) {
                    assert!(!twin_waits, "a copy of a waiting request was queued twice");
                    live.insert(
                        id,
                        Pushed {
                            class,
                            client,
                            key,
                            arrived: elapsed,
                        },
                    );
                }
                match pushed {
                    Outcome::Queued => assert_eq!(queue.len(), before + 1),
                    Outcome::QueuedDisplacing(gone) => {
                        let gone = live
                            .remove(&gone)
                            .expect("displaced a request never pushed");
                        assert_eq!(
                            gone.class,
                            Class::New,
                            "displaced a conversation in progress"
                        );
                        if class == Class::New {
                            assert_ne!(
                                gone.client, client,
                                "a new request displaced its own NAS's"
                            );
                        }
                        assert_eq!(queue.len(), before);
                    }
                    Outcome::Refused(Refused::Duplicate) => {
                        assert!(
                            key.is_some() && live.values().any(|p| p.key == key),
                            "refused as a duplicate of nothing"
                        );
                        assert_eq!(queue.len(), before);
                    }
                    Outcome::Refused(Refused::Full) => {
                        assert_eq!(before, CAPACITY, "refused as full below capacity");
                        assert_eq!(queue.len(), before);
                    }
                }
            }
            2 => {
                let before = queue.len();
                let popped = queue.pop(now);
                let out = usize::from(popped.next.is_some());
                assert_eq!(queue.len() + popped.expired + out, before, "pop lost count");
                match popped.next {
                    Some(id) => {
                        let p = live.remove(&id).expect("popped a request never pushed");
                        assert!(
                            fresh(&p, elapsed),
                            "handed out a request older than max_wait"
                        );
                        if p.class == Class::New {
                            assert!(
                                !live.values().any(|q| q.client == p.client
                                    && q.class == Class::Continuing
                                    && fresh(q, elapsed)),
                                "a NAS's new conversation went before one it has in progress"
                            );
                        }
                    }
                    None => assert!(
                        !live.values().any(|q| fresh(q, elapsed)),
                        "nothing handed out while a fresh request waits"
                    ),
                }
            }
            _ => {
                // Time passes: 0 to 630 ms.
                elapsed += Duration::from_millis(u64::from(op / 4) * 10);
            }
        }
        assert!(queue.len() <= CAPACITY, "the queue outgrew its capacity");
    }
}

/// A NAS address as octets and a port (`SocketAddr::from` takes it).
type SocketAddrV4Bytes = ([u8; 4], u16);

// ---------------------------------------------------------------------------------------------
// mab_allow_list

/// `mab::AllowList::parse` on any bytes: it returns (never panics); an accepted list finds every
/// MAC spelled on its lines, each 6-octet window of the input is looked up, and the input read
/// as a User-Name / Calling-Station-Id / password goes through the MAB recognition and check.
pub fn mab_allow_list(data: &[u8]) {
    use certradius::mab::{self, AllowList, Mac};
    if let Ok(list) = AllowList::parse(data) {
        for window in data.windows(6) {
            let mut octets = [0u8; 6];
            octets.copy_from_slice(window);
            let _ = list.lookup(Mac(octets));
        }
        for line in data.split(|b| *b == b'\n') {
            let first = line.split(|b| *b == b',').next().unwrap_or_default();
            if let Ok(mac) = Mac::parse(first) {
                assert!(list.lookup(mac).is_some(), "a listed MAC is not found");
            }
        }
    }
    let mut fields = data.splitn(3, |b| *b == 0);
    let user = fields.next();
    let calling = fields.next();
    let password = fields.next();
    let authenticator = [7u8; 16];
    let attributes = mab::Attributes {
        user_name: user,
        calling_station_id: calling,
        user_password: password,
        chap_password: password,
        chap_challenge: None,
        authenticator: &authenticator,
    };
    if let Some(request) = mab::recognise(&attributes) {
        let _ = request.check_password(&secret());
    }
}

// ---------------------------------------------------------------------------------------------
// client_hello

/// `tls::client_hello::ClientHello::parse` on the peer's first flight: it returns (never
/// panics); what it keeps is bounded by `MAX_ENTRIES` per list, every code has a name, and the
/// same handshake message split into two records reads the same.
pub fn client_hello(data: &[u8]) {
    use certradius::tls::client_hello::{ClientHello, MAX_ENTRIES};
    let Ok(hello) = ClientHello::parse(data) else {
        return;
    };
    for codes in [
        &hello.versions,
        &hello.cipher_suites,
        &hello.signature_schemes,
        &hello.groups,
    ] {
        assert!(
            codes.as_slice().len() <= MAX_ENTRIES,
            "a list outgrew its cap"
        );
    }
    assert_eq!(hello.version_names().len(), hello.versions.as_slice().len());
    assert_eq!(
        hello.cipher_suite_names().len(),
        hello.cipher_suites.as_slice().len()
    );
    assert_eq!(
        hello.signature_scheme_names().len(),
        hello.signature_schemes.as_slice().len()
    );
    assert_eq!(hello.group_names().len(), hello.groups.as_slice().len());
    let _ = hello.one_line();
    // One complete record re-split in two at its middle (RFC 8446 §5.1): the same summary.
    let (Some(&hi), Some(&lo)) = (data.get(3), data.get(4)) else {
        return;
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    let Some(fragment) = data.get(5..5 + len) else {
        return;
    };
    if fragment.len() < 2 || data.len() != 5 + len {
        return;
    }
    let (a, b) = fragment.split_at(len / 2);
    let mut split = Vec::with_capacity(data.len() + 5);
    for part in [a, b] {
        split.extend_from_slice(&[22, 3, 1]);
        split.extend_from_slice(&(part.len() as u16).to_be_bytes());
        split.extend_from_slice(part);
    }
    assert_eq!(
        ClientHello::parse(&split).ok(),
        Some(hello),
        "a record boundary changed the summary"
    );
}
