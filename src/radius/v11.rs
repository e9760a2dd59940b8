//! RADIUS/1.1 (RFC 9765) at the connection boundary, sans IO.
//!
//! RFC 9765 §4: the 16-octet Authenticator becomes a 4-octet Token (echoed in the response) and
//! 12 reserved octets (zero when sent, ignored when received); §5.1: no MD5-based obfuscation —
//! MS-MPPE-Send-Key / MS-MPPE-Recv-Key are plain `string` values, no RFC 2548 salt, length or
//! padding; §5.2: Message-Authenticator is neither required nor sent (one received is ignored).
//!
//! The request path stays the one UDP uses: [`request_to_core`] turns a RADIUS/1.1 request into
//! the RADIUS/1.0 form `Core` checks (any received Message-Authenticator dropped, a fresh one
//! computed with the connection's secret, so an EAP request is accepted), and
//! [`reply_from_core`] turns `Core`'s reply back (Token echoed, reserved octets zero,
//! Message-Authenticator removed, MPPE keys decrypted to their plain value). The secret and
//! MD5 never appear on the wire of a RADIUS/1.1 connection.

use super::{Packet, PacketBuilder, SharedSecret, attr, mppe};

/// Why a RADIUS/1.1 packet could not be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V11Error {
    #[error("malformed RADIUS/1.1 packet: {0}")]
    Malformed(String),
    #[error("attribute cannot be re-encoded: {0}")]
    Encode(String),
}

/// The RADIUS/1.0 form of a RADIUS/1.1 request for `Core`, signed with `secret`; its
/// Authenticator (Token followed by the reserved octets) is what [`reply_from_core`] needs.
pub fn request_to_core(request: &[u8], secret: &SharedSecret) -> Result<Vec<u8>, V11Error> {
    let p = Packet::decode(request).map_err(|e| V11Error::Malformed(e.to_string()))?;
    let mut b = PacketBuilder::new(p.code(), p.identifier());
    for a in p.attributes() {
        if a.typ == attr::MESSAGE_AUTHENTICATOR {
            continue;
        }
        b.attr(a.typ, a.value)
            .map_err(|e| V11Error::Encode(e.to_string()))?;
    }
    b.encode_request(secret, *p.authenticator())
        .map_err(|e| V11Error::Encode(e.to_string()))
}

/// The RADIUS/1.1 form of `Core`'s reply to `request` (the RADIUS/1.0 form made by
/// [`request_to_core`]).
pub fn reply_from_core(
    reply: &[u8],
    request_authenticator: &[u8; 16],
    secret: &SharedSecret,
) -> Result<Vec<u8>, V11Error> {
    let p = Packet::decode(reply).map_err(|e| V11Error::Malformed(e.to_string()))?;
    let mut out = Vec::with_capacity(reply.len());
    out.push(u8::from(p.code()));
    out.push(p.identifier());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(request_authenticator.get(..4).unwrap_or(&[0; 4]));
    out.extend_from_slice(&[0u8; 12]);
    for a in p.attributes() {
        match a.typ {
            attr::MESSAGE_AUTHENTICATOR => {}
            attr::VENDOR_SPECIFIC if is_mppe_key(a.value) => {
                let (head, sub) = a.value.split_at(4);
                let (Some(&sub_type), Some(value)) = (sub.first(), sub.get(2..)) else {
                    return Err(V11Error::Malformed("MS-MPPE key sub-attribute".into()));
                };
                let key = mppe::decrypt_key(value, secret, request_authenticator)
                    .map_err(|e| V11Error::Malformed(format!("MS-MPPE key: {e:?}")))?;
                let sub_len = u8::try_from(key.len() + 2)
                    .map_err(|_| V11Error::Encode("MS-MPPE key too long".into()))?;
                let len = u8::try_from(key.len() + 2 + 6)
                    .map_err(|_| V11Error::Encode("MS-MPPE key too long".into()))?;
                out.extend_from_slice(&[attr::VENDOR_SPECIFIC, len]);
                out.extend_from_slice(head);
                out.extend_from_slice(&[sub_type, sub_len]);
                out.extend_from_slice(&key);
            }
            typ => {
                let len = u8::try_from(a.value.len() + 2)
                    .map_err(|_| V11Error::Encode(format!("attribute {typ} too long")))?;
                out.extend_from_slice(&[typ, len]);
                out.extend_from_slice(a.value);
            }
        }
    }
    let total =
        u16::try_from(out.len()).map_err(|_| V11Error::Encode("reply longer than 65535".into()))?;
    if let Some(l) = out.get_mut(2..4) {
        l.copy_from_slice(&total.to_be_bytes());
    }
    Ok(out)
}

/// A Vendor-Specific value holding exactly one Microsoft MS-MPPE-Send-Key or -Recv-Key.
fn is_mppe_key(value: &[u8]) -> bool {
    let Some((vendor, sub)) = value.split_first_chunk::<4>() else {
        return false;
    };
    u32::from_be_bytes(*vendor) == attr::VENDOR_MICROSOFT
        && matches!(
            (sub.first(), sub.get(1)),
            (Some(&(attr::MS_MPPE_SEND_KEY | attr::MS_MPPE_RECV_KEY)), Some(&l)) if usize::from(l) == sub.len()
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::Code;

    #[test]
    fn mppe_keys_in_the_clear_token_echoed_no_message_authenticator() {
        let secret = SharedSecret::new(b"radsec".to_vec());
        let mut req = PacketBuilder::new(Code::AccessRequest, 0);
        req.eap_message(&[2, 1, 0, 5, 1]);
        let token_auth = [1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        // As a RADIUS/1.1 client sends it: no Message-Authenticator is needed; strip it.
        let raw = req.encode_request(&secret, token_auth).unwrap();
        let v10 = request_to_core(&raw, &secret).unwrap();
        let p10 = Packet::decode(&v10).unwrap();
        crate::radius::auth::verify_message_authenticator(&p10, &secret, None).unwrap();
        let key = [7u8; 32];
        let enc = mppe::encrypt_key(&key, &secret, &token_auth, [0x80, 1]);
        let mut rep = PacketBuilder::new(Code::AccessAccept, 0);
        rep.vendor_attr(attr::VENDOR_MICROSOFT, attr::MS_MPPE_RECV_KEY, &enc)
            .unwrap();
        let reply = rep.encode_response(&secret, &token_auth).unwrap();
        let v11 = reply_from_core(&reply, &token_auth, &secret).unwrap();
        let p = Packet::decode(&v11).unwrap();
        assert_eq!(&p.authenticator()[..4], &[1, 2, 3, 4]);
        assert_eq!(&p.authenticator()[4..], &[0; 12]);
        assert!(p.first(attr::MESSAGE_AUTHENTICATOR).is_none());
        let k: Vec<_> = p.vendor_attributes(attr::VENDOR_MICROSOFT).collect();
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].typ, attr::MS_MPPE_RECV_KEY);
        assert_eq!(k[0].value, &key);
    }
}
