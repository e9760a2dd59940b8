//! A look into a raw RADIUS packet without decoding it: the header fields (RFC 2865 §3) and the
//! attributes (RFC 2865 §5) of a datagram as received.
//!
//! The request path asks a few questions of every datagram before it is queued (does it carry
//! State, RFC 2865 §5.24? which User-Name and Calling-Station-Id, for `--debug-filter`? its
//! Identifier and Request Authenticator, for the duplicate check of RFC 5080 §2.2.2), thousands
//! of times a second in a storm and on datagrams from anyone. So this borrows, never allocates,
//! never panics on hostile bytes, and checks only what it needs: [`Packet::decode`] does the full
//! validation (Message-Authenticator, attribute lengths, Length bounds) later, once.
//!
//! The walk follows RFC 2865 §5: each attribute is Type (1 octet), Length (1 octet, counting
//! Type and Length, so at least 2) and Value. It is bounded by the packet's Length field and by
//! the octets that arrived, whichever is less (§3: octets past Length are padding). It stops at
//! the first attribute whose Length is below 2 or runs past that bound and says so
//! ([`Attributes::is_malformed`]); such a packet will be discarded by the decoder anyway.
//!
//! [`Packet::decode`]: super::Packet::decode

use super::attr::HEADER_LEN;

/// The Code octet (RFC 2865 §3).
pub fn code(datagram: &[u8]) -> Option<u8> {
    datagram.first().copied()
}

/// The Identifier octet (RFC 2865 §3).
pub fn identifier(datagram: &[u8]) -> Option<u8> {
    datagram.get(1).copied()
}

/// The 16-octet Authenticator (RFC 2865 §3), if the header arrived whole.
pub fn authenticator(datagram: &[u8]) -> Option<[u8; 16]> {
    datagram.get(4..HEADER_LEN)?.try_into().ok()
}

/// The attributes of `datagram`, in order, as (Type, Value).
pub fn attributes(datagram: &[u8]) -> Attributes<'_> {
    let declared = match (datagram.get(2), datagram.get(3)) {
        (Some(&hi), Some(&lo)) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => 0,
    };
    match datagram.get(HEADER_LEN..declared.min(datagram.len())) {
        Some(rest) => Attributes {
            rest,
            malformed: false,
        },
        // No whole header, or a Length below the header's 20 octets.
        None => Attributes {
            rest: &[],
            malformed: true,
        },
    }
}

/// The value of the first attribute of type `typ`, if the walk reaches one.
pub fn first(datagram: &[u8], typ: u8) -> Option<&[u8]> {
    attributes(datagram).find_map(|(t, value)| (t == typ).then_some(value))
}

/// The walk over a datagram's attribute area; see the module documentation.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    rest: &'a [u8],
    malformed: bool,
}

impl Attributes<'_> {
    /// True once the walk has stopped at something that is not an attribute (or the packet had
    /// no valid header): the attributes seen so far are all there is to see.
    pub fn is_malformed(&self) -> bool {
        self.malformed
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&typ, &len) = match (self.rest.first(), self.rest.get(1)) {
            (Some(t), Some(l)) => (t, l),
            (None, _) => return None,
            // One octet left: half an attribute header.
            (Some(_), None) => return self.stop(),
        };
        let len = usize::from(len);
        // RFC 2865 §5: Length counts Type and Length; below 2 the walk cannot go on.
        let (Some(value), Some(rest)) = (self.rest.get(2..len), self.rest.get(len..)) else {
            return self.stop();
        };
        self.rest = rest;
        Some((typ, value))
    }
}

impl<'a> Attributes<'a> {
    fn stop(&mut self) -> Option<(u8, &'a [u8])> {
        self.rest = &[];
        self.malformed = true;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::attr;
    use super::*;

    /// A packet with `attrs` and a Length field that says so.
    fn packet(code: u8, attrs: &[u8]) -> Vec<u8> {
        let mut p = vec![code, 7, 0, 0];
        p.extend_from_slice(&[0xab; 16]);
        p.extend_from_slice(attrs);
        let len = u16::try_from(p.len()).unwrap().to_be_bytes();
        p[2] = len[0];
        p[3] = len[1];
        p
    }

    #[test]
    fn header_fields() {
        let p = packet(1, &[]);
        assert_eq!(code(&p), Some(1));
        assert_eq!(identifier(&p), Some(7));
        assert_eq!(authenticator(&p), Some([0xab; 16]));
        assert_eq!(authenticator(&p[..19]), None);
        assert_eq!((code(&[]), identifier(&[1])), (None, None));
    }

    #[test]
    fn walks_attributes_in_order() {
        let p = packet(1, &[1, 5, b'b', b'o', b'b', 24, 2, 31, 3, b'x']);
        let mut walk = attributes(&p);
        let seen: Vec<_> = walk.by_ref().collect();
        assert_eq!(
            seen,
            [
                (attr::USER_NAME, &b"bob"[..]),
                (attr::STATE, &b""[..]),
                (attr::CALLING_STATION_ID, &b"x"[..])
            ]
        );
        assert!(!walk.is_malformed());
        assert_eq!(first(&p, attr::CALLING_STATION_ID), Some(&b"x"[..]));
        assert_eq!(first(&p, attr::EAP_MESSAGE), None);
    }

    /// RFC 2865 §3: octets past Length are padding, not attributes; a Length past what arrived
    /// is bounded by what arrived.
    #[test]
    fn bounded_by_length_and_by_what_arrived() {
        let mut p = packet(1, &[1, 3, b'a']);
        p.extend_from_slice(&[31, 3, b'z']);
        assert_eq!(first(&p, 31), None);
        let mut walk = attributes(&p);
        assert_eq!(walk.by_ref().count(), 1);
        assert!(!walk.is_malformed());
        let truncated = &packet(1, &[1, 3, b'a', 31, 3, b'z'])[..23];
        assert_eq!(first(truncated, 1), Some(&b"a"[..]));
    }

    #[test]
    fn stops_at_what_is_not_an_attribute() {
        for attrs in [
            &[1, 3, b'a', 31, 0][..],       // Length 0
            &[1, 3, b'a', 31, 1, 9][..],    // Length 1
            &[1, 3, b'a', 31, 9, b'z'][..], // runs past the packet
            &[1, 3, b'a', 31][..],          // half a header
        ] {
            let p = packet(1, attrs);
            let mut walk = attributes(&p);
            assert_eq!(walk.by_ref().count(), 1, "{attrs:?}");
            assert!(walk.is_malformed(), "{attrs:?}");
            assert_eq!(walk.next(), None);
            assert_eq!(first(&p, 31), None, "{attrs:?}");
        }
        // No header, or a Length that does not cover it.
        for bad in [&[1u8, 2][..], &packet(1, &[])[..19], &[1, 1, 0, 19, 0, 0]] {
            let mut walk = attributes(bad);
            assert_eq!(walk.next(), None);
            assert!(walk.is_malformed(), "{bad:?}");
        }
    }

    /// Any bytes at all: no panic, and the walk never yields more than the datagram holds.
    #[test]
    fn hostile_bytes_do_not_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = usize::try_from(seed % 64).unwrap();
            let bytes: Vec<u8> = (0..len)
                .map(|i| (seed >> (i % 8 * 8)) as u8 ^ i as u8)
                .collect();
            let total: usize = attributes(&bytes).map(|(_, v)| v.len() + 2).sum();
            assert!(total <= bytes.len().saturating_sub(HEADER_LEN));
            let _ = (first(&bytes, 24), authenticator(&bytes), identifier(&bytes));
        }
    }
}
