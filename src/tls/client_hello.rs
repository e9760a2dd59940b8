//! What the supplicant offered: a bounded summary of its TLS ClientHello (RFC 8446 §4.1.2; the
//! TLS 1.2 form of RFC 5246 §7.4.1.2), read from the first TLS records it sends (the reassembled
//! EAP-TLS payload of its first flight, RFC 5216 §2.1.1 / RFC 9190 §2.1.1).
//!
//! Kept: the versions it offers (supported_versions, RFC 8446 §4.2.1, or the TLS 1.2
//! `client_version` when that extension is absent), its cipher suites, its signature_algorithms
//! (RFC 8446 §4.2.3) and its supported_groups (RFC 8446 §4.2.7). This is what an operator needs
//! to see why a device fails: a supplicant offering TLS 1.3 only, one without RSA-PSS (a
//! firmware-TPM key), one without a group we accept.
//!
//! Why a parser of our own rather than rustls's: rustls does not expose what the client offered
//! on the server side once the handshake ran, and its `ClientHello` view exists only inside a
//! certificate resolver. The parser here reads the peer's bytes in place — the record fragments
//! are chained without being copied (a ClientHello may span records, RFC 8446 §5.1), nothing is
//! allocated — and keeps at most [`MAX_ENTRIES`] codes per list (plus how many more there were),
//! so the summary is a few hundred octets whatever the peer sends. Malformed input is an error,
//! never a panic; the `client_hello` fuzz target drives it.
//!
//! Codes stay numbers until printed: names are IANA's ("TLSv1.3", "TLS_AES_128_GCM_SHA256",
//! "rsa_pss_rsae_sha256", "x25519"); a code without a name prints as `0x1234` (GREASE values,
//! RFC 8701, among them).

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Codes kept per list; what goes beyond is only counted.
pub const MAX_ENTRIES: usize = 32;

/// TLS records the ClientHello may be spread over (RFC 8446 §5.1 allows any split; a real one
/// fits in one record, a large post-quantum key share in two).
const MAX_RECORDS: usize = 4;

const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SUPPORTED_GROUPS: u16 = 10;
const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// Turns a code into its IANA name.
type Namer = fn(u16) -> Cow<'static, str>;

/// Why the peer's first flight is not a ClientHello we could read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientHelloError {
    #[error("not a TLS handshake record")]
    NotHandshake,
    #[error("not a ClientHello")]
    NotClientHello,
    #[error("the ClientHello is cut short")]
    Truncated,
    #[error("a ClientHello length is inconsistent")]
    BadLength,
}

/// Up to [`MAX_ENTRIES`] 16-bit codes in the peer's order, and how many it sent in all.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Codes {
    len: u8,
    total: u16,
    codes: [u16; MAX_ENTRIES],
}

impl Default for Codes {
    fn default() -> Self {
        Codes {
            len: 0,
            total: 0,
            codes: [0; MAX_ENTRIES],
        }
    }
}

impl Codes {
    fn push(&mut self, code: u16) {
        self.total = self.total.saturating_add(1);
        if let Some(slot) = self.codes.get_mut(usize::from(self.len)) {
            *slot = code;
            self.len = self.len.saturating_add(1);
        }
    }

    /// The codes kept, in the order the peer sent them.
    pub fn as_slice(&self) -> &[u16] {
        self.codes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// How many codes the peer sent beyond those kept.
    pub fn omitted(&self) -> usize {
        usize::from(self.total).saturating_sub(usize::from(self.len))
    }
}

impl fmt::Debug for Codes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.as_slice().iter().map(|c| format!("{c:#06x}")))
            .finish()
    }
}

/// The summary of one ClientHello: four bounded lists of codes (no pointer into the peer's
/// bytes, nothing on the heap).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientHello {
    pub versions: Codes,
    pub cipher_suites: Codes,
    pub signature_schemes: Codes,
    pub groups: Codes,
}

impl ClientHello {
    /// Reads the ClientHello at the start of `records` (TLS records as the peer sent them).
    pub fn parse(records: &[u8]) -> Result<ClientHello, ClientHelloError> {
        let mut r = Reader::over_records(records)?;
        if r.u8()? != HANDSHAKE_CLIENT_HELLO {
            return Err(ClientHelloError::NotClientHello);
        }
        let len = r.u24()?;
        let mut body = r.sub(len)?;
        parse_body(&mut body)
    }

    /// Version names offered, most preferred first.
    pub fn version_names(&self) -> Vec<Cow<'static, str>> {
        self.versions
            .as_slice()
            .iter()
            .map(|&c| version_name(c))
            .collect()
    }

    pub fn cipher_suite_names(&self) -> Vec<Cow<'static, str>> {
        let codes = self.cipher_suites.as_slice();
        codes.iter().map(|&c| cipher_suite_name(c)).collect()
    }

    pub fn signature_scheme_names(&self) -> Vec<Cow<'static, str>> {
        let codes = self.signature_schemes.as_slice();
        codes.iter().map(|&c| signature_scheme_name(c)).collect()
    }

    pub fn group_names(&self) -> Vec<Cow<'static, str>> {
        self.groups
            .as_slice()
            .iter()
            .map(|&c| group_name(c))
            .collect()
    }

    /// One line for a log: `versions=TLSv1.3,TLSv1.2 suites=... sigs=... groups=...`, a list
    /// cut by [`MAX_ENTRIES`] ending in `+N`.
    pub fn one_line(&self) -> String {
        let mut out = String::new();
        let lists: [(&str, &Codes, Namer); 4] = [
            ("versions", &self.versions, version_name),
            ("suites", &self.cipher_suites, cipher_suite_name),
            ("sigs", &self.signature_schemes, signature_scheme_name),
            ("groups", &self.groups, group_name),
        ];
        for (i, (label, codes, name)) in lists.into_iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(label);
            out.push('=');
            if codes.as_slice().is_empty() {
                out.push('-');
            }
            for (j, &c) in codes.as_slice().iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push_str(&name(c));
            }
            if codes.omitted() > 0 {
                let _ = write!(out, ",+{}", codes.omitted());
            }
        }
        out
    }
}

/// The ClientHello body after its handshake header (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2).
fn parse_body(r: &mut Reader<'_>) -> Result<ClientHello, ClientHelloError> {
    let mut hello = ClientHello::default();
    let legacy_version = r.u16()?;
    r.skip(32)?; // random
    let session_id = r.u8()?;
    r.skip(usize::from(session_id))?;
    let suites_len = usize::from(r.u16()?);
    let mut suites = r.sub(suites_len)?;
    read_list(&mut suites, &mut hello.cipher_suites)?;
    let compression = r.u8()?;
    r.skip(usize::from(compression))?;
    let mut versions_seen = false;
    // RFC 5246 §7.4.1.2: a TLS 1.2 ClientHello may end before the extensions.
    if !r.is_empty() {
        let ext_len = usize::from(r.u16()?);
        let mut exts = r.sub(ext_len)?;
        let mut seen = 0u8;
        while !exts.is_empty() {
            let typ = exts.u16()?;
            let len = usize::from(exts.u16()?);
            let mut data = exts.sub(len)?;
            // RFC 8446 §4.2: an extension appears at most once; the first one counts here and
            // rustls refuses the handshake anyway.
            let (bit, target) = match typ {
                EXT_SUPPORTED_VERSIONS => (1, &mut hello.versions),
                EXT_SIGNATURE_ALGORITHMS => (2, &mut hello.signature_schemes),
                EXT_SUPPORTED_GROUPS => (4, &mut hello.groups),
                _ => continue,
            };
            if seen & bit != 0 {
                continue;
            }
            seen |= bit;
            let list_len = if typ == EXT_SUPPORTED_VERSIONS {
                usize::from(data.u8()?)
            } else {
                usize::from(data.u16()?)
            };
            let mut list = data.sub(list_len)?;
            read_list(&mut list, target)?;
            versions_seen |= typ == EXT_SUPPORTED_VERSIONS;
        }
    }
    if !versions_seen {
        // RFC 8446 §4.2.1: without supported_versions the peer speaks TLS 1.2 at most, and
        // legacy_version is the highest version it supports (RFC 5246 §7.4.1.2).
        hello.versions.push(legacy_version);
    }
    Ok(hello)
}

/// A list of 16-bit codes filling `r` exactly.
fn read_list(r: &mut Reader<'_>, into: &mut Codes) -> Result<(), ClientHelloError> {
    while !r.is_empty() {
        into.push(r.u16()?);
    }
    Ok(())
}

/// Reads across the fragments of up to [`MAX_RECORDS`] handshake records in place; `limit`
/// bounds what a sub-reader may consume. Copy, so a sub-reader is a cheap view.
#[derive(Clone, Copy)]
struct Reader<'a> {
    parts: [&'a [u8]; MAX_RECORDS],
    part: usize,
    limit: usize,
}

impl<'a> Reader<'a> {
    /// The handshake bytes of the leading records (RFC 8446 §5.1: type, legacy version,
    /// 16-bit length, fragment). A record cut short is used as far as it goes.
    fn over_records(mut data: &'a [u8]) -> Result<Reader<'a>, ClientHelloError> {
        let mut parts: [&'a [u8]; MAX_RECORDS] = [&[]; MAX_RECORDS];
        let mut total = 0usize;
        for slot in parts.iter_mut() {
            let Some((&typ, rest)) = data.split_first() else {
                break;
            };
            if typ != CONTENT_HANDSHAKE {
                break;
            }
            let header = rest.get(..4).ok_or(ClientHelloError::Truncated)?;
            let len = usize::from(u16::from_be_bytes([
                header.get(2).copied().unwrap_or(0),
                header.get(3).copied().unwrap_or(0),
            ]));
            let body = rest.get(4..).unwrap_or(&[]);
            let (fragment, next) = body.split_at(len.min(body.len()));
            *slot = fragment;
            total = total.saturating_add(fragment.len());
            data = next;
        }
        if total == 0 {
            return Err(ClientHelloError::NotHandshake);
        }
        Ok(Reader {
            parts,
            part: 0,
            limit: total,
        })
    }

    fn is_empty(&self) -> bool {
        self.limit == 0
    }

    fn u8(&mut self) -> Result<u8, ClientHelloError> {
        if self.limit == 0 {
            return Err(ClientHelloError::Truncated);
        }
        while let Some(part) = self.parts.get_mut(self.part) {
            if let Some((&b, rest)) = part.split_first() {
                *part = rest;
                self.limit -= 1;
                return Ok(b);
            }
            self.part += 1;
        }
        Err(ClientHelloError::Truncated)
    }

    fn u16(&mut self) -> Result<u16, ClientHelloError> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    fn u24(&mut self) -> Result<usize, ClientHelloError> {
        let (a, b, c) = (self.u8()?, self.u8()?, self.u8()?);
        Ok(usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c))
    }

    fn skip(&mut self, mut n: usize) -> Result<(), ClientHelloError> {
        if n > self.limit {
            return Err(ClientHelloError::Truncated);
        }
        self.limit -= n;
        while n > 0 {
            let Some(part) = self.parts.get_mut(self.part) else {
                return Err(ClientHelloError::Truncated);
            };
            let step = n.min(part.len());
            *part = part.get(step..).unwrap_or(&[]);
            n -= step;
            if part.is_empty() {
                self.part += 1;
            }
        }
        Ok(())
    }

    /// The next `n` octets as a reader of their own; this one moves past them.
    fn sub(&mut self, n: usize) -> Result<Reader<'a>, ClientHelloError> {
        if n > self.limit {
            return Err(ClientHelloError::BadLength);
        }
        let mut sub = *self;
        sub.limit = n;
        self.skip(n)?;
        Ok(sub)
    }
}

fn hex(code: u16) -> Cow<'static, str> {
    Cow::Owned(format!("{code:#06x}"))
}

/// IANA's "TLS Version" names as the TLS libraries print them.
pub fn version_name(code: u16) -> Cow<'static, str> {
    Cow::Borrowed(match code {
        0x0300 => "SSLv3",
        0x0301 => "TLSv1.0",
        0x0302 => "TLSv1.1",
        0x0303 => "TLSv1.2",
        0x0304 => "TLSv1.3",
        _ => return hex(code),
    })
}

/// IANA's cipher suite name: rustls knows the registry's names (its TLS 1.3 ones carry a
/// `TLS13_` prefix IANA does not have).
pub fn cipher_suite_name(code: u16) -> Cow<'static, str> {
    let name = format!("{:?}", rustls::CipherSuite::from(code));
    if name.contains('(') {
        return hex(code);
    }
    match name.strip_prefix("TLS13_") {
        Some(rest) => Cow::Owned(format!("TLS_{rest}")),
        None => Cow::Owned(name),
    }
}

/// IANA's "TLS SignatureScheme" names (RFC 8446 §4.2.3, RFC 8734, the ML-DSA draft): those
/// `tls.client_signature_schemes` accepts, then the ones only seen in offers.
pub fn signature_scheme_name(code: u16) -> Cow<'static, str> {
    if let Some((name, _)) = crate::config::SIGNATURE_SCHEMES
        .iter()
        .find(|(_, c)| *c == code)
    {
        return Cow::Borrowed(name);
    }
    Cow::Borrowed(match code {
        0x081a => "ecdsa_brainpoolP256r1tls13_sha256",
        0x081b => "ecdsa_brainpoolP384r1tls13_sha384",
        0x081c => "ecdsa_brainpoolP512r1tls13_sha512",
        0x0904 => "mldsa44",
        0x0905 => "mldsa65",
        0x0906 => "mldsa87",
        _ => return hex(code),
    })
}

/// IANA's "TLS Supported Groups" names (RFC 8446 §4.2.7, RFC 8734, the ML-KEM drafts).
pub fn group_name(code: u16) -> Cow<'static, str> {
    Cow::Borrowed(match code {
        0x0017 => "secp256r1",
        0x0018 => "secp384r1",
        0x0019 => "secp521r1",
        0x001a => "brainpoolP256r1",
        0x001b => "brainpoolP384r1",
        0x001c => "brainpoolP512r1",
        0x001d => "x25519",
        0x001e => "x448",
        0x001f => "brainpoolP256r1tls13",
        0x0020 => "brainpoolP384r1tls13",
        0x0021 => "brainpoolP512r1tls13",
        0x0100 => "ffdhe2048",
        0x0101 => "ffdhe3072",
        0x0102 => "ffdhe4096",
        0x0103 => "ffdhe6144",
        0x0104 => "ffdhe8192",
        0x0200 => "MLKEM512",
        0x0201 => "MLKEM768",
        0x0202 => "MLKEM1024",
        0x11eb => "SecP256r1MLKEM768",
        0x11ec => "X25519MLKEM768",
        0x11ed => "SecP384r1MLKEM1024",
        _ => return hex(code),
    })
}

#[cfg(test)]
mod tests;
