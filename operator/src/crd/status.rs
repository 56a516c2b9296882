//! `MqttBroker` status: standard conditions, replica counts for the scale
//! subresource, and what is actually deployed (config hash, image).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition types, following the Deployment-style trio.
pub mod condition_types {
    /// At least one broker pod is ready to serve clients.
    pub const AVAILABLE: &str = "Available";
    /// A rollout or scale operation is under way.
    pub const PROGRESSING: &str = "Progressing";
    /// The spec cannot be realised (invalid spec, missing Secret, API errors).
    pub const DEGRADED: &str = "Degraded";
}

/// Observed state of an MqttBroker.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct MqttBrokerStatus {
    /// The `metadata.generation` this status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Available`, `Progressing` and `Degraded`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Broker pods that exist (the scale subresource's status replicas).
    pub replicas: i32,
    /// Broker pods that are ready.
    pub ready_replicas: i32,
    /// Broker pods running the current pod template.
    pub updated_replicas: i32,
    /// Pods the StatefulSet is asked for (0 while stopped).
    pub desired_replicas: i32,
    /// Label selector of the broker pods, for the scale subresource (HPA, KEDA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Hash of the rendered config and referenced Secrets in the pod template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// Broker image in the pod template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// `True`, `False` or `Unknown`, as Kubernetes spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    Unknown,
}

impl ConditionStatus {
    /// Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }

    /// `True` when `value`, else `False`.
    pub fn from_bool(value: bool) -> Self {
        if value {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

impl MqttBrokerStatus {
    /// The condition of `type_`, if present.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// Whether condition `type_` is present and `True`.
    pub fn is_true(&self, type_: &str) -> bool {
        self.condition(type_).is_some_and(|c| c.status == "True")
    }

    /// Sets a condition. `lastTransitionTime` only moves when the status
    /// changes, so watchers can tell how long a state has lasted; `previous`
    /// is the status read from the cluster.
    pub fn set_condition(
        &mut self,
        previous: Option<&MqttBrokerStatus>,
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
        generation: Option<i64>,
    ) {
        let last_transition_time = previous
            .and_then(|p| p.condition(type_))
            .filter(|c| c.status == status.as_str())
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| Time(Timestamp::now()));
        let condition = Condition {
            type_: type_.to_owned(),
            status: status.as_str().to_owned(),
            reason: reason.to_owned(),
            message: message.into(),
            observed_generation: generation,
            last_transition_time,
        };
        match self.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(existing) => *existing = condition,
            None => self.conditions.push(condition),
        }
    }
}
