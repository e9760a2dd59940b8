//! certradius's core built for the in-memory measurements of `testbed/` (`memory`: heap per
//! parked conversation; `core-paced`: CPU per authentication at a supplicant's pace): the test
//! PKI, a configuration with one loopback client, the core, and the supplicants' TLS
//! configuration, made the same way for both so that their figures describe the same server.

use std::path::Path;
use std::sync::Arc;

use certradius::authz::AllowVerified;
use certradius::config::Config;
use certradius::radius::dictionary::Dictionary;
use certradius::server::Core;

use crate::peer::client_config;

/// The NAS address and shared secret of the one configured client.
pub const NAS_ADDRESS: &str = "127.0.0.1";
pub const SECRET: &str = "testing123";

/// A core and what drives it.
pub struct InMemory {
    pub core: Core,
    /// The supplicants' configuration: full handshakes only (no session kept to resume).
    pub client: Arc<rustls::ClientConfig>,
    /// The core's own rustls configuration with rustls's clock, for a bare `ServerConnection`
    /// (the core's reads the time of the conversation it is processing, which a bare one has not).
    pub raw_server: Arc<rustls::ServerConfig>,
}

/// Reads `--name value` from the command line, `default` when absent.
pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// A core on the test PKI in `dir` (generated when absent): `key` "rsa" or "ecdsa" for the server
/// certificate and the supplicants', TLS `version` "1.2" or "1.3" only, `eap.max_sessions` as
/// given (None: the default).
pub fn build(
    dir: &Path,
    key: &str,
    version: &str,
    max_sessions: Option<usize>,
) -> Result<InMemory, String> {
    if !crate::pki::exists(dir) {
        crate::pki::generate(dir).map_err(|e| format!("test PKI: {e}"))?;
    }
    let (server_cert, server_key, client_name) = if key == "rsa" {
        ("server-rsa.pem", "server-rsa.key", "client-rsa")
    } else {
        ("server.pem", "server.key", "client-ecdsa")
    };
    let mut text = format!(
        "[[client]]\nname='loopback'\naddress='{NAS_ADDRESS}'\nsecret='{SECRET}'\nmax_sessions=0\n\
         [tls]\ncertificate_file='{d}/{server_cert}'\nprivate_key_file='{d}/{server_key}'\n\
         ca_file='{d}/ca.pem'\ntls_min_version='{version}'\ntls_max_version='{version}'\n",
        d = dir.display()
    );
    if let Some(n) = max_sessions {
        text.push_str(&format!("[eap]\nmax_sessions={n}\n"));
    }
    let path =
        std::env::temp_dir().join(format!("certradius-in-memory-{}.toml", std::process::id()));
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    let config = Config::load_with_env(Some(&path), false);
    let _ = std::fs::remove_file(&path);
    let config = config.map_err(|e| e.to_string())?;
    let tls = certradius::tls::server_config(&config.tls).map_err(|e| e.to_string())?;
    let mut raw_server = (*tls.config).clone();
    raw_server.time_provider = Arc::new(rustls::time_provider::DefaultTimeProvider);
    let core = Core::new(
        &config,
        tls,
        Arc::new(AllowVerified),
        Dictionary::embedded(),
    );
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = if version == "1.3" {
        vec![&rustls::version::TLS13]
    } else {
        vec![&rustls::version::TLS12]
    };
    let client = client_config(
        &dir.join("ca.pem"),
        &dir.join(format!("{client_name}.pem")),
        &dir.join(format!("{client_name}.key")),
        &versions,
    )
    .map_err(|e| e.to_string())?;
    let mut client = (*client).clone();
    client.resumption = rustls::client::Resumption::disabled();
    Ok(InMemory {
        core,
        client: Arc::new(client),
        raw_server: Arc::new(raw_server),
    })
}
