//! The one request driver: every transport hands it (client, request bytes, where the reply
//! goes), and everything that happens to a request between framing and the reply happens here,
//! once, for UDP (RFC 2865), RADIUS/TCP (RFC 6613) and RadSec (RFC 6614) alike:
//!
//! - **admission**: during the SIGTERM drain a request that would start a new conversation is
//!   dropped and counted (`drain_dropped`; its NAS fails over to another server), conversations
//!   in progress go on;
//! - **the debug filter** (`--debug-filter`): a matching request is processed inside the
//!   `debug_dump` span, so its packets are dumped whatever the log level;
//! - **the core**: [`Core::handle`] (a UDP datagram, the client found by source address) or
//!   [`Core::handle_from_client`] (a stream packet, the client the connection identified);
//! - **revocation lookups** (OCSP) get a task of their own: they wait on the network, not the
//!   CPU; an answer "revoked" also disconnects the certificate's live sessions (RFC 5176);
//! - the reply goes back through the transport's [`ReplyTo`].
//!
//! Audit, metrics and accounting observers are told by the core itself when an authentication
//! finishes, so they too see every transport. Queueing is the UDP side's (`dispatch.rs`): a UDP
//! request may be dropped when the server is saturated, because its NAS retransmits (RFC 5080
//! §2.2.1); a stream's NAS does not retransmit over a live connection (RFC 6613), so a
//! stream is pushed back by TCP flow control instead (`stream/`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::OwnedSemaphorePermit;
use tracing::debug;

use super::directory::DirectoryClient;
use super::ocsp::OcspClient;
use super::udp::UdpEndpoint;
use super::{coa, debug_filter, drain, now, os_rng, stream};
use crate::core::Pending;
use crate::core::clients::Client;
use crate::core::queue::Class;
use crate::core::stats::Counter;
use crate::core::{Core, Handled};
use crate::session::{Answer, Lookup, RevocationVerdict};

/// Where the reply to a request goes.
pub(super) enum ReplyTo {
    /// Back to the datagram's source from the socket it arrived on.
    Udp(Arc<UdpEndpoint>),
    /// Into a stream connection's writer.
    Stream(stream::ReplyTo),
}

/// Capacity a stream request holds while it is processed (see `stream/`).
pub(super) struct Hold {
    /// The connection's bound on requests in flight.
    pub connection: OwnedSemaphorePermit,
    /// The server-wide bound; given back while a lookup waits on the network.
    pub cpu: Option<OwnedSemaphorePermit>,
}

impl Hold {
    /// Gives the server-wide place back (a lookup waits on the network, not the CPU) and keeps
    /// the connection's.
    fn release_cpu(self) -> OwnedSemaphorePermit {
        drop(self.cpu);
        self.connection
    }
}

/// One request, admitted.
pub(super) struct Request {
    pub from: SocketAddr,
    pub bytes: Vec<u8>,
    /// The client a stream connection identified; None for UDP (found by source address).
    pub client: Option<Arc<Client>>,
    pub reply: ReplyTo,
    pub span: tracing::Span,
    pub hold: Option<Hold>,
}

pub(super) struct Driver {
    pub core: Arc<Core>,
    ocsp: OcspClient,
    directory: Arc<DirectoryClient>,
    coa: Arc<coa::Coa>,
    debug_filter: Vec<debug_filter::DebugFilter>,
    draining: AtomicBool,
    /// Requests being processed right now (inline, by a worker, a stream task, or waiting on
    /// OCSP).
    busy: AtomicUsize,
}

impl Driver {
    pub(super) fn new(
        core: Arc<Core>,
        coa: Arc<coa::Coa>,
        debug_filter: Vec<debug_filter::DebugFilter>,
    ) -> Arc<Driver> {
        let ocsp = OcspClient::new(&core.snapshot().config.ocsp);
        Arc::new(Driver {
            core,
            ocsp,
            directory: Arc::default(),
            coa,
            debug_filter,
            draining: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
        })
    }

    /// The directory client (its cache and pool), shared with `revalidate_secs`.
    pub(super) fn directory(&self) -> Arc<DirectoryClient> {
        self.directory.clone()
    }

    /// From now on new conversations are refused (SIGTERM).
    pub(super) fn start_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Requests being processed now.
    pub(super) fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    /// The checks made on arrival, for every transport: the drain and the debug filter. None:
    /// dropped (and counted). `client`: the name of the client a stream connection identified;
    /// for UDP it is looked up by address only when a debug filter needs it.
    pub(super) fn admit(
        &self,
        from: SocketAddr,
        client: Option<&str>,
        datagram: &[u8],
    ) -> Option<(Class, tracing::Span)> {
        let class = if drain::starts_conversation(datagram) {
            Class::New
        } else {
            Class::Continuing
        };
        if class == Class::New && self.draining.load(Ordering::Relaxed) {
            self.core.stats.incr(Counter::DrainDropped);
            return None;
        }
        let span = if !self.debug_filter.is_empty() && self.debug_matches(from, client, datagram) {
            tracing::info_span!("debug_dump", dump = true)
        } else {
            tracing::Span::none()
        };
        Some((class, span))
    }

    fn debug_matches(&self, from: SocketAddr, client: Option<&str>, datagram: &[u8]) -> bool {
        match client {
            Some(name) => debug_filter::matches(&self.debug_filter, from, Some(name), datagram),
            None => {
                let clients = self.core.clients();
                let name = clients.lookup(from.ip()).map(|c| c.name.as_str());
                debug_filter::matches(&self.debug_filter, from, name, datagram)
            }
        }
    }

    /// Runs one request through the core and sends the reply.
    pub(super) async fn process(self: &Arc<Self>, request: Request) {
        let Request {
            from,
            bytes,
            client,
            reply,
            span,
            hold,
        } = request;
        let _busy = Busy::new(&self.busy);
        let handled = span.in_scope(|| match &client {
            Some(c) => self
                .core
                .handle_from_client(c, from, &bytes, now(), &mut os_rng),
            None => self.core.handle(from, &bytes, now(), &mut os_rng),
        });
        match handled {
            Handled::Reply(r) => self.send(&reply, r, from, client.as_deref()).await,
            Handled::Silent => {}
            Handled::Lookup(pending) => {
                // The lookup waits on the network: a task of its own, the worker goes on.
                let this = self.clone();
                let task = async move {
                    let _busy = Busy::new(&this.busy);
                    let _connection = hold.map(Hold::release_cpu);
                    let mut pending = pending;
                    // OCSP, then the directory: one conversation may pause twice.
                    loop {
                        let answer = this.look_up(&pending).await;
                        match this.core.resume(*pending, answer, now(), &mut os_rng) {
                            Handled::Reply(r) => {
                                this.send(&reply, r, from, client.as_deref()).await;
                                break;
                            }
                            Handled::Silent => break,
                            Handled::Lookup(next) => pending = next,
                        }
                    }
                };
                tokio::spawn(tracing::Instrument::instrument(task, span));
            }
        }
    }

    /// Performs the lookup a paused conversation waits for.
    async fn look_up(&self, pending: &Pending) -> Answer {
        match &pending.lookup {
            Lookup::Revocation(lookup) => {
                let verdict = self.ocsp.lookup(&self.core, lookup).await;
                if matches!(verdict, RevocationVerdict::Revoked(..)) {
                    coa::ocsp_revoked_leaf(&self.coa, &lookup.leaf);
                }
                Answer::Revocation(verdict)
            }
            Lookup::Directory(lookup) => {
                Answer::Directory(self.directory.lookup(&self.core, lookup).await)
            }
        }
    }

    async fn send(&self, to: &ReplyTo, reply: Vec<u8>, from: SocketAddr, client: Option<&Client>) {
        match to {
            ReplyTo::Udp(socket) => {
                if let Err(e) = socket.send_to(&reply, from).await {
                    debug!("send_to {from}: {e}");
                }
            }
            ReplyTo::Stream(stream) => stream.send(&self.core, reply, client).await,
        }
    }
}

/// Counts a request as being processed for as long as it lives.
pub(super) struct Busy<'a>(&'a AtomicUsize);

impl<'a> Busy<'a> {
    pub(super) fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Busy(n)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
