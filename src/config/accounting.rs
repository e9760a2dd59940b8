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
    /// JSON lines, one object per Accounting-Request.
    pub file: Option<PathBuf>,
    /// "always": every Accounting-Response waits for fsync of its record; "interval": records
    /// are fsynced every `fsync_interval_ms` and the responses wait for that fsync.
    pub fsync: FsyncPolicy,
    pub fsync_interval_ms: u64,
    /// PostgreSQL (`postgresql://user:password@host/db`). Not available in this version: a
    /// configuration that sets it is refused with an error saying so.
    pub database_url: Option<Secret>,
    /// Create the database schema at start.
    pub auto_migrate: bool,
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
        }
    }
}
