//! Fixtures shared by the integration tests: example MqttBrokers and the
//! Secrets they reference.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use ferrumq_operator::crd::MqttBroker;
use ferrumq_operator::plan::{ApiAvailability, Snapshot};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;

pub const TEST_UID: &str = "8c5e1f8e-0000-4000-8000-000000000001";

pub fn operator_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Names of the YAML files in `examples/<kind>/`, sorted.
pub fn example_names(kind: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(operator_dir().join("examples").join(kind))
        .expect("examples dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .map(|n| n.trim_end_matches(".yaml").to_owned())
        .collect();
    names.sort();
    names
}

pub fn example_text(kind: &str, name: &str) -> String {
    std::fs::read_to_string(operator_dir().join(format!("examples/{kind}/{name}.yaml")))
        .expect("example file")
}

/// An example as it would come back from the API server: with a uid and a
/// generation.
pub fn example_broker(name: &str) -> MqttBroker {
    let mut broker: MqttBroker =
        serde_yaml::from_str(&example_text("valid", name)).expect("valid example parses");
    broker.metadata.uid = Some(TEST_UID.to_owned());
    broker.metadata.generation = Some(1);
    broker
}

pub fn secret(name: &str, namespace: &str, keys: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(
            keys.iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Secret::default()
    }
}

/// A snapshot in which every Secret the broker references exists and every
/// optional API is installed.
pub fn complete_snapshot(broker: &MqttBroker) -> Snapshot {
    let ns = broker.metadata.namespace.clone().unwrap_or_default();
    let auth_secret = broker.spec.auth.as_ref().map(|a| {
        let mut keys = vec![(a.passwords_key.as_str(), "alice:$argon2id$hash")];
        if let Some(acl) = &a.acl_key {
            keys.push((acl.as_str(), "user alice\ntopic readwrite #\n"));
        }
        if let Some(token) = &a.admin_token_key {
            keys.push((token.as_str(), "admin-api-token"));
        }
        secret(&a.secret_name, &ns, &keys)
    });
    let tls_secret = broker
        .spec
        .tls
        .as_ref()
        .and_then(|t| Some((t.secret_name.as_ref()?, t.client_auth.as_ref())))
        .map(|(n, client_auth)| {
            let mut keys = vec![("tls.crt", "CERT"), ("tls.key", "KEY")];
            if let Some(c) = client_auth {
                keys.push((c.ca_key.as_str(), "CA"));
            }
            secret(n, &ns, &keys)
        });
    Snapshot {
        auth_secret,
        tls_secret,
        apis: ApiAvailability {
            service_monitor: true,
            pod_monitor: true,
            certificate: true,
        },
        ..Snapshot::default()
    }
}
