//! `ferrumq-operator run`: the HTTP endpoint, leader election and the
//! controllers, with graceful shutdown on SIGTERM/SIGINT.

pub mod controller;
pub mod leader;
pub mod server;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::metrics::Metrics;
use crate::reconcile::Context;
use leader::{LeaderConfig, LeaderError};
use server::HealthState;

/// Options of `ferrumq-operator run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Namespaces to watch; empty means all namespaces.
    pub namespaces: Vec<String>,
    /// Address of `/metrics`, `/healthz`, `/readyz`.
    pub http_addr: SocketAddr,
    /// Leader election; `None` disables it (a single replica, or local runs).
    pub leader: Option<LeaderOptions>,
    /// Pod name, used in events and as the Lease identity.
    pub pod_name: Option<String>,
}

/// Lease settings from the command line.
#[derive(Debug, Clone)]
pub struct LeaderOptions {
    /// Lease name.
    pub lease_name: String,
    /// Lease namespace; `None` uses the client's default namespace.
    pub lease_namespace: Option<String>,
}

/// Why `run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No usable kubeconfig or in-cluster config.
    #[error("Kubernetes client: {0}")]
    Client(#[from] kube::Error),
    /// The HTTP endpoint could not bind.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Leader election failed or leadership was lost.
    #[error(transparent)]
    Leader(#[from] LeaderError),
}

/// Runs until SIGTERM/SIGINT (or loss of leadership).
pub async fn run(options: RunOptions) -> Result<(), RunError> {
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());

    let metrics = Metrics::new();
    let health = Arc::new(HealthState::new(metrics.clone()));
    let listener = tokio::net::TcpListener::bind(options.http_addr)
        .await
        .map_err(|source| RunError::Bind {
            addr: options.http_addr,
            source,
        })?;
    info!(addr = %options.http_addr, "serving /metrics, /healthz and /readyz");
    let server = tokio::spawn(server::serve(listener, health.clone(), shutdown.clone()));

    let client = Client::try_default().await?;
    client.apiserver_version().await?;
    health.ready.store(true, Ordering::Relaxed);

    let ctx = Arc::new(Context::new(
        client.clone(),
        metrics.clone(),
        options.pod_name.clone(),
    ));
    let namespaces: Vec<Option<String>> = if options.namespaces.is_empty() {
        vec![None]
    } else {
        options.namespaces.iter().cloned().map(Some).collect()
    };
    info!(?namespaces, "watching MqttBrokers (None = all namespaces)");
    let controllers = {
        let (client, ctx, shutdown) = (client.clone(), ctx.clone(), shutdown.clone());
        move || async move {
            futures::future::join_all(namespaces.into_iter().map(|ns| {
                controller::run_controller(client.clone(), ns, ctx.clone(), shutdown.clone())
            }))
            .await;
        }
    };

    let result = match options.leader {
        Some(leader) => {
            let config = LeaderConfig {
                lease_name: leader.lease_name,
                namespace: leader
                    .lease_namespace
                    .unwrap_or_else(|| client.default_namespace().to_owned()),
                identity: options
                    .pod_name
                    .clone()
                    .unwrap_or_else(|| format!("ferrumq-operator-{}", std::process::id())),
                lease_duration: Duration::from_secs(15),
                renew_grace: Duration::from_secs(5),
            };
            leader::run_as_leader(client, config, metrics, shutdown.clone(), controllers)
                .await
                .map_err(RunError::from)
        }
        None => {
            controllers().await;
            Ok(())
        }
    };
    shutdown.cancel();
    if let Err(e) = server.await {
        error!(error = %e, "HTTP server task failed");
    }
    info!("stopped");
    result
}

fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        info!("shutdown signal received; finishing in-flight reconciles");
        shutdown.cancel();
    });
}
