//! Graceful drain on SIGTERM/SIGINT: which datagrams may still be served.
//!
//! While draining, an Access-Request (RFC 2865 §4.1) without a State attribute (RFC 2865 §5.24)
//! would start a new conversation: it is dropped silently and counted (`drain_dropped`), so the
//! NAS retransmits or fails over to another server (RFC 5080 §2.2.1) rather than getting an
//! Access-Reject that would lock the supplicant out. Access-Requests carrying State continue
//! conversations in flight and Status-Server (RFC 5997) is still answered.

const ACCESS_REQUEST: u8 = 1;
const STATE: u8 = 24;

/// True when the datagram is an Access-Request without State. A malformed datagram answers
/// false: the core drops and counts it as usual.
pub fn starts_conversation(datagram: &[u8]) -> bool {
    if datagram.first() != Some(&ACCESS_REQUEST) {
        return false;
    }
    let declared = match (datagram.get(2), datagram.get(3)) {
        (Some(&hi), Some(&lo)) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => return false,
    };
    let mut attrs = datagram
        .get(20..declared.min(datagram.len()))
        .unwrap_or(&[]);
    while let (Some(&typ), Some(&len)) = (attrs.first(), attrs.get(1)) {
        if typ == STATE {
            return false;
        }
        let len = usize::from(len);
        if len < 2 {
            return false;
        }
        attrs = attrs.get(len..).unwrap_or(&[]);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(code: u8, attrs: &[u8]) -> Vec<u8> {
        let mut p = vec![code, 1, 0, 0];
        p.extend_from_slice(&[0; 16]);
        p.extend_from_slice(attrs);
        let len = u16::try_from(p.len()).unwrap().to_be_bytes();
        p[2] = len[0];
        p[3] = len[1];
        p
    }

    #[test]
    fn only_new_access_requests_are_refused() {
        assert!(starts_conversation(&packet(1, &[1, 5, b'a', b'b', b'c'])));
        assert!(!starts_conversation(&packet(1, &[1, 3, b'a', 24, 4, 9, 9])));
        assert!(!starts_conversation(&packet(12, &[])));
        assert!(!starts_conversation(&[1, 2]));
    }
}
