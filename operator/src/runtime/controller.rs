//! Wires the reconciler into kube-runtime controllers: one per watched
//! namespace (or one cluster-wide), owning the children and watching the
//! Secrets that brokers reference.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, Controller};
use kube::{Api, Client, ResourceExt};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::crd::MqttBroker;
use crate::plan::layout::{names, FIELD_MANAGER, LABEL_MANAGED_BY};
use crate::reconcile::{error_policy, reconcile, Context};

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Brokers in the Secret's namespace that mount it (auth or TLS).
pub fn brokers_referencing(
    store: &Store<MqttBroker>,
    secret: &Secret,
) -> Vec<ObjectRef<MqttBroker>> {
    let name = secret.name_any();
    let ns = secret.namespace();
    store
        .state()
        .iter()
        .filter(|b| b.namespace() == ns)
        .filter(|b| {
            let auth = b.spec.auth.as_ref().is_some_and(|a| a.secret_name == name);
            let tls = b.spec.tls.as_ref().is_some_and(|t| match &t.secret_name {
                Some(s) => *s == name,
                None => names::certificate(&b.name_any()) == name,
            });
            auth || tls
        })
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

/// Runs one controller over `namespace` (all namespaces when `None`) until
/// `shutdown` is cancelled.
pub async fn run_controller(
    client: Client,
    namespace: Option<String>,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
) {
    let ns = namespace.as_deref();
    // Children are found by our managed-by label, so the operator does not
    // cache every StatefulSet/Service/ConfigMap in the cluster.
    let owned = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={FIELD_MANAGER}"));
    let controller = Controller::new(api::<MqttBroker>(&client, ns), watcher::Config::default());
    let store = controller.store();
    let mapper_store = store.clone();
    let metrics = ctx.metrics.clone();
    let ns_scope = namespace.clone();
    controller
        .owns(api::<StatefulSet>(&client, ns), owned.clone())
        .owns(api::<ConfigMap>(&client, ns), owned.clone())
        .owns(api::<Service>(&client, ns), owned.clone())
        .owns(api::<PodDisruptionBudget>(&client, ns), owned)
        .watches(
            api::<Secret>(&client, ns),
            watcher::Config::default(),
            move |secret| brokers_referencing(&mapper_store, &secret),
        )
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            match result {
                Ok((obj, _)) => debug!(broker = %obj, "reconciled"),
                Err(e) => warn!(error = %e, "reconcile failed"),
            }
            let brokers = store.state();
            let managed = i64::try_from(brokers.len()).unwrap_or(i64::MAX);
            metrics.managed.set(managed);
            // Deleted MqttBrokers stop being exported.
            let live: HashSet<(String, String)> = brokers
                .iter()
                .map(|b| (b.namespace().unwrap_or_default(), b.name_any()))
                .collect();
            metrics.retain_brokers(ns_scope.as_deref(), &live);
            futures::future::ready(())
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AuthSpec, IssuerRef, MqttBrokerSpec, TlsSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use kube::runtime::reflector::store::Writer;

    fn broker(name: &str, ns: &str, spec: MqttBrokerSpec) -> MqttBroker {
        let mut b = MqttBroker::new(name, spec);
        b.metadata.namespace = Some(ns.into());
        b
    }

    fn secret(name: &str, ns: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        }
    }

    #[test]
    fn secrets_map_to_the_brokers_that_mount_them() {
        let mut writer = Writer::<MqttBroker>::default();
        let auth = MqttBrokerSpec {
            auth: Some(AuthSpec {
                secret_name: "users".into(),
                passwords_key: "passwords".into(),
                acl_key: None,
                admin_token_key: None,
            }),
            ..MqttBrokerSpec::default()
        };
        let issued = MqttBrokerSpec {
            tls: Some(TlsSpec {
                issuer_ref: Some(IssuerRef {
                    name: "ca".into(),
                    kind: "Issuer".into(),
                    group: "cert-manager.io".into(),
                }),
                ..TlsSpec::default()
            }),
            ..MqttBrokerSpec::default()
        };
        for b in [
            broker("a", "ns1", auth.clone()),
            broker("b", "ns2", auth),
            broker("c", "ns1", issued),
            broker("d", "ns1", MqttBrokerSpec::default()),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(b));
        }
        let store = writer.as_reader();
        let names = |s: &Secret| {
            let mut v: Vec<String> = brokers_referencing(&store, s)
                .into_iter()
                .map(|r| r.name)
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&secret("users", "ns1")), ["a"]);
        assert_eq!(names(&secret("users", "ns2")), ["b"]);
        assert_eq!(names(&secret("c-tls", "ns1")), ["c"]);
        assert!(names(&secret("other", "ns1")).is_empty());
    }
}
