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
use crate::config::DirectoryConfig;
use crate::config::directory::OnUnavailable;
use crate::core::Core;
use crate::core::guard::lock;
use crate::core::stats::Counter;
use crate::directory::client::{self, Outcome};
use crate::directory::filter::{self, FilterError};
use crate::directory::service::{Service, Source};
use crate::session::{DirectoryLookup, DirectoryVerdict};

/// The cache with the section it was made for.
type Current = Option<(DirectoryConfig, Arc<Service>)>;

#[derive(Default)]
pub struct DirectoryClient {
    service: Mutex<Current>,
}

impl DirectoryClient {
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
        let snapshot = core.snapshot();
        let (Some(settings), Some(config)) = (&snapshot.directory, &snapshot.config.directory)
        else {
            // A reload removed the section while this conversation was on its way.
            return DirectoryVerdict::Unavailable("[directory] is no longer configured".into());
        };
        let built = match settings.filter_for(&lookup.facts) {
            Ok(b) => b,
            Err(FilterError::Missing(field)) => {
                core.stats.incr(Counter::DirectoryNotFound);
                return DirectoryVerdict::NotFound(format!(
                    "the certificate has no {field} for user_filter: no search sent"
                ));
            }
        };
        if built.truncated {
            warn!(
                "directory: a certificate field has more than {} values; the first {} are searched",
                filter::MAX_VALUES,
                filter::MAX_VALUES
            );
        }
        let service = self.service(config);
        let started = monotonic_clock();
        let search_settings = settings.clone();
        let search_filter = built.filter.clone();
        let (answer, source) = service
            .lookup(&built.filter, || async move {
                client::search(&search_settings, &search_filter).await
            })
            .await;
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
            Ok(Outcome::Found { groups, .. }) => DirectoryVerdict::Found { groups },
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
