//! The RadSec side of the stream listeners (RFC 6614): the server's TLS configuration with
//! mutual authentication of the NAS (§2.2; rebuilt by every reload), the NAS identified by
//! its certificate's SAN DNS names or CN (§2.4), RADIUS/1.1 ALPN names (RFC 9765 §3.1), and what
//! `certradius check` says about the stream listeners.

use std::net::SocketAddr;
use std::sync::Arc;

use super::stream::StreamSetupError;
use crate::config::{Config, Radius11, RadsecConfig, Transport};
use crate::core::clients::{Client, Clients};

/// RFC 9765 §3.1 ALPN names.
pub const ALPN_RADIUS_1_1: &[u8] = b"radius/1.1";
pub const ALPN_RADIUS_1_0: &[u8] = b"radius/1.0";

/// The files a RadSec TLS configuration is built from (watched for changes by `reload.rs`).
pub fn watched_files(cfg: &RadsecConfig) -> Vec<std::path::PathBuf> {
    if cfg.listen.is_empty() {
        return Vec::new();
    }
    let mut files = vec![cfg.certificate_file.clone(), cfg.private_key_file.clone()];
    files.extend(cfg.private_key_password_file.clone());
    files.extend(cfg.ca_file.paths());
    files.extend(cfg.crl_file.paths());
    files
}

/// Builds the RadSec TLS configuration: the server's RadSec certificate, NAS certificates
/// verified against `radsec.ca_file` and `radsec.crl_file` (mutual TLS is mandatory, RFC 6614
/// §2.4), TLS 1.2 and 1.3 as `tls_min_version` allows, ALPN per `radius_1_1`.
pub fn tls_config(cfg: &RadsecConfig) -> Result<rustls::ServerConfig, StreamSetupError> {
    use crate::x509::pem::{KeyFiles, load_certs, load_server_key};
    let err = |e: &dyn std::fmt::Display| StreamSetupError::Tls(e.to_string());
    let chain =
        load_certs("radsec.certificate_file", &cfg.certificate_file).map_err(|e| err(&e))?;
    let key = load_server_key(KeyFiles {
        key: "radsec.private_key_file",
        path: &cfg.private_key_file,
        password_key: "radsec.private_key_password_file",
        password_file: cfg.private_key_password_file.as_deref(),
    })
    .map_err(|e| err(&e))?;
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
/// the certificate's names.
pub(super) fn match_tls_client<'a>(
    clients: &'a Clients,
    peer: SocketAddr,
    names: &[String],
) -> Option<&'a Arc<Client>> {
    clients
        .candidates(peer.ip(), Transport::Tls)
        .find(|c| names_match(c, names))
}

/// Whether a NAS certificate with these names may act as `client` (DNS names compare
/// case-insensitively; no `certificate_name`: any certificate the CAs trust).
pub(super) fn names_match(client: &Client, names: &[String]) -> bool {
    match &client.certificate_name {
        None => true,
        Some(want) => names.iter().any(|n| n.eq_ignore_ascii_case(want)),
    }
}

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
