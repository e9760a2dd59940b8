//! Peer-supplied text made safe for log lines.
//!
//! EAP identities (RFC 3748 §5.1), User-Name, Calling-Station-Id and Called-Station-Id
//! (RFC 2865 §5.1, §5.30, §5.31) and certificate fields are chosen by the supplicant or the NAS.
//! Printed raw, a newline in an identity forges a whole log line — and `reason=` lines are what
//! operators grep. Every peer-supplied field of every log line goes through [`Escaped`]:
//! printable UTF-8 passes unchanged (a reader sees `josé` as `josé`), `\` and `"` are
//! backslash-escaped, `\n` `\r` `\t` are written as such, other control and bidirectional-override
//! characters as `\u{…}`, and bytes that are not UTF-8 as `\xNN`, so the original bytes can be
//! recovered exactly.

use std::fmt;

/// Displays peer-supplied bytes escaped for a log line (see the module doc).
#[derive(Clone, Copy)]
pub struct Escaped<'a>(pub &'a [u8]);

impl<'a> Escaped<'a> {
    pub fn str(s: &'a str) -> Self {
        Escaped(s.as_bytes())
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    '\n' => f.write_str("\\n")?,
                    '\r' => f.write_str("\\r")?,
                    '\t' => f.write_str("\\t")?,
                    c if needs_escape(c) => write!(f, "\\u{{{:x}}}", u32::from(c))?,
                    c => fmt::Write::write_char(f, c)?,
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Control characters (C0, DEL, C1), line and paragraph separators, and the bidirectional
/// formatting characters that can make a terminal show a line other than what it holds.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Peer-supplied bytes for a JSON string (audit log, accounting records): valid UTF-8 as is (the
/// JSON encoder escapes what JSON needs), every other byte as `\xNN`, so nothing is lost.
pub fn json_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

/// Peer-supplied optional bytes for a log field: escaped, `-` when absent.
pub fn or_dash(v: Option<&[u8]>) -> String {
    match v {
        Some(v) => Escaped(v).to_string(),
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newline_cannot_start_a_log_line() {
        let forged =
            b"alice\n2026-01-01T00:00:00Z INFO authentication finished: Access-Accept reason=-";
        let out = Escaped(forged).to_string();
        assert!(!out.contains('\n'));
        assert!(out.starts_with("alice\\n2026"));
    }

    #[test]
    fn escapes_controls_quotes_and_invalid_utf8_but_keeps_printable_text() {
        assert_eq!(Escaped(b"a\"b\\c\r\t").to_string(), "a\\\"b\\\\c\\r\\t");
        assert_eq!(Escaped(b"\x1b[31m").to_string(), "\\u{1b}[31m");
        assert_eq!(Escaped(b"\xff\xfeok").to_string(), "\\xff\\xfeok");
        assert_eq!(Escaped("josé ✓".as_bytes()).to_string(), "josé ✓");
        assert_eq!(Escaped("a\u{202e}b".as_bytes()).to_string(), "a\\u{202e}b");
        assert_eq!(format!("{:?}", Escaped(b"x y")), "\"x y\"");
        assert_eq!(or_dash(None), "-");
    }
}
