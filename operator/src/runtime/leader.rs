//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several
//! operator replicas exactly one reconciles at a time.
//!
//! Uses `kube-lease-manager` (built for kube 5 / k8s-openapi 0.29): it
//! creates the Lease if needed, acquires it with server-side apply (so two
//! candidates cannot both win), renews it before it expires and releases it
//! when we stop. A replica that loses the Lease stops reconciling at once and
//! exits non-zero: its caches and in-flight work belong to a term that is
//! over, and Kubernetes restarts it as a fresh candidate.

use std::future::Future;
use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::metrics::Metrics;

/// Lease parameters.
#[derive(Debug, Clone)]
pub struct LeaderConfig {
    /// Lease object name.
    pub lease_name: String,
    /// Namespace of the Lease (normally the operator's own).
    pub namespace: String,
    /// This candidate's identity (normally the pod name).
    pub identity: String,
    /// How long a Lease is valid after its last renewal.
    pub lease_duration: Duration,
    /// How long before expiry the holder renews.
    pub renew_grace: Duration,
}

/// Why leader election ended.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The Lease could not be created or read.
    #[error("leader election: {0}")]
    Lease(#[from] LeaseManagerError),
    /// Another replica took the Lease while we were leading.
    #[error("lost the leader Lease {0}")]
    Lost(String),
    /// The lease task ended unexpectedly.
    #[error("leader election task ended")]
    TaskEnded,
}

/// Waits for the Lease, then runs `lead` until it finishes, `shutdown` is
/// cancelled, or leadership is lost.
pub async fn run_as_leader<F, Fut>(
    client: Client,
    config: LeaderConfig,
    metrics: Metrics,
    shutdown: CancellationToken,
    lead: F,
) -> Result<(), LeaderError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let manager = LeaseManagerBuilder::new(client, &config.lease_name)
        .with_namespace(&config.namespace)
        .with_identity(&config.identity)
        .with_duration(config.lease_duration.as_secs())
        .with_grace(config.renew_grace.as_secs())
        .build()
        .await?;
    let (mut is_leader, task) = manager.watch().await;
    info!(lease = %config.lease_name, identity = %config.identity, "waiting for the leader Lease");
    loop {
        if *is_leader.borrow_and_update() {
            break;
        }
        tokio::select! {
            () = shutdown.cancelled() => {
                drop(is_leader);
                let _ = task.await;
                return Ok(());
            }
            changed = is_leader.changed() => {
                if changed.is_err() {
                    return Err(LeaderError::TaskEnded);
                }
            }
        }
    }
    info!(lease = %config.lease_name, "acquired the leader Lease; reconciling");
    metrics.leader.set(1);
    let lead = lead();
    tokio::pin!(lead);
    let outcome = loop {
        tokio::select! {
            () = &mut lead => break Ok(()),
            changed = is_leader.changed() => {
                if changed.is_err() {
                    break Err(LeaderError::TaskEnded);
                }
                if !*is_leader.borrow_and_update() {
                    warn!(lease = %config.lease_name, "lost the leader Lease");
                    break Err(LeaderError::Lost(config.lease_name.clone()));
                }
            }
        }
    };
    metrics.leader.set(0);
    // Only the leader exports per-broker replica counts; a former leader's
    // would go stale and duplicate the new leader's series.
    metrics.broker_replicas.reset();
    // Closing the channel makes the manager release the Lease, so a
    // successor need not wait for it to expire.
    drop(is_leader);
    match task.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => warn!(error = %e, "releasing the Lease failed"),
        Err(e) => warn!(error = %e, "lease task panicked"),
    }
    outcome
}
