//! One simulated NAS: a UDP socket connected to the server, carrying up to 256 EAP-TLS
//! conversations at once, told apart by the RADIUS Identifier (RFC 2865 §3: the Identifier
//! matches a reply to its request; it is one octet, hence at most 256 outstanding requests per
//! source address and port).
//!
//! `certradius_testkit::peer::Nas` numbers its requests per conversation, so every conversation would
//! start at Identifier 0; this NAS re-stamps each request with an Identifier it allocates for
//! the socket and recomputes the Message-Authenticator (RFC 3579 §3.2: HMAC-MD5 over the whole
//! packet, Identifier included). Free Identifiers are reused in FIFO order so that a late
//! duplicate reply is unlikely to meet a new request with the same Identifier, and any reply
//! whose Response Authenticator does not match the outstanding request is discarded, as
//! RFC 2865 §3 says a NAS must.
//!
//! Retransmission (RFC 5080 §2.2.1 style): the same packet, same Identifier and Request
//! Authenticator, after `timeout`, at most `retries` times.
//!
//! With `--pace-ms` each next request, and the next conversation of a slot, waits in a
//! [`Pacer`] first (see `pace.rs`); a waiting conversation keeps its place in the socket's width.
//!
//! Several servers (`--server A,B,C`): like a NAS configured with a primary and secondaries,
//! each socket sends to its current server (the sockets' first choices rotate through the list,
//! as a campus spreads its NAS over the pool). A request that got no reply after every
//! retransmission marks that server dead for this NAS (RFC 5080 §2.2.1 failover): the NAS moves
//! to the next server in the list and the conversation starts again from EAP-Start there, as a
//! supplicant's EAPOL restarts when its authenticator gives up (the new server knows nothing of
//! the old conversation's State). A dead server is not tried again during the run.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use tokio::net::UdpSocket;

use certradius::radius::{Packet, SharedSecret, attr, verify_response_authenticator};
use certradius_testkit::peer::{Conversation, Nas, Next, Outcome, PeerError, Supplicant};

use crate::pace::{Pacer, PreciseTimer};
use crate::rng::Rng;
use crate::stats::{Failure, Stats, micros};

/// What every NAS of the run shares.
pub struct Plan {
    /// The servers, in the NAS's order of preference (one for a single server).
    pub servers: Vec<std::net::SocketAddr>,
    /// NAS sockets created so far: socket n starts on server n mod `servers.len()`.
    pub sockets: std::sync::atomic::AtomicUsize,
    pub secret: Vec<u8>,
    pub clients: Vec<Arc<rustls::ClientConfig>>,
    /// The same clients with a shared TLS session store (for `--resume`).
    pub resuming: Vec<Arc<rustls::ClientConfig>>,
    /// Share of conversations started with a `resuming` configuration, 0.0..=1.0.
    pub resume_share: f64,
    pub server_name: String,
    /// The EAP identity; `{n}` in it is replaced by the conversation's number (0, 1, ...), so
    /// that every conversation is a distinct user.
    pub identity: String,
    /// Conversations given an identity so far (the `{n}` of the next one, modulo
    /// `identity_cycle` when that is not 0).
    pub identities: AtomicU64,
    pub identity_cycle: u64,
    pub fragment_size: usize,
    pub framed_mtu: Option<u32>,
    pub expect_version: rustls::ProtocolVersion,
    pub timeout: Duration,
    pub retries: u32,
    /// Accept replies whose Message-Authenticator is valid but not the first attribute (see
    /// [`normalize_reply`]).
    pub lenient_message_authenticator: bool,
    /// Share of replies to drop on purpose, 0.0..=1.0.
    pub loss: f64,
    /// Stop starting conversations after this many ...
    pub count: Option<u64>,
    /// ... or after this instant.
    pub deadline: Option<Instant>,
    /// Conversations started so far, all threads.
    pub started: AtomicU64,
    /// When the run started (completion times are reported from here).
    pub t0: Instant,
    /// Storm mode: `count` conversations started evenly over this window from `t0`.
    pub storm_window: Option<Duration>,
    /// `--pace-ms`: the supplicants' mean think time before each request (zero: none).
    pub pace: Duration,
}

impl Plan {
    /// Claims the right to start one more conversation.
    fn may_start(&self, now: Instant) -> bool {
        if self.deadline.is_some_and(|d| now >= d) {
            return false;
        }
        if let (Some(window), Some(total)) = (self.storm_window, self.count) {
            // Storm: by now, at most this many may have started (evenly over the window).
            let share = now.duration_since(self.t0).as_secs_f64() / window.as_secs_f64().max(1e-6);
            let allowed = ((total as f64) * share.min(1.0)).ceil() as u64;
            if self.started.load(Ordering::Relaxed) >= allowed.max(1) {
                return false;
            }
        }
        let n = self.started.fetch_add(1, Ordering::Relaxed);
        self.count.is_none_or(|c| n < c)
    }

    /// The identity of the next conversation (`{n}` replaced by its number).
    fn next_identity(&self) -> Vec<u8> {
        if !self.identity.contains("{n}") {
            return self.identity.as_bytes().to_vec();
        }
        let mut n = self.identities.fetch_add(1, Ordering::Relaxed);
        if self.identity_cycle > 0 {
            n %= self.identity_cycle;
        }
        self.identity.replace("{n}", &n.to_string()).into_bytes()
    }

    /// No conversation may start any more (without claiming one, unlike [`Plan::may_start`]).
    fn exhausted(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
            || self
                .count
                .is_some_and(|c| self.started.load(Ordering::Relaxed) >= c)
    }
}

/// One conversation in flight, filed under the Identifier of its outstanding request.
struct Slot {
    conv: Conversation,
    /// The client configuration, kept to start the conversation again on another server.
    client: Arc<rustls::ClientConfig>,
    /// Index in `Plan::servers` of the server this conversation talks to.
    server: usize,
    /// Times the conversation started again on another server.
    restarts: u32,
    /// Its EAP identity (the same when it starts again elsewhere).
    identity: Vec<u8>,
    /// The request as sent (with our Identifier), kept for retransmission.
    packet: Vec<u8>,
    authenticator: [u8; 16],
    /// First transmission of the outstanding request.
    request_sent: Instant,
    /// Last (re)transmission, for the timeout.
    last_sent: Instant,
    tries: u32,
    conversation_start: Instant,
    round_trips: u32,
}

/// What waits in the pacer.
enum Paced {
    /// A conversation's next request.
    Send(Box<Slot>),
    /// A new conversation; `first`: one of the socket's first, started at a random phase.
    Start { first: bool },
}

pub struct NasSocket {
    plan: Arc<Plan>,
    /// Sends go straight to the non-blocking socket: tokio's `try_send` would report
    /// WouldBlock until its reactor first saw the socket writable.
    sender: std::net::UdpSocket,
    /// The same socket, registered with the runtime, for waiting on replies.
    receiver: UdpSocket,
    /// The server new conversations go to (index in `Plan::servers`), until it is found dead.
    current: usize,
    /// Servers this NAS found dead.
    dead: Vec<bool>,
    /// How many conversations this socket keeps in flight (at most 256).
    width: usize,
    slots: Vec<Option<Box<Slot>>>,
    free: VecDeque<u8>,
    in_flight: usize,
    rng: Rng,
    secret: SharedSecret,
    next_client: usize,
    /// `--pace-ms`: requests and starts waiting for their time, and the timer they wait on.
    pacer: Pacer<Paced>,
    timer: PreciseTimer,
    /// Of the pacer's items, conversations not started yet (they hold a place in `width`).
    waiting_starts: usize,
    /// The socket has filled its width once (later starts follow a finished conversation).
    filled_once: bool,
    /// Storm mode: conversations this socket has started. Each socket starts its own `width`
    /// supplicants evenly over the window, as each NAS has its own; with one shared quota the
    /// busiest socket (woken by every reply) would take the starts of the quiet ones.
    storm_started: u64,
    pub stats: Stats,
}

impl NasSocket {
    /// Must be called inside a tokio runtime (the receiving half registers with its reactor).
    pub fn new(plan: Arc<Plan>, width: usize, seed: u64) -> Result<Self, String> {
        let first = plan.servers.first().ok_or("no server")?;
        let bind = if first.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let sender = std::net::UdpSocket::bind(bind).map_err(|e| format!("bind: {e}"))?;
        // A real NAS reads its replies as they come; with 255 conversations per socket and
        // every server flight arriving at once in a storm, the default receive buffer
        // (~200 KiB) overflows and the lost replies would be charged to the server as
        // retransmissions. Capped by net.core.rmem_max.
        let _ = socket2::SockRef::from(&sender).set_recv_buffer_size(4 << 20);
        // One server: a connected socket (the kernel filters other sources). Several: unconnected,
        // each reply's source checked against its conversation's server.
        if let [only] = plan.servers.as_slice() {
            sender
                .connect(only)
                .map_err(|e| format!("connect to {only}: {e}"))?;
        }
        let n = plan.servers.len();
        let current = plan.sockets.fetch_add(1, Ordering::Relaxed) % n;
        sender
            .set_nonblocking(true)
            .map_err(|e| format!("non-blocking socket: {e}"))?;
        let receiver = sender
            .try_clone()
            .and_then(UdpSocket::from_std)
            .map_err(|e| format!("socket: {e}"))?;
        let secret = SharedSecret::new(plan.secret.clone());
        Ok(NasSocket {
            sender,
            receiver,
            current,
            dead: vec![false; n],
            width: width.clamp(1, 256),
            slots: (0..256).map(|_| None).collect(),
            free: (0..=255u8).collect(),
            in_flight: 0,
            rng: Rng::new(seed),
            secret,
            next_client: usize::try_from(seed % 1024).unwrap_or(0),
            pacer: Pacer::new(plan.pace),
            timer: PreciseTimer::new()?,
            waiting_starts: 0,
            filled_once: false,
            storm_started: 0,
            stats: Stats::default(),
            plan,
        })
    }

    /// Runs until the plan allows no more conversations and all in flight have ended.
    pub async fn run(mut self) -> Stats {
        let mut buf = vec![0u8; 65536];
        let tick =
            (self.plan.timeout / 4).clamp(Duration::from_millis(1), Duration::from_millis(50));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let now = Instant::now();
            self.send_due(now);
            self.fill(now);
            if self.in_flight == 0 && self.pacer.is_empty() && !self.storm_pending() {
                break;
            }
            // A timer, not a spin: the task sleeps until the earliest paced item is due.
            let due = self.pacer.next_due();
            let timer = &self.timer;
            let paced = async move {
                match due {
                    Some(d) => timer.sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                r = self.receiver.recv_from(&mut buf) => {
                    // Take this datagram and whatever else is already queued, without waiting.
                    // Errors (ICMP port unreachable and the like) end the batch; the
                    // timeout deals with whatever they cost.
                    let mut r = r;
                    while let Ok((n, from)) = r {
                        self.on_datagram(buf.get(..n).unwrap_or_default(), from);
                        r = self.receiver.try_recv_from(&mut buf);
                    }
                }
                _ = paced => {}
                _ = ticker.tick() => self.check_timeouts(Instant::now()),
            }
        }
        self.stats
    }

    /// Storm mode: this socket may still get conversations to start later in the window.
    fn storm_pending(&self) -> bool {
        match (self.plan.storm_window, self.plan.count) {
            (Some(_), Some(total)) => {
                self.storm_started < self.width as u64
                    && self.plan.started.load(Ordering::Relaxed) < total
            }
            _ => false,
        }
    }

    /// Starts conversations until the socket is `width` wide or the plan says stop. Paced:
    /// files the starts with the pacer instead (the socket's first ones spread over one pace).
    fn fill(&mut self, now: Instant) {
        if let Some(window) = self.plan.storm_window {
            let share =
                now.duration_since(self.plan.t0).as_secs_f64() / window.as_secs_f64().max(1e-6);
            let mine = ((self.width as f64) * share.min(1.0)).ceil() as u64;
            while self.in_flight < self.width
                && self.storm_started < mine.max(1)
                && self.plan.may_start(now)
            {
                self.storm_started += 1;
                self.start(now);
            }
            return;
        }
        if !self.pacer.enabled() {
            while self.in_flight < self.width && self.plan.may_start(now) {
                self.start(now);
            }
            return;
        }
        let first = !self.filled_once;
        while self.in_flight + self.waiting_starts < self.width && !self.plan.exhausted(now) {
            let unit = self.rng.unit();
            if first {
                self.pacer.hold_first(now, Paced::Start { first }, unit);
            } else {
                self.pacer.hold(now, Paced::Start { first }, unit);
            }
            self.waiting_starts += 1;
        }
        self.filled_once = true;
    }

    /// Sends the paced requests and starts the paced conversations that are due.
    fn send_due(&mut self, now: Instant) {
        while let Some((item, held)) = self.pacer.take_due(now) {
            match item {
                Paced::Send(slot) => {
                    self.stats.pace_gap_us.push(micros(held));
                    self.send_new(slot, now);
                }
                Paced::Start { first } => {
                    self.waiting_starts = self.waiting_starts.saturating_sub(1);
                    // Another thread may have taken the last conversation meanwhile.
                    if self.plan.may_start(now) {
                        if !first {
                            self.stats.pace_gap_us.push(micros(held));
                        }
                        self.start(now);
                    }
                }
            }
        }
    }

    fn start(&mut self, now: Instant) {
        // Spread the resuming share evenly: conversation n resumes when n * share crosses an
        // integer.
        let n = self.next_client as f64;
        let resume =
            ((n + 1.0) * self.plan.resume_share).floor() > (n * self.plan.resume_share).floor();
        let pool = if resume {
            &self.plan.resuming
        } else {
            &self.plan.clients
        };
        let Some(client) = pool.get(self.next_client % pool.len().max(1)).cloned() else {
            return;
        };
        self.next_client = self.next_client.wrapping_add(1);
        let identity = self.plan.next_identity();
        let supplicant = match Supplicant::new(
            client.clone(),
            &self.plan.server_name,
            &identity,
            self.plan.fragment_size,
        ) {
            Ok(s) => s,
            Err(e) => {
                self.stats
                    .fail(Failure::BadReply, || format!("supplicant setup: {e}"));
                return;
            }
        };
        let mut conv = Conversation::new(supplicant, self.nas(&identity));
        let authenticator = self.rng.authenticator();
        let packet = conv.start(authenticator);
        let slot = Box::new(Slot {
            conv,
            client,
            server: self.current,
            restarts: 0,
            identity,
            packet,
            authenticator,
            request_sent: now,
            last_sent: now,
            tries: 0,
            conversation_start: now,
            round_trips: 0,
        });
        self.in_flight += 1;
        self.send_new(slot, now);
    }

    /// The NAS side of a new conversation.
    fn nas(&self, identity: &[u8]) -> Nas {
        let mut nas = Nas::new(&self.plan.secret);
        nas.framed_mtu = self.plan.framed_mtu;
        // RFC 3579 §2.1: the NAS copies the EAP identity into User-Name.
        nas.user_name = Some(identity.to_vec());
        nas
    }

    /// Sends a request to the server of its conversation.
    fn transmit(&self, packet: &[u8], server: usize) -> std::io::Result<usize> {
        transmit(&self.sender, &self.plan.servers, packet, server)
    }

    /// The conversation's server stayed silent through every retransmission: the NAS marks it
    /// dead, moves on to the next live one, and the supplicant starts again there. Returns
    /// false when no other server is left.
    fn fail_over(&mut self, mut slot: Box<Slot>, now: Instant) -> bool {
        let n = self.plan.servers.len();
        if let Some(d) = self.dead.get_mut(slot.server)
            && !*d
        {
            *d = true;
            self.stats.failovers += 1;
        }
        if self.dead.get(self.current).copied().unwrap_or(true) {
            match (1..=n)
                .map(|k| (self.current + k) % n)
                .find(|&i| !self.dead.get(i).copied().unwrap_or(true))
            {
                Some(next) => self.current = next,
                None => return false,
            }
        }
        let supplicant = match Supplicant::new(
            slot.client.clone(),
            &self.plan.server_name,
            &slot.identity,
            self.plan.fragment_size,
        ) {
            Ok(s) => s,
            Err(_) => return false,
        };
        slot.conv = Conversation::new(supplicant, self.nas(&slot.identity));
        slot.authenticator = self.rng.authenticator();
        slot.packet = slot.conv.start(slot.authenticator);
        slot.server = self.current;
        slot.restarts += 1;
        self.stats.restarted += 1;
        self.send_new(slot, now);
        true
    }

    /// Files `slot` under a fresh Identifier and sends its request.
    fn send_new(&mut self, mut slot: Box<Slot>, now: Instant) {
        let Some(id) = self.free.pop_front() else {
            // Cannot happen with width <= 256; fail the conversation rather than overwrite one.
            self.finish(Failure::SendError, "no free RADIUS Identifier".into());
            return;
        };
        if let Err(e) = stamp_identifier(&mut slot.packet, id, &self.secret) {
            self.free.push_back(id);
            self.finish(Failure::SendError, e);
            return;
        }
        slot.request_sent = now;
        slot.last_sent = now;
        slot.tries = 0;
        if let Err(e) = self.transmit(&slot.packet, slot.server) {
            // A full send buffer is a loss like any other: the timeout retransmits.
            if e.kind() != std::io::ErrorKind::WouldBlock {
                self.free.push_back(id);
                self.finish(Failure::SendError, format!("send: {e}"));
                return;
            }
        }
        if let Some(s) = self.slots.get_mut(usize::from(id)) {
            *s = Some(slot);
        }
    }

    /// Counts a conversation as failed and makes room for the next.
    fn finish(&mut self, why: Failure, detail: String) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.stats.fail(why, || detail);
    }

    fn take_slot(&mut self, id: u8) -> Option<Box<Slot>> {
        let slot = self.slots.get_mut(usize::from(id))?.take()?;
        self.free.push_back(id);
        Some(slot)
    }

    fn on_datagram(&mut self, data: &[u8], from: std::net::SocketAddr) {
        let now = Instant::now();
        let Some(&id) = data.get(1) else {
            self.stats.discarded += 1;
            return;
        };
        let Some(Some(slot)) = self.slots.get(usize::from(id)) else {
            self.stats.discarded += 1;
            return;
        };
        // RFC 2865 §3: a reply is matched by source as well as Identifier.
        if self.plan.servers.get(slot.server) != Some(&from) {
            self.stats.discarded += 1;
            return;
        }
        // RFC 2865 §3: a reply that does not authenticate against the outstanding request is
        // discarded silently (typically the late twin of a retransmitted request's reply).
        let authentic = Packet::decode(data).is_ok_and(|p| {
            verify_response_authenticator(&p, &self.secret, &slot.authenticator).is_ok()
        });
        if !authentic {
            self.stats.discarded += 1;
            return;
        }
        if self.rng.chance(self.plan.loss) {
            self.stats.dropped_on_purpose += 1;
            return;
        }
        let Some(mut slot) = self.take_slot(id) else {
            return;
        };
        let normalized;
        let data = if self.plan.lenient_message_authenticator {
            match normalize_reply(data, &self.secret, &slot.authenticator) {
                Ok(n) => {
                    normalized = n;
                    normalized.as_slice()
                }
                Err(e) => {
                    self.finish(Failure::BadReply, e);
                    return;
                }
            }
        } else {
            data
        };
        self.stats
            .round_trip_us
            .push(micros(now.duration_since(slot.request_sent)));
        slot.round_trips += 1;
        let next_authenticator = self.rng.authenticator();
        match slot.conv.on_reply(data, next_authenticator) {
            // A fatal TLS alert from the server is its way of refusing the peer (it follows
            // with Access-Reject); anything else the supplicant refused is a bad reply.
            Err(PeerError::Tls(e)) if e.contains("received fatal alert") => {
                self.finish(Failure::Reject, format!("TLS alert from the server: {e}"))
            }
            Err(e) => self.finish(Failure::BadReply, e.to_string()),
            Ok(Next::Send(packet)) => {
                slot.packet = packet;
                slot.authenticator = next_authenticator;
                if self.pacer.enabled() {
                    // The supplicant thinks: the wait runs from the reply's arrival.
                    let unit = self.rng.unit();
                    self.pacer.hold(now, Paced::Send(slot), unit);
                } else {
                    self.send_new(slot, now);
                }
            }
            Ok(Next::Done(outcome)) => self.done(*outcome, &slot, now),
        }
    }

    fn done(&mut self, outcome: Outcome, slot: &Slot, now: Instant) {
        match outcome {
            Outcome::Rejected(_) => self.finish(Failure::Reject, "Access-Reject".into()),
            Outcome::Accepted {
                keys_match: false, ..
            } => self.finish(
                Failure::KeysMismatch,
                "MS-MPPE keys differ from the supplicant's MSK".into(),
            ),
            Outcome::Accepted {
                keys_match: true, ..
            } => {
                let version = slot.conv.supplicant.tls_version();
                if version != Some(self.plan.expect_version) {
                    self.finish(
                        Failure::BadReply,
                        format!(
                            "negotiated {version:?}, asked for {:?}",
                            self.plan.expect_version
                        ),
                    );
                    return;
                }
                self.in_flight = self.in_flight.saturating_sub(1);
                self.stats.succeeded += 1;
                let resumed = slot.conv.supplicant.resumed();
                if resumed {
                    self.stats.resumed += 1;
                }
                if self.plan.servers.len() > 1 {
                    let n = self.plan.servers.len();
                    self.stats.by_server.resize(n, (0, 0));
                    if let Some((ok, res)) = self.stats.by_server.get_mut(slot.server) {
                        *ok += 1;
                        *res += u64::from(resumed);
                    }
                }
                *self
                    .stats
                    .tls_versions
                    .entry(certradius::tls::version_name(version).to_string())
                    .or_default() += 1;
                self.stats
                    .auth_latency_us
                    .push(micros(now.duration_since(slot.conversation_start)));
                self.stats.round_trips.push(slot.round_trips);
                self.stats
                    .done_at_us
                    .push(micros(now.duration_since(self.plan.t0)));
            }
        }
    }

    fn check_timeouts(&mut self, now: Instant) {
        for id in 0..=255u8 {
            let Some(Some(slot)) = self.slots.get_mut(usize::from(id)) else {
                continue;
            };
            if now.duration_since(slot.last_sent) < self.plan.timeout {
                continue;
            }
            if slot.tries >= self.plan.retries {
                let rt = slot.round_trips;
                let Some(slot) = self.take_slot(id) else {
                    continue;
                };
                let n = self.plan.servers.len();
                if n > 1 && slot.restarts < n as u32 && self.fail_over(slot, now) {
                    continue;
                }
                self.finish(
                    Failure::Timeout,
                    format!(
                        "no reply after {} retransmissions, round trip {}",
                        self.plan.retries,
                        rt + 1
                    ),
                );
                continue;
            }
            slot.tries += 1;
            slot.last_sent = now;
            self.stats.retransmissions += 1;
            // Same octets: same Identifier and Request Authenticator (RFC 5080 §2.2.1).
            let _ = transmit(&self.sender, &self.plan.servers, &slot.packet, slot.server);
        }
    }
}

/// Sends `packet` to `servers[server]` (a connected socket when there is only one).
fn transmit(
    sender: &std::net::UdpSocket,
    servers: &[std::net::SocketAddr],
    packet: &[u8],
    server: usize,
) -> std::io::Result<usize> {
    if servers.len() == 1 {
        return sender.send(packet);
    }
    match servers.get(server) {
        Some(to) => sender.send_to(packet, to),
        None => Err(std::io::Error::other("no such server")),
    }
}

/// `peer::Nas` insists that Message-Authenticator is the first attribute of a reply (the
/// BlastRADIUS hardening that servers adopted in 2024); older servers (FreeRADIUS before 3.2.5)
/// put it last. With `--lenient-message-authenticator` such a reply is verified here as sent
/// (Response Authenticator, RFC 2865 §3, and Message-Authenticator, RFC 3579 §3.2) and then
/// re-encoded with the same attributes, in the same order, with Message-Authenticator first,
/// so that `peer` can check everything else (EAP, MS-MPPE keys) unchanged.
fn normalize_reply(
    data: &[u8],
    secret: &SharedSecret,
    request_authenticator: &[u8; 16],
) -> Result<Vec<u8>, String> {
    let p = Packet::decode(data).map_err(|e| format!("bad RADIUS reply: {e}"))?;
    verify_response_authenticator(&p, secret, request_authenticator)
        .map_err(|e| format!("bad RADIUS reply: Response Authenticator: {e}"))?;
    certradius::radius::verify_message_authenticator(&p, secret, Some(request_authenticator))
        .map_err(|e| format!("bad RADIUS reply: Message-Authenticator: {e}"))?;
    let mut b = certradius::radius::PacketBuilder::new(p.code(), p.identifier());
    for a in p
        .attributes()
        .filter(|a| a.typ != attr::MESSAGE_AUTHENTICATOR)
    {
        b.attr(a.typ, a.value)
            .map_err(|e| format!("bad RADIUS reply: {e}"))?;
    }
    b.encode_response(secret, request_authenticator)
        .map_err(|e| format!("bad RADIUS reply: {e}"))
}

/// Sets the Identifier of an Access-Request built by `peer::Nas` and recomputes its
/// Message-Authenticator (RFC 3579 §3.2), which covers the Identifier.
fn stamp_identifier(packet: &mut [u8], id: u8, secret: &SharedSecret) -> Result<(), String> {
    *packet
        .get_mut(1)
        .ok_or("request shorter than a RADIUS header")? = id;
    // Find the Message-Authenticator value by walking the attributes after the 20-octet header.
    let mut at = 20usize;
    let value = loop {
        let (Some(&typ), Some(&len)) = (packet.get(at), packet.get(at + 1)) else {
            return Err("request without a Message-Authenticator".into());
        };
        if typ == attr::MESSAGE_AUTHENTICATOR && len == 18 {
            break at + 2..at + 18;
        }
        if len < 2 {
            return Err("malformed attribute in our own request".into());
        }
        at += usize::from(len);
    };
    packet
        .get_mut(value.clone())
        .ok_or("truncated Message-Authenticator")?
        .fill(0);
    let mut mac = <hmac::Hmac<md5::Md5> as KeyInit>::new_from_slice(secret.as_bytes())
        .map_err(|e| format!("HMAC key: {e}"))?;
    mac.update(packet);
    let tag = mac.finalize().into_bytes();
    packet
        .get_mut(value)
        .ok_or("truncated Message-Authenticator")?
        .copy_from_slice(&tag);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restamped_request_still_authenticates() {
        let mut nas = Nas::new(b"s3cret");
        let mut p = nas.access_request(b"\x02\x01\x00\x05\x01", [7u8; 16]);
        let secret = SharedSecret::new(b"s3cret".to_vec());
        stamp_identifier(&mut p, 200, &secret).unwrap();
        let pkt = Packet::decode(&p).unwrap();
        assert_eq!(pkt.identifier(), 200);
        certradius::radius::verify_message_authenticator(&pkt, &secret, None).unwrap();
    }
}
