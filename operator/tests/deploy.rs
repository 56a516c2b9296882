//! `deploy/operator.yaml` parses into typed objects, and its RBAC covers
//! every resource the reconciler writes.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::ClusterRole;
use serde::Deserialize;

#[test]
fn manifests_parse_and_rbac_covers_children() {
    let text = include_str!("../deploy/operator.yaml");
    let mut cluster_role = None;
    let mut deployment = None;
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = serde_yaml::Value::deserialize(doc).expect("YAML document");
        match value.get("kind").and_then(|k| k.as_str()) {
            Some("ClusterRole") => {
                cluster_role =
                    Some(serde_yaml::from_value::<ClusterRole>(value).expect("ClusterRole"))
            }
            Some("Deployment") => {
                deployment = Some(serde_yaml::from_value::<Deployment>(value).expect("Deployment"))
            }
            _ => {}
        }
    }
    let role = cluster_role.expect("a ClusterRole");
    let rules = role.rules.unwrap_or_default();
    let can = |group: &str, resource: &str, verb: &str| {
        rules.iter().any(|r| {
            r.api_groups
                .as_ref()
                .is_some_and(|g| g.iter().any(|x| x == group))
                && r.resources
                    .as_ref()
                    .is_some_and(|rs| rs.iter().any(|x| x == resource))
                && r.verbs.iter().any(|v| v == verb)
        })
    };
    for (group, resource) in [
        ("apps", "statefulsets"),
        ("", "services"),
        ("", "configmaps"),
        ("policy", "poddisruptionbudgets"),
        ("monitoring.coreos.com", "servicemonitors"),
        ("monitoring.coreos.com", "podmonitors"),
        ("cert-manager.io", "certificates"),
    ] {
        for verb in ["get", "list", "watch", "patch", "delete"] {
            assert!(can(group, resource, verb), "{verb} {group}/{resource}");
        }
    }
    assert!(can("ferrumq.io", "mqttbrokers/status", "patch"));
    assert!(can("", "secrets", "watch"));
    assert!(can("events.k8s.io", "events", "create"));
    let deployment = deployment.expect("a Deployment");
    assert_eq!(deployment.spec.replicas, Some(2));
}
