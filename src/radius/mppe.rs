//! MS-MPPE-Send-Key / MS-MPPE-Recv-Key value encryption (RFC 2548 §2.4.2 and
//! §2.4.3, which share one construction).
//!
//! The value is `Salt (2 octets) || C`, where C encrypts
//! `P = Key-Length (1 octet) || Key || zero padding` (padded to a multiple of 16)
//! block by block:
//! `b(1) = MD5(S + R + A)`, `b(i) = MD5(S + c(i-1))`, `c(i) = p(i) XOR b(i)`,
//! with S the shared secret, R the Request Authenticator of the Access-Request
//! being answered and A the salt.

use md5::{Digest, Md5};
use thiserror::Error;

use super::secret::SharedSecret;

const BLOCK: usize = 16;

/// Why an MS-MPPE key value could not be decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum MppeError {
    /// Shorter than a salt and one 16-octet block.
    #[error("MS-MPPE key value of {len} octets is shorter than salt plus one 16-octet block")]
    TooShort {
        /// Octets in the attribute value.
        len: usize,
    },
    /// The encrypted part is not a whole number of 16-octet blocks.
    #[error("MS-MPPE key value of {len} octets: encrypted part is not a multiple of 16")]
    NotBlockAligned {
        /// Octets in the attribute value.
        len: usize,
    },
    /// The salt's most significant bit is clear (RFC 2548 §2.4.2: it MUST be set).
    #[error("MS-MPPE key salt does not have its most significant bit set")]
    SaltHighBitClear,
    /// The decrypted Key-Length octet claims more key octets than were sent
    /// (usually a wrong shared secret or request authenticator).
    #[error("MS-MPPE Key-Length says {declared} octets but only {available} were sent")]
    BadKeyLength {
        /// Decrypted Key-Length octet.
        declared: usize,
        /// Octets available after the Key-Length octet.
        available: usize,
    },
}

/// Keystream block `b(i)`: MD5 over the secret and the given chaining input(s).
fn keystream(secret: &SharedSecret, parts: &[&[u8]]) -> [u8; BLOCK] {
    let mut md5 = Md5::new();
    md5.update(secret.as_bytes());
    for part in parts {
        md5.update(part);
    }
    md5.finalize().into()
}

/// Encrypts an MPPE key for an MS-MPPE-Send-Key or MS-MPPE-Recv-Key attribute
/// value (RFC 2548 §2.4.2). Returns `salt || ciphertext`.
///
/// The most significant bit of `salt[0]` is forced on as RFC 2548 requires. The
/// caller must give each encrypted attribute in one packet a different salt.
/// The Key-Length field is one octet, so a key longer than 255 octets is cut to
/// 255 (MPPE keys are 16 or 32 octets; note that only keys up to 239 octets fit
/// a 253-octet attribute value).
pub fn encrypt_key(
    key: &[u8],
    secret: &SharedSecret,
    request_authenticator: &[u8; 16],
    salt: [u8; 2],
) -> Vec<u8> {
    let key = key.get(..usize::from(u8::MAX)).unwrap_or(key);
    let key_len = u8::try_from(key.len()).unwrap_or(u8::MAX);
    let [s0, s1] = salt;
    let salt = [s0 | 0x80, s1];

    let mut plaintext = Vec::with_capacity(key.len().saturating_add(BLOCK));
    plaintext.push(key_len);
    plaintext.extend_from_slice(key);
    let padded = plaintext.len().div_ceil(BLOCK).saturating_mul(BLOCK);
    plaintext.resize(padded, 0);

    let mut out = Vec::with_capacity(padded.saturating_add(2));
    out.extend_from_slice(&salt);
    let mut b = keystream(secret, &[request_authenticator, &salt]);
    for p in plaintext.chunks(BLOCK) {
        let mut c = [0u8; BLOCK];
        for ((c, p), b) in c.iter_mut().zip(p).zip(b) {
            *c = p ^ b;
        }
        out.extend_from_slice(&c);
        b = keystream(secret, &[&c]);
    }
    out
}

/// Decrypts an MS-MPPE-Send-Key or MS-MPPE-Recv-Key attribute value
/// (RFC 2548 §2.4.2) and returns the key, whose length comes from the decrypted
/// Key-Length octet. Padding content is not checked.
pub fn decrypt_key(
    value: &[u8],
    secret: &SharedSecret,
    request_authenticator: &[u8; 16],
) -> Result<Vec<u8>, MppeError> {
    let len = value.len();
    let Some((salt, ciphertext)) = value.split_first_chunk::<2>() else {
        return Err(MppeError::TooShort { len });
    };
    if ciphertext.len() < BLOCK {
        return Err(MppeError::TooShort { len });
    }
    if ciphertext.len() % BLOCK != 0 {
        return Err(MppeError::NotBlockAligned { len });
    }
    if salt[0] & 0x80 == 0 {
        return Err(MppeError::SaltHighBitClear);
    }

    let mut plaintext = Vec::with_capacity(ciphertext.len());
    let mut b = keystream(secret, &[request_authenticator, salt]);
    for c in ciphertext.chunks(BLOCK) {
        plaintext.extend(c.iter().zip(b).map(|(c, b)| c ^ b));
        b = keystream(secret, &[c]);
    }

    let Some((&key_len, rest)) = plaintext.split_first() else {
        return Err(MppeError::TooShort { len });
    };
    let declared = usize::from(key_len);
    rest.get(..declared)
        .map(<[u8]>::to_vec)
        .ok_or(MppeError::BadKeyLength {
            declared,
            available: rest.len(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secret() -> SharedSecret {
        SharedSecret::new("testing123")
    }

    const RA: [u8; 16] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ];

    #[test]
    fn round_trip_32_octet_key() {
        let key: Vec<u8> = (0..32).collect();
        let v = encrypt_key(&key, &secret(), &RA, [0x01, 0x02]);
        assert_eq!(v.len(), 2 + 48);
        assert_eq!(v[0], 0x81, "salt high bit set");
        assert_eq!(v[1], 0x02);
        assert_eq!(decrypt_key(&v, &secret(), &RA).unwrap(), key);
        // Another salt gives another ciphertext.
        let w = encrypt_key(&key, &secret(), &RA, [0x81, 0x03]);
        assert_ne!(v[2..], w[2..]);
    }

    /// Known answer computed independently with a Python `hashlib` implementation
    /// of RFC 2548 §2.4.2 (secret "testing123", R = 00 11 .. ff, salt 81 02,
    /// key = 00 01 .. 1f).
    #[test]
    fn known_answer() {
        let key: Vec<u8> = (0..32).collect();
        let v = encrypt_key(&key, &secret(), &RA, [0x81, 0x02]);
        let expected: Vec<u8> = KAT
            .split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        assert_eq!(v, expected);
    }

    const KAT: &str = "81 02 49 6d 0d 00 e9 96 de 9c 96 d4 0f 4d bc dd a9 57 24 7b c3 9c 39 3f 1b dd bc 62 b4 fa de 5e ed 3f 7b 2b b9 1f 50 51 61 79 3c 91 c4 4f 30 4d 3a 6b";

    #[test]
    fn decrypt_errors() {
        let s = secret();
        assert_eq!(
            decrypt_key(&[0x80], &s, &RA),
            Err(MppeError::TooShort { len: 1 })
        );
        assert_eq!(
            decrypt_key(&[0x80; 17], &s, &RA),
            Err(MppeError::TooShort { len: 17 })
        );
        assert_eq!(
            decrypt_key(&[0x80; 19], &s, &RA),
            Err(MppeError::NotBlockAligned { len: 19 })
        );
        let mut v = encrypt_key(&[1; 16], &s, &RA, [0, 0]);
        v[0] = 0x00;
        assert_eq!(decrypt_key(&v, &s, &RA), Err(MppeError::SaltHighBitClear));
        // A Key-Length octet larger than the data: encrypt a 15-octet key (one
        // block) and flip the Key-Length octet through the ciphertext.
        let mut v = encrypt_key(&[7; 15], &s, &RA, [0x80, 1]);
        v[2] ^= 15 ^ 16;
        assert_eq!(
            decrypt_key(&v, &s, &RA),
            Err(MppeError::BadKeyLength {
                declared: 16,
                available: 15
            })
        );
    }

    #[test]
    fn wrong_secret_does_not_recover_key() {
        let key = [0x5a; 32];
        let v = encrypt_key(&key, &secret(), &RA, [0x80, 9]);
        let other = decrypt_key(&v, &SharedSecret::new("other"), &RA);
        assert_ne!(other.ok(), Some(key.to_vec()));
    }

    proptest! {
        #[test]
        fn round_trip_any_length(
            key in proptest::collection::vec(any::<u8>(), 1..=240),
            salt in any::<[u8; 2]>(),
            ra in any::<[u8; 16]>(),
            secret in proptest::collection::vec(any::<u8>(), 1..64),
        ) {
            let secret = SharedSecret::new(secret);
            let v = encrypt_key(&key, &secret, &ra, salt);
            prop_assert_eq!(v[0], salt[0] | 0x80);
            prop_assert_eq!(v[1], salt[1]);
            prop_assert_eq!(v.len(), 2 + (key.len() + 1).div_ceil(16) * 16);
            prop_assert_eq!(decrypt_key(&v, &secret, &ra).unwrap(), key);
        }

        #[test]
        fn decrypt_never_panics(value in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decrypt_key(&value, &secret(), &RA);
        }
    }
}
