//! The `--debug` packet dump: a `radiusd -X`-style description of each RADIUS packet (RFC 2865
//! §5 attributes named by the dictionary) with its EAP packet summarised in one line (RFC 3579
//! §3.1 EAP-Message joined; RFC 5216 §3.1 EAP-TLS flags and sizes). Secrets and key material are
//! never printed.

use crate::escape::Escaped;
use std::fmt::Write as _;

use super::handle::Core;
use crate::eap::{EapPacket, EapType};
use crate::radius::{Packet, attr};

impl Core {
    /// `radiusd -X`-style dump of a packet, attributes named by the dictionary. Secrets and key
    /// material are never printed.
    pub fn describe(&self, packet: &Packet<'_>) -> String {
        let dictionary = self.current.load().dictionary.clone();
        let mut out = format!(
            "  {:?} id={} length={}",
            packet.code(),
            packet.identifier(),
            packet.raw().len()
        );
        let mut eap_done = false;
        for a in packet.attributes() {
            if a.typ == attr::VENDOR_SPECIFIC {
                let vendor = a
                    .value
                    .get(..4)
                    .and_then(|v| <[u8; 4]>::try_from(v).ok())
                    .map(u32::from_be_bytes);
                let name = match vendor {
                    Some(v) => {
                        let sub = a.value.get(4).copied().unwrap_or(0);
                        dictionary.name_of(Some(v), u32::from(sub))
                    }
                    None => "Vendor-Specific".into(),
                };
                let _ = write!(out, "\n    {name} = <{} octets>", a.value.len());
                continue;
            }
            let name = dictionary.name_of(None, u32::from(a.typ));
            let value = match a.typ {
                attr::USER_PASSWORD | attr::MESSAGE_AUTHENTICATOR => "<redacted>".to_string(),
                attr::EAP_MESSAGE => {
                    // Described once, whole, at its first attribute.
                    if eap_done {
                        continue;
                    }
                    eap_done = true;
                    let joined = packet.eap_message().unwrap_or_default();
                    describe_eap(&joined, packet.count(attr::EAP_MESSAGE))
                }
                _ => dictionary.display_value(&name, a.value),
            };
            let _ = write!(out, "\n    {name} = {value}");
        }
        out
    }
}

/// One line for the whole EAP packet (joined from its EAP-Message attributes, RFC 3579 §3.1):
/// code, Identifier, method, and for EAP-TLS the flags and sizes (RFC 5216 §3.1).
fn describe_eap(value: &[u8], attributes: usize) -> String {
    let p = match EapPacket::decode(value) {
        Ok(p) => p,
        Err(e) => return format!("<{} octets, malformed: {e}>", value.len()),
    };
    let mut out = format!("EAP-{:?} id={}", p.code, p.identifier);
    match p.typ {
        Some(EapType::Tls) => match crate::eap::TlsFrame::decode(p.type_data) {
            Ok(f) => {
                out.push_str(" EAP-TLS");
                if f.flags.start {
                    out.push_str(" Start");
                }
                if f.flags.length_included {
                    let _ = write!(out, " L={}", f.message_length.unwrap_or(0));
                }
                if f.flags.more_fragments {
                    out.push_str(" More");
                }
                if f.is_ack() {
                    out.push_str(" (ACK)");
                } else if !(f.flags.start && f.data.is_empty()) {
                    let _ = write!(out, " data={}", f.data.len());
                }
            }
            Err(e) => {
                let _ = write!(out, " EAP-TLS malformed: {e}");
            }
        },
        Some(EapType::Identity) => {
            let _ = write!(out, " Identity {:?}", Escaped(p.type_data));
        }
        Some(t) => {
            let _ = write!(out, " type={}", u8::from(t));
        }
        None => {}
    }
    let _ = write!(
        out,
        " ({} octets in {attributes} attribute(s))",
        value.len()
    );
    out
}
