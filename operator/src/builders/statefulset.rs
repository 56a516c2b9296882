//! The broker StatefulSet.
//!
//! A StatefulSet (not a Deployment) because brokers need stable identities
//! and DNS names for clustering and, with persistence, a volume each that
//! survives rescheduling and scaling to zero.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, ExecAction, HTTPGetAction, KeyToPath, Lifecycle, LifecycleHandler,
    LocalObjectReference, ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecretVolumeSource,
    SecurityContext, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{child_meta, non_empty, selector_labels};
use crate::plan::layout::{
    self, names, ADMIN_PORT, ADMIN_PORT_NAME, AUTH_DIR, BROKER_BINARY, CONFIG_DIR, CONFIG_KEY,
    DATA_DIR, LABEL_VERSION, TLS_DIR,
};
use crate::plan::BrokerPlan;

/// Unprivileged uid/gid of the broker (the distroless "nonroot" user).
const NON_ROOT_ID: i64 = 65532;

/// The broker StatefulSet.
pub fn statefulset(plan: &BrokerPlan) -> StatefulSet {
    let mut template_labels = plan.pod.labels.clone();
    template_labels.extend(selector_labels(plan));
    if let Some(tag) = plan.image.rsplit_once(':').map(|(_, t)| t) {
        template_labels
            .entry(LABEL_VERSION.to_owned())
            .or_insert_with(|| tag.to_owned());
    }
    let mut template_annotations = plan.pod.annotations.clone();
    template_annotations.insert(
        layout::CONFIG_HASH_ANNOTATION.to_owned(),
        plan.config_hash.clone(),
    );

    StatefulSet {
        metadata: child_meta(plan, names::workload(&plan.name), "broker"),
        spec: StatefulSetSpec {
            replicas: Some(plan.replicas),
            service_name: Some(names::headless_service(&plan.name)),
            // Brokers do not depend on each other's start order; parallel
            // start and scale keeps recovery fast.
            pod_management_policy: Some("Parallel".to_owned()),
            selector: LabelSelector {
                match_labels: Some(selector_labels(plan)),
                ..LabelSelector::default()
            },
            // Volumes outlive scale-down and deletion: `stopped` must keep
            // state, and data is never deleted by a spec edit.
            persistent_volume_claim_retention_policy: plan.persistence.as_ref().map(|_| {
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Retain".to_owned()),
                    when_scaled: Some("Retain".to_owned()),
                }
            }),
            volume_claim_templates: plan.persistence.as_ref().map(|p| {
                vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some("data".to_owned()),
                        labels: Some(selector_labels(plan)),
                        ..ObjectMeta::default()
                    },
                    spec: Some(PersistentVolumeClaimSpec {
                        access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                        storage_class_name: p.storage_class_name.clone(),
                        resources: Some(VolumeResourceRequirements {
                            requests: Some(BTreeMap::from([(
                                "storage".to_owned(),
                                p.size.clone(),
                            )])),
                            ..VolumeResourceRequirements::default()
                        }),
                        ..PersistentVolumeClaimSpec::default()
                    }),
                    ..PersistentVolumeClaim::default()
                }]
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(template_labels),
                    annotations: Some(template_annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(plan)),
            },
            ..StatefulSetSpec::default()
        },
        ..StatefulSet::default()
    }
}

fn pod_spec(plan: &BrokerPlan) -> PodSpec {
    let pod = &plan.pod;
    PodSpec {
        containers: vec![container(plan)],
        volumes: Some(volumes(plan)),
        termination_grace_period_seconds: Some(plan.termination_grace_secs),
        security_context: Some(
            pod.security_context
                .clone()
                .unwrap_or_else(default_pod_security_context),
        ),
        affinity: pod.affinity.clone(),
        tolerations: (!pod.tolerations.is_empty()).then(|| pod.tolerations.clone()),
        node_selector: non_empty(pod.node_selector.clone()),
        topology_spread_constraints: (!pod.topology_spread_constraints.is_empty())
            .then(|| pod.topology_spread_constraints.clone()),
        priority_class_name: pod.priority_class_name.clone(),
        service_account_name: pod.service_account_name.clone(),
        // The broker does not call the Kubernetes API.
        automount_service_account_token: Some(false),
        image_pull_secrets: (!plan.pull_secrets.is_empty()).then(|| {
            plan.pull_secrets
                .iter()
                .map(|name| LocalObjectReference { name: name.clone() })
                .collect()
        }),
        ..PodSpec::default()
    }
}

fn default_pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(NON_ROOT_ID),
        run_as_group: Some(NON_ROOT_ID),
        fs_group: Some(NON_ROOT_ID),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

fn default_container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(ADMIN_PORT_NAME.to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

fn env_from_field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn container(plan: &BrokerPlan) -> Container {
    let mut ports: Vec<ContainerPort> = plan
        .listeners
        .iter()
        .map(|l| ContainerPort {
            name: Some(l.name.clone()),
            container_port: l.port,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        })
        .collect();
    ports.push(ContainerPort {
        name: Some(ADMIN_PORT_NAME.to_owned()),
        container_port: i32::from(ADMIN_PORT),
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    });
    let mut mounts = vec![
        mount("config", CONFIG_DIR),
        mount("data", DATA_DIR),
        mount("tmp", "/tmp"),
    ];
    if plan.tls.is_some() {
        mounts.push(mount("tls", TLS_DIR));
    }
    if plan.auth.is_some() {
        mounts.push(mount("auth", AUTH_DIR));
    }
    Container {
        name: "broker".to_owned(),
        image: Some(plan.image.clone()),
        image_pull_policy: plan.pull_policy.map(|p| p.as_str().to_owned()),
        args: Some(vec![
            "--config".to_owned(),
            format!("{CONFIG_DIR}/{CONFIG_KEY}"),
        ]),
        env: Some(vec![
            env_from_field("POD_NAME", "metadata.name"),
            env_from_field("POD_NAMESPACE", "metadata.namespace"),
        ]),
        ports: Some(ports),
        resources: plan.resources.clone(),
        // Startup gets up to 60 s before liveness applies; liveness restarts
        // a hung broker; readiness takes a draining or overloaded broker out
        // of the client Services without restarting it.
        startup_probe: Some(http_probe("/healthz", 2, 30)),
        liveness_probe: Some(http_probe("/healthz", 10, 3)),
        readiness_probe: Some(http_probe("/readyz", 5, 2)),
        // Drain before SIGTERM: the broker stops accepting, tells clients to
        // reconnect elsewhere and flushes in-flight messages. This assumes
        // the image ships `/ferrumq-broker` with a `drain` subcommand that
        // calls `POST /drain` on the admin listener and returns when done.
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(vec![
                        BROKER_BINARY.to_owned(),
                        "drain".to_owned(),
                        "--admin".to_owned(),
                        format!("127.0.0.1:{ADMIN_PORT}"),
                    ]),
                }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        security_context: Some(
            plan.pod
                .container_security_context
                .clone()
                .unwrap_or_else(default_container_security_context),
        ),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: Some(!matches!(name, "data" | "tmp")),
        ..VolumeMount::default()
    }
}

fn volumes(plan: &BrokerPlan) -> Vec<Volume> {
    let mut volumes = vec![
        Volume {
            name: "config".to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: names::config_map(&plan.name),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        // The root filesystem is read-only; the broker gets a small scratch dir.
        Volume {
            name: "tmp".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
    ];
    if plan.persistence.is_none() {
        volumes.push(Volume {
            name: "data".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        });
    }
    if let Some(tls) = &plan.tls {
        let mut items = vec![
            key_to_path("tls.crt", "tls.crt"),
            key_to_path("tls.key", "tls.key"),
        ];
        if let Some(client_auth) = &tls.client_auth {
            items.push(key_to_path(&client_auth.ca_key, layout::CLIENT_CA_FILE));
        }
        volumes.push(Volume {
            name: "tls".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(tls.secret_name.clone()),
                items: Some(items),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    if let Some(auth) = &plan.auth {
        let mut items = vec![key_to_path(&auth.passwords_key, layout::PASSWORDS_FILE)];
        if let Some(acl) = &auth.acl_key {
            items.push(key_to_path(acl, layout::ACL_FILE));
        }
        if let Some(token) = &auth.admin_token_key {
            items.push(key_to_path(token, layout::ADMIN_TOKEN_FILE));
        }
        volumes.push(Volume {
            name: "auth".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(auth.secret_name.clone()),
                items: Some(items),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    volumes
}

fn key_to_path(key: &str, path: &str) -> KeyToPath {
    KeyToPath {
        key: key.to_owned(),
        path: path.to_owned(),
        ..KeyToPath::default()
    }
}
