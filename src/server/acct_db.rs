//! Accounting records into PostgreSQL (`[accounting] database_url`), with an on-disk queue for
//! the times the database is away: the shell around `crate::accounting::sql`.
//!
//! RFC 2866 §4.1: an Accounting-Response goes out only once its record is stored. Here a record
//! is stored when its transaction committed, or, when the database cannot take it (down, slow,
//! refusing), when its queue line is written and fsynced. Once anything is queued, later records
//! are queued behind it (order is kept) until the queue has been replayed into the database;
//! the queue is replayed at start too, so an acknowledged record survives a restart. Replay is
//! safe to repeat: the upsert is idempotent (see `accounting::sql`), so a crash in the middle of a
//! replay only writes some rows twice with the same result.
//!
//! One connection does the writing, batched in transactions: records of one session must reach
//! the table in order, and one pipelined connection keeps up with a NAS fleet's accounting.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, NoTls, Statement};
use tracing::{error, info, warn};

use crate::accounting::sql::{Action, CLOSE_NAS, Row, SCHEMA, UPSERT, UPSERT_LINKED};
use crate::config::database::DatabaseTarget;
use crate::core::Core;
use crate::core::stats::Counter;

/// Records waiting for the database writer; beyond it a request goes unanswered.
const CHANNEL: usize = 4096;
/// Records per transaction.
const BATCH: usize = 256;
/// A database that does not answer within this is treated as down (records go to the queue).
const DB_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The queue file inside `queue_dir`.
pub const QUEUE_FILE: &str = "certradius-accounting.queue";

pub type Ack = oneshot::Sender<std::io::Result<()>>;

/// The handle the accounting listener submits rows to.
pub struct DbSink {
    tx: mpsc::Sender<(Row, Ack)>,
}

impl DbSink {
    /// Opens the queue (it must be writable: without it nothing could be acknowledged while the
    /// database is away) and starts the writer task.
    pub fn start(
        core: Arc<Core>,
        url: &str,
        auto_migrate: bool,
        queue_dir: &Path,
        queue_max_bytes: u64,
    ) -> std::io::Result<DbSink> {
        let config = crate::config::database::parse(url)
            .map_err(|e| std::io::Error::other(format!("accounting.database_url: {e}")))?;
        let queue = Queue::open(queue_dir, queue_max_bytes)?;
        if !queue.is_empty() {
            info!(
                queue = %queue.path.display(),
                bytes = queue.bytes,
                "accounting records queued by a previous run will be written to the database"
            );
        }
        let (tx, rx) = mpsc::channel(CHANNEL);
        tokio::spawn(run(core, config, auto_migrate, queue, rx));
        Ok(DbSink { tx })
    }

    /// Hands a row over; `Err` when the writer is saturated or gone (no response then).
    pub fn submit(&self, row: Row) -> Result<oneshot::Receiver<std::io::Result<()>>, &'static str> {
        let (ack, rx) = oneshot::channel();
        match self.tx.try_send((row, ack)) {
            Ok(()) => Ok(rx),
            Err(mpsc::error::TrySendError::Full(_)) => Err("the database record queue is full"),
            Err(mpsc::error::TrySendError::Closed(_)) => Err("the database writer stopped"),
        }
    }
}

/// The on-disk queue: one JSON [`Row`] per line, appended and fsynced before acknowledging,
/// read back from `read_offset` and emptied once everything was replayed.
struct Queue {
    path: PathBuf,
    file: File,
    bytes: u64,
    max: u64,
    read_offset: u64,
}

impl Queue {
    fn open(dir: &Path, max: u64) -> std::io::Result<Queue> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(QUEUE_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        // A crash while appending leaves a line without its newline: that record was never
        // acknowledged (the fsync comes after the write), so it is cut off.
        let len = file.metadata()?.len();
        let mut keep = len;
        if len > 0 {
            let mut content = Vec::new();
            file.seek(SeekFrom::Start(0))?;
            file.read_to_end(&mut content)?;
            keep = content
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i as u64 + 1);
        }
        if keep != len {
            warn!(
                queue = %path.display(),
                "accounting queue: an unfinished last line (never acknowledged) was removed"
            );
            file.set_len(keep)?;
            file.sync_all()?;
        }
        Ok(Queue {
            path,
            file,
            bytes: keep,
            max,
            read_offset: 0,
        })
    }

    fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Appends the rows and fsyncs: all or nothing against the bound.
    fn push(&mut self, rows: &[Row]) -> std::io::Result<()> {
        let mut text = String::new();
        for row in rows {
            text.push_str(&row.to_line());
            text.push('\n');
        }
        if self.bytes.saturating_add(text.len() as u64) > self.max {
            return Err(std::io::Error::other(format!(
                "the accounting queue {} reached accounting.queue_max_bytes",
                self.path.display()
            )));
        }
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()?;
        self.bytes += text.len() as u64;
        Ok(())
    }

    /// Up to `n` rows from the read offset, and the offset after them. Damaged lines are skipped.
    fn read(&self, n: usize) -> std::io::Result<(Vec<Row>, u64, usize)> {
        let mut reader = BufReader::new(File::open(&self.path)?);
        reader.seek(SeekFrom::Start(self.read_offset))?;
        let mut rows = Vec::new();
        let mut offset = self.read_offset;
        let mut damaged = 0;
        let mut line = String::new();
        while rows.len() < n && offset < self.bytes {
            line.clear();
            let got = reader.read_line(&mut line)?;
            if got == 0 || !line.ends_with('\n') {
                break;
            }
            offset += got as u64;
            match Row::from_line(line.trim_end()) {
                Some(r) => rows.push(r),
                None => damaged += 1,
            }
        }
        Ok((rows, offset, damaged))
    }

    fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_all()?;
        self.bytes = 0;
        self.read_offset = 0;
        Ok(())
    }
}

/// A live connection and its prepared statements.
struct Db {
    client: Client,
    upsert: Statement,
    close_nas: Statement,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for Db {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// Creates or upgrades the schema (`certradius db migrate`, `auto_migrate`).
pub async fn migrate(client: &Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(&format!("BEGIN;\n{SCHEMA}\nCOMMIT;"))
        .await
}

/// `certradius db migrate`: connects to `accounting.database_url` and runs [`SCHEMA`].
pub fn migrate_command(config: &crate::config::AccountingConfig) -> Result<(), String> {
    let Some(url) = &config.database_url else {
        return Err("accounting.database_url is not set".into());
    };
    let pg = crate::config::database::parse(url.expose())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let (client, connection) = connect(&pg).await?;
        let result = tokio::time::timeout(Duration::from_secs(60), migrate(&client)).await;
        connection.abort();
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(describe(&e)),
            Err(_) => Err("no answer from the database within 60 s".into()),
        }
    })
}

/// Connects, with TLS as `sslmode` says (`pg_tls.rs`).
pub async fn connect(
    target: &DatabaseTarget,
) -> Result<(Client, tokio::task::JoinHandle<()>), String> {
    let timed_out = |_| "connection timed out".to_string();
    let tls = super::pg_tls::connector(target)?;
    let mode = target.effective_mode().as_str();
    let refused = |e: tokio_postgres::Error| format!("{} (sslmode={mode})", describe(&e));
    let handle = match tls {
        None => {
            let (client, connection) =
                tokio::time::timeout(DB_TIMEOUT, target.config.connect(NoTls))
                    .await
                    .map_err(timed_out)?
                    .map_err(refused)?;
            (client, tokio::spawn(watch(connection)))
        }
        Some(tls) => {
            let (client, connection) = tokio::time::timeout(DB_TIMEOUT, target.config.connect(tls))
                .await
                .map_err(timed_out)?
                .map_err(refused)?;
            (client, tokio::spawn(watch(connection)))
        }
    };
    Ok(handle)
}

/// Drives a connection until it ends.
async fn watch<F: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: F) {
    if let Err(e) = connection.await {
        warn!("accounting database connection: {e}");
    }
}

async fn open_db(config: &DatabaseTarget, auto_migrate: bool) -> Result<Db, String> {
    let (client, connection) = connect(config).await?;
    let prepared = async {
        if auto_migrate {
            migrate(&client).await?;
        }
        // The pool's links when the schema has them (a database not migrated yet keeps working).
        let upsert = match client.prepare(UPSERT_LINKED).await {
            Ok(s) => s,
            Err(_) => client.prepare(UPSERT).await?,
        };
        let close_nas = client.prepare(CLOSE_NAS).await?;
        Ok::<_, tokio_postgres::Error>((upsert, close_nas))
    };
    match tokio::time::timeout(DB_TIMEOUT, prepared).await {
        Ok(Ok((upsert, close_nas))) => Ok(Db {
            client,
            upsert,
            close_nas,
            connection,
        }),
        Ok(Err(e)) => {
            connection.abort();
            Err(describe(&e))
        }
        Err(_) => {
            connection.abort();
            Err("no answer preparing statements".into())
        }
    }
}

/// The server's message when there is one (e.g. "relation radacct does not exist").
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// Writes the rows in one transaction.
async fn write(db: &Db, rows: &[Row]) -> Result<(), String> {
    let work = async {
        db.client.batch_execute("BEGIN").await?;
        for r in rows {
            match r.action {
                Action::CloseNas => {
                    db.client
                        .execute(&db.close_nas, &[&r.nasipaddress, &r.event_time])
                        .await?;
                }
                Action::Start | Action::Interim | Action::Stop => {
                    db.client
                        .execute(
                            &db.upsert,
                            &[
                                &r.acctsessionid,
                                &r.acctuniqueid,
                                &r.username,
                                &r.nasipaddress,
                                &r.callingstationid,
                                &r.calledstationid,
                                &r.acctstarttime,
                                &r.acctupdatetime,
                                &r.acctstoptime,
                                &r.acctsessiontime,
                                &r.acctinputoctets,
                                &r.acctoutputoctets,
                                &r.acctterminatecause,
                                &r.framedipaddress,
                                &r.certificate_serial,
                                &r.certificate_issuer,
                                &r.class,
                                &(r.action == Action::Start),
                            ],
                        )
                        .await?;
                }
            }
        }
        db.client.batch_execute("COMMIT").await
    };
    match tokio::time::timeout(DB_TIMEOUT, work).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(describe(&e)),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

fn monotonic() -> Instant {
    crate::server::monotonic_clock()
}

type Connecting = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Db, String>> + Send>>;

/// When to try the database again: 1 s after a failure, doubling up to 30 s, back to 1 s once
/// a write succeeds (a connection that opens but cannot write does not reset it).
struct Retry {
    next: Instant,
    backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            next: monotonic(),
            backoff: Duration::from_secs(1),
        }
    }
}

impl Retry {
    fn failed(&mut self) {
        self.next = monotonic() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn succeeded(&mut self) {
        self.backoff = Duration::from_secs(1);
    }
}

/// The writer: the only user of the connection and of the queue.
async fn run(
    core: Arc<Core>,
    config: DatabaseTarget,
    auto_migrate: bool,
    mut queue: Queue,
    mut rx: mpsc::Receiver<(Row, Ack)>,
) {
    let mut db: Option<Db> = None;
    let mut retry = Retry::default();
    // Log a database outage once, and its end.
    let mut down_logged = false;
    // A connection attempt runs beside the record path: a database that hangs must not hold
    // the queue (and so the Accounting-Responses) for the connect timeout.
    let mut connecting: Option<Connecting> = None;
    loop {
        // A connection the server closed (restart, network) is noticed here, not only at the
        // next write: readiness (`server/health.rs`) must see the database go away.
        if db.as_ref().is_some_and(|d| d.connection.is_finished()) {
            core.stats.incr(Counter::AccountingDbErrors);
            error!("accounting database connection lost, reconnecting");
            down_logged = true;
            db = None;
            retry.failed();
        }
        core.readiness.set_database_up(db.is_some());
        if db.is_none() && connecting.is_none() && monotonic() >= retry.next {
            let config = config.clone();
            connecting = Some(Box::pin(
                async move { open_db(&config, auto_migrate).await },
            ));
        }
        if let Some(d) = &db
            && !queue.is_empty()
        {
            match replay_some(&core, d, &mut queue).await {
                Ok(()) => retry.succeeded(),
                Err(e) => {
                    // Also a schema problem (no `radacct`: run `certradius db migrate`): the
                    // records stay queued and this is logged at each attempt.
                    core.stats.incr(Counter::AccountingDbErrors);
                    error!("accounting queue replay stopped, retrying: {e}");
                    db = None;
                    retry.failed();
                }
            }
        }
        let wait = match &db {
            Some(_) if !queue.is_empty() => Duration::ZERO,
            // Wake once a second to notice a lost connection (see above).
            Some(_) => Duration::from_secs(1),
            None if connecting.is_some() => Duration::from_secs(3600),
            None => retry
                .next
                .saturating_duration_since(monotonic())
                .max(Duration::from_millis(10)),
        };
        let received = tokio::select! {
            opened = async {
                match connecting.as_mut() {
                    Some(c) => c.await,
                    None => std::future::pending().await,
                }
            } => {
                connecting = None;
                match opened {
                    Ok(d) => {
                        info!("accounting database connected");
                        db = Some(d);
                        down_logged = false;
                    }
                    Err(e) => {
                        core.stats.incr(Counter::AccountingDbErrors);
                        if !down_logged {
                            error!(
                                "accounting database unavailable, records are queued on disk: {e}"
                            );
                            down_logged = true;
                        }
                        retry.failed();
                    }
                }
                continue;
            }
            r = tokio::time::timeout(wait, rx.recv()) => r,
        };
        let first = match received {
            Ok(Some(x)) => x,
            Ok(None) => return,
            Err(_) => continue,
        };
        record_batch(
            &core,
            (&mut db, &mut retry, &mut down_logged),
            &mut queue,
            first,
            &mut rx,
        )
        .await;
    }
}

/// Writes what arrived (the first record and what else is waiting, up to a batch) straight to
/// the database when it is up and nothing is queued before it, else to the on-disk queue; then
/// answers each record's Accounting-Response.
async fn record_batch(
    core: &Core,
    (db, retry, down_logged): (&mut Option<Db>, &mut Retry, &mut bool),
    queue: &mut Queue,
    first: (Row, Ack),
    rx: &mut mpsc::Receiver<(Row, Ack)>,
) {
    let mut batch = vec![first];
    while batch.len() < BATCH {
        match rx.try_recv() {
            Ok(x) => batch.push(x),
            Err(_) => break,
        }
    }
    let (rows, acks): (Vec<Row>, Vec<Ack>) = batch.into_iter().unzip();
    if let Some(d) = db.as_ref()
        && queue.is_empty()
    {
        match write(d, &rows).await {
            Ok(()) => {
                retry.succeeded();
                core.stats
                    .add(Counter::AccountingDbWritten, rows.len() as u64);
                for ack in acks {
                    let _ = ack.send(Ok(()));
                }
                return;
            }
            Err(e) => {
                core.stats.incr(Counter::AccountingDbErrors);
                error!("accounting database write failed, records are queued on disk: {e}");
                *down_logged = true;
                *db = None;
                retry.failed();
            }
        }
    }
    let result = queue.push(&rows);
    if result.is_ok() {
        core.stats.add(Counter::AccountingQueued, rows.len() as u64);
    }
    for ack in acks {
        let _ = ack.send(match &result {
            Ok(()) => Ok(()),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        });
    }
}

/// Replays one batch from the queue; empties the queue when it was the last.
async fn replay_some(core: &Core, db: &Db, queue: &mut Queue) -> Result<(), String> {
    let (rows, offset, damaged) = queue.read(BATCH).map_err(|e| e.to_string())?;
    if damaged > 0 {
        warn!(
            damaged,
            queue = %queue.path.display(),
            "accounting queue: damaged lines skipped"
        );
    }
    if !rows.is_empty() {
        write(db, &rows).await?;
        core.stats
            .add(Counter::AccountingReplayed, rows.len() as u64);
    }
    queue.read_offset = offset;
    if queue.read_offset >= queue.bytes {
        queue.clear().map_err(|e| e.to_string())?;
        info!("accounting queue replayed into the database");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> Row {
        Row {
            action: Action::Start,
            acctsessionid: id.into(),
            acctuniqueid: id.into(),
            username: None,
            nasipaddress: "127.0.0.1".into(),
            callingstationid: None,
            calledstationid: None,
            acctstarttime: Some(1.0),
            acctupdatetime: Some(1.0),
            acctstoptime: None,
            acctsessiontime: None,
            acctinputoctets: None,
            acctoutputoctets: None,
            acctterminatecause: None,
            framedipaddress: None,
            certificate_serial: None,
            certificate_issuer: None,
            class: None,
            event_time: 1.0,
        }
    }

    #[test]
    fn queue_keeps_order_cuts_a_torn_line_and_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 65536).unwrap();
        q.push(&[row("a"), row("b")]).unwrap();
        q.push(&[row("c")]).unwrap();
        drop(q);
        // A crash in the middle of an append.
        let path = dir.path().join(QUEUE_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"action\":\"sto").unwrap();
        let mut q = Queue::open(dir.path(), 65536).unwrap();
        let (rows, off, damaged) = q.read(2).unwrap();
        assert_eq!(damaged, 0);
        let ids: Vec<_> = rows.iter().map(|r| r.acctsessionid.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        q.read_offset = off;
        let (rows, off, _) = q.read(10).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(off, q.bytes);
        q.clear().unwrap();
        assert!(q.is_empty());
        let big: Vec<Row> = (0..2000).map(|i| row(&i.to_string())).collect();
        assert!(q.push(&big).is_err());
        assert!(q.is_empty());
    }
}
