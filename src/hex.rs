//! Lowercase hex, the form operators compare certificate serials (`openssl x509 -serial`), Class
//! values and fingerprints in. One table lookup per nibble into one `String` allocation: the
//! per-byte `format!` it replaces allocated once per octet, on every authentication's serials.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lowercase hex, two digits per octet, no separators.
pub fn lower(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().saturating_mul(2));
    let digit = |n: u8| char::from(DIGITS.get(usize::from(n)).copied().unwrap_or(b'0'));
    for b in bytes {
        s.push(digit(b >> 4));
        s.push(digit(b & 0x0f));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_lowercase_digits_per_octet_leading_zeros_kept() {
        assert_eq!(lower(&[]), "");
        assert_eq!(lower(&[0x00, 0x0a, 0xff, 0x10]), "000aff10");
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(lower(&all), expected);
    }
}
