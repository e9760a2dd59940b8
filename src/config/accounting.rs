//! `[accounting]`: the RFC 2866 accounting listener and where its records go.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::values::{FsyncPolicy, Secret};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AccountingConfig {
    /// UDP addresses for Accounting-Requests (RFC 2866; port 1813). Empty: no accounting
    /// listener. The embedded default configuration listens on 127.0.0.1:1813.
    #[serde(deserialize_with = "super::values::socket_addrs")]
    pub listen: Vec<SocketAddr>,
    /// JSON lines, one object per Accounting-Request. Relative: in the state directory
    /// (`paths`).
    pub file: Option<PathBuf>,
    /// "always": every Accounting-Response waits for fsync of its record; "interval": records
    /// are fsynced every `fsync_interval_ms` and the responses wait for that fsync.
    pub fsync: FsyncPolicy,
    pub fsync_interval_ms: u64,
    /// PostgreSQL (`postgresql://user:password@host/db`): one `radacct` row per session,
    /// FreeRADIUS's column names. Never logged (it may hold a password).
    pub database_url: Option<Secret>,
    /// Create the database schema at start (what `certradius db migrate` does).
    pub auto_migrate: bool,
    /// Where records wait, fsynced, while the database is unreachable. Default: the directory
    /// of `server.state_file`; relative: in the state directory (`paths`).
    pub queue_dir: Option<PathBuf>,
    /// Bound of the on-disk queue; beyond it Accounting-Requests go unanswered (the NAS retries).
    pub queue_max_bytes: u64,
}

impl AccountingConfig {
    /// The queue directory: `queue_dir`, or the directory of the state file.
    pub fn queue_dir_or(&self, state_file: &std::path::Path) -> PathBuf {
        match &self.queue_dir {
            Some(d) => d.clone(),
            None => match state_file.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            },
        }
    }
}

impl Default for AccountingConfig {
    fn default() -> Self {
        AccountingConfig {
            listen: Vec::new(),
            file: None,
            fsync: FsyncPolicy::Always,
            fsync_interval_ms: 1000,
            database_url: None,
            auto_migrate: false,
            queue_dir: None,
            queue_max_bytes: 256 * 1024 * 1024,
        }
    }
}
