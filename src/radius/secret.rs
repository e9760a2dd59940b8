//! The RADIUS shared secret (RFC 2865 §3, "Authenticator"; §8 on its secrecy).
//!
//! The secret keys every authenticator and the MS-MPPE key encryption, so it must
//! never reach a log line: its `Debug` output is redacted.
//!
//! It also holds an HMAC-MD5 already keyed with it (RFC 2104 §2: the key's inner and outer
//! pads hashed once), which every Message-Authenticator (RFC 3579 §3.2) starts from: two MD5
//! blocks fewer per packet than keying a new one each time.

use std::fmt;

use hmac::KeyInit;

use super::auth::HmacMd5;

/// A RADIUS shared secret between this server and one client (NAS).
#[derive(Clone)]
pub struct SharedSecret {
    bytes: Vec<u8>,
    keyed: HmacMd5,
}

impl SharedSecret {
    /// Wraps the secret octets.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        let bytes = bytes.into();
        let keyed = match <HmacMd5 as KeyInit>::new_from_slice(&bytes) {
            Ok(mac) => mac,
            // Unreachable for HMAC, which takes keys of any length; an all-zero key still
            // yields a MAC that will not verify against a real secret.
            Err(_) => <HmacMd5 as KeyInit>::new(&Default::default()),
        };
        Self { bytes, keyed }
    }

    /// The secret octets, for keying MD5/HMAC-MD5.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A fresh HMAC-MD5 keyed with the secret, nothing absorbed yet.
    pub(crate) fn hmac_md5(&self) -> HmacMd5 {
        self.keyed.clone()
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

    #[test]
    fn the_keyed_hmac_is_rfc_2104_hmac_md5_and_starts_fresh_each_time() {
        use hmac::Mac;
        // RFC 2104 Appendix / RFC 2202 §2, test case 2.
        let s = SharedSecret::new("Jefe");
        for _ in 0..2 {
            let mut mac = s.hmac_md5();
            mac.update(b"what do ya want for nothing?");
            assert_eq!(
                crate::hex::lower(&mac.finalize().into_bytes()),
                "750c783e6ab0b503eaa86e310a5db738"
            );
        }
    }
}
