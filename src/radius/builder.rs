//! Building outgoing RADIUS packets: RFC 2865 §3 (format, Response
//! Authenticator), §5 (attributes), §5.26 (Vendor-Specific), §5.33 (Proxy-State),
//! RFC 3579 §3.1 (EAP-Message splitting) and §3.2 (Message-Authenticator).
//!
//! Every packet gets a Message-Authenticator and it is always the FIRST attribute:
//! the BlastRADIUS attack (CVE-2024-3596) forges responses by steering an MD5
//! chosen-prefix collision through attributes placed before it, and an HMAC in
//! front of all attacker-influenced content defeats that.

use thiserror::Error;

use super::attr::{
    EAP_MESSAGE, HEADER_LEN, MAX_ATTR_VALUE_LEN, MAX_PACKET_LEN, MESSAGE_AUTHENTICATOR,
    MESSAGE_AUTHENTICATOR_LEN, PROXY_STATE, VENDOR_SPECIFIC,
};
use super::auth::response_authenticator;
use super::packet::{Code, Packet};
use super::secret::SharedSecret;
use hmac::Mac;

/// Octets a Message-Authenticator attribute takes: Type, Length, 16-octet value.
const MESSAGE_AUTHENTICATOR_ATTR_LEN: usize = 2 + MESSAGE_AUTHENTICATOR_LEN;
/// Vendor-Id (4) plus vendor type and vendor length (1 + 1) (RFC 2865 §5.26).
const VSA_OVERHEAD: usize = 6;

/// Why a packet could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// An attribute value exceeds 253 octets. For `vendor_attr`, `typ` is
    /// Vendor-Specific (26) and `len` the whole Vendor-Specific value.
    #[error("attribute type {typ} value of {len} octets exceeds the 253-octet maximum")]
    ValueTooLong {
        /// Attribute type.
        typ: u8,
        /// Value length.
        len: usize,
    },
    /// The packet would exceed the 4096-octet RADIUS maximum (RFC 2865 §3).
    #[error("packet of {len} octets exceeds the 4096-octet RADIUS maximum")]
    PacketTooLong {
        /// Length the packet would have had.
        len: usize,
    },
    /// The attribute is managed by the builder (Message-Authenticator is always
    /// added exactly once, first) and cannot be added by hand.
    #[error("attribute type {typ} is added by the packet builder itself")]
    ReservedAttribute {
        /// Attribute type.
        typ: u8,
    },
}

/// Accumulates attributes, then encodes a signed request or response.
///
/// Attributes are encoded as they are added, into one buffer: a reply is built with two
/// allocations (that buffer and the packet), not one per attribute and per 253-octet piece of
/// EAP-Message, which counted at a supplicant's pace (BENCHMARKS.md, performance round 3).
#[derive(Debug, Clone)]
pub struct PacketBuilder {
    code: Code,
    identifier: u8,
    /// The encoded attributes in wire order (Type, Length, Value each), excluding the
    /// Message-Authenticator. Every value was checked to fit its Length octet when added.
    area: Vec<u8>,
}

impl PacketBuilder {
    /// Starts a packet with the given code and identifier (for a response, the
    /// request's identifier, RFC 2865 §3).
    pub fn new(code: Code, identifier: u8) -> Self {
        Self {
            code,
            identifier,
            area: Vec::new(),
        }
    }

    /// Appends one attribute whose value is `parts` one after the other; a value longer than 253
    /// octets is refused and nothing is added.
    fn push(&mut self, typ: u8, parts: &[&[u8]]) -> Result<(), EncodeError> {
        let len = parts.iter().map(|p| p.len()).fold(0, usize::saturating_add);
        let too_long = EncodeError::ValueTooLong { typ, len };
        if len > MAX_ATTR_VALUE_LEN {
            return Err(too_long);
        }
        let length = u8::try_from(len.saturating_add(2)).map_err(|_| too_long)?;
        self.area.reserve(len.saturating_add(2));
        self.area.push(typ);
        self.area.push(length);
        for p in parts {
            self.area.extend_from_slice(p);
        }
        Ok(())
    }

    /// Appends an attribute. Values longer than 253 octets are rejected, as is
    /// Message-Authenticator (the builder adds it).
    pub fn attr(&mut self, typ: u8, value: &[u8]) -> Result<&mut Self, EncodeError> {
        if typ == MESSAGE_AUTHENTICATOR {
            return Err(EncodeError::ReservedAttribute { typ });
        }
        self.push(typ, &[value])?;
        Ok(self)
    }

    /// Appends an EAP packet split into EAP-Message attributes of at most 253
    /// octets, in order (RFC 3579 §3.1). An empty `eap` adds nothing.
    pub fn eap_message(&mut self, eap: &[u8]) -> &mut Self {
        let pieces = eap.len().div_ceil(MAX_ATTR_VALUE_LEN);
        self.area
            .reserve(eap.len().saturating_add(pieces.saturating_mul(2)));
        for chunk in eap.chunks(MAX_ATTR_VALUE_LEN) {
            // ok: chunks() yields at most MAX_ATTR_VALUE_LEN octets.
            let _ = self.push(EAP_MESSAGE, &[chunk]);
        }
        self
    }

    /// Appends a Vendor-Specific attribute holding one sub-attribute in the
    /// RFC 2865 §5.26 recommended format (vendor type, vendor length, value).
    /// `value` may hold at most 247 octets.
    pub fn vendor_attr(
        &mut self,
        vendor: u32,
        vendor_type: u8,
        value: &[u8],
    ) -> Result<&mut Self, EncodeError> {
        let too_long = EncodeError::ValueTooLong {
            typ: VENDOR_SPECIFIC,
            len: value.len().saturating_add(VSA_OVERHEAD),
        };
        // The vendor length octet counts its two header octets.
        let vendor_length = u8::try_from(value.len().saturating_add(2)).map_err(|_| too_long)?;
        self.push(
            VENDOR_SPECIFIC,
            &[&vendor.to_be_bytes(), &[vendor_type, vendor_length], value],
        )?;
        Ok(self)
    }

    /// Copies every Proxy-State of `request`, unmodified and in order, as
    /// RFC 2865 §5.33 requires of a response.
    pub fn copy_proxy_state(&mut self, request: &Packet<'_>) -> &mut Self {
        for a in request.attributes().filter(|a| a.typ == PROXY_STATE) {
            // ok: a decoded value fits its Length octet, so it fits again here.
            let _ = self.push(PROXY_STATE, &[a.value]);
        }
        self
    }

    /// Length of the encoded packet, including the Message-Authenticator.
    pub fn encoded_len(&self) -> usize {
        (HEADER_LEN + MESSAGE_AUTHENTICATOR_ATTR_LEN).saturating_add(self.area.len())
    }

    /// Code, Identifier and Length, plus the encoded attribute area after the
    /// Message-Authenticator.
    fn header_and_attributes(&self) -> Result<([u8; 4], &[u8]), EncodeError> {
        let len = self.encoded_len();
        let too_long = EncodeError::PacketTooLong { len };
        if len > MAX_PACKET_LEN {
            return Err(too_long);
        }
        let [len_hi, len_lo] = u16::try_from(len).map_err(|_| too_long)?.to_be_bytes();
        let header = [u8::from(self.code), self.identifier, len_hi, len_lo];
        Ok((header, &self.area))
    }

    /// HMAC-MD5 over the packet with a zeroed Message-Authenticator value and
    /// `authenticator` in the Authenticator field (RFC 3579 §3.2).
    fn message_authenticator(
        header: &[u8; 4],
        authenticator: &[u8; 16],
        area: &[u8],
        secret: &SharedSecret,
    ) -> [u8; MESSAGE_AUTHENTICATOR_LEN] {
        let mut mac = secret.hmac_md5();
        mac.update(header);
        mac.update(authenticator);
        mac.update(&[MESSAGE_AUTHENTICATOR, 18]);
        mac.update(&[0; MESSAGE_AUTHENTICATOR_LEN]);
        mac.update(area);
        mac.finalize().into_bytes().into()
    }

    /// Encodes a response (Access-Accept/-Reject/-Challenge, Accounting-Response)
    /// to the request whose Request Authenticator is `request_authenticator`.
    ///
    /// Message-Authenticator comes first and is computed with the Request
    /// Authenticator in the Authenticator field (RFC 3579 §3.2); then the Response
    /// Authenticator (RFC 2865 §3) is computed over the final packet.
    pub fn encode_response(
        &self,
        secret: &SharedSecret,
        request_authenticator: &[u8; 16],
    ) -> Result<Vec<u8>, EncodeError> {
        self.encode_reply(secret, request_authenticator, request_authenticator)
    }

    /// Encodes an Accounting-Response (RFC 2866 §4.2). Its Message-Authenticator is computed
    /// over a zeroed Authenticator field, as for the Accounting-Request it answers — what
    /// FreeRADIUS and radclient compute and check — and the Response Authenticator over the
    /// Request Authenticator (RFC 2866 §3).
    pub fn encode_accounting_response(
        &self,
        secret: &SharedSecret,
        request_authenticator: &[u8; 16],
    ) -> Result<Vec<u8>, EncodeError> {
        self.encode_reply(secret, &[0; 16], request_authenticator)
    }

    /// A reply whose Message-Authenticator is computed with `mac_authenticator` in the
    /// Authenticator field and whose Response Authenticator covers `request_authenticator`.
    fn encode_reply(
        &self,
        secret: &SharedSecret,
        mac_authenticator: &[u8; 16],
        request_authenticator: &[u8; 16],
    ) -> Result<Vec<u8>, EncodeError> {
        let (header, area) = self.header_and_attributes()?;
        let mac = Self::message_authenticator(&header, mac_authenticator, area, secret);
        let ma_attr = [MESSAGE_AUTHENTICATOR, 18];
        let response_auth = response_authenticator(
            &header,
            request_authenticator,
            &[&ma_attr, &mac, area],
            secret,
        );
        Ok(assemble(&header, &response_auth, &mac, area))
    }

    /// Encodes a request as a NAS sends it (Access-Request, Status-Server) with
    /// the given random Request Authenticator; Message-Authenticator comes first
    /// and covers the packet with that authenticator (RFC 3579 §3.2, RFC 5997).
    /// Not for Accounting-Request, whose Request Authenticator is itself a hash
    /// (RFC 2866 §3).
    pub fn encode_request(
        &self,
        secret: &SharedSecret,
        authenticator: [u8; 16],
    ) -> Result<Vec<u8>, EncodeError> {
        let (header, area) = self.header_and_attributes()?;
        let mac = Self::message_authenticator(&header, &authenticator, area, secret);
        Ok(assemble(&header, &authenticator, &mac, area))
    }
}

/// Lays out header, Authenticator, Message-Authenticator and the other attributes.
fn assemble(
    header: &[u8; 4],
    authenticator: &[u8; 16],
    mac: &[u8; MESSAGE_AUTHENTICATOR_LEN],
    area: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        (HEADER_LEN + MESSAGE_AUTHENTICATOR_ATTR_LEN).saturating_add(area.len()),
    );
    out.extend_from_slice(header);
    out.extend_from_slice(authenticator);
    out.extend_from_slice(&[MESSAGE_AUTHENTICATOR, 18]);
    out.extend_from_slice(mac);
    out.extend_from_slice(area);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::attr::*;
    use crate::radius::auth::{
        AuthError, verify_message_authenticator, verify_response_authenticator,
    };
    use crate::radius::mppe::{decrypt_key, encrypt_key};
    use proptest::prelude::*;

    fn secret() -> SharedSecret {
        SharedSecret::new("radius-secret")
    }

    #[test]
    fn response_layout_and_authenticators() {
        let ra = [0x42; 16];
        let mut b = PacketBuilder::new(Code::AccessAccept, 7);
        b.attr(USER_NAME, b"host/alice").unwrap();
        b.attr(SESSION_TIMEOUT, &3600u32.to_be_bytes()).unwrap();
        let bytes = b.encode_response(&secret(), &ra).unwrap();
        assert_eq!(bytes.len(), b.encoded_len());
        assert_eq!(bytes.len(), 20 + 18 + 12 + 6);
        let p = Packet::decode(&bytes).unwrap();
        assert_eq!(p.code(), Code::AccessAccept);
        assert_eq!(p.identifier(), 7);
        let first = p.attributes().next().unwrap();
        assert_eq!(first.typ, MESSAGE_AUTHENTICATOR);
        assert_eq!(first.value.len(), 16);
        assert_eq!(
            verify_message_authenticator(&p, &secret(), Some(&ra)),
            Ok(())
        );
        assert_eq!(verify_response_authenticator(&p, &secret(), &ra), Ok(()));
        assert_eq!(
            verify_response_authenticator(&p, &SharedSecret::new("x"), &ra),
            Err(AuthError::BadResponseAuthenticator)
        );
    }

    #[test]
    fn request_is_signed_with_own_authenticator() {
        let mut b = PacketBuilder::new(Code::AccessRequest, 1);
        b.attr(USER_NAME, b"bob")
            .unwrap()
            .eap_message(&[2, 1, 0, 8, 1, b'b', b'o', b'b']);
        let bytes = b.encode_request(&secret(), [9; 16]).unwrap();
        let p = Packet::decode(&bytes).unwrap();
        assert_eq!(p.authenticator(), &[9; 16]);
        assert_eq!(p.attributes().next().unwrap().typ, MESSAGE_AUTHENTICATOR);
        assert_eq!(verify_message_authenticator(&p, &secret(), None), Ok(()));
        assert_eq!(
            p.eap_message().unwrap(),
            vec![2, 1, 0, 8, 1, b'b', b'o', b'b']
        );

        let status = PacketBuilder::new(Code::StatusServer, 2)
            .encode_request(&secret(), [3; 16])
            .unwrap();
        assert_eq!(status.len(), 38);
        let p = Packet::decode(&status).unwrap();
        assert_eq!(verify_message_authenticator(&p, &secret(), None), Ok(()));
    }

    #[test]
    fn attribute_limits() {
        let mut b = PacketBuilder::new(Code::AccessAccept, 0);
        assert!(b.attr(REPLY_MESSAGE, &[b'x'; 253]).is_ok());
        assert_eq!(
            b.attr(REPLY_MESSAGE, &[b'x'; 254]).err(),
            Some(EncodeError::ValueTooLong {
                typ: REPLY_MESSAGE,
                len: 254
            })
        );
        assert!(b.vendor_attr(VENDOR_MICROSOFT, 1, &[0; 247]).is_ok());
        assert_eq!(
            b.vendor_attr(VENDOR_MICROSOFT, 1, &[0; 248]).err(),
            Some(EncodeError::ValueTooLong {
                typ: VENDOR_SPECIFIC,
                len: 254
            })
        );
        assert_eq!(
            b.attr(MESSAGE_AUTHENTICATOR, &[0; 16]).err(),
            Some(EncodeError::ReservedAttribute {
                typ: MESSAGE_AUTHENTICATOR
            })
        );
        let mut empty = PacketBuilder::new(Code::AccessChallenge, 0);
        empty.eap_message(&[]);
        assert_eq!(empty.encoded_len(), 38);
    }

    #[test]
    fn over_length_is_rejected() {
        let mut b = PacketBuilder::new(Code::AccessChallenge, 5);
        // 4096 - 38 = 4058 octets of attribute space; 16 EAP-Message attributes
        // of 253 octets need 16 * 255 = 4080.
        b.eap_message(&[0xee; 16 * 253]);
        assert_eq!(b.encoded_len(), 38 + 4080);
        assert_eq!(
            b.encode_response(&secret(), &[0; 16]),
            Err(EncodeError::PacketTooLong { len: 4118 })
        );
        assert_eq!(
            b.encode_request(&secret(), [0; 16]),
            Err(EncodeError::PacketTooLong { len: 4118 })
        );
        // Exactly 4096 is fine: 4058 = 15 * 255 + 233, i.e. a 231-octet tail.
        let mut b = PacketBuilder::new(Code::AccessChallenge, 5);
        b.eap_message(&[0xee; 15 * 253 + 231]);
        let bytes = b.encode_response(&secret(), &[0; 16]).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert!(Packet::decode(&bytes).is_ok());
    }

    #[test]
    fn proxy_state_copied_in_order() {
        let mut req = PacketBuilder::new(Code::AccessRequest, 3);
        req.attr(PROXY_STATE, b"one").unwrap();
        req.attr(USER_NAME, b"u").unwrap();
        req.attr(PROXY_STATE, b"two").unwrap();
        let req_bytes = req.encode_request(&secret(), [1; 16]).unwrap();
        let req = Packet::decode(&req_bytes).unwrap();

        let mut resp = PacketBuilder::new(Code::AccessReject, req.identifier());
        resp.copy_proxy_state(&req);
        let bytes = resp
            .encode_response(&secret(), req.authenticator())
            .unwrap();
        let p = Packet::decode(&bytes).unwrap();
        let ps: Vec<_> = p
            .attributes()
            .filter(|a| a.typ == PROXY_STATE)
            .map(|a| a.value)
            .collect();
        assert_eq!(ps, vec![&b"one"[..], &b"two"[..]]);
        assert_eq!(p.count(USER_NAME), 0);
    }

    #[test]
    fn mppe_keys_in_access_accept() {
        let ra = [0x77; 16];
        let send: Vec<u8> = (0..32).collect();
        let recv: Vec<u8> = (32..64).collect();
        let mut b = PacketBuilder::new(Code::AccessAccept, 9);
        b.vendor_attr(
            VENDOR_MICROSOFT,
            MS_MPPE_SEND_KEY,
            &encrypt_key(&send, &secret(), &ra, [0x80, 1]),
        )
        .unwrap()
        .vendor_attr(
            VENDOR_MICROSOFT,
            MS_MPPE_RECV_KEY,
            &encrypt_key(&recv, &secret(), &ra, [0x80, 2]),
        )
        .unwrap();
        let bytes = b.encode_response(&secret(), &ra).unwrap();
        let p = Packet::decode(&bytes).unwrap();
        let got: Vec<_> = p
            .vendor_attributes(VENDOR_MICROSOFT)
            .map(|a| (a.typ, decrypt_key(a.value, &secret(), &ra).unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![(MS_MPPE_SEND_KEY, send), (MS_MPPE_RECV_KEY, recv)]
        );
    }

    fn response_code() -> impl Strategy<Value = Code> {
        prop_oneof![
            Just(Code::AccessAccept),
            Just(Code::AccessReject),
            Just(Code::AccessChallenge),
            Just(Code::AccountingResponse),
        ]
    }

    /// Any attribute except EAP-Message and Message-Authenticator, which the
    /// round trip checks separately.
    fn plain_attribute() -> impl Strategy<Value = (u8, Vec<u8>)> {
        (
            any::<u8>().prop_filter("managed separately", |t| {
                *t != EAP_MESSAGE && *t != MESSAGE_AUTHENTICATOR
            }),
            proptest::collection::vec(any::<u8>(), 0..=253),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn encode_decode_round_trip(
            code in response_code(),
            id in any::<u8>(),
            ra in any::<[u8; 16]>(),
            before in proptest::collection::vec(plain_attribute(), 0..8),
            eap in proptest::collection::vec(any::<u8>(), 0..3500),
            after in proptest::collection::vec(plain_attribute(), 0..4),
            key in proptest::collection::vec(any::<u8>(), 1..64),
        ) {
            let secret = SharedSecret::new(key);
            let mut b = PacketBuilder::new(code, id);
            for (t, v) in &before {
                b.attr(*t, v).unwrap();
            }
            b.eap_message(&eap);
            for (t, v) in &after {
                b.attr(*t, v).unwrap();
            }
            let encoded = b.encode_response(&secret, &ra);
            if b.encoded_len() > MAX_PACKET_LEN {
                prop_assert_eq!(encoded, Err(EncodeError::PacketTooLong { len: b.encoded_len() }));
                return Ok(());
            }
            let bytes = encoded.unwrap();
            prop_assert_eq!(bytes.len(), b.encoded_len());
            let p = Packet::decode(&bytes).unwrap();
            prop_assert_eq!(p.code(), code);
            prop_assert_eq!(p.identifier(), id);

            let mut got = p.attributes();
            let first = got.next().unwrap();
            prop_assert_eq!(first.typ, MESSAGE_AUTHENTICATOR);
            let got: Vec<(u8, Vec<u8>)> = got.map(|a| (a.typ, a.value.to_vec())).collect();
            let mut want = before.clone();
            want.extend(eap.chunks(253).map(|c| (EAP_MESSAGE, c.to_vec())));
            want.extend(after.iter().cloned());
            prop_assert_eq!(got, want);
            prop_assert_eq!(p.eap_message(), (!eap.is_empty()).then(|| eap.clone()));
            prop_assert_eq!(p.count(MESSAGE_AUTHENTICATOR), 1);
            prop_assert_eq!(verify_message_authenticator(&p, &secret, Some(&ra)), Ok(()));
            prop_assert_eq!(verify_response_authenticator(&p, &secret, &ra), Ok(()));
        }
    }
}
