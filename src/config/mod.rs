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
//! Every error names the key. Relative paths are relative to the working directory.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod audit;
pub mod log;

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

/// A shared secret or other credential: never printed.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
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
    pub identity: crate::authz::rules::IdentityConfig,
    /// `[authorize]` and `[[authorize.rule]]`.
    #[serde(default)]
    pub authorize: crate::authz::rules::AuthorizeConfig,
    /// `[log]`: text or JSON log lines.
    #[serde(default)]
    pub log: log::LogConfig,
    /// `[audit]`: the audit log file.
    #[serde(default)]
    pub audit: audit::AuditConfig,
}

/// `[ocsp]`: OCSP (RFC 6960) checking of client certificates after the handshake.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OcspConfig {
    pub enable: bool,
    /// Responder URL for every certificate; unset: the certificate's AIA OCSP URL.
    pub url: Option<String>,
    /// A lookup taking longer is "unavailable"; other authentications never wait on it.
    pub timeout_ms: u64,
    /// Accept when the responder is unavailable or does not know the certificate.
    pub soft_fail: bool,
    /// "ocsp": the responder decides; "ocsp_then_crl": when it is unavailable, the CRL check
    /// (tls.crl_file) decides.
    pub mode: String,
    /// Send a nonce (RFC 8954) and require it back when the responder echoes one.
    pub use_nonce: bool,
    /// Responses cached (honouring nextUpdate), and for at most this long.
    pub cache_max_entries: usize,
    pub cache_max_secs: u64,
    /// Lookups in progress at once; beyond it a lookup is "unavailable" at once.
    pub max_concurrent_lookups: usize,
}

impl Default for OcspConfig {
    fn default() -> Self {
        OcspConfig {
            enable: false,
            url: None,
            timeout_ms: 2000,
            soft_fail: false,
            mode: "ocsp".into(),
            use_nonce: true,
            cache_max_entries: 65536,
            cache_max_secs: 3600,
            max_concurrent_lookups: 256,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// UDP addresses to listen on, IPv4 or IPv6 (`"[::1]:1812"`). Port 0 picks a free port.
    pub listen: Vec<String>,
    /// Runtime worker threads; 0 means one per CPU.
    pub threads: usize,
    /// Requests being processed at once; the excess is dropped (the NAS retransmits).
    pub max_in_flight: usize,
    /// A FreeRADIUS-format dictionary to load instead of the built-in one.
    pub dictionary: Option<PathBuf>,
    /// How long a reply stays cached to answer retransmissions (RFC 5080 §2.2.2).
    pub duplicate_cache_secs: u64,
    /// Most replies cached for retransmissions.
    pub duplicate_cache_entries: usize,
    /// Where learned per-client state (the "auto" Message-Authenticator policy) is kept, so it
    /// survives a restart.
    pub state_file: PathBuf,
    /// Packets per second a source that is no configured client may send before the rest of
    /// that second is dropped unread and unlogged (0: no limit).
    pub bad_packet_rate_per_source: u32,
    /// On SIGTERM/SIGINT: how long conversations in flight may take to finish before we exit.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec!["127.0.0.1:1812".into()],
            threads: 0,
            max_in_flight: 4096,
            dictionary: None,
            duplicate_cache_secs: 10,
            duplicate_cache_entries: 65536,
            state_file: "certradius.state".into(),
            bad_packet_rate_per_source: 100,
            shutdown_grace_secs: 5,
        }
    }
}

/// `require_message_authenticator = true | false | "auto"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequireMessageAuthenticator {
    #[default]
    Yes,
    No,
    Auto,
}

impl<'de> Deserialize<'de> for RequireMessageAuthenticator {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(Self::Yes),
            Raw::Bool(false) => Ok(Self::No),
            Raw::Text(t) => match t.to_ascii_lowercase().as_str() {
                "auto" => Ok(Self::Auto),
                "true" | "yes" => Ok(Self::Yes),
                "false" | "no" => Ok(Self::No),
                other => Err(serde::de::Error::custom(format!(
                    "expected true, false or \"auto\", found {other:?}"
                ))),
            },
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// A name for logs ("ap-floor3").
    pub name: String,
    /// An IP address or a CIDR prefix ("10.1.0.0/16", "::1").
    pub address: String,
    pub secret: Secret,
    #[serde(default)]
    pub require_message_authenticator: RequireMessageAuthenticator,
    /// Conversations in progress from this NAS at once (0: only the global `eap.max_sessions`).
    #[serde(default = "default_client_max_sessions")]
    pub max_sessions: usize,
}

fn default_client_max_sessions() -> usize {
    16384
}

/// One path or a list of paths.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl OneOrMany {
    pub fn paths(&self) -> Vec<PathBuf> {
        match self {
            OneOrMany::One(p) => vec![p.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The server's certificate chain (PEM, leaf first).
    pub certificate_file: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub private_key_file: PathBuf,
    /// CA certificates that client certificates must chain to (PEM; roots and intermediates).
    pub ca_file: OneOrMany,
    /// "1.2" or "1.3".
    pub tls_min_version: String,
    pub tls_max_version: String,
    /// TLS data octets per EAP-TLS packet we send (RFC 5216 §2.1.5); lowered further by
    /// Framed-MTU from the NAS.
    pub fragment_size: usize,
    /// CRL files (PEM with one or more CRLs, or DER), re-read within seconds of changing.
    pub crl_file: OneOrMany,
    /// "chain" (every certificate below the trust anchor), "leaf", or "none". Unset: "chain"
    /// when `crl_file` is set, else "none".
    pub check_crl: Option<String>,
    /// Accept certificates while a CRL is past its nextUpdate (default: refuse them).
    pub allow_expired_crl: bool,
    /// Accept a certificate whose issuer has no CRL loaded (default: refuse, `revocation_unknown`).
    pub allow_unknown_revocation_status: bool,
    /// Warn this long before a CRL's nextUpdate.
    pub crl_expiry_warning_hours: u64,
    /// Only client certificates issued by these CAs (issuer CN or whole DN); empty: any CA in
    /// `ca_file`.
    pub allowed_issuers: Vec<String>,
    /// Weakest client keys accepted.
    pub min_rsa_key_bits: usize,
    pub min_ec_key_bits: usize,
    /// When a client certificate has keyUsage, it must allow digitalSignature.
    pub check_key_usage: bool,
    /// TLS session resumption (TLS 1.2 tickets and IDs, TLS 1.3 PSK tickets). A resumed
    /// session re-checks the certificate (validity, CRLs) and the policy.
    pub resumption: bool,
    /// How long a session can be resumed.
    pub session_lifetime_secs: u32,
    /// Sessions remembered for TLS 1.2 session-ID resumption (size it for your users).
    pub session_cache_size: usize,
    /// Ticket keys shared by a pool of servers (see `certradius ticket-key`); unset: a random
    /// key per process.
    pub ticket_key_file: Option<PathBuf>,
    /// TLS 1.3 tickets sent after each full handshake.
    pub tls13_tickets: usize,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            certificate_file: "testbed/pki/server.pem".into(),
            private_key_file: "testbed/pki/server.key".into(),
            ca_file: OneOrMany::One("testbed/pki/ca.pem".into()),
            tls_min_version: "1.2".into(),
            tls_max_version: "1.3".into(),
            fragment_size: 1024,
            crl_file: OneOrMany::Many(Vec::new()),
            check_crl: None,
            allow_expired_crl: false,
            allow_unknown_revocation_status: false,
            crl_expiry_warning_hours: 72,
            allowed_issuers: Vec::new(),
            min_rsa_key_bits: 2048,
            min_ec_key_bits: 256,
            check_key_usage: true,
            resumption: true,
            session_lifetime_secs: 3600,
            session_cache_size: 65536,
            ticket_key_file: None,
            tls13_tickets: 1,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EapConfig {
    /// A conversation idle longer than this is forgotten; its State is then rejected.
    pub session_timeout_secs: u64,
    /// Conversations in progress at once, all NAS together.
    pub max_sessions: usize,
    /// Largest TLS message a peer may send us, reassembled from its fragments.
    pub max_tls_message_size: usize,
    /// Most fragments one peer TLS message may be split into.
    pub max_fragments: u32,
}

impl Default for EapConfig {
    fn default() -> Self {
        EapConfig {
            session_timeout_secs: 60,
            max_sessions: 65536,
            max_tls_message_size: 65536,
            max_fragments: 256,
        }
    }
}

/// The TLS versions named in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

pub fn parse_tls_version(key: &str, v: &str) -> Result<TlsVersion, ConfigError> {
    match v
        .trim()
        .trim_start_matches("TLSv")
        .trim_start_matches("tls")
    {
        "1.2" | "1_2" => Ok(TlsVersion::V1_2),
        "1.3" | "1_3" => Ok(TlsVersion::V1_3),
        other => Err(ConfigError::invalid(
            key,
            format!("unsupported TLS version {other:?}: use \"1.2\" or \"1.3\""),
        )),
    }
}

/// An address or CIDR prefix a NAS may send from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{a:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{p:?} is not a prefix length 0..={max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen on a dual-stack socket arrives as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl Config {
    /// Loads the layers described in the module doc. `file` None means the embedded default.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, true)
    }

    pub fn load_with_env(file: Option<&Path>, env: bool) -> Result<Config, ConfigError> {
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
                    .with_list_parse_key("tls.ca_file")
                    .with_list_parse_key("tls.crl_file"),
            );
        }
        let raw = builder
            .build()
            .map_err(|e| ConfigError::Load(format!("{origin}: {e}")))?;
        let cfg: Config = raw
            .try_deserialize()
            .map_err(|e| ConfigError::Load(format!("{origin}: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks that need no file access. File checks happen when the TLS config is built.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.listen.is_empty() {
            return Err(ConfigError::invalid(
                "server.listen",
                "no address to listen on",
            ));
        }
        self.listen_addrs()?;
        if self.server.max_in_flight == 0 {
            return Err(ConfigError::invalid(
                "server.max_in_flight",
                "must be at least 1",
            ));
        }
        for (i, c) in self.clients.iter().enumerate() {
            Cidr::parse(&c.address)
                .map_err(|m| ConfigError::invalid(format!("client[{i}].address"), m))?;
            if c.secret.expose().is_empty() {
                return Err(ConfigError::invalid(
                    format!("client[{i}].secret"),
                    "the shared secret must not be empty",
                ));
            }
        }
        let min = parse_tls_version("tls.tls_min_version", &self.tls.tls_min_version)?;
        let max = parse_tls_version("tls.tls_max_version", &self.tls.tls_max_version)?;
        if min > max {
            return Err(ConfigError::invalid(
                "tls.tls_min_version",
                "is higher than tls.tls_max_version",
            ));
        }
        if !FRAGMENT_SIZE_RANGE.contains(&self.tls.fragment_size) {
            return Err(ConfigError::invalid(
                "tls.fragment_size",
                format!(
                    "{} is outside {}..={}",
                    self.tls.fragment_size,
                    FRAGMENT_SIZE_RANGE.start(),
                    FRAGMENT_SIZE_RANGE.end()
                ),
            ));
        }
        crate::x509::crl::scope(&self.tls).map_err(|m| ConfigError::invalid("tls.check_crl", m))?;
        if !matches!(self.ocsp.mode.as_str(), "ocsp" | "ocsp_then_crl") {
            return Err(ConfigError::invalid(
                "ocsp.mode",
                format!(
                    "{:?}: expected \"ocsp\" or \"ocsp_then_crl\"",
                    self.ocsp.mode
                ),
            ));
        }
        if self.ocsp.enable && self.ocsp.timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "ocsp.timeout_ms",
                "must be at least 1",
            ));
        }
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
        Ok(())
    }

    pub fn listen_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        self.server
            .listen
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parse::<SocketAddr>().map_err(|_| {
                    ConfigError::invalid(
                        format!("server.listen[{i}]"),
                        format!("{s:?} is not an address:port (IPv6 as \"[::1]:1812\")"),
                    )
                })
            })
            .collect()
    }
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

    #[test]
    fn embedded_default_equals_builtin_defaults_apart_from_clients() {
        let cfg = Config::load_with_env(None, false).unwrap();
        assert_eq!(cfg.server, ServerConfig::default());
        assert_eq!(cfg.tls, TlsConfig::default());
        assert_eq!(cfg.eap, EapConfig::default());
        assert!(!cfg.clients.is_empty());
        for c in &cfg.clients {
            let cidr = Cidr::parse(&c.address).unwrap();
            assert!(
                cidr.addr.is_loopback(),
                "default client {} not loopback",
                c.name
            );
        }
    }

    #[test]
    fn example_config_parses_and_its_rules_build() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
        let cfg = Config::load_with_env(Some(&path), false).unwrap();
        let dict = crate::radius::dictionary::Dictionary::try_embedded().unwrap();
        let policy =
            crate::authz::rules::RulePolicy::build(&cfg.identity, &cfg.authorize, &dict).unwrap();
        assert!(policy.rule_count() >= 3);
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
