//! The broker's Prometheus metrics.
//!
//! Counters and histograms that the message path updates are resolved to their label values
//! once, at start-up, so an update is an atomic add: no lock, no allocation, no label lookup.
//! Gauges that describe state (sessions, subscriptions, queue depths, heap) are computed when
//! Prometheus scrapes, by [`StateCollector`], so the message path never maintains them.

mod collector;
mod latency;
mod pools;
mod stripe;

use prometheus::{IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

pub use collector::StateCollector;
pub use latency::LatencyHistogram;
use latency::SharedHistogram;
pub use pools::PoolCollector;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::{ProtocolVersion, QoS, ReasonCode};
use crate::router::RetainRefused;

/// Whether the message path updates its metrics: always, except in a build with the
/// `no-path-metrics` feature, which exists only to measure what the updates cost (the fan-out
/// benchmark run with metrics on and off, in `benches/RESULTS.md`). Such a build's metrics
/// stay at zero, so its metric tests fail by design; it is never a release build.
pub const PATH_METRICS: bool = !cfg!(feature = "no-path-metrics");

/// Histogram buckets from 5 µs to 5 s: the broker's latencies span that whole range.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Why a message was not delivered to a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    QueueFull,
    Expired,
    TooLarge,
    NoSubscribers,
}

impl DropReason {
    pub const ALL: [DropReason; 4] = [
        DropReason::QueueFull,
        DropReason::Expired,
        DropReason::TooLarge,
        DropReason::NoSubscribers,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Expired => "expired",
            DropReason::TooLarge => "too_large",
            DropReason::NoSubscribers => "no_subscribers",
        }
    }
}

/// Every metric the broker updates as it works.
pub struct Stats {
    pub registry: Registry,
    messages_received: [IntCounter; 3],
    messages_delivered: [IntCounter; 3],
    pub bytes_received: IntCounter,
    pub bytes_sent: IntCounter,
    dropped: [IntCounter; 4],
    connections: [IntCounter; 3],
    connected: IntGaugeVec,
    connects_refused: IntCounterVec,
    disconnects: IntCounterVec,
    publishes_by_listener: IntCounterVec,
    handshake_failures: IntCounterVec,
    auth_reloads: IntCounterVec,
    tls_reloads: IntCounterVec,
    retained_refused: IntCounterVec,
    /// From a PUBLISH fully read to its bytes handed to each subscriber's socket.
    pub delivery_latency: Arc<LatencyHistogram>,
    /// From a PUBLISH fully read to its PUBACK or PUBREC queued for the publisher.
    pub ack_latency: Arc<LatencyHistogram>,
}

fn qos_index(qos: QoS) -> usize {
    qos.as_u8() as usize
}

fn version_index(version: ProtocolVersion) -> usize {
    match version {
        ProtocolVersion::V3_1 => 0,
        ProtocolVersion::V3_1_1 => 1,
        ProtocolVersion::V5 => 2,
    }
}

const VERSION_LABELS: [&str; 3] = ["3.1", "3.1.1", "5.0"];

impl Stats {
    /// Creates and registers every metric. Registration fails only on a duplicate name, which
    /// is a programming error caught by the unit tests.
    pub fn new() -> Result<Stats, prometheus::Error> {
        let registry = Registry::new();
        let counter_vec =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let vec = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(vec.clone()))?;
                Ok(vec)
            };
        let received = counter_vec(
            "ferrumq_messages_received_total",
            "PUBLISH messages received from clients, by QoS.",
            &["qos"],
        )?;
        let delivered = counter_vec(
            "ferrumq_messages_delivered_total",
            "PUBLISH messages written to subscribers, by QoS.",
            &["qos"],
        )?;
        let dropped = counter_vec(
            "ferrumq_messages_dropped_total",
            "Messages not delivered to a subscriber, by reason.",
            &["reason"],
        )?;
        let connections = counter_vec(
            "ferrumq_connections_total",
            "Connections accepted (CONNACK 0x00), by protocol version.",
            &["protocol"],
        )?;
        let bytes = counter_vec(
            "ferrumq_bytes_total",
            "Bytes read from and written to MQTT clients.",
            &["direction"],
        )?;
        let connected = IntGaugeVec::new(
            Opts::new(
                "ferrumq_connections",
                "Connections currently open after a successful CONNECT, by protocol version.",
            ),
            &["protocol"],
        )?;
        registry.register(Box::new(connected.clone()))?;
        let histogram =
            |name: &str, help: &str| -> Result<Arc<LatencyHistogram>, prometheus::Error> {
                let h = Arc::new(LatencyHistogram::new(name, help, LATENCY_BUCKETS)?);
                registry.register(Box::new(SharedHistogram(Arc::clone(&h))))?;
                Ok(h)
            };
        let qos_children =
            |vec: &IntCounterVec| ["0", "1", "2"].map(|q| vec.with_label_values(&[q]));
        let stats = Stats {
            messages_received: qos_children(&received),
            messages_delivered: qos_children(&delivered),
            bytes_received: bytes.with_label_values(&["in"]),
            bytes_sent: bytes.with_label_values(&["out"]),
            dropped: DropReason::ALL.map(|r| dropped.with_label_values(&[r.label()])),
            connections: VERSION_LABELS.map(|v| connections.with_label_values(&[v])),
            connected,
            connects_refused: counter_vec(
                "ferrumq_connects_refused_total",
                "CONNECT packets refused, by CONNACK reason code (hex).",
                &["reason"],
            )?,
            disconnects: counter_vec(
                "ferrumq_disconnects_total",
                "Closed client connections, by how they ended (client, or the server's DISCONNECT reason code).",
                &["reason"],
            )?,
            publishes_by_listener: counter_vec(
                "ferrumq_listener_publishes_total",
                "PUBLISH packets received, by listener.",
                &["listener"],
            )?,
            handshake_failures: counter_vec(
                "ferrumq_handshake_failures_total",
                "TLS or WebSocket handshakes that failed or timed out, by listener (a client that does not trust the certificate, plain MQTT sent to a TLS or WebSocket port, scanners).",
                &["listener"],
            )?,
            auth_reloads: counter_vec(
                "ferrumq_auth_reloads_total",
                "Reloads of changed password or ACL files, by result (ok; error: the file did not parse and the previous one stays in force).",
                &["result"],
            )?,
            tls_reloads: counter_vec(
                "ferrumq_tls_reloads_total",
                "Reloads of a TLS listener's changed certificate, key or client CA files, by listener and result (ok; error: they do not make a usable configuration and the previous ones stay in force).",
                &["listener", "result"],
            )?,
            retained_refused: counter_vec(
                "ferrumq_retained_refused_total",
                "Retained messages not stored because the store was full (delivered all the same), by the limit reached: messages (limits.maxRetainedMessages) or bytes (limits.maxRetainedBytes).",
                &["reason"],
            )?,
            delivery_latency: histogram(
                "ferrumq_delivery_latency_seconds",
                "Time from a PUBLISH fully read to its bytes handed to a subscriber's socket.",
            )?,
            ack_latency: histogram(
                "ferrumq_publish_ack_latency_seconds",
                "Time from a QoS 1/2 PUBLISH fully read to its PUBACK/PUBREC queued for the publisher.",
            )?,
            registry,
        };
        for version in VERSION_LABELS {
            stats.connected.with_label_values(&[version]);
        }
        // Disconnects the client ends exist from the first scrape at 0, so a rate() over them
        // has its two samples as soon as the first client leaves (Prometheus's advice for
        // label values known in advance).
        for label in ["client", "client_with_will", "lost"] {
            stats.disconnects.with_label_values(&[label]);
        }
        // Likewise for reloads, whose first error an alert must see as an increase from 0.
        for result in ["ok", "error"] {
            stats.auth_reloads.with_label_values(&[result]);
        }
        // And for the first retained message a full store refuses.
        for reason in ["messages", "bytes"] {
            stats.retained_refused.with_label_values(&[reason]);
        }
        Ok(stats)
    }

    pub fn add(counter: &IntCounter, n: u64) {
        if PATH_METRICS {
            counter.inc_by(n);
        }
    }

    pub fn get(counter: &IntCounter) -> u64 {
        counter.get()
    }

    pub fn received(&self, qos: QoS) {
        if PATH_METRICS {
            self.messages_received[qos_index(qos)].inc();
        }
    }

    /// `n` messages delivered at `qos`: one update for a whole batch, as the counter is
    /// shared by every core.
    pub fn delivered_n(&self, qos: QoS, n: u64) {
        if PATH_METRICS && n > 0 {
            self.messages_delivered[qos_index(qos)].inc_by(n);
        }
    }

    pub fn dropped(&self, reason: DropReason) {
        if PATH_METRICS {
            self.dropped[reason as usize].inc();
        }
    }

    /// Records the publish-to-delivery time of every message received at one of `received`
    /// and handed to its subscriber's socket at `now` (one write).
    pub fn observe_deliveries(&self, now: Instant, received: &[Instant]) {
        if PATH_METRICS {
            self.delivery_latency.observe_batch(now, received);
        }
    }

    /// Records one PUBLISH's time from receipt to its PUBACK or PUBREC.
    pub fn observe_ack(&self, latency: Duration) {
        if PATH_METRICS {
            self.ack_latency.observe(latency);
        }
    }

    pub fn received_total(&self) -> u64 {
        self.messages_received.iter().map(IntCounter::get).sum()
    }

    pub fn delivered_total(&self) -> u64 {
        self.messages_delivered.iter().map(IntCounter::get).sum()
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(IntCounter::get).sum()
    }

    pub fn dropped_count(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize].get()
    }

    pub fn connections_total(&self) -> u64 {
        self.connections.iter().map(IntCounter::get).sum()
    }

    /// A connection completed its CONNECT.
    pub fn connected(&self, version: ProtocolVersion) {
        self.connections[version_index(version)].inc();
        self.connected
            .with_label_values(&[VERSION_LABELS[version_index(version)]])
            .inc();
    }

    /// A connection that had completed its CONNECT closed. `reason` is the server's DISCONNECT
    /// reason, or `None` when the client ended it.
    pub fn disconnected(&self, version: ProtocolVersion, reason: Option<ReasonCode>, label: &str) {
        self.connected
            .with_label_values(&[VERSION_LABELS[version_index(version)]])
            .dec();
        let reason = reason.map(|r| format!("0x{:02x}", r.as_u8()));
        self.disconnects
            .with_label_values(&[reason.as_deref().unwrap_or(label)])
            .inc();
    }

    pub fn refused(&self, reason: ReasonCode) {
        self.connects_refused
            .with_label_values(&[&format!("0x{:02x}", reason.as_u8())])
            .inc();
    }

    pub fn refused_total(&self) -> u64 {
        let families = self.registry.gather();
        families
            .iter()
            .filter(|f| f.name() == "ferrumq_connects_refused_total")
            .flat_map(|f| {
                f.get_metric()
                    .iter()
                    .map(|m| m.get_counter().value() as u64)
            })
            .sum()
    }

    /// The PUBLISH counter of one listener, resolved once per connection.
    pub fn listener_publishes(&self, listener: &str) -> IntCounter {
        self.publishes_by_listener.with_label_values(&[listener])
    }

    /// The handshake (TLS, WebSocket) failure counter of one listener, resolved once per
    /// listener.
    pub fn handshake_failures(&self, listener: &str) -> IntCounter {
        self.handshake_failures.with_label_values(&[listener])
    }

    /// Counts a reload of changed authentication files.
    pub fn auth_reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.auth_reloads.with_label_values(&[result]).inc();
    }

    /// Counts a reload of a TLS listener's changed files.
    pub fn tls_reloaded(&self, listener: &str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.tls_reloads
            .with_label_values(&[listener, result])
            .inc();
    }

    /// A retained message the store refused ([`crate::server::Broker::retain`]).
    pub fn retain_refused(&self, refused: RetainRefused) {
        self.retained_refused
            .with_label_values(&[refused.label()])
            .inc();
    }

    /// Retained messages refused so far, for `reason` (`messages` or `bytes`).
    pub fn retain_refused_count(&self, reason: &str) -> u64 {
        self.retained_refused.with_label_values(&[reason]).get()
    }

    /// The text exposition of every metric, for `/metrics`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(error) =
            prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out)
        {
            tracing::warn!(%error, "metrics could not be encoded");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_registers_once_and_renders_with_help() {
        let stats = Stats::new().expect("no duplicate metric names");
        stats.received(QoS::AtLeastOnce);
        stats.dropped(DropReason::Expired);
        stats.connected(ProtocolVersion::V5);
        stats.delivery_latency.observe(Duration::from_micros(20));
        let text = stats.render();
        assert!(text.contains("ferrumq_messages_received_total{qos=\"1\"} 1"));
        assert!(text.contains("ferrumq_messages_dropped_total{reason=\"expired\"} 1"));
        assert!(text.contains("ferrumq_connections{protocol=\"5.0\"} 1"));
        assert!(text.contains("# HELP ferrumq_delivery_latency_seconds"));
        assert!(
            text.contains("ferrumq_disconnects_total{reason=\"client\"} 0"),
            "client disconnects are exported at 0 before the first one"
        );
        assert_eq!(stats.received_total(), 1);
    }
}
