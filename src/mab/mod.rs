//! MAC Authentication Bypass (MAB), sans IO: what a MAB request is, and its verdict.
//!
//! A switch falls back to MAB for a device that does not answer EAP (a printer, a camera): it
//! sends an Access-Request without EAP-Message whose User-Name is the device's MAC, with the MAC
//! as password — hidden as a User-Password (RFC 2865 §5.2; Cisco, Juniper, Dell, Huawei) or as a
//! CHAP-Password (RFC 2865 §5.3; HPE/Aruba) — and usually Service-Type = Call-Check (RFC 2865
//! §5.6) and the MAC again in Calling-Station-Id (RFC 3580 §3.20). There is no cryptographic
//! proof of anything: the MAC is as good as what the switch saw on its port, so MAB is
//! default-deny (a device must be listed in the allow file, [`list`]) and kept apart from
//! EAP-TLS (authorization rules must name `method = "mab"` to apply, see `authz`).
//!
//! A request is MAB ([`recognise`]) when:
//! - its User-Name is a MAC in any spelling ([`mac`]),
//! - its Calling-Station-Id, when present, is the same MAC (in any spelling: Cisco sends
//!   User-Name `001122334455` with Calling-Station-Id `00-11-22-33-44-55`),
//! - and it carries a User-Password or a CHAP-Password.
//!
//! Anything else without EAP-Message is no MAB request (the server's refusal stays
//! `no_eap_message`). A MAB request is then decided ([`decide`]): `mab_disabled` when `[mab]` is
//! off, `mab_bad_password` when the password is malformed or is not the MAC,
//! `mab_unknown_device` when the allow file lists neither the MAC nor its vendor prefix; else it
//! is accepted with the listed VLAN as RFC 3580 §3.31 tunnel attributes ([`vlan_attributes`]).

pub mod list;
pub mod mac;

pub use list::{AllowList, Device, ListError, Listed, MAX_FILE_BYTES};
pub use mac::{Mac, MacError, Oui};

use crate::authz::{Decision, Grant, Policy, ReplyAttribute, RequestInfo};
use crate::radius::auth::{self, PasswordError};
use crate::radius::{Packet, SharedSecret, attr};
use crate::reason::ReasonCode;

/// Tunnel-Type = VLAN (RFC 3580 §3.31; IANA tunnel type 13).
pub const TUNNEL_TYPE_VLAN: u8 = 13;
/// Tunnel-Medium-Type = IEEE-802 (RFC 2868 §3.2; IANA address family 6).
pub const TUNNEL_MEDIUM_IEEE_802: u8 = 6;

/// The attributes of an Access-Request that decide whether it is MAB.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    pub user_name: Option<&'a [u8]>,
    pub calling_station_id: Option<&'a [u8]>,
    pub user_password: Option<&'a [u8]>,
    pub chap_password: Option<&'a [u8]>,
    pub chap_challenge: Option<&'a [u8]>,
    pub authenticator: &'a [u8; 16],
}

impl<'a> Attributes<'a> {
    pub fn of(packet: &'a Packet<'a>) -> Attributes<'a> {
        Attributes {
            user_name: packet.first(attr::USER_NAME),
            calling_station_id: packet.first(attr::CALLING_STATION_ID),
            user_password: packet.first(attr::USER_PASSWORD),
            chap_password: packet.first(attr::CHAP_PASSWORD),
            chap_challenge: packet.first(attr::CHAP_CHALLENGE),
            authenticator: packet.authenticator(),
        }
    }
}

/// How the MAB request proves (such as it can) its MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// A hidden User-Password (RFC 2865 §5.2) and the Request Authenticator it is hidden with.
    Pap {
        hidden: &'a [u8],
        authenticator: &'a [u8; 16],
    },
    /// A CHAP-Password (RFC 2865 §5.3) and its challenge: CHAP-Challenge, or the Request
    /// Authenticator when there is none.
    Chap {
        password: &'a [u8],
        challenge: &'a [u8],
    },
}

impl Credential<'_> {
    /// `"pap"` or `"chap"`, for the log.
    pub fn name(&self) -> &'static str {
        match self {
            Credential::Pap { .. } => "pap",
            Credential::Chap { .. } => "chap",
        }
    }
}

/// An Access-Request that is MAB (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MabRequest<'a> {
    pub mac: Mac,
    pub credential: Credential<'a>,
}

/// The request as MAB, or None: it is not one.
pub fn recognise<'a>(a: &Attributes<'a>) -> Option<MabRequest<'a>> {
    let mac = Mac::parse(a.user_name?).ok()?;
    if let Some(calling) = a.calling_station_id
        && Mac::parse(calling).ok() != Some(mac)
    {
        return None;
    }
    let credential = match (a.user_password, a.chap_password) {
        (Some(hidden), _) => Credential::Pap {
            hidden,
            authenticator: a.authenticator,
        },
        (None, Some(password)) => Credential::Chap {
            password,
            challenge: a.chap_challenge.unwrap_or(a.authenticator),
        },
        (None, None) => return None,
    };
    Some(MabRequest { mac, credential })
}

/// A MAB request refused: the stable reason and what the log says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: ReasonCode,
    pub detail: String,
}

impl Refusal {
    fn new(reason: ReasonCode, detail: impl Into<String>) -> Refusal {
        Refusal {
            reason,
            detail: detail.into(),
        }
    }
}

impl MabRequest<'_> {
    /// Whether the password is the MAC, in any spelling (with `secret`, the client's, for the
    /// hidden User-Password).
    pub fn check_password(&self, secret: &SharedSecret) -> Result<(), Refusal> {
        let bad = |e: PasswordError| Refusal::new(ReasonCode::MabBadPassword, e.to_string());
        let matches = match self.credential {
            Credential::Pap {
                hidden,
                authenticator,
            } => {
                let clear =
                    auth::reveal_user_password(hidden, secret, authenticator).map_err(bad)?;
                Mac::parse(&clear).ok() == Some(self.mac)
            }
            Credential::Chap {
                password,
                challenge,
            } => {
                let mut any = false;
                for spelling in self.mac.spellings() {
                    any |= auth::chap_matches(password, challenge, spelling.as_bytes())
                        .map_err(bad)?;
                }
                any
            }
        };
        if matches {
            Ok(())
        } else {
            Err(Refusal::new(
                ReasonCode::MabBadPassword,
                format!(
                    "the {} password is not the MAC {} (or the shared secret differs)",
                    self.credential.name(),
                    self.mac
                ),
            ))
        }
    }
}

/// The verdict on a MAB request: the allow-list line that admits it, or why not. `list`: the
/// allow list in force, None when `[mab]` is off.
pub fn decide<'l>(
    list: Option<&'l AllowList>,
    request: &MabRequest<'_>,
    secret: &SharedSecret,
) -> Result<Listed<'l>, Refusal> {
    let Some(list) = list else {
        return Err(Refusal::new(
            ReasonCode::MabDisabled,
            format!(
                "MAB request for {} while [mab] enabled = false",
                request.mac
            ),
        ));
    };
    request.check_password(secret)?;
    list.lookup(request.mac).ok_or_else(|| {
        Refusal::new(
            ReasonCode::MabUnknownDevice,
            format!(
                "{} is not in [mab] allow_file (neither the MAC nor its vendor prefix)",
                request.mac
            ),
        )
    })
}

/// What an admitted MAB request is granted: the first rule naming `method = "mab"` that matches
/// decides (its reply replaces the allow file's VLAN, or it refuses with `rule_reject`); with
/// none, the allow file's VLAN ([`vlan_attributes`]). `request.method` must be
/// [`Method::Mab`](crate::authz::Method::Mab).
pub fn authorize(
    listed: Listed<'_>,
    policy: &dyn Policy,
    request: &RequestInfo<'_>,
) -> Result<Grant, Refusal> {
    match policy.authorize_mab(request) {
        Some(Decision::Accept(grant)) => Ok(grant),
        Some(Decision::Reject { reason, detail }) => Err(Refusal { reason, detail }),
        None => Ok(Grant {
            rule: None,
            attributes: vlan_attributes(listed.device().vlan),
        }),
    }
}

/// RFC 3580 §3.31 VLAN assignment: Tunnel-Type = VLAN, Tunnel-Medium-Type = IEEE-802,
/// Tunnel-Private-Group-Id = the VLAN ID as text; tag 0 (one tunnel). The tagged integers carry
/// the 0x00 tag octet (RFC 2868 §3.1); the string goes without it, its first octet being a digit
/// (RFC 2868 §3.6), as the rule compiler encodes tag 0. None: no attributes.
pub fn vlan_attributes(vlan: Option<u16>) -> Vec<ReplyAttribute> {
    let Some(vlan) = vlan else {
        return Vec::new();
    };
    let standard = |typ: u8, value: Vec<u8>| ReplyAttribute {
        vendor: None,
        typ,
        value,
    };
    vec![
        standard(attr::TUNNEL_TYPE, vec![0, 0, 0, TUNNEL_TYPE_VLAN]),
        standard(
            attr::TUNNEL_MEDIUM_TYPE,
            vec![0, 0, 0, TUNNEL_MEDIUM_IEEE_802],
        ),
        standard(attr::TUNNEL_PRIVATE_GROUP_ID, vlan.to_string().into_bytes()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: [u8; 16] = [5; 16];

    fn secret() -> SharedSecret {
        SharedSecret::new("testing123")
    }

    fn attrs<'a>(
        user: &'a [u8],
        calling: Option<&'a [u8]>,
        pap: Option<&'a [u8]>,
    ) -> Attributes<'a> {
        Attributes {
            user_name: Some(user),
            calling_station_id: calling,
            user_password: pap,
            chap_password: None,
            chap_challenge: None,
            authenticator: &AUTH,
        }
    }

    fn hidden(pw: &str) -> Vec<u8> {
        auth::hide_user_password(pw.as_bytes(), &secret(), &AUTH).unwrap()
    }

    #[test]
    fn cisco_and_aruba_shapes_are_mab_others_are_not() {
        let pw = hidden("001122334455");
        let cisco = attrs(b"001122334455", Some(b"00-11-22-33-44-55"), Some(&pw));
        let r = recognise(&cisco).unwrap();
        assert_eq!(r.mac.to_string(), "00:11:22:33:44:55");
        assert!(matches!(r.credential, Credential::Pap { .. }));
        // No Calling-Station-Id: still MAB.
        assert!(recognise(&attrs(b"00:11:22:33:44:55", None, Some(&pw))).is_some());
        // A User-Name that is a MAC but another one than Calling-Station-Id: not MAB.
        assert_eq!(
            recognise(&attrs(
                b"001122334455",
                Some(b"00-11-22-33-44-56"),
                Some(&pw)
            )),
            None
        );
        assert_eq!(
            recognise(&attrs(b"001122334455", Some(b"lobby"), Some(&pw))),
            None
        );
        // A user, or no password at all: not MAB.
        assert_eq!(recognise(&attrs(b"alice", None, Some(&pw))), None);
        assert_eq!(recognise(&attrs(b"001122334455", None, None)), None);
        // A bad digit: not a MAC, so not MAB.
        assert_eq!(recognise(&attrs(b"00112233445G", None, Some(&pw))), None);
        let chap = [1u8; 17];
        let aruba = Attributes {
            chap_password: Some(&chap),
            chap_challenge: Some(b"challenge-octets"),
            ..attrs(b"001122334455", Some(b"001122334455"), None)
        };
        assert_eq!(
            recognise(&aruba).unwrap().credential,
            Credential::Chap {
                password: &chap,
                challenge: b"challenge-octets"
            }
        );
        let no_challenge = Attributes {
            chap_challenge: None,
            ..aruba
        };
        assert!(matches!(
            recognise(&no_challenge).unwrap().credential,
            Credential::Chap { challenge, .. } if challenge == AUTH
        ));
    }

    #[test]
    fn pap_password_in_any_spelling_and_bad_ones() {
        for pw in [
            "001122334455",
            "00:11:22:33:44:55",
            "0011.2233.4455",
            "00-11-22-33-44-55",
        ] {
            let h = hidden(pw);
            let r = recognise(&attrs(b"001122334455", None, Some(&h))).unwrap();
            assert_eq!(r.check_password(&secret()), Ok(()), "{pw}");
            let wrong = r.check_password(&SharedSecret::new("other")).unwrap_err();
            assert_eq!(wrong.reason, ReasonCode::MabBadPassword);
        }
        let h = hidden("001122334456");
        let r = recognise(&attrs(b"001122334455", None, Some(&h))).unwrap();
        assert_eq!(
            r.check_password(&secret()).unwrap_err().reason,
            ReasonCode::MabBadPassword
        );
        for n in [15usize, 17, 144] {
            let junk = vec![7u8; n];
            let r = recognise(&attrs(b"001122334455", None, Some(&junk))).unwrap();
            let e = r.check_password(&secret()).unwrap_err();
            assert_eq!(e.reason, ReasonCode::MabBadPassword);
            assert!(e.detail.contains("RFC 2865 §5.2"), "{}", e.detail);
        }
    }

    #[test]
    fn chap_with_every_switch_spelling_and_a_wrong_length() {
        let mac = Mac::parse(b"001122334455").unwrap();
        for spelling in mac.spellings() {
            let mut chap = vec![9];
            chap.extend_from_slice(&auth::chap_response(
                9,
                spelling.as_bytes(),
                b"0123456789abcdef",
            ));
            let a = Attributes {
                chap_password: Some(&chap),
                chap_challenge: Some(b"0123456789abcdef"),
                ..attrs(b"001122334455", None, None)
            };
            assert_eq!(
                recognise(&a).unwrap().check_password(&secret()),
                Ok(()),
                "{spelling}"
            );
        }
        let short = [9u8; 16];
        let a = Attributes {
            chap_password: Some(&short),
            ..attrs(b"001122334455", None, None)
        };
        let e = recognise(&a)
            .unwrap()
            .check_password(&secret())
            .unwrap_err();
        assert_eq!(e.reason, ReasonCode::MabBadPassword);
        assert!(e.detail.contains("17"), "{}", e.detail);
    }

    #[test]
    fn decide_disabled_unknown_listed() {
        let h = hidden("001122334455");
        let r = recognise(&attrs(b"001122334455", None, Some(&h))).unwrap();
        assert_eq!(
            decide(None, &r, &secret()).unwrap_err().reason,
            ReasonCode::MabDisabled
        );
        let empty = AllowList::default();
        assert_eq!(
            decide(Some(&empty), &r, &secret()).unwrap_err().reason,
            ReasonCode::MabUnknownDevice
        );
        let list = AllowList::parse(b"00:11:22:*,30\n").unwrap();
        let listed = decide(Some(&list), &r, &secret()).unwrap();
        assert_eq!(listed.device().vlan, Some(30));
        // A wrong password is refused before the list is read.
        assert_eq!(
            decide(Some(&list), &r, &SharedSecret::new("x"))
                .unwrap_err()
                .reason,
            ReasonCode::MabBadPassword
        );
    }

    #[test]
    fn vlan_attributes_are_rfc3580() {
        assert!(vlan_attributes(None).is_empty());
        let a = vlan_attributes(Some(100));
        let by = |t| a.iter().find(|x| x.typ == t).unwrap().value.clone();
        assert_eq!(by(attr::TUNNEL_TYPE), [0, 0, 0, 13]);
        assert_eq!(by(attr::TUNNEL_MEDIUM_TYPE), [0, 0, 0, 6]);
        assert_eq!(by(attr::TUNNEL_PRIVATE_GROUP_ID), b"100");
    }
}
