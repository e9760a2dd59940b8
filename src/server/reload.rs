//! Reloading the whole configuration file (SIGHUP): clients, server certificate and key, CA
//! files, CRLs, OCSP settings, identity binding, authorization rules, dictionary.
//!
//! Everything is read, parsed and validated first ([`load`]); only when all of it is good is it
//! put in force ([`Core::reload`], each part one atomic pointer swap), so a broken file leaves
//! the running configuration untouched and the log names the key or file that is wrong. The
//! sockets stay open throughout, so no datagram is lost; settings that only take effect at start
//! (`server.listen`, `server.threads`, ...) are logged as needing a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use tracing::{error, info, warn};

use super::OcspClient;
use super::metrics::Metrics;
use crate::authz::Checked;
use crate::authz::rules::RulePolicy;
use crate::config::Config;
use crate::core::Core;
use crate::core::stats::Counter;
use crate::radius::dictionary::Dictionary;

/// A configuration read and checked in full, ready to be put in force.
pub struct Loaded {
    pub config: Config,
    pub tls: crate::tls::TlsSetup,
    pub dictionary: Dictionary,
    pub policy: Checked<RulePolicy>,
}

/// Reads and validates the configuration and every file it names. `previous`: the TLS setup in
/// force, whose session cache (and ticket keys, unless a key file is configured) carry over.
pub fn load(
    path: Option<&Path>,
    previous: Option<&crate::tls::TlsSetup>,
) -> Result<Loaded, String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let tls = match previous {
        Some(p) => crate::tls::rebuild(&config.tls, p),
        None => crate::tls::server_config(&config.tls),
    }
    .map_err(|e| e.to_string())?;
    let dictionary = match &config.server.dictionary {
        Some(p) => Dictionary::load(p).map_err(|e| format!("server.dictionary: {e}"))?,
        None => Dictionary::embedded(),
    };
    let rules = RulePolicy::build(&config.identity, &config.authorize, &dictionary)
        .map_err(|e| e.to_string())?;
    let policy = Checked {
        checks: crate::x509::checks::CertChecks::from_config(&config.tls),
        inner: rules,
    };
    Ok(Loaded {
        config,
        tls,
        dictionary,
        policy,
    })
}

/// Settings read only at start: a change is logged, not applied.
fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if old.server.listen != new.server.listen {
        keys.push("server.listen");
    }
    if old.server.threads != new.server.threads {
        keys.push("server.threads");
    }
    if old.server.max_in_flight != new.server.max_in_flight {
        keys.push("server.max_in_flight");
    }
    if old.server.state_file != new.server.state_file {
        keys.push("server.state_file");
    }
    if old.server.duplicate_cache_entries != new.server.duplicate_cache_entries
        || old.server.duplicate_cache_secs != new.server.duplicate_cache_secs
    {
        keys.push("server.duplicate_cache_*");
    }
    if old.server.bad_packet_rate_per_source != new.server.bad_packet_rate_per_source {
        keys.push("server.bad_packet_rate_per_source");
    }
    if old.eap.max_sessions != new.eap.max_sessions {
        keys.push("eap.max_sessions");
    }
    if old.metrics != new.metrics {
        keys.push("metrics.listen");
    }
    if old.eap.max_reassembly_bytes_total != new.eap.max_reassembly_bytes_total {
        keys.push("eap.max_reassembly_bytes_total");
    }
    if old.accounting != new.accounting {
        keys.push("accounting.*");
    }
    if old.coa != new.coa {
        keys.push("coa.*");
    }
    keys
}

/// What SIGHUP reloads, and where it puts it.
pub struct Reloader {
    core: Arc<Core>,
    path: Option<PathBuf>,
    /// The configuration in force.
    current: Mutex<Config>,
    /// `[ocsp]` lookups, swapped when the OCSP settings change (kept otherwise, with its cache).
    pub ocsp: Arc<ArcSwapOption<OcspClient>>,
    metrics: Option<Arc<Metrics>>,
}

impl Reloader {
    pub fn new(
        core: Arc<Core>,
        path: Option<&Path>,
        config: &Config,
        metrics: Option<Arc<Metrics>>,
    ) -> Arc<Reloader> {
        if let Some(m) = &metrics {
            m.set_inventory(crate::x509::inventory::read(&config.tls));
        }
        Arc::new(Reloader {
            core,
            path: path.map(Path::to_path_buf),
            current: Mutex::new(config.clone()),
            ocsp: Arc::new(ArcSwapOption::new(OcspClient::new(&config.ocsp))),
            metrics,
        })
    }

    /// The `[tls]` section in force (for the CRL file watcher).
    pub fn tls(&self) -> Option<crate::config::TlsConfig> {
        self.current.lock().ok().map(|c| c.tls.clone())
    }

    /// Re-reads the whole configuration file and puts it in force, or keeps the running one
    /// and logs why not. Returns whether the new configuration is in force.
    pub fn reload_all(&self, why: &str) -> bool {
        let previous = self.core.tls_setup();
        let loaded = match load(self.path.as_deref(), previous.as_ref()) {
            Ok(l) => l,
            Err(e) => {
                self.core.stats.incr(Counter::ConfigReloadFailed);
                error!("{why}: configuration reload refused, the running configuration stays: {e}");
                return false;
            }
        };
        let Loaded {
            config,
            tls,
            dictionary,
            policy,
        } = loaded;
        let Ok(mut current) = self.current.lock() else {
            return false;
        };
        for key in restart_needed(&current, &config) {
            warn!("{why}: {key} changed: it takes effect only after a restart");
        }
        let rules = policy.inner.rule_count();
        self.core.reload(&config, tls, Arc::new(policy), dictionary);
        if current.ocsp != config.ocsp {
            self.ocsp.store(OcspClient::new(&config.ocsp));
        }
        let inventory = crate::x509::inventory::read(&config.tls);
        let crls = inventory.crls.len();
        if let Some(m) = &self.metrics {
            m.set_inventory(inventory);
        }
        info!(
            clients = config.clients.len(),
            rules,
            crls,
            "{why}: configuration reloaded (new conversations use it; those in progress finish on the previous one)"
        );
        *current = config;
        self.core.stats.incr(Counter::ConfigReloads);
        true
    }
}
