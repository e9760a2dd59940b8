//! The one reload: SIGHUP and every file watcher (EAP certificate, key, CAs, CRLs, ticket keys;
//! RadSec certificate, key, CAs, CRLs) build one whole configuration [`Snapshot`] and put it in
//! force with one swap ([`Core::install`]).
//!
//! - **SIGHUP** re-reads the configuration file and every file it names.
//! - **A watched file changed on disk** (polled every 2 s, so a change takes effect within 5 s;
//!   certificates, keys, CRLs, ticket keys and the MAB allow file)
//!   rebuilds from the configuration in force, re-reading every file it names: a CRL publisher
//!   replacing a CRL needs no signal, and an edit of the configuration file waits for SIGHUP.
//!
//! Everything is read, parsed and checked first ([`build`]); only when all of it is good is it
//! put in force, so a broken file leaves the running configuration untouched, and the log names
//! the key or file that is wrong. Success and refusal are logged and counted the same way
//! whatever triggered the reload (`config_reloads`, `config_reload_failed`). After a reload the
//! live sessions are checked against the new CRLs (Disconnect on revocation, RFC 5176). The
//! sockets stay open throughout, so no datagram is lost; settings that only take effect at start
//! (`server.listen`, `[radsec] listen`, `[tcp] listen`, ...) are logged as needing a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

use super::{coa, notify, status_line, wall_clock};
use crate::authz::Checked;
use crate::authz::rules::RulePolicy;
use crate::config::Config;
use crate::core::stats::Counter;
use crate::core::{Core, Snapshot};
use crate::radius::dictionary::Dictionary;
use crate::x509::crl::{self, Fingerprint};

/// A configuration read and checked in full, ready to be put in force.
pub struct Loaded {
    pub config: Config,
    pub tls: crate::tls::TlsSetup,
    pub dictionary: Dictionary,
    pub policy: Checked<RulePolicy>,
    /// The MAB allow list; None: `[mab]` is off.
    pub mab: Option<Arc<crate::mab::AllowList>>,
    /// `[directory]` with its password and CA files read; None: off.
    pub directory: Option<Arc<crate::directory::client::Settings>>,
}

/// Reads and validates the EAP side of a configuration and every file it names. `previous`: the
/// TLS setup in force, whose session cache (and ticket keys, unless a key file is configured)
/// carry over.
pub fn load_parts(
    config: Config,
    previous: Option<&crate::tls::TlsSetup>,
) -> Result<Loaded, String> {
    let nas: Vec<crate::tls::NasTls> = config.clients.iter().map(crate::tls::NasTls::of).collect();
    let tls = match previous {
        Some(p) => crate::tls::rebuild_for(&config.tls, &nas, p),
        None => crate::tls::server_config_for(&config.tls, &nas),
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
    let mab = super::mab::load(&config.mab)?;
    let directory = match &config.directory {
        Some(d) => Some(Arc::new(crate::directory::client::Settings::from_config(
            d,
        )?)),
        None => None,
    };
    Ok(Loaded {
        config,
        tls,
        dictionary,
        policy,
        mab,
        directory,
    })
}

/// Reads the configuration file and validates it with every file it names.
pub fn load(
    path: Option<&Path>,
    previous: Option<&crate::tls::TlsSetup>,
) -> Result<Loaded, String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    load_parts(config, previous)
}

/// Builds a whole snapshot from a configuration: the EAP side ([`load_parts`]), the RadSec TLS
/// configuration, the CRLs and the certificate inventory. `core`: the core in force, whose
/// client identities, learned state and reassembly budget carry over (None at start).
pub fn build(config: Config, core: Option<&Core>) -> Result<Snapshot, String> {
    let previous = core.map(Core::tls_setup);
    let loaded = load_parts(config, previous.as_ref())?;
    snapshot_of(loaded, core)
}

/// The snapshot of a configuration already loaded.
pub fn snapshot_of(loaded: Loaded, core: Option<&Core>) -> Result<Snapshot, String> {
    let Loaded {
        config,
        tls,
        dictionary,
        policy,
        mab,
        directory,
    } = loaded;
    let radsec = if config.radsec.listen.is_empty() {
        None
    } else {
        Some(Arc::new(
            super::radsec::tls_config(&config.radsec).map_err(|e| e.to_string())?,
        ))
    };
    let crls = crl::load_all(&config.tls).map_err(|e| e.to_string())?;
    let mut inventory = crate::x509::inventory::read(&config.tls);
    crate::x509::inventory::read_radsec(&config.radsec, &mut inventory);
    let policy: Arc<dyn crate::authz::Policy> = Arc::new(policy);
    let (clients, cx) = match core {
        Some(core) => core.next_parts(&config, tls, policy),
        None => (
            crate::core::clients::Clients::new(&config.clients),
            crate::core::snapshot::session_context(&config, tls, policy, None),
        ),
    };
    Ok(Snapshot {
        config: Arc::new(config),
        clients: Arc::new(clients),
        cx: Arc::new(cx),
        dictionary: Arc::new(dictionary),
        radsec,
        crls: Arc::new(crls),
        inventory: Arc::new(inventory),
        mab,
        directory,
        generation: 0,
    })
}

/// Settings read only at start: a change is logged, not applied.
fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let checks: [(&'static str, bool); 16] = [
        ("server.listen", old.server.listen != new.server.listen),
        ("server.threads", old.server.threads != new.server.threads),
        (
            "server.max_in_flight",
            old.server.max_in_flight != new.server.max_in_flight,
        ),
        (
            "server.state_file",
            old.server.state_file != new.server.state_file,
        ),
        (
            "server.duplicate_cache_*",
            old.server.duplicate_cache_entries != new.server.duplicate_cache_entries
                || old.server.duplicate_cache_secs != new.server.duplicate_cache_secs,
        ),
        (
            "server.bad_packet_rate_per_source",
            old.server.bad_packet_rate_per_source != new.server.bad_packet_rate_per_source,
        ),
        (
            "server.max_queue_wait_ms",
            old.server.max_queue_wait_ms != new.server.max_queue_wait_ms,
        ),
        (
            "eap.max_sessions",
            old.eap.max_sessions != new.eap.max_sessions,
        ),
        ("metrics.listen", old.metrics != new.metrics),
        ("health.listen", old.health != new.health),
        (
            "eap.max_reassembly_bytes_total",
            old.eap.max_reassembly_bytes_total != new.eap.max_reassembly_bytes_total,
        ),
        ("accounting.*", old.accounting != new.accounting),
        ("coa.*", old.coa != new.coa),
        ("audit.*", old.audit != new.audit),
        ("radsec.listen", old.radsec.listen != new.radsec.listen),
        ("tcp.listen", old.tcp.listen != new.tcp.listen),
    ];
    checks
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(key, _)| key)
        .collect()
}

/// What triggered a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP: the configuration file is read again.
    Signal,
    /// A certificate, key or CRL file named by the configuration changed on disk.
    FilesChanged,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "SIGHUP",
            Trigger::FilesChanged => "files changed on disk",
        }
    }
}

/// Reloads, whatever asks for it.
pub struct Reloader {
    core: Arc<Core>,
    path: Option<PathBuf>,
    coa: Arc<coa::Coa>,
    /// The watched files as they were when the server started serving: taken here, not when
    /// the task first runs, so a change made once requests are answered is never missed.
    initial: Fingerprint,
}

impl Reloader {
    pub fn new(core: Arc<Core>, path: Option<&Path>, coa: Arc<coa::Coa>) -> Arc<Reloader> {
        let mut reloader = Reloader {
            core,
            path: path.map(Path::to_path_buf),
            coa,
            initial: Fingerprint::default(),
        };
        reloader.initial = crl::fingerprint(&reloader.watched());
        Arc::new(reloader)
    }

    /// Builds a new snapshot and puts it in force, or keeps the running one and says why not.
    /// Returns whether the new configuration is in force.
    pub fn reload(&self, trigger: Trigger) -> bool {
        let why = trigger.as_str();
        let current = self.core.snapshot();
        let config = match trigger {
            Trigger::Signal => Config::load(self.path.as_deref()).map_err(|e| e.to_string()),
            Trigger::FilesChanged => Ok((*current.config).clone()),
        };
        let built = config.and_then(|c| build(c, Some(&self.core)));
        let snapshot = match built {
            Ok(s) => s,
            Err(e) => {
                self.core.stats.incr(Counter::ConfigReloadFailed);
                error!("{why}: configuration reload refused, the running configuration stays: {e}");
                return false;
            }
        };
        for key in restart_needed(&current.config, &snapshot.config) {
            warn!("{why}: {key} changed: it takes effect only after a restart");
        }
        let (clients, crls) = (snapshot.clients.len(), snapshot.crls.len());
        let revoked: usize = snapshot.crls.iter().map(|c| c.revoked).sum();
        super::rollover::warn_on_reload(&current.cx.tls, &snapshot.cx.tls);
        super::rollover::record(&snapshot.config, &snapshot.cx.tls);
        self.core.install(snapshot);
        self.core.stats.incr(Counter::ConfigReloads);
        info!(
            clients,
            crls,
            revoked,
            "{why}: configuration reloaded (new conversations use it; those in progress finish on the previous one)"
        );
        let now = self.core.snapshot();
        crl::report_freshness(&now.crls, &now.config.tls, wall_clock());
        self.coa.check_crls(&now.crls);
        true
    }

    /// The files whose change triggers a reload: those of the configuration in force.
    fn watched(&self) -> Vec<PathBuf> {
        let snapshot = self.core.snapshot();
        let mut files = crl::watched_files(&snapshot.config.tls);
        files.extend(super::radsec::watched_files(&snapshot.config.radsec));
        files.extend(super::mab::watched_files(&snapshot.config.mab));
        files
    }

    /// Reloads on SIGHUP (`signal`) and when a watched file changes, until `shutdown`. Files
    /// are polled every 2 s rather than watched with inotify: it works the same on every
    /// filesystem and for files replaced by rename, which is how CRL publishers write them.
    pub async fn run(self: Arc<Self>, signal: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let mut files = self.watched();
        let mut seen = self.initial.clone();
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        let mut n: u64 = 0;
        loop {
            let trigger = tokio::select! {
                _ = tick.tick() => {
                    n += 1;
                    if changed(&files, &mut seen) {
                        Trigger::FilesChanged
                    } else {
                        if n.is_multiple_of(1800) {
                            let s = self.core.snapshot();
                            crl::report_freshness(&s.crls, &s.config.tls, wall_clock());
                        }
                        continue;
                    }
                }
                _ = signal.notified() => Trigger::Signal,
                _ = shutdown.changed() => return,
            };
            self.reload(trigger);
            // What the configuration in force names, as it is now (a refused reload is not
            // retried until a file changes again).
            files = self.watched();
            // A file that changed while the reload was reading (a CRL fetched a moment later)
            // must still count as a change: files already watched keep the fingerprint seen
            // when the reload was triggered, only new ones are taken as they are now.
            let before = std::mem::take(&mut seen);
            seen = crl::fingerprint(&files)
                .into_iter()
                .map(
                    |(path, now)| match before.iter().find(|(p, _)| *p == path) {
                        Some((_, then)) => (path, *then),
                        None => (path, now),
                    },
                )
                .collect();
            if trigger == Trigger::Signal {
                notify::ready(&status_line(&self.core, "reloaded"));
            }
        }
    }
}

/// Whether the files' fingerprint moved since `seen` (which is updated).
fn changed(files: &[PathBuf], seen: &mut Fingerprint) -> bool {
    let now = crl::fingerprint(files);
    if now == *seen {
        return false;
    }
    *seen = now;
    true
}
