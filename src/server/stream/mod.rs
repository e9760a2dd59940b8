//! RADIUS over streams: RadSec (RADIUS over TLS, RFC 6614) and RADIUS/TCP (RFC 6613).
//!
//! The transport only frames and identifies: packets are cut by the RADIUS Length field
//! (`radius::stream`, RFC 6613 §2.1), the client is identified by source address, transport and
//! — for TLS — the NAS certificate (mutual TLS, RFC 6614 §2.2, §2.4), and every packet then goes
//! through the same request driver as UDP (`driver.rs`: drain, debug filter, core, OCSP and the
//! Disconnect on revocation), keyed by the connection's peer address so duplicate detection is
//! per connection (RFC 6613 §2.6.3). The shared secret of a RadSec client defaults to "radsec"
//! (RFC 6614 §2.3).
//!
//! A connection holds its client by identity (the [`Client`] entry, found again by name after a
//! reload), never by position in the list: a reload that inserts, removes or reorders
//! `[[client]]` entries leaves it bound to its own NAS, or closes it when that NAS is gone or
//! no longer matches (`connection.rs`).
//!
//! Nothing a peer does can hold the server hostage: connections are capped in total and per
//! client, the handshake and idle periods are bounded, each connection has a bounded number of
//! requests in flight and a bounded reply queue (a peer that stops reading stops being read),
//! and every write has a deadline after which the connection is closed.
//!
//! [`Client`]: crate::core::clients::Client

mod accept;
mod connection;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::Core;
use super::driver::Driver;
use crate::config::{Config, Transport};
use crate::core::guard::lock;
use crate::reason::ReasonCode;

pub(super) use connection::ReplyTo;

/// The bound listeners, made by [`bind`] before the runtime serves.
pub struct Streams {
    tls: Vec<TcpListener>,
    tcp: Vec<TcpListener>,
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

/// Binds `[radsec] listen` and `[tcp] listen` (std sockets, so this runs before the runtime
/// serves) and prints one machine-readable line per listener. The RadSec TLS configuration is
/// part of the configuration snapshot (`server::reload`), so a renewed certificate or a new CRL
/// reaches new connections without a restart.
pub fn bind(config: &Config) -> Result<Option<Streams>, StreamSetupError> {
    if config.radsec.listen.is_empty() && config.tcp.listen.is_empty() {
        return Ok(None);
    }
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
                super::announce::listening(transport, a);
            }
            out.push(l);
        }
        Ok(out)
    };
    Ok(Some(Streams {
        tls: listen("tls", &config.radsec.listen)?,
        tcp: listen("tcp", &config.tcp.listen)?,
    }))
}

/// Open connections, in total and per client (by the client's stable id), against the bounds
/// of the configuration in force.
struct Limits {
    total: AtomicUsize,
    per_client: Mutex<HashMap<usize, usize>>,
}

/// A connection's claim on the connection bounds, released when the connection ends.
struct Slot {
    limits: Arc<Limits>,
    client: Option<usize>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limits.total.fetch_sub(1, Ordering::AcqRel);
        if let Some(client) = self.client
            && let Some(n) = lock(&self.limits.per_client).get_mut(&client)
        {
            *n = n.saturating_sub(1);
        }
    }
}

impl Limits {
    /// A place among `radsec.max_connections`, or None.
    fn claim_total(self: &Arc<Self>, max: usize) -> Option<Slot> {
        let before = self.total.fetch_add(1, Ordering::AcqRel);
        let slot = Slot {
            limits: self.clone(),
            client: None,
        };
        (before < max).then_some(slot)
    }

    /// Adds the client's place among `radsec.max_connections_per_client` to `slot`.
    fn claim_client(slot: &mut Slot, client: usize, max: usize) -> bool {
        let mut m = lock(&slot.limits.per_client);
        let n = m.entry(client).or_insert(0);
        if *n >= max {
            return false;
        }
        *n += 1;
        slot.client = Some(client);
        true
    }
}

/// What every connection of every stream listener shares.
struct Shared {
    driver: Arc<Driver>,
    limits: Arc<Limits>,
    /// `server.max_in_flight`: stream requests wait for room here (UDP ones are dropped).
    permits: Arc<Semaphore>,
    exit: watch::Receiver<bool>,
}

/// Serves every stream listener until `exit`.
pub(super) async fn serve(
    driver: Arc<Driver>,
    streams: Streams,
    max_in_flight: usize,
    exit: watch::Receiver<bool>,
) {
    let shared = Arc::new(Shared {
        driver,
        limits: Arc::new(Limits {
            total: AtomicUsize::new(0),
            per_client: Mutex::new(HashMap::new()),
        }),
        permits: Arc::new(Semaphore::new(max_in_flight)),
        exit,
    });
    let mut loops = Vec::new();
    for (listener, transport) in streams
        .tls
        .into_iter()
        .map(|l| (l, Transport::Tls))
        .chain(streams.tcp.into_iter().map(|l| (l, Transport::Tcp)))
    {
        loops.push(tokio::spawn(accept::accept_loop(
            shared.clone(),
            listener,
            transport,
        )));
    }
    for l in loops {
        let _ = l.await;
    }
}

/// Whether a line about `reason` from `peer` may be logged now (at most one per reason, source
/// and interval, like the core's drop warnings); `Some(n)` tells how many were swallowed.
fn may_log(core: &Core, reason: ReasonCode, peer: SocketAddr) -> Option<u64> {
    core.stats
        .should_log(reason, Some(peer.ip()), crate::server::monotonic_clock())
}
