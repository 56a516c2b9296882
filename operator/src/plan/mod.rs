//! "Validate into a typed value": [`plan`] turns an `MqttBroker` plus a
//! [`Snapshot`] of what it references into a [`BrokerPlan`], or a
//! [`SpecError`] naming the offending field.
//!
//! Nothing here talks to the cluster; the snapshot is read beforehand by the
//! reconciler's first step, so this is a pure function that tests can drive
//! with hand-made inputs, and the builders only ever see validated values.

pub mod layout;
mod validate;

use std::collections::BTreeMap;
use std::time::Duration;

use ferrumq_broker::config::BrokerConfig;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ResourceRequirements, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::crd::{
    ClientAuthSpec, IssuerRef, ListenerSpec, PersistenceSpec, PodOptions, PullPolicy,
};

pub use validate::{fnv1a64, plan};

/// What the reconciler read from the cluster before planning.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The Secret named by `spec.auth.secretName`, when it exists.
    pub auth_secret: Option<Secret>,
    /// The TLS Secret (`spec.tls.secretName` or the cert-manager one), when it exists.
    pub tls_secret: Option<Secret>,
    /// The broker's StatefulSet, when it exists.
    pub statefulset: Option<StatefulSet>,
    /// Names of client Services this operator made for this broker.
    pub client_services: Vec<String>,
    /// Whether the PodDisruptionBudget exists.
    pub pdb_exists: bool,
    /// Which optional APIs the cluster serves.
    pub apis: ApiAvailability,
    /// Monitors of this broker that exist now.
    pub existing_monitors: Vec<MonitorKind>,
    /// Whether the cert-manager Certificate exists.
    pub certificate_exists: bool,
}

/// Optional third-party APIs, discovered per reconcile so installing the
/// Prometheus Operator or cert-manager later needs no operator restart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiAvailability {
    /// `monitoring.coreos.com/v1` ServiceMonitor.
    pub service_monitor: bool,
    /// `monitoring.coreos.com/v1` PodMonitor.
    pub pod_monitor: bool,
    /// `cert-manager.io/v1` Certificate.
    pub certificate: bool,
}

/// The validated, fully defaulted desired state of one broker.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerPlan {
    /// MqttBroker name.
    pub name: String,
    /// Namespace of the broker and all children.
    pub namespace: String,
    /// Controller owner reference put on every child.
    pub owner: OwnerReference,
    /// `metadata.generation` this plan was made from.
    pub generation: Option<i64>,
    /// StatefulSet replicas: `spec.replicas`, or 0 while stopped.
    pub replicas: i32,
    /// `spec.clusterOperation.stopped`.
    pub stopped: bool,
    /// Full image reference.
    pub image: String,
    /// Image pull policy, when set.
    pub pull_policy: Option<PullPolicy>,
    /// Image pull Secret names.
    pub pull_secrets: Vec<String>,
    /// Container resources.
    pub resources: Option<ResourceRequirements>,
    /// Listeners, validated.
    pub listeners: Vec<ListenerSpec>,
    /// The broker config rendered into the ConfigMap.
    pub config: BrokerConfig,
    /// `config` as YAML, exactly as stored in the ConfigMap.
    pub config_yaml: String,
    /// Hash of the config and referenced Secrets' data.
    pub config_hash: String,
    /// TLS Secret to mount, and the issuer when cert-manager makes it.
    pub tls: Option<TlsPlan>,
    /// Auth Secret to mount.
    pub auth: Option<AuthPlan>,
    /// Volume claim template, or emptyDir when `None`.
    pub persistence: Option<PersistenceSpec>,
    /// Pod placement and security knobs.
    pub pod: PodOptions,
    /// PodDisruptionBudget, when one should exist.
    pub pdb: Option<PdbPlan>,
    /// Monitor to create, when enabled and its CRD exists.
    pub monitor: Option<MonitorPlan>,
    /// Pod `terminationGracePeriodSeconds`.
    pub termination_grace_secs: i64,
    /// Things worth telling the user that do not stop the rollout (e.g. a
    /// monitor requested but its CRD is not installed).
    pub warnings: Vec<String>,
}

/// The TLS Secret and, for cert-manager, the Certificate to request.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsPlan {
    /// Secret mounted at [`layout::TLS_DIR`].
    pub secret_name: String,
    /// Issuer of the Certificate the operator creates, if any.
    pub issuer: Option<IssuerRef>,
    /// DNS names for that Certificate.
    pub dns_names: Vec<String>,
    /// Client certificates required, from the CA in the Secret's `ca_key`.
    pub client_auth: Option<ClientAuthSpec>,
}

/// The auth Secret and which of its keys to project.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthPlan {
    /// Secret name.
    pub secret_name: String,
    /// Key projected to [`layout::PASSWORDS_FILE`].
    pub passwords_key: String,
    /// Key projected to [`layout::ACL_FILE`], when set.
    pub acl_key: Option<String>,
    /// Key projected to [`layout::ADMIN_TOKEN_FILE`], when set.
    pub admin_token_key: Option<String>,
}

/// PodDisruptionBudget bounds (exactly one is set).
#[derive(Debug, Clone, PartialEq)]
pub struct PdbPlan {
    /// `minAvailable`.
    pub min_available: Option<IntOrString>,
    /// `maxUnavailable`.
    pub max_unavailable: Option<IntOrString>,
}

/// Kind of Prometheus Operator monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorKind {
    /// `ServiceMonitor`.
    ServiceMonitor,
    /// `PodMonitor`.
    PodMonitor,
}

impl MonitorKind {
    /// Both kinds, for discovery and orphan deletion.
    pub const ALL: [MonitorKind; 2] = [MonitorKind::ServiceMonitor, MonitorKind::PodMonitor];

    /// Kubernetes kind.
    pub fn kind(self) -> &'static str {
        match self {
            MonitorKind::ServiceMonitor => "ServiceMonitor",
            MonitorKind::PodMonitor => "PodMonitor",
        }
    }

    /// Resource plural.
    pub fn plural(self) -> &'static str {
        match self {
            MonitorKind::ServiceMonitor => "servicemonitors",
            MonitorKind::PodMonitor => "podmonitors",
        }
    }
}

/// A monitor to create.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorPlan {
    /// Which kind.
    pub kind: MonitorKind,
    /// Labels on the monitor.
    pub labels: BTreeMap<String, String>,
    /// Scrape interval.
    pub interval: Option<String>,
}

/// Why a spec cannot be realised. Not an API error: retrying will not help
/// until something changes, so the reconciler records it in `Degraded` and
/// waits (except where `retry_after` says the cluster may change by itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// Dotted path of the field to fix, e.g. `spec.broker.limits.receiveMaximum`.
    pub field: String,
    /// Condition reason, e.g. `InvalidSpec` or `SecretNotFound`.
    pub reason: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// Re-check after this long even without a watch event (for conditions
    /// outside the watched objects, such as a CRD being installed).
    pub retry_after: Option<Duration>,
}

impl SpecError {
    /// An invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            field: field.into(),
            reason: "InvalidSpec",
            message: message.into(),
            retry_after: None,
        }
    }
}

#[cfg(test)]
mod tests;
