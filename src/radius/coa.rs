//! Disconnect-Request and its answers (RFC 5176), sans IO.
//!
//! - RFC 5176 §3: Disconnect-Request is code 40, Disconnect-ACK 41, Disconnect-NAK 42; the
//!   session is identified by User-Name, Acct-Session-Id, Calling-Station-Id and NAS-IP-Address.
//! - RFC 5176 §2.3: the Request Authenticator is `MD5(Code + Identifier + Length + 16 zero
//!   octets + Attributes + Secret)`, as for an Accounting-Request (RFC 2866 §3).
//! - RFC 5176 §3.5 / RFC 3579 §3.2: Message-Authenticator (first attribute) is computed over the
//!   packet with the Authenticator field zeroed, before the Request Authenticator is filled in.
//! - RFC 5176 §2.3: the answer's Response Authenticator is
//!   `MD5(Code + Identifier + Length + Request Authenticator + Attributes + Secret)`; a
//!   Message-Authenticator in the answer is computed with the Request Authenticator in that field.
//! - RFC 5176 §3.5: Error-Cause (101) in a NAK says why.
//! - RFC 2869 §5.3: Event-Timestamp, seconds since the Unix epoch.

use std::net::Ipv4Addr;

use super::auth::{
    response_authenticator, verify_message_authenticator, verify_response_authenticator,
};
use super::{Code, Packet, PacketBuilder, SharedSecret, attr};

pub const DISCONNECT_REQUEST: u8 = 40;
pub const DISCONNECT_ACK: u8 = 41;
pub const DISCONNECT_NAK: u8 = 42;
/// Error-Cause (RFC 5176 §3.5).
pub const ERROR_CAUSE: u8 = 101;

/// What identifies the session to end.
#[derive(Debug, Clone, Default)]
pub struct Target<'a> {
    pub user_name: Option<&'a [u8]>,
    pub acct_session_id: &'a [u8],
    pub calling_station_id: Option<&'a [u8]>,
    pub nas_ip_address: Option<Ipv4Addr>,
    /// Event-Timestamp: seconds since the Unix epoch.
    pub event_timestamp: u32,
}

fn cut(v: &[u8]) -> &[u8] {
    v.get(..attr::MAX_ATTR_VALUE_LEN).unwrap_or(v)
}

/// Encodes a Disconnect-Request signed with the NAS's shared secret.
pub fn disconnect_request(
    identifier: u8,
    target: &Target<'_>,
    secret: &SharedSecret,
) -> Result<Vec<u8>, super::EncodeError> {
    let mut b = PacketBuilder::new(Code::from(DISCONNECT_REQUEST), identifier);
    if let Some(u) = target.user_name {
        b.attr(attr::USER_NAME, cut(u))?;
    }
    b.attr(attr::ACCT_SESSION_ID, cut(target.acct_session_id))?;
    if let Some(c) = target.calling_station_id {
        b.attr(attr::CALLING_STATION_ID, cut(c))?;
    }
    if let Some(ip) = target.nas_ip_address {
        b.attr(attr::NAS_IP_ADDRESS, &ip.octets())?;
    }
    b.attr(attr::EVENT_TIMESTAMP, &target.event_timestamp.to_be_bytes())?;
    // Message-Authenticator over a zeroed Authenticator field, then the Request Authenticator.
    let mut bytes = b.encode_request(secret, [0; 16])?;
    let header = bytes.get(..4).unwrap_or_default().to_vec();
    let area = bytes.get(attr::HEADER_LEN..).unwrap_or_default().to_vec();
    let authenticator = response_authenticator(&header, &[0; 16], &[&area], secret);
    if let Some(field) = bytes.get_mut(4..attr::HEADER_LEN) {
        field.copy_from_slice(&authenticator);
    }
    Ok(bytes)
}

/// The NAS's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Ack,
    /// With its Error-Cause, when given (RFC 5176 §3.5; 503 "Session Context Not Found", ...).
    Nak(Option<u32>),
}

/// Why a datagram is not the answer to our request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("malformed packet: {0}")]
    Malformed(String),
    #[error("code {0} is not Disconnect-ACK or Disconnect-NAK")]
    UnexpectedCode(u8),
    #[error("identifier {0} does not match the request")]
    WrongIdentifier(u8),
    #[error("bad Response Authenticator (wrong shared secret?)")]
    BadAuthenticator,
    #[error("bad Message-Authenticator")]
    BadMessageAuthenticator,
}

/// Checks a datagram as the answer to `request` (the bytes we sent) and says what it says.
pub fn verify_answer(
    datagram: &[u8],
    request: &[u8],
    secret: &SharedSecret,
) -> Result<Answer, AnswerError> {
    let sent = Packet::decode(request).map_err(|e| AnswerError::Malformed(e.to_string()))?;
    let p = Packet::decode(datagram).map_err(|e| AnswerError::Malformed(e.to_string()))?;
    let code = u8::from(p.code());
    if code != DISCONNECT_ACK && code != DISCONNECT_NAK {
        return Err(AnswerError::UnexpectedCode(code));
    }
    if p.identifier() != sent.identifier() {
        return Err(AnswerError::WrongIdentifier(p.identifier()));
    }
    verify_response_authenticator(&p, secret, sent.authenticator())
        .map_err(|_| AnswerError::BadAuthenticator)?;
    if p.count(attr::MESSAGE_AUTHENTICATOR) > 0 {
        verify_message_authenticator(&p, secret, Some(sent.authenticator()))
            .map_err(|_| AnswerError::BadMessageAuthenticator)?;
    }
    if code == DISCONNECT_ACK {
        return Ok(Answer::Ack);
    }
    let cause = p
        .first(ERROR_CAUSE)
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
        .map(u32::from_be_bytes);
    Ok(Answer::Nak(cause))
}

/// What a NAS sends back, for tests and the test NAS: an ACK or a NAK with an Error-Cause,
/// signed as RFC 5176 §2.3 says.
pub fn answer(request: &[u8], secret: &SharedSecret, nak: Option<u32>) -> Option<Vec<u8>> {
    let sent = Packet::decode(request).ok()?;
    let code = if nak.is_some() {
        DISCONNECT_NAK
    } else {
        DISCONNECT_ACK
    };
    let mut b = PacketBuilder::new(Code::from(code), sent.identifier());
    if let Some(c) = nak {
        b.attr(ERROR_CAUSE, &c.to_be_bytes()).ok()?;
    }
    b.encode_response(secret, sent.authenticator()).ok()
}

/// Checks a Disconnect-Request as a NAS would: Request Authenticator, then Message-Authenticator
/// over the zeroed Authenticator field.
pub fn verify_request(datagram: &[u8], secret: &SharedSecret) -> Result<(), AnswerError> {
    let p = Packet::decode(datagram).map_err(|e| AnswerError::Malformed(e.to_string()))?;
    let code = u8::from(p.code());
    if code != DISCONNECT_REQUEST {
        return Err(AnswerError::UnexpectedCode(code));
    }
    super::auth::verify_accounting_request(&p, secret)
        .map_err(|_| AnswerError::BadAuthenticator)?;
    verify_message_authenticator(&p, secret, Some(&[0; 16]))
        .map_err(|_| AnswerError::BadMessageAuthenticator)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SharedSecret {
        SharedSecret::new(b"nas-secret".to_vec())
    }

    fn target() -> Target<'static> {
        Target {
            user_name: Some(b"alice"),
            acct_session_id: b"sess-1",
            calling_station_id: Some(b"02-00-00-00-00-01"),
            nas_ip_address: Some(Ipv4Addr::LOCALHOST),
            event_timestamp: 1_700_000_000,
        }
    }

    #[test]
    fn request_is_signed_and_carries_the_session() {
        let req = disconnect_request(7, &target(), &secret()).unwrap();
        verify_request(&req, &secret()).unwrap();
        assert_eq!(
            verify_request(&req, &SharedSecret::new(b"other".to_vec())),
            Err(AnswerError::BadAuthenticator)
        );
        let p = Packet::decode(&req).unwrap();
        assert_eq!(u8::from(p.code()), 40);
        assert_eq!(p.identifier(), 7);
        assert_eq!(
            p.attributes().next().unwrap().typ,
            attr::MESSAGE_AUTHENTICATOR
        );
        assert_eq!(p.first(attr::ACCT_SESSION_ID), Some(&b"sess-1"[..]));
        assert_eq!(p.first(attr::USER_NAME), Some(&b"alice"[..]));
        assert_eq!(p.first(attr::NAS_IP_ADDRESS), Some(&[127, 0, 0, 1][..]));
        assert_eq!(
            p.first(attr::EVENT_TIMESTAMP),
            Some(&1_700_000_000u32.to_be_bytes()[..])
        );
        // Tampering breaks the Request Authenticator.
        let mut bad = req.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(verify_request(&bad, &secret()).is_err());
    }

    #[test]
    fn ack_nak_and_forged_answers() {
        let req = disconnect_request(9, &target(), &secret()).unwrap();
        let ack = answer(&req, &secret(), None).unwrap();
        assert_eq!(verify_answer(&ack, &req, &secret()), Ok(Answer::Ack));
        let nak = answer(&req, &secret(), Some(503)).unwrap();
        assert_eq!(
            verify_answer(&nak, &req, &secret()),
            Ok(Answer::Nak(Some(503)))
        );
        let forged = answer(&req, &SharedSecret::new(b"x".to_vec()), None).unwrap();
        assert_eq!(
            verify_answer(&forged, &req, &secret()),
            Err(AnswerError::BadAuthenticator)
        );
        let other = disconnect_request(10, &target(), &secret()).unwrap();
        let ack10 = answer(&other, &secret(), None).unwrap();
        assert_eq!(
            verify_answer(&ack10, &req, &secret()),
            Err(AnswerError::WrongIdentifier(10))
        );
        assert!(verify_answer(&req, &req, &secret()).is_err());
        assert!(verify_answer(&[1, 2, 3], &req, &secret()).is_err());
    }
}
