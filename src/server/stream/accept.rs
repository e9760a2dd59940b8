//! Accepting a stream connection and finding its client: the connection bounds, the RadSec
//! handshake with the NAS certificate verified against `radsec.ca_file` and its CRLs (mutual
//! TLS, RFC 6614 §2.2), RADIUS/1.1 by ALPN (RFC 9765 §3.1), and the `[[client]]` whose
//! address, transport and `certificate_name` match (RFC 6614 §2.4; RFC 6613 §2.3 for TCP).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use super::super::radsec::{ALPN_RADIUS_1_1, certificate_names, match_tls_client};
use super::connection::{self, Bound};
use super::{Limits, Shared, Slot, may_log};
use crate::config::{Radius11, Transport};
use crate::core::Core;
use crate::core::clients::Client;
use crate::core::stats::{ConnectionOutcome, Counter};
use crate::escape::Escaped;
use crate::reason::ReasonCode;

/// Accepts connections on one listener until `exit`.
pub(super) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, transport: Transport) {
    let core = shared.driver.core.clone();
    let mut exit = shared.exit.clone();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = exit.wait_for(|stop| *stop) => return,
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
        let max = core.snapshot().config.radsec.max_connections;
        let Some(slot) = shared.limits.claim_total(max) else {
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
        let shared = shared.clone();
        tokio::spawn(async move {
            match transport {
                Transport::Tls => open_tls(shared, socket, peer, slot).await,
                Transport::Tcp | Transport::Udp => open_tcp(shared, socket, peer, slot).await,
            }
        });
    }
}

/// RADIUS/TCP: the client is the most specific `tcp` client for the address.
async fn open_tcp(shared: Arc<Shared>, socket: TcpStream, peer: SocketAddr, mut slot: Slot) {
    let core = &shared.driver.core;
    core.stats.incr(Counter::connection(
        Transport::Tcp,
        ConnectionOutcome::Accepted,
    ));
    let Some(client) = core
        .clients()
        .candidates(peer.ip(), Transport::Tcp)
        .next()
        .cloned()
    else {
        return;
    };
    if !claim_client(core, &mut slot, &client, peer) {
        return;
    }
    let bound = Bound::new(core, client, peer, Vec::new());
    connection::run(shared.clone(), socket, bound, false).await;
    drop(slot);
}

/// RadSec: the handshake, then the client whose `certificate_name` the NAS certificate carries.
async fn open_tls(shared: Arc<Shared>, socket: TcpStream, peer: SocketAddr, mut slot: Slot) {
    let core = &shared.driver.core;
    let snapshot = core.snapshot();
    let Some(tls) = snapshot.radsec.clone() else {
        if let Some(n) = may_log(core, ReasonCode::NasHandshakeFailed, peer) {
            warn!(%peer, suppressed = n, "RadSec connection refused: [radsec] listen was emptied by a reload; restart to close the listener");
        }
        return;
    };
    let radsec = &snapshot.config.radsec;
    core.stats.incr(Counter::connection(
        Transport::Tls,
        ConnectionOutcome::Accepted,
    ));
    let handshake = tokio::time::timeout(
        Duration::from_secs(radsec.handshake_timeout_secs),
        tokio_rustls::TlsAcceptor::from(tls).accept(socket),
    )
    .await;
    let stream = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return handshake_failed(core, peer, &Escaped::str(&e.to_string()).to_string());
        }
        Err(_) => return handshake_failed(core, peer, "radsec.handshake_timeout_secs passed"),
    };
    let (_, conn) = stream.get_ref();
    let radius_1_1 = conn.alpn_protocol() == Some(ALPN_RADIUS_1_1);
    if radsec.radius_1_1 == Radius11::Require && !radius_1_1 {
        core.stats.incr(Counter::connection(
            Transport::Tls,
            ConnectionOutcome::RefusedUnknownClient,
        ));
        if let Some(n) = may_log(core, ReasonCode::NasNotMatched, peer) {
            warn!(%peer, suppressed = n, "RadSec connection closed: radsec.radius_1_1 = \"require\" and the peer did not negotiate radius/1.1 by ALPN");
        }
        return;
    }
    let names = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|leaf| certificate_names(leaf.as_ref()))
        .unwrap_or_default();
    let Some(client) = match_tls_client(&snapshot.clients, peer, &names).cloned() else {
        core.stats.incr(Counter::connection(
            Transport::Tls,
            ConnectionOutcome::RefusedUnknownClient,
        ));
        if let Some(n) = may_log(core, ReasonCode::NasNotMatched, peer) {
            warn!(%peer, suppressed = n, names = %Escaped::str(&names.join(",")), "RadSec connection closed: the NAS certificate matches no [[client]] certificate_name for this address");
        }
        return;
    };
    if !claim_client(core, &mut slot, &client, peer) {
        return;
    }
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1_3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1_2",
        _ => "unknown",
    };
    if radius_1_1 {
        core.stats.incr(Counter::Radius11Connections);
    }
    info!(%peer, client = %client.name, version, radius_1_1, "RadSec connection established");
    let bound = Bound::new(core, client, peer, names);
    drop(snapshot);
    connection::run(shared.clone(), stream, bound, radius_1_1).await;
    drop(slot);
}

fn handshake_failed(core: &Core, peer: SocketAddr, why: &str) {
    core.stats.incr(Counter::connection(
        Transport::Tls,
        ConnectionOutcome::HandshakeFailed,
    ));
    if let Some(n) = may_log(core, ReasonCode::NasHandshakeFailed, peer) {
        warn!(%peer, suppressed = n, "RadSec handshake failed: {why}");
    }
}

/// The client's place among `radsec.max_connections_per_client`; false (logged): closed.
fn claim_client(core: &Core, slot: &mut Slot, client: &Client, peer: SocketAddr) -> bool {
    let max = core.snapshot().config.radsec.max_connections_per_client;
    if Limits::claim_client(slot, client.id, max) {
        return true;
    }
    core.stats.incr(Counter::connection(
        client.transport,
        ConnectionOutcome::RefusedMaxConnections,
    ));
    let what = match client.transport {
        Transport::Tls => "RadSec",
        Transport::Tcp | Transport::Udp => "TCP",
    };
    if let Some(n) = may_log(core, ReasonCode::StreamConnectionLimit, peer) {
        warn!(%peer, suppressed = n, "{what} connection closed: radsec.max_connections_per_client reached");
    }
    false
}
