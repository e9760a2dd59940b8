//! Sans-IO framing of RADIUS over a byte stream (RFC 6613 §2.1 RADIUS/TCP, RFC 6614 §2.1
//! RadSec): packets follow each other with no other delimiter, so the Length field (octets 2-3,
//! RFC 2865 §3) says where one ends. A Length below 20 or above 4096 cannot be resynchronised
//! from, so the connection must be closed (RFC 6613 §2.6.4).
//!
//! Memory follows what arrived: the buffer grows only with received octets and never past one
//! packet of at most 4096 octets plus what one read delivered; nothing is reserved from the
//! announced Length.

/// RFC 2865 §3: the smallest and largest RADIUS packets.
pub const MIN_PACKET: usize = 20;
pub const MAX_PACKET: usize = 4096;

/// Why a stream must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("RADIUS Length {0} is outside 20..=4096")]
    BadLength(usize),
}

/// Accumulates octets from the stream and hands out whole packets.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Set once a bad Length was seen: nothing more is framed.
    broken: bool,
}

impl Framer {
    pub fn new() -> Self {
        Framer::default()
    }

    /// Appends octets read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if !self.broken {
            self.buf.extend_from_slice(data);
        }
    }

    /// Octets held that do not yet make a whole packet (a peer closing now closed mid-packet).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next whole packet, `Ok(None)` if more octets are needed, or an error after which the
    /// connection must be closed.
    pub fn next_packet(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if self.broken {
            return Err(FrameError::BadLength(0));
        }
        let (Some(&hi), Some(&lo)) = (self.buf.get(2), self.buf.get(3)) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if !(MIN_PACKET..=MAX_PACKET).contains(&len) {
            self.broken = true;
            self.buf = Vec::new();
            return Err(FrameError::BadLength(len));
        }
        if self.buf.len() < len {
            return Ok(None);
        }
        let rest = self.buf.split_off(len);
        let packet = std::mem::replace(&mut self.buf, rest);
        Ok(Some(packet))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(len: u16, fill: u8) -> Vec<u8> {
        let mut p = vec![fill; usize::from(len)];
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p
    }

    #[test]
    fn two_packets_in_one_read() {
        let mut f = Framer::new();
        let mut data = packet(20, 1);
        data.extend(packet(30, 2));
        f.push(&data);
        assert_eq!(f.next_packet().unwrap().unwrap(), packet(20, 1));
        assert_eq!(f.next_packet().unwrap().unwrap(), packet(30, 2));
        assert_eq!(f.next_packet().unwrap(), None);
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn one_byte_at_a_time() {
        let mut f = Framer::new();
        let p = packet(4096, 7);
        for (i, b) in p.iter().enumerate() {
            f.push(&[*b]);
            let got = f.next_packet().unwrap();
            if i + 1 < p.len() {
                assert!(got.is_none());
            } else {
                assert_eq!(got.unwrap(), p);
            }
        }
    }

    #[test]
    fn bad_lengths_close() {
        for len in [0u16, 19, 4097, 65535] {
            let mut f = Framer::new();
            f.push(&[1, 0]);
            f.push(&len.to_be_bytes());
            assert_eq!(
                f.next_packet(),
                Err(FrameError::BadLength(usize::from(len)))
            );
            assert!(f.next_packet().is_err());
            assert_eq!(f.pending(), 0);
        }
    }
}
