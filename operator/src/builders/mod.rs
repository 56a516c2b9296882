//! Pure functions from a validated [`BrokerPlan`] to the child objects.
//!
//! No I/O and no clock: the same plan always yields the same objects, which
//! is what lets server-side apply be idempotent and the golden tests compare
//! byte for byte. Every child carries the standard labels and a controller
//! owner reference to the MqttBroker, so Kubernetes garbage-collects it with
//! the broker and `.owns()` watches route its events back to the reconciler.

mod config;
mod dynamic;
mod pdb;
mod services;
mod statefulset;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::DynamicObject;

use crate::plan::layout::{
    APP_NAME, FIELD_MANAGER, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME,
};
use crate::plan::BrokerPlan;

pub use config::config_map;
pub use dynamic::{certificate, certificate_resource, monitor, monitor_resource};
pub use pdb::pod_disruption_budget;
pub use services::{client_services, headless_service, CLIENT_SERVICE_COMPONENT};
pub use statefulset::statefulset;

/// Every child of one broker, in apply order.
#[derive(Debug, Clone)]
pub struct Children {
    /// The broker config.
    pub config_map: ConfigMap,
    /// Stable pod DNS for clustering.
    pub headless_service: Service,
    /// One per listener.
    pub client_services: Vec<Service>,
    /// cert-manager Certificate, when TLS comes from an issuer.
    pub certificate: Option<DynamicObject>,
    /// The brokers.
    pub statefulset: StatefulSet,
    /// Disruption budget, unless disabled or stopped.
    pub pdb: Option<PodDisruptionBudget>,
    /// ServiceMonitor or PodMonitor, when enabled and installed.
    pub monitor: Option<DynamicObject>,
}

/// Builds every child object for `plan`.
pub fn build_all(plan: &BrokerPlan) -> Children {
    Children {
        config_map: config_map(plan),
        headless_service: headless_service(plan),
        client_services: client_services(plan),
        certificate: certificate(plan),
        statefulset: statefulset(plan),
        pdb: pod_disruption_budget(plan),
        monitor: monitor(plan),
    }
}

/// Labels that select this broker's pods. Never includes user labels, since
/// a StatefulSet selector is immutable.
pub fn selector_labels(plan: &BrokerPlan) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_owned(), APP_NAME.to_owned()),
        (LABEL_INSTANCE.to_owned(), plan.name.clone()),
    ])
}

/// Selector labels plus component and manager; what every child carries and
/// what the reconciler lists by to find orphans.
pub fn common_labels(plan: &BrokerPlan, component: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(plan);
    labels.insert(LABEL_COMPONENT.to_owned(), component.to_owned());
    labels.insert(LABEL_MANAGED_BY.to_owned(), FIELD_MANAGER.to_owned());
    labels
}

/// The selector string for pods, as in `status.selector`.
pub fn selector_string(plan: &BrokerPlan) -> String {
    selector_labels(plan)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Metadata for a child: name, namespace, labels, owner reference.
fn child_meta(plan: &BrokerPlan, name: String, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(plan.namespace.clone()),
        labels: Some(common_labels(plan, component)),
        owner_references: Some(vec![plan.owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// `Some(map)` unless empty, so empty maps are not applied (and owned).
fn non_empty<K: Ord, V>(map: BTreeMap<K, V>) -> Option<BTreeMap<K, V>> {
    (!map.is_empty()).then_some(map)
}
