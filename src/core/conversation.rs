//! The EAP-TLS conversation on the request path: an Access-Request that starts one (an
//! EAP-Response/Identity without State, RFC 3579 §2.1), continues one (its State, RFC 2865
//! §5.24), or resumes one paused for a revocation lookup, handed to the session state machine
//! (`session/`) with the context it started on. Session limits drop a new conversation rather
//! than reject it (its NAS retransmits, RFC 5080 §2.2.1).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::clients::Client;
use super::guard::lock;
use super::handle::{Core, Handled, Paused, Pending, Rng};
use super::sessions::{Checkout, Full, StateKey};
use super::stats::Counter;
use crate::authz::RequestInfo;
use crate::eap::{EapCode, EapPacket, EapType};
use crate::radius::{Packet, attr};
use crate::reason::ReasonCode;
use crate::session::{Answer, Now, Session, Step};

impl Core {
    /// Continues a conversation paused by [`Handled::Lookup`] with the lookup's answer: the
    /// reply, or another lookup (a directory lookup after OCSP) the shell performs next.
    pub fn resume(&self, pending: Pending, answer: Answer, now: Now, rng: Rng<'_>) -> Handled {
        let now = now.monotonic;
        let Pending {
            session,
            key,
            datagram,
            from,
            client,
            ..
        } = pending;
        let Ok(packet) = Packet::decode(&datagram) else {
            return Handled::Silent;
        };
        let request = request_info(&packet, from);
        let (next, step) = session.resume(answer, &self.cx_for(&key), &request);
        if let Step::Lookup(lookup) = &step
            && let Some(s) = next
        {
            // Paused again: still checked out, the duplicate-cache entry still in progress.
            return Handled::Lookup(Box::new(Pending {
                lookup: (**lookup).clone(),
                session: Box::new(s),
                key,
                datagram: datagram.clone(),
                from,
                client,
            }));
        }
        {
            let mut t = lock(&self.sessions);
            match next {
                Some(s) => t.checkin(&key, Box::new(s), self.idle_deadline(now)),
                None => t.remove(&key),
            }
        }
        let reply = self.reply_for(step, key, &packet, &client, from, now, rng);
        let cached = reply.as_deref().map(Arc::<[u8]>::from);
        lock(&self.dedup).complete((from, packet.identifier()), packet.authenticator(), cached);
        match reply {
            Some(r) => Handled::Reply(r),
            None => Handled::Silent,
        }
    }

    /// When a conversation parked now is forgotten. `eap.session_timeout_secs` is bounded at
    /// load, so the addition cannot overflow; if it ever did, the conversation expires at once
    /// rather than panicking with the session table locked.
    fn idle_deadline(&self, now: Instant) -> Instant {
        now.checked_add(self.current.load().session_timeout())
            .unwrap_or(now)
    }

    pub(super) fn access_request(
        &self,
        packet: &Packet<'_>,
        client: &Arc<Client>,
        from: SocketAddr,
        clock: Now,
        rng: Rng<'_>,
        pending: &mut Option<Paused>,
    ) -> Option<Vec<u8>> {
        let now = clock.monotonic;
        let Some(eap_bytes) = packet.eap_message() else {
            // MAC Authentication Bypass, or today's refusal (core/mab.rs).
            return self.without_eap(packet, client, from, rng);
        };
        let eap = match EapPacket::decode(&eap_bytes) {
            Ok(e) => e,
            Err(e) => return self.drop_packet(from, now, ReasonCode::EapMalformed, &e.to_string()),
        };
        let found = match packet.first(attr::STATE) {
            Some(state) => {
                self.continue_conversation(state, packet, client, from, clock, &eap, pending)
            }
            None => self.start_conversation(packet, client, from, now, &eap, rng),
        };
        let (key, step) = match found {
            Ok(x) => x,
            Err(reply) => return reply,
        };
        self.reply_for(step, key, packet, client, from, now, rng)
    }
    /// The next request of a conversation in progress, named by its State. Err: what to answer
    /// instead (a reject, or nothing: dropped, or paused for a lookup).
    #[expect(clippy::too_many_arguments, reason = "one request's whole context")]
    fn continue_conversation(
        &self,
        state: &[u8],
        packet: &Packet<'_>,
        client: &Arc<Client>,
        from: SocketAddr,
        clock: Now,
        eap: &EapPacket<'_>,
        pending: &mut Option<Paused>,
    ) -> Result<(StateKey, Step), Option<Vec<u8>>> {
        let now = clock.monotonic;
        let Ok(key) = StateKey::try_from(state) else {
            return Err(self.reject_unknown_state(packet, client, from, eap));
        };
        let checkout = lock(&self.sessions).checkout(&key, from.ip(), now);
        let session = match checkout {
            Checkout::Found(session) => session,
            Checkout::Busy => {
                return Err(self.drop_packet(
                    from,
                    now,
                    ReasonCode::SessionBusy,
                    "conversation already being processed",
                ));
            }
            Checkout::Unknown | Checkout::WrongNas => {
                return Err(self.reject_unknown_state(packet, client, from, eap));
            }
        };
        let request = request_info(packet, from);
        let (next, step) = session.handle(eap, &self.cx_for(&key), &request, clock);
        if let Step::Lookup(lookup) = &step
            && let Some(s) = next
        {
            // Stays checked out (Busy) until the verdict arrives.
            *pending = Some(((**lookup).clone(), Box::new(s), key, client.clone()));
            return Err(None);
        }
        {
            let mut t = lock(&self.sessions);
            match next {
                Some(s) => t.checkin(&key, Box::new(s), self.idle_deadline(now)),
                None => t.remove(&key),
            }
        }
        Ok((key, step))
    }

    /// The first request of a conversation: an EAP-Response/Identity without State. Err: what
    /// to answer instead (a reject, or nothing: dropped).
    fn start_conversation(
        &self,
        packet: &Packet<'_>,
        client: &Arc<Client>,
        from: SocketAddr,
        now: Instant,
        eap: &EapPacket<'_>,
        rng: Rng<'_>,
    ) -> Result<(StateKey, Step), Option<Vec<u8>>> {
        if eap.code != EapCode::Response || eap.typ != Some(EapType::Identity) {
            self.stats.incr(Counter::AccessRejects);
            self.stats.incr(ReasonCode::EapNoIdentity);
            self.log_refusal(
                from,
                client,
                packet,
                ReasonCode::EapNoIdentity,
                "no State and not an EAP-Response/Identity",
            );
            return Err(self.reject_eap(packet, client, eap.identifier));
        }
        // At a session limit a new conversation is dropped, not rejected: its NAS retransmits
        // and gets in once conversations finish (a re-authentication storm degrades into
        // retransmissions), where an Access-Reject would fail the supplicant at once.
        let room = lock(&self.sessions).has_room(client.id, client.max_sessions);
        if let Err(full) = room {
            let (name, what) = match full {
                Full::Total => (
                    ReasonCode::TooManySessions,
                    "eap.max_sessions reached: new conversation dropped, the NAS retransmits",
                ),
                Full::Client => (
                    ReasonCode::TooManySessionsForClient,
                    "client max_sessions reached: new conversation dropped, the NAS retransmits",
                ),
            };
            return Err(self.drop_packet(from, now, name, what));
        }
        let current = self.current.load();
        let tls_config = current.cx.tls.config_for(&client.tls);
        let (session, step) = match Session::start_with(eap, &current.cx, tls_config, now) {
            Ok(x) => x,
            Err(reason) => {
                self.stats.incr(Counter::AccessRejects);
                self.stats.incr(reason.code);
                self.log_refusal(from, client, packet, reason.code, &reason.detail);
                return Err(self.reject_eap(packet, client, eap.identifier));
            }
        };
        let mut key = [0u8; 16];
        rng(&mut key);
        lock(&self.sessions).insert(
            key,
            Box::new(session),
            client.id,
            from.ip(),
            self.idle_deadline(now),
        );
        self.stats.incr(Counter::SessionsStarted);
        Ok((key, step))
    }
}

/// A 32-bit integer attribute (RFC 2865 §5: four octets), None when absent or malformed.
pub(super) fn u32_attr(packet: &Packet<'_>, typ: u8) -> Option<u32> {
    let v = packet.first(typ)?;
    let b: [u8; 4] = v.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

pub(super) fn request_info<'a>(packet: &Packet<'a>, from: SocketAddr) -> RequestInfo<'a> {
    RequestInfo {
        method: crate::authz::Method::EapTls,
        nas: Some(from.ip()),
        user_name: packet.first(attr::USER_NAME),
        calling_station_id: packet.first(attr::CALLING_STATION_ID),
        called_station_id: packet.first(attr::CALLED_STATION_ID),
        nas_port_type: u32_attr(packet, attr::NAS_PORT_TYPE),
        framed_mtu: u32_attr(packet, attr::FRAMED_MTU),
        directory_groups: None,
    }
}
