//! Configuration: TOML read with the `config` crate in layers.
//!
//! Layers, later ones win: the built-in defaults (each `#[serde(default)]` below, equal to the
//! values in `config/certradius.toml`), then one file — the one given with `--config`, or the
//! embedded `config/certradius.toml` when none is given — then `CERTRADIUS__SECTION__KEY`
//! environment variables (for example `CERTRADIUS__TLS__FRAGMENT_SIZE=300`). The embedded file is
//! a whole layer rather than a base under the operator's file so that its loopback test client
//! can never end up merged into a production client list.
//!
//! Unknown keys are errors (`deny_unknown_fields`): a misspelt knob must not be silently ignored.
//! Every error names the key. Relative paths are relative to the working directory, except the
//! files the server writes: those are resolved once, here, against the state directory
//! (`paths`: `$STATE_DIRECTORY`, or `testbed/state/` for the embedded default).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod accounting;
pub mod audit;
mod authorize;
mod client;
mod coa;
pub mod database;
pub mod directory;
mod eap;
mod health;
pub mod log;
mod mab;
mod metrics;
mod ocsp;
pub mod paths;
mod radsec;
mod server;
mod tcp;
mod tls;
mod values;

pub use accounting::AccountingConfig;
pub use authorize::{AuthorizeConfig, IdentityConfig, OneOrList, RuleConfig, Scalar};
pub use client::{ClientConfig, RequireMessageAuthenticator, Transport};
pub use coa::CoaConfig;
pub use directory::DirectoryConfig;
pub use eap::EapConfig;
pub use health::{HealthConfig, WhenUnready};
pub use mab::MabConfig;
pub use metrics::MetricsConfig;
pub use ocsp::OcspConfig;
pub use radsec::{Radius11, RadsecConfig};
pub use server::ServerConfig;
pub use tcp::TcpConfig;
pub use tls::{OneOrMany, TlsConfig, is_ldap_url};
pub use values::{
    Cidr, CrlScope, FsyncPolicy, OcspMode, SIGNATURE_SCHEMES, Secret, SignatureSchemeName,
    TlsVersion, ValueError,
};

/// The embedded default configuration: loopback only, the test PKI under `testbed/pki/`.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/certradius.toml");

/// Smallest and largest EAP-TLS fragment (TLS data octets per EAP packet) we accept: below 64 a
/// certificate chain needs hundreds of round trips; above 3000 the Access-Challenge with its
/// EAP-Message, State and Message-Authenticator attributes risks the 4096-octet RADIUS limit.
pub const FRAGMENT_SIZE_RANGE: std::ops::RangeInclusive<usize> = 64..=3000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(String),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    /// `[[client]]` tables: the NAS devices allowed to talk to us.
    #[serde(default, rename = "client")]
    pub clients: Vec<ClientConfig>,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub eap: EapConfig,
    #[serde(default)]
    pub ocsp: OcspConfig,
    /// `[identity]`: binding the EAP identity to the certificate.
    #[serde(default)]
    pub identity: IdentityConfig,
    /// `[authorize]` and `[[authorize.rule]]`.
    #[serde(default)]
    pub authorize: AuthorizeConfig,
    /// `[log]`: text or JSON log lines.
    #[serde(default)]
    pub log: log::LogConfig,
    /// `[audit]`: the audit log file.
    #[serde(default)]
    pub audit: audit::AuditConfig,
    /// `[accounting]`: RFC 2866 accounting.
    #[serde(default)]
    pub accounting: AccountingConfig,
    /// `[coa]`: Disconnect-Request on revocation (RFC 5176).
    #[serde(default)]
    pub coa: CoaConfig,
    /// `[metrics]`: the Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[health]`: `/healthz` and `/readyz`.
    #[serde(default)]
    pub health: HealthConfig,
    /// `[radsec]`: RADIUS over TLS (RFC 6614) and RADIUS/1.1 (RFC 9765).
    #[serde(default)]
    pub radsec: RadsecConfig,
    /// `[tcp]`: RADIUS over TCP (RFC 6613).
    #[serde(default)]
    pub tcp: TcpConfig,
    /// `[mab]`: MAC Authentication Bypass.
    #[serde(default)]
    pub mab: MabConfig,
    /// `[directory]`: LDAP / Active Directory lookups at authentication time; off when absent.
    #[serde(default)]
    pub directory: Option<DirectoryConfig>,
    /// Not a key: the directory the relative state paths were resolved against at load
    /// (`paths`), none when they stay relative to the working directory.
    #[serde(skip)]
    pub state_directory: Option<PathBuf>,
}

impl Config {
    /// Loads the layers described in the module doc. `file` None means the embedded default.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, true)
    }

    /// `env` false: no `CERTRADIUS__*` layer and no `$STATE_DIRECTORY` (for tests).
    pub fn load_with_env(file: Option<&Path>, env: bool) -> Result<Config, ConfigError> {
        let state_env = if env {
            std::env::var_os("STATE_DIRECTORY")
        } else {
            None
        };
        Self::load_from(file, env, state_env.as_deref())
    }

    /// The loader itself, with the value of `$STATE_DIRECTORY` passed in.
    pub(crate) fn load_from(
        file: Option<&Path>,
        env: bool,
        state_env: Option<&OsStr>,
    ) -> Result<Config, ConfigError> {
        use config::{Environment, File, FileFormat};
        let mut builder = config::Config::builder();
        let origin = match file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::Load(format!(
                        "config file {} does not exist",
                        path.display()
                    )));
                }
                builder = builder.add_source(File::from(path).format(FileFormat::Toml));
                path.display().to_string()
            }
            None => {
                builder = builder.add_source(File::from_str(DEFAULT_CONFIG, FileFormat::Toml));
                "embedded default config".to_string()
            }
        };
        if env {
            builder = builder.add_source(
                Environment::with_prefix("CERTRADIUS")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("server.listen")
                    .with_list_parse_key("accounting.listen")
                    .with_list_parse_key("tls.ca_file")
                    .with_list_parse_key("tls.crl_file")
                    .with_list_parse_key("tls.crl_url")
                    .with_list_parse_key("radsec.listen")
                    .with_list_parse_key("tcp.listen"),
            );
        }
        let raw = builder
            .build()
            .map_err(|e| ConfigError::Load(format!("{origin}: {e}")))?;
        let mut cfg: Config = raw
            .try_deserialize()
            .map_err(|e| ConfigError::Load(format!("{origin}: {}", key_path(&e.to_string()))))?;
        radsec::default_secrets(&mut cfg.clients);
        if let Some(base) = paths::state_directory(state_env, file.is_none()) {
            cfg.resolve_state_paths(&base);
        }
        // Fetched CRLs are the server's state: cached next to `server.state_file`.
        cfg.tls.crl_cache_dir = Some(
            cfg.server
                .state_file
                .parent()
                .unwrap_or(Path::new(""))
                .join("crl-cache"),
        );
        cfg.tls.crl_ldap = cfg.directory.is_some();
        cfg.validate()?;
        Ok(cfg)
    }

    /// `[[client]]`: unique names, a secret where the transport needs one, RadSec fields.
    fn validate_clients(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            // A client is known by its name across reloads (open connections, per-NAS counts).
            if !names.insert(c.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("client[{i}].name"),
                    format!(
                        "{:?} is the name of an earlier [[client]]: names must be unique",
                        c.name
                    ),
                ));
            }
            radsec::check_client(i, c)?;
            if let Some((min, max)) =
                c.tls_versions(self.tls.tls_min_version, self.tls.tls_max_version)
                && min > max
            {
                return Err(ConfigError::invalid(
                    format!("client[{i}].tls_min_version"),
                    format!(
                        "{min} is higher than the maximum {max} (client[{i}].tls_max_version or tls.tls_max_version)"
                    ),
                ));
            }
            if c.secret.expose().is_empty() {
                return Err(ConfigError::invalid(
                    format!("client[{i}].secret"),
                    "the shared secret must not be empty (required for transport \"udp\" and \"tcp\")",
                ));
            }
        }
        Ok(())
    }

    /// `[eap]`: bounds that must be at least 1, and the reassembly budget.
    fn validate_eap(&self) -> Result<(), ConfigError> {
        if self.eap.max_sessions == 0 {
            return Err(ConfigError::invalid(
                "eap.max_sessions",
                "must be at least 1",
            ));
        }
        if self.eap.session_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "eap.session_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.eap.max_tls_message_size < 1024 {
            return Err(ConfigError::invalid(
                "eap.max_tls_message_size",
                "must be at least 1024",
            ));
        }
        if self.eap.max_fragments == 0 {
            return Err(ConfigError::invalid(
                "eap.max_fragments",
                "must be at least 1",
            ));
        }
        if self.eap.max_reassembly_bytes_total < self.eap.max_tls_message_size {
            return Err(ConfigError::invalid(
                "eap.max_reassembly_bytes_total",
                "must be at least eap.max_tls_message_size",
            ));
        }
        Ok(())
    }

    /// Checks that need no file access. File checks happen when the TLS config is built.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (i, url) in self.tls.crl_url.urls().iter().enumerate() {
            // CRLs are signed objects distributed over plain HTTP (RFC 5280 §4.2.1.13): the
            // signature, checked before use, is what protects them.
            // ldap:// (RFC 4516) is read through the `[directory]` connection settings.
            if tls::is_ldap_url(url) {
                if self.directory.is_none() {
                    return Err(ConfigError::invalid(
                        format!("tls.crl_url[{i}]"),
                        format!("{url:?}: an ldap:// source needs the [directory] section"),
                    ));
                }
                continue;
            }
            if !url.starts_with("http://") || url.parse::<hyper::Uri>().is_err() {
                return Err(ConfigError::invalid(
                    format!("tls.crl_url[{i}]"),
                    format!("{url:?}: only http:// and ldap:// URLs are supported"),
                ));
            }
        }
        if self.tls.crl_refresh_secs == 0 {
            return Err(ConfigError::invalid(
                "tls.crl_refresh_secs",
                "must be at least 1",
            ));
        }
        if self.server.listen.is_empty() {
            return Err(ConfigError::invalid(
                "server.listen",
                "no address to listen on",
            ));
        }
        if self.server.max_in_flight == 0 {
            return Err(ConfigError::invalid(
                "server.max_in_flight",
                "must be at least 1",
            ));
        }
        if self.server.max_queue_wait_ms == 0 {
            return Err(ConfigError::invalid(
                "server.max_queue_wait_ms",
                "must be at least 1 (0 would throw away every request that waits at all)",
            ));
        }
        self.validate_clients()?;
        if self.tls.tls_min_version > self.tls.tls_max_version {
            return Err(ConfigError::invalid(
                "tls.tls_min_version",
                "is higher than tls.tls_max_version",
            ));
        }
        if let Some(size) = self.tls.fragment_size
            && !FRAGMENT_SIZE_RANGE.contains(&size)
        {
            return Err(ConfigError::invalid(
                "tls.fragment_size",
                format!(
                    "{size} is outside {}..={}",
                    FRAGMENT_SIZE_RANGE.start(),
                    FRAGMENT_SIZE_RANGE.end()
                ),
            ));
        }
        if self.ocsp.enable && self.ocsp.timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "ocsp.timeout_ms",
                "must be at least 1",
            ));
        }
        self.validate_eap()?;
        if !self.accounting.listen.is_empty()
            && self.accounting.file.is_none()
            && self.accounting.database_url.is_none()
        {
            return Err(ConfigError::invalid(
                "accounting.file",
                "accounting.listen is set but no record store: set accounting.file or \
                 accounting.database_url",
            ));
        }
        if let Some(url) = &self.accounting.database_url {
            // The parser's message never quotes the URL (it may hold a password).
            if let Err(e) = database::parse(url.expose()) {
                return Err(ConfigError::invalid("accounting.database_url", e));
            }
        }
        if self.accounting.queue_max_bytes < 65536 {
            return Err(ConfigError::invalid(
                "accounting.queue_max_bytes",
                "must be at least 65536",
            ));
        }
        radsec::check_section(&self.radsec)?;
        if let Some(directory) = &self.directory {
            directory.validate()?;
        }
        if self.mab.enabled && self.mab.allow_file.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                "mab.allow_file",
                "[mab] enabled = true needs the allow file (one MAC per line)",
            ));
        }
        self.check_durations()
    }

    /// Every duration knob is bounded: a huge value would overflow `Instant + Duration` (a
    /// panic, once inside the reply cache's lock). A year is far beyond any sane setting.
    fn check_durations(&self) -> Result<(), ConfigError> {
        let secs = [
            (
                "server.duplicate_cache_secs",
                self.server.duplicate_cache_secs,
            ),
            ("eap.session_timeout_secs", self.eap.session_timeout_secs),
            (
                "server.shutdown_grace_secs",
                self.server.shutdown_grace_secs,
            ),
            ("ocsp.cache_max_secs", self.ocsp.cache_max_secs),
            (
                "accounting.fsync_interval_ms",
                self.accounting.fsync_interval_ms / 1000,
            ),
            ("ocsp.timeout_ms", self.ocsp.timeout_ms / 1000),
            (
                "server.max_queue_wait_ms",
                self.server.max_queue_wait_ms / 1000,
            ),
            (
                "tls.session_lifetime_secs",
                u64::from(self.tls.session_lifetime_secs),
            ),
            (
                "tls.crl_expiry_warning_hours",
                self.tls.crl_expiry_warning_hours.saturating_mul(3600),
            ),
        ];
        for (key, value) in secs {
            if value > MAX_DURATION_SECS {
                return Err(ConfigError::invalid(
                    key,
                    format!("is longer than a year ({MAX_DURATION_SECS} s), the most allowed"),
                ));
            }
        }
        Ok(())
    }
}

/// The longest duration any knob may name: one year (366 days).
pub const MAX_DURATION_SECS: u64 = 366 * 24 * 3600;

/// The `config` crate writes a key below an array element without its dot
/// (`client[0]address`); put the dot back so the key reads as it is written in TOML.
fn key_path(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 4);
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == ']'
            && chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_')
        {
            out.push('.');
        }
    }
    out
}

/// Loads a configuration from TOML text alone (no environment), for unit tests.
#[cfg(test)]
pub(crate) fn load_for_test(text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().map_err(|e| ConfigError::Load(e.to_string()))?;
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).map_err(|e| ConfigError::Load(e.to_string()))?;
    Config::load_with_env(Some(&path), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_str(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        Config::load_with_env(Some(&path), false)
    }

    /// A huge duration used to panic in `Instant + Duration` (once with the reply cache locked,
    /// which poisoned it and turned duplicate detection off); now it is refused at load.
    #[test]
    fn huge_durations_are_refused_naming_the_key() {
        for (section, key) in [
            ("server", "duplicate_cache_secs"),
            ("eap", "session_timeout_secs"),
            ("ocsp", "cache_max_secs"),
            ("ocsp", "timeout_ms"),
            ("server", "max_queue_wait_ms"),
            ("tls", "crl_expiry_warning_hours"),
        ] {
            let err = from_str(&format!("[{section}]\n{key} = 9223372036854775807\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("{section}.{key}")), "{err}");
        }
        let err = from_str("[tls]\nsession_lifetime_secs = 4294967295\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls.session_lifetime_secs"), "{err}");
        assert!(from_str("[server]\nduplicate_cache_secs = 3600\n").is_ok());
    }

    #[test]
    fn zero_bounds_on_the_request_queue_are_refused_naming_the_key() {
        for key in ["max_in_flight", "max_queue_wait_ms"] {
            let err = from_str(&format!("[server]\n{key} = 0\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("server.{key}")), "{err}");
        }
        assert!(from_str("[server]\nmax_in_flight = 1\nmax_queue_wait_ms = 1\n").is_ok());
    }

    #[test]
    fn embedded_default_equals_builtin_defaults_apart_from_clients() {
        let cfg = Config::load_with_env(None, false).unwrap();
        // Apart from where its state goes (`paths`): testbed/state/, not the working directory.
        let state_dir = Path::new(paths::EMBEDDED_STATE_DIR);
        let server = ServerConfig {
            state_file: state_dir.join("certradius.state"),
            ..ServerConfig::default()
        };
        assert_eq!(cfg.server, server);
        assert_eq!(cfg.state_directory.as_deref(), Some(state_dir));
        assert_eq!(
            cfg.accounting.file.as_deref(),
            Some(state_dir.join("certradius-accounting.jsonl").as_path())
        );
        // Fetched CRLs are cached next to the state file.
        assert_eq!(
            cfg.tls,
            TlsConfig {
                crl_cache_dir: Some(state_dir.join("crl-cache")),
                ..TlsConfig::default()
            }
        );
        assert_eq!(cfg.eap, EapConfig::default());
        assert!(!cfg.clients.is_empty());
        for c in &cfg.clients {
            assert!(
                c.address.addr.is_loopback(),
                "default client {} not loopback",
                c.name
            );
        }
    }

    /// `serve`, `sessions` and a SIGHUP reload all call `Config::load`: under
    /// `$STATE_DIRECTORY` every load names the same state paths, so a reload sees no change and
    /// `certradius sessions` finds the socket whatever its working directory.
    #[test]
    fn state_paths_are_resolved_at_load_and_equal_on_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[coa]\ncontrol_socket = \"ctl.sock\"\n[accounting]\nqueue_dir = \"queue\"\n",
        )
        .unwrap();
        let env = Some(OsStr::new("/var/lib/certradius:/var/lib/other"));
        let first = Config::load_from(Some(&path), false, env).unwrap();
        let reload = Config::load_from(Some(&path), false, env).unwrap();
        assert_eq!(first, reload);
        let state = Path::new("/var/lib/certradius");
        assert_eq!(first.server.state_file, state.join("certradius.state"));
        assert_eq!(
            first.coa.control_socket.as_deref(),
            Some(state.join("ctl.sock").as_path())
        );
        assert_eq!(
            first.accounting.queue_dir.as_deref(),
            Some(state.join("queue").as_path())
        );
        // Without $STATE_DIRECTORY an operator's file keeps working-directory paths.
        let plain = Config::load_from(Some(&path), false, None).unwrap();
        assert_eq!(plain.server.state_file, Path::new("certradius.state"));
        assert_eq!(plain.state_directory, None);
        // $STATE_DIRECTORY wins over the embedded default's testbed/state/.
        let embedded = Config::load_from(None, false, env).unwrap();
        assert_eq!(
            embedded.accounting.file.as_deref(),
            Some(state.join("certradius-accounting.jsonl").as_path())
        );
    }

    #[test]
    fn example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
        let cfg = Config::load_with_env(Some(&path), false).unwrap();
        assert_eq!(cfg.authorize.default.as_deref(), Some("reject"));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = from_str("[tls]\nfragment_sise = 300\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fragment_sise"), "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = from_str("[tls]\nfragment_size = 10\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls.fragment_size"), "{err}");
        let err = from_str("[[client]]\nname='a'\naddress='10.0.0.0/33'\nsecret='s'\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("client[0].address"), "{err}");
        let err = from_str("[tls]\ntls_min_version='1.3'\ntls_max_version='1.2'\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls.tls_min_version"), "{err}");
        let err = from_str("[server]\nlisten=['localhost']\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.listen[0]"), "{err}");
    }

    #[test]
    fn message_authenticator_policy_values() {
        let c = from_str(
            "[[client]]\nname='a'\naddress='::1'\nsecret='s'\nrequire_message_authenticator='auto'\n\
             [[client]]\nname='b'\naddress='127.0.0.1'\nsecret='s'\nrequire_message_authenticator=false\n",
        )
        .unwrap();
        assert_eq!(
            c.clients[0].require_message_authenticator,
            RequireMessageAuthenticator::Auto
        );
        assert_eq!(
            c.clients[1].require_message_authenticator,
            RequireMessageAuthenticator::No
        );
        assert!(from_str(
            "[[client]]\nname='a'\naddress='::1'\nsecret='s'\nrequire_message_authenticator='maybe'\n"
        )
        .is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = from_str("[[client]]\nname='a'\naddress='::1'\nsecret='hunter2'\n").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn cidr_matching() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Cidr::parse("1.2.3.4/40").is_err());
    }
}
