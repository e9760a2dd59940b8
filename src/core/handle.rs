//! The request path, sans IO: one datagram in, at most one datagram out.
//!
//! This is the one place that decides where an error ends up:
//! - RADIUS-level problems (unknown NAS, malformed packet, bad or missing Message-Authenticator,
//!   retransmission in progress) are silently discarded and counted, as RFC 2865 §3 and
//!   RFC 3579 §3.2 require; a warning is logged at most once per reason, source and interval.
//! - EAP, TLS and policy failures become an Access-Reject carrying EAP-Failure (RFC 3579 §2.6),
//!   after any queued TLS alert was delivered in an Access-Challenge.
//!
//! Replies always carry Message-Authenticator as their first attribute (RFC 3579 §3.2; first
//! position defeats the BlastRADIUS collision, CVE-2024-3596) and a Response Authenticator
//! (RFC 2865 §3). Status-Server (RFC 5997) is answered here too.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwap;
use std::time::{Duration, Instant};

use tracing::{Level, debug, info};

use crate::authz::{Policy, RequestInfo};
use crate::config::Config;
use crate::core::clients::{Client, Clients};
use crate::core::dedup::{Dedup, Seen};
use crate::core::events::Observers;
use crate::core::guard::lock;
use crate::core::ratelimit::SourceLimiter;
use crate::core::sessions::{Checkout, Full, SessionTable, StateKey};
use crate::core::stats::Counter;
use crate::core::stats::Stats;
use crate::eap::{EapCode, EapPacket, EapType, ReassemblyBudget, ReassemblyLimits};
use crate::radius::dictionary::Dictionary;
use crate::radius::{self, Code, Packet, PacketBuilder, attr};
use crate::reason::ReasonCode;
use crate::session::{
    Now, OcspPolicy, RevocationLookup, RevocationVerdict, Session, SessionContext, Step,
};

/// What [`Core::handle`] asks of the shell.
pub enum Handled {
    Reply(Vec<u8>),
    Silent,
    /// Look the certificate up (OCSP), then call [`Core::resume`].
    Lookup(Box<Pending>),
}

/// A conversation paused for a revocation lookup, with what `resume` needs to answer.
pub struct Pending {
    pub lookup: RevocationLookup,
    session: Box<Session>,
    key: StateKey,
    datagram: Vec<u8>,
    from: SocketAddr,
    /// The client a stream connection identified (None: looked up by UDP source address).
    client: Option<usize>,
}

/// Randomness comes from the shell (the OS RNG in production, a seeded one in tests).
pub type Rng<'a> = &'a mut dyn FnMut(&mut [u8]);

pub struct Core {
    /// Swapped whole by a reload (see `reload.rs`).
    pub(super) clients: ArcSwap<Clients>,
    pub(super) sessions: Mutex<SessionTable>,
    pub(super) dedup: Mutex<Dedup>,
    pub(super) cx: ArcSwap<SessionContext>,
    pub stats: Stats,
    pub(super) dictionary: ArcSwap<Dictionary>,
    pub(super) session_timeout: ArcSwap<Duration>,
    /// Unknown sources over their packet budget.
    pub(super) strangers: SourceLimiter,
    /// A client learned Message-Authenticator ("auto") since the state file was last written.
    pub(super) learned_dirty: AtomicBool,
    /// Told about every finished authentication (metrics, audit log, accounting).
    pub(super) observers: RwLock<Observers>,
    /// Conversations started before a reload, with the configuration they started on.
    pub(super) pinned: super::reload::Pinned,
}

impl Core {
    pub fn new(
        config: &Config,
        tls: crate::tls::TlsSetup,
        policy: Arc<dyn Policy>,
        dictionary: Dictionary,
    ) -> Core {
        Core {
            clients: ArcSwap::from_pointee(Clients::new(&config.clients)),
            sessions: Mutex::new(SessionTable::new(config.eap.max_sessions)),
            dedup: Mutex::new(Dedup::new(
                config.server.duplicate_cache_entries,
                Duration::from_secs(config.server.duplicate_cache_secs),
            )),
            cx: ArcSwap::from_pointee(SessionContext {
                tls: std::sync::RwLock::new(tls),
                fragment_size: config.tls.fragment_size,
                reassembly: ReassemblyLimits {
                    max_message_len: config.eap.max_tls_message_size,
                    max_fragments: config.eap.max_fragments,
                },
                reassembly_budget: Some(ReassemblyBudget::new(
                    config.eap.max_reassembly_bytes_total,
                )),
                policy,
                ocsp: ocsp_policy(config),
            }),
            stats: Stats::default(),
            dictionary: ArcSwap::from_pointee(dictionary),
            session_timeout: ArcSwap::from_pointee(Duration::from_secs(
                config.eap.session_timeout_secs,
            )),
            strangers: SourceLimiter::new(config.server.bad_packet_rate_per_source),
            learned_dirty: AtomicBool::new(false),
            observers: RwLock::new(Vec::new()),
            pinned: Default::default(),
        }
    }

    /// Puts a rebuilt TLS configuration (new CRLs, renewed certificate) in force for new
    /// conversations.
    pub fn reload_tls(&self, config: crate::tls::TlsSetup) {
        if let Ok(mut c) = self.cx.load().tls.write() {
            *c = config;
        }
        self.stats.incr(Counter::ConfigReloads);
    }

    /// The TLS setup in force (the shell rebuilds from it, keeping the session cache).
    pub fn tls_setup(&self) -> Option<crate::tls::TlsSetup> {
        self.cx.load().tls_setup()
    }

    /// Replaces the observers told about every finished authentication.
    pub fn set_observers(&self, observers: Observers) {
        if let Ok(mut o) = self.observers.write() {
            *o = observers;
        }
    }

    pub fn clients(&self) -> Arc<Clients> {
        self.clients.load_full()
    }

    pub fn sessions_in_progress(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Handles one datagram for a caller that performs no revocation lookups (tests, fuzzing,
    /// the load generator): a lookup is answered "unavailable" at once, so `[ocsp]` soft-fail
    /// and CRL-fallback rules still apply.
    pub fn handle_datagram(
        &self,
        from: SocketAddr,
        datagram: &[u8],
        now: Now,
        rng: Rng<'_>,
    ) -> Option<Vec<u8>> {
        match self.handle(from, datagram, now, rng) {
            Handled::Reply(r) => Some(r),
            Handled::Silent => None,
            Handled::Lookup(p) => self.resume(
                *p,
                RevocationVerdict::Unavailable("no OCSP client in this caller".into()),
                now,
                rng,
            ),
        }
    }

    /// Handles one datagram from `from`: a reply, silence, or a revocation lookup the shell
    /// must perform before calling [`Core::resume`].
    pub fn handle(&self, from: SocketAddr, datagram: &[u8], now: Now, rng: Rng<'_>) -> Handled {
        self.handle_with(None, from, datagram, now, rng)
    }

    /// Handles one packet from a stream connection (RADIUS/TCP, RadSec) whose client the shell
    /// already identified (by address, transport and certificate): `client` is its
    /// [`Client::index`]; `from` is the connection's peer address, so duplicate detection is
    /// per connection (RFC 6613 §2.6.3).
    pub fn handle_from_client(
        &self,
        client: usize,
        from: SocketAddr,
        datagram: &[u8],
        now: Now,
        rng: Rng<'_>,
    ) -> Handled {
        self.handle_with(Some(client), from, datagram, now, rng)
    }

    fn handle_with(
        &self,
        client: Option<usize>,
        from: SocketAddr,
        datagram: &[u8],
        now: Now,
        rng: Rng<'_>,
    ) -> Handled {
        let mut pending = None;
        let reply = self.handle_inner(client, from, datagram, now, rng, &mut pending);
        if let Some((lookup, session, key)) = pending {
            self.stats.incr(Counter::RevocationLookups);
            return Handled::Lookup(Box::new(Pending {
                lookup,
                session,
                key,
                datagram: datagram.to_vec(),
                from,
                client,
            }));
        }
        match reply {
            Some(r) => Handled::Reply(r),
            None => Handled::Silent,
        }
    }

    fn handle_inner(
        &self,
        client_index: Option<usize>,
        from: SocketAddr,
        datagram: &[u8],
        clock: Now,
        rng: Rng<'_>,
        pending: &mut Option<(RevocationLookup, Box<Session>, StateKey)>,
    ) -> Option<Vec<u8>> {
        let now = clock.monotonic;
        self.stats.incr(Counter::PacketsReceived);
        let clients = self.clients.load_full();
        let found = match client_index {
            Some(i) => clients.get(i),
            None => clients.lookup(from.ip()),
        };
        let Some(client) = found else {
            if self.strangers.over_limit(from.ip(), now) {
                // Past the per-source budget: not even a rate-limited log line.
                self.stats.incr(Counter::PacketsDropped);
                self.stats.incr(Counter::RateLimitedSource);
                return None;
            }
            return self.drop_packet(
                from,
                now,
                ReasonCode::UnknownClient,
                "no [[client]] matches this address",
            );
        };
        let packet = match Packet::decode(datagram) {
            Ok(p) => p,
            Err(e) => {
                return self.drop_packet(from, now, ReasonCode::MalformedPacket, &e.to_string());
            }
        };
        client.requests.count(packet.code());
        if tracing::enabled!(Level::DEBUG) {
            debug!(
                "received from {from} ({}):\n{}",
                client.name,
                self.describe(&packet)
            );
        }
        let has_ma = packet.first(attr::MESSAGE_AUTHENTICATOR).is_some();
        if has_ma {
            if let Err(e) =
                radius::auth::verify_message_authenticator(&packet, &client.secret, None)
            {
                return self.drop_packet(
                    from,
                    now,
                    ReasonCode::BadMessageAuthenticator,
                    &format!("{e:?} (wrong shared secret?)"),
                );
            }
            if client.learn_message_authenticator() {
                self.learned_dirty.store(true, Ordering::Relaxed);
                info!(
                    client = %client.name,
                    "client sent a valid Message-Authenticator: requiring it from now on (auto)"
                );
            }
        }
        match packet.code() {
            Code::AccessRequest => {}
            Code::StatusServer => return self.status_server(&packet, client, from, now, has_ma),
            other => {
                return self.drop_packet(
                    from,
                    now,
                    ReasonCode::UnsupportedCode,
                    &format!("RADIUS code {}", u8::from(other)),
                );
            }
        }
        if !has_ma {
            // RFC 3579 §3.2: an Access-Request with EAP-Message must carry Message-Authenticator.
            if packet.first(attr::EAP_MESSAGE).is_some() || client.requires_message_authenticator()
            {
                return self.drop_packet(
                    from,
                    now,
                    ReasonCode::MissingMessageAuthenticator,
                    "Access-Request without Message-Authenticator",
                );
            }
            // BlastRADIUS: Proxy-State lets an attacker steer the MD5 collision; without a
            // Message-Authenticator from this client we do not trust it.
            if packet.first(attr::PROXY_STATE).is_some() {
                return self.drop_packet(
                    from,
                    now,
                    ReasonCode::ProxyStateWithoutMessageAuthenticator,
                    "Access-Request with Proxy-State but no Message-Authenticator",
                );
            }
        }
        self.stats.incr(Counter::AccessRequests);
        let key = (from, packet.identifier());
        let authenticator = *packet.authenticator();
        // A poisoned lock is recovered, never read as "not seen" (see core/guard.rs).
        let seen = lock(&self.dedup).check(key, &authenticator, now);
        match seen {
            Seen::Replay(reply) => {
                self.stats.incr(Counter::DuplicateAnsweredFromCache);
                debug!(
                    "retransmission from {from} id {}: cached reply",
                    packet.identifier()
                );
                return Some(reply.to_vec());
            }
            Seen::InProgress => {
                self.stats.incr(Counter::DuplicateInProgressDropped);
                return None;
            }
            Seen::New => {}
        }
        let reply = self.access_request(&packet, client, from, clock, rng, pending);
        if pending.is_some() {
            // The duplicate-cache entry stays "in progress": retransmissions during the lookup
            // are dropped, never looked up twice; the reply is cached when `resume` sends it.
            return None;
        }
        let cached = reply.as_deref().map(Arc::<[u8]>::from);
        lock(&self.dedup).complete(key, &authenticator, cached);
        reply
    }

    /// Continues a conversation paused by [`Handled::Lookup`] with the lookup's verdict.
    pub fn resume(
        &self,
        pending: Pending,
        verdict: RevocationVerdict,
        now: Now,
        rng: Rng<'_>,
    ) -> Option<Vec<u8>> {
        let now = now.monotonic;
        let Pending {
            session,
            key,
            datagram,
            from,
            client,
            ..
        } = pending;
        let clients = self.clients.load_full();
        let client = match client {
            Some(i) => clients.get(i),
            None => clients.lookup(from.ip()),
        };
        let (Some(client), Ok(packet)) = (client, Packet::decode(&datagram)) else {
            return None;
        };
        let request = request_info(&packet, from);
        let (next, step) = session.resume(verdict, &self.cx_for(&key), &request);
        {
            let mut t = lock(&self.sessions);
            match next {
                Some(s) => t.checkin(&key, Box::new(s), self.idle_deadline(now)),
                None => t.remove(&key),
            }
        }
        let reply = self.reply_for(step, key, &packet, client, from, now, rng);
        let cached = reply.as_deref().map(Arc::<[u8]>::from);
        lock(&self.dedup).complete((from, packet.identifier()), packet.authenticator(), cached);
        reply
    }

    /// When a conversation parked now is forgotten. `eap.session_timeout_secs` is bounded at
    /// load, so the addition cannot overflow; if it ever did, the conversation expires at once
    /// rather than panicking with the session table locked.
    fn idle_deadline(&self, now: Instant) -> Instant {
        now.checked_add(**self.session_timeout.load())
            .unwrap_or(now)
    }

    /// Evicts idle conversations; the shell calls this about once a second.
    pub fn sweep(&self, now: Instant) {
        let expired = lock(&self.sessions).sweep(now);
        self.prune_pinned();
        for s in expired {
            self.stats.incr(Counter::SessionsExpired);
            let summary = s.abandon();
            debug!(
                identity = %crate::escape::Escaped(&summary.identity),
                round_trips = summary.round_trips,
            resumed = summary.resumed,
                "conversation abandoned: idle past eap.session_timeout_secs"
            );
        }
    }

    fn access_request(
        &self,
        packet: &Packet<'_>,
        client: &Client,
        from: SocketAddr,
        clock: Now,
        rng: Rng<'_>,
        pending: &mut Option<(RevocationLookup, Box<Session>, StateKey)>,
    ) -> Option<Vec<u8>> {
        let now = clock.monotonic;
        let Some(eap_bytes) = packet.eap_message() else {
            self.stats.incr(Counter::AccessRejects);
            self.stats.incr(ReasonCode::NoEapMessage);
            self.log_refusal(
                from,
                client,
                packet,
                ReasonCode::NoEapMessage,
                "only EAP-TLS is served",
            );
            return self.encode(
                packet,
                client,
                PacketBuilder::new(Code::AccessReject, packet.identifier()),
            );
        };
        let eap = match EapPacket::decode(&eap_bytes) {
            Ok(e) => e,
            Err(e) => return self.drop_packet(from, now, ReasonCode::EapMalformed, &e.to_string()),
        };
        let request = request_info(packet, from);
        let state = packet.first(attr::STATE);
        let (key, step) = match state {
            Some(state) => {
                let Ok(key) = StateKey::try_from(state) else {
                    return self.reject_unknown_state(packet, client, from, &eap);
                };
                let checkout = lock(&self.sessions).checkout(&key, from.ip(), now);
                match checkout {
                    Checkout::Found(session) => {
                        let (next, step) =
                            session.handle(&eap, &self.cx_for(&key), &request, clock);
                        if let Step::Lookup(lookup) = &step
                            && let Some(s) = next
                        {
                            // Stays checked out (Busy) until the verdict arrives.
                            *pending = Some(((**lookup).clone(), Box::new(s), key));
                            return None;
                        }
                        {
                            let mut t = lock(&self.sessions);
                            match next {
                                Some(s) => t.checkin(&key, Box::new(s), self.idle_deadline(now)),
                                None => t.remove(&key),
                            }
                        }
                        (key, step)
                    }
                    Checkout::Busy => {
                        return self.drop_packet(
                            from,
                            now,
                            ReasonCode::SessionBusy,
                            "conversation already being processed",
                        );
                    }
                    Checkout::Unknown | Checkout::WrongNas => {
                        return self.reject_unknown_state(packet, client, from, &eap);
                    }
                }
            }
            None => {
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
                    return self.reject_eap(packet, client, eap.identifier);
                }
                // At a session limit a new conversation is dropped, not rejected: its NAS
                // retransmits and gets in once conversations finish (a re-authentication storm
                // degrades into retransmissions), where an Access-Reject would fail the
                // supplicant at once.
                let room = lock(&self.sessions).has_room(client.index, client.max_sessions);
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
                    return self.drop_packet(from, now, name, what);
                }
                let (session, step) = match Session::start(&eap, &self.cx.load(), now) {
                    Ok(x) => x,
                    Err(reason) => {
                        self.stats.incr(Counter::AccessRejects);
                        self.stats.incr(reason.code);
                        self.log_refusal(from, client, packet, reason.code, &reason.detail);
                        return self.reject_eap(packet, client, eap.identifier);
                    }
                };
                let mut key = [0u8; 16];
                rng(&mut key);
                lock(&self.sessions).insert(
                    key,
                    Box::new(session),
                    client.index,
                    from.ip(),
                    self.idle_deadline(now),
                );
                self.stats.incr(Counter::SessionsStarted);
                (key, step)
            }
        };
        self.reply_for(step, key, packet, client, from, now, rng)
    }
}

fn u32_attr(packet: &Packet<'_>, typ: u8) -> Option<u32> {
    let v = packet.first(typ)?;
    let b: [u8; 4] = v.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

fn request_info<'a>(packet: &Packet<'a>, from: SocketAddr) -> RequestInfo<'a> {
    RequestInfo {
        nas: Some(from.ip()),
        user_name: packet.first(attr::USER_NAME),
        calling_station_id: packet.first(attr::CALLING_STATION_ID),
        called_station_id: packet.first(attr::CALLED_STATION_ID),
        nas_port_type: u32_attr(packet, attr::NAS_PORT_TYPE),
        framed_mtu: u32_attr(packet, attr::FRAMED_MTU),
    }
}

pub(super) fn ocsp_policy(config: &Config) -> Option<OcspPolicy> {
    let o = &config.ocsp;
    if !o.enable {
        return None;
    }
    let crl_configured = config.tls.crl_scope() != crate::config::CrlScope::None;
    Some(OcspPolicy {
        url_override: o.url.clone().filter(|u| !u.is_empty()),
        soft_fail: o.soft_fail,
        crl_fallback: o.mode == crate::config::OcspMode::OcspThenCrl && crl_configured,
    })
}
