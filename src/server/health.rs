//! Health for NAS and orchestrators: `GET /healthz` (the process serves) and `GET /readyz`
//! (200 when this instance can authenticate, 503 with the failing parts named, as JSON
//! `{"ready": false, "failing": ["crl: ...", ...]}`) on `[health] listen`.
//!
//! Ready means: the server certificate is loaded and not past notAfter (RFC 5280 §4.1.2.5),
//! every CRL is within its nextUpdate (RFC 5280 §5.1.2.5) unless `tls.allow_expired_crl`, the
//! files of the configuration could all be read, when `accounting.database_url` is set the
//! accounting database writer holds a connection, and when `[directory]` is configured some URL
//! answers (a connection and the service account's bind, probed every few seconds; a lookup that
//! found every URL failing says so at once). The shell assesses it once a second from
//! the configuration in force and the wall clock, and hands the verdict to the core
//! (`core/readiness.rs`), where `server.when_unready = "silent"` leaves Access-Requests and
//! Status-Server unanswered while not ready (RFC 5997 §4: the NAS then fails over). Each change
//! is logged and counted (`certradius_readiness_changes_total`, gauge `certradius_ready`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use super::http::{Answer, Handler};
use crate::config::WhenUnready;
use crate::core::Core;
use crate::core::stats::Counter;
use crate::x509::inventory::Inventory;

/// How often readiness is assessed: a CRL passing nextUpdate or a file replaced on disk shows
/// within about a second of the reload that noticed it.
const EVERY: Duration = Duration::from_secs(1);

fn rfc3339(unix: i64) -> String {
    let t = u64::try_from(unix)
        .ok()
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        .unwrap_or(UNIX_EPOCH);
    crate::timefmt::rfc3339(t)
}

/// The failing parts, each `"part: why"`; empty when ready. `database`: None when no database
/// is configured, else whether it is reachable. `directory`: why every `[directory]` URL
/// failed, None when it answers or is not configured. `now`: unix seconds.
pub fn assess(
    inventory: &Inventory,
    allow_expired_crl: bool,
    database: Option<bool>,
    directory: Option<&str>,
    now: i64,
) -> Vec<String> {
    let mut failing = Vec::new();
    for e in &inventory.errors {
        failing.push(format!("files: {e}"));
    }
    if !inventory.certificates.iter().any(|c| c.role == "server") {
        failing.push("certificate: no server certificate loaded".to_string());
    }
    // The certificates a peer checks against the clock: supplicants the EAP one, RadSec NAS
    // the RadSec one (RFC 5280 §4.1.2.5). A CA past notAfter is not counted: bundles often
    // keep a retired CA beside its successor.
    for c in inventory
        .certificates
        .iter()
        .filter(|c| c.role == "server" || c.role == "radsec")
    {
        let which = if c.role == "radsec" {
            "the RadSec certificate"
        } else {
            "the server certificate"
        };
        if c.not_after < now {
            failing.push(format!(
                "certificate: {which} {} ({}) expired at {}",
                c.subject,
                c.file,
                rfc3339(c.not_after)
            ));
        } else if c.not_before > now {
            failing.push(format!(
                "certificate: {which} {} ({}) is not valid before {}",
                c.subject,
                c.file,
                rfc3339(c.not_before)
            ));
        }
    }
    for url in &inventory.crl_pending {
        failing.push(format!(
            "crl: {}: no CRL fetched yet (tls.crl_url / tls.crl_from_certificates)",
            crate::escape::Escaped::str(url)
        ));
    }
    if !allow_expired_crl {
        for crl in &inventory.crls {
            if let Some(next) = crl.next_update
                && next < now
            {
                failing.push(format!(
                    "crl: {} ({}) is past its nextUpdate {} (tls.allow_expired_crl = false)",
                    crl.issuer,
                    crl.file,
                    rfc3339(next)
                ));
            }
        }
    }
    if database == Some(false) {
        failing.push(
            "database: the accounting database (accounting.database_url) is not reachable"
                .to_string(),
        );
    }
    if let Some(why) = directory {
        failing.push(format!("directory: every [directory] URL failed: {why}"));
    }
    failing
}

/// Assesses readiness now and hands it to the core; logs and counts a change.
pub fn update(core: &Core, now: SystemTime) {
    let snapshot = core.snapshot();
    let config = &snapshot.config;
    let database = config
        .accounting
        .database_url
        .is_some()
        .then(|| core.readiness.database_up());
    let directory = config
        .directory
        .as_ref()
        .and_then(|_| core.readiness.directory_down());
    let failing = assess(
        &snapshot.inventory,
        config.tls.allow_expired_crl,
        database,
        directory.as_deref(),
        crate::x509::inventory::unix_now(now),
    );
    let silent = config.server.when_unready == WhenUnready::Silent;
    let before = core.readiness.failing();
    let summary = failing.join("; ");
    match core.readiness.set(failing.clone(), silent) {
        Some(true) => {
            core.stats.incr(Counter::ReadinessChanges);
            info!("ready: every check passes again; authenticating");
        }
        Some(false) => {
            core.stats.incr(Counter::ReadinessChanges);
            if silent {
                warn!(
                    "not ready: {summary}; server.when_unready = \"silent\": Access-Requests and \
                     Status-Server go unanswered so the NAS fails over"
                );
            } else {
                warn!("not ready: {summary}");
            }
        }
        None if failing != before && !failing.is_empty() => {
            warn!("still not ready: {summary}");
        }
        None => {}
    }
}

/// How often `[directory]` is probed for readiness.
const DIRECTORY_PROBE: Duration = Duration::from_secs(3);

/// Probes `[directory]` (when configured) every [`DIRECTORY_PROBE`] until `stop`: a connection
/// and the service account's bind on some URL (`directory::client::probe`, bounded by
/// `timeout_ms` × URLs).
fn start_directory_probe(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(DIRECTORY_PROBE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let settings = core.snapshot().directory.clone();
            let down = match settings {
                Some(settings) => crate::directory::client::probe(&settings)
                    .await
                    .err()
                    .map(|e| e.0),
                None => None,
            };
            core.readiness.set_directory_down(down);
        }
    });
}

/// Assesses readiness once now, then every second until `stop`.
pub fn start_monitor(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    start_directory_probe(core.clone(), stop.clone());
    update(&core, super::wall_clock());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => update(&core, super::wall_clock()),
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    });
}

/// `/healthz` and `/readyz`.
fn answer(core: &Core, path: &str) -> Option<Answer> {
    let json = "application/json";
    match path {
        "/healthz" => Some(Answer {
            status: StatusCode::OK,
            content_type: json,
            body: "{\"alive\":true}\n".to_string(),
        }),
        "/readyz" => {
            let failing = core.readiness.failing();
            let ready = failing.is_empty();
            let body = serde_json::json!({ "ready": ready, "failing": failing });
            Some(Answer {
                status: if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                },
                content_type: json,
                body: format!("{body}\n"),
            })
        }
        _ => None,
    }
}

/// Binds `[health] listen` and serves until `shutdown`; returns the bound address.
pub async fn start(
    listen: SocketAddr,
    core: Arc<Core>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    info!("health: serving http://{addr}/healthz and http://{addr}/readyz");
    let handler: Handler = Arc::new(move |path: &str| answer(&core, path));
    tokio::spawn(super::http::serve(listener, handler, "health", shutdown));
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::inventory::{CertExpiry, CrlExpiry};

    fn inventory(not_after: i64, next_update: Option<i64>) -> Inventory {
        Inventory {
            certificates: vec![CertExpiry {
                role: "server",
                subject: "CN=radius".into(),
                file: "server.pem".into(),
                not_before: 0,
                not_after,
            }],
            crls: vec![CrlExpiry {
                issuer: "CN=Issuing CA".into(),
                file: "issuing.crl".into(),
                next_update,
            }],
            errors: Vec::new(),
            crl_pending: Vec::new(),
        }
    }

    #[test]
    fn each_failing_part_is_named() {
        let now = 1_800_000_000;
        assert!(assess(&inventory(now + 10, Some(now + 10)), false, None, None, now).is_empty());
        assert!(assess(&inventory(now + 10, None), false, Some(true), None, now).is_empty());
        let f = assess(
            &inventory(now - 1, Some(now - 1)),
            false,
            Some(false),
            None,
            now,
        );
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(
            f[0].starts_with("certificate: ") && f[0].contains("CN=radius"),
            "{f:?}"
        );
        assert!(
            f[1].starts_with("crl: ") && f[1].contains("CN=Issuing CA"),
            "{f:?}"
        );
        assert!(f[1].contains("2027-01-15T07:59:59"), "{f:?}");
        assert!(f[2].starts_with("database: "), "{f:?}");
        // allow_expired_crl: a stale CRL is allowed, so it is not a failing part.
        let f = assess(&inventory(now + 10, Some(now - 1)), true, None, None, now);
        assert!(f.is_empty(), "{f:?}");
        let mut none = inventory(now + 10, None);
        none.certificates.clear();
        none.errors.push("tls.ca_file: x: gone".into());
        let f = assess(&none, false, None, None, now);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].starts_with("files: ") && f[1].starts_with("certificate: "));
        let f = assess(
            &inventory(now + 10, None),
            false,
            None,
            Some("ldap://127.0.0.1:1: connect: refused"),
            now,
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].starts_with("directory: ") && f[0].contains("refused"),
            "{f:?}"
        );
    }

    #[test]
    fn a_certificate_not_yet_valid_and_an_expired_radsec_one_are_failing() {
        let now = 1_800_000_000;
        let mut inv = inventory(now + 10, None);
        inv.certificates[0].not_before = now + 3600;
        let f = assess(&inv, false, None, None, now);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].contains("server certificate") && f[0].contains("not valid before"));
        let mut inv = inventory(now + 10, None);
        inv.certificates.push(CertExpiry {
            role: "radsec",
            subject: "CN=radsec".into(),
            file: "radsec.pem".into(),
            not_before: 0,
            not_after: now - 1,
        });
        // A retired CA in the bundle does not make the server unready.
        inv.certificates.push(CertExpiry {
            role: "ca",
            subject: "CN=old root".into(),
            file: "ca.pem".into(),
            not_before: 0,
            not_after: now - 1,
        });
        let f = assess(&inv, false, None, None, now);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].contains("RadSec certificate CN=radsec") && f[0].contains("expired"));
    }
}
