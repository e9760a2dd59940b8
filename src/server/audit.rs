//! The audit log: one JSON object per finished authentication (RFC 2865 §4.2/§4.3 outcomes),
//! appended to `[audit] file`, fed by the core's `AuthObserver` hook.
//!
//! Durability: each record is one `write(2)` of the whole line, `\n` included, on a file opened
//! with `O_APPEND`. A kill -9 loses at most the record being written, and a partial last record
//! is recognisable by its missing newline. The request path never waits on the disk: records go
//! through a bounded channel to a writer thread; when that channel is full the record is
//! dropped, counted (`audit_dropped`) and warned about at most once a minute.
//!
//! An EAP-TLS record whose handshake started carries `client_hello`: what the supplicant offered
//! (versions, cipher suites, signature schemes, groups, by IANA name; see
//! `tls::client_hello`), next to what was negotiated (`tls_version`, `cipher_suite`,
//! `signature_scheme` of the client's CertificateVerify, key exchange `group`).
//! `nas_port_type` and `framed_mtu` are the NAS's numbers as sent (RFC 2865 §5.41, §5.12).
//! `directory_groups` lists the account's groups when `[directory]` found it (else null).
//!
//! Peer-supplied byte fields (identity, Calling/Called-Station-Id, granted values) become JSON
//! strings: valid UTF-8 is kept as is, every byte that is not part of valid UTF-8 is written as
//! the four characters `\xNN` (upper-case hex), so a reader can restore non-UTF-8 input.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tracing::{error, warn};

use crate::core::events::{AuthEvent, AuthObserver};
use crate::radius::dictionary::Dictionary;
use crate::tls::client_hello::{group_name, signature_scheme_name};

/// Records waiting for the writer thread at most; beyond, records are dropped and counted.
const QUEUE: usize = 8192;

enum Msg {
    Record(Vec<u8>),
    Reopen,
    Flush(SyncSender<()>),
}

/// The observer half: formats a record and queues it.
pub struct AuditLog {
    tx: SyncSender<Msg>,
    dictionary: Dictionary,
    dropped: AtomicU64,
    last_warning: AtomicU64,
}

impl AuditLog {
    /// Opens (creates) the file and starts the writer thread.
    pub fn open(path: &Path, dictionary: Dictionary) -> std::io::Result<Arc<AuditLog>> {
        let file = open_append(path)?;
        let (tx, rx) = sync_channel(QUEUE);
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer(path, file, rx))?;
        Ok(Arc::new(AuditLog {
            tx,
            dictionary,
            dropped: AtomicU64::new(0),
            last_warning: AtomicU64::new(0),
        }))
    }

    /// Reopens the file by name (after logrotate moved it away).
    pub fn reopen(&self) {
        let _ = self.tx.try_send(Msg::Reopen);
    }

    /// Waits (at most `timeout`) until every record queued so far is written.
    pub fn flush(&self, timeout: Duration) {
        let (ack_tx, ack_rx) = sync_channel(1);
        if self.tx.send(Msg::Flush(ack_tx)).is_ok() {
            let _ = ack_rx.recv_timeout(timeout);
        }
    }

    /// Records dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn record(&self, e: &AuthEvent<'_>, now: SystemTime) -> Vec<u8> {
        let granted: Vec<Value> = e
            .granted
            .iter()
            .map(|a| {
                json!({
                    "name": self.dictionary.name_of(a.vendor, u32::from(a.typ)),
                    "vendor": a.vendor,
                    "type": a.typ,
                    "value": escape_bytes(&a.value),
                })
            })
            .collect();
        let record = json!({
            "time": rfc3339(now),
            "outcome": e.outcome,
            "method": e.method,
            "reason": e.reason,
            "detail": e.detail,
            "identity": escape_bytes(e.identity),
            "user_name": e.user_name.map(escape_bytes),
            "nas": e.nas_addr.to_string(),
            "nas_name": e.nas_name,
            "calling_station_id": e.calling_station_id.map(escape_bytes),
            "called_station_id": e.called_station_id.map(escape_bytes),
            "tls_version": e.tls_version,
            "cipher_suite": e.cipher_suite,
            "serial": e.serial,
            "subject": e.subject,
            "issuer": e.issuer,
            "resumed": e.resumed,
            "round_trips": e.round_trips,
            "duration_ms": u64::try_from(e.duration.as_millis()).unwrap_or(u64::MAX),
            "rule": e.rule,
            "granted": granted,
            "client_hello": e.client_hello.map(|h| json!({
                "versions": h.version_names(),
                "cipher_suites": h.cipher_suite_names(),
                "signature_schemes": h.signature_scheme_names(),
                "groups": h.group_names(),
            })),
            "signature_scheme": e.signature_scheme.map(|s| signature_scheme_name(u16::from(s))),
            "group": e.group.map(|g| group_name(u16::from(g))),
            "nas_port_type": e.nas_port_type,
            "framed_mtu": e.framed_mtu,
            "directory_groups": e.directory_groups,
        });
        let mut line = record.to_string().into_bytes();
        line.push(b'\n');
        line
    }
}

impl AuthObserver for AuditLog {
    fn finished(&self, event: &AuthEvent<'_>) {
        let now = crate::server::wall_clock();
        let line = self.record(event, now);
        match self.tx.try_send(Msg::Record(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let secs = now
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let last = self.last_warning.load(Ordering::Relaxed);
                if secs >= last.saturating_add(60)
                    && self
                        .last_warning
                        .compare_exchange(last, secs, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    warn!(
                        dropped = n,
                        "audit log: the writer cannot keep up, records dropped"
                    );
                }
            }
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn writer(path: PathBuf, mut file: File, rx: Receiver<Msg>) {
    let mut failing = false;
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Record(line) => {
                // One write(2) of the whole line: O_APPEND makes it land at the end as a unit.
                let result = match file.write(&line) {
                    Ok(n) if n == line.len() => Ok(()),
                    Ok(n) => file.write_all(line.get(n..).unwrap_or(&[])),
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        error!("audit log {}: cannot write: {e}", path.display());
                    }
                    Err(_) => {}
                }
            }
            Msg::Reopen => match open_append(&path) {
                Ok(f) => file = f,
                Err(e) => error!(
                    "audit log {}: cannot reopen, still writing to the old file: {e}",
                    path.display()
                ),
            },
            Msg::Flush(ack) => {
                let _ = file.sync_data();
                let _ = ack.send(());
            }
        }
    }
    let _ = file.sync_data();
}

pub use crate::escape::json_text as escape_bytes;
use crate::timefmt::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_escape_only_what_is_not_utf8() {
        assert_eq!(
            escape_bytes("anne@example.org é".as_bytes()),
            "anne@example.org é"
        );
        assert_eq!(escape_bytes(b"a\xffb\xc3"), "a\\xFFb\\xC3");
    }
}
