//! Attribute values from configuration to the wire: RFC 2865 §5 (integer = 4 octets network
//! order, at most 253 octets per value), RFC 2868 §3.1/§3.6 (tagged integers carry the tag octet,
//! 0x00 when unused; tagged strings carry it when it is 1..=31, or when the string itself starts
//! with an octet <= 0x1F, so the NAS does not mistake that character for a tag).

use std::net::IpAddr;

use super::dictionary::{AttrType, AttributeDef, Dictionary};
use crate::config::Scalar;

/// Why a configured value cannot be sent as the attribute's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{0} is negative")]
    Negative(i64),
    #[error("{text:?} is neither a number nor a VALUE name of {attribute} in the dictionary")]
    NotANumber { text: String, attribute: String },
    #[error("{value} is larger than {max}")]
    TooLarge { value: u64, max: u64 },
    #[error("an empty value is not sent (RFC 2865 §5)")]
    Empty,
    #[error("{0:?} is not an IP address")]
    NotAnAddress(String),
    #[error("an IPv4 address is needed")]
    NeedIpv4,
    #[error("an IPv6 address is needed")]
    NeedIpv6,
    #[error("attributes of type {0} cannot be set by rules")]
    UnsupportedType(String),
    #[error("0x{0}: odd number of hex digits")]
    OddHex(String),
    #[error("0x{0}: not hex")]
    NotHex(String),
    #[error(transparent)]
    Range(#[from] std::num::TryFromIntError),
}

/// Highest RFC 2868 tag.
pub(crate) const MAX_TAG: u8 = 0x1F;

/// Encodes one configured value as the attribute's wire value (RFC 2865 §5, RFC 2868 §3).
pub(crate) fn encode_value(
    def: &AttributeDef,
    value: &Scalar,
    tag: u8,
    dict: &Dictionary,
) -> Result<Vec<u8>, ValueError> {
    let number = |max: u64| -> Result<u64, ValueError> {
        let n = match value {
            Scalar::Int(i) => u64::try_from(*i).map_err(|_| ValueError::Negative(*i))?,
            Scalar::Text(t) => match dict.value(&def.name, t) {
                Some(v) => u64::from(v),
                None => t
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| ValueError::NotANumber {
                        text: t.clone(),
                        attribute: def.name.clone(),
                    })?,
            },
        };
        if n > max {
            return Err(ValueError::TooLarge { value: n, max });
        }
        Ok(n)
    };
    let text = || -> Result<Vec<u8>, ValueError> {
        let bytes = match (value, &def.typ) {
            (Scalar::Text(t), AttrType::Octets) if t.starts_with("0x") || t.starts_with("0X") => {
                decode_hex(t.get(2..).unwrap_or_default())?
            }
            _ => value.text().into_bytes(),
        };
        if bytes.is_empty() {
            return Err(ValueError::Empty);
        }
        Ok(bytes)
    };
    let address = |t: &str| -> Result<IpAddr, ValueError> {
        t.trim()
            .parse::<IpAddr>()
            .map_err(|_| ValueError::NotAnAddress(t.to_string()))
    };
    let out = match &def.typ {
        AttrType::Integer | AttrType::Date if def.has_tag => {
            // RFC 2868 §3.1: Tag octet, then a 3-octet value.
            let [_, a, b, c] = u32::try_from(number(0x00FF_FFFF)?)?.to_be_bytes();
            vec![tag, a, b, c]
        }
        AttrType::Integer | AttrType::Date => u32::try_from(number(u64::from(u32::MAX))?)?
            .to_be_bytes()
            .to_vec(),
        AttrType::Integer64 => number(u64::MAX)?.to_be_bytes().to_vec(),
        AttrType::Short => u16::try_from(number(u64::from(u16::MAX))?)?
            .to_be_bytes()
            .to_vec(),
        AttrType::Byte => {
            vec![u8::try_from(number(u64::from(u8::MAX))?)?]
        }
        AttrType::String | AttrType::Octets if def.has_tag => {
            let bytes = text()?;
            // RFC 2868 §3.6: a first octet 0x01..=0x1F is a tag; see the module doc for tag 0.
            let first_is_tag_like = bytes.first().is_some_and(|b| *b <= MAX_TAG);
            let mut out = Vec::with_capacity(bytes.len() + 1);
            if tag > 0 || first_is_tag_like {
                out.push(tag);
            }
            out.extend_from_slice(&bytes);
            out
        }
        AttrType::String | AttrType::Octets => text()?,
        AttrType::IpAddr => match address(&value.text())? {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(_) => return Err(ValueError::NeedIpv4),
        },
        AttrType::Ipv6Addr => match address(&value.text())? {
            IpAddr::V6(a) => a.octets().to_vec(),
            IpAddr::V4(_) => return Err(ValueError::NeedIpv6),
        },
        other => {
            return Err(ValueError::UnsupportedType(format!("{other:?}")));
        }
    };
    Ok(out)
}

pub(crate) fn decode_hex(s: &str) -> Result<Vec<u8>, ValueError> {
    if !s.len().is_multiple_of(2) {
        return Err(ValueError::OddHex(s.to_string()));
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| ValueError::NotHex(s.to_string()))
        })
        .collect()
}
