//! Third-party objects (Prometheus Operator monitors, cert-manager
//! Certificates) as `DynamicObject`s, so the operator needs neither crate's
//! types nor their CRDs at build time; the reconciler applies them only when
//! discovery shows the CRD is installed.

use kube::api::{ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use serde_json::{json, Value};

use super::{child_meta, common_labels, selector_labels};
use crate::plan::layout::{names, ADMIN_PORT_NAME};
use crate::plan::{BrokerPlan, MonitorKind};

/// API resource of a monitor kind.
pub fn monitor_resource(kind: MonitorKind) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", kind.kind()),
        kind.plural(),
    )
}

/// API resource of cert-manager's Certificate.
pub fn certificate_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cert-manager.io", "v1", "Certificate"),
        "certificates",
    )
}

/// The ServiceMonitor or PodMonitor scraping `/metrics` on the admin port.
pub fn monitor(plan: &BrokerPlan) -> Option<DynamicObject> {
    let m = plan.monitor.as_ref()?;
    let mut metadata = child_meta(plan, names::workload(&plan.name), "monitoring");
    let mut labels = m.labels.clone();
    labels.extend(common_labels(plan, "monitoring"));
    metadata.labels = Some(labels);
    let mut endpoint = json!({ "port": ADMIN_PORT_NAME, "path": "/metrics" });
    if let (Some(interval), Some(obj)) = (&m.interval, endpoint.as_object_mut()) {
        obj.insert("interval".to_owned(), Value::String(interval.clone()));
    }
    let spec = match m.kind {
        MonitorKind::ServiceMonitor => json!({
            "selector": { "matchLabels": common_labels(plan, "headless") },
            "endpoints": [endpoint],
        }),
        MonitorKind::PodMonitor => json!({
            "selector": { "matchLabels": selector_labels(plan) },
            "podMetricsEndpoints": [endpoint],
        }),
    };
    let mut obj = DynamicObject::new(&plan.name, &monitor_resource(m.kind));
    obj.metadata = metadata;
    obj.data = json!({ "spec": spec });
    Some(obj)
}

/// The cert-manager Certificate whose Secret the TLS listeners mount.
pub fn certificate(plan: &BrokerPlan) -> Option<DynamicObject> {
    let tls = plan.tls.as_ref()?;
    let issuer = tls.issuer.as_ref()?;
    let mut obj = DynamicObject::new(&tls.secret_name, &certificate_resource());
    obj.metadata = child_meta(plan, names::certificate(&plan.name), "tls");
    obj.data = json!({
        "spec": {
            "secretName": tls.secret_name,
            "dnsNames": tls.dns_names,
            "issuerRef": { "name": issuer.name, "kind": issuer.kind, "group": issuer.group },
            "usages": ["server auth", "digital signature", "key encipherment"],
        }
    });
    Some(obj)
}
