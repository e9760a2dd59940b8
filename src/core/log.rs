//! What the request path reports: a rate-limited warning per dropped packet (RFC 2865 §3 and
//! RFC 3579 §3.2 silent discards, counted), one line per finished or refused authentication with
//! its stable reason, and the same as an [`AuthEvent`] for the observers the shell plugged in.

use std::net::SocketAddr;
use std::time::Instant;

use tracing::{info, warn};

use super::clients::Client;
use super::conversation::u32_attr;
use super::events::AuthEvent;
use super::handle::Core;
use super::stats::Counter;
use crate::authz::Grant;
use crate::escape::{Escaped, or_dash};
use crate::radius::{Packet, attr};
use crate::reason::ReasonCode;
use crate::session::{Reason, Summary};

impl Core {
    pub(super) fn notify(&self, event: &AuthEvent<'_>) {
        if let Ok(observers) = self.observers.read() {
            for o in observers.iter() {
                o.finished(event);
            }
        }
    }

    pub(super) fn drop_packet(
        &self,
        from: SocketAddr,
        now: Instant,
        reason: ReasonCode,
        detail: &str,
    ) -> Option<Vec<u8>> {
        self.stats.incr(Counter::PacketsDropped);
        self.stats.incr(reason);
        if let Some(suppressed) = self.stats.should_log(reason, Some(from.ip()), now) {
            warn!(%from, reason = %reason, suppressed, "packet dropped: {detail}");
        }
        None
    }

    pub(super) fn log_refusal(
        &self,
        from: SocketAddr,
        client: &Client,
        packet: &Packet<'_>,
        reason: ReasonCode,
        detail: &str,
    ) {
        self.notify(&refusal_event(from, client, packet, reason, detail));
        info!(
            outcome = %"reject",
            reason = %reason,
            detail,
            nas = %from.ip(),
            calling_station_id = %or_dash(packet.first(attr::CALLING_STATION_ID)),
            user_name = %or_dash(packet.first(attr::USER_NAME)),
            "authentication refused: Access-Reject"
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn log_finished(
        &self,
        outcome: &'static str,
        reason: Option<&Reason>,
        summary: &Summary,
        packet: &Packet<'_>,
        (from, client): (SocketAddr, &Client),
        now: Instant,
        (grant, class): (&Grant, Option<&[u8]>),
    ) {
        let rule = grant.rule.as_deref();
        let duration = now.saturating_duration_since(summary.started);
        // The verified peer, or the certificate refused before there was one.
        let (subject, issuer, serial) =
            match (&summary.peer, reason.and_then(|r| r.cert.as_deref())) {
                (Some(p), _) => (
                    Some(p.subject.as_str()),
                    Some(p.issuer.as_str()),
                    Some(p.serial.as_str()),
                ),
                (None, Some(c)) => (
                    Some(c.subject.as_str()),
                    Some(c.issuer.as_str()),
                    Some(c.serial.as_str()),
                ),
                (None, None) => (None, None, None),
            };
        self.notify(&AuthEvent {
            outcome,
            method: crate::authz::Method::EapTls.as_str(),
            reason: reason.map(|r| r.code.as_str()),
            detail: reason.map(|r| r.detail.as_str()).unwrap_or(""),
            identity: &summary.identity,
            user_name: packet.first(attr::USER_NAME),
            nas_name: &client.name,
            nas_addr: from.ip(),
            calling_station_id: packet.first(attr::CALLING_STATION_ID),
            called_station_id: packet.first(attr::CALLED_STATION_ID),
            tls_version: summary.tls_version,
            cipher_suite: &summary.cipher_suite,
            serial,
            subject,
            issuer,
            ca_chain: &summary.ca_chain,
            resumed: summary.resumed,
            round_trips: summary.round_trips,
            duration,
            rule,
            granted: &grant.attributes,
            class,
            client_hello: summary.client_hello.as_ref(),
            signature_scheme: summary.signature_scheme,
            group: summary.group,
            nas_port_type: u32_attr(packet, attr::NAS_PORT_TYPE),
            framed_mtu: u32_attr(packet, attr::FRAMED_MTU),
            directory_groups: summary.directory_groups.as_deref(),
            directory_facts: summary.directory_facts.as_deref(),
            peer: summary.peer.as_ref(),
        });
        let (subject, issuer, serial) = (
            subject.unwrap_or("-"),
            issuer.unwrap_or("-"),
            serial.unwrap_or("-"),
        );
        let duration_ms = duration.as_secs_f64() * 1000.0;
        // A handshake that failed: what the device offered is the first clue (TLS 1.3 only, no
        // RSA-PSS, no common group), so the line carries it; the audit log has it every time.
        let client_hello = match (reason, &summary.peer, &summary.client_hello) {
            (Some(_), None, Some(hello)) => Some(hello.one_line()),
            _ => None,
        };
        info!(
            %outcome,
            reason = %reason.map_or("-", |r| r.code.as_str()),
            detail = reason.map(|r| r.detail.as_str()).unwrap_or(""),
            identity = %Escaped(&summary.identity),
            subject = ?Escaped::str(subject),
            issuer = ?Escaped::str(issuer),
            serial,
            nas = %from.ip(),
            calling_station_id = %or_dash(packet.first(attr::CALLING_STATION_ID)),
            tls_version = %summary.tls_version,
            cipher_suite = %summary.cipher_suite,
            round_trips = summary.round_trips,
            resumed = summary.resumed,
            duration_ms = format_args!("{duration_ms:.1}"),
            rule = %rule.unwrap_or("-"),
            client_hello = client_hello.as_deref(),
            "authentication finished: {}",
            if outcome == "accept" {
                "Access-Accept"
            } else {
                "Access-Reject"
            }
        );
    }
}

/// The event for a request refused before any TLS handshake finished.
pub(super) fn refusal_event<'a>(
    from: SocketAddr,
    client: &'a Client,
    packet: &'a Packet<'_>,
    reason: ReasonCode,
    detail: &'a str,
) -> AuthEvent<'a> {
    AuthEvent {
        outcome: "reject",
        method: crate::authz::Method::EapTls.as_str(),
        reason: Some(reason.as_str()),
        detail,
        identity: b"",
        user_name: packet.first(attr::USER_NAME),
        nas_name: &client.name,
        nas_addr: from.ip(),
        calling_station_id: packet.first(attr::CALLING_STATION_ID),
        called_station_id: packet.first(attr::CALLED_STATION_ID),
        tls_version: "-",
        cipher_suite: "",
        serial: None,
        subject: None,
        ca_chain: &[],
        issuer: None,
        resumed: false,
        round_trips: 0,
        duration: std::time::Duration::ZERO,
        rule: None,
        granted: &[],
        class: None,
        client_hello: None,
        signature_scheme: None,
        group: None,
        nas_port_type: u32_attr(packet, attr::NAS_PORT_TYPE),
        framed_mtu: u32_attr(packet, attr::FRAMED_MTU),
        directory_groups: None,
        directory_facts: None,
        peer: None,
    }
}
