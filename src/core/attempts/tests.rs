use std::net::Ipv4Addr;
use std::time::Duration;

use super::*;

fn event<'a>(
    outcome: &'static str,
    reason: Option<&'static str>,
    identity: &'a [u8],
    calling: Option<&'a [u8]>,
    detail: &'a str,
) -> AuthEvent<'a> {
    AuthEvent {
        outcome,
        method: "eap-tls",
        reason,
        detail,
        identity,
        user_name: Some(identity),
        nas_name: "ap-lobby",
        nas_addr: Ipv4Addr::new(10, 0, 0, 7).into(),
        calling_station_id: calling,
        called_station_id: None,
        tls_version: "TLSv1.3",
        cipher_suite: "",
        serial: None,
        subject: None,
        ca_chain: &[],
        issuer: None,
        resumed: false,
        round_trips: 5,
        duration: Duration::ZERO,
        rule: (outcome == "accept").then_some("staff"),
        granted: &[],
        class: None,
        client_hello: None,
        signature_scheme: None,
        group: None,
        nas_port_type: None,
        framed_mtu: None,
        directory_groups: None,
        directory_facts: None,
        peer: None,
    }
}

#[test]
fn found_by_mac_in_any_spelling_and_by_identity() {
    let a = Attempts::default();
    let mac = Some(&b"02-00-00-00-00-01"[..]);
    a.record(
        &event("reject", Some("cert_expired"), b"anne", mac, "expired"),
        100,
    );
    a.record(&event("accept", None, b"anne", mac, ""), 160);
    for spelling in ["02:00:00:00:00:01", "0200.0000.0001", "020000000001"] {
        let w = a.why(&Key::parse(spelling));
        assert_eq!(w.mac.as_deref(), Some("02-00-00-00-00-01"));
        assert_eq!(w.identity.as_deref(), Some("anne"));
        assert_eq!(w.attempts.len(), 2, "{spelling}");
        let [first, second] = &w.attempts[..] else {
            unreachable!()
        };
        assert_eq!(first.unix_time, 100);
        assert_eq!(first.time, "1970-01-01T00:01:40.000Z");
        assert_eq!(first.outcome, "reject");
        assert_eq!(first.reason.as_deref(), Some("cert_expired"));
        assert_eq!(first.detail, "expired");
        assert_eq!(first.nas, "ap-lobby");
        assert_eq!(first.nas_address, "10.0.0.7");
        assert_eq!(first.tls_version, "TLSv1.3");
        assert_eq!(first.round_trips, 5);
        assert_eq!(second.rule.as_deref(), Some("staff"));
    }
    let by_identity = a.why(&Key::parse("anne"));
    assert_eq!(by_identity.attempts.len(), 2);
    assert_eq!(by_identity.mac.as_deref(), Some("02-00-00-00-00-01"));
    assert!(a.why(&Key::parse("bob")).attempts.is_empty());
}

#[test]
fn without_a_mac_an_identity_is_the_key() {
    let a = Attempts::default();
    a.record(
        &event("reject", Some("cert_untrusted"), b"printer-3", None, "x"),
        5,
    );
    let w = a.why(&Key::parse("printer-3"));
    assert_eq!(w.attempts.len(), 1);
    assert_eq!(w.mac, None);
    assert_eq!(a.len(), 1);
}

#[test]
fn a_mab_user_name_is_not_a_second_key() {
    let a = Attempts::default();
    let mut e = event(
        "accept",
        None,
        b"020000000009",
        Some(b"02:00:00:00:00:09"),
        "",
    );
    e.method = "mab";
    e.tls_version = "-";
    a.record(&e, 7);
    assert_eq!(a.len(), 1);
    let w = a.why(&Key::parse("02-00-00-00-00-09"));
    assert_eq!(w.attempts[0].method, "mab");
    assert_eq!(w.attempts[0].tls_version, "-");
}

#[test]
fn eight_attempts_per_supplicant_the_oldest_dropped() {
    let a = Attempts::default();
    let mac = Some(&b"02:00:00:00:00:02"[..]);
    for t in 0..20 {
        a.record(&event("reject", Some("peer_alert"), b"x", mac, "same"), t);
    }
    let w = a.why(&Key::parse("020000000002"));
    let times: Vec<u64> = w.attempts.iter().map(|v| v.unix_time).collect();
    assert_eq!(times, (12..20).collect::<Vec<_>>());
}

#[test]
fn details_are_cut_and_shared() {
    let a = Attempts::default();
    let long = "é".repeat(200);
    let mac = Some(&b"02:00:00:00:00:03"[..]);
    a.record(&event("reject", Some("peer_alert"), b"x", mac, &long), 1);
    a.record(&event("reject", Some("peer_alert"), b"x", mac, &long), 2);
    let w = a.why(&Key::parse("020000000003"));
    assert!(w.attempts[0].detail.len() <= MAX_DETAIL);
    assert!(w.attempts[0].detail.starts_with('é'));
    let inner = lock(&a.inner);
    let ring = &inner.devices[&Mac([2, 0, 0, 0, 0, 3])].ring;
    assert!(Arc::ptr_eq(&ring[0].detail, &ring[1].detail));
}

#[test]
fn keys_are_bounded_least_recently_used_first() {
    let a = Attempts::new(80);
    for i in 0..1000u32 {
        let mac = format!("02:00:00:{:02x}:{:02x}:00", i >> 8, i & 0xff);
        let id = format!("user{i}");
        a.record(
            &event("accept", None, id.as_bytes(), Some(mac.as_bytes()), ""),
            u64::from(i),
        );
        assert!(a.len() <= 80);
    }
    // The most recent ones are kept, the first ones are gone.
    assert_eq!(a.why(&Key::parse("user999")).attempts.len(), 1);
    assert!(a.why(&Key::parse("user0")).attempts.is_empty());
}

#[test]
fn names_past_the_cap_are_unknown() {
    let mut n: Interner<Box<str>> = Interner::default();
    for i in 0..MAX_NAMES {
        assert_ne!(n.intern(Some(format!("rule{i}").into())), TOO_MANY);
    }
    let over = n.intern(Some("one-too-many".into()));
    assert_eq!(n.get(over), Some(Err(())));
    let again = n.intern(Some("rule5".into()));
    assert_eq!(n.get(again), Some(Ok(&"rule5".into())));
    assert_eq!(n.intern(None), NO_NAME);
    assert_eq!(n.get(NO_NAME), None);
}

#[test]
fn an_attempt_is_small() {
    assert!(std::mem::size_of::<Attempt>() <= 32);
}
