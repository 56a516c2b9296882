//! The `MqttBroker` custom resource (`ferrumq.io/v1alpha1`, namespaced).
//!
//! The spec is a curated set of fields with defaults; the broker's own settings
//! (`spec.broker`) are [`ferrumq_broker::config::BrokerSettings`] verbatim, so
//! the schema, the defaults and the validation rules are the broker's. The CRD
//! YAML in `crds/mqttbroker.yaml` is generated from these types
//! (`ferrumq-operator crd`) and a test fails when it drifts.

mod status;
mod types;

use ferrumq_broker::config::BrokerSettings;
use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};

pub use status::{condition_types, ConditionStatus, MqttBrokerStatus};
pub use types::{
    AuthSpec, AutoscalingSpec, ClientAuthSpec, ClusterOperation, ImageSpec, IssuerRef,
    ListenerServiceSpec, ListenerSpec, MonitorSpec, MonitoringSpec, PdbSpec, PersistenceSpec,
    PodOptions, PullPolicy, ServiceType, TlsSpec, DEFAULT_IMAGE_REPOSITORY,
};

/// Longest `metadata.name`: child names append up to 16 characters
/// (`-` plus a 15-character listener name) and StatefulSet pods need room for
/// an ordinal and the controller-revision-hash label (63 characters).
pub const MAX_NAME_LENGTH: usize = 47;

/// Desired state of an MQTT broker cluster.
#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "ferrumq.io",
    version = "v1alpha1",
    kind = "MqttBroker",
    plural = "mqttbrokers",
    shortname = "mqb",
    category = "ferrumq",
    namespaced,
    status = "MqttBrokerStatus",
    doc = "An MQTT 3.1.1/5.0 broker cluster run by the FerrumQ operator.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Desired", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(
        name = "Available",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Available\")].status"
    ),
    printcolumn(
        name = "Degraded",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Degraded\")].status"
    ),
    printcolumn(name = "Image", type_ = "string", json_path = ".status.image", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 47").message("metadata.name must be at most 47 characters so child object names fit Kubernetes limits")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.listeners) || !self.listeners.exists(l, has(l.protocol) && (l.protocol == 'mqtts' || l.protocol == 'wss')) || has(self.tls)").message("listeners with protocol mqtts or wss need spec.tls"),
    validation = Rule::new("!has(self.listeners) || self.listeners.all(l, self.listeners.exists_one(m, m.port == l.port))").message("listener ports must be unique"),
    validation = Rule::new("has(self.persistence) == has(oldSelf.persistence)").message("spec.persistence cannot be added or removed after creation")
)]
pub struct MqttBrokerSpec {
    /// Number of broker pods. Driven by `kubectl scale`, an HPA or KEDA through
    /// the scale subresource.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// Broker container image.
    #[serde(default)]
    pub image: ImageSpec,
    /// CPU and memory requests and limits of the broker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// The broker's own settings (limits, sessions, features, `$SYS`,
    /// shutdown, auth). Same schema and rules as `settings:` in the broker's
    /// config file. `auth.passwordFile`/`auth.aclFile` are set by the
    /// operator from `spec.auth`.
    #[serde(default)]
    pub broker: BrokerSettings,
    /// MQTT listeners; each gets a container port and a client Service.
    #[serde(default = "default_listeners")]
    #[schemars(length(min = 1, max = 8))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub listeners: Vec<ListenerSpec>,
    /// Certificates for mqtts/wss listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// Username/password authentication and ACL from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,
    /// Persistent volumes for broker state; absent means emptyDir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<PersistenceSpec>,
    /// Pod placement, security contexts, extra labels and annotations.
    #[serde(default)]
    pub pod: PodOptions,
    /// PodDisruptionBudget; absent means `maxUnavailable: 1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<PdbSpec>,
    /// ServiceMonitor or PodMonitor for the Prometheus Operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringSpec>,
    /// Reserved for autoscaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
    /// Stop the cluster or pause reconciliation.
    #[serde(default)]
    pub cluster_operation: ClusterOperation,
}

fn default_replicas() -> i32 {
    1
}

fn default_listeners() -> Vec<ListenerSpec> {
    vec![ListenerSpec {
        name: "mqtt".to_owned(),
        protocol: Default::default(),
        port: 1883,
        service: Default::default(),
    }]
}

impl Default for MqttBrokerSpec {
    fn default() -> Self {
        MqttBrokerSpec {
            replicas: default_replicas(),
            image: ImageSpec::default(),
            resources: None,
            broker: BrokerSettings::default(),
            listeners: default_listeners(),
            tls: None,
            auth: None,
            persistence: None,
            pod: PodOptions::default(),
            pod_disruption_budget: None,
            monitoring: None,
            autoscaling: None,
            cluster_operation: ClusterOperation::default(),
        }
    }
}

/// The CRD as YAML, exactly what `ferrumq-operator crd` prints and
/// `crds/mqttbroker.yaml` holds.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&MqttBroker::crd())
}
