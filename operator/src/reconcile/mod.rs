//! The reconciler: one straight line of steps per MqttBroker.
//!
//! 1. dereference — the only step that reads the cluster ([`dereference`]);
//! 2. validate into a typed [`BrokerPlan`](crate::plan::BrokerPlan) ([`plan`]);
//! 3. build every child with pure functions ([`build_all`]);
//! 4. apply in order by server-side apply ([`apply::apply_children`]);
//! 5. compute conditions ([`status`]);
//! 6. delete children the spec no longer asks for;
//! 7. patch the status.
//!
//! An invalid spec stops at step 2: `Degraded` names the field, nothing is
//! written to children, and the reconciler waits for a change. API errors
//! fail the reconcile and [`error_policy`] retries with per-object backoff.

pub mod apply;
mod dereference;
mod error;
pub mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

pub use dereference::dereference;
pub use error::Error;

use crate::builders::build_all;
use crate::crd::{condition_types as ct, MqttBroker, MqttBrokerStatus};
use crate::metrics::Metrics;
use crate::plan::layout::{CONFIG_HASH_ANNOTATION, FIELD_MANAGER};
use crate::plan::{plan, SpecError};

/// How often a healthy broker is re-checked without any watch event, to
/// repair drift the watches might have missed.
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(300);

/// Shared state of all reconciles.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Event publisher.
    pub recorder: Recorder,
    /// Operator metrics.
    pub metrics: Metrics,
    /// Image tag used when `spec.image.tag` is unset.
    pub default_image_tag: String,
    /// Consecutive failures per `namespace/name`, for backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context publishing events as `ferrumq-operator` (instance: the pod
    /// name when known).
    pub fn new(client: Client, metrics: Metrics, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance,
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            default_image_tag: env!("CARGO_PKG_VERSION").to_owned(),
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn reset_failures(&self, key: &str) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(key);
        }
    }

    fn bump_failures(&self, key: &str) -> u32 {
        match self.failures.lock() {
            Ok(mut f) => {
                let n = f.entry(key.to_owned()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            Err(_) => 1,
        }
    }
}

fn key(broker: &MqttBroker) -> String {
    format!(
        "{}/{}",
        broker.namespace().unwrap_or_default(),
        broker.name_any()
    )
}

/// Reconciles one MqttBroker. See the module docs for the steps.
pub async fn reconcile(broker: Arc<MqttBroker>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.reconciles.inc();
    let result = reconcile_inner(&broker, &ctx).await;
    ctx.metrics
        .duration
        .observe(started.elapsed().as_secs_f64());
    if result.is_ok() {
        ctx.reset_failures(&key(&broker));
    }
    result
}

async fn reconcile_inner(broker: &MqttBroker, ctx: &Context) -> Result<Action, Error> {
    let name = broker.name_any();
    let ns = broker
        .namespace()
        .ok_or_else(|| Error::MissingNamespace(name.clone()))?;
    let previous = broker.status.as_ref();
    let generation = broker.meta().generation;

    if broker.spec.cluster_operation.reconciliation_paused {
        if let Some(status) = status::paused_status(generation, previous) {
            patch_status(ctx, &ns, &name, &status).await?;
        }
        return Ok(Action::await_change());
    }

    // 1. dereference
    let snapshot = dereference(&ctx.client, broker).await?;

    // 2. validate into a typed value
    let plan = match plan(broker, &snapshot, &ctx.default_image_tag) {
        Ok(plan) => plan,
        Err(spec_error) => return report_spec_error(broker, ctx, &ns, spec_error).await,
    };

    // 3. build
    let children = build_all(&plan);

    // 4. apply in order
    let statefulset = match apply::apply_children(&ctx.client, &plan, &children).await {
        Ok(sts) => sts,
        Err(e) => {
            let status = status::api_error_status(&e.to_string(), generation, previous);
            // Best effort: the original error is what gets retried.
            if let Err(status_err) = patch_status(ctx, &ns, &name, &status).await {
                warn!(broker = %key(broker), error = %status_err, "could not record apply failure");
            }
            return Err(e);
        }
    };

    // 5. conditions
    let new_status = status::reconciled_status(&plan, &statefulset, previous);

    // 6. delete orphans
    let deleted = apply::delete_orphans(&ctx.client, &plan, &children, &snapshot).await?;
    if !deleted.is_empty() {
        info!(broker = %key(broker), ?deleted, "deleted children no longer in the spec");
    }

    // 7. status
    patch_status(ctx, &ns, &name, &new_status).await?;
    ctx.metrics.set_broker_replicas(
        &ns,
        &name,
        new_status.desired_replicas,
        new_status.ready_replicas,
        new_status.replicas,
    );

    // Events: creation, config rollout, recovery.
    let old_hash = snapshot.statefulset.as_ref().and_then(|sts| {
        sts.spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(CONFIG_HASH_ANNOTATION).cloned())
    });
    match old_hash {
        None if snapshot.statefulset.is_none() => {
            publish(
                ctx,
                broker,
                EventType::Normal,
                "Created",
                "Create",
                format!(
                    "created StatefulSet, Services and config for {} replicas",
                    plan.replicas
                ),
            )
            .await;
        }
        Some(old) if old != plan.config_hash => {
            publish(
                ctx,
                broker,
                EventType::Normal,
                "ConfigRollout",
                "RollOut",
                format!(
                    "config changed ({old} -> {}); rolling the brokers",
                    plan.config_hash
                ),
            )
            .await;
        }
        _ => {}
    }
    if previous.is_some_and(|p| p.is_true(ct::DEGRADED)) {
        publish(
            ctx,
            broker,
            EventType::Normal,
            "Recovered",
            "Reconcile",
            "spec is valid again and has been applied".to_owned(),
        )
        .await;
    }
    Ok(Action::requeue(RESYNC_INTERVAL))
}

/// Records a [`SpecError`] in the status and an event, writes nothing else,
/// and waits for a change (or re-checks later when the cause is outside the
/// watched objects).
async fn report_spec_error(
    broker: &MqttBroker,
    ctx: &Context,
    ns: &str,
    error: SpecError,
) -> Result<Action, Error> {
    let name = broker.name_any();
    ctx.metrics
        .errors
        .with_label_values(&["invalid_spec"])
        .inc();
    let previous = broker.status.as_ref();
    let status = status::spec_error_status(&error, broker.meta().generation, previous);
    let unchanged = previous
        .and_then(|p| p.condition(ct::DEGRADED))
        .zip(status.condition(ct::DEGRADED))
        .is_some_and(|(a, b)| {
            a.message == b.message
                && a.status == b.status
                && a.observed_generation == b.observed_generation
        });
    if !unchanged {
        patch_status(ctx, ns, &name, &status).await?;
        publish(
            ctx,
            broker,
            EventType::Warning,
            error.reason,
            "Validate",
            error.to_string(),
        )
        .await;
    }
    warn!(broker = %key(broker), field = %error.field, reason = error.reason, "{}", error.message);
    Ok(match error.retry_after {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

async fn patch_status(
    ctx: &Context,
    ns: &str,
    name: &str,
    status: &MqttBrokerStatus,
) -> Result<(), Error> {
    let api: Api<MqttBroker> = Api::namespaced(ctx.client.clone(), ns);
    let patch = json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(error::kube_step(format!(
            "patch MqttBroker status {ns}/{name}"
        )))?;
    Ok(())
}

/// Publishes an event; failures are logged, never fatal (events are advisory).
async fn publish(
    ctx: &Context,
    broker: &MqttBroker,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: action.to_owned(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &broker.object_ref(&())).await {
        warn!(broker = %key(broker), error = %e, "could not publish event");
    }
}

/// Retry policy for failed reconciles: exponential backoff per object,
/// 5 s doubling up to 5 minutes, reset by the next success.
pub fn error_policy(broker: Arc<MqttBroker>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics
        .errors
        .with_label_values(&[error.metric_label()])
        .inc();
    let failures = ctx.bump_failures(&key(&broker));
    let delay = backoff(failures);
    warn!(broker = %key(&broker), %error, failures, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Backoff after `failures` consecutive failures.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(6);
    Duration::from_secs(5u64 << exp).min(Duration::from_secs(300))
}
