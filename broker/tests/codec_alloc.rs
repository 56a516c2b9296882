//! Decoding a PUBLISH allocates nothing, and neither does writing a per-subscriber PUBLISH head.
//!
//! The counting allocator is this test binary's global allocator; counts are per thread
//! (`alloc::count`), so tests running in parallel do not disturb each other.
//!
//! # What "steady state" means here
//!
//! A connection owns one read buffer (`BytesMut`) for its lifetime. The loop measured is the
//! connection's: bytes arrive and are appended to the buffer (`extend_from_slice`), the decoder
//! splits each whole packet off the front, and the packet is dropped (handed on and released)
//! before the next bytes arrive. Two things happen only once per connection, during warm-up:
//!
//! - the first `split_to` turns the buffer's plain `Vec` into shared storage, which allocates
//!   the small reference-counted header that lets the packet's `Bytes` views outlive the split
//!   (at most one allocation, measured in `first_decode_on_a_fresh_buffer_allocates_once`);
//! - once every packet split from it has been dropped, the buffer is the storage's only owner
//!   again, so when it runs out of room `reserve` moves the unread bytes to the front of the
//!   same storage instead of allocating.
//!
//! A packet still alive when the buffer needs room (kept in a queue, say) pins the storage, and
//! the buffer then allocates a new one: that is the cost of holding on to packets, not of
//! decoding them.

use std::hint::black_box;

use bytes::BytesMut;
use ferrumq_broker::alloc::{self, AllocStats, CountingAllocator};
use ferrumq_broker::codec::*;

#[global_allocator]
static A: CountingAllocator = CountingAllocator;

const WARM_UP: usize = 16;
const MEASURED: usize = 2_000;

fn s(text: &str) -> ByteString {
    ByteString::from(text.to_owned())
}

/// A PUBLISH as a client would send it, encoded for `version`.
fn publish_wire(version: ProtocolVersion, qos: QoS, with_properties: bool) -> Vec<u8> {
    let mut publish = Publish {
        qos,
        topic: s("sensors/room-1/temperature"),
        packet_id: if qos == QoS::AtMostOnce { 0 } else { 42 },
        payload: bytes::Bytes::from(vec![0x5A; 256]),
        ..Publish::default()
    };
    if with_properties {
        publish.properties = PublishProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(60),
            topic_alias: Some(3),
            content_type: Some(s("application/json")),
            response_topic: Some(s("replies/1")),
            correlation_data: Some(bytes::Bytes::from_static(b"corr")),
            // Two identifiers fit the inline SmallVec; a third would spill to the heap.
            subscription_identifiers: [7u32, 9].into_iter().collect(),
            user_properties: UserProperties::from_pairs([("trace", "abc"), ("tenant", "t1")])
                .unwrap(),
        };
    }
    let mut buf = BytesMut::new();
    encode(&Packet::Publish(publish), version, &mut buf).unwrap();
    buf.to_vec()
}

/// Runs the connection loop (refill, decode `per_read` packets, drop them) and returns the
/// allocator calls of `MEASURED` iterations after `WARM_UP` unmeasured ones.
fn steady_state_decode(version: ProtocolVersion, wire: &[u8], per_read: usize) -> AllocStats {
    let mut decoder = Decoder::with_version(version, MAX_PACKET_SIZE_LIMIT);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut read_and_decode = |buf: &mut BytesMut| {
        for _ in 0..per_read {
            buf.extend_from_slice(wire);
        }
        for _ in 0..per_read {
            let packet = decoder.decode(buf).expect("valid").expect("whole");
            assert!(matches!(packet, Packet::Publish(_)));
            drop(black_box(packet));
        }
        assert!(buf.is_empty());
    };
    for _ in 0..WARM_UP {
        read_and_decode(&mut buf);
    }
    let ((), stats) = alloc::count(|| {
        for _ in 0..MEASURED {
            read_and_decode(&mut buf);
        }
    });
    stats
}

fn assert_no_heap(stats: AllocStats, what: &str) {
    assert!(alloc::is_installed(), "CountingAllocator is not installed");
    assert_eq!(
        stats,
        AllocStats::default(),
        "{what}: {} allocating calls over {MEASURED} iterations",
        stats.allocating_calls()
    );
}

#[test]
fn decoding_publish_allocates_nothing_in_steady_state() {
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            for with_properties in [false, true] {
                if with_properties && !version.is_v5() {
                    continue;
                }
                let wire = publish_wire(version, qos, with_properties);
                let stats = steady_state_decode(version, &wire, 1);
                assert_no_heap(
                    stats,
                    &format!("{version:?} {qos:?} properties={with_properties}"),
                );
            }
        }
    }
}

/// Several packets per read (a burst in one TCP segment) change nothing.
#[test]
fn decoding_a_burst_of_publishes_allocates_nothing_in_steady_state() {
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let wire = publish_wire(version, QoS::AtLeastOnce, version.is_v5());
        assert_no_heap(steady_state_decode(version, &wire, 8), "burst of 8");
    }
}

/// A partial packet (`Ok(None)`) costs nothing either.
#[test]
fn waiting_for_the_rest_of_a_packet_allocates_nothing() {
    let wire = publish_wire(ProtocolVersion::V5, QoS::AtLeastOnce, true);
    let mut decoder = Decoder::with_version(ProtocolVersion::V5, MAX_PACKET_SIZE_LIMIT);
    let mut buf = BytesMut::with_capacity(wire.len());
    let ((), stats) = alloc::count(|| {
        for byte in &wire[..wire.len() - 1] {
            buf.extend_from_slice(&[*byte]);
            assert_eq!(decoder.decode(&mut buf), Ok(None));
        }
    });
    assert_no_heap(stats, "partial packet");
}

/// The one-time cost that warm-up absorbs: the first split of a fresh buffer makes its storage
/// shareable (one small allocation, no copy of the data).
#[test]
fn first_decode_on_a_fresh_buffer_allocates_once() {
    let wire = publish_wire(ProtocolVersion::V5, QoS::AtMostOnce, false);
    let mut decoder = Decoder::with_version(ProtocolVersion::V5, MAX_PACKET_SIZE_LIMIT);
    let mut buf = BytesMut::with_capacity(4096);
    buf.extend_from_slice(&wire);
    let (packet, stats) = alloc::count(|| decoder.decode(&mut buf));
    assert!(matches!(packet, Ok(Some(Packet::Publish(_)))));
    assert!(
        stats.allocations <= 1 && stats.reallocations == 0,
        "first decode: {stats:?}"
    );
    assert!(
        stats.bytes_allocated < 64,
        "the shared header only, not a copy of the packet: {stats:?}"
    );
}

#[test]
fn writing_a_publish_head_allocates_nothing() {
    let mut publish = Publish {
        qos: QoS::AtLeastOnce,
        topic: s("sensors/room-1/temperature"),
        packet_id: 1,
        payload: bytes::Bytes::from(vec![0x5A; 1024]),
        ..Publish::default()
    };
    publish.properties.content_type = Some(s("application/json"));
    publish.properties.user_properties = UserProperties::from_pairs([("trace", "abc")]).unwrap();
    // Preparing the shared part happens once per message, not per subscriber.
    let outbound = OutboundPublish::new(&publish).unwrap();
    let sub_ids = [3u32, 70_000];
    let deliveries = [
        Delivery::default(),
        Delivery {
            qos: QoS::AtLeastOnce,
            packet_id: 7,
            ..Delivery::default()
        },
        Delivery {
            qos: QoS::ExactlyOnce,
            packet_id: 8,
            dup: true,
            retain: true,
            topic_alias: Some(2),
            omit_topic: true,
            subscription_identifiers: &sub_ids,
            message_expiry_interval: Some(30),
        },
    ];
    let mut head = BytesMut::with_capacity(256);
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        for delivery in &deliveries {
            let ((), stats) = alloc::count(|| {
                for _ in 0..MEASURED {
                    head.clear();
                    outbound
                        .wire()
                        .write_head(version, delivery, &mut head)
                        .unwrap();
                    black_box(&head);
                    black_box(outbound.payload());
                }
            });
            assert_no_heap(stats, &format!("write_head {version:?} {delivery:?}"));
        }
    }
}
