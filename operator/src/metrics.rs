//! The operator's own Prometheus metrics, served on `/metrics`.

use std::collections::HashSet;

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Reconcile counters and timings. One registry per process (not the global
/// default), so tests can create as many as they like.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Reconciles started.
    pub reconciles: IntCounter,
    /// Failed reconciles by error kind (`api`, `conflict`, `invalid_spec`, ...).
    pub errors: IntCounterVec,
    /// Reconcile wall time.
    pub duration: Histogram,
    /// MqttBrokers this operator currently manages.
    pub managed: IntGauge,
    /// Whether this replica holds the leader Lease (1) or not (0).
    pub leader: IntGauge,
    /// Replicas per MqttBroker, labelled `namespace`, `name` and `kind`
    /// (`desired`, `ready`, `current`), as written to its status. Set through
    /// [`Metrics::set_broker_replicas`]; label sets of deleted brokers are
    /// dropped by [`Metrics::retain_brokers`].
    ///
    /// Scraped without `honorLabels`, Prometheus renames the `namespace`
    /// label to `exported_namespace` (the target's own `namespace` label is
    /// the operator's namespace); the dashboard relies on that.
    pub broker_replicas: IntGaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers all metrics.
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("ferrumq_operator".to_owned()), None).unwrap_or_default();
        let reconciles = IntCounter::new("reconciles_total", "Reconciles started")
            .unwrap_or_else(|_| unreachable_metric());
        let errors = IntCounterVec::new(
            Opts::new("reconcile_errors_total", "Failed reconciles by error kind"),
            &["kind"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let duration = Histogram::with_opts(
            HistogramOpts::new("reconcile_duration_seconds", "Reconcile wall time")
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        )
        .unwrap_or_else(|_| unreachable_metric());
        let managed = IntGauge::new("managed_resources", "MqttBrokers managed by this operator")
            .unwrap_or_else(|_| unreachable_metric());
        let leader = IntGauge::new("leader", "1 while this replica holds the leader Lease")
            .unwrap_or_else(|_| unreachable_metric());
        let broker_replicas = IntGaugeVec::new(
            Opts::new(
                "broker_replicas",
                "Replicas of an MqttBroker by kind: desired (spec, 0 when stopped), ready, current (pods that exist)",
            ),
            &["namespace", "name", "kind"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        for collector in [
            Box::new(reconciles.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors.clone()),
            Box::new(duration.clone()),
            Box::new(managed.clone()),
            Box::new(leader.clone()),
            Box::new(broker_replicas.clone()),
        ] {
            // Registration only fails on duplicate names, which these are not.
            let _ = registry.register(collector);
        }
        Metrics {
            registry,
            reconciles,
            errors,
            duration,
            managed,
            leader,
            broker_replicas,
        }
    }

    /// Records the replica counts of MqttBroker `namespace/name` (the
    /// reconcile's status step).
    pub fn set_broker_replicas(
        &self,
        namespace: &str,
        name: &str,
        desired: i32,
        ready: i32,
        current: i32,
    ) {
        for (kind, value) in [("desired", desired), ("ready", ready), ("current", current)] {
            self.broker_replicas
                .with_label_values(&[namespace, name, kind])
                .set(i64::from(value));
        }
    }

    /// Drops the per-broker series of every MqttBroker in `scope` (one
    /// controller's namespace; `None`: all namespaces) that is not in `live`
    /// (`(namespace, name)` pairs), so deleted brokers stop being exported.
    /// Series outside `scope` belong to another controller and are kept.
    pub fn retain_brokers(&self, scope: Option<&str>, live: &HashSet<(String, String)>) {
        let mut stale = HashSet::new();
        for family in self.broker_replicas.collect() {
            for metric in family.get_metric() {
                let label = |wanted: &str| {
                    metric
                        .get_label()
                        .iter()
                        .find(|l| l.name() == wanted)
                        .map(|l| l.value().to_owned())
                        .unwrap_or_default()
                };
                let key = (label("namespace"), label("name"));
                let in_scope = scope.is_none_or(|ns| ns == key.0);
                if in_scope && !live.contains(&key) {
                    stale.insert(key);
                }
            }
        }
        for (namespace, name) in stale {
            for kind in ["desired", "ready", "current"] {
                // Err only means that label set was never set.
                let _ = self
                    .broker_replicas
                    .remove_label_values(&[&namespace, &name, kind]);
            }
        }
    }

    /// Text exposition format for `/metrics`.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if encoder.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Metric constructors only fail on malformed names/help, which are
/// constants here; this keeps `unwrap()` out of non-test code.
#[cold]
fn unreachable_metric<T>() -> T {
    panic!("static metric definition is invalid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_replicas_are_exported_and_pruned() {
        let metrics = Metrics::new();
        metrics.set_broker_replicas("mqtt", "a", 3, 2, 3);
        metrics.set_broker_replicas("mqtt", "b", 0, 0, 0);
        let text = metrics.render();
        assert!(
            text.contains(
                r#"ferrumq_operator_broker_replicas{kind="desired",name="a",namespace="mqtt"} 3"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"ferrumq_operator_broker_replicas{kind="ready",name="a",namespace="mqtt"} 2"#
        ));
        assert!(text.contains(
            r#"ferrumq_operator_broker_replicas{kind="current",name="b",namespace="mqtt"} 0"#
        ));

        metrics.set_broker_replicas("other", "c", 1, 1, 1);

        let live = HashSet::from([("mqtt".to_owned(), "a".to_owned())]);
        // A controller scoped to `mqtt` leaves other namespaces alone.
        metrics.retain_brokers(Some("mqtt"), &live);
        let text = metrics.render();
        assert!(text.contains(r#"name="a""#), "{text}");
        assert!(!text.contains(r#"name="b""#), "{text}");
        assert!(text.contains(r#"name="c""#), "{text}");
        // A cluster-wide one prunes everything not live.
        metrics.retain_brokers(None, &live);
        let text = metrics.render();
        assert!(text.contains(r#"name="a""#), "{text}");
        assert!(!text.contains(r#"name="c""#), "{text}");
    }
}
