//! The broker's Prometheus metrics move by exactly the expected amounts.
//!
//! One broker runs in-process and a scripted sequence of raw MQTT exchanges drives it: connects
//! (3.1.1 and 5.0), subscribes, a publish at each QoS, a publish nobody subscribed to, every way
//! a connection ends (DISCONNECT, DISCONNECT 0x04 with a Will, an abrupt close, a takeover, a
//! Keep Alive timeout) and refused CONNECTs. After each step the whole exposition
//! (`stats.render()`) is compared with the one before it: the set of series that changed, and
//! by how much, must be exactly the expected one. Nothing else may move, so an extra or a
//! missing increment anywhere fails the step that caused it.
//!
//! Left out of the exact comparison: process_* and ferrumq_heap_* (the process allocates and
//! runs whatever the test does), uptime, the histograms' `_sum` and `_bucket` series (they
//! depend on timing; `_count` is compared exactly, and `le="+Inf"` is checked against it), and
//! ferrumq_pool_* (how often a buffer is reused depends on the pools' internals; the pools'
//! own tests pin those counters down), and ferrumq_connections_asleep (a connection sleeps
//! after an idle second, so when depends on timing; `tests/dormant.rs` pins it down).
//! `ferrumq_bytes_total` is compared exactly too: the test meters every byte its clients send
//! and receive, including what the broker writes as it closes a connection (a DISCONNECT
//! 0x8E, a refusing CONNACK).
//!
//! The second test installs the counting allocator and checks that the metric updates made on
//! the message path (counter increments, histogram observations) never touch the heap.
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::BytesMut;
use ferrumq_broker::alloc::{self, CountingAllocator};
use ferrumq_broker::codec::*;
use ferrumq_broker::listeners::RunningBroker;
use ferrumq_broker::metrics::DropReason;
use ferrumq_broker::server::Stats;
use support::*;
use tokio::io::AsyncWriteExt;

#[global_allocator]
static A: CountingAllocator = CountingAllocator;

/// How long a step may take for the metrics to reach their expected values.
const SETTLE: Duration = Duration::from_secs(5);

const BYTES_IN: &str = "ferrumq_bytes_total{direction=\"in\"}";
const BYTES_OUT: &str = "ferrumq_bytes_total{direction=\"out\"}";
const DELIVERY_COUNT: &str = "ferrumq_delivery_latency_seconds_count";
const ACK_COUNT: &str = "ferrumq_publish_ack_latency_seconds_count";
const SUBSCRIPTIONS: &str = "ferrumq_subscriptions";
const CONNECTED_SESSIONS: &str = "ferrumq_sessions{state=\"connected\"}";
const INFLIGHT: &str = "ferrumq_inflight_messages";
const LISTENER_PUBLISHES: &str = "ferrumq_listener_publishes_total{listener=\"mqtt\"}";

fn received(qos: u8) -> String {
    format!("ferrumq_messages_received_total{{qos=\"{qos}\"}}")
}

fn delivered(qos: u8) -> String {
    format!("ferrumq_messages_delivered_total{{qos=\"{qos}\"}}")
}

fn connections_total(protocol: &str) -> String {
    format!("ferrumq_connections_total{{protocol=\"{protocol}\"}}")
}

fn open_connections(protocol: &str) -> String {
    format!("ferrumq_connections{{protocol=\"{protocol}\"}}")
}

fn disconnects(reason: &str) -> String {
    format!("ferrumq_disconnects_total{{reason=\"{reason}\"}}")
}

fn refused(reason: &str) -> String {
    format!("ferrumq_connects_refused_total{{reason=\"{reason}\"}}")
}

fn dropped(reason: &str) -> String {
    format!("ferrumq_messages_dropped_total{{reason=\"{reason}\"}}")
}

/// Every sample of the text exposition, by `name{labels}`.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, value) = line.rsplit_once(' ').expect("sample line has a value");
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().expect("sample value is a number"),
            };
            (key.to_owned(), value)
        })
        .collect()
}

/// Whether a series takes part in the exact comparison.
fn compared(key: &str) -> bool {
    let name = key.split('{').next().unwrap_or(key);
    !(name.starts_with("process_")
        || name.starts_with("ferrumq_heap_")
        || name.starts_with("ferrumq_pool_")
        || name == "ferrumq_uptime_seconds"
        || name == "ferrumq_connections_asleep"
        || name.ends_with("_bucket")
        || name.ends_with("_sum"))
}

fn snapshot(broker: &RunningBroker) -> BTreeMap<String, f64> {
    parse(&broker.broker.stats.render())
        .into_iter()
        .filter(|(key, _)| compared(key))
        .collect()
}

/// The series that differ between two snapshots, with the difference (a series that is new in
/// `after` counts from 0).
fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let d =
                after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0);
            (d != 0.0).then(|| (key.clone(), d))
        })
        .collect()
}

/// Counts the bytes the test's clients write and read, as the broker should count them.
#[derive(Default)]
struct Meter {
    sent_by_clients: u64,
    received_by_clients: u64,
}

fn encoded_len(packet: &Packet, version: ProtocolVersion) -> u64 {
    let mut buf = BytesMut::new();
    encode(packet, version, &mut buf).expect("encodable");
    buf.len() as u64
}

impl Meter {
    async fn send(&mut self, client: &mut RawClient, packet: &Packet) {
        self.sent_by_clients += encoded_len(packet, client.version);
        client.send(packet).await;
    }

    async fn send_raw(&mut self, client: &mut RawClient, bytes: &[u8]) {
        self.sent_by_clients += bytes.len() as u64;
        client.send_raw(bytes).await;
    }

    async fn recv(&mut self, client: &mut RawClient) -> Packet {
        let packet = client.recv().await;
        self.received_by_clients += encoded_len(&packet, client.version);
        packet
    }

    async fn expect_publish(&mut self, client: &mut RawClient) -> Publish {
        match self.recv(client).await {
            Packet::Publish(publish) => publish,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    async fn expect_ack(&mut self, client: &mut RawClient) -> Packet {
        let packet = self.recv(client).await;
        assert!(
            matches!(
                packet,
                Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_)
            ),
            "expected an acknowledgement, got {packet:?}"
        );
        packet
    }

    /// Opens a connection, sends `connect`, and returns the client with its CONNACK.
    async fn connect_with(
        &mut self,
        broker: &RunningBroker,
        connect: Connect,
    ) -> (RawClient, ConnAck) {
        let mut client = RawClient::open(broker, connect.protocol).await;
        self.send(&mut client, &Packet::Connect(Box::new(connect)))
            .await;
        match self.recv(&mut client).await {
            Packet::ConnAck(connack) => (client, connack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    async fn connect(
        &mut self,
        broker: &RunningBroker,
        version: ProtocolVersion,
        id: &str,
    ) -> RawClient {
        let (client, connack) = self.connect_with(broker, connect_packet(version, id)).await;
        assert_eq!(connack.reason_code, ReasonCode::Success, "CONNACK for {id}");
        client
    }

    async fn subscribe(&mut self, client: &mut RawClient, packet_id: u16, filter: &str, qos: QoS) {
        let options = SubscriptionOptions {
            qos,
            ..Default::default()
        };
        let subscribe = Subscribe {
            packet_id,
            properties: SubscribeProperties::default(),
            filters: vec![(filter.into(), options)],
        };
        self.send(client, &Packet::Subscribe(subscribe)).await;
        match self.recv(client).await {
            Packet::SubAck(ack) => assert_eq!(ack.reason_codes.len(), 1),
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    async fn publish(&mut self, client: &mut RawClient, topic: &str, qos: QoS, packet_id: u16) {
        let publish = Publish {
            topic: topic.into(),
            payload: bytes::Bytes::from_static(b"payload"),
            qos,
            packet_id,
            ..Publish::default()
        };
        self.send(client, &Packet::Publish(publish)).await;
    }

    /// The byte counters' expected changes since the last call, and a reset.
    fn take(&mut self) -> Vec<(String, f64)> {
        let expected = vec![
            (BYTES_IN.to_owned(), self.sent_by_clients as f64),
            (BYTES_OUT.to_owned(), self.received_by_clients as f64),
        ];
        *self = Meter::default();
        expected
    }
}

/// One checked step: the metrics must reach exactly `before + expected` (series not named
/// unchanged) within [`SETTLE`].
struct Checker<'a> {
    broker: &'a RunningBroker,
    before: BTreeMap<String, f64>,
    meter: Meter,
}

impl<'a> Checker<'a> {
    fn new(broker: &'a RunningBroker) -> Self {
        Checker {
            broker,
            before: snapshot(broker),
            meter: Meter::default(),
        }
    }

    async fn step(&mut self, what: &str, expected: &[(&str, f64)]) {
        let mut want: BTreeMap<String, f64> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect();
        for (key, value) in self.meter.take() {
            *want.entry(key).or_default() += value;
        }
        want.retain(|_, v| *v != 0.0);
        let deadline = tokio::time::Instant::now() + SETTLE;
        let (after, mut got) = loop {
            let after = snapshot(self.broker);
            let got = delta(&self.before, &after);
            if got == want || tokio::time::Instant::now() >= deadline {
                break (after, got);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        // Gauges and counters that overshoot would differ here too; compare once more after
        // a pause so a late, unexpected increment is caught by the step that caused it.
        if got == want {
            tokio::time::sleep(Duration::from_millis(50)).await;
            got = delta(&self.before, &snapshot(self.broker));
        }
        assert_eq!(got, want, "metric changes after step: {what}");
        self.before = after;
    }
}

fn will_connect(id: &str) -> Connect {
    Connect {
        will: Some(Will {
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "t/will".into(),
            payload: bytes::Bytes::from_static(b"gone"),
            properties: WillProperties::default(),
        }),
        ..connect_packet(ProtocolVersion::V5, id)
    }
}

#[tokio::test]
async fn every_metric_moves_by_exactly_the_expected_amount() {
    let broker = start().await;
    assert_eq!(
        broker.listeners[0].0, "mqtt",
        "LISTENER_PUBLISHES names this listener"
    );
    let mut c = Checker::new(&broker);

    // Connects, one per version.
    let mut sub311 = c
        .meter
        .connect(&broker, ProtocolVersion::V3_1_1, "sub311")
        .await;
    c.step(
        "3.1.1 connect",
        &[
            (&connections_total("3.1.1"), 1.0),
            (&open_connections("3.1.1"), 1.0),
            (CONNECTED_SESSIONS, 1.0),
        ],
    )
    .await;
    let mut sub5 = c.meter.connect(&broker, ProtocolVersion::V5, "sub5").await;
    c.step(
        "5.0 connect",
        &[
            (&connections_total("5.0"), 1.0),
            (&open_connections("5.0"), 1.0),
            (CONNECTED_SESSIONS, 1.0),
        ],
    )
    .await;

    // Subscriptions: 3.1.1 at QoS 2, 5.0 at QoS 1.
    c.meter
        .subscribe(&mut sub311, 1, "t/#", QoS::ExactlyOnce)
        .await;
    c.meter
        .subscribe(&mut sub5, 1, "t/#", QoS::AtLeastOnce)
        .await;
    c.step("two subscribes", &[(SUBSCRIPTIONS, 2.0)]).await;

    let mut publ = c.meter.connect(&broker, ProtocolVersion::V5, "pub5").await;
    c.step(
        "publisher connect",
        &[
            (&connections_total("5.0"), 1.0),
            (&open_connections("5.0"), 1.0),
            (CONNECTED_SESSIONS, 1.0),
        ],
    )
    .await;

    // QoS 0: one message in, two deliveries at QoS 0, no acknowledgement.
    c.meter.publish(&mut publ, "t/0", QoS::AtMostOnce, 0).await;
    c.meter.expect_publish(&mut sub311).await;
    c.meter.expect_publish(&mut sub5).await;
    c.step(
        "QoS 0 publish",
        &[
            (&received(0), 1.0),
            (&delivered(0), 2.0),
            (DELIVERY_COUNT, 2.0),
            (LISTENER_PUBLISHES, 1.0),
        ],
    )
    .await;

    // QoS 1: PUBACK to the publisher; both subscribers get QoS 1 and hold it in flight until
    // they acknowledge.
    c.meter.publish(&mut publ, "t/1", QoS::AtLeastOnce, 1).await;
    c.meter.expect_ack(&mut publ).await;
    let to311 = c.meter.expect_publish(&mut sub311).await;
    let to5 = c.meter.expect_publish(&mut sub5).await;
    assert_eq!((to311.qos, to5.qos), (QoS::AtLeastOnce, QoS::AtLeastOnce));
    c.step(
        "QoS 1 publish, not yet acknowledged by subscribers",
        &[
            (&received(1), 1.0),
            (&delivered(1), 2.0),
            (DELIVERY_COUNT, 2.0),
            (ACK_COUNT, 1.0),
            (LISTENER_PUBLISHES, 1.0),
            (INFLIGHT, 2.0),
        ],
    )
    .await;
    for (client, id) in [(&mut sub311, to311.packet_id), (&mut sub5, to5.packet_id)] {
        let ack = PubResponse {
            packet_id: id,
            ..Default::default()
        };
        c.meter.send(client, &Packet::PubAck(ack)).await;
    }
    c.step("subscribers acknowledge QoS 1", &[(INFLIGHT, -2.0)])
        .await;

    // QoS 2: PUBREC/PUBREL/PUBCOMP with the publisher; the 3.1.1 subscriber gets QoS 2, the
    // 5.0 one (subscribed at QoS 1) gets QoS 1.
    c.meter.publish(&mut publ, "t/2", QoS::ExactlyOnce, 2).await;
    assert!(matches!(
        c.meter.expect_ack(&mut publ).await,
        Packet::PubRec(_)
    ));
    let rel = PubResponse {
        packet_id: 2,
        ..Default::default()
    };
    c.meter.send(&mut publ, &Packet::PubRel(rel)).await;
    assert!(matches!(
        c.meter.expect_ack(&mut publ).await,
        Packet::PubComp(_)
    ));
    let to311 = c.meter.expect_publish(&mut sub311).await;
    let to5 = c.meter.expect_publish(&mut sub5).await;
    assert_eq!((to311.qos, to5.qos), (QoS::ExactlyOnce, QoS::AtLeastOnce));
    let ack = |packet_id| PubResponse {
        packet_id,
        ..Default::default()
    };
    c.meter
        .send(&mut sub311, &Packet::PubRec(ack(to311.packet_id)))
        .await;
    assert!(matches!(
        c.meter.expect_ack(&mut sub311).await,
        Packet::PubRel(_)
    ));
    c.meter
        .send(&mut sub311, &Packet::PubComp(ack(to311.packet_id)))
        .await;
    c.meter
        .send(&mut sub5, &Packet::PubAck(ack(to5.packet_id)))
        .await;
    c.step(
        "QoS 2 publish, every exchange completed",
        &[
            (&received(2), 1.0),
            (&delivered(2), 1.0),
            (&delivered(1), 1.0),
            (DELIVERY_COUNT, 2.0),
            (ACK_COUNT, 1.0),
            (LISTENER_PUBLISHES, 1.0),
        ],
    )
    .await;

    // A publish nobody subscribed to: received, acknowledged (0x10), dropped.
    c.meter
        .publish(&mut publ, "nobody/here", QoS::AtLeastOnce, 3)
        .await;
    match c.meter.expect_ack(&mut publ).await {
        Packet::PubAck(ack) => assert_eq!(ack.reason_code, ReasonCode::NoMatchingSubscribers),
        other => panic!("expected PUBACK, got {other:?}"),
    }
    c.step(
        "publish without subscribers",
        &[
            (&received(1), 1.0),
            (&dropped(DropReason::NoSubscribers.label()), 1.0),
            (ACK_COUNT, 1.0),
            (LISTENER_PUBLISHES, 1.0),
        ],
    )
    .await;

    // Close path 1: the client's DISCONNECT (0x00).
    c.meter
        .send(&mut publ, &Packet::Disconnect(Disconnect::default()))
        .await;
    assert_eq!(publ.recv_within(WAIT).await, Received::Closed);
    c.step(
        "client DISCONNECT",
        &[
            (&disconnects("client"), 1.0),
            (&open_connections("5.0"), -1.0),
            (CONNECTED_SESSIONS, -1.0),
        ],
    )
    .await;

    // Close path 2: DISCONNECT 0x04, which publishes the Will to both subscribers.
    let (mut willing, connack) = c.meter.connect_with(&broker, will_connect("will5")).await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    c.step(
        "connect with a Will",
        &[
            (&connections_total("5.0"), 1.0),
            (&open_connections("5.0"), 1.0),
            (CONNECTED_SESSIONS, 1.0),
        ],
    )
    .await;
    let with_will = Disconnect {
        reason_code: ReasonCode::DisconnectWithWillMessage,
        ..Disconnect::default()
    };
    c.meter
        .send(&mut willing, &Packet::Disconnect(with_will))
        .await;
    assert_eq!(willing.recv_within(WAIT).await, Received::Closed);
    let will311 = c.meter.expect_publish(&mut sub311).await;
    let will5 = c.meter.expect_publish(&mut sub5).await;
    assert_eq!((&*will311.topic, &*will5.topic), ("t/will", "t/will"));
    c.step(
        "DISCONNECT 0x04 (Will published)",
        &[
            (&disconnects("client_with_will"), 1.0),
            (&open_connections("5.0"), -1.0),
            (CONNECTED_SESSIONS, -1.0),
            (&received(0), 1.0),
            (&delivered(0), 2.0),
            (DELIVERY_COUNT, 2.0),
        ],
    )
    .await;

    // Close path 3: the TCP connection just ends.
    let mut abrupt = c
        .meter
        .connect(&broker, ProtocolVersion::V3_1_1, "abrupt")
        .await;
    c.step(
        "connect before an abrupt close",
        &[
            (&connections_total("3.1.1"), 1.0),
            (&open_connections("3.1.1"), 1.0),
            (CONNECTED_SESSIONS, 1.0),
        ],
    )
    .await;
    abrupt.stream.shutdown().await.expect("shutdown");
    drop(abrupt);
    c.step(
        "abrupt close",
        &[
            (&disconnects("lost"), 1.0),
            (&open_connections("3.1.1"), -1.0),
            (CONNECTED_SESSIONS, -1.0),
        ],
    )
    .await;

    // Close path 4: a second connection with the same client identifier takes the session
    // over; the first gets DISCONNECT 0x8E.
    let mut first = c.meter.connect(&broker, ProtocolVersion::V5, "dup").await;
    c.step(
        "first connection of a client id",
        &[
            (&connections_total("5.0"), 1.0),
            (&open_connections("5.0"), 1.0),
            (CONNECTED_SESSIONS, 1.0),
        ],
    )
    .await;
    let second = c.meter.connect(&broker, ProtocolVersion::V5, "dup").await;
    match c.meter.recv(&mut first).await {
        Packet::Disconnect(d) => assert_eq!(d.reason_code, ReasonCode::SessionTakenOver),
        other => panic!("expected DISCONNECT 0x8E, got {other:?}"),
    }
    assert_eq!(first.recv_within(WAIT).await, Received::Closed);
    c.step(
        "takeover (0x8E)",
        &[
            (&connections_total("5.0"), 1.0),
            (&disconnects("0x8e"), 1.0),
        ],
    )
    .await;
    let mut second = second;
    c.meter
        .send(&mut second, &Packet::Disconnect(Disconnect::default()))
        .await;
    assert_eq!(second.recv_within(WAIT).await, Received::Closed);
    c.step(
        "the new owner disconnects",
        &[
            (&disconnects("client"), 1.0),
            (&open_connections("5.0"), -1.0),
            (CONNECTED_SESSIONS, -1.0),
        ],
    )
    .await;

    // Close path 5: Keep Alive 1 s and silence; the broker closes after 1.5 s with 0x8D.
    let (mut idle, connack) = c
        .meter
        .connect_with(
            &broker,
            Connect {
                keep_alive: 1,
                ..connect_packet(ProtocolVersion::V5, "idle")
            },
        )
        .await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    c.step(
        "connect with Keep Alive 1",
        &[
            (&connections_total("5.0"), 1.0),
            (&open_connections("5.0"), 1.0),
            (CONNECTED_SESSIONS, 1.0),
        ],
    )
    .await;
    match c.meter.recv(&mut idle).await {
        Packet::Disconnect(d) => assert_eq!(d.reason_code, ReasonCode::KeepAliveTimeout),
        other => panic!("expected DISCONNECT 0x8D, got {other:?}"),
    }
    assert_eq!(idle.recv_within(WAIT).await, Received::Closed);
    c.step(
        "Keep Alive timeout (0x8D)",
        &[
            (&disconnects("0x8d"), 1.0),
            (&open_connections("5.0"), -1.0),
            (CONNECTED_SESSIONS, -1.0),
        ],
    )
    .await;

    // Refused CONNECTs: an authentication method the broker does not offer (5.0), an empty
    // client id without Clean Session (3.1.1, return code 2, counted as 0x85), and a protocol
    // level the broker does not speak (refused while decoding, 0x84).
    let (_, connack) = c
        .meter
        .connect_with(
            &broker,
            Connect {
                properties: ConnectProperties {
                    authentication_method: Some("SCRAM-SHA-1".into()),
                    ..ConnectProperties::default()
                },
                ..connect_packet(ProtocolVersion::V5, "auth")
            },
        )
        .await;
    assert_eq!(connack.reason_code, ReasonCode::BadAuthenticationMethod);
    let (_, connack) = c
        .meter
        .connect_with(
            &broker,
            Connect {
                clean_start: false,
                ..connect_packet(ProtocolVersion::V3_1_1, "")
            },
        )
        .await;
    assert_eq!(connack.reason_code, ReasonCode::ClientIdentifierNotValid);
    let mut level6 = RawClient::open(&broker, ProtocolVersion::V3_1_1).await;
    // CONNECT, remaining length 12: "MQTT", level 6, Clean Session, keep alive 60, empty id.
    let connect = [
        0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x06, 0x02, 0x00, 0x3c, 0x00, 0x00,
    ];
    c.meter.send_raw(&mut level6, &connect).await;
    match c.meter.recv(&mut level6).await {
        Packet::ConnAck(connack) => {
            assert_eq!(connack.reason_code, ReasonCode::UnsupportedProtocolVersion)
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
    c.step(
        "three refused CONNECTs",
        &[
            (&refused("0x8c"), 1.0),
            (&refused("0x85"), 1.0),
            (&refused("0x84"), 1.0),
        ],
    )
    .await;

    // The subscribers leave; the broker is back to no connections and no subscriptions.
    c.meter
        .send(&mut sub311, &Packet::Disconnect(Disconnect::default()))
        .await;
    c.meter
        .send(&mut sub5, &Packet::Disconnect(Disconnect::default()))
        .await;
    assert_eq!(sub311.recv_within(WAIT).await, Received::Closed);
    assert_eq!(sub5.recv_within(WAIT).await, Received::Closed);
    c.step(
        "subscribers disconnect",
        &[
            (&disconnects("client"), 2.0),
            (&open_connections("3.1.1"), -1.0),
            (&open_connections("5.0"), -1.0),
            (CONNECTED_SESSIONS, -2.0),
            (SUBSCRIPTIONS, -2.0),
        ],
    )
    .await;

    // Totals over the whole script, through the Stats accessors.
    let stats = &broker.broker.stats;
    assert_eq!(stats.received_total(), 5);
    assert_eq!(stats.delivered_total(), 8);
    assert_eq!(stats.dropped_total(), 1);
    assert_eq!(stats.dropped_count(DropReason::NoSubscribers), 1);
    assert_eq!(stats.connections_total(), 8);
    assert_eq!(stats.refused_total(), 3);
    let all = parse(&stats.render());
    for histogram in [
        "ferrumq_delivery_latency_seconds",
        "ferrumq_publish_ack_latency_seconds",
    ] {
        let count = all[&format!("{histogram}_count")];
        let inf = all[&format!("{histogram}_bucket{{le=\"+Inf\"}}")];
        assert_eq!(inf, count, "{histogram}: +Inf bucket equals the count");
    }
    assert_eq!(all[DELIVERY_COUNT], 8.0);
    assert_eq!(all[ACK_COUNT], 3.0);
    for (key, value) in [
        ("ferrumq_queued_messages", 0.0),
        ("ferrumq_queued_messages_max", 0.0),
        ("ferrumq_queue_limit_messages", 1000.0),
        ("ferrumq_draining", 0.0),
        (INFLIGHT, 0.0),
        ("ferrumq_sessions{state=\"offline\"}", 0.0),
    ] {
        assert_eq!(all[key], value, "{key}");
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn draining_gauge_follows_shutdown() {
    let broker = start().await;
    let value = |b: &RunningBroker| parse(&b.broker.stats.render())["ferrumq_draining"];
    assert_eq!(value(&broker), 0.0);
    broker.broker.begin_shutdown();
    assert_eq!(value(&broker), 1.0);
    broker.shutdown().await;
}

#[test]
fn message_path_metric_updates_do_not_allocate() {
    assert!(alloc::is_installed());
    let stats = Stats::new().expect("metrics register");
    let listener = stats.listener_publishes("mqtt");
    let update = || {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            stats.received(qos);
            stats.delivered_n(qos, 1);
        }
        for reason in DropReason::ALL {
            stats.dropped(reason);
        }
        Stats::add(&stats.bytes_received, 100);
        Stats::add(&stats.bytes_sent, 200);
        listener.inc();
        stats.delivery_latency.observe(Duration::from_micros(42));
        stats.ack_latency.observe(Duration::from_millis(3));
        stats.delivery_latency.observe(Duration::from_secs(7)); // past the last bucket
    };
    // Once to warm up anything lazily initialised, then measured.
    update();
    let ((), counted) = alloc::count(|| {
        for _ in 0..100 {
            update();
        }
    });
    assert_eq!(counted.allocating_calls(), 0, "{counted:?}");
    assert_eq!(counted.deallocations, 0, "{counted:?}");
    assert_eq!(stats.received_total(), 303);
    assert_eq!(stats.delivered_total(), 303);
    assert_eq!(stats.dropped_total(), 404);
}
