//! Packet authentication: the Message-Authenticator attribute (RFC 3579 §3.2,
//! RFC 2869 §5.14) and the Response Authenticator (RFC 2865 §3); and the two password forms of
//! an Access-Request without EAP: the hidden User-Password (RFC 2865 §5.2) and CHAP-Password
//! (RFC 2865 §5.3, RFC 1994 §4.1), which MAC Authentication Bypass requests carry.
//!
//! Both are checked in constant time so that a forger learns nothing from how
//! long a rejection takes.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use thiserror::Error;

use super::attr::{HEADER_LEN, MESSAGE_AUTHENTICATOR, MESSAGE_AUTHENTICATOR_LEN};
use super::packet::Packet;
use super::secret::SharedSecret;

/// HMAC-MD5 as used for Message-Authenticator.
pub(crate) type HmacMd5 = Hmac<Md5>;

/// Why a packet failed authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AuthError {
    /// The packet has no Message-Authenticator attribute.
    #[error("Message-Authenticator attribute is missing")]
    Missing,
    /// The Message-Authenticator value is not 16 octets.
    #[error("Message-Authenticator value is not 16 octets")]
    WrongLength,
    /// The Message-Authenticator does not match (wrong shared secret, tampered
    /// packet, or more than one Message-Authenticator attribute).
    #[error("Message-Authenticator does not match (wrong shared secret or altered packet)")]
    Mismatch,
    /// The Response Authenticator does not match the request it answers.
    #[error("Response Authenticator does not match (wrong shared secret or altered packet)")]
    BadResponseAuthenticator,
    /// An Accounting-Request's Request Authenticator is not the hash of its contents.
    #[error(
        "Accounting-Request Authenticator does not match (wrong shared secret or altered packet)"
    )]
    BadRequestAuthenticator,
}

/// Verifies the Message-Authenticator attribute (RFC 3579 §3.2): HMAC-MD5 keyed
/// with the shared secret over the packet with the attribute's value zeroed.
///
/// For requests (Access-Request, Status-Server) pass `None`: the packet's own
/// Authenticator field is used. For responses (Access-Accept/-Reject/-Challenge)
/// pass `Some(request authenticator)`: RFC 3579 §3.2 computes the HMAC with the
/// Request Authenticator of the request being answered in that field.
///
/// RFC 3579 §3.2 allows at most one Message-Authenticator per packet; a packet
/// with several is rejected as [`AuthError::Mismatch`].
pub fn verify_message_authenticator(
    packet: &Packet<'_>,
    secret: &SharedSecret,
    request_authenticator: Option<&[u8; 16]>,
) -> Result<(), AuthError> {
    let mut found = packet
        .attributes()
        .filter(|a| a.typ == MESSAGE_AUTHENTICATOR);
    let received = found.next().ok_or(AuthError::Missing)?.value;
    if found.next().is_some() {
        return Err(AuthError::Mismatch);
    }
    if received.len() != MESSAGE_AUTHENTICATOR_LEN {
        return Err(AuthError::WrongLength);
    }

    let (header, _) = packet
        .raw()
        .split_first_chunk::<4>()
        .ok_or(AuthError::Mismatch)?;
    let authenticator = request_authenticator.unwrap_or(packet.authenticator());
    let mut mac = secret.hmac_md5();
    mac.update(header);
    mac.update(authenticator);
    for a in packet.attributes() {
        // The value length always fits: the packet decoder took it from a u8.
        let length = u8::try_from(a.value.len().saturating_add(2)).unwrap_or(u8::MAX);
        mac.update(&[a.typ, length]);
        if a.typ == MESSAGE_AUTHENTICATOR {
            mac.update(&[0; MESSAGE_AUTHENTICATOR_LEN]);
        } else {
            mac.update(a.value);
        }
    }
    mac.verify_slice(received).map_err(|_| AuthError::Mismatch)
}

/// Computes a Response Authenticator (RFC 2865 §3):
/// `MD5(Code + Identifier + Length + RequestAuth + Attributes + Secret)`, where
/// `header` is Code, Identifier and Length and `attributes` the attribute area.
pub(crate) fn response_authenticator(
    header: &[u8],
    request_authenticator: &[u8; 16],
    attributes: &[&[u8]],
    secret: &SharedSecret,
) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(header);
    md5.update(request_authenticator);
    for part in attributes {
        md5.update(part);
    }
    md5.update(secret.as_bytes());
    md5.finalize().into()
}

/// Verifies the Request Authenticator of an Accounting-Request (RFC 2866 §3):
/// `MD5(Code + Identifier + Length + 16 zero octets + Attributes + Secret)`. A wrong shared
/// secret shows here; the packet is then silently discarded.
pub fn verify_accounting_request(
    packet: &Packet<'_>,
    secret: &SharedSecret,
) -> Result<(), AuthError> {
    let raw = packet.raw();
    let header = raw.get(..4).ok_or(AuthError::BadRequestAuthenticator)?;
    let area = raw
        .get(HEADER_LEN..)
        .ok_or(AuthError::BadRequestAuthenticator)?;
    let expected = response_authenticator(header, &[0; 16], &[area], secret);
    if constant_time_eq(&expected, packet.authenticator()) {
        Ok(())
    } else {
        Err(AuthError::BadRequestAuthenticator)
    }
}

/// Verifies the Response Authenticator of a response (RFC 2865 §3) against the
/// Request Authenticator of the request it answers.
pub fn verify_response_authenticator(
    packet: &Packet<'_>,
    secret: &SharedSecret,
    request_authenticator: &[u8; 16],
) -> Result<(), AuthError> {
    let raw = packet.raw();
    let header = raw.get(..4).ok_or(AuthError::BadResponseAuthenticator)?;
    let area = raw
        .get(HEADER_LEN..)
        .ok_or(AuthError::BadResponseAuthenticator)?;
    let expected = response_authenticator(header, request_authenticator, &[area], secret);
    if constant_time_eq(&expected, packet.authenticator()) {
        Ok(())
    } else {
        Err(AuthError::BadResponseAuthenticator)
    }
}

/// The longest User-Password (RFC 2865 §5.2: "at least 16 octets and at most 128").
pub const MAX_USER_PASSWORD: usize = 128;
/// CHAP-Password: the CHAP Identifier and the 16-octet MD5 response (RFC 2865 §5.3).
pub const CHAP_PASSWORD_LEN: usize = 17;

/// Why a password attribute cannot be revealed or checked: the NAS sent a malformed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PasswordError {
    #[error("User-Password of {0} octets: RFC 2865 §5.2 requires 16 to 128, a multiple of 16")]
    UserPasswordLength(usize),
    #[error("a password of {0} octets does not fit a User-Password (at most 128)")]
    TooLong(usize),
    #[error(
        "CHAP-Password of {0} octets: RFC 2865 §5.3 requires 17 (identifier and 16-octet response)"
    )]
    ChapPasswordLength(usize),
}

/// The RFC 2865 §5.2 stream: `b1 = MD5(S + RA)`, `b(i) = MD5(S + c(i-1))`, each block of the
/// result the XOR of a block of the input with its `b`. `hide`: whether `input` is the clear
/// text (the chaining uses the output) or the hidden form (the chaining uses the input).
fn user_password_stream(
    input: &[u8],
    secret: &SharedSecret,
    authenticator: &[u8; 16],
    hide: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut previous: [u8; 16] = *authenticator;
    for block in input.chunks(16) {
        let mut md5 = Md5::new();
        md5.update(secret.as_bytes());
        md5.update(previous);
        let b: [u8; 16] = md5.finalize().into();
        let mut c = [0u8; 16];
        for ((o, p), k) in c.iter_mut().zip(block).zip(b) {
            *o = p ^ k;
        }
        out.extend_from_slice(c.get(..block.len()).unwrap_or(&c));
        let chained = if hide { &c[..] } else { block };
        previous.copy_from_slice(chained.get(..16).unwrap_or(&[0; 16]));
    }
    out
}

/// Hides a User-Password as a NAS does (RFC 2865 §5.2): NUL-padded to a multiple of 16.
pub fn hide_user_password(
    password: &[u8],
    secret: &SharedSecret,
    authenticator: &[u8; 16],
) -> Result<Vec<u8>, PasswordError> {
    if password.len() > MAX_USER_PASSWORD {
        return Err(PasswordError::TooLong(password.len()));
    }
    let mut padded = password.to_vec();
    let len = password.len().div_ceil(16).max(1) * 16;
    padded.resize(len, 0);
    Ok(user_password_stream(&padded, secret, authenticator, true))
}

/// Reveals a hidden User-Password (RFC 2865 §5.2) with the client's secret and the request's
/// authenticator; the NUL padding is removed. A wrong secret yields garbage, not an error: the
/// caller compares the result with what it expects.
pub fn reveal_user_password(
    hidden: &[u8],
    secret: &SharedSecret,
    authenticator: &[u8; 16],
) -> Result<Vec<u8>, PasswordError> {
    if hidden.is_empty() || hidden.len() > MAX_USER_PASSWORD || !hidden.len().is_multiple_of(16) {
        return Err(PasswordError::UserPasswordLength(hidden.len()));
    }
    let mut clear = user_password_stream(hidden, secret, authenticator, false);
    while clear.last() == Some(&0) {
        clear.pop();
    }
    Ok(clear)
}

/// The CHAP response (RFC 1994 §4.1, RFC 2865 §5.3): `MD5(Identifier + password + challenge)`.
pub fn chap_response(identifier: u8, password: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update([identifier]);
    md5.update(password);
    md5.update(challenge);
    md5.finalize().into()
}

/// Whether a CHAP-Password attribute (identifier then response) answers `challenge` (the
/// CHAP-Challenge attribute, or the Request Authenticator when there is none) with `password`.
pub fn chap_matches(
    chap_password: &[u8],
    challenge: &[u8],
    password: &[u8],
) -> Result<bool, PasswordError> {
    let (&[identifier], response) = chap_password.split_at_checked(1).unwrap_or((&[], &[])) else {
        return Err(PasswordError::ChapPasswordLength(chap_password.len()));
    };
    let Ok(response) = <[u8; 16]>::try_from(response) else {
        return Err(PasswordError::ChapPasswordLength(chap_password.len()));
    };
    Ok(constant_time_eq(
        &chap_response(identifier, password, challenge),
        &response,
    ))
}

/// Compares two authenticators without an early exit on the first difference.
fn constant_time_eq(a: &[u8; 16], b: &[u8; 16]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the optimiser from turning the fold back into a short-circuiting compare.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::attr::*;
    use crate::radius::packet::rfc2865_examples::*;

    fn xyzzy() -> SharedSecret {
        SharedSecret::new("xyzzy5461")
    }

    fn auth_of(bytes: &[u8]) -> [u8; 16] {
        *Packet::decode(bytes).unwrap().authenticator()
    }

    /// RFC 2865 §7.1 and §7.2: the example Access-Accepts carry valid Response
    /// Authenticators for their requests with shared secret "xyzzy5461".
    #[test]
    fn rfc2865_examples_response_authenticator() {
        for (req, acc) in [(REQUEST_7_1, ACCEPT_7_1), (REQUEST_7_2, ACCEPT_7_2)] {
            let req = hex(req);
            let acc = hex(acc);
            let req_auth = auth_of(&req);
            let p = Packet::decode(&acc).unwrap();
            assert_eq!(
                verify_response_authenticator(&p, &xyzzy(), &req_auth),
                Ok(())
            );
            assert_eq!(
                verify_response_authenticator(&p, &SharedSecret::new("xyzzy5462"), &req_auth),
                Err(AuthError::BadResponseAuthenticator)
            );
            let mut wrong = req_auth;
            wrong[15] ^= 1;
            assert_eq!(
                verify_response_authenticator(&p, &xyzzy(), &wrong),
                Err(AuthError::BadResponseAuthenticator)
            );
        }
    }

    /// RFC 2865 §5.2 check on the §7.1 example, proving the secret and request
    /// authenticator are read as the RFC intends: the User-Password decrypts to
    /// "arctangent" (c = p XOR MD5(secret + RA)).
    #[test]
    fn rfc2865_7_1_user_password() {
        let req = hex(REQUEST_7_1);
        let p = Packet::decode(&req).unwrap();
        let mut md5 = Md5::new();
        md5.update(b"xyzzy5461");
        md5.update(p.authenticator());
        let b: [u8; 16] = md5.finalize().into();
        let plain: Vec<u8> = p
            .first(USER_PASSWORD)
            .unwrap()
            .iter()
            .zip(b)
            .map(|(c, k)| c ^ k)
            .collect();
        assert_eq!(&plain[..10], b"arctangent");
        assert!(plain[10..].iter().all(|&x| x == 0));
    }

    /// Builds a raw packet with Message-Authenticator (zeroed) first.
    fn raw_with_ma(code: u8, auth: [u8; 16], extra: &[(u8, &[u8])]) -> Vec<u8> {
        let mut body = vec![MESSAGE_AUTHENTICATOR, 18];
        body.extend_from_slice(&[0; 16]);
        for (t, v) in extra {
            body.push(*t);
            body.push(u8::try_from(v.len() + 2).unwrap());
            body.extend_from_slice(v);
        }
        let mut p = vec![code, 42];
        p.extend_from_slice(&u16::try_from(20 + body.len()).unwrap().to_be_bytes());
        p.extend_from_slice(&auth);
        p.extend_from_slice(&body);
        p
    }

    fn sign(p: &mut [u8], secret: &SharedSecret, auth_for_mac: Option<[u8; 16]>) {
        let mut copy = p.to_vec();
        if let Some(a) = auth_for_mac {
            copy[4..20].copy_from_slice(&a);
        }
        let mut mac = secret.hmac_md5();
        mac.update(&copy);
        let tag = mac.finalize().into_bytes();
        p[22..38].copy_from_slice(&tag);
    }

    #[test]
    fn message_authenticator_request() {
        let secret = SharedSecret::new("s3cret");
        let mut raw = raw_with_ma(
            1,
            [7; 16],
            &[
                (USER_NAME, b"alice"),
                (EAP_MESSAGE, b"\x02\x01\x00\x05\x01"),
            ],
        );
        sign(&mut raw, &secret, None);
        let p = Packet::decode(&raw).unwrap();
        assert_eq!(verify_message_authenticator(&p, &secret, None), Ok(()));
        assert_eq!(
            verify_message_authenticator(&p, &SharedSecret::new("s3cres"), None),
            Err(AuthError::Mismatch)
        );
        // Flip one bit anywhere (header, authenticator, MA value, attributes).
        for i in [1usize, 5, 25, raw.len() - 1] {
            let mut bad = raw.clone();
            bad[i] ^= 0x10;
            let p = Packet::decode(&bad).unwrap();
            assert_eq!(
                verify_message_authenticator(&p, &secret, None),
                Err(AuthError::Mismatch),
                "bit in octet {i}"
            );
        }
    }

    #[test]
    fn message_authenticator_response_uses_request_authenticator() {
        let secret = SharedSecret::new("s3cret");
        let request_auth = [0xab; 16];
        // The response carries some other value (its Response Authenticator).
        let mut raw = raw_with_ma(11, [0x11; 16], &[(STATE, b"st")]);
        sign(&mut raw, &secret, Some(request_auth));
        let p = Packet::decode(&raw).unwrap();
        assert_eq!(
            verify_message_authenticator(&p, &secret, Some(&request_auth)),
            Ok(())
        );
        assert_eq!(
            verify_message_authenticator(&p, &secret, None),
            Err(AuthError::Mismatch)
        );
        assert_eq!(
            verify_message_authenticator(&p, &secret, Some(&[0xac; 16])),
            Err(AuthError::Mismatch)
        );
    }

    #[test]
    fn message_authenticator_missing_wrong_length_duplicate() {
        let secret = SharedSecret::new("s");
        let raw = hex(REQUEST_7_1);
        let p = Packet::decode(&raw).unwrap();
        assert_eq!(
            verify_message_authenticator(&p, &secret, None),
            Err(AuthError::Missing)
        );

        let mut raw = vec![1u8, 0, 0, 37];
        raw.extend_from_slice(&[0; 16]);
        raw.extend_from_slice(&[MESSAGE_AUTHENTICATOR, 17]);
        raw.extend_from_slice(&[0; 15]);
        let p = Packet::decode(&raw).unwrap();
        assert_eq!(
            verify_message_authenticator(&p, &secret, None),
            Err(AuthError::WrongLength)
        );

        // Two Message-Authenticators, the first one valid for a zeroed second one:
        // still rejected.
        let mut raw = raw_with_ma(1, [1; 16], &[(MESSAGE_AUTHENTICATOR, &[0; 16])]);
        sign(&mut raw, &secret, None);
        let p = Packet::decode(&raw).unwrap();
        assert_eq!(
            verify_message_authenticator(&p, &secret, None),
            Err(AuthError::Mismatch)
        );
    }

    /// Known answer computed independently with Python's `hmac`/`hashlib` over
    /// the RFC 2865 §7.1 Access-Request with a zeroed Message-Authenticator
    /// appended (Length 0x4a), secret "xyzzy5461".
    #[test]
    fn message_authenticator_known_answer() {
        let mut raw = hex(REQUEST_7_1);
        raw[3] = 0x4a;
        raw.extend_from_slice(&[MESSAGE_AUTHENTICATOR, 18]);
        raw.extend_from_slice(&hex(MA_KAT));
        let p = Packet::decode(&raw).unwrap();
        assert_eq!(verify_message_authenticator(&p, &xyzzy(), None), Ok(()));
    }

    const MA_KAT: &str = "63 b7 8a 6b 9d 2f 14 99 89 fb f5 7e a2 1d 19 4c";

    /// RFC 2865 §7.1: "nemo" logs in with password "arctangent", secret "xyzzy5461"; the
    /// hidden User-Password in the example packet reveals it, and hiding gives the same octets.
    #[test]
    fn rfc2865_user_password_example() {
        let bytes = hex(REQUEST_7_1);
        let p = Packet::decode(&bytes).unwrap();
        let hidden = p.first(USER_PASSWORD).unwrap();
        let auth = p.authenticator();
        assert_eq!(
            reveal_user_password(hidden, &xyzzy(), auth).unwrap(),
            b"arctangent"
        );
        assert_eq!(
            hide_user_password(b"arctangent", &xyzzy(), auth).unwrap(),
            hidden
        );
    }

    #[test]
    fn long_passwords_chain_and_lengths_are_checked() {
        let auth = [7u8; 16];
        let pw = b"a password longer than sixteen octets, over three blocks.....";
        let hidden = hide_user_password(pw, &xyzzy(), &auth).unwrap();
        assert_eq!(hidden.len(), 64);
        assert_eq!(reveal_user_password(&hidden, &xyzzy(), &auth).unwrap(), pw);
        assert_ne!(
            reveal_user_password(&hidden, &SharedSecret::new("other"), &auth).unwrap(),
            pw
        );
        for n in [0, 15, 17, 144] {
            assert_eq!(
                reveal_user_password(&vec![1; n], &xyzzy(), &auth),
                Err(PasswordError::UserPasswordLength(n))
            );
        }
        assert!(reveal_user_password(&[1; 128], &xyzzy(), &auth).is_ok());
        assert_eq!(
            hide_user_password(&[b'a'; 129], &xyzzy(), &auth),
            Err(PasswordError::TooLong(129))
        );
    }

    /// RFC 1994 §4.1 as RFC 2865 §5.3 carries it: MD5 over identifier, password, challenge.
    #[test]
    fn chap_response_and_lengths() {
        let challenge = [9u8; 16];
        let r = chap_response(42, b"001122334455", &challenge);
        let mut md5 = Md5::new();
        md5.update(b"\x2a001122334455");
        md5.update(challenge);
        assert_eq!(r, <[u8; 16]>::from(md5.finalize()));
        let mut attr = vec![42];
        attr.extend_from_slice(&r);
        assert_eq!(chap_matches(&attr, &challenge, b"001122334455"), Ok(true));
        assert_eq!(chap_matches(&attr, &challenge, b"001122334456"), Ok(false));
        assert_eq!(chap_matches(&attr, &[8; 16], b"001122334455"), Ok(false));
        for n in [0usize, 1, 16, 18] {
            assert_eq!(
                chap_matches(&vec![1; n], &challenge, b"x"),
                Err(PasswordError::ChapPasswordLength(n))
            );
        }
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(&[3; 16], &[3; 16]));
        let mut b = [3; 16];
        b[9] = 4;
        assert!(!constant_time_eq(&[3; 16], &b));
    }
}
