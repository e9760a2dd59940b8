//! The CRL fetcher: `tls.crl_url` and, with `tls.crl_from_certificates`, the http:// CRL
//! Distribution Points of the `ca_file` CAs (RFC 5280 §4.2.1.13), fetched at start and again
//! every `tls.crl_refresh_secs` or when a tenth of a CRL's validity is left (`x509/crl_fetch.rs`
//! has the rules and the verification).
//!
//! ldap:// and ldaps:// sources (RFC 4516 URLs, the Active Directory CDP form) are read through
//! the `[directory]` connection settings (`directory/crl.rs`) and then handled exactly as an
//! HTTP body: verified, cached, counted.
//!
//! One task on the runtime, away from the request workers: a fetch never holds up an
//! authentication. The sources due are fetched side by side, [`PARALLEL_FETCHES`] at a time, so
//! one that hangs until its time limit does not hold up the others. Each fetch is an HTTP/1.1 GET (RFC 9110 §9.3.1) with hyper (already the
//! metrics and OCSP client: no OpenSSL, no second TLS stack; plain http:// only, as CRL
//! distribution is by design), bounded by [`FETCH_TIMEOUT`] for the whole of it,
//! [`MAX_CRL_BYTES`] of body (the read stops there) and [`MAX_REDIRECTS`] redirects. A good,
//! verified CRL is written to the cache (temporary file, then rename); the reload file watcher
//! puts it in force with the rest of the configuration in one snapshot. A refetch is conditional
//! once the server has given an ETag or Last-Modified (a 304 keeps the cached CRL: see
//! `x509/crl_fetch.rs`). A failure keeps the last good CRL, is counted
//! (`certradius_crl_fetch_total{result}`) and logged, at most once every five minutes per URL
//! unless its result changes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tracing::{info, warn};

use crate::core::Core;
use crate::core::stats::Counter;
use crate::directory::crl::CrlReader;
use crate::escape::Escaped;
use crate::x509::crl::LoadedCrl;
use crate::x509::crl_fetch::{
    self, FETCH_TIMEOUT, FetchFailure, FetchResult, MAX_CRL_BYTES, MAX_REDIRECTS,
    RETRY_AFTER_FAILURE, Validators,
};

const LOG_EVERY: Duration = Duration::from_secs(300);

/// Sources fetched at the same time.
const PARALLEL_FETCHES: usize = 4;

#[derive(Default)]
struct UrlState {
    due: Option<SystemTime>,
    last_log: Option<(SystemTime, FetchResult)>,
    /// Of the last good body: sent back to make the next request conditional.
    validators: Validators,
    /// The last good body's CRLs without their DER (only their validity, for the next due time
    /// after a 304).
    schedule: Vec<LoadedCrl>,
}

/// What a fetch brought.
enum Fetched {
    /// A body, and the validators its answer carried.
    Body(Vec<u8>, Validators),
    /// 304 Not Modified: the cached body is current.
    NotModified,
}

fn counter(r: FetchResult) -> Counter {
    match r {
        FetchResult::Ok => Counter::CrlFetchOk,
        FetchResult::NotModified => Counter::CrlFetchNotModified,
        FetchResult::HttpError => Counter::CrlFetchHttpError,
        FetchResult::Invalid => Counter::CrlFetchInvalid,
        FetchResult::WrongIssuer => Counter::CrlFetchWrongIssuer,
        FetchResult::TooLarge => Counter::CrlFetchTooLarge,
        FetchResult::Timeout => Counter::CrlFetchTimeout,
        FetchResult::Error => Counter::CrlFetchError,
    }
}

/// Starts the fetcher; it reads the sources from the configuration in force at each round, so
/// a SIGHUP that changes them applies at once.
pub fn start(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut urls: HashMap<String, UrlState> = HashMap::new();
        let mut told: HashSet<String> = HashSet::new();
        let mut persisted = 0usize;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let snapshot = core.snapshot();
            let tls = snapshot.config.tls.clone();
            drop(snapshot);
            let Some(dir) = tls.crl_cache_dir.clone() else {
                continue;
            };
            let (sources, skipped) = crl_fetch::sources(&tls);
            if !sources.is_empty() || tls.crl_from_certificates {
                let seen = crl_fetch::seen_intermediates().len();
                if seen != persisted {
                    persisted = seen;
                    keep_intermediates(&tls, &dir);
                }
            }
            for u in skipped {
                if told.insert(u.clone()) {
                    warn!(
                        url = %Escaped::str(&u),
                        "CRL distribution point skipped: only http:// is fetched, and ldap:// needs the [directory] section"
                    );
                }
            }
            urls.retain(|u, _| sources.contains(u));
            // Built when an ldap:// source is due (it reads the password file).
            let mut reader: Option<Result<Arc<CrlReader>, String>> = None;
            let now = super::wall_clock();
            let mut due = Vec::new();
            for url in sources {
                let state = urls.entry(url.clone()).or_default();
                if state.due.is_some_and(|d| d > now) {
                    continue;
                }
                // Settled when the fetch ends; this stands if its task is lost.
                state.due = Some(now + RETRY_AFTER_FAILURE);
                due.push(url);
            }
            // Up to PARALLEL_FETCHES at once: a source that hangs until FETCH_TIMEOUT does not
            // hold up the others.
            let mut due = due.into_iter();
            let mut running = tokio::task::JoinSet::new();
            loop {
                while running.len() < PARALLEL_FETCHES {
                    let Some(url) = due.next() else {
                        break;
                    };
                    let path = crl_fetch::cache_path(&dir, &url);
                    // Conditional only while the cached body is there to keep: an operator who
                    // emptied the cache gets a full download, not a 304 and no CRL.
                    let since = match urls.get(&url) {
                        Some(state) if path.is_file() => state.validators.clone(),
                        _ => Validators::default(),
                    };
                    let reader = crl_fetch::is_ldap(&url)
                        .then(|| reader.get_or_insert_with(|| ldap_reader(&core)).clone());
                    running.spawn(fetch_source(url, since, reader));
                }
                let Some(joined) = running.join_next().await else {
                    break;
                };
                match joined {
                    Ok((url, body)) => {
                        if let Some(state) = urls.get_mut(&url) {
                            settle(&core, &tls, &dir, (&url, state), body);
                        }
                    }
                    Err(e) => warn!("a CRL fetch task ended abnormally: {e}"),
                }
            }
        }
    });
}

/// One source's fetch, on a task of its own: (the URL, what it brought).
async fn fetch_source(
    url: String,
    since: Validators,
    reader: Option<Result<Arc<CrlReader>, String>>,
) -> (String, Result<Fetched, FetchFailure>) {
    let body = match reader {
        Some(Ok(r)) => read_ldap(&r, &url)
            .await
            .map(|b| Fetched::Body(b, Validators::default())),
        Some(Err(e)) => Err(FetchFailure::new(FetchResult::Error, e)),
        None => fetch(&url, &since).await,
    };
    (url, body)
}

/// What a fetch brought, put to use: a good body verified, cached and scheduled; a 304 keeps the
/// cache; a failure keeps the last good CRL. Counted and logged (rate-limited per URL).
fn settle(
    core: &Core,
    tls: &crate::config::TlsConfig,
    dir: &std::path::Path,
    (url, state): (&str, &mut UrlState),
    body: Result<Fetched, FetchFailure>,
) {
    let path = crl_fetch::cache_path(dir, url);
    let outcome = match body {
        Ok(Fetched::Body(body, validators)) => {
            let (_, cas) = crl_fetch::configured_cas(tls);
            crl_fetch::verify_body(&body, &cas, &path).and_then(|crls| {
                store(dir, &path, &body).map_err(|e| FetchFailure::new(FetchResult::Error, e))?;
                Ok(Some((crls, validators)))
            })
        }
        Ok(Fetched::NotModified) => Ok(None),
        Err(e) => Err(e),
    };
    let now = super::wall_clock();
    let refresh = Duration::from_secs(tls.crl_refresh_secs);
    match outcome {
        Ok(None) => {
            core.stats.incr(counter(FetchResult::NotModified));
            if state
                .last_log
                .is_some_and(|(_, r)| !matches!(r, FetchResult::Ok | FetchResult::NotModified))
            {
                info!(
                    url = %Escaped::str(url),
                    "CRL not modified since the last good fetch; the cached CRL stays in force"
                );
                state.last_log = Some((now, FetchResult::NotModified));
            }
            state.due = Some(crl_fetch::next_fetch(
                now,
                refresh,
                &state.schedule,
                Duration::from_secs(30),
            ));
        }
        Ok(Some((crls, validators))) => {
            core.stats.incr(counter(FetchResult::Ok));
            // The first good fetch of a URL, or the first after another result.
            if state.last_log.is_none_or(|(_, r)| r != FetchResult::Ok) {
                info!(
                    url = %Escaped::str(url),
                    crls = crls.len(),
                    revoked = crls.iter().map(|c| c.revoked).sum::<usize>(),
                    "CRL fetched and verified"
                );
                state.last_log = Some((now, FetchResult::Ok));
            }
            state.due = Some(crl_fetch::next_fetch(
                now,
                refresh,
                &crls,
                Duration::from_secs(30),
            ));
            state.validators = validators;
            state.schedule = crls
                .into_iter()
                .map(|mut c| {
                    c.der = Vec::new().into();
                    c
                })
                .collect();
        }
        Err(e) => {
            core.stats.incr(counter(e.result));
            let quiet = state.last_log.is_some_and(|(at, r)| {
                r == e.result && now.duration_since(at).is_ok_and(|d| d < LOG_EVERY)
            });
            if !quiet {
                warn!(
                    url = %Escaped::str(url),
                    result = e.result.as_str(),
                    "CRL fetch failed, the last good CRL stays in force: {}",
                    e.message
                );
                state.last_log = Some((now, e.result));
            }
            state.due = Some(now + refresh.min(RETRY_AFTER_FAILURE));
        }
    }
}

/// The `[directory]` connection settings in force, for ldap:// sources.
fn ldap_reader(core: &Core) -> Result<Arc<CrlReader>, String> {
    match &core.snapshot().config.directory {
        Some(d) => CrlReader::from_config(d).map(Arc::new),
        None => Err("ldap:// needs the [directory] section".to_string()),
    }
}

/// Reads a CRL from the directory, within [`FETCH_TIMEOUT`] for the whole of it.
async fn read_ldap(reader: &CrlReader, url: &str) -> Result<Vec<u8>, FetchFailure> {
    tokio::time::timeout(FETCH_TIMEOUT, reader.read(url))
        .await
        .unwrap_or_else(|_| {
            Err(FetchFailure::new(
                FetchResult::Timeout,
                format!("no complete answer within {} s", FETCH_TIMEOUT.as_secs()),
            ))
        })
}

/// Keeps the intermediates that chain to `ca_file` (seen in client chains, or kept before) in
/// the cache, so that after a restart the CRLs they issued verify before any client comes.
fn keep_intermediates(tls: &crate::config::TlsConfig, dir: &std::path::Path) {
    let (accepted, _) = crl_fetch::configured_cas(tls);
    let mut from_file = Vec::new();
    for path in tls.ca_file.paths() {
        if let Ok(c) = crate::x509::pem::load_certs("tls.ca_file", &path) {
            from_file.extend(c);
        }
    }
    let mut text = String::new();
    for cert in accepted
        .iter()
        .filter(|c| !from_file.iter().any(|f| f.as_ref() == c.as_ref()))
    {
        if let Ok(pem) =
            pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, cert.as_ref())
        {
            text.push_str(&pem);
        }
    }
    if text.is_empty() {
        return;
    }
    let path = crl_fetch::intermediates_file(dir);
    if let Err(e) = store(dir, &path, text.as_bytes()) {
        warn!("CRL cache: cannot keep the intermediates: {e}");
    }
}

/// Writes a verified body to the cache unless it is already there: a new file (temporary,
/// then renamed, so the watcher never reads half of one).
fn store(dir: &std::path::Path, path: &std::path::Path, body: &[u8]) -> Result<(), String> {
    if std::fs::read(path).is_ok_and(|old| old == body) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // The temporary file is written beside the cache directory (same filesystem), so that the
    // watched directory changes only with the rename, when the new file is complete.
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join(format!(".crl-cache-{name}.tmp"));
    std::fs::write(&tmp, body).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// GETs a CRL, following up to [`MAX_REDIRECTS`] redirects, all within [`FETCH_TIMEOUT`];
/// conditional on `since` when it has validators.
async fn fetch(url: &str, since: &Validators) -> Result<Fetched, FetchFailure> {
    // Dropping the future on timeout drops the connection with it.
    tokio::time::timeout(FETCH_TIMEOUT, follow(url, since))
        .await
        .unwrap_or_else(|_| {
            Err(FetchFailure::new(
                FetchResult::Timeout,
                format!("no complete answer within {} s", FETCH_TIMEOUT.as_secs()),
            ))
        })
}

async fn follow(url: &str, since: &Validators) -> Result<Fetched, FetchFailure> {
    let mut uri: hyper::Uri = url
        .parse()
        .map_err(|e| FetchFailure::new(FetchResult::Error, format!("bad URL: {e}")))?;
    for _ in 0..=MAX_REDIRECTS {
        match get(&uri, since).await? {
            Hop::Done(fetched) => return Ok(fetched),
            Hop::Redirect(location) => {
                uri = resolve(&uri, &location)?;
            }
        }
    }
    Err(FetchFailure::new(
        FetchResult::Error,
        format!("more than {MAX_REDIRECTS} redirects"),
    ))
}

/// A Location (absolute http://, or a path on the same server) against the URL it came from.
fn resolve(base: &hyper::Uri, location: &str) -> Result<hyper::Uri, FetchFailure> {
    let bad = |why: &str| {
        FetchFailure::new(
            FetchResult::Error,
            format!("redirect to \"{}\": {why}", Escaped::str(location)),
        )
    };
    if location.starts_with('/') {
        let authority = base.authority().ok_or_else(|| bad("no host"))?;
        return format!("http://{authority}{location}")
            .parse()
            .map_err(|_| bad("not a URL"));
    }
    let uri: hyper::Uri = location.parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad("only http:// is followed"));
    }
    Ok(uri)
}

enum Hop {
    Done(Fetched),
    Redirect(String),
}

async fn get(uri: &hyper::Uri, since: &Validators) -> Result<Hop, FetchFailure> {
    use http_body_util::{BodyExt, Empty, Limited};
    use hyper::body::Bytes;
    use hyper::header::{
        ACCEPT, CONTENT_LENGTH, ETAG, HOST, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
        LOCATION,
    };

    let err = |what: &str, e: &dyn std::fmt::Display| {
        FetchFailure::new(FetchResult::Error, format!("{what}: {e}"))
    };
    if uri.scheme_str() != Some("http") {
        return Err(FetchFailure::new(
            FetchResult::Error,
            "only http:// is supported",
        ));
    }
    let (Some(host), Some(authority)) = (uri.host(), uri.authority()) else {
        return Err(FetchFailure::new(FetchResult::Error, "URL has no host"));
    };
    let port = uri.port_u16().unwrap_or(80);
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::net::TcpStream::connect((bare_host, port))
        .await
        .map_err(|e| err(&format!("connect to {authority}"), &e))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| err("HTTP handshake", &e))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = hyper::Request::get(path)
        .header(HOST, authority.as_str())
        .header(ACCEPT, "application/pkix-crl, application/x-pkcs7-crl, */*");
    // RFC 9110 §13.1.1, §13.1.3: the validators as the server gave them.
    if let Some(etag) = &since.etag {
        request = request.header(IF_NONE_MATCH, etag.as_str());
    }
    if let Some(date) = &since.last_modified {
        request = request.header(IF_MODIFIED_SINCE, date.as_str());
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| err("building request", &e))?;
    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| err("sending request", &e))?;
        let status = response.status();
        // 304 is in the 3xx class but redirects nowhere: the answer to a conditional request.
        if status == hyper::StatusCode::NOT_MODIFIED && since.any() {
            return Ok(Hop::Done(Fetched::NotModified));
        }
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    FetchFailure::new(
                        FetchResult::HttpError,
                        format!("HTTP {status} without Location"),
                    )
                })?;
            return Ok(Hop::Redirect(location.to_string()));
        }
        if status != hyper::StatusCode::OK {
            return Err(FetchFailure::new(
                FetchResult::HttpError,
                format!("HTTP {status}"),
            ));
        }
        let too_large = || {
            FetchFailure::new(
                FetchResult::TooLarge,
                format!("body larger than {MAX_CRL_BYTES} bytes"),
            )
        };
        let validators = Validators::from_headers(
            response.headers().get(ETAG).map(|v| v.as_bytes()),
            response.headers().get(LAST_MODIFIED).map(|v| v.as_bytes()),
        );
        let announced = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > MAX_CRL_BYTES as u64) {
            return Err(too_large());
        }
        let body = Limited::new(response.into_body(), MAX_CRL_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    too_large()
                } else {
                    err("reading body", &e)
                }
            })?;
        Ok(Hop::Done(Fetched::Body(
            body.to_bytes().to_vec(),
            validators,
        )))
    };
    let mut exchange = std::pin::pin!(exchange);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = &mut exchange => result,
        closed = &mut connection => {
            closed.map_err(|e| err("connection", &e))?;
            exchange.await
        }
    }
}
