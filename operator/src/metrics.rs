//! The operator's own Prometheus metrics, served on `/metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
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
        for collector in [
            Box::new(reconciles.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors.clone()),
            Box::new(duration.clone()),
            Box::new(managed.clone()),
            Box::new(leader.clone()),
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
