//! `[log]`: how the server's own log lines are written (stderr; journald picks them up).

use serde::Deserialize;

/// `[log] format = "text" | "json"`; `--log-format` on the command line wins.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
}

/// `"text"`: human-readable lines; `"json"`: one JSON object per line, for log shippers.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}
