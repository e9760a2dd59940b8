//! The accounting listener (RFC 2866) and its durable record file: the shell around
//! `crate::accounting`.
//!
//! An Accounting-Response (RFC 2866 §4.2) is sent only after its record is as durable as
//! `accounting.fsync` says (RFC 2866 §4.1: a server that cannot record must not answer, so the
//! NAS retransmits). Retransmissions (RFC 5080 §2.2.2) are answered from a reply cache and
//! recorded once; one still being written is dropped (the NAS retries). Each record is one line
//! written with a single `write(2)` on an `O_APPEND` file, so a crash loses at most the line being
//! written and a reader recognises a partial last line by its missing newline.
//!
//! With `database_url` the record also goes to PostgreSQL (`server/acct_db.rs`); with both, the
//! response waits for both.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};
use tracing::{error, info, warn};

use crate::accounting;
use crate::accounting::sql::Row;
use crate::config::{AccountingConfig, FsyncPolicy};
use crate::core::Core;
use crate::core::dedup::{Dedup, Seen};
use crate::core::stats::Counter;
use crate::radius::{Code, Packet, PacketBuilder};
use crate::reason::ReasonCode;
use crate::server::acct_db::DbSink;
use crate::timefmt::rfc3339;

/// Records waiting to be written; beyond it a request is left unanswered (the NAS retries).
const QUEUE: usize = 4096;

type Ack = oneshot::Sender<std::io::Result<()>>;

/// The single writer of the record file: lines in arrival order, one fsync for all lines that
/// arrived together ("always") or one per interval ("interval"), then every waiting response.
struct Writer {
    tx: SyncSender<(String, Ack)>,
}

impl Writer {
    fn open(path: &PathBuf, policy: FsyncPolicy, interval: Duration) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("accounting-writer".into())
            .spawn(move || write_loop(file, rx, policy, interval))?;
        Ok(Writer { tx })
    }
}

fn write_loop(
    mut file: File,
    rx: Receiver<(String, Ack)>,
    policy: FsyncPolicy,
    interval: Duration,
) {
    let mut waiting: Vec<Ack> = Vec::new();
    let mut last_sync = monotonic();
    loop {
        let timeout = match (policy, waiting.is_empty()) {
            (_, true) => Duration::from_secs(3600),
            (FsyncPolicy::Always, false) => Duration::ZERO,
            (FsyncPolicy::Interval, false) => interval.saturating_sub(last_sync.elapsed()),
        };
        match rx.recv_timeout(timeout) {
            Ok((line, ack)) => {
                let result = file.write_all(line.as_bytes());
                match result {
                    Ok(()) => waiting.push(ack),
                    Err(e) => {
                        let _ = ack.send(Err(e));
                    }
                }
                // Take what else arrived meanwhile before paying for the fsync.
                if policy == FsyncPolicy::Always {
                    continue;
                }
                if last_sync.elapsed() < interval {
                    continue;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                sync_and_ack(&mut file, &mut waiting);
                return;
            }
        }
        if !waiting.is_empty() {
            sync_and_ack(&mut file, &mut waiting);
            last_sync = monotonic();
        }
    }
}

fn sync_and_ack(file: &mut File, waiting: &mut Vec<Ack>) {
    let result = file.sync_data();
    if let Err(e) = &result {
        error!("accounting file fsync failed: {e}");
    }
    for ack in waiting.drain(..) {
        let _ = ack.send(match &result {
            Ok(()) => Ok(()),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        });
    }
}

fn monotonic() -> Instant {
    crate::server::monotonic_clock()
}

/// Where records go: the file, the database, or both.
struct Sinks {
    file: Option<Writer>,
    db: Option<DbSink>,
}

type Durable = oneshot::Receiver<std::io::Result<()>>;

impl Sinks {
    /// Hands the record to every store; `Err` (nothing to wait for) when one cannot take it.
    fn submit(&self, line: String, row: Option<Row>) -> Result<Vec<Durable>, &'static str> {
        let mut waits = Vec::with_capacity(2);
        if let Some(file) = &self.file {
            let (ack_tx, ack_rx) = oneshot::channel();
            file.tx.try_send((line, ack_tx)).map_err(|e| match e {
                TrySendError::Full(_) => "the record queue is full",
                TrySendError::Disconnected(_) => "the record writer stopped",
            })?;
            waits.push(ack_rx);
        }
        if let (Some(db), Some(row)) = (&self.db, row) {
            waits.push(db.submit(row)?);
        }
        Ok(waits)
    }
}

/// Waits until the record is durable in every store.
async fn durable(waits: Vec<Durable>) -> Result<(), String> {
    for w in waits {
        match w.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("the record writer stopped".into()),
        }
    }
    Ok(())
}

/// Starts the accounting listeners; they stop when `shutdown` turns true.
pub fn start(
    core: Arc<Core>,
    sockets: Vec<UdpSocket>,
    config: &AccountingConfig,
    state_file: &std::path::Path,
    duplicate_cache: (usize, Duration),
    shutdown: watch::Receiver<bool>,
    coa: Arc<super::coa::Coa>,
) -> std::io::Result<()> {
    let file = match &config.file {
        Some(path) => {
            let w = Writer::open(
                path,
                config.fsync,
                Duration::from_millis(config.fsync_interval_ms),
            )?;
            info!(file = %path.display(), fsync = ?config.fsync, "accounting records to file");
            Some(w)
        }
        None => None,
    };
    let db = match &config.database_url {
        Some(url) => {
            let dir = config.queue_dir_or(state_file);
            let d = DbSink::start(
                core.clone(),
                url.expose(),
                config.auto_migrate,
                &dir,
                config.queue_max_bytes,
            )?;
            info!(queue_dir = %dir.display(), "accounting records to PostgreSQL");
            Some(d)
        }
        None => None,
    };
    if file.is_none() && db.is_none() {
        return Ok(());
    }
    let writer = Arc::new(Sinks { file, db });
    let dedup = Arc::new(Mutex::new(Dedup::new(duplicate_cache.0, duplicate_cache.1)));
    for socket in sockets {
        tokio::spawn(receive_loop(
            core.clone(),
            Arc::new(socket),
            writer.clone(),
            dedup.clone(),
            shutdown.clone(),
            coa.clone(),
        ));
    }
    Ok(())
}

async fn receive_loop(
    core: Arc<Core>,
    socket: Arc<UdpSocket>,
    writer: Arc<Sinks>,
    dedup: Arc<Mutex<Dedup>>,
    mut shutdown: watch::Receiver<bool>,
    coa: Arc<super::coa::Coa>,
) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, from) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!("accounting socket: {e}");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let datagram = buf.get(..n).unwrap_or_default().to_vec();
        handle(&core, &socket, &writer, &dedup, from, datagram, &coa);
    }
}

fn handle(
    core: &Arc<Core>,
    socket: &Arc<UdpSocket>,
    writer: &Arc<Sinks>,
    dedup: &Arc<Mutex<Dedup>>,
    from: SocketAddr,
    datagram: Vec<u8>,
    coa: &Arc<super::coa::Coa>,
) {
    let now = crate::server::now();
    let drop_packet = |reason: ReasonCode, detail: &str| {
        core.stats.incr(Counter::PacketsDropped);
        core.stats.incr(reason);
        if let Some(suppressed) = core
            .stats
            .should_log(reason, Some(from.ip()), now.monotonic)
        {
            warn!(%from, reason = %reason, suppressed, "accounting packet dropped: {detail}");
        }
    };
    let clients = core.clients();
    let Some(client) = clients.lookup(from.ip()) else {
        return drop_packet(
            ReasonCode::UnknownClient,
            "no [[client]] matches this address",
        );
    };
    let packet = match Packet::decode(&datagram) {
        Ok(p) => p,
        Err(e) => return drop_packet(ReasonCode::MalformedPacket, &e.to_string()),
    };
    let record = match accounting::decode(&packet, &client.secret, &client.name, from.ip()) {
        Ok(r) => r,
        Err((reason, detail)) => return drop_packet(reason, &detail),
    };
    core.stats.incr(Counter::AccountingRequests);
    let key = (from, packet.identifier());
    let authenticator = *packet.authenticator();
    let seen = crate::core::guard::lock(dedup).check(key, &authenticator, now.monotonic);
    match seen {
        Seen::Replay(reply) => {
            core.stats.incr(Counter::AccountingDuplicates);
            let socket = socket.clone();
            tokio::spawn(async move {
                let _ = socket.send_to(&reply, from).await;
            });
            return;
        }
        Seen::InProgress => {
            core.stats.incr(Counter::AccountingDuplicates);
            return;
        }
        Seen::New => {}
    }
    let reply = match PacketBuilder::new(Code::AccountingResponse, packet.identifier())
        .encode_accounting_response(&client.secret, &authenticator)
    {
        Ok(r) => r,
        Err(e) => {
            crate::core::guard::lock(dedup).complete(key, &authenticator, None);
            // Not the peer's doing (a dropped packet is counted by what the peer did): the
            // reply could not be encoded, as on the authentication side.
            core.stats.incr(Counter::ReplyEncodeFailed);
            warn!(%from, "Accounting-Response not sent: {e}");
            return;
        }
    };
    // The certificate its session was authenticated with (Class, or the fallback link).
    let certificate = coa.certificate_of(&record);
    let wall = crate::server::wall_clock();
    let mut line = record.to_json(
        &rfc3339(wall),
        certificate.as_ref().map(|(s, i)| (s.as_str(), i.as_str())),
    );
    line.push('\n');
    let row = writer.db.as_ref().and_then(|_| {
        let arrival = wall
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Row::from_record(
            &record,
            arrival,
            certificate.as_ref().map(|(s, i)| (s.as_str(), i.as_str())),
        )
    });
    let waits = match writer.submit(line, row) {
        Ok(w) => w,
        Err(why) => {
            crate::core::guard::lock(dedup).complete(key, &authenticator, None);
            return drop_packet(ReasonCode::AccountingNotRecorded, why);
        }
    };
    let socket = socket.clone();
    let dedup = dedup.clone();
    let core = core.clone();
    let coa = coa.clone();
    tokio::spawn(async move {
        match durable(waits).await {
            Ok(()) => {
                coa.observe(&record);
                let reply: Arc<[u8]> = Arc::from(reply);
                crate::core::guard::lock(&dedup).complete(key, &authenticator, Some(reply.clone()));
                if socket.send_to(&reply, from).await.is_ok() {
                    core.stats.incr(Counter::AccountingResponses);
                }
            }
            Err(why) => {
                // Not durable: no Accounting-Response (RFC 2866 §4.1), the NAS retransmits and the
                // retransmission is processed afresh.
                crate::core::guard::lock(&dedup).complete(key, &authenticator, None);
                core.stats.incr(Counter::PacketsDropped);
                core.stats.incr(ReasonCode::AccountingNotRecorded);
                error!(%from, "accounting record not written, no Accounting-Response: {why}");
            }
        }
    });
}
