//! The admin HTTP listener, separate from the MQTT listeners: `/metrics` for Prometheus,
//! `/healthz` and `/readyz` for Kubernetes probes, `POST /drain` for a pod's preStop hook, and
//! with a token the REST API under `/api/v1/` ([`api`]).
//!
//! It keeps answering while the broker drains, so a probe sees "not ready" rather than a
//! refused connection.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::server::Broker;

pub mod api;

pub use api::{ApiToken, ApiTokenError};

/// Serves admin requests until the process exits; the `/api/v1/` requests only with `token`.
pub async fn serve(broker: Arc<Broker>, listener: TcpListener, token: Option<Arc<ApiToken>>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let broker = Arc::clone(&broker);
        let token = token.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(Arc::clone(&broker), token.clone(), req));
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "admin connection ended with an error");
            }
        });
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Why the broker is not ready for new clients, if it is not.
pub fn not_ready_reason(broker: &Broker) -> Option<&'static str> {
    if broker.shutdown.is_cancelled() {
        return Some("draining");
    }
    let max = broker.settings().limits.max_connections as usize;
    if broker.connections.load(Ordering::Relaxed) >= max {
        return Some("overloaded: at the connection limit");
    }
    None
}

async fn handle(
    broker: Arc<Broker>,
    token: Option<Arc<ApiToken>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path();
    if path.starts_with("/api/v1/") {
        let (method, query, headers) = (req.method(), req.uri().query(), req.headers());
        return Ok(api::handle(
            &broker,
            token.as_deref(),
            method,
            path,
            query,
            headers,
        ));
    }
    let response = match (req.method(), path) {
        (&Method::GET, "/metrics") => {
            let mut response = text(StatusCode::OK, broker.stats.render());
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => match not_ready_reason(&broker) {
            None => text(StatusCode::OK, "ready\n"),
            Some(reason) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
        },
        (&Method::POST, "/drain") => drain(&broker).await,
        (_, "/metrics" | "/healthz" | "/readyz" | "/drain") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(response)
}

/// Stops accepting clients, disconnects them (5.0: DISCONNECT 0x8B), and answers once they
/// are gone or the grace period ends. The process keeps running until it is signalled.
async fn drain(broker: &Broker) -> Response<Full<Bytes>> {
    tracing::info!("drain requested: disconnecting clients");
    broker.begin_shutdown();
    broker.tasks.close();
    let grace = Duration::from_secs(u64::from(broker.settings().shutdown.grace_period_secs));
    match tokio::time::timeout(grace, broker.tasks.wait()).await {
        Ok(()) => text(StatusCode::OK, "drained\n"),
        Err(_) => text(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "{} connections still open after the grace period\n",
                broker.connections.load(Ordering::Relaxed)
            ),
        ),
    }
}
