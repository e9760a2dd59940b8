//! Building the replies: Access-Challenge with State (RFC 2865 §4.4, §5.24), Access-Accept with
//! the MS-MPPE keys (RFC 2548 §2.4, salt-encrypted with the shared secret and the request's
//! authenticator; RFC 3579 §3.2 Message-Authenticator first) and the policy's attributes,
//! Access-Reject with EAP-Failure (RFC 3579 §2.6.3), and the Status-Server answer (RFC 5997 §3).

use std::net::SocketAddr;
use std::time::Instant;

use tracing::{Level, debug, warn};

use super::clients::Client;
use super::handle::{Core, Rng};
use super::sessions::StateKey;
use super::stats::Counter;
use crate::authz::{Grant, ReplyAttribute};
use crate::eap::EapPacket;
use crate::radius::{self, Code, Packet, PacketBuilder, attr};
use crate::reason::ReasonCode;
use crate::session::Step;

/// The prefix of every Class this server sends, so an operator reading accounting recognises it.
pub const CLASS_PREFIX: &[u8; 4] = b"CRad";

/// A fresh Class value: [`CLASS_PREFIX`] and 12 random octets (96 bits: unique per
/// authentication without keeping any state), 16 octets in all.
pub fn new_class(rng: Rng<'_>) -> [u8; 16] {
    let mut class = [0u8; 16];
    let (prefix, random) = class.split_at_mut(4);
    prefix.copy_from_slice(CLASS_PREFIX);
    rng(random);
    class
}

/// Adds the attributes a policy (or the MAB allow list) granted to an Access-Accept.
pub(super) fn add_granted(b: &mut PacketBuilder, attributes: &[ReplyAttribute]) {
    for a in attributes {
        let r = match a.vendor {
            Some(v) => b.vendor_attr(v, a.typ, &a.value).map(|_| ()),
            None => b.attr(a.typ, &a.value).map(|_| ()),
        };
        if let Err(e) = r {
            warn!("granted attribute {} not sent: {e}", a.typ);
        }
    }
}

impl Core {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reply_for(
        &self,
        step: Step,
        key: StateKey,
        packet: &Packet<'_>,
        client: &Client,
        from: SocketAddr,
        now: Instant,
        rng: Rng<'_>,
    ) -> Option<Vec<u8>> {
        let id = packet.identifier();
        match step {
            Step::Discard(reason) => self.drop_packet(from, now, reason, "EAP response discarded"),
            Step::Lookup(_) => {
                // Only `access_request` pauses for lookups; a lookup here is a logic error.
                self.stats.incr(ReasonCode::InternalError);
                None
            }
            Step::Challenge(eap) => {
                self.stats.incr(Counter::AccessChallenges);
                let mut b = PacketBuilder::new(Code::AccessChallenge, id);
                b.eap_message(&eap);
                // ok: the State is 16 octets, far below the 253-octet attribute limit.
                let _ = b.attr(attr::STATE, &key);
                self.encode(packet, client, b)
            }
            Step::Accept {
                eap,
                keys,
                grant,
                summary,
            } => {
                let mut b = PacketBuilder::new(Code::AccessAccept, id);
                b.eap_message(&eap);
                let identity = summary.identity.as_slice();
                if !identity.is_empty() {
                    let _ = b.attr(attr::USER_NAME, identity.get(..253).unwrap_or(identity));
                }
                // RFC 2548 §2.4.2: each key gets its own salt with the high bit set.
                let mut salts = [0u8; 4];
                rng(&mut salts);
                let salt_recv = [salts[0] | 0x80, salts[1]];
                let mut salt_send = [salts[2] | 0x80, salts[3]];
                if salt_send == salt_recv {
                    salt_send[1] ^= 1;
                }
                let auth = packet.authenticator();
                let recv = radius::mppe::encrypt_key(
                    keys.mppe_recv_key(),
                    &client.secret,
                    auth,
                    salt_recv,
                );
                let send = radius::mppe::encrypt_key(
                    keys.mppe_send_key(),
                    &client.secret,
                    auth,
                    salt_send,
                );
                let _ = b.vendor_attr(attr::VENDOR_MICROSOFT, attr::MS_MPPE_RECV_KEY, &recv);
                let _ = b.vendor_attr(attr::VENDOR_MICROSOFT, attr::MS_MPPE_SEND_KEY, &send);
                add_granted(&mut b, &grant.attributes);
                // RFC 2865 §5.25: a Class the NAS echoes in its accounting, linking the session
                // to this authentication (and so to its certificate). Sent besides any Class the
                // policy grants.
                let class = new_class(rng);
                let _ = b.attr(attr::CLASS, &class);
                self.stats.incr(Counter::AccessAccepts);
                self.log_finished(
                    "accept",
                    None,
                    &summary,
                    packet,
                    (from, client),
                    now,
                    (&grant, Some(&class)),
                );
                self.encode(packet, client, b)
            }
            Step::Reject {
                eap,
                reason,
                summary,
            } => {
                self.stats.incr(Counter::AccessRejects);
                self.stats.incr(reason.code);
                self.log_finished(
                    "reject",
                    Some(&reason),
                    &summary,
                    packet,
                    (from, client),
                    now,
                    (&Grant::default(), None),
                );
                let mut b = PacketBuilder::new(Code::AccessReject, id);
                b.eap_message(&eap);
                if let Some(m) = self
                    .current
                    .load()
                    .cx
                    .policy
                    .reject_message(reason.code.as_str())
                {
                    let bytes = m.as_bytes();
                    let _ = b.attr(attr::REPLY_MESSAGE, bytes.get(..253).unwrap_or(bytes));
                }
                self.encode(packet, client, b)
            }
        }
    }

    pub(super) fn reject_unknown_state(
        &self,
        packet: &Packet<'_>,
        client: &Client,
        from: SocketAddr,
        eap: &EapPacket<'_>,
    ) -> Option<Vec<u8>> {
        self.stats.incr(Counter::AccessRejects);
        self.stats.incr(ReasonCode::UnknownState);
        self.log_refusal(
            from,
            client,
            packet,
            ReasonCode::UnknownState,
            "State never issued, expired or from another NAS",
        );
        self.reject_eap(packet, client, eap.identifier)
    }

    pub(super) fn reject_eap(
        &self,
        packet: &Packet<'_>,
        client: &Client,
        eap_id: u8,
    ) -> Option<Vec<u8>> {
        let mut b = PacketBuilder::new(Code::AccessReject, packet.identifier());
        b.eap_message(&crate::eap::failure(eap_id));
        self.encode(packet, client, b)
    }

    pub(super) fn status_server(
        &self,
        packet: &Packet<'_>,
        client: &Client,
        from: SocketAddr,
        now: Instant,
        has_ma: bool,
    ) -> Option<Vec<u8>> {
        // RFC 5997 §3: Status-Server without a (valid) Message-Authenticator is discarded.
        if !has_ma {
            return self.drop_packet(
                from,
                now,
                ReasonCode::StatusServerWithoutMessageAuthenticator,
                "Status-Server must carry Message-Authenticator",
            );
        }
        self.stats.incr(Counter::StatusServer);
        self.encode(
            packet,
            client,
            PacketBuilder::new(Code::AccessAccept, packet.identifier()),
        )
    }

    pub(super) fn encode(
        &self,
        packet: &Packet<'_>,
        client: &Client,
        mut b: PacketBuilder,
    ) -> Option<Vec<u8>> {
        b.copy_proxy_state(packet);
        match b.encode_response(&client.secret, packet.authenticator()) {
            Ok(bytes) => {
                if tracing::enabled!(Level::DEBUG)
                    && let Ok(p) = Packet::decode(&bytes)
                {
                    debug!("sending to {}:\n{}", client.name, self.describe(&p));
                }
                Some(bytes)
            }
            Err(e) => {
                self.stats.incr(Counter::ReplyEncodeFailed);
                warn!(client = %client.name, "reply not sent: {e}");
                None
            }
        }
    }
}
