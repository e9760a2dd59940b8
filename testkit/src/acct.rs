//! Accounting-Requests as a NAS sends them (RFC 2866 §3: the Request Authenticator is an MD5
//! hash of the packet and the secret), and the check of the Accounting-Response.

use certradius::radius::{Code, Packet, PacketBuilder, SharedSecret, auth};
use md5::{Digest, Md5};

/// An Accounting-Request with `attrs`, a Message-Authenticator (computed over the zeroed
/// Authenticator field, as RFC 5080 and FreeRADIUS do) and the RFC 2866 Request Authenticator.
pub fn request(secret: &[u8], id: u8, attrs: &[(u8, &[u8])]) -> Vec<u8> {
    let mut b = PacketBuilder::new(Code::AccountingRequest, id);
    for (t, v) in attrs {
        let _ = b.attr(*t, v);
    }
    let mut p = b
        .encode_request(&SharedSecret::new(secret), [0; 16])
        .unwrap_or_default();
    let mut md5 = Md5::new();
    md5.update(&p);
    md5.update(secret);
    let hash: [u8; 16] = md5.finalize().into();
    if let Some(field) = p.get_mut(4..20) {
        field.copy_from_slice(&hash);
    }
    p
}

/// True when `reply` is an Accounting-Response to `request` signed with `secret`.
pub fn is_response_to(reply: &[u8], request: &[u8], secret: &[u8]) -> bool {
    let (Ok(r), Ok(q)) = (Packet::decode(reply), Packet::decode(request)) else {
        return false;
    };
    r.code() == Code::AccountingResponse
        && r.identifier() == q.identifier()
        && auth::verify_response_authenticator(&r, &SharedSecret::new(secret), q.authenticator())
            .is_ok()
}
