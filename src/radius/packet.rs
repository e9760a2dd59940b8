//! RADIUS packet decoding: RFC 2865 §3 (packet format), §5 (attribute format),
//! §5.26 (Vendor-Specific sub-attributes) and RFC 3579 §3.1 (EAP-Message
//! reassembly).
//!
//! The datagram comes from the network, so every length is checked once in
//! [`Packet::decode`]; the accessors then walk an attribute area known to be well
//! formed and cannot fail.

use std::fmt;

use thiserror::Error;

use super::attr::{EAP_MESSAGE, HEADER_LEN, MAX_PACKET_LEN, VENDOR_SPECIFIC};

/// Packet type (RFC 2865 §3 "Code", §4; RFC 2866 §4 for accounting; RFC 5997 for
/// Status-Server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// 1
    AccessRequest,
    /// 2
    AccessAccept,
    /// 3
    AccessReject,
    /// 4
    AccountingRequest,
    /// 5
    AccountingResponse,
    /// 11
    AccessChallenge,
    /// 12
    StatusServer,
    /// 13
    StatusClient,
    /// Any other code; RFC 2865 §3 says such packets are silently discarded, which
    /// is the caller's decision to make.
    Unknown(u8),
}

impl From<u8> for Code {
    fn from(value: u8) -> Self {
        match value {
            1 => Self::AccessRequest,
            2 => Self::AccessAccept,
            3 => Self::AccessReject,
            4 => Self::AccountingRequest,
            5 => Self::AccountingResponse,
            11 => Self::AccessChallenge,
            12 => Self::StatusServer,
            13 => Self::StatusClient,
            other => Self::Unknown(other),
        }
    }
}

impl From<Code> for u8 {
    fn from(code: Code) -> Self {
        match code {
            Code::AccessRequest => 1,
            Code::AccessAccept => 2,
            Code::AccessReject => 3,
            Code::AccountingRequest => 4,
            Code::AccountingResponse => 5,
            Code::AccessChallenge => 11,
            Code::StatusServer => 12,
            Code::StatusClient => 13,
            Code::Unknown(other) => other,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::AccessRequest => "Access-Request",
            Self::AccessAccept => "Access-Accept",
            Self::AccessReject => "Access-Reject",
            Self::AccountingRequest => "Accounting-Request",
            Self::AccountingResponse => "Accounting-Response",
            Self::AccessChallenge => "Access-Challenge",
            Self::StatusServer => "Status-Server",
            Self::StatusClient => "Status-Client",
            Self::Unknown(code) => return write!(f, "unknown code {code}"),
        };
        f.write_str(name)
    }
}

/// One attribute as it appears on the wire (RFC 2865 §5): its type and its value
/// (without the Type and Length octets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// Attribute type (or vendor type, for Vendor-Specific sub-attributes).
    pub typ: u8,
    /// Value octets.
    pub value: &'a [u8],
}

/// Why a received datagram is not a well-formed RADIUS packet. Each variant
/// describes what the sender did wrong; offsets count from the start of the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The datagram cannot even hold the 20-octet header.
    #[error("datagram of {len} octets is shorter than the 20-octet RADIUS header")]
    TooShort {
        /// Octets received.
        len: usize,
    },
    /// The Length field is below 20 or claims more octets than were received
    /// (RFC 2865 §3: such packets MUST be silently discarded).
    #[error(
        "Length field says {declared} octets but {received} were received (valid: 20..=received)"
    )]
    BadLength {
        /// Value of the Length field.
        declared: usize,
        /// Octets in the datagram.
        received: usize,
    },
    /// The Length field exceeds the 4096-octet maximum of RFC 2865 §3.
    #[error("Length field says {declared} octets, above the RADIUS maximum of 4096")]
    TooLong {
        /// Value of the Length field.
        declared: usize,
    },
    /// An attribute's Length octet is below 2, the size of its own header.
    #[error("attribute at offset {offset} has Length {length}, below the minimum of 2")]
    AttributeTooShort {
        /// Offset of the attribute's Type octet.
        offset: usize,
        /// Its Length octet.
        length: u8,
    },
    /// An attribute runs past the end of the packet (as given by its Length field).
    #[error(
        "attribute at offset {offset} needs {needed} octets but only {remaining} remain in the packet"
    )]
    AttributeOverrun {
        /// Offset of the attribute's Type octet.
        offset: usize,
        /// Octets the attribute needs (2 if its Length octet itself is missing).
        needed: usize,
        /// Octets left in the packet from `offset`.
        remaining: usize,
    },
}

/// A decoded RADIUS packet borrowing the received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    code: Code,
    identifier: u8,
    authenticator: [u8; 16],
    /// Exactly `Length` octets: header followed by the validated attribute area.
    raw: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Decodes and validates a received datagram (RFC 2865 §3, §5).
    ///
    /// Octets beyond the Length field are padding and ignored (RFC 2865 §3); a
    /// datagram shorter than Length is an error. Every attribute is checked to
    /// have a Length of at least 2 and to fit inside the packet.
    pub fn decode(datagram: &'a [u8]) -> Result<Self, DecodeError> {
        let Some((header, _)) = datagram.split_first_chunk::<HEADER_LEN>() else {
            return Err(DecodeError::TooShort {
                len: datagram.len(),
            });
        };
        let [code, identifier, len_hi, len_lo, auth @ ..] = *header;
        let declared = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        if declared > MAX_PACKET_LEN {
            return Err(DecodeError::TooLong { declared });
        }
        let bad_length = DecodeError::BadLength {
            declared,
            received: datagram.len(),
        };
        if declared < HEADER_LEN {
            return Err(bad_length);
        }
        let Some((raw, _padding)) = datagram.split_at_checked(declared) else {
            return Err(bad_length);
        };
        let Some((_, area)) = raw.split_at_checked(HEADER_LEN) else {
            return Err(bad_length);
        };
        validate_attributes(area, HEADER_LEN)?;
        Ok(Self {
            code: Code::from(code),
            identifier,
            authenticator: auth,
            raw,
        })
    }

    /// Packet type.
    pub fn code(&self) -> Code {
        self.code
    }

    /// Identifier used to match responses to requests (RFC 2865 §3).
    pub fn identifier(&self) -> u8 {
        self.identifier
    }

    /// The Authenticator field (Request or Response Authenticator).
    pub fn authenticator(&self) -> &[u8; 16] {
        &self.authenticator
    }

    /// The whole packet, exactly `Length` octets (padding removed).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The attribute area after the 20-octet header.
    fn attribute_area(&self) -> &'a [u8] {
        self.raw.get(HEADER_LEN..).unwrap_or_default()
    }

    /// All attributes in wire order.
    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'a>> + use<'a> {
        Attributes {
            rest: self.attribute_area(),
        }
    }

    /// Value of the first attribute of type `typ`.
    pub fn first(&self, typ: u8) -> Option<&'a [u8]> {
        self.attributes().find(|a| a.typ == typ).map(|a| a.value)
    }

    /// Number of attributes of type `typ`.
    pub fn count(&self, typ: u8) -> usize {
        self.attributes().filter(|a| a.typ == typ).count()
    }

    /// The EAP packet carried in this RADIUS packet: all EAP-Message values joined
    /// in order (RFC 3579 §3.1). `None` if there is no EAP-Message attribute.
    pub fn eap_message(&self) -> Option<Vec<u8>> {
        let parts = || self.attributes().filter(|a| a.typ == EAP_MESSAGE);
        parts().next()?;
        // One allocation of the right size and a copy per attribute: the values of a
        // full-sized request are 1.4 KB, which byte by byte grew a vector nine times.
        let mut eap = Vec::with_capacity(parts().map(|a| a.value.len()).sum());
        for part in parts() {
            eap.extend_from_slice(part.value);
        }
        Some(eap)
    }

    /// Sub-attributes of every Vendor-Specific attribute (RFC 2865 §5.26) whose
    /// Vendor-Id is `vendor`, in order, assuming the recommended format of a
    /// one-octet vendor type and a one-octet vendor length (which counts both).
    ///
    /// A Vendor-Specific attribute whose contents do not follow that format yields
    /// nothing at all, rather than a prefix of possibly misparsed sub-attributes:
    /// vendor formats vary and are not a reason to reject the packet.
    pub fn vendor_attributes(&self, vendor: u32) -> impl Iterator<Item = Attribute<'a>> + use<'a> {
        self.attributes()
            .filter(|a| a.typ == VENDOR_SPECIFIC)
            .filter_map(move |a| {
                let (id, subs) = a.value.split_first_chunk::<4>()?;
                if u32::from_be_bytes(*id) != vendor {
                    return None;
                }
                validate_attributes(subs, 0).ok()?;
                Some(Attributes { rest: subs })
            })
            .flatten()
    }
}

/// Checks that `area` is a sequence of well-formed type/length/value triples.
/// `base` is the offset of `area` in the packet, for error messages.
fn validate_attributes(mut area: &[u8], base: usize) -> Result<(), DecodeError> {
    let mut offset = base;
    while !area.is_empty() {
        let remaining = area.len();
        let Some(&[_, length]) = area.first_chunk::<2>() else {
            return Err(DecodeError::AttributeOverrun {
                offset,
                needed: 2,
                remaining,
            });
        };
        if length < 2 {
            return Err(DecodeError::AttributeTooShort { offset, length });
        }
        let needed = usize::from(length);
        let Some((_, rest)) = area.split_at_checked(needed) else {
            return Err(DecodeError::AttributeOverrun {
                offset,
                needed,
                remaining,
            });
        };
        area = rest;
        offset = offset.saturating_add(needed);
    }
    Ok(())
}

/// Iterator over an attribute area that [`validate_attributes`] accepted. Should
/// the area be malformed anyway, iteration simply stops.
struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&[typ, length], _) = self.rest.split_first_chunk::<2>()?;
        let Some((attribute, rest)) = self.rest.split_at_checked(usize::from(length)) else {
            self.rest = &[];
            return None;
        };
        self.rest = rest;
        let value = attribute.get(2..)?;
        Some(Attribute { typ, value })
    }
}

/// RFC 2865 §7 example packets (shared secret "xyzzy5461"), shared with the tests
/// of the other modules.
#[cfg(test)]
pub(crate) mod rfc2865_examples {
    /// RFC 2865 §7.1 (User Telnet to Specified Host): the Access-Request from NAS
    /// 192.168.1.16 port 3 for user "nemo" with password "arctangent".
    pub const REQUEST_7_1: &str = "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
        98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d
        93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8
        01 10 05 06 00 00 00 03";
    /// RFC 2865 §7.1: the Access-Accept answering [`REQUEST_7_1`] (Service-Type
    /// Login, Login-Service Telnet, Login-IP-Host 192.168.1.3).
    pub const ACCEPT_7_1: &str = "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf
        9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00
        0e 06 c0 a8 01 03";
    /// RFC 2865 §7.2 (Framed User Authenticating with CHAP): Access-Request for
    /// "flopsy" with CHAP-Password, NAS 192.168.1.16 port 20, Framed/PPP hints.
    pub const REQUEST_7_2: &str = "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e
        0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9
        75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75 04
        06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00
        02 07 06 00 00 00 01";
    /// RFC 2865 §7.2: the Access-Accept answering [`REQUEST_7_2`]. (RFC errata
    /// 1469: the text lists Framed-Routing None but the dump carries 2.)
    pub const ACCEPT_7_2: &str = "02 01 00 38 15 ef bc 7d ab 26 cf a3 dc 34 d9 c0
        3c 86 01 a4 06 06 00 00 00 02 07 06 00 00 00 01
        08 06 ff ff ff fe 0a 06 00 00 00 02 0d 06 00 00
        00 01 0c 06 00 00 05 dc";

    /// Parses whitespace-separated hex octets.
    pub fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::rfc2865_examples::*;
    use super::*;
    use crate::radius::attr::*;
    use proptest::prelude::*;

    fn attrs(p: &Packet<'_>) -> Vec<(u8, Vec<u8>)> {
        p.attributes().map(|a| (a.typ, a.value.to_vec())).collect()
    }

    #[test]
    fn code_round_trip() {
        for n in 0..=255u8 {
            assert_eq!(u8::from(Code::from(n)), n);
        }
        assert_eq!(Code::from(11), Code::AccessChallenge);
        assert_eq!(Code::from(6), Code::Unknown(6));
        assert_eq!(Code::AccessRequest.to_string(), "Access-Request");
    }

    /// RFC 2865 §7.1 Access-Request.
    #[test]
    fn rfc2865_7_1_request() {
        let bytes = hex(REQUEST_7_1);
        let p = Packet::decode(&bytes).unwrap();
        assert_eq!(p.code(), Code::AccessRequest);
        assert_eq!(p.identifier(), 0);
        assert_eq!(p.raw().len(), 56);
        assert_eq!(
            p.authenticator(),
            &[
                0x0f, 0x40, 0x3f, 0x94, 0x73, 0x97, 0x80, 0x57, 0xbd, 0x83, 0xd5, 0xcb, 0x98, 0xf4,
                0x22, 0x7a
            ]
        );
        let a = attrs(&p);
        assert_eq!(a.len(), 4);
        assert_eq!(p.first(USER_NAME), Some(&b"nemo"[..]));
        assert_eq!(p.first(USER_PASSWORD).map(<[u8]>::len), Some(16));
        assert_eq!(p.first(NAS_IP_ADDRESS), Some(&[192, 168, 1, 16][..]));
        assert_eq!(p.first(NAS_PORT), Some(&[0, 0, 0, 3][..]));
        assert_eq!(p.count(USER_NAME), 1);
        assert_eq!(p.count(EAP_MESSAGE), 0);
        assert_eq!(p.eap_message(), None);
        assert_eq!(p.first(MESSAGE_AUTHENTICATOR), None);
    }

    /// RFC 2865 §7.1 Access-Accept.
    #[test]
    fn rfc2865_7_1_accept() {
        let bytes = hex(ACCEPT_7_1);
        let p = Packet::decode(&bytes).unwrap();
        assert_eq!(p.code(), Code::AccessAccept);
        assert_eq!(p.identifier(), 0);
        assert_eq!(
            attrs(&p),
            vec![
                (SERVICE_TYPE, vec![0, 0, 0, 1]),
                (15, vec![0, 0, 0, 0]),
                (14, vec![192, 168, 1, 3]),
            ]
        );
    }

    /// RFC 2865 §7.2 Access-Request and Access-Accept.
    #[test]
    fn rfc2865_7_2() {
        let req = hex(REQUEST_7_2);
        let p = Packet::decode(&req).unwrap();
        assert_eq!(p.code(), Code::AccessRequest);
        assert_eq!(p.identifier(), 1);
        assert_eq!(p.first(USER_NAME), Some(&b"flopsy"[..]));
        // CHAP-Password: CHAP ident + 16-octet response.
        assert_eq!(p.first(3).map(<[u8]>::len), Some(17));
        assert_eq!(p.first(NAS_PORT), Some(&[0, 0, 0, 20][..]));
        assert_eq!(p.first(SERVICE_TYPE), Some(&[0, 0, 0, 2][..]));
        assert_eq!(attrs(&p).len(), 6);

        let acc = hex(ACCEPT_7_2);
        let p = Packet::decode(&acc).unwrap();
        assert_eq!(p.code(), Code::AccessAccept);
        assert_eq!(p.identifier(), 1);
        assert_eq!(p.first(8), Some(&[255, 255, 255, 254][..]));
        assert_eq!(p.first(FRAMED_MTU), Some(&[0, 0, 5, 0xdc][..]));
        assert_eq!(attrs(&p).len(), 6);
    }

    #[test]
    fn padding_is_ignored() {
        let mut bytes = hex(ACCEPT_7_1);
        let len = bytes.len();
        bytes.extend_from_slice(&[0xff; 7]);
        let p = Packet::decode(&bytes).unwrap();
        assert_eq!(p.raw().len(), len);
        assert_eq!(attrs(&p).len(), 3);
    }

    #[test]
    fn header_errors() {
        assert_eq!(
            Packet::decode(&[1; 19]),
            Err(DecodeError::TooShort { len: 19 })
        );
        let mut p = vec![1u8, 0, 0, 19];
        p.extend_from_slice(&[0; 16]);
        assert_eq!(
            Packet::decode(&p),
            Err(DecodeError::BadLength {
                declared: 19,
                received: 20
            })
        );
        p[3] = 21;
        assert_eq!(
            Packet::decode(&p),
            Err(DecodeError::BadLength {
                declared: 21,
                received: 20
            })
        );
        p[2] = 0x10;
        p[3] = 0x01;
        assert_eq!(
            Packet::decode(&p),
            Err(DecodeError::TooLong { declared: 4097 })
        );
        p[2] = 0;
        p[3] = 20;
        assert!(Packet::decode(&p).unwrap().attributes().next().is_none());
    }

    #[test]
    fn attribute_errors() {
        let mut p = vec![1u8, 0, 0, 24];
        p.extend_from_slice(&[0; 16]);
        p.extend_from_slice(&[1, 1, 0, 0]);
        assert_eq!(
            Packet::decode(&p),
            Err(DecodeError::AttributeTooShort {
                offset: 20,
                length: 1
            })
        );
        p[21] = 5;
        assert_eq!(
            Packet::decode(&p),
            Err(DecodeError::AttributeOverrun {
                offset: 20,
                needed: 5,
                remaining: 4
            })
        );
        // A lone Type octet at the end: the Length octet is missing.
        p[21] = 3;
        assert_eq!(
            Packet::decode(&p),
            Err(DecodeError::AttributeOverrun {
                offset: 23,
                needed: 2,
                remaining: 1
            })
        );
        // Zero-length value is fine.
        p[21] = 2;
        p[23] = 2;
        p[22] = 7;
        assert_eq!(
            attrs(&Packet::decode(&p).unwrap()),
            vec![(1, vec![]), (7, vec![])]
        );
        // Display reads as a log line.
        let e = DecodeError::AttributeOverrun {
            offset: 20,
            needed: 5,
            remaining: 4,
        };
        assert_eq!(
            e.to_string(),
            "attribute at offset 20 needs 5 octets but only 4 remain in the packet"
        );
    }

    fn packet_with(attributes: &[(u8, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (t, v) in attributes {
            body.push(*t);
            body.push(u8::try_from(v.len() + 2).unwrap());
            body.extend_from_slice(v);
        }
        let len = u16::try_from(20 + body.len()).unwrap();
        let mut p = vec![2u8, 9];
        p.extend_from_slice(&len.to_be_bytes());
        p.extend_from_slice(&[0; 16]);
        p.extend_from_slice(&body);
        p
    }

    #[test]
    fn eap_message_joins_in_order() {
        let bytes = packet_with(&[
            (EAP_MESSAGE, b"abc"),
            (USER_NAME, b"x"),
            (EAP_MESSAGE, b""),
            (EAP_MESSAGE, b"def"),
        ]);
        let p = Packet::decode(&bytes).unwrap();
        assert_eq!(p.eap_message(), Some(b"abcdef".to_vec()));
        assert_eq!(p.count(EAP_MESSAGE), 3);
        let bytes = packet_with(&[(EAP_MESSAGE, b"")]);
        assert_eq!(Packet::decode(&bytes).unwrap().eap_message(), Some(vec![]));
    }

    #[test]
    fn vendor_attributes_parse_and_tolerate_garbage() {
        let ms = VENDOR_MICROSOFT.to_be_bytes();
        let mut good = ms.to_vec();
        good.extend_from_slice(&[MS_MPPE_SEND_KEY, 5, 1, 2, 3, MS_MPPE_RECV_KEY, 2]);
        let mut bad = ms.to_vec();
        bad.extend_from_slice(&[9, 2, 10, 9, 1]); // second sub-attribute overruns
        let mut other_vendor = 9u32.to_be_bytes().to_vec();
        other_vendor.extend_from_slice(&[1, 3, 7]);
        let mut last = ms.to_vec();
        last.extend_from_slice(&[4, 3, 42]);
        let bytes = packet_with(&[
            (VENDOR_SPECIFIC, &good),
            (VENDOR_SPECIFIC, &bad),
            (VENDOR_SPECIFIC, &other_vendor),
            (VENDOR_SPECIFIC, &[0, 0, 1]), // too short for a Vendor-Id
            (USER_NAME, b"u"),
            (VENDOR_SPECIFIC, &last),
        ]);
        let p = Packet::decode(&bytes).unwrap();
        let got: Vec<_> = p
            .vendor_attributes(VENDOR_MICROSOFT)
            .map(|a| (a.typ, a.value.to_vec()))
            .collect();
        assert_eq!(
            got,
            vec![
                (MS_MPPE_SEND_KEY, vec![1, 2, 3]),
                (MS_MPPE_RECV_KEY, vec![]),
                (4, vec![42]),
            ]
        );
        assert_eq!(p.vendor_attributes(9).count(), 1);
        assert_eq!(p.vendor_attributes(1).count(), 0);
    }

    fn exercise(p: &Packet<'_>) {
        let _ = (p.code(), p.identifier(), p.authenticator(), p.raw());
        let n = p.attributes().count();
        let total: usize = p.attributes().map(|a| a.value.len() + 2).sum();
        assert_eq!(total + 20, p.raw().len());
        assert!(n <= (p.raw().len() - 20) / 2);
        let _ = p.first(EAP_MESSAGE);
        let _ = p.count(VENDOR_SPECIFIC);
        let _ = p.eap_message();
        let _ = p.vendor_attributes(VENDOR_MICROSOFT).count();
    }

    proptest! {
        /// Hostile input: decoding arbitrary bytes never panics, and anything it
        /// accepts can be fully walked.
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
            if let Ok(p) = Packet::decode(&bytes) {
                exercise(&p);
            }
        }

        /// Same with a consistent Length field so the attribute walker is reached.
        #[test]
        fn decode_never_panics_with_valid_length(
            mut bytes in proptest::collection::vec(any::<u8>(), 20..4200),
            vsa in any::<bool>(),
        ) {
            let len = u16::try_from(bytes.len().min(4096)).unwrap().to_be_bytes();
            bytes[2] = len[0];
            bytes[3] = len[1];
            if vsa && bytes.len() >= 26 {
                // Steer towards a Vendor-Specific with the Microsoft vendor id.
                bytes[20] = VENDOR_SPECIFIC;
                bytes[22..26].copy_from_slice(&VENDOR_MICROSOFT.to_be_bytes());
            }
            if let Ok(p) = Packet::decode(&bytes) {
                exercise(&p);
            }
        }
    }
}
