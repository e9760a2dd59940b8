//! A wired switch falling back to MAC Authentication Bypass: the Access-Requests Cisco (`mab`:
//! PAP, User-Name `001122aabbcc`, Calling-Station-Id `00-11-22-AA-BB-CC`, Service-Type =
//! Call-Check) and HPE/Aruba (CHAP with a CHAP-Challenge, everything in bare lower-case hex)
//! send, with or without Message-Authenticator, and the check of the reply.
//!
//! The password hiding (RFC 2865 §5.2) and the CHAP response (RFC 2865 §5.3, RFC 1994 §4.1) are
//! computed here with MD5 directly, not with the server's code, so a test compares two
//! implementations.

use certradius::radius::{Code, Packet, PacketBuilder, SharedSecret, attr, auth};
use md5::{Digest, Md5};

/// Service-Type = Call-Check (RFC 2865 §5.6): what switches send for MAB.
pub const CALL_CHECK: u32 = 10;
/// NAS-Port-Type = Ethernet (RFC 2865 §5.41).
pub const ETHERNET: u32 = 15;

/// The password part of a MAB request.
#[derive(Debug, Clone)]
pub enum Password {
    /// PAP: this clear text, hidden with the secret and the Request Authenticator.
    Pap(Vec<u8>),
    /// The User-Password attribute exactly as given (for malformed ones).
    PapRaw(Vec<u8>),
    /// CHAP over this password with CHAP identifier 7; `challenge`: a CHAP-Challenge
    /// attribute, or None to use the Request Authenticator.
    Chap {
        password: Vec<u8>,
        challenge: Option<Vec<u8>>,
    },
    /// The CHAP-Password attribute exactly as given.
    ChapRaw(Vec<u8>),
}

/// One MAB Access-Request.
#[derive(Debug, Clone)]
pub struct MabRequest {
    pub user_name: Vec<u8>,
    pub calling_station_id: Option<Vec<u8>>,
    pub password: Password,
    /// Whether the switch sends Message-Authenticator (RFC 3579 §3.2; many do not for MAB).
    pub message_authenticator: bool,
}

fn bare(mac: &[u8; 6]) -> String {
    mac.iter().map(|o| format!("{o:02x}")).collect()
}

impl MabRequest {
    /// What a Cisco switch (`mab`) sends: PAP with the bare MAC as password.
    pub fn cisco(mac: [u8; 6]) -> MabRequest {
        let calling: Vec<String> = mac.iter().map(|o| format!("{o:02X}")).collect();
        MabRequest {
            user_name: bare(&mac).into_bytes(),
            calling_station_id: Some(calling.join("-").into_bytes()),
            password: Password::Pap(bare(&mac).into_bytes()),
            message_authenticator: true,
        }
    }

    /// What an HPE/Aruba switch sends: CHAP with a CHAP-Challenge, the bare MAC everywhere.
    pub fn aruba(mac: [u8; 6]) -> MabRequest {
        MabRequest {
            user_name: bare(&mac).into_bytes(),
            calling_station_id: Some(bare(&mac).into_bytes()),
            password: Password::Chap {
                password: bare(&mac).into_bytes(),
                challenge: Some(b"aruba-challenge!".to_vec()),
            },
            message_authenticator: true,
        }
    }

    /// The request with identifier `id` and Request Authenticator `authenticator`.
    pub fn encode(&self, secret: &str, id: u8, authenticator: [u8; 16]) -> Vec<u8> {
        let mut attrs: Vec<(u8, Vec<u8>)> = vec![(attr::USER_NAME, self.user_name.clone())];
        match &self.password {
            Password::Pap(clear) => attrs.push((
                attr::USER_PASSWORD,
                hide(clear, secret.as_bytes(), &authenticator),
            )),
            Password::PapRaw(raw) => attrs.push((attr::USER_PASSWORD, raw.clone())),
            Password::Chap {
                password,
                challenge,
            } => {
                let c = challenge.clone().unwrap_or(authenticator.to_vec());
                let mut md5 = Md5::new();
                md5.update([7u8]);
                md5.update(password);
                md5.update(&c);
                let mut value = vec![7u8];
                value.extend_from_slice(&md5.finalize());
                attrs.push((attr::CHAP_PASSWORD, value));
                if let Some(c) = challenge {
                    attrs.push((attr::CHAP_CHALLENGE, c.clone()));
                }
            }
            Password::ChapRaw(raw) => attrs.push((attr::CHAP_PASSWORD, raw.clone())),
        }
        attrs.push((attr::SERVICE_TYPE, CALL_CHECK.to_be_bytes().to_vec()));
        attrs.push((attr::NAS_IP_ADDRESS, vec![127, 0, 0, 1]));
        attrs.push((attr::NAS_PORT_TYPE, ETHERNET.to_be_bytes().to_vec()));
        if let Some(c) = &self.calling_station_id {
            attrs.push((attr::CALLING_STATION_ID, c.clone()));
        }
        if self.message_authenticator {
            let mut b = PacketBuilder::new(Code::AccessRequest, id);
            for (t, v) in &attrs {
                let _ = b.attr(*t, v);
            }
            return b
                .encode_request(&SharedSecret::new(secret), authenticator)
                .unwrap_or_default();
        }
        let mut p = vec![1, id, 0, 0];
        p.extend_from_slice(&authenticator);
        for (t, v) in &attrs {
            p.push(*t);
            p.push(u8::try_from(v.len() + 2).unwrap_or(255));
            p.extend_from_slice(v);
        }
        let len = u16::try_from(p.len()).unwrap_or(u16::MAX).to_be_bytes();
        if let Some(field) = p.get_mut(2..4) {
            field.copy_from_slice(&len);
        }
        p
    }
}

/// RFC 2865 §5.2, written out: NUL padding to a multiple of 16, `b1 = MD5(S + RA)`,
/// `b(i) = MD5(S + c(i-1))`, `c(i) = p(i) xor b(i)`.
pub fn hide(clear: &[u8], secret: &[u8], authenticator: &[u8; 16]) -> Vec<u8> {
    let mut padded = clear.to_vec();
    padded.resize(clear.len().div_ceil(16).max(1) * 16, 0);
    let mut out = Vec::new();
    let mut previous = authenticator.to_vec();
    for block in padded.chunks(16) {
        let mut md5 = Md5::new();
        md5.update(secret);
        md5.update(&previous);
        let b = md5.finalize();
        let c: Vec<u8> = block.iter().zip(b.iter()).map(|(p, k)| p ^ k).collect();
        out.extend_from_slice(&c);
        previous = c;
    }
    out
}

/// A reply checked as a switch checks it: Response Authenticator (RFC 2865 §3),
/// Message-Authenticator valid and first (RFC 3579 §3.2).
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: Code,
    /// Every attribute, in order.
    pub attributes: Vec<(u8, Vec<u8>)>,
}

impl Reply {
    pub fn read(
        reply: &[u8],
        secret: &str,
        request_authenticator: &[u8; 16],
    ) -> Result<Reply, String> {
        let secret = SharedSecret::new(secret);
        let p = Packet::decode(reply).map_err(|e| e.to_string())?;
        auth::verify_response_authenticator(&p, &secret, request_authenticator)
            .map_err(|e| format!("Response Authenticator: {e}"))?;
        auth::verify_message_authenticator(&p, &secret, Some(request_authenticator))
            .map_err(|e| format!("Message-Authenticator: {e}"))?;
        let attributes: Vec<(u8, Vec<u8>)> =
            p.attributes().map(|a| (a.typ, a.value.to_vec())).collect();
        if attributes.first().map(|a| a.0) != Some(attr::MESSAGE_AUTHENTICATOR) {
            return Err("Message-Authenticator is not the first attribute".into());
        }
        Ok(Reply {
            code: p.code(),
            attributes,
        })
    }

    /// The first value of attribute `typ`.
    pub fn first(&self, typ: u8) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|(t, _)| *t == typ)
            .map(|(_, v)| v.as_slice())
    }

    /// The VLAN of RFC 3580 §3.31 tunnel attributes (Tunnel-Type VLAN, Medium IEEE-802, tag 0):
    /// Ok(None) when there are none, Err when the set is incomplete or wrong.
    pub fn vlan(&self) -> Result<Option<String>, String> {
        let group = self.first(attr::TUNNEL_PRIVATE_GROUP_ID);
        let typ = self.first(attr::TUNNEL_TYPE);
        let medium = self.first(attr::TUNNEL_MEDIUM_TYPE);
        match (group, typ, medium) {
            (None, None, None) => Ok(None),
            (Some(g), Some([0, 0, 0, 13]), Some([0, 0, 0, 6])) => {
                Ok(Some(String::from_utf8_lossy(g).into_owned()))
            }
            other => Err(format!("not an RFC 3580 VLAN assignment: {other:?}")),
        }
    }
}
