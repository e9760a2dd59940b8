//! One established stream connection: a reader that frames packets (RFC 6613 §2.1) and hands
//! each to the request driver, and a writer that sends replies in the order they are ready.
//!
//! The connection is bound to its client by identity. When a reload put a new configuration in
//! force, the next packet finds the client again by name and checks that its transport, address
//! prefix and (RadSec) `certificate_name` still match this connection; otherwise the connection
//! is closed. A reload that inserts, removes or reorders `[[client]]` entries can therefore
//! never sign this NAS's replies with another client's secret.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc};
use tracing::{debug, info, warn};

use super::super::driver::{self, Hold, Request};
use super::super::radsec::names_match;
use super::{Shared, may_log};
use crate::config::Transport;
use crate::core::Core;
use crate::core::clients::Client;
use crate::core::stats::{ConnectionOutcome, Counter};
use crate::radius::stream::Framer;
use crate::reason::ReasonCode;

/// Requests of one connection being processed at once; past it the connection is not read
/// (TCP flow control pushes back on the peer).
const IN_FLIGHT_PER_CONNECTION: usize = 64;
/// Replies waiting for the writer.
const REPLY_QUEUE: usize = 64;
/// A reply that cannot be written within this closes the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The client a connection serves, and the configuration generation it was checked against.
pub(super) struct Bound {
    client: Arc<Client>,
    generation: u64,
    peer: SocketAddr,
    /// RadSec: the names the NAS certificate carries (RFC 6614 §2.4).
    names: Vec<String>,
}

impl Bound {
    pub(super) fn new(
        core: &Core,
        client: Arc<Client>,
        peer: SocketAddr,
        names: Vec<String>,
    ) -> Self {
        Bound {
            client,
            generation: core.snapshot().generation,
            peer,
            names,
        }
    }

    /// The client for the next packet: the same entry, or after a reload the entry of the same
    /// name if it still matches this connection. None: the connection must be closed.
    fn current(&mut self, core: &Core) -> Option<Arc<Client>> {
        let snapshot = core.snapshot();
        if snapshot.generation == self.generation {
            return Some(self.client.clone());
        }
        let found = snapshot
            .clients
            .rebind(&self.client, self.peer.ip())
            .filter(|c| c.transport != Transport::Tls || names_match(c, &self.names))
            .cloned();
        let Some(client) = found else {
            warn!(peer = %self.peer, client = %self.client.name, "connection closed: after a reload its [[client]] is gone or no longer matches its address, transport or certificate");
            return None;
        };
        if client.secret.as_bytes() != self.client.secret.as_bytes() {
            info!(peer = %self.peer, client = %client.name, "connection goes on with the client's new shared secret (reload)");
        }
        self.client = client.clone();
        self.generation = snapshot.generation;
        Some(client)
    }
}

/// Where the driver puts a stream request's reply.
pub(in crate::server) struct ReplyTo {
    tx: mpsc::Sender<Vec<u8>>,
    /// RADIUS/1.1 (RFC 9765): the request's Token, which the reply carries instead of the
    /// Response Authenticator.
    token: Option<[u8; 16]>,
}

impl ReplyTo {
    pub(in crate::server) async fn send(
        &self,
        core: &Core,
        reply: Vec<u8>,
        client: Option<&Client>,
    ) {
        let reply = match (self.token, client) {
            (None, _) => reply,
            (Some(token), Some(c)) => {
                match crate::radius::v11::reply_from_core(&reply, &token, &c.secret) {
                    Ok(r) => r,
                    Err(_) => {
                        core.stats.incr(Counter::ReplyEncodeFailed);
                        return;
                    }
                }
            }
            (Some(_), None) => return,
        };
        let _ = self.tx.send(reply).await;
    }
}

/// Serves one connection until the peer closes it, it idles out, its client goes away in a
/// reload, or the server stops.
pub(super) async fn run<S>(shared: Arc<Shared>, stream: S, mut bound: Bound, radius_1_1: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let core = shared.driver.core.clone();
    let peer = bound.peer;
    let transport = bound.client.transport;
    let (mut rd, wr) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel::<Vec<u8>>(REPLY_QUEUE);
    let mut writer = tokio::spawn(write_replies(core.clone(), wr, rx, (peer, transport)));
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT_PER_CONNECTION));
    let idle = Duration::from_secs(core.snapshot().config.radsec.idle_timeout_secs);
    let mut exit = shared.exit.clone();
    let mut framer = Framer::new();
    let mut buf = vec![0u8; 4096];
    let mut deadline = tokio::time::Instant::now() + idle;
    loop {
        let read = tokio::select! {
            r = tokio::time::timeout_at(deadline, rd.read(&mut buf)) => r,
            _ = exit.wait_for(|stop| *stop) => break,
            // The writer gave up (write timeout, peer gone): nothing more to send, close.
            _ = &mut writer => return,
        };
        let n = match read {
            Err(_) => {
                core.stats.incr(Counter::connection(
                    transport,
                    ConnectionOutcome::IdleClosed,
                ));
                debug!(%peer, "connection closed: no complete packet within radsec.idle_timeout_secs");
                break;
            }
            Ok(Err(e)) => {
                debug!(%peer, "read: {e}");
                break;
            }
            Ok(Ok(0)) => {
                if framer.pending() > 0 {
                    core.stats.incr(Counter::connection(
                        transport,
                        ConnectionOutcome::ClosedMidPacket,
                    ));
                    debug!(%peer, held = framer.pending(), "peer closed the connection mid-packet");
                }
                break;
            }
            Ok(Ok(n)) => n,
        };
        framer.push(buf.get(..n).unwrap_or(&[]));
        loop {
            let packet = match framer.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    core.stats.incr(Counter::connection(
                        transport,
                        ConnectionOutcome::FramingError,
                    ));
                    if let Some(s) = may_log(&core, ReasonCode::MalformedPacket, peer) {
                        warn!(%peer, suppressed = s, "connection closed: {e} (RFC 6613 §2.6.4)");
                    }
                    return finish(tx, writer).await;
                }
            };
            deadline = tokio::time::Instant::now() + idle;
            core.stats.incr(Counter::stream_request(transport));
            let Some(client) = bound.current(&core) else {
                return finish(tx, writer).await;
            };
            let Some((packet, token)) = unwrap_v11(&core, &client, peer, packet, radius_1_1) else {
                continue;
            };
            let Some((_, span)) = shared.driver.admit(peer, Some(&client.name), &packet) else {
                continue;
            };
            // Waiting here stops reading: a peer with too much in flight is pushed back on.
            let Ok(connection) = in_flight.clone().acquire_owned().await else {
                return finish(tx, writer).await;
            };
            // The server-wide bound (`server.max_in_flight`) too; UDP drops past it, a stream
            // waits (the peer is pushed back by TCP flow control).
            let Ok(cpu) = shared.permits.clone().acquire_owned().await else {
                return finish(tx, writer).await;
            };
            let request = Request {
                from: peer,
                bytes: packet,
                client: Some(client),
                reply: driver::ReplyTo::Stream(ReplyTo {
                    tx: tx.clone(),
                    token,
                }),
                span,
                hold: Some(Hold {
                    connection,
                    cpu: Some(cpu),
                }),
            };
            let driver = shared.driver.clone();
            tokio::spawn(async move { driver.process(request).await });
        }
    }
    finish(tx, writer).await;
}

/// RFC 9765: a RADIUS/1.1 packet translated to the form the core checks, with the Token its
/// reply must carry. None: dropped (counted, logged).
fn unwrap_v11(
    core: &Core,
    client: &Client,
    peer: SocketAddr,
    packet: Vec<u8>,
    radius_1_1: bool,
) -> Option<(Vec<u8>, Option<[u8; 16]>)> {
    if !radius_1_1 {
        return Some((packet, None));
    }
    let mut token = [0u8; 16];
    token.copy_from_slice(packet.get(4..20).unwrap_or(&[0; 16]));
    match crate::radius::v11::request_to_core(&packet, &client.secret) {
        Ok(p) => Some((p, Some(token))),
        Err(e) => {
            core.stats.incr(Counter::Radius11Malformed);
            if let Some(s) = may_log(core, ReasonCode::MalformedPacket, peer) {
                warn!(%peer, suppressed = s, "RADIUS/1.1 packet dropped: {e}");
            }
            None
        }
    }
}

/// Writes replies in order; gives up (closing the connection) when one cannot be written within
/// the write timeout.
async fn write_replies<W: AsyncWrite + Unpin>(
    core: Arc<Core>,
    mut wr: W,
    mut rx: mpsc::Receiver<Vec<u8>>,
    (peer, transport): (SocketAddr, Transport),
) {
    while let Some(reply) = rx.recv().await {
        match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(&reply)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                debug!(%peer, "write: {e}");
                return;
            }
            Err(_) => {
                core.stats.incr(Counter::connection(
                    transport,
                    ConnectionOutcome::WriteTimeout,
                ));
                if let Some(n) = may_log(&core, ReasonCode::StreamConnectionLimit, peer) {
                    warn!(%peer, suppressed = n, "connection closed: the peer did not read a reply within {WRITE_TIMEOUT:?}");
                }
                return;
            }
        }
    }
    let _ = wr.shutdown().await;
}

/// Lets replies already queued go out (bounded by the write timeout), then closes.
async fn finish(tx: mpsc::Sender<Vec<u8>>, writer: tokio::task::JoinHandle<()>) {
    drop(tx);
    let _ = tokio::time::timeout(WRITE_TIMEOUT, writer).await;
}
