//! From the UDP socket to the core and back: who processes a datagram, and when.
//!
//! - **Light load: on the thread that received it.** Each socket has a receive thread of its own,
//!   outside the runtime, waiting in `recvfrom(2)`. With nothing queued it processes the datagram
//!   itself and sends the reply: no reactor, no scheduler, no other thread to wake. tokio's
//!   park, wake-up and scheduling cost 12-16 µs per round trip at a supplicant's pace, against
//!   14-20 µs for the kernel's own part (BENCHMARKS.md, round 3, part 7). Datagrams that
//!   arrived meanwhile are answered next by the same thread, one after the other: waking a
//!   worker for one costs more CPU than the light requests that make most of a conversation
//!   (round 3, part 11).
//! - **Under load: a queue and a worker per runtime thread.** Once requests queue up, or a
//!   receive thread finds a datagram already waiting after each of `STREAK` in a row, the
//!   receive threads hand the sockets to the workers and wait: a thread that received under
//!   load would wake for every datagram (round 3, part 2). Each datagram goes into the
//!   [`RequestQueue`] (conversations in progress first, new ones round-robin across NAS, copies
//!   of waiting requests not queued twice, requests older than `server.max_queue_wait_ms`
//!   thrown away) and the workers take them in that order. Every worker takes what has arrived
//!   on every socket after each request, so the kernel's buffer is not where a storm is decided,
//!   nor where a quiet NAS waits behind a storming one. The last worker to run out of work
//!   hands the sockets back.
//! - **Datagrams from unknown sources** are dropped (and counted) by the core at once, never
//!   queued: a flood of them must not take the room of real NAS.
//! - **What happens to a request** once it is taken — drain, debug filter, the core, OCSP
//!   lookups, the Disconnect on revocation, the reply — is the request driver's (`driver.rs`),
//!   shared with RADIUS/TCP and RadSec.
//!
//! RFC 5080 §2.2.1: a request dropped here is retransmitted by its NAS; nothing is refused for
//! being busy.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar};

use tokio::sync::{Notify, watch};
use tracing::debug;

use super::driver::{Busy, Driver, ReplyTo, Request};
use super::udp::UdpEndpoint;
use super::{monotonic_clock, now, os_rng};
use crate::core::guard::lock;
use crate::core::queue::{self, Class, Pushed, Refused, RequestQueue};
use crate::core::stats::Counter;
use crate::core::{Core, Handled};

/// Datagrams a worker takes from each socket between two requests (see `take_arrivals`).
const BURST: usize = 32;

/// Datagrams a receive thread answers in a row, each already waiting when the one before was
/// answered, before it hands the sockets to the workers (see `receive_thread`).
const STREAK: u32 = 3;

/// How often a receive thread waiting for its turn or for a datagram looks at the stop flag.
const STOP_CHECK: std::time::Duration = super::udp::RECEIVE_WAIT;

/// A worker hands control back to the scheduler after this many requests (see `worker`).
const YIELD_EVERY: u32 = 8;

/// One received datagram, admitted, waiting to be processed.
type Job = Request;

/// The shared state of the receive threads and the workers.
pub(super) struct Dispatcher {
    core: Arc<Core>,
    driver: Arc<Driver>,
    queue: std::sync::Mutex<RequestQueue<Job>>,
    work: Notify,
    /// Every listening socket: workers look at each between requests (see `worker`).
    sockets: Vec<Arc<UdpEndpoint>>,
    /// Requests being processed by a receive thread or a worker (not those waiting on a lookup).
    processing: AtomicUsize,
    /// Whether the receive threads have the sockets (true) or the workers (false), and the
    /// condition the receive threads wait on for their turn.
    receivers: (std::sync::Mutex<bool>, Condvar),
}

impl Dispatcher {
    pub(super) fn new(
        driver: Arc<Driver>,
        (max_in_flight, max_wait): (usize, std::time::Duration),
        sockets: Vec<Arc<UdpEndpoint>>,
    ) -> Arc<Self> {
        Arc::new(Dispatcher {
            core: driver.core.clone(),
            driver,
            queue: std::sync::Mutex::new(RequestQueue::new(max_in_flight, max_wait)),
            work: Notify::new(),
            sockets,
            processing: AtomicUsize::new(0),
            receivers: (std::sync::Mutex::new(true), Condvar::new()),
        })
    }

    /// Nothing queued and nothing being processed (the drain waits for this).
    pub(super) fn idle(&self) -> bool {
        self.driver.busy() == 0 && lock(&self.queue).is_empty()
    }

    /// Receives on one socket while the receive threads have the sockets, until `stop`: a
    /// thread of its own (see the module documentation). `runtime` runs what the request path
    /// awaits (a reply that finds the send buffer full) and the lookups it spawns.
    pub(super) fn receive_thread(
        self: Arc<Self>,
        socket: Arc<UdpEndpoint>,
        runtime: tokio::runtime::Handle,
        stop: Arc<AtomicBool>,
    ) {
        // RFC 2865 §3: 4096 octets is the largest RADIUS packet; one more tells us it was longer.
        let mut buf = vec![0u8; 4097];
        while !stop.load(Ordering::Relaxed) {
            if !self.receivers_turn(STOP_CHECK) {
                continue;
            }
            let (len, from) = match socket.recv_wait(&mut buf) {
                Ok(Some(got)) => got,
                Ok(None) => continue,
                Err(e) => {
                    debug!("recvfrom: {e}");
                    continue;
                }
            };
            let Some(mut next) = self.admit(&socket, from, buf.get(..len).unwrap_or(&[])) else {
                continue;
            };
            // With nothing queued, this thread processes the datagram itself, then whatever
            // arrived meanwhile, one after the other: a worker woken for it would cost more
            // (futex, park, the reactor's turn) than the datagram's own light work. A streak
            // of STREAK datagrams each already waiting when the one before was answered means
            // the server is busy: the workers take the sockets until they have nothing left to
            // do, since a thread that received under load would wake for every datagram
            // (BENCHMARKS.md, round 3, parts 2 and 11).
            let mut streak = 0;
            loop {
                if !lock(&self.queue).is_empty() || streak == STREAK {
                    self.enqueue(next);
                    self.hand_to_workers();
                    break;
                }
                {
                    let _processing = Busy::new(&self.processing);
                    run_here(&runtime, self.driver.process(next.0));
                }
                streak += 1;
                match self.take_one(&socket, &mut buf) {
                    Some(job) => next = job,
                    None => {
                        // Another socket's thread may have handed the sockets to the workers
                        // meanwhile, and they may have run out of work while this request was
                        // being processed.
                        self.take_back_if_idle();
                        break;
                    }
                }
            }
        }
    }

    /// Waits at most `timeout` until the receive threads have the sockets; true: they have.
    fn receivers_turn(&self, timeout: std::time::Duration) -> bool {
        let (turn, changed) = &self.receivers;
        let owns = lock(turn);
        if *owns {
            return true;
        }
        let owns = match changed.wait_timeout_while(owns, timeout, |owns| !*owns) {
            Ok((owns, _)) => *owns,
            Err(poisoned) => *poisoned.into_inner().0,
        };
        // Whatever the order in which threads finished, nobody keeps the sockets unread for
        // longer than `timeout`.
        owns || self.take_back_if_idle()
    }

    /// With nothing queued and nothing being processed, the receive threads take the sockets
    /// back; true: they have them.
    fn take_back_if_idle(&self) -> bool {
        if self.processing.load(Ordering::SeqCst) == 0 && lock(&self.queue).is_empty() {
            self.hand_to_receivers();
            return true;
        }
        *lock(&self.receivers.0)
    }

    /// The workers take the sockets: one is woken, and each looks at them after every request.
    fn hand_to_workers(&self) {
        *lock(&self.receivers.0) = false;
        self.work.notify_one();
    }

    /// The receive threads take the sockets back (the workers have nothing left to do).
    fn hand_to_receivers(&self) {
        let (turn, changed) = &self.receivers;
        let mut owns = lock(turn);
        if !*owns {
            *owns = true;
            changed.notify_all();
        }
    }

    /// One worker: takes queued requests in the queue's order until `exit`.
    pub(super) async fn worker(self: Arc<Self>, mut exit: watch::Receiver<bool>) {
        let mut served: u32 = 0;
        // Set after each request: the next pass looks at the sockets first. Not after waking
        // for queued work: the thread that queued it has just read its socket.
        let mut look = false;
        let mut buf = vec![0u8; 4097];
        loop {
            // Take what has arrived on every socket before choosing the next request. Under load
            // the workers are the only ones receiving; a quiet NAS's datagram must not wait in
            // the kernel behind a storming NAS's (BENCHMARKS.md round 2, table 5). Looking costs
            // one non-blocking recvfrom per socket, next to a TLS flight's work.
            if std::mem::take(&mut look) {
                self.take_arrivals(&mut buf);
            }
            let popped = {
                let mut queue = lock(&self.queue);
                let popped = queue.pop(monotonic_clock());
                self.core.stats.set_queued(queue.len());
                popped
            };
            for _ in 0..popped.expired {
                self.core.stats.incr(Counter::QueueExpiredDropped);
            }
            match popped.next {
                Some(job) => {
                    {
                        let _processing = Busy::new(&self.processing);
                        self.driver.process(job).await;
                    }
                    // Back to the scheduler every few requests, so the runtime's other tasks
                    // (timers, the sweeper, metrics, OCSP lookups finishing) are not held off
                    // until the worker's cooperative budget runs out, some 128 requests later.
                    // Every request would cost 6% more CPU at saturation; every 8th bounds the
                    // wait to a few milliseconds. (Datagrams do not wait for this: see
                    // `take_arrivals`.)
                    served = served.wrapping_add(1);
                    look = true;
                    if served.is_multiple_of(YIELD_EVERY) {
                        tokio::task::yield_now().await;
                    }
                }
                None => {
                    // The last worker to run out of work gives the sockets back.
                    self.take_back_if_idle();
                    tokio::select! {
                        _ = self.work.notified() => {}
                        _ = exit.wait_for(|stop| *stop) => return,
                    }
                }
            }
        }
    }

    /// Queues what is waiting on the sockets, at most BURST datagrams from each.
    fn take_arrivals(&self, buf: &mut [u8]) {
        for socket in &self.sockets {
            for _ in 0..BURST {
                match self.take(socket, buf) {
                    None => break,
                    Some(Some(job)) => self.enqueue(job),
                    Some(None) => {}
                }
            }
        }
    }

    /// The first admitted datagram among those already waiting on `socket` (at most BURST
    /// looked at); None when none is.
    fn take_one(&self, socket: &Arc<UdpEndpoint>, buf: &mut [u8]) -> Option<(Job, Class)> {
        for _ in 0..BURST {
            if let Some(job) = self.take(socket, buf)? {
                return Some(job);
            }
        }
        None
    }

    /// A datagram already waiting on `socket`, admitted (inner None: dropped on arrival, or a
    /// receive error); None when nothing is waiting.
    fn take(&self, socket: &Arc<UdpEndpoint>, buf: &mut [u8]) -> Option<Option<(Job, Class)>> {
        match socket.recv_now(buf) {
            Ok((len, from)) => Some(self.admit(socket, from, buf.get(..len).unwrap_or(&[]))),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems; keep serving.
                debug!("recv_from: {e}");
                Some(None)
            }
        }
    }

    /// A datagram through the driver's admission (drain, debug filter), ready to queue.
    fn admit(
        &self,
        socket: &Arc<UdpEndpoint>,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Option<(Job, Class)> {
        let (class, span) = self.driver.admit(from, None, datagram)?;
        Some((
            Request {
                from,
                bytes: datagram.to_vec(),
                client: None,
                reply: ReplyTo::Udp(socket.clone()),
                span,
                hold: None,
            },
            class,
        ))
    }

    fn enqueue(&self, (job, class): (Job, Class)) {
        let client = self.core.clients().lookup(job.from.ip()).map(|c| c.id);
        let Some(client) = client else {
            // Not from a configured NAS: the core only counts it and drops it (rate-limited
            // log), which costs less than queueing it, and a flood of such datagrams must not
            // take the queue's room from real NAS.
            let _span = job.span.enter();
            if let Handled::Reply(reply) =
                self.core.handle(job.from, &job.bytes, now(), &mut os_rng)
                && let ReplyTo::Udp(socket) = &job.reply
            {
                let _ = socket.try_send_to(&reply, job.from);
            }
            return;
        };
        let key = queue::request_key(job.from, &job.bytes);
        let pushed = {
            let mut queue = lock(&self.queue);
            let pushed = queue.push(job, class, client, key, monotonic_clock());
            self.core.stats.set_queued(queue.len());
            pushed
        };
        match pushed {
            Pushed::Queued => {}
            Pushed::QueuedDisplacing(_) | Pushed::Refused(Refused::Full) => {
                self.core.stats.incr(Counter::OverloadedDropped);
            }
            Pushed::Refused(Refused::Duplicate) => {
                self.core.stats.incr(Counter::DuplicateInProgressDropped);
                return;
            }
        }
        if !matches!(pushed, Pushed::Refused(_)) {
            self.work.notify_one();
        }
    }
}

/// Runs `request` to completion on this thread, inside `runtime`'s context (its timers, and
/// the lookups it spawns). Almost every request completes at its first poll, so it is polled
/// once directly; only one that waits (a full send buffer, a lookup in flight) goes through
/// `block_on`, whose park and context set-up cost about 3.5 µs per round trip at a supplicant's
/// pace (BENCHMARKS.md, round 3, part 8).
fn run_here(runtime: &tokio::runtime::Handle, request: impl std::future::Future<Output = ()>) {
    let mut request = std::pin::pin!(request);
    let pending = {
        let _context = runtime.enter();
        let mut first = std::task::Context::from_waker(std::task::Waker::noop());
        request.as_mut().poll(&mut first).is_pending()
    };
    if pending {
        // Whatever the request waits on was registered with the no-op waker; block_on polls it
        // again with its own, and every tokio resource keeps the waker of the latest poll.
        runtime.block_on(request);
    }
}
