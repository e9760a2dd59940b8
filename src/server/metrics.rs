//! The Prometheus endpoint: `GET /metrics` on `[metrics] listen`, in the Prometheus text
//! exposition format (version 0.0.4), encoded by the `prometheus-client` crate.
//!
//! Two sources, nothing counted twice:
//! - per authentication, from the core's observer hook ([`AuthObserver`]): outcomes and reasons,
//!   duration and round-trip histograms by TLS version, resumptions;
//! - at scrape time, [`Collector`]s reading what the core already counts (`core/stats.rs`,
//!   the per-client request counters, the session table) and what the last (re)load found in the
//!   certificate and CRL files.
//!
//! The core's counters are not listed here: each entry of the enum of counters declares its
//! family and labels ([`CoreCounter::export`]) and the collector walks them all, so a counter
//! added to the core reaches `/metrics` without an edit here (a test fails otherwise). Which
//! reasons count as dropped packets is a property of [`crate::reason::ReasonCode::kind`].
//!
//! The HTTP server is `http.rs`, bounded (8 KiB heads, 5 s for a head, 10 s per connection,
//! 16 connections, no keep-alive) and shared with `[health]`.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::StatusCode;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info};

use super::http::{Answer, Handler};
use crate::authz::Method as AuthMethod;
use crate::core::Core;
use crate::core::clients::Clients;
use crate::core::events::{AuthEvent, AuthObserver};
use crate::core::stats::{self, Counter as CoreCounter, Export, Stats};
use crate::x509::inventory::Inventory;

type Labels = Vec<(&'static str, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// Every metric of the server; one per process, kept across reloads.
pub struct Metrics {
    registry: Registry,
    observed: Observed,
}

/// What the observer hook counts, per finished authentication.
#[derive(Clone)]
struct Observed {
    authentications: Family<Labels, Counter>,
    resumptions: Family<Labels, Counter>,
    duration: HistogramFamily,
    round_trips: HistogramFamily,
}

fn duration_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

fn round_trip_histogram() -> Histogram {
    Histogram::new([2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0])
}

impl Observed {
    /// The families, registered in `registry`.
    fn register(registry: &mut Registry) -> Observed {
        let observed = Observed {
            authentications: Family::default(),
            resumptions: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            round_trips: Family::new_with_constructor(round_trip_histogram),
        };
        registry.register(
            "certradius_authentications",
            "Finished authentications by outcome (accept, reject), reason (none on accept) and method (eap-tls, mab)",
            observed.authentications.clone(),
        );
        registry.register(
            "certradius_resumptions",
            "Authentications that resumed a TLS session, by outcome",
            observed.resumptions.clone(),
        );
        registry.register(
            "certradius_authentication_duration_seconds",
            "From the first Access-Request of a conversation to its Access-Accept or Access-Reject, by TLS version",
            observed.duration.clone(),
        );
        registry.register(
            "certradius_authentication_round_trips",
            "Access-Request/Access-Challenge round trips of a conversation, by TLS version",
            observed.round_trips.clone(),
        );
        // Series that exist from the start (at 0), so rate() and the alerts see the first event.
        for method in [AuthMethod::EapTls, AuthMethod::Mab] {
            let _ = observed.authentications.get_or_create(&vec![
                ("outcome", "accept".to_string()),
                ("reason", "none".to_string()),
                ("method", method.as_str().to_string()),
            ]);
        }
        for outcome in ["accept", "reject"] {
            let _ = observed
                .resumptions
                .get_or_create(&vec![("outcome", outcome.to_string())]);
        }
        observed
    }

    fn finished(&self, event: &AuthEvent<'_>) {
        let reason = event.reason.unwrap_or("none");
        self.authentications
            .get_or_create(&vec![
                ("outcome", event.outcome.to_string()),
                ("reason", reason.to_string()),
                ("method", event.method.to_string()),
            ])
            .inc();
        if event.resumed {
            self.resumptions
                .get_or_create(&vec![("outcome", event.outcome.to_string())])
                .inc();
        }
        if event.tls_version != "-" {
            let labels = vec![("tls_version", event.tls_version.to_string())];
            self.duration
                .get_or_create(&labels)
                .observe(event.duration.as_secs_f64());
            self.round_trips
                .get_or_create(&labels)
                .observe(f64::from(event.round_trips));
        }
    }
}

impl Metrics {
    pub fn new(core: Arc<Core>) -> Arc<Metrics> {
        let mut registry = Registry::default();
        let observed = Observed::register(&mut registry);
        // The inventory of the configuration in force: every reload, whatever triggered it,
        // brings its own (a CRL replaced on disk moves the nextUpdate gauge within seconds).
        let snapshots = core.clone();
        registry.register_collector(Box::new(CoreCollector { core }));
        registry.register_collector(Box::new(InventoryCollector {
            inventory: Box::new(move || snapshots.snapshot().inventory.clone()),
        }));
        Arc::new(Metrics { registry, observed })
    }

    /// The scrape, in the Prometheus text format.
    pub fn render(&self) -> String {
        render(&self.registry)
    }
}

fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, registry) {
        debug!("metrics encoding failed: {e}");
    }
    out
}

impl AuthObserver for Metrics {
    fn finished(&self, event: &AuthEvent<'_>) {
        self.observed.finished(event);
    }
}

/// What the core counts anyway, read at scrape time.
struct CoreCollector {
    core: Arc<Core>,
}

/// The certificates and CRLs the configuration in force found.
struct InventoryCollector {
    inventory: Box<dyn Fn() -> Arc<Inventory> + Send + Sync>,
}

impl std::fmt::Debug for CoreCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CoreCollector")
    }
}

impl std::fmt::Debug for InventoryCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InventoryCollector")
    }
}

impl Collector for CoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_requests(&mut encoder, &self.core.clients())?;
        encode_counters(&mut encoder, &self.core.stats)?;
        encode_load(
            &mut encoder,
            self.core.sessions_in_progress(),
            self.core.stats.queued(),
        )?;
        encode_directory(&mut encoder, &self.core.stats)?;
        gauge(
            &mut encoder,
            "certradius_ready",
            "1 when this instance can authenticate (GET /readyz answers 200), else 0",
            &[(Vec::new(), i64::from(self.core.readiness.is_ready()))],
        )
    }
}

impl Collector for InventoryCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_inventory(&mut encoder, &(self.inventory)())
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(Labels, u64)],
) -> Result<(), std::fmt::Error> {
    let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in samples {
        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(Labels, i64)],
) -> Result<(), std::fmt::Error> {
    let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in samples {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn saturating_i64(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// `certradius_requests_total{type, client}`: the per-client request counters.
fn encode_requests(
    encoder: &mut DescriptorEncoder,
    clients: &Clients,
) -> Result<(), std::fmt::Error> {
    let mut requests = Vec::new();
    for c in clients.iter() {
        for (typ, v) in c.requests.values() {
            requests.push((
                vec![("type", typ.to_string()), ("client", c.name.clone())],
                v,
            ));
        }
    }
    counter(
        encoder,
        "certradius_requests",
        "RADIUS requests received from configured clients, by packet type and client name",
        &requests,
    )
}

/// Every core counter with a sample of its own ([`CoreCounter::export`]), grouped by family in
/// the order of [`stats::Family::ALL`]; counters that share a sample add up.
fn counter_samples(stats: &Stats) -> Vec<(stats::Family, Vec<(Labels, u64)>)> {
    let mut families: Vec<(stats::Family, Vec<(Labels, u64)>)> = stats::Family::ALL
        .iter()
        .map(|f| (*f, Vec::new()))
        .collect();
    for c in CoreCounter::all() {
        let Export::Sample(sample) = c.export() else {
            continue;
        };
        let labels: Labels = sample
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (*k, (*v).to_string()))
            .collect();
        let Some((_, samples)) = families.iter_mut().find(|(f, _)| *f == sample.family) else {
            continue;
        };
        match samples.iter_mut().find(|(l, _)| *l == labels) {
            Some((_, v)) => *v = v.saturating_add(stats.value(c)),
            None => samples.push((labels, stats.value(c))),
        }
    }
    families
}

fn encode_counters(encoder: &mut DescriptorEncoder, stats: &Stats) -> Result<(), std::fmt::Error> {
    for (family, samples) in counter_samples(stats) {
        counter(encoder, family.name(), family.help(), &samples)?;
    }
    Ok(())
}

/// The histogram of `[directory]` lookup durations.
fn encode_directory(encoder: &mut DescriptorEncoder, stats: &Stats) -> Result<(), std::fmt::Error> {
    let directory = &stats.directory_duration;
    directory.encode(encoder.encode_descriptor(
        "certradius_directory_lookup_duration_seconds",
        "How long [directory] lookups took (cache hits, searches, and every URL failing)",
        None,
        directory.metric_type(),
    )?)
}

/// The gauges of the load now: the session table and the queue in front of the workers.
fn encode_load(
    encoder: &mut DescriptorEncoder,
    sessions: usize,
    queued: u64,
) -> Result<(), std::fmt::Error> {
    gauge(
        encoder,
        "certradius_conversations_in_progress",
        "EAP-TLS conversations in the session table",
        &[(Vec::new(), saturating_i64(sessions))],
    )?;
    gauge(
        encoder,
        "certradius_requests_queued",
        "requests waiting for a worker (server.max_in_flight bounds them)",
        &[(Vec::new(), saturating_i64(queued))],
    )
}

/// The expiry of each certificate and the nextUpdate of each CRL of the configuration.
fn encode_inventory(
    encoder: &mut DescriptorEncoder,
    inventory: &Inventory,
) -> Result<(), std::fmt::Error> {
    let certs: Vec<(Labels, i64)> = inventory
        .certificates
        .iter()
        .map(|c| {
            (
                vec![("role", c.role.to_string()), ("subject", c.subject.clone())],
                c.not_after,
            )
        })
        .collect();
    gauge(
        encoder,
        "certradius_certificate_expiry_timestamp_seconds",
        "notAfter of the server certificate and of each CA certificate, unix seconds",
        &certs,
    )?;
    let crls: Vec<(Labels, i64)> = inventory
        .crls
        .iter()
        .filter_map(|c| Some((vec![("issuer", c.issuer.clone())], c.next_update?)))
        .collect();
    gauge(
        encoder,
        "certradius_crl_next_update_timestamp_seconds",
        "nextUpdate of each loaded CRL, unix seconds",
        &crls,
    )
}

/// Binds `[metrics] listen` and serves until `shutdown`; returns the bound address.
pub async fn start(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    info!("metrics: serving http://{addr}/metrics");
    let handler: Handler = Arc::new(move |path: &str| answer(&metrics, path));
    tokio::spawn(super::http::serve(listener, handler, "metrics", shutdown));
    Ok(addr)
}

/// `/metrics`; any other path is not found.
fn answer(metrics: &Metrics, path: &str) -> Option<Answer> {
    (path == "/metrics").then(|| Answer {
        status: StatusCode::OK,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        body: metrics.render(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::{ReasonCode, ReasonKind};
    use crate::x509::inventory::{CertExpiry, CrlExpiry};
    use std::time::Duration;

    /// The collector's counters and gauges over a bare [`Stats`] (no client table: the
    /// per-client `certradius_requests_total` needs a configured core, see tests/operations.rs).
    struct StatsOnly(Arc<Stats>);

    impl std::fmt::Debug for StatsOnly {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("StatsOnly")
        }
    }

    impl Collector for StatsOnly {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            encode_counters(&mut encoder, &self.0)?;
            encode_directory(&mut encoder, &self.0)?;
            encode_load(&mut encoder, 0, self.0.queued())
        }
    }

    fn scrape(stats: Arc<Stats>, inventory: Inventory, events: &[AuthEvent<'_>]) -> String {
        let mut registry = Registry::default();
        let observed = Observed::register(&mut registry);
        registry.register_collector(Box::new(StatsOnly(stats)));
        let inventory = Arc::new(inventory);
        registry.register_collector(Box::new(InventoryCollector {
            inventory: Box::new(move || inventory.clone()),
        }));
        for e in events {
            observed.finished(e);
        }
        render(&registry)
    }

    fn event(outcome: &'static str, reason: Option<&'static str>) -> AuthEvent<'static> {
        AuthEvent {
            outcome,
            method: "eap-tls",
            reason,
            detail: "",
            identity: b"",
            user_name: None,
            nas_name: "ap",
            nas_addr: std::net::Ipv4Addr::LOCALHOST.into(),
            calling_station_id: None,
            called_station_id: None,
            tls_version: "TLSv1.3",
            cipher_suite: "",
            serial: None,
            subject: None,
            ca_chain: &[],
            issuer: None,
            resumed: false,
            round_trips: 4,
            duration: Duration::from_millis(30),
            rule: None,
            granted: &[],
            class: None,
            client_hello: None,
            signature_scheme: None,
            group: None,
            nas_port_type: None,
            framed_mtu: None,
            directory_groups: None,
            directory_facts: None,
            peer: None,
        }
    }

    fn sample_line(sample: &stats::Sample, value: u64) -> String {
        let labels: Vec<String> = sample
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        format!("{}_total{labels} {value}\n", sample.family.name())
    }

    /// Every counter of the core shows on `/metrics`: counted once, its own sample moves (and
    /// only it); a total, a rejection or a connection refusal shows where its export says.
    #[test]
    fn every_counter_reaches_the_scrape() {
        for c in CoreCounter::all() {
            match c.export() {
                Export::Sample(sample) => {
                    let stats = Arc::new(Stats::default());
                    stats.add(c, 7);
                    let text = scrape(stats, Inventory::default(), &[]);
                    let line = sample_line(&sample, 7);
                    assert!(text.contains(&line), "{c:?}: no {line:?} in\n{text}");
                    assert_eq!(text.matches(" 7\n").count(), 1, "{c:?} moved two samples");
                }
                Export::TotalOf(family) => {
                    let parts = CoreCounter::all()
                        .filter(|p| matches!(p.export(), Export::Sample(s) if s.family == family));
                    assert!(
                        parts.count() > 1,
                        "{c:?} totals {family:?}, which has no parts"
                    );
                }
                Export::Authentications => {
                    let CoreCounter::Reason(r) = c else {
                        panic!("{c:?} is no reason");
                    };
                    assert_eq!(r.kind(), ReasonKind::Rejected, "{r}");
                    let text = scrape(
                        Arc::default(),
                        Inventory::default(),
                        &[event("reject", Some(r.as_str()))],
                    );
                    let line = format!(
                        "certradius_authentications_total{{outcome=\"reject\",reason=\"{r}\",method=\"eap-tls\"}} 1\n"
                    );
                    assert!(text.contains(&line), "{r}: no {line:?}");
                }
                Export::Connections => {
                    let CoreCounter::Reason(r) = c else {
                        panic!("{c:?} is no reason");
                    };
                    assert_eq!(r.kind(), ReasonKind::ConnectionRefused, "{r}");
                }
            }
        }
    }

    /// Two counters never land in one sample by accident.
    #[test]
    fn each_sample_has_one_counter() {
        let mut seen = std::collections::HashMap::new();
        for c in CoreCounter::all() {
            if let Export::Sample(s) = c.export()
                && let Some(other) = seen.insert(sample_line(&s, 0), c)
            {
                panic!("{c:?} and {other:?} both export {s:?}");
            }
        }
    }

    #[test]
    fn drops_are_exported_by_reason_kind() {
        let stats = Arc::new(Stats::default());
        stats.incr(ReasonCode::BadAccountingAuthenticator);
        stats.incr(ReasonCode::AccountingNotRecorded);
        stats.incr(ReasonCode::CertRevoked);
        let text = scrape(stats, Inventory::default(), &[]);
        for r in ReasonCode::ALL.iter().filter(|r| r.is_drop()) {
            assert!(
                text.contains(&format!(
                    "certradius_packets_dropped_total{{reason=\"{r}\"}}"
                )),
                "{r}"
            );
        }
        assert!(text.contains(
            "certradius_packets_dropped_total{reason=\"bad_accounting_authenticator\"} 1\n"
        ));
        assert!(
            text.contains(
                "certradius_packets_dropped_total{reason=\"accounting_not_recorded\"} 1\n"
            )
        );
        // A rejection is counted per authentication, not as a dropped packet.
        assert!(!text.contains("reason=\"cert_revoked\""));
    }

    #[test]
    fn stream_connections_carry_their_transport() {
        use crate::config::Transport;
        use crate::core::stats::ConnectionOutcome;
        let stats = Arc::new(Stats::default());
        stats.incr(CoreCounter::connection(
            Transport::Tls,
            ConnectionOutcome::HandshakeFailed,
        ));
        stats.incr(CoreCounter::connection(
            Transport::Tcp,
            ConnectionOutcome::Accepted,
        ));
        stats.incr(CoreCounter::stream_request(Transport::Tcp));
        let text = scrape(stats, Inventory::default(), &[]);
        for line in [
            "certradius_connections_total{transport=\"tls\",outcome=\"handshake_failed\"} 1\n",
            "certradius_connections_total{transport=\"tcp\",outcome=\"accepted\"} 1\n",
            "certradius_connections_total{transport=\"tls\",outcome=\"accepted\"} 0\n",
            "certradius_stream_requests_total{transport=\"tcp\"} 1\n",
            "certradius_stream_requests_total{transport=\"tls\"} 0\n",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
    }

    /// The metric selectors of the shipped alerts, the dashboard and the README table match
    /// series of the scrape: renaming a series or a label value breaks this test, not an
    /// operator's alert.
    #[test]
    fn shipped_alerts_dashboard_and_readme_match_the_scrape() {
        let inventory = Inventory {
            certificates: vec![CertExpiry {
                role: "server",
                subject: "CN=radius".into(),
                file: "server.pem".into(),
                not_before: 0,
                not_after: 2_000_000_000,
            }],
            crls: vec![CrlExpiry {
                issuer: "CN=ca".into(),
                file: "ca.crl".into(),
                next_update: Some(2_000_000_000),
            }],
            errors: Vec::new(),
            crl_pending: Vec::new(),
        };
        let mut ca = inventory.certificates.clone();
        ca[0].role = "ca";
        let inventory = Inventory {
            certificates: [inventory.certificates.clone(), ca].concat(),
            ..inventory
        };
        let text = scrape(
            Arc::default(),
            inventory,
            &[event("accept", None), event("reject", Some("cert_revoked"))],
        );
        let sources = [
            include_str!("../../testbed/prometheus/alerts.yml").to_string(),
            include_str!("../../testbed/grafana/certradius.json").replace("\\\"", "\""),
            include_str!("../../README.md").to_string(),
        ];
        let mut checked = 0;
        for source in &sources {
            for (name, matchers) in selectors(source) {
                // Needs a configured client table (checked by tests/operations.rs).
                if name == "certradius_requests_total" {
                    continue;
                }
                // A histogram's name stands for its _bucket, _count and _sum series.
                let series =
                    ["{", " ", "_bucket{", "_count{", "_sum{"].map(|s| format!("{name}{s}"));
                let found = text.lines().filter(|l| !l.starts_with('#')).any(|l| {
                    series.iter().any(|s| l.starts_with(s.as_str()))
                        && matchers.iter().all(|m| l.contains(m.as_str()))
                });
                assert!(found, "{name}{matchers:?} matches no series of\n{text}");
                checked += 1;
            }
        }
        assert!(checked >= 30, "checked only {checked} selectors");
    }

    /// The README's metrics table has a row for every counter family and names every label
    /// value of the dropped packets and of the connections: it follows the enums.
    #[test]
    fn readme_table_follows_the_enums() {
        let readme = include_str!("../../README.md");
        let row = |name: &str| {
            readme
                .lines()
                .find(|l| l.starts_with('|') && l.contains(&format!("`{name}`")))
                .unwrap_or_else(|| panic!("README has no row for {name}"))
        };
        for family in stats::Family::ALL {
            let _ = row(&format!("{}_total", family.name()));
        }
        for c in CoreCounter::all() {
            let Export::Sample(sample) = c.export() else {
                continue;
            };
            let family = sample.family;
            if matches!(
                family,
                stats::Family::PacketsDropped | stats::Family::Connections
            ) {
                let row = row(&format!("{}_total", family.name()));
                for (_, value) in sample.labels.iter().flatten() {
                    assert!(
                        row.contains(&format!("`{value}`")),
                        "README's {} row does not name {value}",
                        family.name()
                    );
                }
            }
        }
    }

    /// `certradius_name{k="v",...}` selectors in `text`: the name (`_total`, `_bucket`, ...
    /// included) and its equality matchers as `k="v"`.
    fn selectors(text: &str) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for (at, _) in text.match_indices("certradius_") {
            let rest = &text[at..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // Only series names: counters end in _total, the rest are known gauges/histograms.
            let known = name.ends_with("_total")
                || name.ends_with("_bucket")
                || name.ends_with("_count")
                || name.ends_with("_seconds")
                || name.ends_with("_round_trips")
                || name.ends_with("_in_progress")
                || name.ends_with("_queued");
            if !known {
                continue;
            }
            let after = &rest[name.len()..];
            let matchers = match after.strip_prefix('{') {
                Some(m) => m
                    .split('}')
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .filter(|m| m.contains("=\"") && !m.contains("=~") && !m.contains("!="))
                    .map(|m| m.trim().to_string())
                    .collect(),
                None => Vec::new(),
            };
            out.push((name, matchers));
        }
        out
    }
}
