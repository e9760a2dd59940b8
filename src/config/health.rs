//! `[health]`: the liveness and readiness endpoints for NAS monitoring and orchestrators
//! (`GET /healthz`, `GET /readyz`; off unless `listen` is set). What "ready" means and what
//! `server.when_unready` does with it are the shell's (`server/health.rs`).

use std::net::SocketAddr;

use serde::Deserialize;

/// `[health]`: the HTTP endpoint for `/healthz` and `/readyz`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// TCP address of the endpoint, for example `"127.0.0.1:9813"`; unset: no endpoint.
    pub listen: Option<SocketAddr>,
}

/// `server.when_unready`: what the authentication listeners do while the server is not ready.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WhenUnready {
    /// Answer as usual (rejects included): the NAS keeps this server.
    #[default]
    Serve,
    /// Leave Access-Requests and Status-Server unanswered, so the NAS marks this server dead
    /// and fails over (RFC 5997 §4 dead-server detection); accounting is still recorded.
    Silent,
}

#[cfg(test)]
mod tests {
    use super::super::load_for_test as load;
    use super::WhenUnready;

    #[test]
    fn listen_and_when_unready_parse_with_defaults_and_unknown_keys_are_named() {
        let c = load("").unwrap();
        assert_eq!(c.health.listen, None);
        assert_eq!(c.server.when_unready, WhenUnready::Serve);
        let c =
            load("[server]\nwhen_unready = \"silent\"\n[health]\nlisten = \"127.0.0.1:9813\"\n")
                .unwrap();
        assert_eq!(c.health.listen, Some("127.0.0.1:9813".parse().unwrap()));
        assert_eq!(c.server.when_unready, WhenUnready::Silent);
        let err = load("[health]\nport = 1\n").unwrap_err().to_string();
        assert!(err.contains("port"), "{err}");
        let err = load("[server]\nwhen_unready = \"reject\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("when_unready"), "{err}");
    }
}
