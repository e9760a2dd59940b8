//! The RADIUS shared secret (RFC 2865 §3, "Authenticator"; §8 on its secrecy).
//!
//! The secret keys every authenticator and the MS-MPPE key encryption, so it must
//! never reach a log line: its `Debug` output is redacted.

use std::fmt;

/// A RADIUS shared secret between this server and one client (NAS).
#[derive(Clone)]
pub struct SharedSecret(Vec<u8>);

impl SharedSecret {
    /// Wraps the secret octets.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The secret octets, for keying MD5/HMAC-MD5.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Deliberately hides both the content and the length of the secret.
        f.write_str("SharedSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SharedSecret::new("xyzzy5461");
        assert_eq!(format!("{s:?}"), "SharedSecret(<redacted>)");
        assert_eq!(s.clone().as_bytes(), b"xyzzy5461");
        assert_eq!(SharedSecret::new(vec![1u8, 2]).as_bytes(), &[1, 2]);
    }
}
