//! Reconcile scenarios against an in-memory API server (tests/fake).

mod common;
mod fake;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake::Cluster;
use ferrumq_operator::crd::{AuthSpec, ListenerSpec, MonitorSpec, MonitoringSpec, MqttBroker};
use ferrumq_operator::metrics::Metrics;
use ferrumq_operator::reconcile::{error_policy, reconcile, Context, RESYNC_INTERVAL};
use kube::runtime::controller::Action;
use serde_json::{json, Value};

const NS: &str = "mqtt";

fn broker_path(name: &str) -> String {
    format!("/apis/ferrumq.io/v1alpha1/namespaces/{NS}/mqttbrokers/{name}")
}
fn sts_path(name: &str) -> String {
    format!("/apis/apps/v1/namespaces/{NS}/statefulsets/{name}")
}
fn svc_path(name: &str) -> String {
    format!("/api/v1/namespaces/{NS}/services/{name}")
}
fn pdb_path(name: &str) -> String {
    format!("/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/{name}")
}

struct Harness {
    cluster: Arc<Mutex<Cluster>>,
    ctx: Arc<Context>,
}

impl Harness {
    fn new(cluster: Cluster) -> Self {
        let cluster = Arc::new(Mutex::new(cluster));
        let client = fake::client(cluster.clone());
        let mut ctx = Context::new(client, Metrics::new(), Some("test".into()));
        ctx.default_image_tag = "0.0.0-test".into();
        Harness {
            cluster,
            ctx: Arc::new(ctx),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cluster> {
        self.cluster.lock().expect("lock")
    }

    /// Stores `broker` as the API server would hold it.
    fn store(&self, broker: &MqttBroker) {
        let name = broker.metadata.name.clone().unwrap_or_default();
        self.lock().put(
            &broker_path(&name),
            serde_json::to_value(broker).expect("json"),
        );
    }

    /// The broker as a watch would deliver it now (with the patched status).
    fn fetch(&self, name: &str) -> MqttBroker {
        let value = self
            .lock()
            .get(&broker_path(name))
            .cloned()
            .expect("broker stored");
        serde_json::from_value(value).expect("broker parses")
    }

    async fn run(&self, broker: &MqttBroker) -> Result<Action, ferrumq_operator::reconcile::Error> {
        self.store_spec(broker);
        let name = broker.metadata.name.clone().unwrap_or_default();
        let current = self.fetch(&name);
        reconcile(Arc::new(current), self.ctx.clone()).await
    }

    /// Stores the spec/metadata of `broker` but keeps the stored status.
    fn store_spec(&self, broker: &MqttBroker) {
        let name = broker.metadata.name.clone().unwrap_or_default();
        let status = self
            .lock()
            .get(&broker_path(&name))
            .and_then(|v| v.get("status").cloned());
        let mut value = serde_json::to_value(broker).expect("json");
        if let (Some(status), Some(map)) = (status, value.as_object_mut()) {
            map.insert("status".into(), status);
        }
        self.lock().put(&broker_path(&name), value);
    }

    fn clear_writes(&self) {
        self.lock().writes.clear();
    }

    fn condition(&self, name: &str, type_: &str) -> Value {
        let broker = self
            .lock()
            .get(&broker_path(name))
            .cloned()
            .expect("broker");
        broker["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == type_).cloned())
            .unwrap_or(Value::Null)
    }
}

fn minimal() -> MqttBroker {
    common::example_broker("minimal")
}

#[tokio::test]
async fn create_from_nothing_applies_children_in_order() {
    let h = Harness::new(Cluster::default());
    let broker = minimal();
    let action = h.run(&broker).await.expect("reconcile");
    assert_eq!(action, Action::requeue(RESYNC_INTERVAL));

    let cluster = h.lock();
    let kinds: Vec<String> = cluster.child_writes().iter().map(|w| w.kind()).collect();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "Service",
            "Service",
            "StatefulSet",
            "PodDisruptionBudget"
        ],
        "apply order"
    );
    for w in cluster.child_writes() {
        assert_eq!(w.method, "PATCH", "server-side apply only");
        assert_eq!(
            w.body["metadata"]["ownerReferences"][0]["kind"],
            "MqttBroker"
        );
        assert!(
            !w.body.to_string().contains("null"),
            "no nulls in {}",
            w.path
        );
    }
    assert!(cluster.get(&svc_path("minimal-headless")).is_some());
    assert!(cluster.get(&svc_path("minimal-mqtt")).is_some());
    assert_eq!(cluster.event_reasons(), ["Created"]);

    let status = &cluster.status_writes()[0].body["status"];
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(status["desiredReplicas"], 1);
    assert_eq!(
        status["selector"],
        "app.kubernetes.io/instance=minimal,app.kubernetes.io/name=ferrumq-broker"
    );
    assert_eq!(status["image"], "ferrumq/ferrumq-broker:0.0.0-test");
    assert_eq!(status["configHash"].as_str().map(str::len), Some(16));
    drop(cluster);
    assert_eq!(h.condition("minimal", "Available")["status"], "False");
    assert_eq!(h.condition("minimal", "Progressing")["status"], "True");
    assert_eq!(h.condition("minimal", "Degraded")["status"], "False");
}

#[tokio::test]
async fn ready_statefulset_makes_broker_available() {
    let h = Harness::new(Cluster::default());
    let broker = minimal();
    h.run(&broker).await.expect("first reconcile");
    {
        let mut cluster = h.lock();
        let mut sts = cluster.get(&sts_path("minimal")).cloned().expect("sts");
        sts["status"] = json!({"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1,
                               "currentReplicas": 1, "observedGeneration": 1});
        cluster.put(&sts_path("minimal"), sts);
    }
    h.run(&broker).await.expect("second reconcile");
    assert_eq!(h.condition("minimal", "Available")["status"], "True");
    assert_eq!(
        h.condition("minimal", "Available")["reason"],
        "AllReplicasReady"
    );
    assert_eq!(h.condition("minimal", "Progressing")["status"], "False");
    let stored = h.fetch("minimal");
    let status = stored.status.expect("status");
    assert_eq!((status.replicas, status.ready_replicas), (1, 1));
}

fn template_hash(h: &Harness, name: &str) -> String {
    h.lock().get(&sts_path(name)).expect("sts")["spec"]["template"]["metadata"]["annotations"]
        ["ferrumq.io/config-hash"]
        .as_str()
        .expect("hash")
        .to_owned()
}

#[tokio::test]
async fn spec_change_rolls_statefulset_via_config_hash() {
    let h = Harness::new(Cluster::default());
    let mut broker = minimal();
    h.run(&broker).await.expect("create");
    let before = template_hash(&h, "minimal");
    h.clear_writes();

    h.run(&broker).await.expect("no-op");
    assert_eq!(template_hash(&h, "minimal"), before, "same spec, same hash");
    assert!(h.lock().event_reasons().is_empty());

    broker.spec.broker.limits.max_connections = 10;
    broker.metadata.generation = Some(2);
    h.run(&broker).await.expect("change");
    let after = template_hash(&h, "minimal");
    assert_ne!(before, after);
    assert_eq!(h.lock().event_reasons(), ["ConfigRollout"]);
    let cm = h
        .lock()
        .get(&format!(
            "/api/v1/namespaces/{NS}/configmaps/minimal-config"
        ))
        .cloned()
        .expect("cm");
    assert!(cm["data"]["ferrumq.yaml"]
        .as_str()
        .expect("yaml")
        .contains("maxConnections: 10"));
}

#[tokio::test]
async fn invalid_spec_sets_degraded_and_writes_no_children() {
    let h = Harness::new(Cluster::default());
    let mut broker = minimal();
    broker.spec.listeners = vec![ListenerSpec {
        name: "secure".into(),
        protocol: ferrumq_broker::config::ListenerProtocol::Mqtts,
        port: 8883,
        service: Default::default(),
    }];
    let action = h.run(&broker).await.expect("invalid spec is not an error");
    assert_eq!(
        action,
        Action::await_change(),
        "waits for a change, no retry loop"
    );
    assert!(h.lock().child_writes().is_empty(), "no child writes");
    let degraded = h.condition("minimal", "Degraded");
    assert_eq!(degraded["status"], "True");
    assert_eq!(degraded["reason"], "InvalidSpec");
    assert!(
        degraded["message"]
            .as_str()
            .expect("message")
            .starts_with("spec.tls:"),
        "{degraded}"
    );
    assert_eq!(h.lock().event_reasons(), ["InvalidSpec"]);

    // Same invalid spec again: nothing new to say, so nothing is written.
    h.clear_writes();
    h.run(&broker).await.expect("again");
    assert!(h.lock().writes.is_empty(), "{:?}", h.lock().writes);
}

#[tokio::test]
async fn invalid_broker_setting_names_the_spec_field() {
    let h = Harness::new(Cluster::default());
    let mut broker = minimal();
    broker.spec.broker.limits.receive_maximum = 0;
    h.run(&broker).await.expect("reconcile");
    let degraded = h.condition("minimal", "Degraded");
    assert!(
        degraded["message"]
            .as_str()
            .expect("message")
            .starts_with("spec.broker.limits.receiveMaximum:"),
        "{degraded}"
    );
    assert!(h.lock().child_writes().is_empty());
}

#[tokio::test]
async fn missing_secret_degrades_then_recovers_when_created() {
    let h = Harness::new(Cluster::default());
    let mut broker = minimal();
    broker.spec.auth = Some(AuthSpec {
        secret_name: "users".into(),
        passwords_key: "passwords".into(),
        acl_key: None,
        admin_token_key: None,
    });
    let action = h.run(&broker).await.expect("reconcile");
    assert_eq!(action, Action::await_change(), "the Secret watch wakes us");
    assert_eq!(
        h.condition("minimal", "Degraded")["reason"],
        "SecretNotFound"
    );
    assert!(h.lock().child_writes().is_empty());

    let secret = common::secret("users", NS, &[("passwords", "alice:hash")]);
    h.lock().put(
        &format!("/api/v1/namespaces/{NS}/secrets/users"),
        serde_json::to_value(secret).expect("json"),
    );
    h.clear_writes();
    h.run(&broker).await.expect("reconcile");
    assert_eq!(h.condition("minimal", "Degraded")["status"], "False");
    assert!(h.lock().event_reasons().contains(&"Recovered".to_owned()));
    let sts = h.lock().get(&sts_path("minimal")).cloned().expect("sts");
    assert_eq!(
        sts["spec"]["template"]["spec"]["volumes"][3]["secret"]["secretName"],
        "users"
    );
    let cm = h
        .lock()
        .get(&format!(
            "/api/v1/namespaces/{NS}/configmaps/minimal-config"
        ))
        .cloned()
        .expect("cm");
    assert!(cm["data"]["ferrumq.yaml"]
        .as_str()
        .expect("yaml")
        .contains("passwordFile: /etc/ferrumq/auth/passwords"));
}

/// The broker re-reads a changed auth Secret's files itself, so the operator leaves the pods
/// running (a roll would disconnect every client); with reloading off it rolls them.
#[tokio::test]
async fn changed_auth_secret_rolls_pods_only_when_the_broker_does_not_reload() {
    for (reload_interval_secs, rolls) in [(10, false), (0, true)] {
        let h = Harness::new(Cluster::default());
        let mut broker = minimal();
        broker.spec.auth = Some(AuthSpec {
            secret_name: "users".into(),
            passwords_key: "passwords".into(),
            acl_key: None,
            admin_token_key: None,
        });
        broker.spec.broker.auth.reload_interval_secs = reload_interval_secs;
        let path = format!("/api/v1/namespaces/{NS}/secrets/users");
        let put = |v: &str| {
            let s = common::secret("users", NS, &[("passwords", v)]);
            h.lock().put(&path, serde_json::to_value(s).expect("json"));
        };
        put("alice:one");
        h.run(&broker).await.expect("create");
        let before = template_hash(&h, "minimal");
        put("alice:two");
        h.run(&broker).await.expect("secret changed");
        let rolled = template_hash(&h, "minimal") != before;
        assert_eq!(rolled, rolls, "reloadIntervalSecs {reload_interval_secs}");
    }
}

#[tokio::test]
async fn deleted_child_is_recreated() {
    let h = Harness::new(Cluster::default());
    let broker = minimal();
    h.run(&broker).await.expect("create");
    h.lock().objects.remove(&svc_path("minimal-mqtt"));
    h.lock().objects.remove(&sts_path("minimal"));
    h.run(&broker).await.expect("repair");
    assert!(h.lock().get(&svc_path("minimal-mqtt")).is_some());
    assert!(h.lock().get(&sts_path("minimal")).is_some());
}

#[tokio::test]
async fn stopped_scales_to_zero_and_removes_pdb() {
    let h = Harness::new(Cluster::default());
    let mut broker = minimal();
    broker.spec.replicas = 3;
    h.run(&broker).await.expect("create");
    assert!(h.lock().get(&pdb_path("minimal")).is_some());

    broker.spec.cluster_operation.stopped = true;
    h.run(&broker).await.expect("stop");
    let sts = h.lock().get(&sts_path("minimal")).cloned().expect("sts");
    assert_eq!(sts["spec"]["replicas"], 0);
    assert!(
        h.lock().get(&pdb_path("minimal")).is_none(),
        "PDB deleted while stopped"
    );
    assert!(
        h.lock().get(&svc_path("minimal-mqtt")).is_some(),
        "Services kept"
    );
    assert_eq!(h.condition("minimal", "Available")["reason"], "Stopped");
}

#[tokio::test]
async fn paused_broker_is_left_alone() {
    let h = Harness::new(Cluster::default());
    let mut broker = minimal();
    broker.spec.cluster_operation.reconciliation_paused = true;
    let action = h.run(&broker).await.expect("reconcile");
    assert_eq!(action, Action::await_change());
    {
        let cluster = h.lock();
        assert!(cluster.child_writes().is_empty());
        assert_eq!(cluster.status_writes().len(), 1, "one note in the status");
        // Not even a read of the children happened: nothing exists.
        assert!(cluster.get(&sts_path("minimal")).is_none());
    }
    assert_eq!(
        h.condition("minimal", "Progressing")["reason"],
        "ReconciliationPaused"
    );
    h.clear_writes();
    h.run(&broker).await.expect("again");
    assert!(h.lock().writes.is_empty(), "no writes at all once recorded");
}

#[tokio::test]
async fn removed_listener_service_is_deleted() {
    let h = Harness::new(Cluster::default());
    let mut broker = minimal();
    broker.spec.listeners.push(ListenerSpec {
        name: "ws".into(),
        protocol: ferrumq_broker::config::ListenerProtocol::Ws,
        port: 8080,
        service: Default::default(),
    });
    h.run(&broker).await.expect("create");
    assert!(h.lock().get(&svc_path("minimal-ws")).is_some());
    broker.spec.listeners.pop();
    h.clear_writes();
    h.run(&broker).await.expect("shrink");
    assert!(h.lock().get(&svc_path("minimal-ws")).is_none());
    assert!(h
        .lock()
        .writes
        .iter()
        .any(|w| w.method == "DELETE" && w.path == svc_path("minimal-ws")));
}

fn with_service_monitor(mut broker: MqttBroker, enabled: bool) -> MqttBroker {
    broker.spec.monitoring = Some(MonitoringSpec {
        service_monitor: Some(MonitorSpec {
            enabled,
            ..MonitorSpec::default()
        }),
        pod_monitor: None,
    });
    broker
}

#[tokio::test]
async fn service_monitor_only_when_its_crd_exists() {
    let h = Harness::new(Cluster::default());
    let broker = with_service_monitor(minimal(), true);
    h.run(&broker).await.expect("reconcile");
    assert!(!h
        .lock()
        .child_writes()
        .iter()
        .any(|w| w.kind() == "ServiceMonitor"));
    let degraded = h.condition("minimal", "Degraded");
    assert_eq!(degraded["status"], "False");
    assert!(degraded["message"]
        .as_str()
        .expect("msg")
        .contains("ServiceMonitor requested"));

    let h = Harness::new(Cluster::default().with_prometheus_operator());
    h.run(&broker).await.expect("reconcile");
    let sm_path = format!("/apis/monitoring.coreos.com/v1/namespaces/{NS}/servicemonitors/minimal");
    assert!(h.lock().get(&sm_path).is_some());
    // Switching it off deletes it.
    h.run(&with_service_monitor(minimal(), false))
        .await
        .expect("disable");
    assert!(h.lock().get(&sm_path).is_none());
}

#[tokio::test]
async fn cert_manager_issuer_creates_certificate() {
    let h = Harness::new(Cluster::default().with_cert_manager());
    let broker = common::example_broker("tls-cert-manager");
    h.store(&broker);
    h.run(&broker).await.expect("reconcile");
    let path = format!("/apis/cert-manager.io/v1/namespaces/{NS}/certificates/certs-tls");
    let cert = h.lock().get(&path).cloned().expect("certificate");
    assert_eq!(cert["spec"]["issuerRef"]["kind"], "ClusterIssuer");
    let kinds: Vec<String> = h.lock().child_writes().iter().map(|w| w.kind()).collect();
    let cert_at = kinds
        .iter()
        .position(|k| k == "Certificate")
        .expect("cert applied");
    let sts_at = kinds
        .iter()
        .position(|k| k == "StatefulSet")
        .expect("sts applied");
    assert!(
        cert_at < sts_at,
        "certificate before the pods that mount it: {kinds:?}"
    );

    let h = Harness::new(Cluster::default());
    h.run(&broker).await.expect("reconcile");
    assert_eq!(
        h.condition("certs", "Degraded")["reason"],
        "CertManagerMissing"
    );
}

#[tokio::test]
async fn api_errors_fail_and_back_off() {
    let mut cluster = Cluster::default();
    cluster.fail = Some(("PATCH /apis/apps/v1".into(), 500));
    let h = Harness::new(cluster);
    let broker = minimal();
    let err = h.run(&broker).await.expect_err("apply fails");
    assert!(err.to_string().contains("apply StatefulSet"), "{err}");
    assert_eq!(h.condition("minimal", "Degraded")["reason"], "ApplyFailed");
    let b = Arc::new(h.fetch("minimal"));
    assert_eq!(
        error_policy(b.clone(), &err, h.ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );
    assert_eq!(
        error_policy(b.clone(), &err, h.ctx.clone()),
        Action::requeue(Duration::from_secs(10))
    );
    assert!(h
        .ctx
        .metrics
        .render()
        .contains("ferrumq_operator_reconcile_errors_total{kind=\"api\"} 2"));
}
