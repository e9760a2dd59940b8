//! `[audit]`: the audit log, one JSON object per finished authentication.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The audit file (appended to, reopened on SIGHUP for logrotate); unset: no audit log.
    pub file: Option<PathBuf>,
}
