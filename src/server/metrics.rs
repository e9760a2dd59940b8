//! The Prometheus endpoint: `GET /metrics` on `[metrics] listen`, in the Prometheus text
//! exposition format (version 0.0.4), encoded by the `prometheus-client` crate.
//!
//! Two sources, nothing counted twice:
//! - per authentication, from the core's observer hook ([`AuthObserver`]): outcomes and reasons,
//!   duration and round-trip histograms by TLS version, resumptions;
//! - at scrape time, a [`Collector`] reading what the core already counts (`core/stats.rs`,
//!   the per-client request counters, the session table) and what the last (re)load found in the
//!   certificate and CRL files.
//!
//! The HTTP server (HTTP/1.1, RFC 9112) is bounded: requests larger than 8 KiB of head are
//! refused by hyper, a head must arrive within 5 s, a connection lives at most 10 s and is not
//! kept alive, and at most 16 connections are served at once (more are closed at accept).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, info};

use crate::core::Core;
use crate::core::events::{AuthEvent, AuthObserver};
use crate::core::stats::Counter as CoreCounter;
use crate::reason::ReasonCode;

const MAX_CONNECTIONS: usize = 16;
const MAX_HEAD_BYTES: usize = 8192;
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Reasons for which a packet is dropped without an answer (RFC 2865 §3, RFC 3579 §3.2); the
/// other reasons end in an Access-Reject and are counted by `certradius_authentications_total`.
const DROP_REASONS: &[ReasonCode] = &[
    ReasonCode::UnknownClient,
    ReasonCode::MalformedPacket,
    ReasonCode::BadMessageAuthenticator,
    ReasonCode::UnsupportedCode,
    ReasonCode::MissingMessageAuthenticator,
    ReasonCode::ProxyStateWithoutMessageAuthenticator,
    ReasonCode::StatusServerWithoutMessageAuthenticator,
    ReasonCode::EapMalformed,
    ReasonCode::EapUnexpectedCode,
    ReasonCode::EapWrongIdentifier,
    ReasonCode::SessionBusy,
    ReasonCode::SessionNotDeciding,
    ReasonCode::TooManySessions,
    ReasonCode::TooManySessionsForClient,
];

type Labels = Vec<(&'static str, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// Every metric of the server; one per process, kept across reloads.
pub struct Metrics {
    registry: Registry,
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

impl Metrics {
    pub fn new(core: Arc<Core>) -> Arc<Metrics> {
        let mut registry = Registry::default();
        let authentications = Family::<Labels, Counter>::default();
        registry.register(
            "certradius_authentications",
            "Finished authentications by outcome (accept, reject) and reason (none on accept)",
            authentications.clone(),
        );
        let resumptions = Family::<Labels, Counter>::default();
        registry.register(
            "certradius_resumptions",
            "Authentications that resumed a TLS session, by outcome",
            resumptions.clone(),
        );
        let duration: HistogramFamily = Family::new_with_constructor(duration_histogram);
        registry.register(
            "certradius_authentication_duration_seconds",
            "From the first Access-Request of a conversation to its Access-Accept or Access-Reject, by TLS version",
            duration.clone(),
        );
        let round_trips: HistogramFamily = Family::new_with_constructor(round_trip_histogram);
        registry.register(
            "certradius_authentication_round_trips",
            "Access-Request/Access-Challenge round trips of a conversation, by TLS version",
            round_trips.clone(),
        );
        // Series that exist from the start (at 0), so rate() and the alerts see the first event.
        let _ = authentications.get_or_create(&vec![
            ("outcome", "accept".to_string()),
            ("reason", "none".to_string()),
        ]);
        for outcome in ["accept", "reject"] {
            let _ = resumptions.get_or_create(&vec![("outcome", outcome.to_string())]);
        }
        registry.register_collector(Box::new(CoreCollector { core }));
        Arc::new(Metrics {
            registry,
            authentications,
            resumptions,
            duration,
            round_trips,
        })
    }

    /// The scrape, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            debug!("metrics encoding failed: {e}");
        }
        out
    }
}

impl AuthObserver for Metrics {
    fn finished(&self, event: &AuthEvent<'_>) {
        let reason = event.reason.unwrap_or("none");
        self.authentications
            .get_or_create(&vec![
                ("outcome", event.outcome.to_string()),
                ("reason", reason.to_string()),
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

/// What the core counts anyway, read at scrape time.
struct CoreCollector {
    core: Arc<Core>,
}

impl std::fmt::Debug for CoreCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CoreCollector")
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

fn l(k: &'static str, v: &str) -> Labels {
    vec![(k, v.to_string())]
}

impl Collector for CoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = &self.core.stats;
        let mut requests = Vec::new();
        for c in self.core.clients().iter() {
            for (typ, v) in c.requests.values() {
                requests.push((
                    vec![("type", typ.to_string()), ("client", c.name.clone())],
                    v,
                ));
            }
        }
        counter(
            &mut encoder,
            "certradius_requests",
            "RADIUS requests received from configured clients, by packet type and client name",
            &requests,
        )?;
        let mut dropped: Vec<(Labels, u64)> = DROP_REASONS
            .iter()
            .map(|r| {
                (
                    l("reason", r.as_str()),
                    stats.value(CoreCounter::Reason(*r)),
                )
            })
            .collect();
        dropped.push((
            l("reason", "overloaded"),
            stats.value(CoreCounter::OverloadedDropped),
        ));
        dropped.push((
            l("reason", "queue_expired"),
            stats.value(CoreCounter::QueueExpiredDropped),
        ));
        dropped.push((
            l("reason", "rate_limited_source"),
            stats.value(CoreCounter::RateLimitedSource),
        ));
        counter(
            &mut encoder,
            "certradius_packets_dropped",
            "Packets discarded without an answer, by reason",
            &dropped,
        )?;
        counter(
            &mut encoder,
            "certradius_duplicate_requests",
            "Retransmissions recognised by the duplicate cache: answered from it, or dropped while the original was still being processed",
            &[
                (
                    l("action", "answered_from_cache"),
                    stats.value(CoreCounter::DuplicateAnsweredFromCache),
                ),
                (
                    l("action", "dropped_in_progress"),
                    stats.value(CoreCounter::DuplicateInProgressDropped),
                ),
            ],
        )?;
        counter(
            &mut encoder,
            "certradius_ocsp_lookups",
            "OCSP lookups by result: cache_hit, queried (a request sent), busy (max_concurrent_lookups reached), unreachable, bad_response",
            &[
                (
                    l("result", "cache_hit"),
                    stats.value(CoreCounter::OcspCacheHits),
                ),
                (
                    l("result", "queried"),
                    stats.value(CoreCounter::OcspRequests),
                ),
                (
                    l("result", "busy"),
                    stats.value(CoreCounter::OcspLookupsRefusedBusy),
                ),
                (
                    l("result", "unreachable"),
                    stats.value(CoreCounter::Reason(ReasonCode::OcspUnavailable)),
                ),
                (
                    l("result", "bad_response"),
                    stats.value(CoreCounter::OcspBadResponse),
                ),
            ],
        )?;
        counter(
            &mut encoder,
            "certradius_config_reloads",
            "Configuration reloads (SIGHUP) by result",
            &[
                (
                    l("result", "success"),
                    stats.value(CoreCounter::ConfigReloads),
                ),
                (
                    l("result", "failure"),
                    stats.value(CoreCounter::ConfigReloadFailed),
                ),
            ],
        )?;
        counter(
            &mut encoder,
            "certradius_accounting_requests",
            "Accounting-Requests (RFC 2866) by outcome: received (verified), answered (recorded, Accounting-Response sent), duplicate (retransmission)",
            &[
                (
                    l("result", "received"),
                    stats.value(CoreCounter::AccountingRequests),
                ),
                (
                    l("result", "answered"),
                    stats.value(CoreCounter::AccountingResponses),
                ),
                (
                    l("result", "duplicate"),
                    stats.value(CoreCounter::AccountingDuplicates),
                ),
            ],
        )?;
        counter(
            &mut encoder,
            "certradius_accounting_db_records",
            "Accounting records for PostgreSQL: written (directly), queued (on disk while the database was away), replayed (from the queue)",
            &[
                (
                    l("result", "written"),
                    stats.value(CoreCounter::AccountingDbWritten),
                ),
                (
                    l("result", "queued"),
                    stats.value(CoreCounter::AccountingQueued),
                ),
                (
                    l("result", "replayed"),
                    stats.value(CoreCounter::AccountingReplayed),
                ),
            ],
        )?;
        counter(
            &mut encoder,
            "certradius_disconnects",
            "Disconnect-Requests (RFC 5176): sent (every transmission), ack, nak, timeout",
            &[
                (
                    l("result", "sent"),
                    stats.value(CoreCounter::DisconnectRequests),
                ),
                (l("result", "ack"), stats.value(CoreCounter::DisconnectAcks)),
                (l("result", "nak"), stats.value(CoreCounter::DisconnectNaks)),
                (
                    l("result", "timeout"),
                    stats.value(CoreCounter::DisconnectTimeouts),
                ),
            ],
        )?;
        counter(
            &mut encoder,
            "certradius_accounting_db_errors",
            "Failed PostgreSQL connections, writes and replays",
            &[(Vec::new(), stats.value(CoreCounter::AccountingDbErrors))],
        )?;
        counter(
            &mut encoder,
            "certradius_conversations_started",
            "EAP-TLS conversations started",
            &[(Vec::new(), stats.value(CoreCounter::SessionsStarted))],
        )?;
        counter(
            &mut encoder,
            "certradius_conversations_expired",
            "Conversations abandoned idle past eap.session_timeout_secs",
            &[(Vec::new(), stats.value(CoreCounter::SessionsExpired))],
        )?;
        gauge(
            &mut encoder,
            "certradius_conversations_in_progress",
            "EAP-TLS conversations in the session table",
            &[(
                Vec::new(),
                i64::try_from(self.core.sessions_in_progress()).unwrap_or(i64::MAX),
            )],
        )?;
        gauge(
            &mut encoder,
            "certradius_requests_queued",
            "requests waiting for a worker (server.max_in_flight bounds them)",
            &[(
                Vec::new(),
                i64::try_from(self.core.stats.queued()).unwrap_or(i64::MAX),
            )],
        )?;
        // The inventory of the configuration in force: every reload, whatever triggered it,
        // brings its own (a CRL replaced on disk moves the nextUpdate gauge within seconds).
        let inventory = self.core.snapshot().inventory.clone();
        let (certs, crls) = (&inventory.certificates, &inventory.crls);
        let certs: Vec<(Labels, i64)> = certs
            .iter()
            .map(|c| {
                (
                    vec![("role", c.role.to_string()), ("subject", c.subject.clone())],
                    c.not_after,
                )
            })
            .collect();
        gauge(
            &mut encoder,
            "certradius_certificate_expiry_timestamp_seconds",
            "notAfter of the server certificate and of each CA certificate, unix seconds",
            &certs,
        )?;
        let crls: Vec<(Labels, i64)> = crls
            .iter()
            .filter_map(|c| Some((l("issuer", &c.issuer), c.next_update?)))
            .collect();
        gauge(
            &mut encoder,
            "certradius_crl_next_update_timestamp_seconds",
            "nextUpdate of each loaded CRL, unix seconds",
            &crls,
        )?;
        Ok(())
    }
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
    tokio::spawn(serve(listener, metrics, shutdown));
    Ok(addr)
}

async fn serve(listener: TcpListener, metrics: Arc<Metrics>, mut shutdown: watch::Receiver<bool>) {
    use hyper::server::conn::http1;
    use hyper_util::rt::{TokioIo, TokioTimer};
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                debug!("metrics accept: {e}");
                // Out of file descriptors and the like: do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            debug!(%peer, "metrics: too many connections, closing");
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(respond(&metrics, &req)) }
            });
            let conn = http1::Builder::new()
                .max_buf_size(MAX_HEAD_BYTES)
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            if let Ok(Err(e)) = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                debug!(%peer, "metrics connection: {e}");
            }
        });
    }
}

fn respond<B>(metrics: &Metrics, req: &Request<B>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = if req.uri().path() != "/metrics" {
        (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_string(),
        )
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET\n".to_string(),
        )
    } else {
        (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        )
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}
