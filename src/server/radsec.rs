//! The RadSec side of the stream listeners (RFC 6614): the server's TLS configuration with
//! mutual authentication of the NAS (§2.2), its files watched and re-read, the NAS identified by
//! its certificate's SAN DNS names or CN (§2.4), RADIUS/1.1 ALPN names (RFC 9765 §3.1), and what
//! `certradius check` says about the stream listeners.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::Core;
use super::stream::{Acceptor, StreamSetupError};
use crate::config::{Config, Radius11, RadsecConfig, Transport};
use crate::core::stats::Counter;

/// RFC 9765 §3.1 ALPN names.
pub const ALPN_RADIUS_1_1: &[u8] = b"radius/1.1";
pub const ALPN_RADIUS_1_0: &[u8] = b"radius/1.0";

/// The files a RadSec TLS configuration is built from (watched for changes).
fn watched_files(cfg: &RadsecConfig) -> Vec<std::path::PathBuf> {
    let mut files = vec![cfg.certificate_file.clone(), cfg.private_key_file.clone()];
    files.extend(cfg.ca_file.paths());
    files.extend(cfg.crl_file.paths());
    files
}

/// Re-reads the RadSec files every 2 s (as the EAP side does for its CRLs: a change takes
/// effect within 5 s); a configuration that no longer builds is refused and the last good one
/// stays in force.
pub(super) async fn watch_files(
    core: Arc<Core>,
    acceptor: Acceptor,
    cfg: Arc<RadsecConfig>,
    mut shutdown: watch::Receiver<bool>,
) {
    let files = watched_files(&cfg);
    let mut seen = crate::x509::crl::fingerprint(&files);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let now = crate::x509::crl::fingerprint(&files);
        if now == seen {
            continue;
        }
        seen = now;
        match tls_config(&cfg) {
            Ok(sc) => {
                if let Ok(mut a) = acceptor.write() {
                    *a = tokio_rustls::TlsAcceptor::from(Arc::new(sc));
                }
                core.stats.incr(Counter::ConfigReloads);
                info!(
                    "files changed on disk: RadSec TLS configuration reloaded (new connections use it)"
                );
            }
            Err(e) => {
                core.stats.incr(Counter::ConfigReloadFailed);
                warn!(
                    "files changed on disk: new RadSec TLS configuration refused, the last good one stays in force: {e}"
                );
            }
        }
    }
}

/// Builds the RadSec TLS configuration: the server's RadSec certificate, NAS certificates
/// verified against `radsec.ca_file` and `radsec.crl_file` (mutual TLS is mandatory, RFC 6614
/// §2.4), TLS 1.2 and 1.3 as `tls_min_version` allows, ALPN per `radius_1_1`.
pub fn tls_config(cfg: &RadsecConfig) -> Result<rustls::ServerConfig, StreamSetupError> {
    use crate::x509::pem::{load_certs, load_key};
    let err = |e: &dyn std::fmt::Display| StreamSetupError::Tls(e.to_string());
    let chain =
        load_certs("radsec.certificate_file", &cfg.certificate_file).map_err(|e| err(&e))?;
    let key = load_key("radsec.private_key_file", &cfg.private_key_file).map_err(|e| err(&e))?;
    let mut roots = rustls::RootCertStore::empty();
    for path in cfg.ca_file.paths() {
        for cert in load_certs("radsec.ca_file", &path).map_err(|e| err(&e))? {
            roots.add(cert).map_err(|e| {
                StreamSetupError::Tls(format!("radsec.ca_file: {}: {e}", path.display()))
            })?;
        }
    }
    let crls = crate::x509::crl::load(&cfg.crl_file.paths())
        .map_err(|e| {
            StreamSetupError::Tls(format!("radsec.{e}").replace("radsec.tls.", "radsec."))
        })?
        .into_iter()
        .map(|c| c.der)
        .collect::<Vec<_>>();
    let provider = crate::tls::setup::provider();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .with_crls(crls)
    .build()
    .map_err(|e| StreamSetupError::Tls(format!("radsec.ca_file: {e}")))?;
    let versions: &[&rustls::SupportedProtocolVersion] = match cfg.tls_min_version {
        crate::config::TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        crate::config::TlsVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let mut sc = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| err(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| StreamSetupError::Tls(format!("radsec.private_key_file: {e}")))?;
    sc.alpn_protocols = match cfg.radius_1_1 {
        Radius11::Off => Vec::new(),
        Radius11::Allow => vec![ALPN_RADIUS_1_1.to_vec(), ALPN_RADIUS_1_0.to_vec()],
        Radius11::Require => vec![ALPN_RADIUS_1_1.to_vec()],
    };
    Ok(sc)
}

/// The SAN DNS names and subject CNs of a certificate (RFC 6614 §2.4 NAS identification).
pub fn certificate_names(der: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return out;
    };
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                out.push((*d).to_string());
            }
        }
    }
    for cn in cert.subject().iter_common_name() {
        if let Ok(s) = cn.as_str() {
            out.push(s.to_string());
        }
    }
    out
}

/// The most specific `tls` client for the address whose `certificate_name` (if set) is among
/// the certificate's names (DNS names compare case-insensitively).
pub(super) fn match_tls_client(core: &Core, peer: SocketAddr, names: &[String]) -> Option<usize> {
    core.clients()
        .candidates(peer.ip(), Transport::Tls)
        .find(|c| match &c.certificate_name {
            None => true,
            Some(want) => names.iter().any(|n| n.eq_ignore_ascii_case(want)),
        })
        .map(|c| c.index)
}

/// One established connection: a reader that frames packets and hands each to a task, and a
/// writer that sends replies in the order they are ready.
/// What `certradius check` says about the stream transports: listeners, the NAS trust (CA
/// subjects, CRLs) and the clients of each transport. Building the TLS configuration checks
/// the RadSec files (readable, key matches certificate, CAs and CRLs parse).
pub fn describe(config: &Config) -> Result<String, StreamSetupError> {
    let cfg = &config.radsec;
    let mut out = Vec::new();
    if cfg.listen.is_empty() {
        out.push("RadSec off".to_string());
    } else {
        tls_config(cfg)?;
        let mut cas = Vec::new();
        for path in cfg.ca_file.paths() {
            for der in crate::x509::pem::load_certs("radsec.ca_file", &path)
                .map_err(|e| StreamSetupError::Tls(e.to_string()))?
            {
                if let Ok((_, c)) = x509_parser::parse_x509_certificate(der.as_ref()) {
                    cas.push(c.subject().to_string());
                }
            }
        }
        let crls = cfg.crl_file.paths().len();
        out.push(format!(
            "RadSec listen {} (TLS >= {}, radius_1_1 {:?}), NAS certificates trusted from: [{}], {crls} CRL file(s)",
            join(&cfg.listen),
            cfg.tls_min_version,
            cfg.radius_1_1,
            cas.join("; ")
        ));
    }
    if !config.tcp.listen.is_empty() {
        out.push(format!("RADIUS/TCP listen {}", join(&config.tcp.listen)));
    }
    for c in &config.clients {
        match c.transport {
            Transport::Udp => {}
            Transport::Tcp => out.push(format!("client {} {}: tcp", c.name, c.address)),
            Transport::Tls => out.push(format!(
                "client {} {}: tls, certificate_name {}",
                c.name,
                c.address,
                c.certificate_name.as_deref().unwrap_or("(any trusted)")
            )),
        }
    }
    Ok(out.join("\n"))
}

fn join(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}
