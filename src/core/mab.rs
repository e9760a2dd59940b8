//! Access-Requests without EAP-Message on the request path: MAC Authentication Bypass
//! (`crate::mab`: the shape, the PAP/CHAP check of RFC 2865 §5.2/§5.3, the allow list) or
//! today's refusal `no_eap_message`.
//!
//! This runs after the Message-Authenticator rules of `handle.rs` (RFC 3579 §3.2; a client that
//! requires it has had a request without it dropped; BlastRADIUS, CVE-2024-3596), and after
//! duplicate detection (RFC 5080 §2.2.2), so MAB behaves like EAP-TLS on every transport. A MAB
//! request is answered at once: Access-Accept with the allow list's VLAN (RFC 3580 §3.31) or
//! the reply of the first rule naming `method = "mab"`, and a Class (RFC 2865 §5.25) linking
//! its accounting to this authentication; or Access-Reject (no EAP-Failure: there is no EAP).
//! Replies carry Message-Authenticator first, like every reply (`radius::builder`).

use std::net::SocketAddr;

use tracing::info;

use super::clients::Client;
use super::conversation::request_info;
use super::events::AuthEvent;
use super::handle::{Core, Rng};
use super::log::refusal_event;
use super::replies::{add_granted, new_class};
use super::stats::Counter;
use crate::authz::{Grant, Method};
use crate::escape::or_dash;
use crate::mab::{self, Attributes, MabRequest, Refusal};
use crate::radius::{Code, Packet, PacketBuilder, attr};
use crate::reason::ReasonCode;

impl Core {
    /// An Access-Request without EAP-Message: MAB when it has the shape, else refused.
    pub(super) fn without_eap(
        &self,
        packet: &Packet<'_>,
        client: &Client,
        from: SocketAddr,
        rng: Rng<'_>,
    ) -> Option<Vec<u8>> {
        let Some(request) = mab::recognise(&Attributes::of(packet)) else {
            self.stats.incr(Counter::AccessRejects);
            self.stats.incr(ReasonCode::NoEapMessage);
            self.log_refusal(
                from,
                client,
                packet,
                ReasonCode::NoEapMessage,
                "no EAP-Message, and not a MAB request (User-Name a MAC equal to Calling-Station-Id, with a PAP or CHAP password)",
            );
            return self.encode(
                packet,
                client,
                PacketBuilder::new(Code::AccessReject, packet.identifier()),
            );
        };
        let snapshot = self.current.load();
        let listed = match mab::decide(snapshot.mab.as_deref(), &request, &client.secret) {
            Ok(listed) => listed,
            Err(refusal) => return self.mab_reject(packet, client, from, &request, &refusal),
        };
        let info = crate::authz::RequestInfo {
            method: Method::Mab,
            ..request_info(packet, from)
        };
        match mab::authorize(listed, snapshot.cx.policy.as_ref(), &info) {
            Ok(grant) => self.mab_accept(packet, client, from, &request, &grant, rng),
            Err(refusal) => self.mab_reject(packet, client, from, &request, &refusal),
        }
    }

    fn mab_accept(
        &self,
        packet: &Packet<'_>,
        client: &Client,
        from: SocketAddr,
        request: &MabRequest<'_>,
        grant: &Grant,
        rng: Rng<'_>,
    ) -> Option<Vec<u8>> {
        let mut b = PacketBuilder::new(Code::AccessAccept, packet.identifier());
        add_granted(&mut b, &grant.attributes);
        // RFC 2865 §5.25: accounting echoes it, linking the session to this authentication
        // (Disconnect by session; no certificate to disconnect on).
        let class = new_class(rng);
        let _ = b.attr(attr::CLASS, &class);
        self.stats.incr(Counter::AccessAccepts);
        let user_name = packet.first(attr::USER_NAME);
        self.notify(&AuthEvent {
            outcome: "accept",
            reason: None,
            detail: "",
            identity: user_name.unwrap_or_default(),
            rule: grant.rule.as_deref(),
            granted: &grant.attributes,
            class: Some(&class),
            ..mab_event(refusal_event(
                from,
                client,
                packet,
                ReasonCode::MabDisabled,
                "",
            ))
        });
        info!(
            outcome = %"accept",
            method = %Method::Mab.as_str(),
            mac = %request.mac,
            password = %request.credential.name(),
            nas = %from.ip(),
            calling_station_id = %or_dash(packet.first(attr::CALLING_STATION_ID)),
            rule = %grant.rule.as_deref().unwrap_or("-"),
            "authentication finished: Access-Accept"
        );
        self.encode(packet, client, b)
    }

    fn mab_reject(
        &self,
        packet: &Packet<'_>,
        client: &Client,
        from: SocketAddr,
        request: &MabRequest<'_>,
        refusal: &Refusal,
    ) -> Option<Vec<u8>> {
        self.stats.incr(Counter::AccessRejects);
        self.stats.incr(refusal.reason);
        self.notify(&AuthEvent {
            identity: packet.first(attr::USER_NAME).unwrap_or_default(),
            ..mab_event(refusal_event(
                from,
                client,
                packet,
                refusal.reason,
                &refusal.detail,
            ))
        });
        info!(
            outcome = %"reject",
            method = %Method::Mab.as_str(),
            reason = %refusal.reason,
            detail = %refusal.detail,
            mac = %request.mac,
            password = %request.credential.name(),
            nas = %from.ip(),
            calling_station_id = %or_dash(packet.first(attr::CALLING_STATION_ID)),
            "authentication refused: Access-Reject"
        );
        let mut b = PacketBuilder::new(Code::AccessReject, packet.identifier());
        if let Some(m) = self
            .current
            .load()
            .cx
            .policy
            .reject_message(refusal.reason.as_str())
        {
            let bytes = m.as_bytes();
            let _ = b.attr(attr::REPLY_MESSAGE, bytes.get(..253).unwrap_or(bytes));
        }
        self.encode(packet, client, b)
    }
}

/// A refusal event turned into a MAB one (no TLS, no certificate).
fn mab_event(event: AuthEvent<'_>) -> AuthEvent<'_> {
    AuthEvent {
        method: Method::Mab.as_str(),
        ..event
    }
}
