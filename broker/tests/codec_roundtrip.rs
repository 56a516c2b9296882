//! Property tests: for every packet type of MQTT 3.1.1 and 5.0 (and CONNECT of 3.1), encoding a
//! valid packet and decoding the bytes gives back the same packet; `encoded_len` predicts the
//! size; and a decoder fed the bytes one at a time waits (`Ok(None)`, nothing consumed) until
//! the last byte arrives. `OutboundPublish` heads plus the shared payload decode back to the
//! publish with the per-delivery fields applied.

mod codec_support;

use bytes::BytesMut;
use codec_support::*;
use ferrumq_broker::codec::*;
use proptest::prelude::*;
use proptest::sample::select;

const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        // Keep failures reproducible without writing regression files into the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The three properties every valid packet must have.
fn check_round_trip(packet: &Packet, version: ProtocolVersion) -> Result<(), TestCaseError> {
    let bytes = encode_checked(packet, version);

    // Whole buffer at once.
    let decoded = decode_one(packet, version, &bytes);
    prop_assert_eq!(decoded, Ok(Some(packet.clone())), "bytes: {}", hex(&bytes));

    // One byte at a time: Ok(None) and nothing consumed until the last byte.
    let mut decoder = decoder_for(packet, version, MAX_PACKET_SIZE_LIMIT);
    let mut buf = BytesMut::with_capacity(bytes.len());
    for (i, byte) in bytes.iter().enumerate() {
        buf.extend_from_slice(&[*byte]);
        let result = decoder.decode(&mut buf);
        if i + 1 < bytes.len() {
            prop_assert_eq!(result, Ok(None), "after {} of {} bytes", i + 1, bytes.len());
            prop_assert_eq!(&buf[..], &bytes[..=i], "partial input was consumed");
        } else {
            prop_assert_eq!(result, Ok(Some(packet.clone())));
            prop_assert!(buf.is_empty());
        }
    }
    Ok(())
}

/// One proptest per packet type and version, named `<type>_<version>`.
macro_rules! round_trip_tests {
    ($($name:ident: $packet:ident, $version:ident;)*) => {
        $(
            #[test]
            fn $name() {
                let strategy = packet_of(PacketType::$packet, ProtocolVersion::$version);
                proptest!(config(), |(packet in strategy)| {
                    check_round_trip(&packet, ProtocolVersion::$version)?;
                });
            }
        )*
    };
}

round_trip_tests! {
    connect_v3_1: Connect, V3_1;
    connect_v3_1_1: Connect, V3_1_1;
    connect_v5: Connect, V5;
    connack_v3_1_1: ConnAck, V3_1_1;
    connack_v5: ConnAck, V5;
    publish_v3_1_1: Publish, V3_1_1;
    publish_v5: Publish, V5;
    puback_v3_1_1: PubAck, V3_1_1;
    puback_v5: PubAck, V5;
    pubrec_v3_1_1: PubRec, V3_1_1;
    pubrec_v5: PubRec, V5;
    pubrel_v3_1_1: PubRel, V3_1_1;
    pubrel_v5: PubRel, V5;
    pubcomp_v3_1_1: PubComp, V3_1_1;
    pubcomp_v5: PubComp, V5;
    subscribe_v3_1_1: Subscribe, V3_1_1;
    subscribe_v5: Subscribe, V5;
    suback_v3_1_1: SubAck, V3_1_1;
    suback_v5: SubAck, V5;
    unsubscribe_v3_1_1: Unsubscribe, V3_1_1;
    unsubscribe_v5: Unsubscribe, V5;
    unsuback_v3_1_1: UnsubAck, V3_1_1;
    unsuback_v5: UnsubAck, V5;
    pingreq_v3_1_1: PingReq, V3_1_1;
    pingreq_v5: PingReq, V5;
    pingresp_v3_1_1: PingResp, V3_1_1;
    pingresp_v5: PingResp, V5;
    disconnect_v3_1_1: Disconnect, V3_1_1;
    disconnect_v5: Disconnect, V5;
    auth_v5: Auth, V5;
}

/// A connection's whole stream: CONNECT, then packets of the version it chose, all in one
/// buffer, decoded in order by one server-side decoder.
#[test]
fn a_stream_of_packets_decodes_in_order() {
    let stream = select(vec![
        ProtocolVersion::V3_1,
        ProtocolVersion::V3_1_1,
        ProtocolVersion::V5,
    ])
    .prop_flat_map(|protocol| {
        // 3.1 shares 3.1.1's packet formats after CONNECT.
        let rest = if protocol.is_v5() {
            ProtocolVersion::V5
        } else {
            ProtocolVersion::V3_1_1
        };
        (
            Just(protocol),
            connect(protocol),
            prop::collection::vec(
                any_packet(rest)
                    .prop_filter("CONNECT comes once", |p| !matches!(p, Packet::Connect(_))),
                0..8,
            ),
        )
    });
    let config = ProptestConfig {
        cases: 64,
        ..config()
    };
    proptest!(config, |((protocol, first, rest) in stream)| {
        let version = if protocol.is_v5() { ProtocolVersion::V5 } else { ProtocolVersion::V3_1_1 };
        let mut buf = BytesMut::new();
        encode(&first, protocol, &mut buf).unwrap();
        for packet in &rest {
            encode(packet, version, &mut buf).unwrap();
        }
        let mut decoder = Decoder::new(MAX_PACKET_SIZE_LIMIT);
        prop_assert_eq!(decoder.decode(&mut buf), Ok(Some(first)));
        prop_assert_eq!(decoder.version(), Some(protocol));
        for packet in rest {
            prop_assert_eq!(decoder.decode(&mut buf), Ok(Some(packet)));
        }
        prop_assert_eq!(decoder.decode(&mut buf), Ok(None));
        prop_assert!(buf.is_empty());
    });
}

/// QoS, DUP, RETAIN, packet identifier, topic alias, omit topic, subscription identifiers,
/// message expiry: the raw material of a `Delivery` (which borrows its identifiers).
type DeliveryFields = (
    QoS,
    bool,
    bool,
    u16,
    Option<u16>,
    bool,
    Vec<u32>,
    Option<u32>,
);

fn delivery_fields() -> impl Strategy<Value = DeliveryFields> {
    (
        select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]),
        any::<bool>(),
        any::<bool>(),
        1..=u16::MAX,
        prop::option::of(1..=u16::MAX),
        any::<bool>(),
        prop::collection::vec(1..=VARINT_MAX, 0..4),
        any::<Option<u32>>(),
    )
}

/// `OutboundPublish::write_head` + `payload()` is a PUBLISH whose shared fields come from the
/// original and whose per-delivery fields come from the `Delivery`.
#[test]
fn outbound_publish_head_and_payload_decode_to_the_delivered_publish() {
    let inputs = select(vec![ProtocolVersion::V3_1_1, ProtocolVersion::V5]).prop_flat_map(|v| {
        (
            Just(v),
            // Incoming publishes always carry a topic name here: the alias is per delivery.
            publish(v).prop_filter("has a topic", |p| !p.topic.is_empty()),
            delivery_fields(),
        )
    });
    proptest!(config(), |((v, original, fields) in inputs)| {
        let (qos, dup, retain, id, alias, omit, sub_ids, expiry) = fields;
        let at_most_once = qos == QoS::AtMostOnce;
        let delivery = Delivery {
            qos,
            dup: dup && !at_most_once,
            retain,
            packet_id: if at_most_once { 0 } else { id },
            topic_alias: alias,
            // An empty topic is only valid when an alias stands for it.
            omit_topic: omit && alias.is_some(),
            subscription_identifiers: &sub_ids,
            message_expiry_interval: expiry,
        };
        let outbound = OutboundPublish::new(&original).unwrap();

        let mut head = BytesMut::new();
        outbound.wire().write_head(v, &delivery, &mut head).unwrap();
        prop_assert_eq!(head.len(), outbound.wire().head_len(v, &delivery));
        let mut wire = head.clone();
        wire.extend_from_slice(outbound.payload());
        prop_assert_eq!(wire.len(), outbound.wire().encoded_len(v, &delivery));
        prop_assert_eq!(&outbound.wire().to_bytes(v, &delivery).unwrap()[..], &wire[..]);

        let p = &original.properties;
        let expected = Publish {
            dup: delivery.dup,
            qos: delivery.qos,
            retain: delivery.retain,
            topic: if v.is_v5() && delivery.omit_topic {
                ByteString::new()
            } else {
                original.topic.clone()
            },
            packet_id: delivery.packet_id,
            properties: if v.is_v5() {
                PublishProperties {
                    payload_format_indicator: p.payload_format_indicator,
                    message_expiry_interval: expiry,
                    topic_alias: alias,
                    response_topic: p.response_topic.clone(),
                    correlation_data: p.correlation_data.clone(),
                    subscription_identifiers: sub_ids.iter().copied().collect(),
                    content_type: p.content_type.clone(),
                    user_properties: p.user_properties.clone(),
                }
            } else {
                PublishProperties::default()
            },
            payload: original.payload.clone(),
        };
        let mut decoder = Decoder::with_version(v, MAX_PACKET_SIZE_LIMIT);
        let bytes = wire.to_vec();
        prop_assert_eq!(
            decoder.decode(&mut wire),
            Ok(Some(Packet::Publish(expected))),
            "bytes: {}",
            hex(&bytes)
        );
    });
}
