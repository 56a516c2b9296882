//! [`plan`]: the spec checks a schema cannot make (or that an API server
//! without CEL would skip), defaulting, and rendering of the broker config.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use ferrumq_broker::config::{
    check_listener_name, AdminConfig, BrokerConfig, ConfigError, ListenerConfig, LogConfig,
    PersistenceConfig, TlsFiles,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

use super::layout::{self, names};
use super::{
    AuthPlan, BrokerPlan, MonitorKind, MonitorPlan, PdbPlan, Snapshot, SpecError, TlsPlan,
};
use crate::crd::{MqttBroker, ServiceType, MAX_NAME_LENGTH};

/// Validates `broker` against `snapshot` and returns the desired state.
///
/// `default_image_tag` is used when `spec.image.tag` is unset (the operator's
/// version). The only errors are [`SpecError`]s: things the user or the
/// cluster's contents must change.
pub fn plan(
    broker: &MqttBroker,
    snapshot: &Snapshot,
    default_image_tag: &str,
) -> Result<BrokerPlan, SpecError> {
    let spec = &broker.spec;
    let name = broker.name_any();
    if name.is_empty() || name.len() > MAX_NAME_LENGTH {
        return Err(SpecError::invalid(
            "metadata.name",
            format!("must be 1 to {MAX_NAME_LENGTH} characters"),
        ));
    }
    let namespace = broker
        .namespace()
        .ok_or_else(|| SpecError::invalid("metadata.namespace", "MqttBroker is namespaced"))?;
    let owner = owner_reference(broker)?;
    if spec.replicas < 0 {
        return Err(SpecError::invalid("spec.replicas", "must not be negative"));
    }

    check_listeners(broker)?;
    let tls = plan_tls(broker, &name, &namespace, snapshot)?;
    let auth = plan_auth(broker, snapshot)?;
    let pdb = plan_pdb(broker)?;
    let (monitor, mut warnings) = plan_monitor(broker, snapshot)?;

    let config = render_config(broker, tls.as_ref(), auth.as_ref())?;
    let config_yaml = format!(
        "# Rendered by ferrumq-operator from MqttBroker {namespace}/{name}; edits are overwritten.\n{}",
        config
            .to_yaml_string()
            .map_err(|e| SpecError::invalid("spec.broker", e.to_string()))?
    );
    // The broker re-reads its password, ACL and TLS files when they change (the kubelet
    // updates a mounted Secret in place; the rendered TLS files keep their default reload
    // interval), so a changed Secret rolls the pods, disconnecting every client, only when
    // the broker was told not to look (auth reloadIntervalSecs 0).
    let auth_reloads = config.settings.auth.reload_interval_secs > 0;
    let config_hash = config_hash(
        &config_yaml,
        [snapshot.auth_secret.as_ref().filter(|_| !auth_reloads)],
    );

    if let Some(t) = &tls {
        if t.issuer.is_none() && snapshot.tls_secret.is_none() {
            warnings.push(format!("TLS Secret {} not found yet", t.secret_name));
        }
    }

    let tag = spec.image.tag.as_deref().unwrap_or(default_image_tag);
    let image = format!("{}:{tag}", spec.image.repository);
    let stopped = spec.cluster_operation.stopped;
    Ok(BrokerPlan {
        name,
        namespace,
        owner,
        generation: broker.meta().generation,
        replicas: if stopped { 0 } else { spec.replicas },
        stopped,
        image,
        pull_policy: spec.image.pull_policy,
        pull_secrets: spec.image.pull_secrets.clone(),
        resources: spec.resources.clone(),
        listeners: spec.listeners.clone(),
        termination_grace_secs: i64::from(config.settings.shutdown.grace_period_secs)
            + layout::TERMINATION_MARGIN_SECS,
        config,
        config_yaml,
        config_hash,
        tls,
        auth,
        persistence: spec.persistence.clone(),
        pod: spec.pod.clone(),
        pdb: if stopped { None } else { pdb },
        monitor,
        warnings,
    })
}

fn owner_reference(broker: &MqttBroker) -> Result<OwnerReference, SpecError> {
    broker
        .controller_owner_ref(&())
        .ok_or_else(|| SpecError::invalid("metadata.uid", "object has no uid yet"))
}

fn check_listeners(broker: &MqttBroker) -> Result<(), SpecError> {
    let listeners = &broker.spec.listeners;
    if listeners.is_empty() {
        return Err(SpecError::invalid(
            "spec.listeners",
            "at least one listener is required",
        ));
    }
    let mut names = HashSet::new();
    let mut ports = HashSet::new();
    for (i, l) in listeners.iter().enumerate() {
        let field = format!("spec.listeners[{i}]");
        check_listener_name(&l.name).map_err(|m| SpecError::invalid(format!("{field}.name"), m))?;
        if l.name == layout::ADMIN_PORT_NAME {
            return Err(SpecError::invalid(
                format!("{field}.name"),
                "\"admin\" is reserved for the metrics/health port",
            ));
        }
        if !names.insert(l.name.as_str()) {
            return Err(SpecError::invalid(
                format!("{field}.name"),
                format!("duplicate listener name {:?}", l.name),
            ));
        }
        if !(1..=65535).contains(&l.port) {
            return Err(SpecError::invalid(
                format!("{field}.port"),
                "must be within 1..=65535",
            ));
        }
        if l.port == i32::from(layout::ADMIN_PORT) {
            return Err(SpecError::invalid(
                format!("{field}.port"),
                format!("{} is the admin port", layout::ADMIN_PORT),
            ));
        }
        if !ports.insert(l.port) {
            return Err(SpecError::invalid(
                format!("{field}.port"),
                format!("duplicate port {}", l.port),
            ));
        }
        if l.protocol.needs_tls() && broker.spec.tls.is_none() {
            return Err(SpecError::invalid(
                "spec.tls",
                format!(
                    "listener {:?} uses {} and needs spec.tls",
                    l.name,
                    l.protocol.as_str()
                ),
            ));
        }
        let svc = &l.service;
        if !svc.load_balancer_source_ranges.is_empty() && svc.type_ != ServiceType::LoadBalancer {
            return Err(SpecError::invalid(
                format!("{field}.service.loadBalancerSourceRanges"),
                "needs service type LoadBalancer",
            ));
        }
        if svc.node_port.is_some() && svc.type_ == ServiceType::ClusterIP {
            return Err(SpecError::invalid(
                format!("{field}.service.nodePort"),
                "needs service type NodePort or LoadBalancer",
            ));
        }
    }
    Ok(())
}

fn plan_tls(
    broker: &MqttBroker,
    name: &str,
    namespace: &str,
    snapshot: &Snapshot,
) -> Result<Option<TlsPlan>, SpecError> {
    let Some(tls) = &broker.spec.tls else {
        return Ok(None);
    };
    match (&tls.secret_name, &tls.issuer_ref) {
        (Some(secret), None) => {
            if secret.is_empty() {
                return Err(SpecError::invalid(
                    "spec.tls.secretName",
                    "must not be empty",
                ));
            }
            let Some(found) = &snapshot.tls_secret else {
                return Err(missing_secret("spec.tls.secretName", secret));
            };
            for key in ["tls.crt", "tls.key"] {
                require_key(found, key, "spec.tls.secretName", secret)?;
            }
            if let Some(client_auth) = &tls.client_auth {
                require_key(
                    found,
                    &client_auth.ca_key,
                    "spec.tls.clientAuth.caKey",
                    secret,
                )?;
            }
            Ok(Some(TlsPlan {
                secret_name: secret.clone(),
                issuer: None,
                dns_names: Vec::new(),
                client_auth: tls.client_auth.clone(),
            }))
        }
        (None, Some(issuer)) => {
            if !snapshot.apis.certificate {
                return Err(SpecError {
                    field: "spec.tls.issuerRef".to_owned(),
                    reason: "CertManagerMissing",
                    message: "cert-manager (cert-manager.io/v1 Certificate) is not installed"
                        .to_owned(),
                    retry_after: Some(Duration::from_secs(300)),
                });
            }
            let mut dns_names = vec![
                format!("*.{}.{namespace}.svc", names::headless_service(name)),
                format!(
                    "*.{}.{namespace}.svc.cluster.local",
                    names::headless_service(name)
                ),
            ];
            for l in &broker.spec.listeners {
                let svc = names::client_service(name, &l.name);
                dns_names.push(format!("{svc}.{namespace}.svc"));
                dns_names.push(format!("{svc}.{namespace}.svc.cluster.local"));
            }
            dns_names.extend(tls.dns_names.iter().cloned());
            // The issued Secret may not exist yet; once it does, it must hold the CA.
            if let (Some(client_auth), Some(found)) = (&tls.client_auth, &snapshot.tls_secret) {
                let secret = names::certificate(name);
                require_key(
                    found,
                    &client_auth.ca_key,
                    "spec.tls.clientAuth.caKey",
                    &secret,
                )?;
            }
            Ok(Some(TlsPlan {
                secret_name: names::certificate(name),
                issuer: Some(issuer.clone()),
                dns_names,
                client_auth: tls.client_auth.clone(),
            }))
        }
        _ => Err(SpecError::invalid(
            "spec.tls",
            "set exactly one of secretName or issuerRef",
        )),
    }
}

fn plan_auth(broker: &MqttBroker, snapshot: &Snapshot) -> Result<Option<AuthPlan>, SpecError> {
    let settings = &broker.spec.broker.auth;
    for (field, value) in [
        ("spec.broker.auth.passwordFile", &settings.password_file),
        ("spec.broker.auth.aclFile", &settings.acl_file),
    ] {
        if value.is_some() {
            return Err(SpecError::invalid(
                field,
                "is set by the operator from spec.auth; use spec.auth instead",
            ));
        }
    }
    let Some(auth) = &broker.spec.auth else {
        if settings.allow_anonymous == Some(false) {
            return Err(SpecError::invalid(
                "spec.broker.auth.allowAnonymous",
                "is false but spec.auth is not set, so no client could ever connect",
            ));
        }
        return Ok(None);
    };
    if auth.secret_name.is_empty() {
        return Err(SpecError::invalid(
            "spec.auth.secretName",
            "must not be empty",
        ));
    }
    let Some(secret) = &snapshot.auth_secret else {
        return Err(missing_secret("spec.auth.secretName", &auth.secret_name));
    };
    require_key(
        secret,
        &auth.passwords_key,
        "spec.auth.passwordsKey",
        &auth.secret_name,
    )?;
    if let Some(acl) = &auth.acl_key {
        require_key(secret, acl, "spec.auth.aclKey", &auth.secret_name)?;
    }
    if let Some(token) = &auth.admin_token_key {
        require_key(secret, token, "spec.auth.adminTokenKey", &auth.secret_name)?;
    }
    Ok(Some(AuthPlan {
        secret_name: auth.secret_name.clone(),
        passwords_key: auth.passwords_key.clone(),
        acl_key: auth.acl_key.clone(),
        admin_token_key: auth.admin_token_key.clone(),
    }))
}

fn missing_secret(field: &str, name: &str) -> SpecError {
    SpecError {
        field: field.to_owned(),
        reason: "SecretNotFound",
        message: format!("Secret {name:?} does not exist in this namespace"),
        retry_after: None,
    }
}

fn require_key(secret: &Secret, key: &str, field: &str, name: &str) -> Result<(), SpecError> {
    let in_data = secret.data.as_ref().is_some_and(|d| d.contains_key(key));
    let in_string_data = secret
        .string_data
        .as_ref()
        .is_some_and(|d| d.contains_key(key));
    if in_data || in_string_data {
        Ok(())
    } else {
        Err(SpecError {
            field: field.to_owned(),
            reason: "SecretKeyMissing",
            message: format!("Secret {name:?} has no key {key:?}"),
            retry_after: None,
        })
    }
}

fn plan_pdb(broker: &MqttBroker) -> Result<Option<PdbPlan>, SpecError> {
    match &broker.spec.pod_disruption_budget {
        None => Ok(Some(PdbPlan {
            min_available: None,
            max_unavailable: Some(IntOrString::Int(1)),
        })),
        Some(p) if !p.enabled => Ok(None),
        Some(p) => match (&p.min_available, &p.max_unavailable) {
            (Some(_), Some(_)) => Err(SpecError::invalid(
                "spec.podDisruptionBudget",
                "set minAvailable or maxUnavailable, not both",
            )),
            (None, None) => Ok(Some(PdbPlan {
                min_available: None,
                max_unavailable: Some(IntOrString::Int(1)),
            })),
            (min, max) => Ok(Some(PdbPlan {
                min_available: min.clone(),
                max_unavailable: max.clone(),
            })),
        },
    }
}

fn plan_monitor(
    broker: &MqttBroker,
    snapshot: &Snapshot,
) -> Result<(Option<MonitorPlan>, Vec<String>), SpecError> {
    let Some(m) = &broker.spec.monitoring else {
        return Ok((None, Vec::new()));
    };
    let enabled = |s: &Option<crate::crd::MonitorSpec>| s.as_ref().filter(|s| s.enabled).cloned();
    let (kind, spec) = match (enabled(&m.service_monitor), enabled(&m.pod_monitor)) {
        (Some(_), Some(_)) => {
            return Err(SpecError::invalid(
                "spec.monitoring",
                "enable serviceMonitor or podMonitor, not both",
            ))
        }
        (Some(s), None) => (MonitorKind::ServiceMonitor, s),
        (None, Some(p)) => (MonitorKind::PodMonitor, p),
        (None, None) => return Ok((None, Vec::new())),
    };
    let available = match kind {
        MonitorKind::ServiceMonitor => snapshot.apis.service_monitor,
        MonitorKind::PodMonitor => snapshot.apis.pod_monitor,
    };
    if !available {
        return Ok((
            None,
            vec![format!(
                "{} requested but its CRD (monitoring.coreos.com/v1) is not installed; skipped",
                kind.kind()
            )],
        ));
    }
    Ok((
        Some(MonitorPlan {
            kind,
            labels: spec.labels,
            interval: spec.interval,
        }),
        Vec::new(),
    ))
}

/// Builds the broker's config file from the spec and checks it with the
/// broker's own validator, translating field paths back to the spec.
fn render_config(
    broker: &MqttBroker,
    tls: Option<&TlsPlan>,
    auth: Option<&AuthPlan>,
) -> Result<BrokerConfig, SpecError> {
    let spec = &broker.spec;
    let client_auth = tls.and_then(|t| t.client_auth.as_ref());
    let tls_files = || TlsFiles {
        cert_file: format!("{}/tls.crt", layout::TLS_DIR).into(),
        key_file: format!("{}/tls.key", layout::TLS_DIR).into(),
        client_ca_file: client_auth
            .map(|_| format!("{}/{}", layout::TLS_DIR, layout::CLIENT_CA_FILE).into()),
        use_identity_as_username: client_auth.is_some_and(|c| c.use_identity_as_username),
        ..TlsFiles::default()
    };
    let listeners = spec
        .listeners
        .iter()
        .map(|l| ListenerConfig {
            name: l.name.clone(),
            bind: format!("0.0.0.0:{}", l.port),
            protocol: l.protocol,
            tls: (tls.is_some() && l.protocol.needs_tls()).then(tls_files),
        })
        .collect();
    let mut settings = spec.broker.clone();
    if let Some(auth) = auth {
        settings.auth.password_file =
            Some(format!("{}/{}", layout::AUTH_DIR, layout::PASSWORDS_FILE).into());
        settings.auth.acl_file = auth
            .acl_key
            .as_ref()
            .map(|_| format!("{}/{}", layout::AUTH_DIR, layout::ACL_FILE).into());
    }
    let config = BrokerConfig {
        listeners,
        admin: AdminConfig {
            bind: format!("0.0.0.0:{}", layout::ADMIN_PORT),
            api_token_file: auth
                .and_then(|a| a.admin_token_key.as_ref())
                .map(|_| format!("{}/{}", layout::AUTH_DIR, layout::ADMIN_TOKEN_FILE).into()),
        },
        settings,
        log: LogConfig::default(),
        // The data volume is always mounted (a claim with `spec.persistence`, an emptyDir
        // without), so the broker always saves there: with an emptyDir its state still
        // survives a container restart, though not the pod's rescheduling.
        persistence: PersistenceConfig {
            data_dir: Some(layout::DATA_DIR.into()),
            ..PersistenceConfig::default()
        },
    };
    config.validate().map_err(|e| match e {
        ConfigError::Invalid { field, message } => {
            SpecError::invalid(spec_field_for_config_field(&field), message)
        }
        other => SpecError::invalid("spec.broker", other.to_string()),
    })?;
    Ok(config)
}

/// Maps a broker config path to where the user wrote it in the MqttBroker.
fn spec_field_for_config_field(field: &str) -> String {
    if let Some(rest) = field.strip_prefix("settings.") {
        format!("spec.broker.{rest}")
    } else if field.starts_with("listeners") {
        format!("spec.{field}")
    } else {
        format!("spec ({field})")
    }
}

/// Hash over the rendered config and the data of the given Secrets, so a
/// change to what the pods read at start-up alters the pod template and rolls
/// them.
fn config_hash<'a>(
    config_yaml: &str,
    secrets: impl IntoIterator<Item = Option<&'a Secret>>,
) -> String {
    let mut input = config_yaml.as_bytes().to_vec();
    for secret in secrets {
        input.push(0xff);
        let Some(secret) = secret else { continue };
        // BTreeMap iteration is sorted, so the hash is independent of the
        // order the API server returned the keys in.
        let empty = BTreeMap::new();
        for (k, v) in secret.data.as_ref().unwrap_or(&empty) {
            input.extend_from_slice(k.as_bytes());
            input.push(0);
            input.extend_from_slice(&v.0);
            input.push(0);
        }
        let empty = BTreeMap::new();
        for (k, v) in secret.string_data.as_ref().unwrap_or(&empty) {
            input.extend_from_slice(k.as_bytes());
            input.push(1);
            input.extend_from_slice(v.as_bytes());
            input.push(0);
        }
    }
    format!("{:016x}", fnv1a64(&input))
}

/// FNV-1a, 64 bit. Chosen over `DefaultHasher` because its output is fixed
/// forever: a Rust upgrade of the operator must not roll every broker.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
