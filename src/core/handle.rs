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

use super::snapshot::{Snapshot, session_context};

use tracing::{Level, debug, info};

use crate::authz::Policy;
use crate::config::Config;
use crate::core::clients::{Client, Clients};
use crate::core::dedup::{Dedup, Seen};
use crate::core::events::Observers;
use crate::core::guard::lock;
use crate::core::ratelimit::SourceLimiter;
use crate::core::sessions::{SessionTable, StateKey};
use crate::core::stats::Counter;
use crate::core::stats::Stats;
use crate::radius::dictionary::Dictionary;
use crate::radius::{self, Code, Packet, attr};
use crate::reason::ReasonCode;
use crate::session::{Answer, DirectoryVerdict, Lookup, Now, RevocationVerdict, Session};

/// What [`Core::handle`] asks of the shell.
pub enum Handled {
    Reply(Vec<u8>),
    Silent,
    /// Look the certificate up (OCSP) or its account (directory), then call [`Core::resume`].
    Lookup(Box<Pending>),
}

/// A conversation paused for a lookup, with what `resume` needs to answer.
pub struct Pending {
    pub lookup: Lookup,
    pub(super) session: Box<Session>,
    pub(super) key: StateKey,
    pub(super) datagram: Vec<u8>,
    pub(super) from: SocketAddr,
    /// The client the request came from (a reply is signed with its secret even if a reload
    /// changed the table meanwhile).
    pub(super) client: Arc<Client>,
}

/// A conversation the request path paused for a lookup: what becomes a [`Pending`].
pub(super) type Paused = (Lookup, Box<Session>, StateKey, Arc<Client>);

/// Randomness comes from the shell (the OS RNG in production, a seeded one in tests).
pub type Rng<'a> = &'a mut dyn FnMut(&mut [u8]);

pub struct Core {
    /// The configuration in force, swapped whole by a reload (see `snapshot.rs`, `reload.rs`).
    pub(super) current: ArcSwap<Snapshot>,
    pub(super) sessions: Mutex<SessionTable>,
    pub(super) dedup: Mutex<Dedup>,
    pub stats: Stats,
    /// Unknown sources over their packet budget.
    pub(super) strangers: SourceLimiter,
    /// A client learned Message-Authenticator ("auto") since the state file was last written.
    pub(super) learned_dirty: AtomicBool,
    /// Told about every finished authentication (metrics, audit log, accounting).
    pub(super) observers: RwLock<Observers>,
    /// Conversations started before a reload, with the configuration they started on.
    pub(super) pinned: super::reload::Pinned,
    /// Whether this instance can authenticate, as the shell last assessed it.
    pub readiness: super::readiness::Readiness,
}

impl Core {
    /// A core for callers that serve neither RadSec nor metrics (tests, fuzzing, the load
    /// generator): the snapshot is made of these parts alone (no MAB allow list: MAB is off).
    pub fn new(
        config: &Config,
        tls: crate::tls::TlsSetup,
        policy: Arc<dyn Policy>,
        dictionary: Dictionary,
    ) -> Core {
        let snapshot = Snapshot {
            config: Arc::new(config.clone()),
            clients: Arc::new(Clients::new(&config.clients)),
            cx: Arc::new(session_context(config, tls, policy, None)),
            dictionary: Arc::new(dictionary),
            radsec: None,
            crls: Arc::default(),
            inventory: Arc::default(),
            mab: None,
            directory: None,
            generation: 0,
        };
        Core::with_snapshot(snapshot)
    }

    /// A core serving `snapshot` (built by the shell, `server::reload`).
    pub fn with_snapshot(snapshot: Snapshot) -> Core {
        let config = snapshot.config.clone();
        Core {
            current: ArcSwap::from_pointee(snapshot),
            sessions: Mutex::new(SessionTable::new(config.eap.max_sessions)),
            dedup: Mutex::new(Dedup::new(
                config.server.duplicate_cache_entries,
                Duration::from_secs(config.server.duplicate_cache_secs),
            )),
            stats: Stats::default(),
            strangers: SourceLimiter::new(config.server.bad_packet_rate_per_source),
            learned_dirty: AtomicBool::new(false),
            observers: RwLock::new(Vec::new()),
            pinned: Default::default(),
            readiness: Default::default(),
        }
    }

    /// The configuration in force.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The TLS setup in force (the shell rebuilds from it, keeping the session cache).
    pub fn tls_setup(&self) -> crate::tls::TlsSetup {
        self.current.load().cx.tls.clone()
    }

    /// Replaces the observers told about every finished authentication.
    pub fn set_observers(&self, observers: Observers) {
        if let Ok(mut o) = self.observers.write() {
            *o = observers;
        }
    }

    pub fn clients(&self) -> Arc<Clients> {
        self.current.load().clients.clone()
    }

    pub fn sessions_in_progress(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Handles one datagram for a caller that performs no lookups (tests, fuzzing, the load
    /// generator): a lookup is answered "unavailable" at once, so `[ocsp]` soft-fail and
    /// CRL-fallback rules still apply (and a directory refuses with `directory_unavailable`).
    pub fn handle_datagram(
        &self,
        from: SocketAddr,
        datagram: &[u8],
        now: Now,
        rng: Rng<'_>,
    ) -> Option<Vec<u8>> {
        let mut handled = self.handle(from, datagram, now, rng);
        loop {
            match handled {
                Handled::Reply(r) => return Some(r),
                Handled::Silent => return None,
                Handled::Lookup(p) => {
                    let answer = match p.lookup {
                        Lookup::Revocation(_) => Answer::Revocation(
                            RevocationVerdict::Unavailable("no OCSP client in this caller".into()),
                        ),
                        Lookup::Directory(_) => Answer::Directory(DirectoryVerdict::Unavailable(
                            "no directory client in this caller".into(),
                        )),
                    };
                    handled = self.resume(*p, answer, now, rng);
                }
            }
        }
    }

    /// Handles one datagram from `from`: a reply, silence, or a revocation lookup the shell
    /// must perform before calling [`Core::resume`].
    pub fn handle(&self, from: SocketAddr, datagram: &[u8], now: Now, rng: Rng<'_>) -> Handled {
        self.handle_with(None, from, datagram, now, rng)
    }

    /// Handles one packet from a stream connection (RADIUS/TCP, RadSec) whose client the shell
    /// already identified (by address, transport and certificate); `from` is the connection's
    /// peer address, so duplicate detection is per connection (RFC 6613 §2.6.3).
    pub fn handle_from_client(
        &self,
        client: &Arc<Client>,
        from: SocketAddr,
        datagram: &[u8],
        now: Now,
        rng: Rng<'_>,
    ) -> Handled {
        self.handle_with(Some(client), from, datagram, now, rng)
    }

    fn handle_with(
        &self,
        client: Option<&Arc<Client>>,
        from: SocketAddr,
        datagram: &[u8],
        now: Now,
        rng: Rng<'_>,
    ) -> Handled {
        let mut pending = None;
        let reply = self.handle_inner(client, from, datagram, now, rng, &mut pending);
        if let Some((lookup, session, key, client)) = pending {
            if matches!(lookup, Lookup::Revocation(_)) {
                self.stats.incr(Counter::RevocationLookups);
            }
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
        client: Option<&Arc<Client>>,
        from: SocketAddr,
        datagram: &[u8],
        clock: Now,
        rng: Rng<'_>,
        pending: &mut Option<Paused>,
    ) -> Option<Vec<u8>> {
        let now = clock.monotonic;
        self.stats.incr(Counter::PacketsReceived);
        let snapshot = self.current.load();
        let found = match client {
            Some(c) => Some(c),
            None => snapshot.clients.lookup(from.ip()),
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
        let has_ma = self.authenticate(&packet, client, from, now)?;
        if matches!(packet.code(), Code::AccessRequest | Code::StatusServer)
            && self.readiness.drops_requests()
        {
            // RFC 5997 §4: unanswered, so the NAS marks us dead and fails over rather than
            // having its users rejected by a server that cannot authenticate them.
            self.stats.incr(Counter::PacketsDropped);
            self.stats.incr(Counter::NotReadyDropped);
            return None;
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
        if !has_ma && !self.may_go_without_authenticator(&packet, client, from, now) {
            return None;
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

    /// Checks a Message-Authenticator when there is one (RFC 3579 §3.2) and learns that the
    /// client sends it ("auto"). Some(whether there was one), or None: dropped.
    fn authenticate(
        &self,
        packet: &Packet<'_>,
        client: &Client,
        from: SocketAddr,
        now: Instant,
    ) -> Option<bool> {
        if packet.first(attr::MESSAGE_AUTHENTICATOR).is_none() {
            return Some(false);
        }
        if let Err(e) = radius::auth::verify_message_authenticator(packet, &client.secret, None) {
            self.drop_packet(
                from,
                now,
                ReasonCode::BadMessageAuthenticator,
                &format!("{e:?} (wrong shared secret?)"),
            );
            return None;
        }
        if client.learn_message_authenticator() {
            self.learned_dirty.store(true, Ordering::Relaxed);
            info!(
                client = %client.name,
                "client sent a valid Message-Authenticator: requiring it from now on (auto)"
            );
        }
        Some(true)
    }

    /// Whether an Access-Request without Message-Authenticator may be processed; false:
    /// dropped.
    fn may_go_without_authenticator(
        &self,
        packet: &Packet<'_>,
        client: &Client,
        from: SocketAddr,
        now: Instant,
    ) -> bool {
        // RFC 3579 §3.2: an Access-Request with EAP-Message must carry Message-Authenticator.
        if packet.first(attr::EAP_MESSAGE).is_some() || client.requires_message_authenticator() {
            self.drop_packet(
                from,
                now,
                ReasonCode::MissingMessageAuthenticator,
                "Access-Request without Message-Authenticator",
            );
            return false;
        }
        // BlastRADIUS: Proxy-State lets an attacker steer the MD5 collision; without a
        // Message-Authenticator from this client we do not trust it.
        if packet.first(attr::PROXY_STATE).is_some() {
            self.drop_packet(
                from,
                now,
                ReasonCode::ProxyStateWithoutMessageAuthenticator,
                "Access-Request with Proxy-State but no Message-Authenticator",
            );
            return false;
        }
        true
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
}
