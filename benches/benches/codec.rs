//! Codec benchmarks: decode and encode of CONNECT, PUBLISH (16 B, 1 KiB and 64 KiB payloads,
//! QoS 0 and 1), SUBSCRIBE and PUBACK in MQTT 3.1.1 and 5.0, and `OutboundPublish::write_head`.
//!
//! Next to criterion's time per operation, each benchmark prints heap allocations and bytes
//! per operation (`ferrumq_benches::report_allocs`, with the counting allocator installed
//! below). Run with:
//!
//! ```text
//! cargo bench -p ferrumq-benches --bench codec
//! ```
//!
//! Results and the machine they were taken on are in `benches/RESULTS.md`.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrumq_benches::report_allocs;
use ferrumq_broker::alloc::CountingAllocator;
use ferrumq_broker::codec::*;

#[global_allocator]
static A: CountingAllocator = CountingAllocator;

/// Operations measured for the allocation report of each benchmark (after the helper's own
/// warm-up).
const ALLOC_ITERS: u64 = 2_000;

struct Case {
    name: String,
    version: ProtocolVersion,
    packet: Packet,
    wire: Vec<u8>,
}

impl Case {
    fn new(name: impl Into<String>, version: ProtocolVersion, packet: Packet) -> Case {
        let mut buf = BytesMut::new();
        encode(&packet, version, &mut buf).expect("bench packets are valid");
        Case {
            name: name.into(),
            version,
            packet,
            wire: buf.to_vec(),
        }
    }
}

fn s(text: &str) -> ByteString {
    ByteString::from(text.to_owned())
}

fn version_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::V5 => "v5",
        _ => "v3_1_1",
    }
}

const TOPIC: &str = "sensors/room-1/temperature";

fn connect(version: ProtocolVersion) -> Packet {
    let mut properties = ConnectProperties::default();
    if version.is_v5() {
        properties.session_expiry_interval = Some(3600);
        properties.receive_maximum = Some(100);
        properties.user_properties = UserProperties::from_pairs([("app", "bench")]).unwrap();
    }
    Packet::Connect(Box::new(Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 60,
        client_id: s("bench-client-0001"),
        will: None,
        username: Some(s("device")),
        password: Some(Bytes::from_static(b"secret-token")),
        properties,
    }))
}

fn publish(qos: QoS, payload_len: usize) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: s(TOPIC),
        packet_id: if qos == QoS::AtMostOnce { 0 } else { 42 },
        properties: PublishProperties::default(),
        payload: Bytes::from(vec![0x5A; payload_len]),
    }
}

fn subscribe(version: ProtocolVersion) -> Packet {
    let mut properties = SubscribeProperties::default();
    if version.is_v5() {
        properties.subscription_identifier = Some(12);
    }
    let options = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        ..SubscriptionOptions::default()
    };
    Packet::Subscribe(Subscribe {
        packet_id: 7,
        properties,
        filters: vec![
            (s("sensors/+/temperature"), options),
            (s("alerts/#"), options),
            (s("$share/workers/jobs/+"), options),
        ],
    })
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let v = version_name(version);
        cases.push(Case::new(format!("connect_{v}"), version, connect(version)));
        for (size_name, size) in [("16B", 16), ("1KiB", 1024), ("64KiB", 64 * 1024)] {
            for (qos_name, qos) in [("qos0", QoS::AtMostOnce), ("qos1", QoS::AtLeastOnce)] {
                cases.push(Case::new(
                    format!("publish_{size_name}_{qos_name}_{v}"),
                    version,
                    Packet::Publish(publish(qos, size)),
                ));
            }
        }
        cases.push(Case::new(
            format!("subscribe_{v}"),
            version,
            subscribe(version),
        ));
        cases.push(Case::new(
            format!("puback_{v}"),
            version,
            Packet::PubAck(PubResponse {
                packet_id: 42,
                ..PubResponse::default()
            }),
        ));
    }
    cases
}

/// decode: one operation copies the packet's wire bytes into the connection's warm read buffer
/// (`extend_from_slice`, as a socket read would) and decodes one packet from it, dropping the
/// packet. The decoder and the buffer live across operations, as they do for a connection.
/// CONNECT is decoded by a fresh server-side decoder each time (it is a stream's first packet;
/// the decoder is a plain value, creating it allocates nothing).
fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for case in cases() {
        let is_connect = matches!(case.packet, Packet::Connect(_));
        let mut decoder = Decoder::with_version(case.version, MAX_PACKET_SIZE_LIMIT);
        let mut buf = BytesMut::with_capacity(case.wire.len() * 2 + 1024);
        let wire = case.wire.clone();
        let mut op = move || {
            buf.extend_from_slice(&wire);
            let packet = if is_connect {
                Decoder::new(MAX_PACKET_SIZE_LIMIT).decode(&mut buf)
            } else {
                decoder.decode(&mut buf)
            };
            drop(black_box(packet.expect("valid").expect("whole packet")));
        };
        report_allocs(&format!("decode/{}", case.name), ALLOC_ITERS, &mut op);
        group.throughput(Throughput::Bytes(case.wire.len() as u64));
        group.bench_function(case.name.as_str(), |b| b.iter(&mut op));
    }
    group.finish();
}

/// encode: one operation clears a warm output buffer (capacity already large enough) and
/// encodes one packet into it with `encode`, which sizes the packet first and then writes it.
/// PUBLISH copies its payload into the buffer here; fan-out avoids that copy with
/// `OutboundPublish` (see `write_head`).
fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for case in cases() {
        let mut buf = BytesMut::with_capacity(case.wire.len() + 1024);
        let packet = case.packet.clone();
        let version = case.version;
        let mut op = move || {
            buf.clear();
            encode(black_box(&packet), version, &mut buf).expect("valid");
            black_box(&buf);
        };
        report_allocs(&format!("encode/{}", case.name), ALLOC_ITERS, &mut op);
        group.throughput(Throughput::Bytes(case.wire.len() as u64));
        group.bench_function(case.name.as_str(), |b| b.iter(&mut op));
    }
    group.finish();
}

/// write_head: one operation clears a warm head buffer and writes one subscriber's PUBLISH head
/// (fixed header, topic or empty topic, packet identifier, per-delivery and shared properties)
/// for a 1 KiB message prepared once with `OutboundPublish::new`. The payload is not copied:
/// the head and `payload()` go to the socket together, so this is the whole per-subscriber
/// encoding cost of fan-out.
fn bench_write_head(c: &mut Criterion) {
    let mut group = c.benchmark_group("write_head");
    let mut original = publish(QoS::AtLeastOnce, 1024);
    original.properties.content_type = Some(s("application/json"));
    original.properties.user_properties =
        UserProperties::from_pairs([("trace", "0af7651916cd43dd")]).unwrap();
    let outbound = OutboundPublish::new(&original).expect("valid");
    let sub_ids = [12u32];
    let cases: [(&str, ProtocolVersion, Delivery); 4] = [
        (
            "publish_1KiB_qos0_v3_1_1",
            ProtocolVersion::V3_1_1,
            Delivery::default(),
        ),
        (
            "publish_1KiB_qos1_v3_1_1",
            ProtocolVersion::V3_1_1,
            Delivery {
                qos: QoS::AtLeastOnce,
                packet_id: 42,
                ..Delivery::default()
            },
        ),
        (
            "publish_1KiB_qos0_v5",
            ProtocolVersion::V5,
            Delivery::default(),
        ),
        (
            "publish_1KiB_qos1_v5_alias_subid_expiry",
            ProtocolVersion::V5,
            Delivery {
                qos: QoS::AtLeastOnce,
                packet_id: 42,
                topic_alias: Some(3),
                omit_topic: true,
                subscription_identifiers: &sub_ids,
                message_expiry_interval: Some(30),
                ..Delivery::default()
            },
        ),
    ];
    for (name, version, delivery) in cases {
        let mut head = BytesMut::with_capacity(256);
        let outbound = &outbound;
        let mut op = move || {
            head.clear();
            outbound
                .wire()
                .write_head(version, black_box(&delivery), &mut head)
                .expect("valid");
            black_box((&head, outbound.payload()));
        };
        report_allocs(&format!("write_head/{name}"), ALLOC_ITERS, &mut op);
        group.bench_function(name, |b| b.iter(&mut op));
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_decode, bench_encode, bench_write_head
}
criterion_main!(benches);
