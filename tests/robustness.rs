//! Misbehaving peers and NAS, in process: every EAP anomaly has a defined disposition (discard,
//! or Access-Reject with EAP-Failure) and a reason name that shows up in the counters; the
//! session table stays within its bounds and recovers when sessions expire.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{random16, rng};

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certradius::authz::AllowVerified;
use certradius::config::Config;
use certradius::eap::{self, EapCode, EapType, TlsFlags, TlsFrame};
use certradius::radius::Code;
use certradius::radius::dictionary::Dictionary;
use certradius::server::Core;
use certradius_testkit::peer::{self, Conversation, Nas, NasReply, Next, Outcome, Supplicant};

const FROM: &str = "127.0.0.1:41000";

fn core(pki: &Path, extra: &str) -> Core {
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), pki, "c", "", extra);
    let cfg = Config::load_with_env(Some(&path), false).unwrap();
    let tls = certradius::tls::server_config(&cfg.tls).unwrap();
    Core::new(&cfg, tls, Arc::new(AllowVerified), Dictionary::embedded())
}

/// Sends one EAP payload through a NAS; returns the verified reply, or None if discarded.
/// One datagram from the test NAS's address through the core; None when it answers with silence.
fn deliver(core: &Core, packet: &[u8], now: Instant) -> Option<Vec<u8>> {
    let from: SocketAddr = FROM.parse().unwrap();
    core.handle_datagram(
        from,
        packet,
        certradius::session::Now::new(now, rustls::pki_types::UnixTime::now()),
        &mut rng,
    )
}

fn send(core: &Core, nas: &mut Nas, eap: &[u8], now: Instant) -> Option<NasReply> {
    let auth = random16();
    let packet = nas.access_request(eap, auth);
    let reply = deliver(core, &packet, now)?;
    Some(nas.read_reply(&reply, &auth).unwrap())
}

/// Starts a conversation: returns the NAS (holding the State) and the Start's EAP Identifier.
fn started(core: &Core, now: Instant) -> (Nas, u8) {
    let mut nas = Nas::new(common::SECRET.as_bytes());
    let identity = eap::packet::encode(EapCode::Response, 1, Some(EapType::Identity), b"x");
    let r = send(core, &mut nas, &identity, now).unwrap();
    assert_eq!(r.code, Code::AccessChallenge);
    let start = r.eap.unwrap();
    assert_eq!(start[5], 0x20, "EAP-TLS Start");
    (nas, start[1])
}

/// EAP-TLS flags of a peer fragment: L (length included) and M (more fragments).
fn flags(length_included: bool, more_fragments: bool) -> TlsFlags {
    TlsFlags {
        length_included,
        more_fragments,
        start: false,
    }
}

fn tls_response(id: u8, flags: TlsFlags, length: Option<u32>, data: &[u8]) -> Vec<u8> {
    eap::tls_response(
        id,
        &TlsFrame {
            flags,
            message_length: length,
            data,
        },
    )
}

fn assert_reject(r: Option<NasReply>, core: &Core, reason: &str) {
    let r = r.unwrap_or_else(|| panic!("{reason}: expected Access-Reject, got silence"));
    assert_eq!(r.code, Code::AccessReject, "{reason}");
    assert_eq!(
        r.eap.as_deref().map(|e| e[0]),
        Some(4),
        "{reason}: EAP-Failure"
    );
    assert!(
        core.stats.get(reason) >= 1,
        "{reason} not counted: {}",
        core.stats.report()
    );
}

/// A new conversation past a session limit gets no answer at all (its NAS retransmits and gets
/// in once room frees up), counted under `reason`: an Access-Reject would fail the supplicant.
fn assert_dropped(r: Option<NasReply>, core: &Core, reason: &str) {
    assert!(
        r.is_none(),
        "{reason}: expected silence, got {:?}",
        r.map(|r| r.code)
    );
    assert!(
        core.stats.get(reason) >= 1,
        "{reason} not counted: {}",
        core.stats.report()
    );
}

/// A whole authentication; None when the server answered a request with silence.
fn full_auth(core: &Core, pki: &Path, now: Instant) -> Option<Outcome> {
    let cfg = peer::client_config(
        &pki.join("ca.pem"),
        &pki.join("client-ecdsa.pem"),
        &pki.join("client-ecdsa.key"),
        &[&rustls::version::TLS13],
    )
    .unwrap();
    let sup = Supplicant::new(cfg, "radius.certradius.test", b"bob", 1400).unwrap();
    let mut conv = Conversation::new(sup, Nas::new(common::SECRET.as_bytes()));
    let mut packet = conv.start(random16());
    loop {
        let reply = deliver(core, &packet, now)?;
        match conv.on_reply(&reply, random16()).unwrap() {
            Next::Send(p) => packet = p,
            Next::Done(o) => return Some(*o),
        }
    }
}

#[test]
fn wrong_eap_identifier_is_discarded_and_the_conversation_goes_on() {
    let pki = common::pki("robust");
    let core = core(&pki, "");
    let now = Instant::now();
    let (mut nas, id) = started(&core, now);
    let hello = tls_response(
        id.wrapping_add(7),
        TlsFlags::default(),
        None,
        &[22, 3, 1, 0, 1, 1],
    );
    assert!(send(&core, &mut nas, &hello, now).is_none());
    assert_eq!(core.stats.get("eap_wrong_identifier"), 1);
    // The same conversation still answers a response with the right Identifier.
    let nak = eap::packet::encode(EapCode::Response, id, Some(EapType::Nak), &[0]);
    assert_reject(send(&core, &mut nas, &nak, now), &core, "eap_nak");
}

#[test]
fn unexpected_eap_code_is_discarded() {
    let pki = common::pki("robust");
    let core = core(&pki, "");
    let now = Instant::now();
    let (mut nas, id) = started(&core, now);
    let request = eap::packet::encode(EapCode::Request, id, Some(EapType::Tls), &[0]);
    assert!(send(&core, &mut nas, &request, now).is_none());
    assert!(send(&core, &mut nas, &eap::success(id), now).is_none());
    assert_eq!(core.stats.get("eap_unexpected_code"), 2);
}

#[test]
fn new_identity_in_the_middle_of_a_conversation_is_rejected() {
    let pki = common::pki("robust");
    let core = core(&pki, "");
    let now = Instant::now();
    let (mut nas, id) = started(&core, now);
    let identity = eap::packet::encode(EapCode::Response, id, Some(EapType::Identity), b"y");
    let state = nas.state().unwrap().to_vec();
    assert_reject(
        send(&core, &mut nas, &identity, now),
        &core,
        "eap_identity_in_conversation",
    );
    // The conversation is over: its State is now unknown.
    nas.set_state(Some(state));
    let again = tls_response(id.wrapping_add(1), TlsFlags::default(), None, &[1]);
    assert_reject(send(&core, &mut nas, &again, now), &core, "unknown_state");
}

#[test]
fn other_eap_methods_are_rejected() {
    let pki = common::pki("robust");
    let core = core(&pki, "");
    let now = Instant::now();
    let (mut nas, id) = started(&core, now);
    let peap = eap::packet::encode(EapCode::Response, id, Some(EapType::Unknown(25)), &[0]);
    assert_reject(
        send(&core, &mut nas, &peap, now),
        &core,
        "eap_unexpected_method",
    );
}

#[test]
fn length_field_that_disagrees_with_the_data_is_rejected() {
    let pki = common::pki("robust");
    let core = core(&pki, "");
    let now = Instant::now();
    // Less data than the L field announced.
    let (mut nas, id) = started(&core, now);
    let more = flags(true, true);
    let r = send(
        &core,
        &mut nas,
        &tls_response(id, more, Some(5000), &[22; 100]),
        now,
    )
    .unwrap();
    assert_eq!(r.code, Code::AccessChallenge, "fragment ACKed");
    let ack_id = r.eap.unwrap()[1];
    let last = tls_response(ack_id, TlsFlags::default(), None, &[22; 100]);
    assert_reject(send(&core, &mut nas, &last, now), &core, "eap_tls_fragment");
    // More data than announced.
    let (mut nas, id) = started(&core, now);
    let lying = flags(true, false);
    let before = core.stats.get("eap_tls_fragment");
    let r = send(
        &core,
        &mut nas,
        &tls_response(id, lying, Some(50), &[22; 100]),
        now,
    );
    assert_reject(r, &core, "eap_tls_fragment");
    assert_eq!(core.stats.get("eap_tls_fragment"), before + 1);
}

#[test]
fn too_many_fragments_and_oversized_messages_are_rejected() {
    let pki = common::pki("robust");
    let core = core(
        &pki,
        "[eap]\nmax_fragments = 4\nmax_tls_message_size = 2048\n",
    );
    let now = Instant::now();
    let (mut nas, mut id) = started(&core, now);
    let more = flags(false, true);
    let mut last = None;
    for _ in 0..5 {
        last = send(
            &core,
            &mut nas,
            &tls_response(id, more, None, &[22; 10]),
            now,
        );
        match &last {
            Some(r) if r.code == Code::AccessChallenge => id = r.eap.as_ref().unwrap()[1],
            _ => break,
        }
    }
    assert_reject(last, &core, "eap_tls_fragment");
    let (mut nas, id) = started(&core, now);
    let big = flags(true, true);
    let r = send(
        &core,
        &mut nas,
        &tls_response(id, big, Some(1 << 20), &[22; 10]),
        now,
    );
    assert_reject(r, &core, "eap_tls_fragment");
}

#[test]
fn state_never_issued_or_after_the_end_is_rejected() {
    let pki = common::pki("robust");
    let core = core(&pki, "");
    let now = Instant::now();
    let mut nas = Nas::new(common::SECRET.as_bytes());
    nas.set_state(Some(random16().to_vec()));
    let r = send(
        &core,
        &mut nas,
        &tls_response(3, TlsFlags::default(), None, &[1]),
        now,
    );
    assert_reject(r, &core, "unknown_state");
    // A State of the wrong length is never ours either.
    nas.set_state(Some(vec![1, 2, 3]));
    let r = send(
        &core,
        &mut nas,
        &tls_response(3, TlsFlags::default(), None, &[1]),
        now,
    );
    assert_reject(r, &core, "unknown_state");
    // EAP-TLS after a conversation ended with Accept.
    assert!(matches!(
        full_auth(&core, &pki, now),
        Some(Outcome::Accepted {
            keys_match: true,
            ..
        })
    ));
    assert_eq!(
        core.sessions_in_progress(),
        0,
        "a finished conversation leaves no session"
    );
}

#[test]
fn no_state_and_no_identity_is_rejected() {
    let pki = common::pki("robust");
    let core = core(&pki, "");
    let mut nas = Nas::new(common::SECRET.as_bytes());
    let r = send(
        &core,
        &mut nas,
        &tls_response(3, TlsFlags::default(), None, &[1]),
        Instant::now(),
    );
    assert_reject(r, &core, "eap_no_identity");
}

#[test]
fn session_table_is_bounded_and_recovers_after_expiry() {
    let pki = common::pki("robust");
    let core = core(&pki, "[eap]\nmax_sessions = 50\nsession_timeout_secs = 5\n");
    let t0 = Instant::now();
    for _ in 0..50 {
        started(&core, t0);
    }
    assert_eq!(core.sessions_in_progress(), 50);
    for _ in 0..200 {
        let mut nas = Nas::new(common::SECRET.as_bytes());
        let identity = eap::packet::encode(EapCode::Response, 1, Some(EapType::Identity), b"x");
        let r = send(&core, &mut nas, &identity, t0);
        assert_dropped(r, &core, "too_many_sessions");
    }
    assert_eq!(core.stats.get("too_many_sessions"), 200);
    assert_eq!(
        core.stats.get("access_rejects"),
        0,
        "nobody is rejected for it"
    );
    assert_eq!(core.sessions_in_progress(), 50, "the bound holds");
    assert!(
        full_auth(&core, &pki, t0).is_none(),
        "a new conversation at the bound gets no answer"
    );
    let later = t0 + Duration::from_secs(6);
    core.sweep(later);
    assert_eq!(core.sessions_in_progress(), 0);
    assert!(matches!(
        full_auth(&core, &pki, later),
        Some(Outcome::Accepted {
            keys_match: true,
            ..
        })
    ));
}

#[test]
fn per_client_session_bound() {
    let pki = common::pki("robust");
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), &pki, "c", "", "");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "secret = \"testing123\"",
        "secret = \"testing123\"\nmax_sessions = 10",
    );
    std::fs::write(&path, text).unwrap();
    let cfg = Config::load_with_env(Some(&path), false).unwrap();
    let tls = certradius::tls::server_config(&cfg.tls).unwrap();
    let core = Core::new(&cfg, tls, Arc::new(AllowVerified), Dictionary::embedded());
    let now = Instant::now();
    for _ in 0..10 {
        started(&core, now);
    }
    let mut nas = Nas::new(common::SECRET.as_bytes());
    let identity = eap::packet::encode(EapCode::Response, 1, Some(EapType::Identity), b"x");
    assert_dropped(
        send(&core, &mut nas, &identity, now),
        &core,
        "too_many_sessions_for_client",
    );
}

/// `eap.max_reassembly_bytes_total`: partial flights of all conversations together are bounded;
/// the conversation that would exceed the budget is refused and counted, and the budget comes
/// back when a conversation ends.
#[test]
fn reassembly_budget_across_conversations() {
    let pki = common::pki("robust");
    let core = core(
        &pki,
        "[eap]\nmax_tls_message_size = 2048\nmax_reassembly_bytes_total = 2048\n",
    );
    let now = Instant::now();
    let more = flags(true, true);
    let (mut a, id_a) = started(&core, now);
    let r = send(
        &core,
        &mut a,
        &tls_response(id_a, more, Some(2000), &[22; 1200]),
        now,
    );
    assert_eq!(r.map(|r| r.code), Some(Code::AccessChallenge));
    let (mut b, id_b) = started(&core, now);
    let r = send(
        &core,
        &mut b,
        &tls_response(id_b, more, Some(2000), &[22; 1200]),
        now,
    );
    assert_reject(r, &core, "reassembly_budget_exceeded");
    // Conversation a ends (its next fragment is malformed): its octets return to the budget.
    let r = send(
        &core,
        &mut a,
        &tls_response(id_a.wrapping_add(1), more, Some(1), &[22; 10]),
        now,
    );
    assert_reject(r, &core, "eap_tls_fragment");
    let (mut c, id_c) = started(&core, now);
    let r = send(
        &core,
        &mut c,
        &tls_response(id_c, more, Some(2000), &[22; 1200]),
        now,
    );
    assert_eq!(r.map(|r| r.code), Some(Code::AccessChallenge));
}
