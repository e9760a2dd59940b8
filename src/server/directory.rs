//! Directory lookups (LDAP, RFC 4511) as the shell performs them for the request driver: the
//! conversation that asked waits in a task of its own, nobody else does. The filter is built
//! from the certificate facts (RFC 4515 escaping, `directory::filter`); the lookup goes through
//! the positive/negative cache with identical searches in flight coalesced
//! (`directory::service`), and each search tries every URL in turn, each operation bounded by
//! `timeout_ms` (`directory::client`).
//!
//! The client is state, not configuration: it lives as long as the server, and each lookup reads
//! the `[directory]` settings of the snapshot in force (SIGHUP re-reads the section, the password
//! and CA files into the next snapshot). The cache is emptied when the section changes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::warn;

use super::monotonic_clock;
use crate::authz::{Decision, Method, RequestInfo};
use crate::config::DirectoryConfig;
use crate::config::directory::OnUnavailable;
use crate::core::Core;
use crate::core::guard::lock;
use crate::core::stats::Counter;
use crate::directory::client::{self, Outcome};
use crate::directory::filter::{self, FilterError, FilterFacts};
use crate::directory::service::{Service, Source};
use crate::live::LiveSession;
use crate::session::{DirectoryLookup, DirectoryVerdict};

/// The cache with the section it was made for.
type Current = Option<(DirectoryConfig, Arc<Service>)>;

#[derive(Default)]
pub struct DirectoryClient {
    service: Mutex<Current>,
    /// When the last warning about a truncated filter was logged (a certificate can carry any
    /// number of values: one warning a minute, not one per authentication).
    warned: Mutex<Option<tokio::time::Instant>>,
}

impl DirectoryClient {
    fn may_warn(&self) -> bool {
        let now = tokio::time::Instant::now();
        let mut last = lock(&self.warned);
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(60)) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// The service for `config`, made anew (cache emptied) when the section changed.
    fn service(&self, config: &DirectoryConfig) -> Arc<Service> {
        let mut current = lock(&self.service);
        if let Some((c, s)) = current.as_ref()
            && c == config
        {
            return s.clone();
        }
        let s = Arc::new(Service::new(
            Duration::from_secs(config.cache_secs),
            Duration::from_secs(config.negative_cache_secs),
            config.on_unavailable == OnUnavailable::AcceptCached,
        ));
        *current = Some((config.clone(), s.clone()));
        s
    }

    /// The directory's verdict on the account `lookup` names. Ends within `timeout_ms` × URLs.
    pub async fn lookup(&self, core: &Core, lookup: &DirectoryLookup) -> DirectoryVerdict {
        self.verdict(core, &lookup.facts, true).await
    }

    /// `cached`: a fresh cached answer may serve (authentication); false: the directory is
    /// asked (revalidation), its answer refreshing the cache.
    async fn verdict(&self, core: &Core, facts: &FilterFacts, cached: bool) -> DirectoryVerdict {
        let snapshot = core.snapshot();
        let (Some(settings), Some(config)) = (&snapshot.directory, &snapshot.config.directory)
        else {
            // A reload removed the section while this conversation was on its way.
            return DirectoryVerdict::Unavailable("[directory] is no longer configured".into());
        };
        let built = match settings.filter_for(facts) {
            Ok(b) => b,
            Err(FilterError::Missing(field)) => {
                core.stats.incr(Counter::DirectoryNotFound);
                return DirectoryVerdict::NotFound(format!(
                    "the certificate has no {field} for user_filter: no search sent"
                ));
            }
        };
        if built.truncated && self.may_warn() {
            warn!(
                "directory: a certificate field has more than {} values; the first {} are searched \
                 (said at most once a minute)",
                filter::MAX_VALUES,
                filter::MAX_VALUES
            );
        }
        let service = self.service(config);
        let started = monotonic_clock();
        let search_settings = settings.clone();
        let search_filter = built.filter.clone();
        let search = || async move { client::search(&search_settings, &search_filter).await };
        let (answer, source) = if cached {
            service.lookup(&built.filter, search).await
        } else {
            service.refresh(&built.filter, search).await
        };
        core.stats
            .directory_duration
            .observe(started.elapsed().as_secs_f64());
        let counter = match (&answer, source) {
            (_, Source::Cache | Source::StaleCache) => Counter::DirectoryCacheHit,
            (Ok(Outcome::Found { .. }), _) => Counter::DirectoryFound,
            (Ok(Outcome::NotFound { .. }), _) => Counter::DirectoryNotFound,
            (Ok(Outcome::Disabled { .. }), _) => Counter::DirectoryDisabled,
            (Err(_), _) => Counter::DirectoryError,
        };
        core.stats.incr(counter);
        // Readiness follows what lookups find, between the probes (`health.rs`).
        match (&answer, source) {
            (Err(e), _) => core.readiness.set_directory_down(Some(e.0.clone())),
            (Ok(_), Source::Directory) => core.readiness.set_directory_down(None),
            _ => {}
        }
        match answer {
            Ok(Outcome::Found { groups, sid, .. }) => DirectoryVerdict::Found { groups, sid },
            Ok(Outcome::NotFound { count, .. }) => DirectoryVerdict::NotFound(format!(
                "{count} entries match user_filter (exactly one must)"
            )),
            Ok(Outcome::Disabled { dn }) => {
                DirectoryVerdict::Disabled(format!("{dn} does not match enabled_filter"))
            }
            Err(e) => DirectoryVerdict::Unavailable(e.0),
        }
    }
}

/// Sessions re-checked at once by `revalidate_secs` (the next batch starts when these ended):
/// a directory is never asked more than this many searches at a time by revalidation.
const REVALIDATE_BATCH: usize = 32;

/// `[directory] revalidate_secs`: every N seconds the live sessions the directory found the
/// account of are looked up again (the directory itself, not the cache), in batches. An account
/// gone or disabled, or whose groups now make the rules refuse it or grant it through another
/// rule, gets a Disconnect-Request (RFC 5176) through the live-session machinery, logged and
/// counted like a Disconnect on revocation. A directory that does not answer disconnects
/// nobody. The period is read from the configuration in force, so SIGHUP changes it.
pub fn spawn_revalidation(
    core: Arc<Core>,
    client: Arc<DirectoryClient>,
    coa: Arc<super::coa::Coa>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let every = core
                .snapshot()
                .config
                .directory
                .as_ref()
                .map_or(0, |d| d.revalidate_secs);
            // Off: look again at the configuration in a while (a reload may turn it on).
            let wait = Duration::from_secs(if every == 0 { 5 } else { every });
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if every == 0 {
                continue;
            }
            let sessions = coa.directory_sessions();
            for batch in sessions.chunks(REVALIDATE_BATCH) {
                let mut checks = tokio::task::JoinSet::new();
                for session in batch {
                    let session = session.clone();
                    let (core, client, coa) = (core.clone(), client.clone(), coa.clone());
                    checks.spawn(async move {
                        if let Some(why) = client.revalidate(&core, &session).await {
                            coa.directory_disconnect(&session, why);
                        }
                    });
                }
                while checks.join_next().await.is_some() {}
            }
        }
    })
}

impl DirectoryClient {
    /// Why the directory no longer allows `session` as it was granted; None: it still does (or
    /// the directory did not answer).
    async fn revalidate(&self, core: &Core, session: &LiveSession) -> Option<&'static str> {
        let link = session.link.as_ref()?;
        let d = link.directory.as_ref()?;
        let groups = match self.verdict(core, &d.facts, false).await {
            DirectoryVerdict::Found { groups, .. } => groups,
            DirectoryVerdict::NotFound(_) => return Some("account gone from the directory"),
            DirectoryVerdict::Disabled(_) => return Some("account disabled in the directory"),
            DirectoryVerdict::Unavailable(_) => return None,
        };
        if *groups == *d.groups {
            return None;
        }
        let request = RequestInfo {
            method: Method::EapTls,
            nas: Some(link.nas_addr),
            user_name: link.user_name.as_deref(),
            calling_station_id: link.calling_station_id.as_deref(),
            called_station_id: d.called_station_id.as_deref(),
            nas_port_type: d.nas_port_type,
            framed_mtu: None,
            directory_groups: Some(&groups),
        };
        let policy = core.snapshot().cx.policy.clone();
        match policy.authorize(&link.identity, &d.peer, &request) {
            Decision::Reject { .. } => {
                Some("directory groups now make the rules refuse the account")
            }
            Decision::Accept(g) if g.rule != d.rule => {
                Some("directory groups now lead to another rule")
            }
            Decision::Accept(_) => None,
        }
    }
}
