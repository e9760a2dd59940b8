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

#[cfg(test)]
mod tests {
    use super::super::load_for_test as load;

    #[test]
    fn listen_parses_is_off_by_default_and_unknown_keys_are_named() {
        assert_eq!(load("").unwrap().metrics.listen, None);
        let c = load("[metrics]\nlisten = \"127.0.0.1:9812\"\n").unwrap();
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9812".parse().unwrap()));
        let err = load("[metrics]\nlisten = \"127.0.0.1:9812\"\nport = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("port"), "{err}");
        assert!(load("[metrics]\nlisten = \"localhost\"\n").is_err());
    }
}
