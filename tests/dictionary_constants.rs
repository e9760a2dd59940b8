//! The protocol-critical attribute numbers in `src/radius/attr.rs` agree with the shipped
//! FreeRADIUS-format dictionaries (both the files on disk and the copy compiled in).
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;

use certradius::radius::attr;
use certradius::radius::dictionary::Dictionary;

fn check(d: &Dictionary) {
    let standard = [
        ("User-Name", attr::USER_NAME),
        ("Framed-IP-Address", attr::FRAMED_IP_ADDRESS),
        ("Acct-Status-Type", attr::ACCT_STATUS_TYPE),
        ("Acct-Delay-Time", attr::ACCT_DELAY_TIME),
        ("Acct-Input-Octets", attr::ACCT_INPUT_OCTETS),
        ("Acct-Output-Octets", attr::ACCT_OUTPUT_OCTETS),
        ("Acct-Session-Id", attr::ACCT_SESSION_ID),
        ("Acct-Session-Time", attr::ACCT_SESSION_TIME),
        ("Acct-Input-Packets", attr::ACCT_INPUT_PACKETS),
        ("Acct-Output-Packets", attr::ACCT_OUTPUT_PACKETS),
        ("Acct-Terminate-Cause", attr::ACCT_TERMINATE_CAUSE),
        ("Acct-Multi-Session-Id", attr::ACCT_MULTI_SESSION_ID),
        ("Acct-Input-Gigawords", attr::ACCT_INPUT_GIGAWORDS),
        ("Acct-Output-Gigawords", attr::ACCT_OUTPUT_GIGAWORDS),
        ("Event-Timestamp", attr::EVENT_TIMESTAMP),
        ("Acct-Interim-Interval", attr::ACCT_INTERIM_INTERVAL),
        ("User-Password", attr::USER_PASSWORD),
        ("CHAP-Password", attr::CHAP_PASSWORD),
        ("CHAP-Challenge", attr::CHAP_CHALLENGE),
        ("NAS-IP-Address", attr::NAS_IP_ADDRESS),
        ("NAS-Port", attr::NAS_PORT),
        ("Service-Type", attr::SERVICE_TYPE),
        ("Filter-Id", attr::FILTER_ID),
        ("Framed-MTU", attr::FRAMED_MTU),
        ("Reply-Message", attr::REPLY_MESSAGE),
        ("State", attr::STATE),
        ("Class", attr::CLASS),
        ("Vendor-Specific", attr::VENDOR_SPECIFIC),
        ("Session-Timeout", attr::SESSION_TIMEOUT),
        ("Called-Station-Id", attr::CALLED_STATION_ID),
        ("Calling-Station-Id", attr::CALLING_STATION_ID),
        ("NAS-Identifier", attr::NAS_IDENTIFIER),
        ("Proxy-State", attr::PROXY_STATE),
        ("NAS-Port-Type", attr::NAS_PORT_TYPE),
        ("Tunnel-Type", attr::TUNNEL_TYPE),
        ("Tunnel-Medium-Type", attr::TUNNEL_MEDIUM_TYPE),
        ("Connect-Info", attr::CONNECT_INFO),
        ("EAP-Message", attr::EAP_MESSAGE),
        ("Message-Authenticator", attr::MESSAGE_AUTHENTICATOR),
        ("Tunnel-Private-Group-Id", attr::TUNNEL_PRIVATE_GROUP_ID),
        ("NAS-IPv6-Address", attr::NAS_IPV6_ADDRESS),
    ];
    for (name, number) in standard {
        let def = d
            .attribute(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(def.number, u32::from(number), "{name}");
        assert_eq!(def.vendor, None, "{name}");
    }
    assert_eq!(d.vendor("Microsoft"), Some(attr::VENDOR_MICROSOFT));
    for (name, number) in [
        ("MS-MPPE-Send-Key", attr::MS_MPPE_SEND_KEY),
        ("MS-MPPE-Recv-Key", attr::MS_MPPE_RECV_KEY),
    ] {
        let def = d.attribute(name).unwrap();
        assert_eq!(def.number, u32::from(number), "{name}");
        assert_eq!(def.vendor, Some(attr::VENDOR_MICROSOFT), "{name}");
    }
}

#[test]
fn constants_match_the_dictionary_files_on_disk() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("dictionaries/dictionary");
    check(&Dictionary::load(&path).unwrap());
}

#[test]
fn constants_match_the_embedded_dictionary() {
    check(&Dictionary::try_embedded().unwrap());
}
