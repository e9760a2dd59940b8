//! EAP packet format: RFC 3748 §4 (header and Length rules), §4.1 (Request/Response),
//! §4.2 (Success/Failure) and §5 (the Type values this server needs).
//!
//! Decoding borrows from the input buffer; nothing is copied until the caller asks for it.
//! Every malformed packet yields an [`EapError`] that names what the peer got wrong.

use thiserror::Error;

/// Size of the Code, Identifier and Length fields (RFC 3748 §4).
pub const HEADER_LEN: usize = 4;

/// The Length field is 16 bits, so no EAP packet can be longer than this.
pub const MAX_PACKET_LEN: usize = u16::MAX as usize;

/// EAP Code field (RFC 3748 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EapCode {
    /// 1
    Request,
    /// 2
    Response,
    /// 3
    Success,
    /// 4
    Failure,
    /// Any other value. RFC 3748 §4 says such packets MUST be silently discarded; the
    /// decoder still returns them so the caller decides (and can log) the discard.
    Unknown(u8),
}

impl From<u8> for EapCode {
    fn from(value: u8) -> Self {
        match value {
            1 => Self::Request,
            2 => Self::Response,
            3 => Self::Success,
            4 => Self::Failure,
            other => Self::Unknown(other),
        }
    }
}

impl From<EapCode> for u8 {
    fn from(code: EapCode) -> Self {
        match code {
            EapCode::Request => 1,
            EapCode::Response => 2,
            EapCode::Success => 3,
            EapCode::Failure => 4,
            EapCode::Unknown(other) => other,
        }
    }
}

/// EAP Type field (RFC 3748 §5; 13 is EAP-TLS from RFC 5216).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EapType {
    /// 1 (§5.1)
    Identity,
    /// 2 (§5.2)
    Notification,
    /// 3, "Legacy Nak", sent only in Responses (§5.3.1)
    Nak,
    /// 13, EAP-TLS (RFC 5216, RFC 9190)
    Tls,
    /// 254, Expanded Type (§5.7); the vendor fields stay in the type data
    Expanded,
    /// Any other value
    Unknown(u8),
}

impl From<u8> for EapType {
    fn from(value: u8) -> Self {
        match value {
            1 => Self::Identity,
            2 => Self::Notification,
            3 => Self::Nak,
            13 => Self::Tls,
            254 => Self::Expanded,
            other => Self::Unknown(other),
        }
    }
}

impl From<EapType> for u8 {
    fn from(typ: EapType) -> Self {
        match typ {
            EapType::Identity => 1,
            EapType::Notification => 2,
            EapType::Nak => 3,
            EapType::Tls => 13,
            EapType::Expanded => 254,
            EapType::Unknown(other) => other,
        }
    }
}

/// Why a received EAP packet was rejected. Each variant describes what the peer sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EapError {
    /// Fewer octets than the 4-octet header.
    #[error("EAP packet too short: {len} octets, the header alone needs 4")]
    TooShort { len: usize },
    /// The Length field cannot even cover the header.
    #[error("EAP Length field is {declared}, less than the 4-octet header")]
    LengthBelowHeader { declared: usize },
    /// RFC 3748 §4: a Length larger than what was received MUST be silently discarded.
    #[error("EAP Length field says {declared} octets but only {received} were received")]
    LengthMismatch { declared: usize, received: usize },
    /// A Request or Response whose Length leaves no room for the Type octet.
    #[error("EAP Request/Response has no Type octet (Length is 4)")]
    MissingType,
}

/// A decoded EAP packet borrowing from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EapPacket<'a> {
    pub code: EapCode,
    pub identifier: u8,
    /// `Some` for Request/Response, `None` for Success/Failure and unknown codes.
    pub typ: Option<EapType>,
    /// Octets after the Type octet, up to Length. Empty for Success/Failure. For an unknown
    /// code this is everything after the header, since its layout is not known.
    pub type_data: &'a [u8],
}

impl<'a> EapPacket<'a> {
    /// Decodes one EAP packet.
    ///
    /// Octets beyond the Length field are ignored: RFC 3748 §4 says to treat them as
    /// link-layer padding. Success/Failure are defined with Length 4 (§4.2); if a peer sends
    /// extra octets inside Length they are ignored too, because they carry no meaning.
    pub fn decode(buf: &'a [u8]) -> Result<Self, EapError> {
        let (header, _) = buf
            .split_first_chunk::<HEADER_LEN>()
            .ok_or(EapError::TooShort { len: buf.len() })?;
        let [code, identifier, len_hi, len_lo] = *header;
        let code = EapCode::from(code);
        let declared = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        if declared < HEADER_LEN {
            return Err(EapError::LengthBelowHeader { declared });
        }
        let packet = buf.get(..declared).ok_or(EapError::LengthMismatch {
            declared,
            received: buf.len(),
        })?;
        let body = packet.get(HEADER_LEN..).unwrap_or_default();

        let (typ, type_data) = match code {
            EapCode::Request | EapCode::Response => {
                let (&typ, rest) = body.split_first().ok_or(EapError::MissingType)?;
                (Some(EapType::from(typ)), rest)
            }
            EapCode::Success | EapCode::Failure => (None, &[][..]),
            EapCode::Unknown(_) => (None, body),
        };
        Ok(Self {
            code,
            identifier,
            typ,
            type_data,
        })
    }
}

/// Encodes an EAP packet.
///
/// Success and Failure are always the 4-octet header: `typ` and `type_data` are ignored
/// (RFC 3748 §4.2). For other codes the Type octet is written when `typ` is `Some`; a
/// Request/Response needs one, so passing `None` there produces a malformed packet.
///
/// The Length field is 16 bits. Callers keep payloads small (the [`Fragmenter`] does this for
/// EAP-TLS); should the data not fit, it is cut at [`MAX_PACKET_LEN`] so the packet stays
/// self-consistent instead of carrying a wrapped-around Length.
///
/// [`Fragmenter`]: super::fragment::Fragmenter
pub fn encode(code: EapCode, identifier: u8, typ: Option<EapType>, type_data: &[u8]) -> Vec<u8> {
    let (typ, data) = match code {
        EapCode::Success | EapCode::Failure => (None, &[][..]),
        _ => (typ, type_data),
    };
    let type_len = usize::from(typ.is_some());
    let room = MAX_PACKET_LEN - HEADER_LEN - type_len;
    let data = data.get(..room).unwrap_or(data);
    let len = HEADER_LEN + type_len + data.len();
    // `len` <= MAX_PACKET_LEN by construction, so the conversion cannot fail.
    let len_field = u16::try_from(len).unwrap_or(u16::MAX);

    let mut out = Vec::with_capacity(len);
    out.push(u8::from(code));
    out.push(identifier);
    out.extend_from_slice(&len_field.to_be_bytes());
    if let Some(typ) = typ {
        out.push(u8::from(typ));
    }
    out.extend_from_slice(data);
    out
}

/// EAP-Success with the given Identifier (RFC 3748 §4.2).
pub fn success(identifier: u8) -> Vec<u8> {
    encode(EapCode::Success, identifier, None, &[])
}

/// EAP-Failure with the given Identifier (RFC 3748 §4.2).
pub fn failure(identifier: u8) -> Vec<u8> {
    encode(EapCode::Failure, identifier, None, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn identity_response() {
        let wire = [2, 7, 0, 10, 1, b'a', b'l', b'i', b'c', b'e'];
        let p = EapPacket::decode(&wire).unwrap();
        assert_eq!(p.code, EapCode::Response);
        assert_eq!(p.identifier, 7);
        assert_eq!(p.typ, Some(EapType::Identity));
        assert_eq!(p.type_data, b"alice");
        assert_eq!(
            encode(EapCode::Response, 7, Some(EapType::Identity), b"alice"),
            wire
        );
    }

    #[test]
    fn tls_start_request() {
        let wire = [1, 0x42, 0, 6, 13, 0x20];
        let p = EapPacket::decode(&wire).unwrap();
        assert_eq!(p.code, EapCode::Request);
        assert_eq!(p.identifier, 0x42);
        assert_eq!(p.typ, Some(EapType::Tls));
        assert_eq!(p.type_data, [0x20]);
        assert_eq!(
            encode(EapCode::Request, 0x42, Some(EapType::Tls), &[0x20]),
            wire
        );
    }

    #[test]
    fn success_and_failure() {
        assert_eq!(success(9), [3, 9, 0, 4]);
        assert_eq!(failure(9), [4, 9, 0, 4]);
        let p = EapPacket::decode(&[3, 9, 0, 4]).unwrap();
        assert_eq!(p.code, EapCode::Success);
        assert_eq!(p.typ, None);
        assert!(p.type_data.is_empty());
        let p = EapPacket::decode(&[4, 9, 0, 4]).unwrap();
        assert_eq!(p.code, EapCode::Failure);
        // Type and data are meaningless for Success/Failure and are dropped.
        assert_eq!(
            encode(EapCode::Success, 1, Some(EapType::Tls), b"xx"),
            [3, 1, 0, 4]
        );
    }

    #[test]
    fn nak_response() {
        // Peer refuses EAP-TLS and asks for type 25 (PEAP) instead.
        let wire = [2, 3, 0, 6, 3, 25];
        let p = EapPacket::decode(&wire).unwrap();
        assert_eq!(p.typ, Some(EapType::Nak));
        assert_eq!(p.type_data, [25]);
        assert_eq!(
            encode(EapCode::Response, 3, Some(EapType::Nak), &[25]),
            wire
        );
    }

    #[test]
    fn padding_beyond_length_is_ignored() {
        let p = EapPacket::decode(&[2, 1, 0, 6, 1, b'x', 0, 0, 0]).unwrap();
        assert_eq!(p.type_data, b"x");
    }

    #[test]
    fn unknown_code_keeps_body() {
        let p = EapPacket::decode(&[9, 1, 0, 6, 1, 2]).unwrap();
        assert_eq!(p.code, EapCode::Unknown(9));
        assert_eq!(p.typ, None);
        assert_eq!(p.type_data, [1, 2]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            EapPacket::decode(&[2, 1, 0]),
            Err(EapError::TooShort { len: 3 })
        );
        assert_eq!(
            EapPacket::decode(&[2, 1, 0, 3]),
            Err(EapError::LengthBelowHeader { declared: 3 })
        );
        assert_eq!(
            EapPacket::decode(&[2, 1, 0, 9, 1, b'x']),
            Err(EapError::LengthMismatch {
                declared: 9,
                received: 6
            })
        );
        assert_eq!(EapPacket::decode(&[1, 1, 0, 4]), Err(EapError::MissingType));
        // The type octet past Length does not count.
        assert_eq!(
            EapPacket::decode(&[2, 1, 0, 4, 1]),
            Err(EapError::MissingType)
        );
        assert_eq!(
            EapError::LengthMismatch {
                declared: 9,
                received: 6
            }
            .to_string(),
            "EAP Length field says 9 octets but only 6 were received"
        );
    }

    #[test]
    fn oversized_data_is_cut_to_fit_length() {
        let big = vec![0xAB; MAX_PACKET_LEN];
        let wire = encode(EapCode::Request, 1, Some(EapType::Tls), &big);
        assert_eq!(wire.len(), MAX_PACKET_LEN);
        let p = EapPacket::decode(&wire).unwrap();
        assert_eq!(p.type_data.len(), MAX_PACKET_LEN - 5);
    }

    #[test]
    fn code_and_type_conversions_round_trip() {
        for v in 0..=u8::MAX {
            assert_eq!(u8::from(EapCode::from(v)), v);
            assert_eq!(u8::from(EapType::from(v)), v);
        }
    }

    proptest! {
        #[test]
        fn request_response_round_trip(
            response in any::<bool>(),
            id in any::<u8>(),
            typ in any::<u8>(),
            data in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let code = if response { EapCode::Response } else { EapCode::Request };
            let typ = EapType::from(typ);
            let wire = encode(code, id, Some(typ), &data);
            let p = EapPacket::decode(&wire).unwrap();
            prop_assert_eq!(p, EapPacket { code, identifier: id, typ: Some(typ), type_data: &data });
        }

        #[test]
        fn any_code_round_trip(
            code in any::<u8>(),
            id in any::<u8>(),
            typ in any::<u8>(),
            data in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let code = EapCode::from(code);
            let wire = encode(code, id, Some(EapType::from(typ)), &data);
            let p = EapPacket::decode(&wire).unwrap();
            prop_assert_eq!(p.code, code);
            prop_assert_eq!(p.identifier, id);
            // Re-encoding what was decoded gives the same octets for every code.
            prop_assert_eq!(encode(p.code, p.identifier, p.typ, p.type_data), wire);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(p) = EapPacket::decode(&bytes) {
                prop_assert!(p.type_data.len() + HEADER_LEN <= bytes.len());
            }
        }
    }
}
