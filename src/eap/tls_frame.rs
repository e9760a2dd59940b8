//! EAP-TLS Type-Data framing: RFC 5216 §3.1 (Flags octet and TLS Message Length) and the
//! ACK convention of §2.1.5. RFC 9190 (EAP-TLS with TLS 1.3) keeps this framing unchanged.
//!
//! ```text
//!  Flags: L M S R R R R R   [TLS Message Length, 4 octets, iff L]   [TLS Data ...]
//! ```

use thiserror::Error;

use super::packet::{EapCode, EapType, encode as encode_packet};

/// Octets an EAP-TLS fragment adds on top of its TLS data: EAP header (4), Type (1),
/// Flags (1) and TLS Message Length (4, only on the first fragment, counted always so a
/// size computed from it is safe for every fragment).
pub const TLS_HEADER_OVERHEAD: usize = 10;

const FLAG_LENGTH_INCLUDED: u8 = 0x80;
const FLAG_MORE_FRAGMENTS: u8 = 0x40;
const FLAG_START: u8 = 0x20;
const LENGTH_FIELD_LEN: usize = 4;

/// The three defined flag bits. The five reserved bits are ignored on receive and sent as
/// zero, as RFC 5216 §3.1 requires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TlsFlags {
    /// L: a 4-octet TLS Message Length follows the flags.
    pub length_included: bool,
    /// M: more fragments of this TLS message follow.
    pub more_fragments: bool,
    /// S: EAP-TLS Start, sent by the server only.
    pub start: bool,
}

impl TlsFlags {
    pub fn from_octet(octet: u8) -> Self {
        Self {
            length_included: octet & FLAG_LENGTH_INCLUDED != 0,
            more_fragments: octet & FLAG_MORE_FRAGMENTS != 0,
            start: octet & FLAG_START != 0,
        }
    }

    pub fn to_octet(self) -> u8 {
        let bit = |set: bool, mask: u8| if set { mask } else { 0 };
        bit(self.length_included, FLAG_LENGTH_INCLUDED)
            | bit(self.more_fragments, FLAG_MORE_FRAGMENTS)
            | bit(self.start, FLAG_START)
    }
}

/// Why EAP-TLS Type-Data could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The Flags octet is mandatory, even in an ACK.
    #[error("EAP-TLS packet has no Flags octet")]
    MissingFlags,
    /// L was set but the 4-octet TLS Message Length was cut short.
    #[error("EAP-TLS L flag set but only {available} of 4 TLS Message Length octets present")]
    TruncatedLength { available: usize },
}

/// One EAP-TLS packet body (the Type-Data after the Type octet 13), borrowing its TLS data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsFrame<'a> {
    pub flags: TlsFlags,
    /// Present iff `flags.length_included` after decoding. On encode this field, not the
    /// flag, decides whether L and the length are written, so the output is always
    /// well-formed.
    pub message_length: Option<u32>,
    pub data: &'a [u8],
}

impl<'a> TlsFrame<'a> {
    /// The server's EAP-TLS Start: S set, no data (RFC 5216 §2.1.1).
    pub const fn start() -> Self {
        Self {
            flags: TlsFlags {
                length_included: false,
                more_fragments: false,
                start: true,
            },
            message_length: None,
            data: &[],
        }
    }

    /// The empty frame that acknowledges a fragment (RFC 5216 §2.1.5).
    pub const fn ack() -> Self {
        Self {
            flags: TlsFlags {
                length_included: false,
                more_fragments: false,
                start: false,
            },
            message_length: None,
            data: &[],
        }
    }

    /// Parses EAP-TLS Type-Data (the octets after the EAP Type octet).
    pub fn decode(type_data: &'a [u8]) -> Result<Self, FrameError> {
        let (&flags, rest) = type_data.split_first().ok_or(FrameError::MissingFlags)?;
        let flags = TlsFlags::from_octet(flags);
        let (message_length, data) = if flags.length_included {
            let (len, data) = rest.split_first_chunk::<LENGTH_FIELD_LEN>().ok_or(
                FrameError::TruncatedLength {
                    available: rest.len(),
                },
            )?;
            (Some(u32::from_be_bytes(*len)), data)
        } else {
            (None, rest)
        };
        Ok(Self {
            flags,
            message_length,
            data,
        })
    }

    /// Appends Flags, the TLS Message Length when `message_length` is `Some`, and the data.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let flags = TlsFlags {
            length_included: self.message_length.is_some(),
            ..self.flags
        };
        out.push(flags.to_octet());
        if let Some(len) = self.message_length {
            out.extend_from_slice(&len.to_be_bytes());
        }
        out.extend_from_slice(self.data);
    }

    /// True for an empty frame with none of L, M, S set (reserved bits are already ignored):
    /// the fragment ACK of RFC 5216 §2.1.5. A peer's empty response after the server's final
    /// handshake flight has the same octets; only the state machine can tell them apart.
    pub fn is_ack(&self) -> bool {
        self.flags == TlsFlags::default() && self.message_length.is_none() && self.data.is_empty()
    }

    fn to_type_data(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(TLS_HEADER_OVERHEAD + self.data.len());
        self.encode(&mut out);
        out
    }
}

/// A whole EAP-Request/EAP-TLS packet carrying `frame`.
pub fn tls_request(identifier: u8, frame: &TlsFrame) -> Vec<u8> {
    encode_packet(
        EapCode::Request,
        identifier,
        Some(EapType::Tls),
        &frame.to_type_data(),
    )
}

/// A whole EAP-Response/EAP-TLS packet carrying `frame` (what a supplicant sends).
pub fn tls_response(identifier: u8, frame: &TlsFrame) -> Vec<u8> {
    encode_packet(
        EapCode::Response,
        identifier,
        Some(EapType::Tls),
        &frame.to_type_data(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eap::packet::EapPacket;
    use proptest::prelude::*;

    #[test]
    fn decode_without_length() {
        let f = TlsFrame::decode(&[0x40, 0x16, 0x03]).unwrap();
        assert!(f.flags.more_fragments);
        assert!(!f.flags.length_included);
        assert_eq!(f.message_length, None);
        assert_eq!(f.data, [0x16, 0x03]);
    }

    #[test]
    fn decode_with_length() {
        let f = TlsFrame::decode(&[0xC0, 0, 0, 0x05, 0xDC, 0x16, 0x03, 0x01]).unwrap();
        assert!(f.flags.length_included && f.flags.more_fragments && !f.flags.start);
        assert_eq!(f.message_length, Some(1500));
        assert_eq!(f.data, [0x16, 0x03, 0x01]);
        // L with an empty data part is still well-formed.
        let f = TlsFrame::decode(&[0x80, 0, 0, 0, 0]).unwrap();
        assert_eq!(f.message_length, Some(0));
        assert!(f.data.is_empty());
    }

    #[test]
    fn decode_errors() {
        assert_eq!(TlsFrame::decode(&[]), Err(FrameError::MissingFlags));
        assert_eq!(
            TlsFrame::decode(&[0x80, 0, 0, 1]),
            Err(FrameError::TruncatedLength { available: 3 })
        );
        assert_eq!(
            TlsFrame::decode(&[0xC0]),
            Err(FrameError::TruncatedLength { available: 0 })
        );
    }

    #[test]
    fn reserved_bits() {
        let f = TlsFrame::decode(&[0x1F]).unwrap();
        assert_eq!(f.flags, TlsFlags::default());
        assert!(f.is_ack());
        assert_eq!(TlsFlags::from_octet(0xFF).to_octet(), 0xE0);
    }

    #[test]
    fn ack_and_start() {
        assert!(TlsFrame::decode(&[0x00]).unwrap().is_ack());
        assert!(TlsFrame::ack().is_ack());
        assert!(!TlsFrame::decode(&[0x00, 0x01]).unwrap().is_ack());
        assert!(!TlsFrame::decode(&[0x20]).unwrap().is_ack());
        assert!(!TlsFrame::decode(&[0x40]).unwrap().is_ack());
        assert!(!TlsFrame::decode(&[0x80, 0, 0, 0, 0]).unwrap().is_ack());
        assert_eq!(tls_request(5, &TlsFrame::start()), [1, 5, 0, 6, 13, 0x20]);
        assert_eq!(tls_response(5, &TlsFrame::ack()), [2, 5, 0, 6, 13, 0x00]);
    }

    #[test]
    fn encode_round_trip_and_overhead() {
        let data = [1, 2, 3];
        let frame = TlsFrame {
            flags: TlsFlags {
                length_included: true,
                more_fragments: true,
                start: false,
            },
            message_length: Some(3000),
            data: &data,
        };
        let mut out = Vec::new();
        frame.encode(&mut out);
        assert_eq!(out, [0xC0, 0, 0, 0x0B, 0xB8, 1, 2, 3]);
        assert_eq!(TlsFrame::decode(&out).unwrap(), frame);

        let wire = tls_request(77, &frame);
        assert_eq!(wire.len(), TLS_HEADER_OVERHEAD + data.len());
        let p = EapPacket::decode(&wire).unwrap();
        assert_eq!(p.typ, Some(EapType::Tls));
        assert_eq!(TlsFrame::decode(p.type_data).unwrap(), frame);
    }

    #[test]
    fn message_length_decides_l_bit() {
        let frame = TlsFrame {
            flags: TlsFlags {
                length_included: true,
                ..TlsFlags::default()
            },
            message_length: None,
            data: &[9],
        };
        let mut out = Vec::new();
        frame.encode(&mut out);
        assert_eq!(out, [0x00, 9]);
    }

    fn arb_flags() -> impl Strategy<Value = (bool, bool)> {
        (any::<bool>(), any::<bool>())
    }

    proptest! {
        #[test]
        fn frame_round_trip(
            (more, start) in arb_flags(),
            len in proptest::option::of(any::<u32>()),
            data in proptest::collection::vec(any::<u8>(), 0..1600),
        ) {
            let frame = TlsFrame {
                flags: TlsFlags { length_included: len.is_some(), more_fragments: more, start },
                message_length: len,
                data: &data,
            };
            let mut out = Vec::new();
            frame.encode(&mut out);
            prop_assert_eq!(TlsFrame::decode(&out).unwrap(), frame);
        }

        #[test]
        fn flags_octet_round_trip(octet in any::<u8>()) {
            prop_assert_eq!(TlsFlags::from_octet(octet).to_octet(), octet & 0xE0);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(f) = TlsFrame::decode(&bytes) {
                prop_assert_eq!(f.flags.length_included, f.message_length.is_some());
            }
        }
    }
}
