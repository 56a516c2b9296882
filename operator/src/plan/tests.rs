use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;

use super::*;
use crate::crd::{
    AuthSpec, ClientAuthSpec, ListenerSpec, MonitorSpec, MonitoringSpec, MqttBroker,
    MqttBrokerSpec, PdbSpec, ServiceType, TlsSpec,
};
use ferrumq_broker::config::ListenerProtocol;

fn broker(spec: MqttBrokerSpec) -> MqttBroker {
    let mut b = MqttBroker::new("b", spec);
    b.metadata.namespace = Some("ns".into());
    b.metadata.uid = Some("uid-1".into());
    b.metadata.generation = Some(3);
    b
}

fn secret(keys: &[&str]) -> Secret {
    Secret {
        data: Some(
            keys.iter()
                .map(|k| ((*k).to_owned(), ByteString(b"x".to_vec())))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Secret::default()
    }
}

fn listener(name: &str, protocol: ListenerProtocol, port: i32) -> ListenerSpec {
    ListenerSpec {
        name: name.into(),
        protocol,
        port,
        service: Default::default(),
    }
}

fn field_of(spec: MqttBrokerSpec, snapshot: &Snapshot) -> String {
    match plan(&broker(spec), snapshot, "t") {
        Err(e) => e.field,
        Ok(_) => panic!("expected a SpecError"),
    }
}

#[test]
fn defaults_plan() {
    let p = plan(
        &broker(MqttBrokerSpec::default()),
        &Snapshot::default(),
        "9.9.9",
    )
    .unwrap();
    assert_eq!(p.image, "ferrumq/ferrumq-broker:9.9.9");
    assert_eq!(p.replicas, 1);
    assert_eq!(p.termination_grace_secs, 45);
    assert_eq!(p.generation, Some(3));
    assert_eq!(p.owner.uid, "uid-1");
    assert!(p.pdb.is_some());
    assert_eq!(p.config.listeners[0].bind, "0.0.0.0:1883");
    assert!(p.config_yaml.contains("maxPacketSize: 1048576"));
}

#[test]
fn each_rule_names_its_field() {
    let none = Snapshot::default();
    let cases: Vec<(MqttBrokerSpec, &str)> = vec![
        (
            MqttBrokerSpec {
                replicas: -1,
                ..Default::default()
            },
            "spec.replicas",
        ),
        (
            MqttBrokerSpec {
                listeners: vec![],
                ..Default::default()
            },
            "spec.listeners",
        ),
        (
            MqttBrokerSpec {
                listeners: vec![listener("admin", ListenerProtocol::Mqtt, 1)],
                ..Default::default()
            },
            "spec.listeners[0].name",
        ),
        (
            MqttBrokerSpec {
                listeners: vec![listener("Up", ListenerProtocol::Mqtt, 1)],
                ..Default::default()
            },
            "spec.listeners[0].name",
        ),
        (
            MqttBrokerSpec {
                listeners: vec![
                    listener("a", ListenerProtocol::Mqtt, 1),
                    listener("a", ListenerProtocol::Ws, 2),
                ],
                ..Default::default()
            },
            "spec.listeners[1].name",
        ),
        (
            MqttBrokerSpec {
                listeners: vec![
                    listener("a", ListenerProtocol::Mqtt, 1),
                    listener("b", ListenerProtocol::Ws, 1),
                ],
                ..Default::default()
            },
            "spec.listeners[1].port",
        ),
        (
            MqttBrokerSpec {
                listeners: vec![listener("a", ListenerProtocol::Mqtt, 9464)],
                ..Default::default()
            },
            "spec.listeners[0].port",
        ),
        (
            MqttBrokerSpec {
                listeners: vec![listener("a", ListenerProtocol::Mqtt, 70000)],
                ..Default::default()
            },
            "spec.listeners[0].port",
        ),
        (
            MqttBrokerSpec {
                listeners: vec![listener("s", ListenerProtocol::Wss, 443)],
                ..Default::default()
            },
            "spec.tls",
        ),
        (
            MqttBrokerSpec {
                tls: Some(TlsSpec::default()),
                ..Default::default()
            },
            "spec.tls",
        ),
        (
            MqttBrokerSpec {
                pod_disruption_budget: Some(PdbSpec {
                    enabled: true,
                    min_available: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(1)),
                }),
                ..Default::default()
            },
            "spec.podDisruptionBudget",
        ),
        (
            MqttBrokerSpec {
                monitoring: Some(MonitoringSpec {
                    service_monitor: Some(MonitorSpec {
                        enabled: true,
                        ..Default::default()
                    }),
                    pod_monitor: Some(MonitorSpec {
                        enabled: true,
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            },
            "spec.monitoring",
        ),
    ];
    for (spec, field) in cases {
        assert_eq!(field_of(spec.clone(), &none), field, "{spec:?}");
    }
}

#[test]
fn service_rules() {
    let mut l = listener("a", ListenerProtocol::Mqtt, 1883);
    l.service.load_balancer_source_ranges = vec!["10.0.0.0/8".into()];
    let spec = MqttBrokerSpec {
        listeners: vec![l.clone()],
        ..Default::default()
    };
    assert_eq!(
        field_of(spec, &Snapshot::default()),
        "spec.listeners[0].service.loadBalancerSourceRanges"
    );
    l.service.load_balancer_source_ranges.clear();
    l.service.node_port = Some(30000);
    let spec = MqttBrokerSpec {
        listeners: vec![l.clone()],
        ..Default::default()
    };
    assert_eq!(
        field_of(spec, &Snapshot::default()),
        "spec.listeners[0].service.nodePort"
    );
    l.service.type_ = ServiceType::NodePort;
    let spec = MqttBrokerSpec {
        listeners: vec![l],
        ..Default::default()
    };
    assert!(plan(&broker(spec), &Snapshot::default(), "t").is_ok());
}

#[test]
fn broker_settings_errors_point_into_spec_broker() {
    let mut spec = MqttBrokerSpec::default();
    spec.broker.features.maximum_qos = 7;
    assert_eq!(
        field_of(spec, &Snapshot::default()),
        "spec.broker.features.maximumQos"
    );
    let mut spec = MqttBrokerSpec::default();
    spec.broker.auth.password_file = Some("/x".into());
    assert_eq!(
        field_of(spec, &Snapshot::default()),
        "spec.broker.auth.passwordFile"
    );
    let mut spec = MqttBrokerSpec::default();
    spec.broker.auth.allow_anonymous = Some(false);
    assert_eq!(
        field_of(spec, &Snapshot::default()),
        "spec.broker.auth.allowAnonymous"
    );
}

#[test]
fn secrets_are_checked() {
    let spec = MqttBrokerSpec {
        auth: Some(AuthSpec {
            secret_name: "u".into(),
            passwords_key: "passwords".into(),
            acl_key: Some("acl".into()),
            admin_token_key: None,
        }),
        ..Default::default()
    };
    let err = plan(&broker(spec.clone()), &Snapshot::default(), "t").unwrap_err();
    assert_eq!(
        (err.field.as_str(), err.reason),
        ("spec.auth.secretName", "SecretNotFound")
    );
    let snap = Snapshot {
        auth_secret: Some(secret(&["passwords"])),
        ..Default::default()
    };
    let err = plan(&broker(spec.clone()), &snap, "t").unwrap_err();
    assert_eq!(
        (err.field.as_str(), err.reason),
        ("spec.auth.aclKey", "SecretKeyMissing")
    );
    let snap = Snapshot {
        auth_secret: Some(secret(&["passwords", "acl"])),
        ..Default::default()
    };
    let p = plan(&broker(spec.clone()), &snap, "t").unwrap();
    assert!(p.config_yaml.contains("aclFile: /etc/ferrumq/auth/acl"));
    assert!(
        !p.config_yaml.contains("apiTokenFile"),
        "the admin API is off"
    );

    // The admin API's token comes from the same Secret.
    let mut with_api = spec;
    if let Some(auth) = &mut with_api.auth {
        auth.admin_token_key = Some("admin-token".into());
    }
    let err = plan(&broker(with_api.clone()), &snap, "t").unwrap_err();
    assert_eq!(
        (err.field.as_str(), err.reason),
        ("spec.auth.adminTokenKey", "SecretKeyMissing")
    );
    let snap = Snapshot {
        auth_secret: Some(secret(&["passwords", "acl", "admin-token"])),
        ..Default::default()
    };
    let p = plan(&broker(with_api), &snap, "t").unwrap();
    assert!(p
        .config_yaml
        .contains("apiTokenFile: /etc/ferrumq/auth/admin-token"));

    let spec = MqttBrokerSpec {
        listeners: vec![listener("s", ListenerProtocol::Mqtts, 8883)],
        tls: Some(TlsSpec {
            secret_name: Some("t".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let snap = Snapshot {
        tls_secret: Some(secret(&["tls.crt"])),
        ..Default::default()
    };
    assert_eq!(
        plan(&broker(spec.clone()), &snap, "t").unwrap_err().reason,
        "SecretKeyMissing"
    );
    let snap = Snapshot {
        tls_secret: Some(secret(&["tls.crt", "tls.key"])),
        ..Default::default()
    };
    let p = plan(&broker(spec.clone()), &snap, "t").unwrap();
    assert!(p.config_yaml.contains("certFile: /etc/ferrumq/tls/tls.crt"));
    assert!(!p.config_yaml.contains("clientCaFile"));

    // Client certificates: the CA must be in the TLS Secret under caKey.
    let mut mutual = spec;
    if let Some(tls) = &mut mutual.tls {
        tls.client_auth = Some(ClientAuthSpec {
            ca_key: "devices-ca.pem".into(),
            use_identity_as_username: true,
        });
    }
    let err = plan(&broker(mutual.clone()), &snap, "t").unwrap_err();
    assert_eq!(
        (err.field.as_str(), err.reason),
        ("spec.tls.clientAuth.caKey", "SecretKeyMissing")
    );
    let snap = Snapshot {
        tls_secret: Some(secret(&["tls.crt", "tls.key", "devices-ca.pem"])),
        ..Default::default()
    };
    let p = plan(&broker(mutual), &snap, "t").unwrap();
    assert!(p
        .config_yaml
        .contains("clientCaFile: /etc/ferrumq/tls/client-ca.crt"));
    assert!(p.config_yaml.contains("useIdentityAsUsername: true"));
}

#[test]
fn hash_follows_config_and_secret_data() {
    let spec = MqttBrokerSpec {
        auth: Some(AuthSpec {
            secret_name: "u".into(),
            passwords_key: "p".into(),
            acl_key: None,
            admin_token_key: None,
        }),
        ..Default::default()
    };
    let snap = |v: &[u8]| Snapshot {
        auth_secret: Some(Secret {
            data: Some(BTreeMap::from([("p".to_owned(), ByteString(v.to_vec()))])),
            ..Secret::default()
        }),
        ..Default::default()
    };
    let a = plan(&broker(spec.clone()), &snap(b"one"), "t")
        .unwrap()
        .config_hash;
    let b = plan(&broker(spec.clone()), &snap(b"two"), "t")
        .unwrap()
        .config_hash;
    let a2 = plan(&broker(spec.clone()), &snap(b"one"), "t")
        .unwrap()
        .config_hash;
    // The broker reloads a changed auth Secret itself: no rolling restart for it...
    assert_eq!(a, b);
    assert_eq!(a, a2);
    // ...unless it was told not to look for changes.
    let mut no_reload = spec.clone();
    no_reload.broker.auth.reload_interval_secs = 0;
    let c = plan(&broker(no_reload.clone()), &snap(b"one"), "t")
        .unwrap()
        .config_hash;
    let d = plan(&broker(no_reload), &snap(b"two"), "t")
        .unwrap()
        .config_hash;
    assert_ne!(c, d);
    // Nor for a renewed certificate: the broker reloads its TLS files too.
    let tls_spec = MqttBrokerSpec {
        listeners: vec![listener("s", ListenerProtocol::Mqtts, 8883)],
        tls: Some(TlsSpec {
            secret_name: Some("t".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let tls_snap = |v: &[u8]| Snapshot {
        tls_secret: Some(Secret {
            data: Some(BTreeMap::from([
                ("tls.crt".to_owned(), ByteString(v.to_vec())),
                ("tls.key".to_owned(), ByteString(b"k".to_vec())),
            ])),
            ..Secret::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        plan(&broker(tls_spec.clone()), &tls_snap(b"one"), "t")
            .unwrap()
            .config_hash,
        plan(&broker(tls_spec), &tls_snap(b"two"), "t")
            .unwrap()
            .config_hash
    );
    // Replica count is not config: scaling must not roll pods.
    let mut scaled = spec;
    scaled.replicas = 5;
    assert_eq!(
        plan(&broker(scaled), &snap(b"one"), "t")
            .unwrap()
            .config_hash,
        a
    );
}

#[test]
fn stopped_means_zero_replicas_and_no_pdb() {
    let mut spec = MqttBrokerSpec {
        replicas: 4,
        ..Default::default()
    };
    spec.cluster_operation.stopped = true;
    let p = plan(&broker(spec), &Snapshot::default(), "t").unwrap();
    assert_eq!(p.replicas, 0);
    assert!(p.pdb.is_none());
}

#[test]
fn fnv_is_stable() {
    // Reference values of FNV-1a 64; a change here would roll every broker.
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
}
