//! The operator's own HTTP endpoint: `/metrics` (Prometheus), `/healthz`
//! (process alive) and `/readyz` (connected to the API server).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::metrics::Metrics;

/// What the endpoints report.
pub struct HealthState {
    /// Metrics rendered on `/metrics`.
    pub metrics: Metrics,
    /// Set once the operator has reached the API server; `/readyz` is 503 before.
    pub ready: AtomicBool,
}

impl HealthState {
    /// Not ready yet.
    pub fn new(metrics: Metrics) -> Self {
        HealthState {
            metrics,
            ready: AtomicBool::new(false),
        }
    }
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    response
}

/// Routes one request. Public for tests.
pub fn route<B>(state: &HealthState, request: &Request<B>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match request.uri().path() {
        "/metrics" => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            state.metrics.render(),
        ),
        "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" if state.ready.load(Ordering::Relaxed) => {
            respond(StatusCode::OK, "text/plain", "ready\n".into())
        }
        "/readyz" => respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not connected to the API server yet\n".into(),
        ),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    state: Arc<HealthState>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Per-connection failures (e.g. EMFILE) must not stop the endpoint.
                    warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = route(&state, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(state: &HealthState, path: &str) -> Response<Full<Bytes>> {
        route(state, &Request::get(path).body(()).expect("request"))
    }

    #[test]
    fn endpoints() {
        let state = HealthState::new(Metrics::new());
        state.metrics.reconciles.inc();
        assert_eq!(get(&state, "/healthz").status(), StatusCode::OK);
        assert_eq!(
            get(&state, "/readyz").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        state.ready.store(true, Ordering::Relaxed);
        assert_eq!(get(&state, "/readyz").status(), StatusCode::OK);
        assert_eq!(get(&state, "/metrics").status(), StatusCode::OK);
        assert_eq!(get(&state, "/nope").status(), StatusCode::NOT_FOUND);
        assert!(state
            .metrics
            .render()
            .contains("ferrumq_operator_reconciles_total 1"));
    }

    #[tokio::test]
    async fn serves_over_tcp_and_stops() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let token = CancellationToken::new();
        let state = Arc::new(HealthState::new(Metrics::new()));
        let server = tokio::spawn(serve(listener, state, token.clone()));
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut buf = String::new();
        stream.read_to_string(&mut buf).await.expect("read");
        assert!(buf.starts_with("HTTP/1.1 200"), "{buf}");
        token.cancel();
        server.await.expect("join").expect("serve");
    }
}
