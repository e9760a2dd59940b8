//! CRLs that fetch themselves: the sans-IO half (the shell's `server/crl_fetch.rs` does the
//! HTTP and the timing).
//!
//! - Sources: `tls.crl_url`, and with `tls.crl_from_certificates` the CRL Distribution Points
//!   (RFC 5280 §4.2.1.13) of the `tls.ca_file` certificates. Only http:// is fetched: a CRL is a
//!   signed object (RFC 5280 §5.1.1.3) and distribution points are plain HTTP by design; ldap://
//!   points (the AD CS default) need the `[directory]` connection settings, not built yet.
//! - A body (DER or PEM, whatever the server sends) is used only when every CRL in it parses and
//!   is signed by the CA in `tls.ca_file` whose subject is the CRL's issuer (§6.3.3 (f), (g)).
//! - A good body is written to the cache, `crl-cache/<hash of the URL>.crl` next to
//!   `server.state_file`. The TLS setup loads the cache files (verified again: the cache is only a
//!   file) with the `crl_file` CRLs, and the file watcher rebuilds the configuration when one
//!   changes: fetched CRLs are put in force by the same one-snapshot reload as a `crl_file`
//!   change, and a restart during a PKI outage starts with the last good CRLs.
//! - Refetches are conditional (RFC 9110 §13.1.1, §13.1.3): with the ETag and Last-Modified of
//!   the last good body ([`Validators`]) and its cache file still there, the request carries
//!   If-None-Match and If-Modified-Since, and a 304 Not Modified keeps the cached CRL without
//!   downloading or verifying it again. A CA that publishes a large CRL daily is then
//!   downloaded once a day, not once per `crl_refresh_secs`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustls::pki_types::CertificateDer;
use tracing::warn;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};

use super::crl::{self, LoadedCrl};
use crate::config::TlsConfig;
use crate::escape::Escaped;

/// The largest CRL body accepted (a CA with a million revoked certificates publishes ~40 MB; a
/// campus CA a few kB). The download stops at this size: memory stays bounded.
pub const MAX_CRL_BYTES: usize = 16 * 1024 * 1024;
/// A fetch (connect, every redirect, the whole body) ends after this.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects followed (each must stay on http://).
pub const MAX_REDIRECTS: usize = 3;
/// After a failed fetch, the next try comes at the latest after this.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// The outcome of one fetch: the `result` label of `certradius_crl_fetch_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchResult {
    /// A verified CRL (new or the same as before).
    Ok,
    /// 304 Not Modified to a conditional request: the cached CRL is still the CA's latest.
    NotModified,
    /// An answer other than 200 (after redirects).
    HttpError,
    /// A body that is not a CRL (an HTML page, garbage).
    Invalid,
    /// A CRL whose issuer is not a CA in `tls.ca_file`, or whose signature does not verify.
    WrongIssuer,
    /// A body larger than [`MAX_CRL_BYTES`].
    TooLarge,
    /// No complete answer within [`FETCH_TIMEOUT`].
    Timeout,
    /// Connection refused, name not resolved, too many redirects, a broken answer.
    Error,
}

impl FetchResult {
    pub fn as_str(self) -> &'static str {
        match self {
            FetchResult::Ok => "ok",
            FetchResult::NotModified => "not_modified",
            FetchResult::HttpError => "http_error",
            FetchResult::Invalid => "invalid",
            FetchResult::WrongIssuer => "wrong_issuer",
            FetchResult::TooLarge => "too_large",
            FetchResult::Timeout => "timeout",
            FetchResult::Error => "error",
        }
    }
}

/// The longest ETag or Last-Modified value kept (a longer one is not sent back).
const MAX_VALIDATOR_LEN: usize = 256;

/// What a later request for the same URL sends back to ask "changed since?": the ETag and
/// Last-Modified header values of the last good answer, verbatim (RFC 9110 §8.8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    /// From an answer's header values; one that is not visible ASCII, or longer than
    /// [`MAX_VALIDATOR_LEN`], is left out.
    pub fn from_headers(etag: Option<&[u8]>, last_modified: Option<&[u8]>) -> Validators {
        let keep = |v: Option<&[u8]>| {
            v.filter(|v| {
                !v.is_empty()
                    && v.len() <= MAX_VALIDATOR_LEN
                    && v.iter().all(|b| (0x20..0x7f).contains(b))
            })
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_string)
        };
        Validators {
            etag: keep(etag),
            last_modified: keep(last_modified),
        }
    }

    /// Whether a request can be made conditional.
    pub fn any(&self) -> bool {
        self.etag.is_some() || self.last_modified.is_some()
    }
}

/// A failed fetch: its result and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailure {
    pub result: FetchResult,
    pub message: String,
}

impl FetchFailure {
    pub fn new(result: FetchResult, message: impl Into<String>) -> Self {
        FetchFailure {
            result,
            message: message.into(),
        }
    }
}

/// A CA a CRL may be signed by: its subject (raw DER, compared byte for byte with the CRL's
/// issuer) and its key.
#[derive(Debug, Clone)]
pub struct CaKey {
    subject: Vec<u8>,
    spki: Vec<u8>,
}

/// The CAs of `certs` (those that do not parse are left out: the TLS setup reports them).
pub fn ca_keys(certs: &[CertificateDer<'_>]) -> Vec<CaKey> {
    certs
        .iter()
        .filter_map(|der| {
            let (_, cert) = super::parse_certificate(der.as_ref()).ok()?;
            Some(CaKey {
                subject: cert.subject().as_raw().to_vec(),
                spki: cert.public_key().raw.to_vec(),
            })
        })
        .collect()
}

/// Intermediates seen in client chains, at most [`MAX_SEEN`]: candidates for CRL issuers and,
/// with `crl_from_certificates`, for CRL Distribution Points. Only those whose signature
/// verifies under a `ca_file` CA (or under one already accepted) are ever used
/// ([`configured_cas`]): a chain may carry extra certificates that are not on its path.
static SEEN: std::sync::Mutex<Vec<CertificateDer<'static>>> = std::sync::Mutex::new(Vec::new());
const MAX_SEEN: usize = 64;

/// Records the intermediates of a verified chain (cheap: a lock and a comparison of at most
/// [`MAX_SEEN`] entries).
pub fn saw_intermediates(intermediates: &[CertificateDer<'_>]) {
    let mut seen = crate::core::guard::lock(&SEEN);
    for c in intermediates {
        if seen.len() >= MAX_SEEN {
            return;
        }
        if !seen.iter().any(|s| s.as_ref() == c.as_ref()) {
            seen.push(c.clone().into_owned());
        }
    }
}

/// The intermediates seen so far.
pub fn seen_intermediates() -> Vec<CertificateDer<'static>> {
    crate::core::guard::lock(&SEEN).clone()
}

/// Where the seen intermediates are kept across restarts (in the CRL cache).
pub fn intermediates_file(dir: &Path) -> PathBuf {
    dir.join("intermediates.pem")
}

/// The CAs of `tls.ca_file`, and the seen intermediates (in memory and in the cache) that
/// chain to them by signature.
pub fn configured_cas(tls: &TlsConfig) -> (Vec<CertificateDer<'static>>, Vec<CaKey>) {
    let mut certs = Vec::new();
    for path in tls.ca_file.paths() {
        if let Ok(c) = super::pem::load_certs("tls.ca_file", &path) {
            certs.extend(c);
        }
    }
    let mut candidates = seen_intermediates();
    if let Some(dir) = &tls.crl_cache_dir
        && let Ok(c) = super::pem::load_certs("tls.crl_cache", &intermediates_file(dir))
    {
        candidates.extend(c);
    }
    // Accept candidates signed by an accepted CA until nothing changes (a path is short).
    let mut keys = ca_keys(&certs);
    for _ in 0..4 {
        let mut added = false;
        candidates.retain(|cand| {
            if certs.iter().any(|c| c.as_ref() == cand.as_ref()) {
                return false;
            }
            let signed = keys
                .iter()
                .any(|k| super::ocsp::signed_by(cand.as_ref(), &k.spki));
            if signed {
                keys.extend(ca_keys(std::slice::from_ref(cand)));
                certs.push(cand.clone());
                added = true;
            }
            !signed
        });
        if !added {
            break;
        }
    }
    (certs, keys)
}

/// Verifies a body as served: one DER CRL, or PEM with one or more. `origin` is what the
/// loaded CRLs name as their file (the cache file).
pub fn verify_body(
    body: &[u8],
    cas: &[CaKey],
    origin: &Path,
) -> Result<Vec<LoadedCrl>, FetchFailure> {
    let trimmed = body.trim_ascii_start();
    let ders = if trimmed.starts_with(b"-----BEGIN") {
        crl::parse_pem(trimmed)
            .map_err(|e| FetchFailure::new(FetchResult::Invalid, format!("bad PEM: {e}")))?
    } else {
        vec![rustls::pki_types::CertificateRevocationListDer::from(
            body.to_vec(),
        )]
    };
    if ders.is_empty() {
        return Err(FetchFailure::new(
            FetchResult::Invalid,
            "no X509 CRL in the body",
        ));
    }
    let mut out = Vec::new();
    for der in ders {
        let (_, parsed) = x509_parser::parse_x509_crl(der.as_ref()).map_err(|_| {
            FetchFailure::new(
                FetchResult::Invalid,
                format!("not a CRL (first bytes: \"{}\")", preview(body)),
            )
        })?;
        let issuer_raw = parsed.issuer().as_raw();
        let issuer = parsed.issuer().to_string();
        let candidates: Vec<&CaKey> = cas.iter().filter(|c| c.subject == issuer_raw).collect();
        if candidates.is_empty() {
            return Err(FetchFailure::new(
                FetchResult::WrongIssuer,
                format!(
                    "CRL issuer \"{}\" is not a CA in tls.ca_file",
                    Escaped::str(&issuer)
                ),
            ));
        }
        if !candidates
            .iter()
            .any(|c| super::ocsp::signed_by(der.as_ref(), &c.spki))
        {
            return Err(FetchFailure::new(
                FetchResult::WrongIssuer,
                format!(
                    "CRL names \"{}\" as issuer but is not signed by its key",
                    Escaped::str(&issuer)
                ),
            ));
        }
        let loaded = crl::describe(der, origin)
            .map_err(|e| FetchFailure::new(FetchResult::Invalid, e.message))?;
        out.push(loaded);
    }
    Ok(out)
}

/// The first bytes of a refused body, escaped, for the log.
fn preview(body: &[u8]) -> String {
    Escaped(body.get(..40).unwrap_or(body)).to_string()
}

/// The cache file of a URL: a stable hash of it, so any URL makes a safe file name.
pub fn cache_path(dir: &Path, url: &str) -> PathBuf {
    // FNV-1a, 64 bits: not a security boundary (the content is verified), only a name.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in url.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    dir.join(format!("{h:016x}.crl"))
}

/// The URIs of a certificate's CRL Distribution Points (RFC 5280 §4.2.1.13).
pub fn distribution_points(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = super::parse_certificate(der) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
            for point in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                    for name in names {
                        if let GeneralName::URI(uri) = name {
                            out.push((*uri).to_string());
                        }
                    }
                }
            }
        }
    }
    out
}

pub use crate::config::is_ldap_url as is_ldap;

/// The CRL sources of a configuration: (URLs to fetch, other distribution points that cannot
/// be fetched: ldap:// without a `[directory]` section, other schemes).
pub fn sources(tls: &TlsConfig) -> (Vec<String>, Vec<String>) {
    let mut fetch: Vec<String> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for u in tls.crl_url.urls() {
        if !fetch.contains(&u) {
            fetch.push(u);
        }
    }
    if tls.crl_from_certificates {
        let (certs, _) = configured_cas(tls);
        for cert in &certs {
            for u in distribution_points(cert.as_ref()) {
                let http = u
                    .get(..7)
                    .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
                if http || (tls.crl_ldap && is_ldap(&u)) {
                    if !fetch.contains(&u) {
                        fetch.push(u);
                    }
                } else if !skipped.contains(&u) {
                    skipped.push(u);
                }
            }
        }
    }
    (fetch, skipped)
}

/// The cache files of the sources in force, and the cache directory itself: a source learned
/// later (a CDP of an intermediate first seen in a chain) adds a file there, which changes the
/// directory's modification time.
pub fn cache_files(tls: &TlsConfig) -> Vec<PathBuf> {
    let Some(dir) = &tls.crl_cache_dir else {
        return Vec::new();
    };
    let urls = sources(tls).0;
    if urls.is_empty() && !tls.crl_from_certificates {
        return Vec::new();
    }
    let mut files: Vec<PathBuf> = urls.iter().map(|u| cache_path(dir, u)).collect();
    files.push(dir.clone());
    files
}

/// The cached CRLs of the sources in force, each verified again (a cache file that no longer
/// verifies, say after a CA change, is left out with a warning). A source not fetched yet has no
/// file: nothing to load.
pub fn load_cached(tls: &TlsConfig) -> Vec<LoadedCrl> {
    let Some(dir) = &tls.crl_cache_dir else {
        return Vec::new();
    };
    let (urls, _) = sources(tls);
    if urls.is_empty() {
        return Vec::new();
    }
    let (_, cas) = configured_cas(tls);
    let mut out = Vec::new();
    for url in urls {
        let path = cache_path(dir, &url);
        let Ok(body) = std::fs::read(&path) else {
            continue;
        };
        match verify_body(&body, &cas, &path) {
            Ok(crls) => out.extend(crls),
            Err(e) => warn!(
                url = %Escaped::str(&url),
                file = %path.display(),
                "cached CRL left out: {}",
                e.message
            ),
        }
    }
    out
}

/// When to fetch again after a good fetch at `now`: after `refresh`, and at the latest when a
/// tenth of a CRL's validity (thisUpdate..nextUpdate) is left, but not sooner than `floor`
/// from now (a CRL already in its last tenth is not fetched in a loop).
pub fn next_fetch(
    now: SystemTime,
    refresh: Duration,
    crls: &[LoadedCrl],
    floor: Duration,
) -> SystemTime {
    let mut due = now + refresh;
    for c in crls {
        if let (Some(this), Some(next)) = (c.this_update, c.next_update)
            && let Ok(validity) = next.duration_since(this)
        {
            let at = next.checked_sub(validity / 10).unwrap_or(next);
            if at < due {
                due = at;
            }
        }
    }
    due.max(now + floor.min(refresh))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crl(this: u64, next: u64) -> LoadedCrl {
        LoadedCrl {
            der: rustls::pki_types::CertificateRevocationListDer::from(Vec::new()),
            file: PathBuf::new(),
            issuer: String::new(),
            revoked: 0,
            this_update: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(this)),
            next_update: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(next)),
        }
    }

    #[test]
    fn refetch_at_the_latest_with_a_tenth_left() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let hour = Duration::from_secs(3600);
        let floor = Duration::from_secs(30);
        assert_eq!(next_fetch(now, hour, &[], floor), now + hour);
        // Valid 0..2000: a tenth left at 1800.
        assert_eq!(
            next_fetch(now, hour, &[crl(0, 2000)], floor),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1800)
        );
        // Already in its last tenth: not before the floor.
        assert_eq!(next_fetch(now, hour, &[crl(0, 1050)], floor), now + floor);
    }

    #[test]
    fn validators_keep_what_can_be_sent_back_verbatim() {
        let v =
            Validators::from_headers(Some(b"\"5f3a-1c\""), Some(b"Sun, 06 Dec 2026 04:00:00 GMT"));
        assert_eq!(v.etag.as_deref(), Some("\"5f3a-1c\""));
        assert_eq!(
            v.last_modified.as_deref(),
            Some("Sun, 06 Dec 2026 04:00:00 GMT")
        );
        assert!(v.any());
        // Control characters, non-ASCII, empty or oversized values are not kept.
        let long = vec![b'a'; MAX_VALIDATOR_LEN + 1];
        let v = Validators::from_headers(Some(b"\"a\r\nb\""), Some(&long));
        assert_eq!(v, Validators::default());
        assert!(!v.any());
        assert_eq!(
            Validators::from_headers(Some(b""), Some("caf\u{e9}".as_bytes())),
            Validators::default()
        );
    }

    #[test]
    fn garbage_and_html_are_invalid() {
        let r = verify_body(b"<html>nope</html>", &[], Path::new("x"));
        assert_eq!(
            r.map(|_| ()).map_err(|e| e.result),
            Err(FetchResult::Invalid)
        );
        let r = verify_body(b"", &[], Path::new("x"));
        assert_eq!(
            r.map(|_| ()).map_err(|e| e.result),
            Err(FetchResult::Invalid)
        );
    }

    #[test]
    fn cache_names_are_stable_and_safe() {
        let a = cache_path(Path::new("/s"), "http://pki.example.org/a.crl");
        assert_eq!(
            a,
            cache_path(Path::new("/s"), "http://pki.example.org/a.crl")
        );
        assert_ne!(
            a,
            cache_path(Path::new("/s"), "http://pki.example.org/b.crl")
        );
        assert!(a.to_string_lossy().ends_with(".crl"));
    }
}
