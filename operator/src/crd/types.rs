//! The blocks of `MqttBrokerSpec`: image, listeners, TLS, auth, persistence,
//! pod placement, disruption budget, monitoring, autoscaling and cluster
//! operations.
//!
//! Every optional field is skipped when unset so server-side apply patches
//! never carry `null`, and CEL rules (`#[x_kube(validation)]`) reject what a
//! schema alone cannot: exclusive fields, cross-field requirements and
//! immutability.

use std::collections::BTreeMap;

use ferrumq_broker::config::ListenerProtocol;
use k8s_openapi::api::core::v1::{
    Affinity, PodSecurityContext, SecurityContext, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Repository of the broker image when `spec.image.repository` is unset.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "ferrumq/ferrumq-broker";

/// Container image of the broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct ImageSpec {
    /// Image repository.
    pub repository: String,
    /// Image tag. Unset: the operator's own version, so an operator upgrade
    /// also moves brokers to the release it was tested with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Image pull policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
    /// Names of Secrets in this namespace used to pull the image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pull_secrets: Vec<String>,
}

impl Default for ImageSpec {
    fn default() -> Self {
        ImageSpec {
            repository: DEFAULT_IMAGE_REPOSITORY.to_owned(),
            tag: None,
            pull_policy: None,
            pull_secrets: Vec::new(),
        }
    }
}

/// Kubernetes image pull policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    /// Always pull.
    Always,
    /// Pull when the image is not on the node.
    IfNotPresent,
    /// Never pull.
    Never,
}

impl PullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// One MQTT listener: a container port, a broker listener and a client Service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerSpec {
    /// Listener name: 1-15 lowercase letters, digits or `-`, starting with a
    /// letter; used as the port name and in the Service name `<broker>-<name>`.
    /// `admin` is reserved for the metrics/health port.
    #[schemars(
        length(min = 1, max = 15),
        regex(pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Transport: mqtt, mqtts (needs spec.tls), ws or wss (needs spec.tls).
    #[serde(default)]
    pub protocol: ListenerProtocol,
    /// Port the broker listens on and the Service exposes.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// The client Service for this listener.
    #[serde(default)]
    pub service: ListenerServiceSpec,
}

/// Kubernetes Service type of a client Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum ServiceType {
    /// Reachable inside the cluster only.
    #[default]
    ClusterIP,
    /// Also reachable on a port of every node.
    NodePort,
    /// Also reachable through a cloud load balancer.
    LoadBalancer,
}

impl ServiceType {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// How a listener is exposed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.loadBalancerSourceRanges) || size(self.loadBalancerSourceRanges) == 0 || self.type == 'LoadBalancer'").message("loadBalancerSourceRanges needs type LoadBalancer"),
    validation = Rule::new("!has(self.nodePort) || self.type != 'ClusterIP'").message("nodePort needs type NodePort or LoadBalancer")
)]
pub struct ListenerServiceSpec {
    /// Service type.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Annotations on the Service, e.g. for a cloud load balancer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// CIDRs allowed to reach a LoadBalancer Service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_source_ranges: Vec<String>,
    /// Fixed node port for NodePort/LoadBalancer; unset lets Kubernetes pick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub node_port: Option<i32>,
}

/// Certificates for mqtts/wss listeners: an existing Secret or one that
/// cert-manager issues.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.secretName) != has(self.issuerRef)").message("set exactly one of secretName or issuerRef"))]
pub struct TlsSpec {
    /// A `kubernetes.io/tls` Secret in this namespace with `tls.crt` and `tls.key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// A cert-manager issuer; the operator creates a Certificate whose Secret
    /// is `<broker>-tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<IssuerRef>,
    /// Extra DNS names for the certificate (issuerRef only); the Service names
    /// are always included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
    /// Mutual TLS: clients of mqtts and wss listeners must present a
    /// certificate signed by an authority in the TLS Secret. Unset: clients
    /// are not asked for certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuthSpec>,
}

/// Client certificates required on TLS listeners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientAuthSpec {
    /// Key of the TLS Secret holding the PEM certificates of the authorities
    /// that sign client certificates (cert-manager writes its CA issuer's
    /// certificate as `ca.crt`).
    #[serde(default = "default_client_ca_key")]
    pub ca_key: String,
    /// Use the client certificate's subject Common Name as the client's
    /// username, in place of the CONNECT's username and password: the
    /// certificate is the credential, and `spec.auth` ACL `user` rules apply
    /// to that name.
    #[serde(default)]
    pub use_identity_as_username: bool,
}

fn default_client_ca_key() -> String {
    "ca.crt".to_owned()
}

/// A cert-manager issuer reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRef {
    /// Issuer name.
    pub name: String,
    /// `Issuer` (namespaced) or `ClusterIssuer`.
    #[serde(default = "default_issuer_kind")]
    pub kind: String,
    /// API group of the issuer.
    #[serde(default = "default_issuer_group")]
    pub group: String,
}

fn default_issuer_kind() -> String {
    "Issuer".to_owned()
}

fn default_issuer_group() -> String {
    "cert-manager.io".to_owned()
}

/// Username/password authentication and ACLs from a Secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// Secret in this namespace holding the password file (and optionally the ACL).
    pub secret_name: String,
    /// Key of the password file (`username:password-hash` lines) in the Secret.
    #[serde(default = "default_passwords_key")]
    pub passwords_key: String,
    /// Key of the ACL file in the Secret; unset means no ACL (every
    /// authenticated client may use every topic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl_key: Option<String>,
    /// Key of a bearer token in the Secret that turns on the broker's admin REST
    /// API (`/api/v1/` on the admin port: list clients, disconnect one, delete
    /// a retained message); unset: the API is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token_key: Option<String>,
}

fn default_passwords_key() -> String {
    "passwords".to_owned()
}

/// Persistent storage for broker state. Absent: an emptyDir (state is lost
/// when a pod is rescheduled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("spec.persistence is immutable: a StatefulSet's volume claim templates cannot change"))]
pub struct PersistenceSpec {
    /// StorageClass of the volume claims; unset uses the cluster default. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("storageClassName is immutable"))]
    pub storage_class_name: Option<String>,
    /// Size of each pod's volume.
    #[serde(default = "default_storage_size")]
    pub size: Quantity,
}

fn default_storage_size() -> Quantity {
    Quantity("1Gi".to_owned())
}

/// Pod placement, security and metadata knobs, passed to the pod template.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct PodOptions {
    /// Pod affinity and anti-affinity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Tolerations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Node selector.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Topology spread constraints.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// PriorityClass of the pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// ServiceAccount of the pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Pod security context. Unset: non-root (uid 65532), RuntimeDefault seccomp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Broker container security context. Unset: no privilege escalation,
    /// read-only root filesystem, all capabilities dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
    /// Extra labels on the pods (selector labels cannot be overridden).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations on the pods.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// PodDisruptionBudget. Absent: one with `maxUnavailable: 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.minAvailable) && has(self.maxUnavailable))").message("set minAvailable or maxUnavailable, not both"))]
pub struct PdbSpec {
    /// Create the PodDisruptionBudget.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Pods that must stay available (number or percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
    /// Pods that may be unavailable (number or percentage); 1 when neither is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

fn default_true() -> bool {
    true
}

/// Prometheus Operator scraping of the admin port's `/metrics`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.serviceMonitor) && self.serviceMonitor.enabled && has(self.podMonitor) && self.podMonitor.enabled)").message("enable serviceMonitor or podMonitor, not both"))]
pub struct MonitoringSpec {
    /// A ServiceMonitor selecting the headless Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_monitor: Option<MonitorSpec>,
    /// A PodMonitor selecting the broker pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_monitor: Option<MonitorSpec>,
}

/// One Prometheus Operator monitor.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct MonitorSpec {
    /// Create it (only when its CRD exists in the cluster).
    pub enabled: bool,
    /// Labels on the monitor, typically what the Prometheus selects on.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Scrape interval, e.g. `30s`; unset uses Prometheus' default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

/// Reserved for autoscaling (a later issue fills it). Today scaling works
/// through the `scale` subresource (`kubectl scale`, an HPA or KEDA).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct AutoscalingSpec {}

/// Operational switches.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct ClusterOperation {
    /// Scale the StatefulSet to zero while keeping Services, config and volumes.
    pub stopped: bool,
    /// Leave every child object alone: the operator neither writes nor deletes
    /// anything until this is false again.
    pub reconciliation_paused: bool,
}
