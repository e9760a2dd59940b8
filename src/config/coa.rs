//! `[coa]`: Disconnect-Request on revocation (RFC 5176 §3.1).

use std::path::PathBuf;

use serde::Deserialize;

/// `[coa]`: when a live session's certificate is found revoked (reloaded CRL, OCSP answer), send
/// its NAS a Disconnect-Request.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CoaConfig {
    /// Disconnect the live sessions of a certificate as soon as it is known revoked.
    pub disconnect_on_revocation: bool,
    /// Wait for the first answer; doubled at each retransmission.
    pub timeout_ms: u64,
    /// Retransmissions after the first Disconnect-Request before giving up.
    pub retries: u32,
    /// The local control socket of `certradius sessions` / `certradius disconnect` (mode 0600);
    /// unset: `certradius.sock` next to `server.state_file`. Relative: in the state directory
    /// (`paths`).
    pub control_socket: Option<PathBuf>,
    /// With a shared database: a Disconnect claim whose exchange did not finish (its instance was
    /// killed, or the NAS never answered) is taken over by another instance after this long.
    pub claim_timeout_secs: u64,
}

impl Default for CoaConfig {
    fn default() -> Self {
        CoaConfig {
            disconnect_on_revocation: true,
            timeout_ms: 1000,
            retries: 3,
            control_socket: None,
            claim_timeout_secs: 60,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::load_for_test as load;

    #[test]
    fn defaults_knobs_and_unknown_keys() {
        let c = load("").unwrap();
        assert!(c.coa.disconnect_on_revocation);
        assert_eq!((c.coa.timeout_ms, c.coa.retries), (1000, 3));
        let c = load("[coa]\ndisconnect_on_revocation = false\ntimeout_ms = 200\nretries = 1\n")
            .unwrap();
        assert!(!c.coa.disconnect_on_revocation);
        assert_eq!((c.coa.timeout_ms, c.coa.retries), (200, 1));
        assert_eq!(c.coa.control_socket, None);
        assert_eq!(c.coa.claim_timeout_secs, 60);
        let c = load("[coa]\ncontrol_socket = \"/run/x.sock\"\n").unwrap();
        assert_eq!(c.coa.control_socket, Some("/run/x.sock".into()));
        let err = load("[coa]\nport = 1\n").unwrap_err().to_string();
        assert!(err.contains("port"), "{err}");
    }
}
