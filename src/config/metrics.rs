//! `[metrics]`: the Prometheus scrape endpoint (off unless `listen` is set).

use std::net::SocketAddr;

use serde::Deserialize;

/// `[metrics]`: `GET /metrics` in the Prometheus text exposition format.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// TCP address of the HTTP endpoint, for example `"127.0.0.1:9812"`; unset: no endpoint.
    pub listen: Option<SocketAddr>,
}
