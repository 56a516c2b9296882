//! `$SYS/broker/...` topics: version, uptime and counters, published as retained messages at
//! the configured interval so a client subscribing to `$SYS/#` sees them at once.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::codec::{ByteString, PublishProperties, QoS};
use crate::server::{Broker, Stats};
use crate::session::Message;

/// Starts the $SYS publisher unless its interval is 0.
pub fn spawn(broker: &Arc<Broker>) {
    let interval = broker.settings().sys.interval_secs;
    if interval == 0 {
        return;
    }
    let broker = Arc::clone(broker);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(u64::from(interval)));
        loop {
            tokio::select! {
                _ = ticker.tick() => publish_all(&broker),
                _ = broker.shutdown.cancelled() => return,
            }
        }
    });
}

/// Every $SYS topic with its current value.
pub fn values(broker: &Broker) -> Vec<(&'static str, String)> {
    let s = &broker.stats;
    let sessions = broker.sessions.len();
    let connected = broker.connections.load(Ordering::Relaxed);
    vec![
        (
            "$SYS/broker/version",
            format!("ferrumq {}", env!("CARGO_PKG_VERSION")),
        ),
        (
            "$SYS/broker/uptime",
            format!("{} seconds", broker.started.elapsed().as_secs()),
        ),
        ("$SYS/broker/clients/connected", connected.to_string()),
        ("$SYS/broker/clients/total", sessions.to_string()),
        (
            "$SYS/broker/clients/maximum",
            broker.settings().limits.max_connections.to_string(),
        ),
        (
            "$SYS/broker/connections/total",
            s.connections_total().to_string(),
        ),
        (
            "$SYS/broker/messages/received",
            s.received_total().to_string(),
        ),
        ("$SYS/broker/messages/sent", s.delivered_total().to_string()),
        (
            "$SYS/broker/messages/dropped",
            s.dropped_total().to_string(),
        ),
        (
            "$SYS/broker/bytes/received",
            Stats::get(&s.bytes_received).to_string(),
        ),
        (
            "$SYS/broker/bytes/sent",
            Stats::get(&s.bytes_sent).to_string(),
        ),
        (
            "$SYS/broker/subscriptions/count",
            broker.router.read().len().to_string(),
        ),
        (
            "$SYS/broker/retained messages/count",
            broker.retained.read().len().to_string(),
        ),
    ]
}

fn publish_all(broker: &Broker) {
    for (topic, value) in values(broker) {
        let message = Message::pooled(
            ByteString::from_static(topic),
            QoS::AtMostOnce,
            true,
            Bytes::from(value),
            PublishProperties::default(),
            None,
            std::time::Instant::now(),
        );
        if let Ok(message) = message {
            // Counted as broker traffic, not client traffic: route without the received counter.
            // A full retained store (counted and logged by `retain`) only keeps a $SYS topic
            // out if it filled before that topic's first update; later ones replace it.
            let _ = broker.retain(&message);
            broker.route(&message);
        }
    }
}
