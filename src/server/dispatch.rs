//! From the UDP socket to the core and back: who processes a datagram, and when.
//!
//! - **Light load: on the task that received it.** When no request is being processed or
//!   waiting and the socket has no further datagram ready, the receive loop processes it itself and
//!   sends the reply: no hand-over to another task, no other worker thread to wake. That hop (a
//!   futex wake, a second thread's cache warming up) used to cost as much as a third of an ECDSA
//!   handshake at one conversation in flight.
//! - **Under load: a queue and a worker per thread.** When datagrams arrive faster than they are
//!   processed, each goes into the [`RequestQueue`] (conversations in progress first, new ones
//!   round-robin across NAS, copies of waiting requests not queued twice, requests older than
//!   `server.max_queue_wait_ms` thrown away) and one worker per runtime thread takes them in
//!   that order. The receive loop keeps draining the socket meanwhile, and every worker takes
//!   what has arrived on every socket between two requests (a receive loop is a task like any
//!   other and can go unpolled while both runtime threads run requests): the kernel's buffer is
//!   not where a storm is decided, nor where a quiet NAS waits behind a storming one.
//! - **Datagrams from unknown sources** are dropped (and counted) by the core at once, never
//!   queued: a flood of them must not take the room of real NAS.
//! - **What happens to a request** once it is taken — drain, debug filter, the core, OCSP
//!   lookups, the Disconnect on revocation, the reply — is the request driver's (`driver.rs`),
//!   shared with RADIUS/TCP and RadSec.
//!
//! RFC 5080 §2.2.1: a request dropped here is retransmitted by its NAS; nothing is refused for
//! being busy.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{Notify, watch};
use tracing::debug;

use super::driver::{Driver, ReplyTo, Request};
use super::udp::{Take, UdpEndpoint};
use super::{monotonic_clock, now, os_rng};
use crate::core::guard::lock;
use crate::core::queue::{self, Class, Pushed, Refused, RequestQueue};
use crate::core::stats::Counter;
use crate::core::{Core, Handled};

/// Datagrams a receive loop takes from its socket without yielding (see `receive_loop`).
const BURST: usize = 32;

/// A worker hands control back to the scheduler after this many requests (see `worker`).
const YIELD_EVERY: u32 = 8;

/// One received datagram, admitted, waiting to be processed.
type Job = Request;

/// The shared state of the receive loops and the workers.
pub(super) struct Dispatcher {
    core: Arc<Core>,
    driver: Arc<Driver>,
    queue: std::sync::Mutex<RequestQueue<Job>>,
    work: Notify,
    /// Every listening socket: workers look at each between requests (see `worker`).
    sockets: Vec<Arc<UdpEndpoint>>,
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
        })
    }

    /// Nothing queued and nothing being processed (the drain waits for this).
    pub(super) fn idle(&self) -> bool {
        self.driver.busy() == 0 && lock(&self.queue).is_empty()
    }

    /// Receives on one socket until `exit` turns true.
    pub(super) async fn receive_loop(
        self: Arc<Self>,
        socket: Arc<UdpEndpoint>,
        mut exit: watch::Receiver<bool>,
    ) {
        // RFC 2865 §3: 4096 octets is the largest RADIUS packet; one more tells us it was longer.
        let mut buf = vec![0u8; 4097];
        // Made once, not per datagram: a `wait_for` future registers with the watch channel
        // each time it is made, which showed in the profile of an idle-paced round trip.
        let mut stop = std::pin::pin!(exit.wait_for(|stop| *stop));
        loop {
            let received = tokio::select! {
                r = socket.recv_from(&mut buf) => r,
                _ = &mut stop => return,
            };
            let mut next = match received {
                Ok((len, from)) => self.admit(&socket, from, buf.get(..len).unwrap_or(&[])),
                Err(e) => {
                    // ICMP errors from earlier sends surface here on some systems; keep serving.
                    debug!("recv_from: {e}");
                    None
                }
            };
            // Whatever else is ready goes to the queue; the last one of the burst, if nothing
            // is queued ahead of it, is processed here (see the module documentation). At most
            // BURST at a time: `try_recv_from` never yields, and a flood on this socket must not
            // hold the thread from the runtime's other tasks (another socket's receive loop, a
            // worker) for longer than that.
            let mut socket_empty = false;
            for _ in 0..BURST {
                let Some(more) = self.take(&socket, &mut buf, UdpEndpoint::try_recv_from) else {
                    socket_empty = true;
                    break;
                };
                if let Some(job) = std::mem::replace(&mut next, more) {
                    self.enqueue(job);
                }
            }
            if let Some((job, class)) = next {
                // Inline only when the server is idle: with a worker busy, processing here
                // would stop this loop from receiving while a worker may be about to be free.
                if socket_empty && self.driver.busy() == 0 && lock(&self.queue).is_empty() {
                    self.driver.process(job).await;
                } else {
                    self.enqueue((job, class));
                }
            }
        }
    }

    /// One worker: takes queued requests in the queue's order until `exit`.
    pub(super) async fn worker(self: Arc<Self>, mut exit: watch::Receiver<bool>) {
        let mut served: u32 = 0;
        // Set after each request: the next pass looks at the sockets first. Not after waking
        // for queued work: the receive loop that queued it has just emptied its socket.
        let mut look = false;
        let mut buf = vec![0u8; 4097];
        loop {
            // Take what has arrived on every socket before choosing the next request. A receive
            // loop is a task like any other and, with every runtime thread busy running requests,
            // can go unpolled for hundreds of milliseconds; a quiet NAS's datagram would wait in
            // the kernel that long behind a storming NAS's (BENCHMARKS.md round 2, table 5).
            // Looking costs one non-blocking recvfrom per socket, next to a TLS flight's work. It
            // asks the kernel, not the reactor's last word: the reactor runs only every few
            // tasks (`start.rs`), and a worker's task runs several requests.
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
                    self.driver.process(job).await;
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
                match self.take(socket, buf, UdpEndpoint::recv_now) {
                    None => break,
                    Some(Some(job)) => self.enqueue(job),
                    Some(None) => {}
                }
            }
        }
    }

    /// A datagram already waiting on `socket`, taken by `recv` (which must not wait) and
    /// admitted (inner None: dropped on arrival, or a receive error); None when nothing is
    /// waiting.
    fn take(
        &self,
        socket: &Arc<UdpEndpoint>,
        buf: &mut [u8],
        recv: Take,
    ) -> Option<Option<(Job, Class)>> {
        match recv(socket, buf) {
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
