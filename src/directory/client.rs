//! The LDAP lookup (RFC 4511): bind with the service account, search the account, check it is
//! enabled, read its groups.
//!
//! Runs on the tokio runtime, never on a worker: the caller awaits it while other
//! authentications go on. Every operation on every URL is bounded by `timeout_ms` (RFC 4511
//! has no time limit of its own that a silent server would honour), so a lookup ends within
//! `timeout_ms` × URLs. TLS (LDAPS, or StartTLS per RFC 4511 §4.14) goes through rustls with
//! the server's crypto provider, never OpenSSL.
//!
//! Connections are pooled: one per URL, bound once as the service account and shared by every
//! lookup (ldap3 multiplexes operations on one connection, RFC 4511 §4.1.1 message IDs). A
//! connection that fails an operation is dropped, and the next lookup connects and binds anew
//! (re-bind on error); a reused connection that failed otherwise than by a timeout (closed by
//! the directory while idle) is replaced at once and the search retried on it, so an idle
//! timeout on the directory's side costs no failover.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope};

use super::entry::{Entry, OBJECT_SID, parse_entry};
use super::filter::{self, FilterError, FilterFacts};
use crate::config::DirectoryConfig;
use crate::config::Secret;

/// The most group values kept from one entry: a huge `memberOf` stays bounded in memory.
pub const MAX_GROUPS: usize = 16384;

/// What the directory said about an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exactly one entry, enabled; `sid`: its `objectSid` in string form, when read (SID
    /// binding on) and present.
    Found {
        dn: String,
        groups: Arc<[String]>,
        sid: Option<String>,
    },
    /// No entry, several (`count`), or the certificate lacks a field the filter names
    /// (`missing`, no search sent).
    NotFound {
        count: usize,
        missing: Option<&'static str>,
    },
    /// The entry does not match `enabled_filter`.
    Disabled { dn: String },
}

/// Everything the lookup needs, read once from `[directory]` (and re-read on SIGHUP).
#[derive(Clone)]
pub struct Settings {
    urls: Vec<String>,
    start_tls: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
    bind: Option<(String, Secret)>,
    base_dn: String,
    user_filter: String,
    machine_filter: Option<String>,
    enabled_filter: Option<String>,
    group_attribute: String,
    timeout: Duration,
    /// `objectSid` is read (`sid_binding` is not off).
    read_sid: bool,
    /// Nested groups through LDAP_MATCHING_RULE_IN_CHAIN (the Active Directory preset).
    nested_groups: bool,
    /// The bound connections, one slot per URL (shared by clones; a reload makes a new one).
    pool: Arc<Pool>,
}

/// Lookups in flight on one URL's connection at most. Directories run a few operations of a
/// connection at once and defer the rest (slapd: half its threads; AD: MaxActiveQueries), so
/// more in flight only queue inside the directory, where `timeout_ms` runs for them all and one
/// timeout would take the whole connection down with it. Beyond this they queue here, and
/// `timeout_ms` runs only from the moment the directory has the search.
pub const MAX_IN_FLIGHT_PER_URL: usize = 8;

/// The longest a lookup queues for one of those places (a storm of distinct identities with a
/// cold cache): about what a NAS waits for an answer before it gives up (RFC 5080 §2.2.1,
/// typically 3 tries of 3 s). Past it the URL counts as failed for this lookup.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(10);

/// One bound connection per URL.
#[derive(Default)]
struct Pool {
    slots: Vec<tokio::sync::Mutex<Option<Pooled>>>,
    /// Places for lookups in flight, per URL.
    places: Vec<tokio::sync::Semaphore>,
    /// Lookups answered, per URL: a timeout while others were answered on the same connection
    /// is a slow directory, not a dead connection, and does not drop it.
    answered: Vec<std::sync::atomic::AtomicU64>,
    /// Numbers the connections, so a failed one is dropped only if it is still the pooled one.
    next_id: std::sync::atomic::AtomicU64,
}

/// A connection bound as the service account, and the task driving it.
struct Pooled {
    ldap: ldap3::Ldap,
    drive: tokio::task::JoinHandle<()>,
    id: u64,
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // Closes the connection now, not when the last handle happens to go.
        self.drive.abort();
    }
}

/// An operation failed: why, and whether by `timeout_ms` (a silent directory: no retry).
struct OpError {
    message: String,
    timed_out: bool,
}

impl OpError {
    fn ldap(what: &str, e: &ldap3::LdapError) -> OpError {
        OpError {
            message: format!("{what}: {e}"),
            timed_out: matches!(e, ldap3::LdapError::Timeout { .. }),
        }
    }
}

impl From<String> for OpError {
    fn from(message: String) -> Self {
        OpError {
            message,
            timed_out: false,
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The bind password stays out (Secret's Debug redacts it anyway).
        f.debug_struct("Settings")
            .field("urls", &self.urls)
            .field("base_dn", &self.base_dn)
            .field("user_filter", &self.user_filter)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Reads the password file and the CA file. Errors name the key, never the password.
    pub fn from_config(cfg: &DirectoryConfig) -> Result<Self, String> {
        let bind = match (&cfg.bind_dn, &cfg.bind_password_file) {
            (Some(dn), Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("directory.bind_password_file {}: {e}", path.display()))?;
                let first = text.lines().next().unwrap_or("").to_string();
                Some((dn.clone(), Secret::new(first)))
            }
            _ => None,
        };
        let tls = match &cfg.ca_file {
            Some(path) => Some(tls_config(path)?),
            None => None,
        };
        Ok(Settings {
            urls: cfg.url.list(),
            start_tls: cfg.start_tls,
            tls,
            bind,
            base_dn: cfg.base_dn.clone(),
            user_filter: cfg.effective_user_filter().unwrap_or("").to_string(),
            machine_filter: cfg.machine_filter().map(str::to_string),
            enabled_filter: cfg.effective_enabled_filter().map(str::to_string),
            group_attribute: cfg.effective_group_attribute().to_string(),
            timeout: Duration::from_millis(cfg.timeout_ms),
            read_sid: cfg.effective_sid_binding() != crate::config::directory::SidBinding::Off,
            nested_groups: cfg.nested_groups(),
            pool: Arc::new(Pool {
                slots: cfg
                    .url
                    .list()
                    .iter()
                    .map(|_| tokio::sync::Mutex::new(None))
                    .collect(),
                places: cfg
                    .url
                    .list()
                    .iter()
                    .map(|_| tokio::sync::Semaphore::new(MAX_IN_FLIGHT_PER_URL))
                    .collect(),
                answered: cfg
                    .url
                    .list()
                    .iter()
                    .map(|_| std::sync::atomic::AtomicU64::new(0))
                    .collect(),
                next_id: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The filter for these facts: the user filter, or the preset's machine filter for a
    /// `host/` identity or a certificate without the user filter's field.
    pub fn filter_for(&self, facts: &FilterFacts) -> Result<filter::Built, FilterError> {
        let machine = facts
            .identity
            .as_deref()
            .is_some_and(|i| i.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("host/")));
        match (&self.machine_filter, machine) {
            (Some(m), true) => filter::build(m, facts),
            (Some(m), false) => {
                filter::build(&self.user_filter, facts).or_else(|_| filter::build(m, facts))
            }
            (None, _) => filter::build(&self.user_filter, facts),
        }
    }
}

pub(crate) fn tls_config(path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = crate::tls::provider();
    let mut roots = rustls::RootCertStore::empty();
    let certs =
        crate::x509::pem::load_certs("directory.ca_file", path).map_err(|e| e.to_string())?;
    for c in certs {
        roots
            .add(c)
            .map_err(|e| format!("directory.ca_file {}: {e}", path.display()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Why a lookup failed on every URL: one line per URL, for the log and `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One lookup: each URL in turn until one answers. A filter that needs a field the
/// certificate lacks is `NotFound` with no connection made.
pub async fn lookup(settings: &Settings, facts: &FilterFacts) -> Result<Outcome, Unavailable> {
    let built = match settings.filter_for(facts) {
        Ok(b) => b,
        Err(FilterError::Missing(field)) => {
            return Ok(Outcome::NotFound {
                count: 0,
                missing: Some(field),
            });
        }
    };
    if built.truncated {
        tracing::warn!(
            "directory: a certificate field has more than {} values; the first ones are searched",
            filter::MAX_VALUES
        );
    }
    search(settings, &built.filter).await
}

/// The search for an already built filter (the cache key of [`super::service`]), each URL in
/// turn until one answers.
pub async fn search(settings: &Settings, filter: &str) -> Result<Outcome, Unavailable> {
    let mut errors = Vec::new();
    for (i, url) in settings.urls.iter().enumerate() {
        // In a task of its own: a panic inside the LDAP client (its BER decoding is not ours)
        // fails this URL instead of unwinding into the caller.
        let s = settings.clone();
        let u = url.clone();
        let f = filter.to_string();
        match tokio::spawn(async move { on_url(&s, i, &u, &f).await }).await {
            Ok(Ok(outcome)) => return Ok(outcome),
            Ok(Err(e)) => errors.push(format!("{url}: {e}")),
            Err(_) => errors.push(format!("{url}: malformed answer")),
        }
    }
    Err(Unavailable(errors.join("; ")))
}

/// Whether the directory can be used now (readiness): a connection and the service account's
/// bind on some URL, each step bounded by `timeout_ms`. Err: why every URL failed.
pub async fn probe(settings: &Settings) -> Result<(), Unavailable> {
    let mut errors = Vec::new();
    for url in &settings.urls {
        let s = settings.clone();
        let u = url.clone();
        let probe = tokio::spawn(async move {
            let (mut ldap, drive) = connect(&s, &u).await?;
            let result = bind(&mut ldap, &s).await;
            let _ = tokio::time::timeout(s.timeout, ldap.unbind()).await;
            drive.abort();
            result
        });
        match probe.await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => errors.push(format!("{url}: {e}")),
            Err(_) => errors.push(format!("{url}: malformed answer")),
        }
    }
    Err(Unavailable(errors.join("; ")))
}

/// A connection to `url` (LDAPS, or StartTLS when configured) and the task driving it.
async fn connect(
    s: &Settings,
    url: &str,
) -> Result<(ldap3::Ldap, tokio::task::JoinHandle<()>), String> {
    let mut conn = LdapConnSettings::new()
        .set_conn_timeout(s.timeout)
        .set_starttls(s.start_tls && url.starts_with("ldap://"));
    if let Some(tls) = &s.tls {
        conn = conn.set_config(tls.clone());
    }
    let (driver, ldap) = tokio::time::timeout(s.timeout, LdapConnAsync::with_settings(conn, url))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let drive = tokio::spawn(async move {
        if let Err(e) = driver.drive().await {
            tracing::debug!("directory: connection ended: {e}");
        }
    });
    Ok((ldap, drive))
}

/// The service account's simple bind (RFC 4511 §4.2), when one is configured.
async fn bind(ldap: &mut ldap3::Ldap, s: &Settings) -> Result<(), String> {
    let Some((dn, password)) = &s.bind else {
        return Ok(());
    };
    let res = ldap
        .with_timeout(s.timeout)
        .simple_bind(dn, password.expose())
        .await
        .map_err(|e| format!("bind: {e}"))?;
    if res.rc != 0 {
        return Err(format!(
            "bind as {dn} refused: {} (result code {})",
            rc_name(res.rc),
            res.rc
        ));
    }
    Ok(())
}

/// The search on one URL, on its pooled connection (made and bound when there is none).
async fn on_url(s: &Settings, i: usize, url: &str, user_filter: &str) -> Result<Outcome, String> {
    let (Some(places), Some(answered)) = (s.pool.places.get(i), s.pool.answered.get(i)) else {
        return Err("no connection slot for this URL".to_string());
    };
    let _place = tokio::time::timeout(MAX_QUEUE_WAIT, places.acquire())
        .await
        .map_err(|_| {
            format!(
                "queued {} s behind {MAX_IN_FLIGHT_PER_URL} lookups in flight",
                MAX_QUEUE_WAIT.as_secs()
            )
        })?
        .map_err(|_| "connection slot closed".to_string())?;
    let answered_before = answered.load(std::sync::atomic::Ordering::Relaxed);
    let (mut ldap, id, reused) = pooled(s, i, url).await?;
    match session(&mut ldap, s, user_filter).await {
        Ok(outcome) => {
            answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(outcome)
        }
        Err(e) => {
            let alive = e.timed_out
                && answered.load(std::sync::atomic::Ordering::Relaxed) != answered_before;
            if !alive {
                discard(s, i, id);
            }
            if !reused || e.timed_out {
                return Err(e.message);
            }
            // Most likely closed by the directory while idle: once more on a fresh connection.
            let (mut ldap, id, _) = pooled(s, i, url).await?;
            match session(&mut ldap, s, user_filter).await {
                Ok(outcome) => {
                    answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Ok(outcome)
                }
                Err(e) => {
                    discard(s, i, id);
                    Err(e.message)
                }
            }
        }
    }
}

/// The pooled connection of URL `i`: (a handle on it, its number, whether it was reused).
/// Lookups arriving while it is being made wait for it (at most `timeout_ms`) rather than
/// each opening their own.
async fn pooled(s: &Settings, i: usize, url: &str) -> Result<(ldap3::Ldap, u64, bool), String> {
    let Some(slot) = s.pool.slots.get(i) else {
        return Err("no connection slot for this URL".to_string());
    };
    let mut guard = tokio::time::timeout(s.timeout, slot.lock())
        .await
        .map_err(|_| "timed out waiting for the connection being made".to_string())?;
    if let Some(p) = guard.as_mut()
        && !p.ldap.is_closed()
    {
        return Ok((p.ldap.clone(), p.id, true));
    }
    *guard = None;
    let (ldap, drive) = connect(s, url).await?;
    let id = s
        .pool
        .next_id
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let conn = Pooled { ldap, drive, id };
    // Bound once here; every later search on this connection runs as the service account.
    bind(&mut conn.ldap.clone(), s).await?;
    let handle = conn.ldap.clone();
    *guard = Some(conn);
    Ok((handle, id, false))
}

/// Drops connection `id` of URL `i` if it is still the pooled one: the next lookup connects
/// and binds again. (A slot being refilled right now is left to the one refilling it.)
fn discard(s: &Settings, i: usize, id: u64) {
    if let Some(slot) = s.pool.slots.get(i)
        && let Ok(mut guard) = slot.try_lock()
        && guard.as_ref().is_some_and(|p| p.id == id)
    {
        *guard = None;
    }
}

async fn session(
    ldap: &mut ldap3::Ldap,
    s: &Settings,
    user_filter: &str,
) -> Result<Outcome, OpError> {
    let mut attributes = vec![s.group_attribute.as_str()];
    if s.read_sid {
        attributes.push(OBJECT_SID);
    }
    let (entries, _) = ldap
        .with_timeout(s.timeout)
        .search(&s.base_dn, Scope::Subtree, user_filter, attributes)
        .await
        .map_err(|e| OpError::ldap("search", &e))?
        .non_error()
        .map_err(|e| OpError::ldap("search", &e))?;
    if entries.len() != 1 {
        return Ok(Outcome::NotFound {
            count: entries.len(),
            missing: None,
        });
    }
    let Some(raw) = entries.into_iter().next() else {
        return Ok(Outcome::NotFound {
            count: 0,
            missing: None,
        });
    };
    let Some(Entry {
        dn,
        mut groups,
        sid,
    }) = parse_entry(raw, &s.group_attribute)
    else {
        return Err(OpError::from(
            "search: malformed entry in the answer".to_string(),
        ));
    };
    if let Some(enabled) = &s.enabled_filter {
        // A second, base-scope search on the entry itself: unlike one `(&(user)(enabled))`
        // search it tells a disabled account from an absent one (two distinct reasons).
        let (hits, _) = ldap
            .with_timeout(s.timeout)
            .search(&dn, Scope::Base, enabled, vec!["1.1"])
            .await
            .map_err(|e| OpError::ldap("search", &e))?
            .non_error()
            .map_err(|e| OpError::ldap("search", &e))?;
        if hits.is_empty() {
            return Ok(Outcome::Disabled { dn });
        }
    }
    if s.nested_groups {
        nested(ldap, s, &dn, &mut groups).await?;
    }
    Ok(Outcome::Found {
        dn,
        groups: groups.into(),
        sid,
    })
}

/// Active Directory's nested groups: every group the entry is a member of, directly or
/// through other groups, found with LDAP_MATCHING_RULE_IN_CHAIN
/// (`(member:1.2.840.113556.1.4.1941:=DN)`), added to the direct ones (at most
/// [`MAX_GROUPS`] in all). A directory that does not know the rule (OpenLDAP) answers no
/// entries or an error: the direct groups stand.
async fn nested(
    ldap: &mut ldap3::Ldap,
    s: &Settings,
    dn: &str,
    groups: &mut Vec<String>,
) -> Result<(), OpError> {
    let filter = chain_filter(dn);
    let answer = ldap
        .with_timeout(s.timeout)
        .search(&s.base_dn, Scope::Subtree, &filter, vec!["1.1"])
        .await
        .map_err(|e| OpError::ldap("nested groups search", &e))?;
    let Ok((entries, _)) = answer.success() else {
        tracing::debug!("directory: the nested-group search was refused; direct groups only");
        return Ok(());
    };
    let mut known: std::collections::HashSet<String> = groups
        .iter()
        .map(|g| super::filter::normalize_dn(g))
        .collect();
    for raw in entries {
        if groups.len() >= MAX_GROUPS {
            break;
        }
        if let Some(entry) = parse_entry(raw, "1.1")
            && known.insert(super::filter::normalize_dn(&entry.dn))
        {
            groups.push(entry.dn);
        }
    }
    Ok(())
}

/// The LDAP_MATCHING_RULE_IN_CHAIN filter for the groups `dn` belongs to (RFC 4515 §3
/// extensible match; the DN escaped as any assertion value).
fn chain_filter(dn: &str) -> String {
    format!(
        "(member:{}:={})",
        crate::config::directory::AD_GROUP_CHAIN_RULE,
        super::filter::escape(dn)
    )
}

/// RFC 4511 §4.1.9 result codes an operator meets at bind.
fn rc_name(rc: u32) -> &'static str {
    match rc {
        49 => "invalid credentials",
        50 => "insufficient access rights",
        53 => "unwilling to perform",
        8 => "stronger authentication required (use ldaps:// or start_tls)",
        13 => "confidentiality required (use ldaps:// or start_tls)",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_group_filter() {
        assert_eq!(
            chain_filter("CN=Dave (IT),OU=Users,DC=example,DC=org"),
            "(member:1.2.840.113556.1.4.1941:=CN=Dave \\28IT\\29,OU=Users,DC=example,DC=org)"
        );
    }
}
