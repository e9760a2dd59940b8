//! RADIUS over streams: RadSec (RADIUS over TLS, RFC 6614) and RADIUS/TCP (RFC 6613).
//!
//! The transport only frames and identifies: packets are cut by the RADIUS Length field
//! (`radius::stream`, RFC 6613 §2.1), the client is identified by source address, transport and
//! — for TLS — the NAS certificate (mutual TLS, RFC 6614 §2.2, §2.4), and every packet then goes
//! through the same sans-IO [`Core`] as UDP, keyed by the connection's peer address so duplicate
//! detection is per connection (RFC 6613 §2.6.3). The shared secret of a RadSec client defaults
//! to "radsec" (RFC 6614 §2.3).
//!
//! Nothing a peer does can hold the server hostage: connections are capped in total and per
//! client, the handshake and idle periods are bounded, each connection has a bounded number of
//! requests in flight and a bounded reply queue (a peer that stops reading stops being read),
//! and every write has a deadline after which the connection is closed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{debug, info, warn};

use super::radsec::{
    ALPN_RADIUS_1_1, certificate_names, match_tls_client, tls_config, watch_files,
};
use super::{Core, Handled, OcspClient, now, os_rng};
use crate::config::{Config, Radius11, RadsecConfig, Transport};
use crate::core::stats::{ConnectionOutcome, Counter};
use crate::escape::Escaped;
use crate::radius::stream::Framer;
use crate::reason::ReasonCode;
use crate::session::RevocationVerdict;

/// Requests of one connection being processed at once; past it the connection is not read
/// (TCP flow control pushes back on the peer).
const IN_FLIGHT_PER_CONNECTION: usize = 64;
/// Replies waiting for the writer.
const REPLY_QUEUE: usize = 64;
/// A reply that cannot be written within this closes the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The bound listeners, made by [`bind`] before the runtime serves.
pub struct Streams {
    tls: Vec<TcpListener>,
    tcp: Vec<TcpListener>,
    acceptor: Option<Acceptor>,
    config: RadsecConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamSetupError {
    #[error("cannot listen on {transport} {addr}: {source}")]
    Bind {
        transport: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(String),
}

/// The RadSec TLS configuration in force; replaced when its files change (new CRLs, renewed
/// certificates), connections already open keep the one they started with.
pub(super) type Acceptor = Arc<std::sync::RwLock<tokio_rustls::TlsAcceptor>>;

/// Binds `[radsec] listen` and `[tcp] listen` (std sockets, so this runs before the runtime
/// serves) and prints one machine-readable line per listener.
pub fn bind(config: &Config) -> Result<Option<Streams>, StreamSetupError> {
    let cfg = &config.radsec;
    if cfg.listen.is_empty() && config.tcp.listen.is_empty() {
        return Ok(None);
    }
    let acceptor = if cfg.listen.is_empty() {
        None
    } else {
        Some(Arc::new(std::sync::RwLock::new(
            tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(cfg)?)),
        )))
    };
    let listen = |transport: &'static str, addrs: &[SocketAddr]| {
        let mut out = Vec::new();
        for &addr in addrs {
            let l = std::net::TcpListener::bind(addr)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .and_then(TcpListener::from_std)
                .map_err(|source| StreamSetupError::Bind {
                    transport,
                    addr,
                    source,
                })?;
            if let Ok(a) = l.local_addr() {
                // Machine-readable: tests and scripts that start us on port 0 read this line.
                println!("certradius: listening on {transport} {a}");
            }
            out.push(l);
        }
        Ok(out)
    };
    Ok(Some(Streams {
        tls: listen("tls", &cfg.listen)?,
        tcp: listen("tcp", &config.tcp.listen)?,
        acceptor,
        config: cfg.clone(),
    }))
}

/// Open connections, in total and per client.
struct Limits {
    total: Arc<Semaphore>,
    per_client: Mutex<HashMap<usize, usize>>,
    max_per_client: usize,
}

/// A connection's claim on a client's quota, released when the connection ends.
struct ClientSlot {
    limits: Arc<Limits>,
    client: usize,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.limits.per_client.lock()
            && let Some(n) = m.get_mut(&self.client)
        {
            *n = n.saturating_sub(1);
        }
    }
}

impl Limits {
    fn claim(self: &Arc<Self>, client: usize) -> Option<ClientSlot> {
        let mut m = self.per_client.lock().ok()?;
        let n = m.entry(client).or_insert(0);
        if *n >= self.max_per_client {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            limits: self.clone(),
            client,
        })
    }
}

/// Serves every stream listener until shutdown.
pub async fn serve(
    core: Arc<Core>,
    streams: Streams,
    ocsp: Arc<arc_swap::ArcSwapOption<OcspClient>>,
    permits: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
) {
    let Streams {
        tls,
        tcp,
        acceptor,
        config,
    } = streams;
    let config = Arc::new(config);
    let limits = Arc::new(Limits {
        total: Arc::new(Semaphore::new(config.max_connections)),
        per_client: Mutex::new(HashMap::new()),
        max_per_client: config.max_connections_per_client,
    });
    let mut loops = Vec::new();
    if let Some(a) = &acceptor {
        loops.push(tokio::spawn(watch_files(
            core.clone(),
            a.clone(),
            config.clone(),
            shutdown.clone(),
        )));
    }
    for (listener, transport) in tls
        .into_iter()
        .map(|l| (l, Transport::Tls))
        .chain(tcp.into_iter().map(|l| (l, Transport::Tcp)))
    {
        loops.push(tokio::spawn(accept_loop(
            core.clone(),
            listener,
            transport,
            acceptor.clone(),
            config.clone(),
            limits.clone(),
            ocsp.clone(),
            permits.clone(),
            shutdown.clone(),
        )));
    }
    for l in loops {
        let _ = l.await;
    }
}

#[expect(clippy::too_many_arguments, reason = "the accept loop's whole context")]
async fn accept_loop(
    core: Arc<Core>,
    listener: TcpListener,
    transport: Transport,
    acceptor: Option<Acceptor>,
    config: Arc<RadsecConfig>,
    limits: Arc<Limits>,
    ocsp: Arc<arc_swap::ArcSwapOption<OcspClient>>,
    permits: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (socket, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                debug!("accept: {e}");
                // Out of file descriptors and the like: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let Ok(total) = limits.total.clone().try_acquire_owned() else {
            core.stats.incr(Counter::connection(
                transport,
                ConnectionOutcome::RefusedMaxConnections,
            ));
            if let Some(n) = may_log(&core, ReasonCode::StreamConnectionLimit, peer) {
                warn!(%peer, suppressed = n, "connection refused: radsec.max_connections reached");
            }
            continue;
        };
        // Refused before any TLS work when no client of this transport has the address.
        if core
            .clients()
            .candidates(peer.ip(), transport)
            .next()
            .is_none()
        {
            core.stats.incr(Counter::connection(
                transport,
                ConnectionOutcome::RefusedUnknownClient,
            ));
            if let Some(n) = may_log(&core, ReasonCode::UnknownClient, peer) {
                warn!(%peer, suppressed = n, transport = transport.as_str(), "connection refused: no [[client]] with this transport matches the address");
            }
            continue;
        }
        let core = core.clone();
        let acceptor = acceptor.clone();
        let config = config.clone();
        let limits = limits.clone();
        let ocsp = ocsp.clone();
        let permits = permits.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _total = total;
            match transport {
                Transport::Tls => {
                    let Some(acceptor) = acceptor.and_then(|a| a.read().ok().map(|a| a.clone()))
                    else {
                        return;
                    };
                    core.stats.incr(Counter::connection(
                        Transport::Tls,
                        ConnectionOutcome::Accepted,
                    ));
                    let handshake = tokio::time::timeout(
                        Duration::from_secs(config.handshake_timeout_secs),
                        acceptor.accept(socket),
                    )
                    .await;
                    let tls = match handshake {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            core.stats.incr(Counter::connection(
                                Transport::Tls,
                                ConnectionOutcome::HandshakeFailed,
                            ));
                            if let Some(n) = may_log(&core, ReasonCode::NasHandshakeFailed, peer) {
                                warn!(%peer, suppressed = n, "RadSec handshake failed: {}", Escaped::str(&e.to_string()));
                            }
                            return;
                        }
                        Err(_) => {
                            core.stats.incr(Counter::connection(
                                Transport::Tls,
                                ConnectionOutcome::HandshakeFailed,
                            ));
                            if let Some(n) = may_log(&core, ReasonCode::NasHandshakeFailed, peer) {
                                warn!(%peer, suppressed = n, "RadSec handshake failed: radsec.handshake_timeout_secs passed");
                            }
                            return;
                        }
                    };
                    let (_, conn) = tls.get_ref();
                    let radius_1_1 = conn.alpn_protocol() == Some(ALPN_RADIUS_1_1);
                    if config.radius_1_1 == Radius11::Require && !radius_1_1 {
                        core.stats.incr(Counter::connection(
                            Transport::Tls,
                            ConnectionOutcome::RefusedUnknownClient,
                        ));
                        if let Some(n) = may_log(&core, ReasonCode::NasNotMatched, peer) {
                            warn!(%peer, suppressed = n, "RadSec connection closed: radsec.radius_1_1 = \"require\" and the peer did not negotiate radius/1.1 by ALPN");
                        }
                        return;
                    }
                    let names = conn
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|leaf| certificate_names(leaf.as_ref()))
                        .unwrap_or_default();
                    let Some(index) = match_tls_client(&core, peer, &names) else {
                        core.stats.incr(Counter::connection(
                            Transport::Tls,
                            ConnectionOutcome::RefusedUnknownClient,
                        ));
                        if let Some(n) = may_log(&core, ReasonCode::NasNotMatched, peer) {
                            warn!(%peer, suppressed = n, names = %Escaped::str(&names.join(",")), "RadSec connection closed: the NAS certificate matches no [[client]] certificate_name for this address");
                        }
                        return;
                    };
                    let Some(slot) = limits.claim(index) else {
                        core.stats.incr(Counter::connection(
                            Transport::Tls,
                            ConnectionOutcome::RefusedMaxConnections,
                        ));
                        if let Some(n) = may_log(&core, ReasonCode::StreamConnectionLimit, peer) {
                            warn!(%peer, suppressed = n, "RadSec connection closed: radsec.max_connections_per_client reached");
                        }
                        return;
                    };
                    let version = match conn.protocol_version() {
                        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1_3",
                        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1_2",
                        _ => "unknown",
                    };
                    let name = core
                        .clients()
                        .get(index)
                        .map(|c| c.name.clone())
                        .unwrap_or_default();
                    if radius_1_1 {
                        core.stats.incr(Counter::Radius11Connections);
                    }
                    info!(%peer, client = %name, version, radius_1_1, "RadSec connection established");
                    connection(
                        core,
                        tls,
                        index,
                        peer,
                        config,
                        radius_1_1,
                        ocsp,
                        permits,
                        shutdown,
                        Transport::Tls,
                    )
                    .await;
                    drop(slot);
                }
                Transport::Tcp | Transport::Udp => {
                    core.stats.incr(Counter::connection(
                        Transport::Tcp,
                        ConnectionOutcome::Accepted,
                    ));
                    let Some(index) = core
                        .clients()
                        .candidates(peer.ip(), Transport::Tcp)
                        .next()
                        .map(|c| c.index)
                    else {
                        return;
                    };
                    let Some(slot) = limits.claim(index) else {
                        core.stats.incr(Counter::connection(
                            Transport::Tcp,
                            ConnectionOutcome::RefusedMaxConnections,
                        ));
                        if let Some(n) = may_log(&core, ReasonCode::StreamConnectionLimit, peer) {
                            warn!(%peer, suppressed = n, "TCP connection closed: radsec.max_connections_per_client reached");
                        }
                        return;
                    };
                    connection(
                        core,
                        socket,
                        index,
                        peer,
                        config,
                        false,
                        ocsp,
                        permits,
                        shutdown,
                        Transport::Tcp,
                    )
                    .await;
                    drop(slot);
                }
            }
        });
    }
}

/// Whether a line about `reason` from `peer` may be logged now (at most one per reason, source
/// and interval, like the core's drop warnings); `Some(n)` tells how many were swallowed.
fn may_log(core: &Core, reason: ReasonCode, peer: SocketAddr) -> Option<u64> {
    core.stats
        .should_log(reason, Some(peer.ip()), crate::server::monotonic_clock())
}

#[expect(clippy::too_many_arguments, reason = "the connection's whole context")]
async fn connection<S>(
    core: Arc<Core>,
    stream: S,
    client: usize,
    peer: SocketAddr,
    config: Arc<RadsecConfig>,
    radius_1_1: bool,
    ocsp: Arc<arc_swap::ArcSwapOption<OcspClient>>,
    permits: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
    transport: Transport,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(REPLY_QUEUE);
    let stats_core = core.clone();
    let mut writer = tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(&reply)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    debug!(%peer, "write: {e}");
                    return;
                }
                Err(_) => {
                    stats_core.stats.incr(Counter::connection(
                        transport,
                        ConnectionOutcome::WriteTimeout,
                    ));
                    if let Some(n) = may_log(&stats_core, ReasonCode::StreamConnectionLimit, peer) {
                        warn!(%peer, suppressed = n, "connection closed: the peer did not read a reply within {WRITE_TIMEOUT:?}");
                    }
                    return;
                }
            }
        }
        let _ = wr.shutdown().await;
    });
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT_PER_CONNECTION));
    let idle = Duration::from_secs(config.idle_timeout_secs);
    let mut framer = Framer::new();
    let mut buf = vec![0u8; 4096];
    let mut deadline = tokio::time::Instant::now() + idle;
    loop {
        let read = tokio::select! {
            r = tokio::time::timeout_at(deadline, rd.read(&mut buf)) => r,
            _ = shutdown.wait_for(|stop| *stop) => break,
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
            // Waiting here stops reading: a peer with too much in flight is pushed back on.
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                return finish(tx, writer).await;
            };
            // The server-wide bound (`server.max_in_flight`) too; UDP drops past it, a stream
            // waits (the peer is pushed back by TCP flow control).
            let Ok(global) = permits.clone().acquire_owned().await else {
                return finish(tx, writer).await;
            };
            let core = core.clone();
            let tx = tx.clone();
            let ocsp = ocsp.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let global = Some(global);
                // RFC 9765: translated to the form Core checks, and the reply back.
                let (packet, token) = if radius_1_1 {
                    let mut token = [0u8; 16];
                    token.copy_from_slice(packet.get(4..20).unwrap_or(&[0; 16]));
                    let clients = core.clients();
                    let translated = match clients.get(client) {
                        Some(c) => crate::radius::v11::request_to_core(&packet, &c.secret),
                        None => return,
                    };
                    match translated {
                        Ok(p) => (p, Some(token)),
                        Err(e) => {
                            core.stats.incr(Counter::Radius11Malformed);
                            if let Some(s) = may_log(&core, ReasonCode::MalformedPacket, peer) {
                                warn!(%peer, suppressed = s, "RADIUS/1.1 packet dropped: {e}");
                            }
                            return;
                        }
                    }
                } else {
                    (packet, None)
                };
                let reply = match core.handle_from_client(client, peer, &packet, now(), &mut os_rng)
                {
                    Handled::Reply(r) => Some(r),
                    Handled::Silent => None,
                    Handled::Lookup(pending) => {
                        // As for UDP: a lookup waits on the network, not the CPU.
                        drop(global);
                        let verdict = match &*ocsp.load() {
                            Some(c) => c.lookup(&core, &pending.lookup).await,
                            None => RevocationVerdict::Unavailable("OCSP is not configured".into()),
                        };
                        core.resume(*pending, verdict, now(), &mut os_rng)
                    }
                };
                let reply = match (reply, token) {
                    (Some(r), Some(token)) => {
                        let clients = core.clients();
                        let translated = clients
                            .get(client)
                            .map(|c| crate::radius::v11::reply_from_core(&r, &token, &c.secret));
                        match translated {
                            Some(Ok(r)) => Some(r),
                            _ => {
                                core.stats.incr(Counter::ReplyEncodeFailed);
                                None
                            }
                        }
                    }
                    (r, _) => r,
                };
                if let Some(reply) = reply {
                    let _ = tx.send(reply).await;
                }
            });
        }
    }
    finish(tx, writer).await;
}

/// Lets replies already queued go out (bounded by the write timeout), then closes.
async fn finish(tx: mpsc::Sender<Vec<u8>>, writer: tokio::task::JoinHandle<()>) {
    drop(tx);
    let _ = tokio::time::timeout(WRITE_TIMEOUT, writer).await;
}
