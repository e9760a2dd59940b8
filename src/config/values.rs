//! Typed configuration values, each parsed once by `Deserialize` when the configuration loads,
//! so no other module compares configuration strings. A value that does not parse is an error
//! naming its key (the `config` crate adds the key path to the message).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// A shared secret or other credential: never printed.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A value that did not parse; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(String);

/// Deserializes through `FromStr` (via `String`, so the `config` crate's numbers from
/// environment variables, such as `1.3`, arrive as their text).
fn via_str<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = ValueError>,
{
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

/// The TLS versions named in the config (`tls.tls_min_version`, `tls.tls_max_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

impl FromStr for TlsVersion {
    type Err = ValueError;
    fn from_str(v: &str) -> Result<Self, ValueError> {
        match v
            .trim()
            .trim_start_matches("TLSv")
            .trim_start_matches("tls")
        {
            "1.2" | "1_2" => Ok(TlsVersion::V1_2),
            "1.3" | "1_3" => Ok(TlsVersion::V1_3),
            other => Err(ValueError(format!(
                "unsupported TLS version {other:?}: use \"1.2\" or \"1.3\""
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        via_str(d)
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::V1_2 => "1.2",
            TlsVersion::V1_3 => "1.3",
        })
    }
}

/// A TLS signature scheme by its IANA name (RFC 8446 §4.2.3, the TLS SignatureScheme registry),
/// as `tls.client_signature_schemes` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignatureSchemeName {
    pub name: &'static str,
    /// The registry's code point.
    pub code: u16,
}

/// The schemes a TLS peer can use for its CertificateVerify with the providers certradius is
/// built with, by IANA name (RFC 8446 §4.2.3; `rsa_pkcs1_*` and `ecdsa_sha1` are the TLS 1.2
/// ones of RFC 5246 §7.4.1.4.1 in the same registry).
pub const SIGNATURE_SCHEMES: &[(&str, u16)] = &[
    ("rsa_pkcs1_sha1", 0x0201),
    ("ecdsa_sha1", 0x0203),
    ("rsa_pkcs1_sha256", 0x0401),
    ("ecdsa_secp256r1_sha256", 0x0403),
    ("rsa_pkcs1_sha384", 0x0501),
    ("ecdsa_secp384r1_sha384", 0x0503),
    ("rsa_pkcs1_sha512", 0x0601),
    ("ecdsa_secp521r1_sha512", 0x0603),
    ("rsa_pss_rsae_sha256", 0x0804),
    ("rsa_pss_rsae_sha384", 0x0805),
    ("rsa_pss_rsae_sha512", 0x0806),
    ("ed25519", 0x0807),
    ("ed448", 0x0808),
    ("rsa_pss_pss_sha256", 0x0809),
    ("rsa_pss_pss_sha384", 0x080a),
    ("rsa_pss_pss_sha512", 0x080b),
];

impl FromStr for SignatureSchemeName {
    type Err = ValueError;
    fn from_str(v: &str) -> Result<Self, ValueError> {
        SIGNATURE_SCHEMES
            .iter()
            .find(|(name, _)| *name == v)
            .map(|&(name, code)| SignatureSchemeName { name, code })
            .ok_or_else(|| {
                let known: Vec<&str> = SIGNATURE_SCHEMES.iter().map(|(n, _)| *n).collect();
                ValueError(format!(
                    "unknown signature scheme {v:?}: expected one of {}",
                    known.join(", ")
                ))
            })
    }
}

impl<'de> Deserialize<'de> for SignatureSchemeName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        via_str(d)
    }
}

/// A configuration keyword enum: parsed from exactly these spellings, with an error listing them.
macro_rules! keyword_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(v: &str) -> Result<Self, ValueError> {
                match v {
                    $($text => Ok($name::$variant),)*
                    other => Err(ValueError(format!(
                        "{other:?}: expected {}",
                        [$(concat!("\"", $text, "\"")),*].join(", ")
                    ))),
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                via_str(d)
            }
        }
    };
}

keyword_enum! {
    /// `tls.check_crl`: which certificates of the chain are checked against CRLs.
    CrlScope {
        Chain = "chain",
        Leaf = "leaf",
        None = "none",
    }
}

keyword_enum! {
    /// `ocsp.mode`: who decides when the OCSP responder cannot.
    OcspMode {
        /// The responder decides.
        Ocsp = "ocsp",
        /// When the responder is unavailable, the CRL check (tls.crl_file) decides.
        OcspThenCrl = "ocsp_then_crl",
    }
}

keyword_enum! {
    /// `accounting.fsync`: when an accounting record counts as durable.
    FsyncPolicy {
        /// fsync before every Accounting-Response (records arriving together share one fsync).
        Always = "always",
        /// fsync every `accounting.fsync_interval_ms`; responses wait for it.
        Interval = "interval",
    }
}

/// An address or CIDR prefix ("10.1.0.0/16", "::1").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| ValueError(format!("{a:?} is not an IP address")))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| ValueError(format!("{p:?} is not a prefix length 0..={max}")))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        via_str(d)
    }
}

/// As configured, canonicalised: a single address without its full-length prefix (the key of
/// learned per-client state in the state file).
impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        s.parse()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen on a dual-stack socket arrives as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// `server.listen`: socket addresses, with a message that shows the IPv6 spelling.
pub(crate) fn socket_addrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    #[derive(Deserialize)]
    #[serde(transparent)]
    struct Listen(#[serde(deserialize_with = "socket_addr")] SocketAddr);
    Ok(Vec::<Listen>::deserialize(d)?
        .into_iter()
        .map(|l| l.0)
        .collect())
}

fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    s.trim().parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "{s:?} is not an address:port (IPv6 as \"[::1]:1812\")"
        ))
    })
}
