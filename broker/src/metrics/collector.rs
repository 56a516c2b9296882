//! Gauges computed at scrape time from the broker's state, and the heap counters of the
//! counting allocator. Computing them on scrape keeps the message path free of bookkeeping.

use std::sync::{Arc, Weak};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntGauge, IntGaugeVec, Opts};

use crate::server::Broker;

/// Collects state gauges from a broker on every scrape.
pub struct StateCollector {
    broker: Weak<Broker>,
    sessions: IntGaugeVec,
    subscriptions: IntGauge,
    shared_groups: IntGauge,
    retained: IntGauge,
    retained_bytes: IntGauge,
    inflight: IntGauge,
    queued: IntGauge,
    queued_max: IntGauge,
    queue_limit: IntGauge,
    draining: IntGauge,
    asleep: IntGauge,
    heap_allocations: IntCounter,
    heap_deallocations: IntCounter,
    heap_allocated_bytes: IntCounter,
    heap_freed_bytes: IntCounter,
    uptime: IntGauge,
    descs: Vec<Desc>,
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::with_opts(Opts::new(name, help)).expect("static metric options are valid")
}

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::with_opts(Opts::new(name, help)).expect("static metric options are valid")
}

impl StateCollector {
    pub fn new(broker: &Arc<Broker>) -> StateCollector {
        let sessions = IntGaugeVec::new(
            Opts::new(
                "ferrumq_sessions",
                "Sessions held by the broker, by whether a client is connected.",
            ),
            &["state"],
        )
        .expect("static metric options are valid");
        let mut collector = StateCollector {
            broker: Arc::downgrade(broker),
            sessions,
            subscriptions: gauge(
                "ferrumq_subscriptions",
                "Subscriptions, shared-group members included.",
            ),
            shared_groups: gauge(
                "ferrumq_shared_subscription_groups",
                "Shared subscription groups.",
            ),
            retained: gauge("ferrumq_retained_messages", "Retained messages stored."),
            retained_bytes: gauge(
                "ferrumq_retained_bytes",
                "Bytes of retained messages stored (topic, payload and properties), counted against limits.maxRetainedBytes.",
            ),
            inflight: gauge(
                "ferrumq_inflight_messages",
                "QoS 1/2 messages sent to clients and not yet acknowledged.",
            ),
            queued: gauge(
                "ferrumq_queued_messages",
                "Messages queued for sessions, summed over all sessions.",
            ),
            queued_max: gauge(
                "ferrumq_queued_messages_max",
                "The longest outbound queue of any one session.",
            ),
            queue_limit: gauge(
                "ferrumq_queue_limit_messages",
                "The configured per-session outbound queue limit (limits.maxQueuedMessages).",
            ),
            draining: gauge(
                "ferrumq_draining",
                "1 while the broker drains (shutdown or POST /drain: /readyz says draining), else 0.",
            ),
            asleep: gauge(
                "ferrumq_connections_asleep",
                "Open connections asleep: idle, with no task, their sockets watched by the broker's one dormancy thread.",
            ),
            heap_allocations: counter(
                "ferrumq_heap_allocations_total",
                "Heap allocations made by the broker process.",
            ),
            heap_deallocations: counter(
                "ferrumq_heap_deallocations_total",
                "Heap deallocations made by the broker process.",
            ),
            heap_allocated_bytes: counter(
                "ferrumq_heap_allocated_bytes_total",
                "Bytes allocated on the heap by the broker process.",
            ),
            heap_freed_bytes: counter(
                "ferrumq_heap_freed_bytes_total",
                "Bytes freed on the heap by the broker process.",
            ),
            uptime: gauge(
                "ferrumq_uptime_seconds",
                "Seconds since the broker started.",
            ),
            descs: Vec::new(),
        };
        collector.descs = collector
            .parts()
            .iter()
            .flat_map(|c| c.desc().into_iter().cloned())
            .collect();
        collector
    }

    fn parts(&self) -> [&dyn Collector; 16] {
        [
            &self.sessions,
            &self.subscriptions,
            &self.shared_groups,
            &self.retained,
            &self.retained_bytes,
            &self.inflight,
            &self.queued,
            &self.queued_max,
            &self.queue_limit,
            &self.draining,
            &self.asleep,
            &self.heap_allocations,
            &self.heap_deallocations,
            &self.heap_allocated_bytes,
            &self.heap_freed_bytes,
            &self.uptime,
        ]
    }

    fn refresh(&self, broker: &Broker) {
        let (mut connected, mut offline, mut inflight, mut queued, mut queued_max) =
            (0, 0, 0, 0, 0);
        broker.sessions.for_each(|session| {
            let st = session.state.lock();
            if st.attached.is_some() {
                connected += 1;
            } else {
                offline += 1;
            }
            inflight += st.inflight.len();
            queued += st.queue.len();
            queued_max = queued_max.max(st.queue.len());
        });
        self.sessions
            .with_label_values(&["connected"])
            .set(connected);
        self.sessions.with_label_values(&["offline"]).set(offline);
        self.inflight.set(inflight as i64);
        self.queued.set(queued as i64);
        self.queued_max.set(queued_max as i64);
        self.queue_limit
            .set(i64::from(broker.settings().limits.max_queued_messages));
        self.draining.set(i64::from(broker.shutdown.is_cancelled()));
        self.asleep
            .set(broker.asleep.load(std::sync::atomic::Ordering::Relaxed) as i64);
        {
            let router = broker.router.read();
            self.subscriptions.set(router.len() as i64);
            self.shared_groups.set(router.shared_group_count() as i64);
        }
        {
            let retained = broker.retained.read();
            self.retained.set(retained.len() as i64);
            self.retained_bytes.set(retained.bytes() as i64);
        }
        self.uptime.set(broker.started.elapsed().as_secs() as i64);
        let heap = crate::alloc::snapshot();
        for (metric, value) in [
            (&self.heap_allocations, heap.allocations),
            (&self.heap_deallocations, heap.deallocations),
            (&self.heap_allocated_bytes, heap.bytes_allocated),
            (&self.heap_freed_bytes, heap.bytes_freed),
        ] {
            metric.reset();
            metric.inc_by(value);
        }
    }
}

impl Collector for StateCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some(broker) = self.broker.upgrade() else {
            return Vec::new();
        };
        self.refresh(&broker);
        self.parts().iter().flat_map(|c| c.collect()).collect()
    }
}
