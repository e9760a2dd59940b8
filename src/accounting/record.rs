//! An Accounting-Request as a record (RFC 2866 §5), and its JSON line.

use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use crate::radius::auth::{AuthError, verify_accounting_request, verify_message_authenticator};
use crate::radius::{Code, Packet, SharedSecret, attr};
use crate::reason::ReasonCode;

/// Acct-Status-Type (RFC 2866 §5.1, RFC 2869 §5.4 for Interim-Update).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusType {
    Start,
    Stop,
    InterimUpdate,
    AccountingOn,
    AccountingOff,
    Other(u32),
}

impl StatusType {
    pub fn from_u32(v: u32) -> Self {
        match v {
            1 => Self::Start,
            2 => Self::Stop,
            3 => Self::InterimUpdate,
            7 => Self::AccountingOn,
            8 => Self::AccountingOff,
            n => Self::Other(n),
        }
    }

    /// The dictionary's value name.
    pub fn name(self) -> String {
        match self {
            Self::Start => "Start".into(),
            Self::Stop => "Stop".into(),
            Self::InterimUpdate => "Interim-Update".into(),
            Self::AccountingOn => "Accounting-On".into(),
            Self::AccountingOff => "Accounting-Off".into(),
            Self::Other(n) => n.to_string(),
        }
    }
}

/// Acct-Terminate-Cause value names (RFC 2866 §5.10).
pub(crate) fn terminate_cause_name(v: u32) -> String {
    const NAMES: [&str; 18] = [
        "User-Request",
        "Lost-Carrier",
        "Lost-Service",
        "Idle-Timeout",
        "Session-Timeout",
        "Admin-Reset",
        "Admin-Reboot",
        "Port-Error",
        "NAS-Error",
        "NAS-Request",
        "NAS-Reboot",
        "Port-Unneeded",
        "Port-Preempted",
        "Port-Suspended",
        "Service-Unavailable",
        "Callback",
        "User-Error",
        "Host-Request",
    ];
    v.checked_sub(1)
        .and_then(|i| NAMES.get(i as usize))
        .map_or_else(|| v.to_string(), |n| (*n).to_string())
}

/// One Accounting-Request, decoded. Peer-supplied strings are kept as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcctRecord {
    pub nas_name: String,
    pub nas_addr: IpAddr,
    pub status: StatusType,
    pub acct_session_id: Vec<u8>,
    pub user_name: Option<Vec<u8>>,
    pub calling_station_id: Option<Vec<u8>>,
    pub called_station_id: Option<Vec<u8>>,
    pub nas_identifier: Option<Vec<u8>>,
    pub framed_ip: Option<Ipv4Addr>,
    pub input_octets: Option<u64>,
    pub output_octets: Option<u64>,
    pub input_packets: Option<u32>,
    pub output_packets: Option<u32>,
    pub session_time: Option<u32>,
    pub terminate_cause: Option<u32>,
    pub event_timestamp: Option<u32>,
    pub delay_time: Option<u32>,
    pub interim_interval: Option<u32>,
    /// Class attributes echoed from the Access-Accept (RFC 2865 §5.25).
    pub class: Vec<Vec<u8>>,
}

fn u32_of(p: &Packet<'_>, typ: u8) -> Option<u32> {
    p.first(typ)
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
        .map(u32::from_be_bytes)
}

/// An octet counter with its Gigawords (RFC 2869 §5.1, §5.2: the times the counter wrapped 2^32).
fn octets(p: &Packet<'_>, low: u8, high: u8) -> Option<u64> {
    let lo = u32_of(p, low)?;
    let hi = u32_of(p, high).unwrap_or(0);
    Some((u64::from(hi) << 32) | u64::from(lo))
}

/// Checks and decodes an Accounting-Request from a configured NAS. `Err` is a silent discard.
pub fn decode(
    packet: &Packet<'_>,
    secret: &SharedSecret,
    nas_name: &str,
    nas_addr: IpAddr,
) -> Result<AcctRecord, (ReasonCode, String)> {
    if packet.code() != Code::AccountingRequest {
        return Err((
            ReasonCode::UnsupportedCode,
            format!("{} on the accounting port", packet.code()),
        ));
    }
    verify_accounting_request(packet, secret)
        .map_err(|e| (ReasonCode::BadAccountingAuthenticator, e.to_string()))?;
    if packet.first(attr::MESSAGE_AUTHENTICATOR).is_some() {
        verify_message_authenticator(packet, secret, Some(&[0; 16])).map_err(|e: AuthError| {
            (
                ReasonCode::BadMessageAuthenticator,
                format!("{e} (wrong shared secret?)"),
            )
        })?;
    }
    let Some(status) = u32_of(packet, attr::ACCT_STATUS_TYPE) else {
        return Err((
            ReasonCode::MalformedPacket,
            "Accounting-Request without a 4-octet Acct-Status-Type (RFC 2866 §5.1)".into(),
        ));
    };
    let owned = |typ| packet.first(typ).map(<[u8]>::to_vec);
    Ok(AcctRecord {
        nas_name: nas_name.to_string(),
        nas_addr,
        status: StatusType::from_u32(status),
        acct_session_id: owned(attr::ACCT_SESSION_ID).unwrap_or_default(),
        user_name: owned(attr::USER_NAME),
        calling_station_id: owned(attr::CALLING_STATION_ID),
        called_station_id: owned(attr::CALLED_STATION_ID),
        nas_identifier: owned(attr::NAS_IDENTIFIER),
        framed_ip: packet
            .first(attr::FRAMED_IP_ADDRESS)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(Ipv4Addr::from),
        input_octets: octets(packet, attr::ACCT_INPUT_OCTETS, attr::ACCT_INPUT_GIGAWORDS),
        output_octets: octets(
            packet,
            attr::ACCT_OUTPUT_OCTETS,
            attr::ACCT_OUTPUT_GIGAWORDS,
        ),
        input_packets: u32_of(packet, attr::ACCT_INPUT_PACKETS),
        output_packets: u32_of(packet, attr::ACCT_OUTPUT_PACKETS),
        session_time: u32_of(packet, attr::ACCT_SESSION_TIME),
        terminate_cause: u32_of(packet, attr::ACCT_TERMINATE_CAUSE),
        event_timestamp: u32_of(packet, attr::EVENT_TIMESTAMP),
        delay_time: u32_of(packet, attr::ACCT_DELAY_TIME),
        interim_interval: u32_of(packet, attr::ACCT_INTERIM_INTERVAL),
        class: packet
            .attributes()
            .filter(|a| a.typ == attr::CLASS)
            .map(|a| a.value.to_vec())
            .collect(),
    })
}

use crate::escape::json_text as text;

#[derive(Serialize)]
struct Line<'a> {
    time: &'a str,
    nas: String,
    nas_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    nas_identifier: Option<String>,
    acct_status_type: String,
    acct_session_id: String,
    acct_unique_id: String,
    user_name: Option<String>,
    calling_station_id: Option<String>,
    called_station_id: Option<String>,
    framed_ip: Option<String>,
    acct_input_octets: Option<u64>,
    acct_output_octets: Option<u64>,
    acct_input_packets: Option<u32>,
    acct_output_packets: Option<u32>,
    acct_session_time: Option<u32>,
    acct_terminate_cause: Option<String>,
    event_timestamp: Option<u32>,
    acct_delay_time: Option<u32>,
    acct_interim_interval: Option<u32>,
    class: Vec<String>,
    certificate_serial: Option<&'a str>,
    certificate_issuer: Option<&'a str>,
}

impl AcctRecord {
    /// A stable id for the session across Start, Interim-Update and Stop from the same NAS:
    /// SHA-256 (not MD5) of the NAS address, Acct-Session-Id and Calling-Station-Id, hex, 32
    /// characters — the role FreeRADIUS's `acctuniqueid` plays.
    pub fn unique_id(&self) -> String {
        let mut ctx = crate::crypto::digest::Context::new(&crate::crypto::digest::SHA256);
        ctx.update(self.nas_addr.to_string().as_bytes());
        ctx.update(&[0]);
        ctx.update(&self.acct_session_id);
        ctx.update(&[0]);
        ctx.update(self.calling_station_id.as_deref().unwrap_or_default());
        let digest = ctx.finish();
        crate::hex::lower(digest.as_ref().get(..16).unwrap_or(digest.as_ref()))
    }

    /// The record as one JSON object (no newline). `time` is RFC 3339 UTC; `certificate` the
    /// (serial, issuer) of the authentication this session is linked to, when known.
    pub fn to_json(&self, time: &str, certificate: Option<(&str, &str)>) -> String {
        let line = Line {
            time,
            nas: self.nas_addr.to_string(),
            nas_name: &self.nas_name,
            nas_identifier: self.nas_identifier.as_deref().map(text),
            acct_status_type: self.status.name(),
            acct_session_id: text(&self.acct_session_id),
            acct_unique_id: self.unique_id(),
            user_name: self.user_name.as_deref().map(text),
            calling_station_id: self.calling_station_id.as_deref().map(text),
            called_station_id: self.called_station_id.as_deref().map(text),
            framed_ip: self.framed_ip.map(|ip| ip.to_string()),
            acct_input_octets: self.input_octets,
            acct_output_octets: self.output_octets,
            acct_input_packets: self.input_packets,
            acct_output_packets: self.output_packets,
            acct_session_time: self.session_time,
            acct_terminate_cause: self.terminate_cause.map(terminate_cause_name),
            event_timestamp: self.event_timestamp,
            acct_delay_time: self.delay_time,
            acct_interim_interval: self.interim_interval,
            class: self.class.iter().map(|c| crate::hex::lower(c)).collect(),
            certificate_serial: certificate.map(|c| c.0),
            certificate_issuer: certificate.map(|c| c.1),
        };
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string(&line).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::PacketBuilder;

    /// Builds an Accounting-Request the way a NAS does (RFC 2866 §3).
    pub(crate) fn request(secret: &[u8], attrs: &[(u8, &[u8])]) -> Vec<u8> {
        let mut b = PacketBuilder::new(Code::AccountingRequest, 7);
        for (t, v) in attrs {
            b.attr(*t, v).unwrap();
        }
        // Encode with a zero authenticator, then put the hash in place (the builder's
        // Message-Authenticator is computed over the zeroed field, as RFC 5080 expects).
        let mut p = b
            .encode_request(&SharedSecret::new(secret), [0; 16])
            .unwrap();
        let mut md5 = <md5::Md5 as md5::Digest>::new();
        md5::Digest::update(&mut md5, &p);
        md5::Digest::update(&mut md5, secret);
        let hash: [u8; 16] = md5::Digest::finalize(md5).into();
        p[4..20].copy_from_slice(&hash);
        p
    }

    #[test]
    fn start_stop_decode_with_gigawords_and_names() {
        let raw = request(
            b"s3cret",
            &[
                (attr::ACCT_STATUS_TYPE, &2u32.to_be_bytes()),
                (attr::ACCT_SESSION_ID, b"abc-1"),
                (attr::USER_NAME, b"alice\xff"),
                (attr::CALLING_STATION_ID, b"02-00-00-00-00-01"),
                (attr::FRAMED_IP_ADDRESS, &[10, 0, 0, 7]),
                (attr::ACCT_INPUT_OCTETS, &5u32.to_be_bytes()),
                (attr::ACCT_INPUT_GIGAWORDS, &1u32.to_be_bytes()),
                (attr::ACCT_TERMINATE_CAUSE, &1u32.to_be_bytes()),
            ],
        );
        let p = Packet::decode(&raw).unwrap();
        let r = decode(
            &p,
            &SharedSecret::new(b"s3cret"),
            "ap1",
            "127.0.0.1".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(r.status, StatusType::Stop);
        assert_eq!(r.input_octets, Some((1 << 32) + 5));
        let j: serde_json::Value =
            serde_json::from_str(&r.to_json("2026-01-01T00:00:00Z", Some(("01ab", "CN=ca"))))
                .unwrap();
        assert_eq!(j["acct_status_type"], "Stop");
        assert_eq!(j["acct_terminate_cause"], "User-Request");
        assert_eq!(j["framed_ip"], "10.0.0.7");
        assert_eq!(j["user_name"], "alice\\xFF");
        assert_eq!(j["certificate_serial"], "01ab");
        assert_eq!(r.unique_id().len(), 32);
    }

    #[test]
    fn wrong_secret_and_missing_status_are_refused() {
        let raw = request(b"s3cret", &[(attr::ACCT_STATUS_TYPE, &1u32.to_be_bytes())]);
        let p = Packet::decode(&raw).unwrap();
        let e = decode(
            &p,
            &SharedSecret::new(b"other"),
            "ap1",
            "::1".parse().unwrap(),
        );
        assert_eq!(e.unwrap_err().0, ReasonCode::BadAccountingAuthenticator);
        let raw = request(b"s3cret", &[(attr::ACCT_SESSION_ID, b"x")]);
        let p = Packet::decode(&raw).unwrap();
        let e = decode(
            &p,
            &SharedSecret::new(b"s3cret"),
            "ap1",
            "::1".parse().unwrap(),
        );
        assert_eq!(e.unwrap_err().0, ReasonCode::MalformedPacket);
    }
}
