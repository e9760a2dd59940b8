//! The EAP-TLS conversation state machine (RFC 5216 §2.1, RFC 9190 §2.1), sans IO.
//!
//! A [`Session`] is created by an EAP-Response/Identity and answers it with EAP-TLS Start
//! (RFC 5216 §2.1.1). Each later EAP-Response is handed to [`Session::handle`], which consumes
//! the session and returns it (if the conversation goes on) together with a [`Step`]: the EAP
//! packet for an Access-Challenge, Access-Accept or Access-Reject — or `Discard` when the
//! response must be silently dropped (RFC 3748 §4.1: wrong Identifier).
//!
//! Fragmentation (RFC 5216 §2.1.5) is handled by `eap::fragment` and kept apart from TLS progress:
//! the phase says whether we are receiving the peer's flight or sending ours, and what happens when
//! our flight has been fully delivered (wait for the peer's next flight, accept, or reject after an
//! alert was delivered). No clock is read here: `now` comes in as an argument, and rustls reads
//! the time through it too (`tls::clock`). The state machine draws no randomness itself, but the
//! TLS handshake does: rustls takes its server random, ephemeral key shares and ticket nonces
//! from the crypto provider's generator (`crate::crypto`, seeded by the operating system), which
//! is not passed in. The core's `rng` argument serves what the core adds around a session (State,
//! Class, MPPE key salts).

use std::sync::Arc;
use std::time::Instant;

use crate::authz::{Decision, Grant, RequestInfo};
use crate::eap::{
    self, EapCode, EapPacket, EapType, FragmentError, Fragmenter, Progress, Reassembler,
    ReassemblyBudget, ReassemblyLimits, TlsFlags, TlsFrame,
};
pub use crate::reason::ReasonCode;

mod now;
use crate::tls::client_hello::ClientHello;
use crate::tls::keys::SessionKeys;
use crate::tls::{self, TlsEngine, VerifiedPeer};
pub use now::Now;

mod decide;
mod types;
pub use types::{
    Answer, DirectoryLookup, DirectoryPolicy, DirectoryVerdict, Lookup, OcspPolicy, Reason,
    RevocationLookup, RevocationVerdict, SessionContext, Step, Summary,
};

/// Largest TLS data octets we put in one EAP-TLS request whatever the NAS says: keeps the
/// Access-Challenge (EAP-Message split in 253-octet attributes, State, Message-Authenticator,
/// Proxy-State) under the 4096-octet RADIUS limit (RFC 2865 §3).
pub const MAX_FRAGMENT_FOR_RADIUS: usize = 3000;

/// TLS data octets per EAP-TLS request when `tls.fragment_size` is unset and the NAS sends no
/// Framed-MTU: FreeRADIUS's default, small enough for any NAS.
pub const DEFAULT_FRAGMENT_SIZE: usize = 1024;

/// The largest EAP packet (octets) a Framed-MTU is followed to when `tls.fragment_size` is
/// unset. Framed-MTU is the NAS-to-supplicant link's, not the path to us: at 1400 the
/// Access-Challenge (1400 octets of EAP in six attributes, State, Message-Authenticator, the
/// RADIUS header: 1468) still fits a 1500-octet IP packet, so a jumbo-frame NAS does not get
/// IP-fragmented RADIUS unless `fragment_size` asks for it.
pub const FOLLOWED_MTU_MAX: usize = 1400;

/// `tls.fragment_size` as the startup line and `certradius check` show it.
pub fn fragment_size_label(size: Option<usize>) -> String {
    use crate::eap::TLS_HEADER_OVERHEAD as OVERHEAD;
    match size {
        Some(n) => n.to_string(),
        None => format!(
            "auto (Framed-MTU - {OVERHEAD}, up to {}; {DEFAULT_FRAGMENT_SIZE} without Framed-MTU)",
            FOLLOWED_MTU_MAX - OVERHEAD
        ),
    }
}

/// Longest EAP identity we keep (RFC 3748 §5.1 sets no limit; RADIUS User-Name holds 253).
pub const MAX_IDENTITY_LEN: usize = 253;

/// What to do once our flight has been fully delivered and the peer answers it.
enum Then {
    /// The handshake goes on: the answer is the peer's next flight.
    Receive,
    /// Handshake done and authorized: the answer must be an empty ACK, then EAP-Success.
    Accept(Box<(SessionKeys, Grant)>),
    /// We delivered a TLS alert: whatever the peer answers, EAP-Failure.
    Reject(Reason),
}

enum Phase {
    Receiving(Reassembler),
    Sending {
        flight: Fragmenter,
        then: Then,
    },
    /// Handshake done, waiting for the shell's answer to a lookup.
    Deciding {
        next_id: u8,
        awaiting: Awaiting,
    },
}

/// Which lookup a deciding conversation waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Revocation,
    Directory,
}

pub struct Session {
    identity: Vec<u8>,
    tls: TlsEngine,
    phase: Phase,
    /// The Identifier of our outstanding EAP-Request: the response must carry it.
    request_id: u8,
    round_trips: u32,
    started: Instant,
    peer: Option<VerifiedPeer>,
    limits: ReassemblyLimits,
    budget: Option<Arc<ReassemblyBudget>>,
    /// The verifier of the configuration this conversation started with, for resumed sessions.
    verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    /// The CA certificates of that configuration (to find the issuer for OCSP).
    ca_certs: Arc<tls::CaCerts>,
    /// Chains that configuration re-verified for resumed sessions: later resumptions of the
    /// same chain skip the signatures. (Filled on the first resumption rather than on every full
    /// handshake, which would cost each full handshake two certificate parses and a hash.)
    verified: Arc<tls::VerifiedChains>,
    /// What the peer's first flight offered: the summary only, never its bytes.
    client_hello: Option<ClientHello>,
    /// Whether the peer's first flight was looked at (a second ClientHello, after a
    /// HelloRetryRequest, is not: the first says what the device offers).
    hello_read: bool,
    /// The account's groups once the directory found it (for the rules and the audit).
    directory_groups: Option<Arc<[String]>>,
    /// The facts the directory lookup was made with.
    directory_facts: Option<Arc<crate::directory::filter::FilterFacts>>,
}

impl Session {
    /// An empty reassembler for the peer's next message, on this conversation's budget.
    fn fresh_reassembler(&self) -> Reassembler {
        Reassembler::with_budget(self.limits, self.budget.clone())
    }

    /// Starts a conversation from an EAP-Response/Identity: answers with EAP-TLS Start.
    pub fn start(
        identity: &EapPacket<'_>,
        cx: &SessionContext,
        now: Instant,
    ) -> Result<(Session, Step), Reason> {
        Self::start_with(identity, cx, &cx.tls.config, now)
    }

    /// [`Session::start`] with the rustls configuration of the NAS (its TLS versions).
    pub fn start_with(
        identity: &EapPacket<'_>,
        cx: &SessionContext,
        tls_config: &Arc<rustls::ServerConfig>,
        now: Instant,
    ) -> Result<(Session, Step), Reason> {
        if identity.code != EapCode::Response || identity.typ != Some(EapType::Identity) {
            return Err(Reason::new(
                ReasonCode::EapNoIdentity,
                "a conversation must start with EAP-Response/Identity",
            ));
        }
        if identity.type_data.len() > MAX_IDENTITY_LEN {
            return Err(Reason::new(
                ReasonCode::IdentityTooLong,
                format!("{} octets", identity.type_data.len()),
            ));
        }
        let tls = TlsEngine::new(tls_config.clone()).map_err(Reason::from)?;
        let request_id = identity.identifier.wrapping_add(1);
        let session = Session {
            identity: identity.type_data.to_vec(),
            tls,
            phase: Phase::Receiving(Reassembler::with_budget(
                cx.reassembly,
                cx.reassembly_budget.clone(),
            )),
            request_id,
            round_trips: 1,
            started: now,
            peer: None,
            limits: cx.reassembly,
            budget: cx.reassembly_budget.clone(),
            verifier: cx.tls.verifier.clone(),
            ca_certs: cx.tls.ca_certs.clone(),
            verified: cx.tls.verified.clone(),
            client_hello: None,
            hello_read: false,
            directory_groups: None,
            directory_facts: None,
        };
        // RFC 5216 §2.1.1: EAP-TLS Start, the S flag set and no data.
        let start = TlsFrame {
            flags: TlsFlags {
                start: true,
                ..TlsFlags::default()
            },
            message_length: None,
            data: &[],
        };
        let step = Step::Challenge(eap::tls_request(request_id, &start));
        Ok((session, step))
    }

    pub fn identity(&self) -> &[u8] {
        &self.identity
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// Handles one EAP-Response of this conversation.
    pub fn handle(
        mut self,
        eap: &EapPacket<'_>,
        cx: &SessionContext,
        request: &RequestInfo<'_>,
        now: Now,
    ) -> (Option<Session>, Step) {
        if eap.code != EapCode::Response {
            return (Some(self), Step::Discard(ReasonCode::EapUnexpectedCode));
        }
        // RFC 3748 §4.1: a response whose Identifier does not match the outstanding request is
        // silently discarded; the conversation stays where it is.
        if eap.identifier != self.request_id {
            return (Some(self), Step::Discard(ReasonCode::EapWrongIdentifier));
        }
        self.round_trips = self.round_trips.saturating_add(1);
        match eap.typ {
            Some(EapType::Tls) => {}
            Some(EapType::Nak) => {
                return self.reject(
                    eap.identifier,
                    Reason::new(ReasonCode::EapNak, "the peer refused EAP-TLS (Legacy-Nak)"),
                );
            }
            Some(EapType::Identity) => {
                return self.reject(
                    eap.identifier,
                    Reason::new(
                        ReasonCode::EapIdentityInConversation,
                        "a new Identity in the middle of a conversation",
                    ),
                );
            }
            other => {
                let t = other.map(u8::from).unwrap_or(0);
                return self.reject(
                    eap.identifier,
                    Reason::new(ReasonCode::EapUnexpectedMethod, format!("EAP type {t}")),
                );
            }
        }
        let frame = match TlsFrame::decode(eap.type_data) {
            Ok(f) => f,
            Err(e) => {
                return self.reject(
                    eap.identifier,
                    Reason::new(ReasonCode::EapTlsMalformed, e.to_string()),
                );
            }
        };
        let next_id = eap.identifier.wrapping_add(1);
        let phase = std::mem::replace(
            &mut self.phase,
            Phase::Receiving(Reassembler::new(self.limits)),
        );
        match phase {
            Phase::Sending { flight, then } => {
                if !flight.is_done() {
                    // RFC 5216 §2.1.5: each fragment is acknowledged by an empty response.
                    if !frame.is_ack() {
                        return self.reject(
                            eap.identifier,
                            Reason::new(
                                ReasonCode::EapTlsExpectedAck,
                                "data instead of an ACK while we were sending fragments",
                            ),
                        );
                    }
                    return self.send_next(flight, then, next_id);
                }
                match then {
                    Then::Receive => {
                        let fresh = self.fresh_reassembler();
                        self.receive(fresh, frame, cx, request, next_id, now)
                    }
                    Then::Reject(reason) => self.reject(eap.identifier, reason),
                    Then::Accept(done) => {
                        if !frame.is_ack() {
                            return self.reject(
                                eap.identifier,
                                Reason::new(
                                    ReasonCode::EapTlsUnexpectedData,
                                    "data after the handshake finished",
                                ),
                            );
                        }
                        let (keys, grant) = *done;
                        let summary = self.summary();
                        (
                            None,
                            Step::Accept {
                                eap: eap::success(eap.identifier),
                                keys,
                                grant,
                                summary,
                            },
                        )
                    }
                }
            }
            Phase::Receiving(reassembler) => {
                self.receive(reassembler, frame, cx, request, next_id, now)
            }
            Phase::Deciding { next_id, awaiting } => {
                self.phase = Phase::Deciding { next_id, awaiting };
                (Some(self), Step::Discard(ReasonCode::SessionBusy))
            }
        }
    }

    /// The peer sent (part of) its TLS flight; `reassembler` holds what came before.
    fn receive(
        mut self,
        mut reassembler: Reassembler,
        frame: TlsFrame<'_>,
        cx: &SessionContext,
        request: &RequestInfo<'_>,
        next_id: u8,
        now: Now,
    ) -> (Option<Session>, Step) {
        let this_id = next_id.wrapping_sub(1);
        if frame.is_ack() {
            return self.reject(
                this_id,
                Reason::new(
                    ReasonCode::EapTlsUnexpectedAck,
                    "an empty response where the peer's TLS data was expected",
                ),
            );
        }
        let message = match reassembler.push(&frame) {
            Err(e) => {
                let code = match e {
                    FragmentError::BudgetExhausted => ReasonCode::ReassemblyBudgetExceeded,
                    _ => ReasonCode::EapTlsFragment,
                };
                return self.reject(this_id, Reason::new(code, e.to_string()));
            }
            Ok(Progress::NeedMore) => {
                // RFC 5216 §2.1.5: acknowledge a fragment with an empty EAP-TLS request.
                self.phase = Phase::Receiving(reassembler);
                self.request_id = next_id;
                return (
                    Some(self),
                    Step::Challenge(eap::tls_request(next_id, &TlsFrame::ack())),
                );
            }
            Ok(Progress::Complete(m)) => m,
        };
        if !self.hello_read {
            self.hello_read = true;
            self.client_hello = ClientHello::parse(&message).ok();
        }
        if let Err(failure) = self.tls.feed(&message, now.wall) {
            // Deliver the queued alert before EAP-Failure, so the peer learns why.
            let alert = self.tls.take_output();
            let reason = Reason::from(failure);
            if alert.is_empty() {
                return self.reject(this_id, reason);
            }
            return self.start_flight(alert, Then::Reject(reason), cx, request, next_id);
        }
        if self.tls.is_handshaking() {
            let out = self.tls.take_output();
            if out.is_empty() {
                // A complete TLS message that asks for no answer yet: invite the next one.
                self.request_id = next_id;
                return (
                    Some(self),
                    Step::Challenge(eap::tls_request(next_id, &TlsFrame::ack())),
                );
            }
            return self.start_flight(out, Then::Receive, cx, request, next_id);
        }
        // The handshake completed: the chain was verified by rustls, or for a resumed session
        // (restored without verification) again now.
        let peer = match self
            .tls
            .verified_peer(self.verifier.as_ref(), &self.verified, now.wall)
        {
            Ok(peer) => peer,
            Err(f) => return self.reject(this_id, f.into()),
        };
        self.peer = Some(peer.clone());
        if let Some(ocsp) = &cx.ocsp {
            // RFC 6960: ask the responder before deciding. The shell performs the lookup; this
            // conversation waits, checked out of the session table, until `resume`.
            let issuer = self.ca_certs.issuer_of(&peer);
            let lookup = RevocationLookup {
                leaf: peer.leaf().clone(),
                issuer,
                url_override: ocsp.url_override.clone(),
            };
            self.phase = Phase::Deciding {
                next_id,
                awaiting: Awaiting::Revocation,
            };
            return (
                Some(self),
                Step::Lookup(Box::new(Lookup::Revocation(lookup))),
            );
        }
        self.after_revocation(peer, cx, request, next_id)
    }

    /// The policy decision, the TLS 1.3 success indication, keys, and the final flight.
    fn authorize_and_finish(
        self,
        peer: VerifiedPeer,
        cx: &SessionContext,
        request: &RequestInfo<'_>,
        next_id: u8,
    ) -> (Option<Session>, Step) {
        let mut this = self;
        let this_id = next_id.wrapping_sub(1);
        let groups = this.directory_groups.clone();
        let mut request = request.clone();
        request.directory_groups = groups.as_deref();
        let request = &request;
        let grant = match cx.policy.authorize(&this.identity, &peer, request) {
            Decision::Accept(g) => g,
            Decision::Reject { reason, detail } => {
                return this.reject(this_id, Reason::new(reason, detail));
            }
        };
        if this.tls.is_tls13()
            && let Err(f) = this.tls.queue_success_indication()
        {
            return this.reject(this_id, f.into());
        }
        let keys = match this.tls.keys() {
            Ok(k) => k,
            Err(e) => {
                return this.reject(
                    this_id,
                    Reason::new(ReasonCode::KeyDerivation, e.to_string()),
                );
            }
        };
        let out = this.tls.take_output();
        if out.is_empty() {
            // Nothing left to tell the peer (a resumed TLS 1.2 handshake ends with the
            // client's Finished, RFC 5216 §2.1.3): succeed now.
            let summary = this.summary();
            return (
                None,
                Step::Accept {
                    eap: eap::success(this_id),
                    keys,
                    grant,
                    summary,
                },
            );
        }
        this.start_flight(
            out,
            Then::Accept(Box::new((keys, grant))),
            cx,
            request,
            next_id,
        )
    }

    fn start_flight(
        self,
        out: Vec<u8>,
        then: Then,
        cx: &SessionContext,
        request: &RequestInfo<'_>,
        next_id: u8,
    ) -> (Option<Session>, Step) {
        let flight = Fragmenter::new(out, cx.max_fragment(request.framed_mtu));
        self.send_next(flight, then, next_id)
    }

    fn send_next(
        mut self,
        mut flight: Fragmenter,
        then: Then,
        next_id: u8,
    ) -> (Option<Session>, Step) {
        let packet = match flight.next_frame() {
            Some(frame) => eap::tls_request(next_id, &frame),
            None => eap::tls_request(next_id, &TlsFrame::ack()),
        };
        self.request_id = next_id;
        self.phase = Phase::Sending { flight, then };
        (Some(self), Step::Challenge(packet))
    }

    fn reject(self, response_id: u8, reason: Reason) -> (Option<Session>, Step) {
        let summary = self.summary();
        (
            None,
            Step::Reject {
                eap: eap::failure(response_id),
                reason,
                summary,
            },
        )
    }

    fn summary(&self) -> Box<Summary> {
        Box::new(Summary {
            identity: self.identity.clone(),
            ca_chain: self
                .peer
                .as_ref()
                .map(|p| self.ca_certs.chain_of(p))
                .unwrap_or_default(),
            peer: self.peer.clone(),
            tls_version: tls::version_name(self.tls.version()),
            cipher_suite: self
                .tls
                .cipher_suite()
                .map(|s| format!("{s:?}"))
                .unwrap_or_else(|| "none".into()),
            round_trips: self.round_trips,
            started: self.started,
            resumed: self.tls.is_resumed(),
            client_hello: self.client_hello,
            signature_scheme: self.tls.client_signature_scheme(),
            group: self.tls.key_exchange_group(),
            directory_groups: self.directory_groups.clone(),
            directory_facts: self
                .directory_groups
                .as_ref()
                .and(self.directory_facts.clone()),
        })
    }

    /// A summary for a conversation the server abandons (idle timeout, table eviction).
    pub fn abandon(self) -> Box<Summary> {
        self.summary()
    }
}

#[cfg(test)]
mod tests;
