//! Building the rustls server configuration from `[tls]`: the crypto provider, protocol versions,
//! client certificate verification with the CAs and CRLs (RFC 5280 §6, §5), and session
//! resumption (tickets, RFC 5077 / RFC 8446 §4.6.1, and session IDs).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};

use super::ca_certs::CaCerts;
use super::client_verifier::ClientVerifier;
use super::verified::VerifiedChains;
use crate::config::{CrlScope, TlsConfig, TlsVersion};
use crate::tls::resumption::{LifetimeCache, Resumption, StatefulOnly, Ticketer};
use crate::x509::crl;
use crate::x509::pem::{KeyFiles, PemError, file_err, load_certs, load_server_key};
use crate::x509::rollover::ServedIdentity;

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
///
/// The signatures of CA certificates and CRLs are verified once and remembered
/// (`verified_signatures.rs`); the leaf's and the handshake's are verified every time.
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
    p.signature_verification_algorithms =
        super::verified_signatures::remembering(p.signature_verification_algorithms);
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
    versions_between(cfg.tls_min_version, cfg.tls_max_version)
}

/// The rustls versions from `min` to `max`.
fn versions_between(
    min: TlsVersion,
    max: TlsVersion,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsSetupError> {
    let mut v = Vec::new();
    if min <= TlsVersion::V1_2 && max >= TlsVersion::V1_2 {
        v.push(&rustls::version::TLS12);
    }
    if min <= TlsVersion::V1_3 && max >= TlsVersion::V1_3 {
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

/// What a conversation needs from the TLS setup: the rustls configuration, the client
/// certificate verifier (run again on resumed sessions), and the long-lived resumption state.
#[derive(Clone)]
pub struct TlsSetup {
    /// The configuration of `[tls]`'s versions.
    pub config: Arc<rustls::ServerConfig>,
    /// The same with other versions or signature schemes, one per distinct `[[client]]`
    /// override (`tls_min_version`, `tls_max_version`, `client_signature_schemes`), built here
    /// once rather than per conversation.
    pub variants: Arc<Vec<(Variant, Arc<rustls::ServerConfig>)>>,
    /// `[tls]`'s versions and schemes, those of `config`.
    pub base: Variant,
    /// What supplicants pin of the server certificate (compared on reload: rollover).
    pub served: Option<Arc<ServedIdentity>>,
    /// The server certificate (DER), recorded for `check` to compare a new one with.
    pub served_der: Arc<Vec<u8>>,
    pub verifier: Arc<dyn ClientCertVerifier>,
    pub resumption: Option<Resumption>,
    /// Every certificate of `ca_file` (issuers for OCSP requests, the CA chain of a session).
    pub ca_certs: Arc<CaCerts>,
    /// Chains verified under this configuration (see [`VerifiedChains`]).
    pub verified: Arc<VerifiedChains>,
}

/// A (minimum, maximum) pair of TLS versions.
pub type VersionRange = (TlsVersion, TlsVersion);

/// What one `[[client]]` overrides of `[tls]` for the supplicants behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NasTls {
    pub min: Option<TlsVersion>,
    pub max: Option<TlsVersion>,
    /// Signature scheme code points (empty list: no restriction).
    pub schemes: Option<Vec<u16>>,
}

impl NasTls {
    pub fn of(c: &crate::config::ClientConfig) -> NasTls {
        NasTls {
            min: c.tls_min_version,
            max: c.tls_max_version,
            schemes: c
                .client_signature_schemes
                .as_ref()
                .map(|list| list.iter().map(|s| s.code).collect()),
        }
    }

    fn resolve(&self, base: &Variant) -> Variant {
        Variant {
            versions: (
                self.min.unwrap_or(base.versions.0),
                self.max.unwrap_or(base.versions.1),
            ),
            schemes: self.schemes.clone().unwrap_or_else(|| base.schemes.clone()),
        }
    }
}

/// The TLS parameters one rustls configuration is built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub versions: VersionRange,
    pub schemes: Vec<u16>,
}

impl TlsSetup {
    /// The rustls configuration for a NAS with these overrides.
    pub fn config_for(&self, nas: &NasTls) -> &Arc<rustls::ServerConfig> {
        if *nas == NasTls::default() {
            return &self.config;
        }
        let want = nas.resolve(&self.base);
        self.variants
            .iter()
            .find(|(v, _)| *v == want)
            .map_or(&self.config, |(_, c)| c)
    }
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
    server_config_for(cfg, &[])
}

/// [`server_config`] with a configuration for each of the NAS version ranges too.
pub fn server_config_for(cfg: &TlsConfig, nas: &[NasTls]) -> Result<TlsSetup, TlsSetupError> {
    let resumption = resumption_from_config(cfg)?;
    build(cfg, nas, resumption)
}

/// Rebuilds after a file change, keeping the session cache (so sessions survive a CRL
/// update) but re-reading the ticket keys.
pub fn rebuild(cfg: &TlsConfig, previous: &TlsSetup) -> Result<TlsSetup, TlsSetupError> {
    rebuild_for(cfg, &[], previous)
}

/// [`rebuild`] with a configuration for each of the NAS version ranges too.
pub fn rebuild_for(
    cfg: &TlsConfig,
    nas: &[NasTls],
    previous: &TlsSetup,
) -> Result<TlsSetup, TlsSetupError> {
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
    build(cfg, nas, resumption)
}

fn build(
    cfg: &TlsConfig,
    nas: &[NasTls],
    resumption: Option<Resumption>,
) -> Result<TlsSetup, TlsSetupError> {
    let provider = provider();
    let chain = load_certs("tls.certificate_file", &cfg.certificate_file)?;
    let key = load_server_key(KeyFiles {
        key: "tls.private_key_file",
        path: &cfg.private_key_file,
        password_key: "tls.private_key_password_file",
        password_file: cfg.private_key_password_file.as_deref(),
    })?;
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
    let mut no_crl_yet = false;
    if scope != CrlScope::None {
        let crls = crl::load_all(cfg).map_err(|e| TlsSetupError::Invalid {
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
        // Only for fetched sources: a configuration that checks revocation with no source at
        // all keeps its behaviour.
        no_crl_yet = crls.is_empty()
            && !cfg.allow_unknown_revocation_status
            && !crate::x509::crl_fetch::sources(cfg).0.is_empty();
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
    let webpki = builder.build().map_err(|e| TlsSetupError::Invalid {
        key: if scope == CrlScope::None {
            "tls.ca_file"
        } else {
            "tls.crl_file"
        },
        message: e.to_string(),
    })?;
    let base = Variant {
        versions: (cfg.tls_min_version, cfg.tls_max_version),
        schemes: cfg
            .client_signature_schemes
            .iter()
            .map(|s| s.code)
            .collect(),
    };
    let verifier: Arc<dyn ClientCertVerifier> =
        Arc::new(client_verifier(webpki.clone(), &base.schemes)?.refusing_until_crls(no_crl_yet));
    let parts = ConfigParts {
        provider: &provider,
        chain: &chain,
        key: &key,
        resumption: resumption.as_ref(),
    };
    let config = Arc::new(rustls_config(&parts, verifier.clone(), base.versions)?);
    let mut variants: Vec<(Variant, Arc<rustls::ServerConfig>)> = Vec::new();
    for n in nas {
        let variant = n.resolve(&base);
        if variant != base && !variants.iter().any(|(v, _)| *v == variant) {
            let v = Arc::new(
                client_verifier(webpki.clone(), &variant.schemes)?.refusing_until_crls(no_crl_yet),
            );
            let sc = rustls_config(&parts, v, variant.versions)?;
            variants.push((variant, Arc::new(sc)));
        }
    }
    Ok(TlsSetup {
        config,
        variants: Arc::new(variants),
        base,
        served: chain
            .first()
            .and_then(|c| ServedIdentity::of(c.as_ref()))
            .map(Arc::new),
        served_der: Arc::new(chain.first().map(|c| c.to_vec()).unwrap_or_default()),
        verifier,
        resumption,
        ca_certs: Arc::new(CaCerts::new(ca_certs)),
        verified: Arc::new(VerifiedChains::new(cfg.session_cache_size, crl_until)),
    })
}

/// The WebPKI verifier limited to `tls.client_signature_schemes`, which must leave at least one
/// scheme the provider verifies.
fn client_verifier(
    webpki: Arc<dyn ClientCertVerifier>,
    codes: &[u16],
) -> Result<ClientVerifier, TlsSetupError> {
    let verifier = ClientVerifier::new(webpki, codes);
    if !codes.is_empty() && verifier.supported_verify_schemes().is_empty() {
        return Err(TlsSetupError::Invalid {
            key: "tls.client_signature_schemes",
            message: format!(
                "the crypto provider ({PROVIDER_NAME}) verifies none of these schemes"
            ),
        });
    }
    Ok(verifier)
}

/// What every rustls configuration of one `[tls]` shares.
struct ConfigParts<'a> {
    provider: &'a Arc<rustls::crypto::CryptoProvider>,
    chain: &'a [CertificateDer<'static>],
    key: &'a rustls::pki_types::PrivateKeyDer<'static>,
    resumption: Option<&'a Resumption>,
}

/// One rustls configuration, for the versions in `range`.
fn rustls_config(
    parts: &ConfigParts<'_>,
    verifier: Arc<dyn ClientCertVerifier>,
    (min, max): VersionRange,
) -> Result<rustls::ServerConfig, TlsSetupError> {
    let mut sc = rustls::ServerConfig::builder_with_provider(parts.provider.clone())
        .with_protocol_versions(&versions_between(min, max)?)
        .map_err(|e| TlsSetupError::Invalid {
            key: "tls.tls_min_version",
            message: e.to_string(),
        })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(parts.chain.to_vec(), parts.key.clone_key())
        .map_err(|e| TlsSetupError::Invalid {
            key: "tls.certificate_file",
            message: e.to_string(),
        })?;
    sc.ignore_client_order = true;
    // Certificate validity, CRL nextUpdate and ticket ages by the conversation's `now`.
    sc.time_provider = Arc::new(super::clock::ConversationClock);
    match parts.resumption {
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
    Ok(sc)
}
