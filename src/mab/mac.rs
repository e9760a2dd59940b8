//! MAC addresses (IEEE 802 EUI-48) and vendor prefixes (OUI, the first three octets) in the
//! spellings switches and inventories use: `00:11:22:33:44:55`, `00-11-22-33-44-55`,
//! `0011.2233.4455` (Cisco), `001122-334455` (HPE), `001122334455`, any case.
//!
//! One rule covers them all: either bare hex digits, or groups of 2, 4 or 6 hex digits of equal
//! size separated by one kind of separator (`:`, `-` or `.`). Anything else is refused with what
//! is wrong, so a typo in the allow list (`00:11:22:33:44:5G`) is an error, never a device that
//! silently does not match.

use std::fmt;

/// An EUI-48 MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

/// A vendor prefix: the Organizationally Unique Identifier, the first three octets of a MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oui(pub [u8; 3]);

/// Why a text is not a MAC address (or OUI).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    #[error("empty")]
    Empty,
    #[error("{0:?} is not a hex digit")]
    BadDigit(char),
    #[error("{found} hex digits, a {what} has {want}")]
    Length {
        found: usize,
        want: usize,
        what: &'static str,
    },
    #[error("separators must be one kind of ':', '-' or '.' between groups of 2, 4 or 6 digits")]
    Grouping,
}

/// The hex digits of `text` as nibbles, checked against the grouping rule of the module doc.
fn nibbles(text: &[u8], want: usize, what: &'static str) -> Result<Vec<u8>, MacError> {
    if text.is_empty() {
        return Err(MacError::Empty);
    }
    let separator = text.iter().copied().find(|b| !b.is_ascii_hexdigit());
    let groups: Vec<&[u8]> = match separator {
        None => vec![text],
        Some(s @ (b':' | b'-' | b'.')) => text.split(|b| *b == s).collect(),
        Some(other) => return Err(MacError::BadDigit(char::from(other))),
    };
    let mut out = Vec::with_capacity(want);
    for g in &groups {
        for &b in *g {
            let n = hex_value(b).ok_or(MacError::BadDigit(char::from(b)))?;
            out.push(n);
        }
    }
    if out.len() != want {
        return Err(MacError::Length {
            found: out.len(),
            want,
            what,
        });
    }
    if groups.len() > 1 {
        let size = groups.first().map_or(0, |g| g.len());
        if !matches!(size, 2 | 4 | 6) || groups.iter().any(|g| g.len() != size) {
            return Err(MacError::Grouping);
        }
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn octets<const N: usize>(nibbles: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(nibbles.chunks(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (*hi, *lo),
            _ => (0, 0),
        };
        *o = (hi << 4) | lo;
    }
    out
}

impl Mac {
    /// Parses any spelling of the module doc (raw bytes: RADIUS attributes are not text).
    pub fn parse(text: &[u8]) -> Result<Mac, MacError> {
        nibbles(text, 12, "MAC address").map(|n| Mac(octets(&n)))
    }

    /// The vendor prefix.
    pub fn oui(&self) -> Oui {
        let [a, b, c, ..] = self.0;
        Oui([a, b, c])
    }

    /// `001122aabbcc`: how Cisco and Aruba spell the User-Name of a MAB request.
    pub fn bare(&self) -> String {
        self.0.iter().map(|o| format!("{o:02x}")).collect()
    }

    /// `00-11-22-AA-BB-CC`: the Calling-Station-Id form RFC 3580 §3.21 recommends.
    pub fn ietf(&self) -> String {
        self.0
            .iter()
            .map(|o| format!("{o:02X}"))
            .collect::<Vec<_>>()
            .join("-")
    }

    /// The spellings a switch may use as the MAB password (CHAP hides the password, so each
    /// is tried): bare, `:`/`-` pairs, `.`/`-` quads, `-` halves, lower and upper case.
    pub fn spellings(&self) -> Vec<String> {
        let bare = self.bare();
        let group = |size: usize, sep: char| -> String {
            let chars: Vec<char> = bare.chars().collect();
            chars
                .chunks(size)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join(&sep.to_string())
        };
        let lower = [
            bare.clone(),
            group(2, ':'),
            group(2, '-'),
            group(4, '.'),
            group(4, '-'),
            group(6, '-'),
        ];
        let mut all: Vec<String> = lower.iter().map(|s| s.to_ascii_uppercase()).collect();
        all.extend(lower);
        all
    }
}

impl Oui {
    /// Parses a vendor prefix (`aa:bb:cc`, `AA-BB-CC`, `aabbcc`), without the `*`.
    pub fn parse(text: &[u8]) -> Result<Oui, MacError> {
        nibbles(text, 6, "vendor prefix (OUI)").map(|n| Oui(octets(&n)))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Display for Oui {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:*")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Mac = Mac([0x00, 0x11, 0x22, 0xaa, 0xbb, 0xcc]);

    #[test]
    fn every_common_spelling_is_the_same_mac() {
        for s in [
            "00:11:22:aa:bb:cc",
            "00-11-22-AA-BB-CC",
            "0011.22aa.bbcc",
            "0011.22AA.BBCC",
            "001122-aabbcc",
            "0011-22aa-bbcc",
            "001122AABBCC",
            "001122aabbcc",
            "00:11:22:Aa:bB:cc",
        ] {
            assert_eq!(Mac::parse(s.as_bytes()), Ok(M), "{s}");
        }
        assert_eq!(M.to_string(), "00:11:22:aa:bb:cc");
        assert_eq!(M.bare(), "001122aabbcc");
        assert_eq!(M.ietf(), "00-11-22-AA-BB-CC");
        assert_eq!(M.oui(), Oui([0, 0x11, 0x22]));
    }

    #[test]
    fn every_spelling_we_try_parses_back() {
        let all = M.spellings();
        assert_eq!(all.len(), 12);
        for s in &all {
            assert_eq!(Mac::parse(s.as_bytes()), Ok(M), "{s}");
        }
        assert!(all.contains(&"001122aabbcc".to_string()));
        assert!(all.contains(&"00-11-22-AA-BB-CC".to_string()));
    }

    #[test]
    fn bad_digits_lengths_and_groupings_are_refused() {
        let err = |s: &str| Mac::parse(s.as_bytes()).unwrap_err();
        assert_eq!(err("00:11:22:33:44:5G"), MacError::BadDigit('G'));
        assert_eq!(err("00 11 22 33 44 55"), MacError::BadDigit(' '));
        assert_eq!(err(""), MacError::Empty);
        assert!(matches!(
            err("00:11:22:33:44"),
            MacError::Length { found: 10, .. }
        ));
        assert!(matches!(
            err("00112233445566"),
            MacError::Length { found: 14, .. }
        ));
        assert_eq!(err("00:11-22:33:44:55"), MacError::BadDigit('-'));
        assert_eq!(err("001:122:334:455"), MacError::Grouping);
        assert_eq!(err("00:1122:33:44:55"), MacError::Grouping);
        assert_eq!(err("001122334455:"), MacError::Grouping);
        assert!(Mac::parse("ü0:11:22:33:44:55".as_bytes()).is_err());
    }

    #[test]
    fn ouis_in_any_spelling() {
        for s in ["aa:bb:cc", "AA-BB-CC", "aabbcc", "AABBCC"] {
            assert_eq!(Oui::parse(s.as_bytes()), Ok(Oui([0xaa, 0xbb, 0xcc])), "{s}");
        }
        assert!(Oui::parse(b"aa:bb").is_err());
        assert!(Oui::parse(b"aa:bb:cx").is_err());
        assert_eq!(Oui([0xaa, 0xbb, 0xcc]).to_string(), "aa:bb:cc:*");
    }
}
