//! The one async part: RFC 6960 Appendix A.1 HTTP POST with `Content-Type:
//! application/ocsp-request`, bounded in time and response size. Called by the shell only.

use super::*;

/// The shell-side fetch: HTTP POST of `query.request_der` as `application/ocsp-request` to
/// `query.url` (RFC 6960 Appendix A.1), reading at most [`MAX_RESPONSE_BYTES`] of body; the whole
/// exchange, name resolution and connect included, is bounded by `timeout`. Only `http://` URLs:
/// fetching over TLS would itself need certificate status checking, and responders serve HTTP.
pub async fn fetch(query: &Query, timeout: Duration) -> Result<Vec<u8>, OcspError> {
    // Dropping the exchange on timeout drops the connection with it: nothing is left running.
    tokio::time::timeout(timeout, exchange(query))
        .await
        .unwrap_or(Err(OcspError::Timeout))
}

async fn exchange(query: &Query) -> Result<Vec<u8>, OcspError> {
    use http_body_util::{BodyExt, Full, Limited};
    use hyper::body::Bytes;
    use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};

    let http = |what: &str, e: &dyn std::fmt::Display| OcspError::Http(format!("{what}: {e}"));
    let uri: hyper::Uri = query
        .url
        .parse()
        .map_err(|e| http(&format!("bad responder URL {:?}", query.url), &e))?;
    if uri.scheme_str() != Some("http") {
        return Err(OcspError::Http(format!(
            "responder URL {:?}: only http:// is supported",
            query.url
        )));
    }
    let (Some(host), Some(authority)) = (uri.host(), uri.authority()) else {
        return Err(OcspError::Http(format!(
            "responder URL {:?} has no host",
            query.url
        )));
    };
    let port = uri.port_u16().unwrap_or(80);
    // An IPv6 literal comes bracketed from the URI; the resolver wants it bare.
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::net::TcpStream::connect((bare_host, port))
        .await
        .map_err(|e| http(&format!("connect to {authority}"), &e))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| http("HTTP handshake", &e))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = hyper::Request::post(path)
        .header(HOST, authority.as_str())
        .header(CONTENT_TYPE, "application/ocsp-request")
        .header(ACCEPT, "application/ocsp-response")
        .body(Full::new(Bytes::from(query.request_der.clone())))
        .map_err(|e| http("building request", &e))?;

    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| http("sending request", &e))?;
        if response.status() != hyper::StatusCode::OK {
            return Err(OcspError::Http(format!(
                "responder answered HTTP {}",
                response.status()
            )));
        }
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    OcspError::Http(format!("response larger than {MAX_RESPONSE_BYTES} bytes"))
                } else {
                    http("reading response", &e)
                }
            })?;
        Ok(body.to_bytes().to_vec())
    };
    // The connection future does the actual I/O; drive it alongside the exchange in this task.
    // It may finish first (the responder closes after answering), having handed the whole body
    // over; the exchange then completes on its own.
    let mut exchange = std::pin::pin!(exchange);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = &mut exchange => result,
        closed = &mut connection => {
            closed.map_err(|e| http("connection", &e))?;
            exchange.await
        }
    }
}
