//! Graceful drain on SIGTERM/SIGINT: which datagrams may still be served.
//!
//! While draining, an Access-Request (RFC 2865 §4.1) without a State attribute (RFC 2865 §5.24)
//! would start a new conversation: it is dropped silently and counted (`drain_dropped`), so the
//! NAS retransmits or fails over to another server (RFC 5080 §2.2.1) rather than getting an
//! Access-Reject that would lock the supplicant out. Access-Requests carrying State continue
//! conversations in flight and Status-Server (RFC 5997) is still answered.

use crate::radius::{Code, attr, peek};

/// True when the datagram is an Access-Request without State. A malformed datagram (no whole
/// header, or an attribute that does not fit) answers false: the core drops and counts it as
/// usual.
pub fn starts_conversation(datagram: &[u8]) -> bool {
    if peek::code(datagram) != Some(u8::from(Code::AccessRequest)) {
        return false;
    }
    let mut attributes = peek::attributes(datagram);
    let has_state = attributes.by_ref().any(|(typ, _)| typ == attr::STATE);
    !has_state && !attributes.is_malformed()
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

    #[test]
    fn malformed_access_requests_are_left_to_the_core() {
        // State after a broken attribute is not seen; the datagram is not a new conversation
        // either: the core discards it as malformed_packet.
        assert!(!starts_conversation(&packet(1, &[1, 1, 24, 4, 9, 9])));
        assert!(!starts_conversation(&packet(1, &[1, 9, b'a'])));
        assert!(!starts_conversation(&packet(1, &[])[..19]));
    }
}
