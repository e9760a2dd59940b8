//! Building the rustls server configuration from `[tls]`: the crypto provider, protocol versions,
//! client certificate verification with the CAs and CRLs (RFC 5280 §6, §5), and session
//! resumption (tickets, RFC 5077 / RFC 8446 §4.6.1, and session IDs).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};

use super::verified::{VerifiedChains, VerifiedPeer};
use crate::config::{CrlScope, TlsConfig, TlsVersion};
use crate::tls::resumption::{LifetimeCache, Resumption, StatefulOnly, Ticketer};
use crate::x509::crl;
use crate::x509::pem::{PemError, file_err, load_certs, load_key};

#[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
compile_error!("select a rustls crypto provider: cargo feature `aws-lc-rs` (default) or `ring`");

/// Name of the crypto provider this binary was built with (`certradius check` prints it).
pub const PROVIDER_NAME: &str = if cfg!(feature = "fips") {
    "aws-lc-rs (FIPS)"
} else if cfg!(feature = "aws-lc-rs") {
    "aws-lc-rs"
} else {
    "ring"
};

// With both features on (the test tooling asks for `ring`, a build for `aws-lc-rs`), aws-lc-rs
// wins: a feature can only add, so the explicit choice of the faster provider must not be undone.
#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
fn base_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

#[cfg(feature = "aws-lc-rs")]
fn base_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

/// The single crypto provider of the process. rustls panics at run time when it has to pick a
/// default among several, so every builder gets this one explicitly.
///
/// Cipher suites are ordered AES-128-GCM first, and the server picks by its own order
/// (`ignore_client_order`): with SHA-256 instead of SHA-384 the TLS key schedule costs about a
/// third less (SHA-256 runs on the CPU's SHA extensions), which is 5-12% of a handshake's CPU,
/// while AES-128-GCM is the suite RFC 8446 §9.1 makes mandatory. Every suite stays enabled.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut p = base_provider();
    p.cipher_suites.sort_by_key(|s| {
        use rustls::CipherSuite as C;
        match s.suite() {
            C::TLS13_AES_128_GCM_SHA256
            | C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 0,
            C::TLS13_AES_256_GCM_SHA384
            | C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            | C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 1,
            _ => 2,
        }
    });
    Arc::new(p)
}

/// Draws from the provider's random generator once at start. aws-lc seeds its generator on
/// first use (CPU-jitter entropy, some 10-25 ms here); done now, that is not added to the first
/// authentication a supplicant waits for.
pub fn warm_up() {
    let mut seed = [0u8; 32];
    let _ = provider().secure_random.fill(&mut seed);
}

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error(transparent)]
    File(#[from] PemError),
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

pub fn versions(
    cfg: &TlsConfig,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsSetupError> {
    let (min, max) = (cfg.tls_min_version, cfg.tls_max_version);
    let mut v = Vec::new();
    if min <= TlsVersion::V1_2 && max >= TlsVersion::V1_2 {
        v.push(&rustls::version::TLS12);
    }
    if max >= TlsVersion::V1_3 {
        v.push(&rustls::version::TLS13);
    }
    if v.is_empty() {
        return Err(TlsSetupError::Invalid {
            key: "tls.tls_min_version",
            message: "no TLS version left between tls_min_version and tls_max_version".into(),
        });
    }
    Ok(v)
}

/// The trust anchors for client certificates: every certificate in every `ca_file`.
pub fn client_roots(
    cfg: &TlsConfig,
) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), TlsSetupError> {
    let mut roots = RootCertStore::empty();
    let mut all = Vec::new();
    for path in cfg.ca_file.paths() {
        for cert in load_certs("tls.ca_file", &path)? {
            roots
                .add(cert.clone())
                .map_err(|e| file_err("tls.ca_file", &path, format!("unusable CA: {e}")))?;
            all.push(cert);
        }
    }
    Ok((roots, all))
}

/// The issuer certificate of the peer's leaf: the next certificate of its chain, or one of our
/// CA certificates, whichever has the leaf's issuer as subject.
pub fn issuer_of(peer: &VerifiedPeer, ca_certs: &[CertificateDer<'static>]) -> Option<Vec<u8>> {
    let wanted = peer.leaf().issuer_raw.as_slice();
    peer.chain()
        .iter()
        .skip(1)
        .chain(ca_certs.iter())
        .find(|c| {
            crate::x509::parse_certificate(c.as_ref())
                .is_ok_and(|(_, cert)| cert.subject().as_raw() == wanted)
        })
        .map(|c| c.as_ref().to_vec())
}

/// What a conversation needs from the TLS setup: the rustls configuration, the client
/// certificate verifier (run again on resumed sessions), and the long-lived resumption state.
#[derive(Clone)]
pub struct TlsSetup {
    pub config: Arc<rustls::ServerConfig>,
    pub verifier: Arc<dyn ClientCertVerifier>,
    pub resumption: Option<Resumption>,
    /// Every certificate of `ca_file` (issuers for OCSP requests).
    pub ca_certs: Arc<Vec<CertificateDer<'static>>>,
    /// Chains verified under this configuration (see [`VerifiedChains`]).
    pub verified: Arc<VerifiedChains>,
}

/// The resumption state `[tls]` asks for (None when `resumption = false`).
pub fn resumption_from_config(cfg: &TlsConfig) -> Result<Option<Resumption>, TlsSetupError> {
    if !cfg.resumption {
        return Ok(None);
    }
    let ticketer: Arc<dyn rustls::server::ProducesTickets> = match &cfg.ticket_key_file {
        Some(path) => Arc::new(
            Ticketer::from_file(path, cfg.session_lifetime_secs).map_err(|e| {
                TlsSetupError::Invalid {
                    key: "tls.ticket_key_file",
                    message: e.to_string(),
                }
            })?,
        ),
        None => Arc::new(StatefulOnly),
    };
    Ok(Some(Resumption {
        cache: LifetimeCache::new(cfg.session_cache_size, cfg.session_lifetime_secs),
        ticketer,
        tls13_tickets: cfg.tls13_tickets,
    }))
}

/// Builds the TLS setup from `[tls]` with fresh resumption state; every error names its key.
pub fn server_config(cfg: &TlsConfig) -> Result<TlsSetup, TlsSetupError> {
    let resumption = resumption_from_config(cfg)?;
    build(cfg, resumption)
}

/// Rebuilds after a file change, keeping the session cache (so sessions survive a CRL
/// update) but re-reading the ticket keys.
pub fn rebuild(cfg: &TlsConfig, previous: &TlsSetup) -> Result<TlsSetup, TlsSetupError> {
    let resumption = match (resumption_from_config(cfg)?, &previous.resumption) {
        (Some(mut fresh), Some(old)) => {
            fresh.cache = old.cache.clone();
            if cfg.ticket_key_file.is_none() {
                fresh.ticketer = old.ticketer.clone();
            }
            Some(fresh)
        }
        (fresh, _) => fresh,
    };
    build(cfg, resumption)
}

fn build(cfg: &TlsConfig, resumption: Option<Resumption>) -> Result<TlsSetup, TlsSetupError> {
    let provider = provider();
    let chain = load_certs("tls.certificate_file", &cfg.certificate_file)?;
    let key = load_key("tls.private_key_file", &cfg.private_key_file)?;
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| TlsSetupError::Invalid {
            key: "tls.private_key_file",
            message: format!("unsupported key: {e}"),
        })?;
    rustls::sign::CertifiedKey::new(chain.clone(), signing_key)
        .keys_match()
        .map_err(|e| TlsSetupError::Invalid {
            key: "tls.private_key_file",
            message: format!(
                "does not match the certificate in tls.certificate_file ({}): {e}",
                cfg.certificate_file.display()
            ),
        })?;
    let (roots, ca_certs) = client_roots(cfg)?;
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let scope = cfg.crl_scope();
    let mut crl_until = None;
    if scope != CrlScope::None {
        let crls = crl::load(&cfg.crl_file.paths()).map_err(|e| TlsSetupError::Invalid {
            key: "tls.crl_file",
            message: e.to_string(),
        })?;
        if !cfg.allow_expired_crl {
            crl_until = crls
                .iter()
                .filter_map(|c| c.next_update)
                .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .min();
        }
        builder = builder.with_crls(crls.into_iter().map(|c| c.der));
        if scope == CrlScope::Leaf {
            builder = builder.only_check_end_entity_revocation();
        }
        if !cfg.allow_expired_crl {
            builder = builder.enforce_revocation_expiration();
        }
        if cfg.allow_unknown_revocation_status {
            builder = builder.allow_unknown_revocation_status();
        }
    }
    let verifier = builder.build().map_err(|e| TlsSetupError::Invalid {
        key: if scope == CrlScope::None {
            "tls.ca_file"
        } else {
            "tls.crl_file"
        },
        message: e.to_string(),
    })?;
    let mut sc = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions(cfg)?)
        .map_err(|e| TlsSetupError::Invalid {
            key: "tls.tls_min_version",
            message: e.to_string(),
        })?
        .with_client_cert_verifier(verifier.clone())
        .with_single_cert(chain, key)
        .map_err(|e| TlsSetupError::Invalid {
            key: "tls.certificate_file",
            message: e.to_string(),
        })?;
    sc.ignore_client_order = true;
    // Certificate validity, CRL nextUpdate and ticket ages by the conversation's `now`.
    sc.time_provider = Arc::new(super::clock::ConversationClock);
    match &resumption {
        Some(r) => {
            sc.session_storage = r.cache.clone();
            sc.ticketer = r.ticketer.clone();
            sc.send_tls13_tickets = r.tls13_tickets;
        }
        None => {
            sc.session_storage = Arc::new(NoServerSessionStorage {});
            sc.send_tls13_tickets = 0;
        }
    }
    Ok(TlsSetup {
        config: Arc::new(sc),
        verifier,
        resumption,
        ca_certs: Arc::new(ca_certs),
        verified: Arc::new(VerifiedChains::new(cfg.session_cache_size, crl_until)),
    })
}
