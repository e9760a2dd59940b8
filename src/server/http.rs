//! The small HTTP/1.1 server (RFC 9112, hyper) behind `[metrics]` and `[health]`: GET only,
//! bounded so that a scraper or a prober cannot hold the process. Heads larger than 8 KiB are
//! refused by hyper, a head must arrive within 5 s, a connection lives at most 10 s and is not
//! kept alive, and at most 16 connections are served at once (more are closed at accept).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::debug;

const MAX_CONNECTIONS: usize = 16;
const MAX_HEAD_BYTES: usize = 8192;
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// An answer: status, content type and body.
pub struct Answer {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: String,
}

/// Answers a GET (or HEAD) for a path; None: 404.
pub type Handler = Arc<dyn Fn(&str) -> Option<Answer> + Send + Sync>;

/// Serves `handler` on `listener` until `shutdown`. `what` names the endpoint in debug logs.
pub async fn serve(
    listener: TcpListener,
    handler: Handler,
    what: &'static str,
    mut shutdown: watch::Receiver<bool>,
) {
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
                debug!("{what} accept: {e}");
                // Out of file descriptors and the like: do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            debug!(%peer, "{what}: too many connections, closing");
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(respond(&handler, &req)) }
            });
            let conn = http1::Builder::new()
                .max_buf_size(MAX_HEAD_BYTES)
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            if let Ok(Err(e)) = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                debug!(%peer, "{what} connection: {e}");
            }
        });
    }
}

fn respond<B>(handler: &Handler, req: &Request<B>) -> Response<Full<Bytes>> {
    let answer = if req.method() != Method::GET && req.method() != Method::HEAD {
        Some(Answer {
            status: StatusCode::METHOD_NOT_ALLOWED,
            content_type: "text/plain",
            body: "only GET\n".to_string(),
        })
    } else {
        handler(req.uri().path())
    };
    let answer = answer.unwrap_or(Answer {
        status: StatusCode::NOT_FOUND,
        content_type: "text/plain",
        body: "not found\n".to_string(),
    });
    let mut resp = Response::new(Full::new(Bytes::from(answer.body)));
    *resp.status_mut() = answer.status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(answer.content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}
