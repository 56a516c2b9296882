//! Section 4.6 message ordering.

use ferrumq_broker::codec::*;

use crate::support::*;
use crate::util::*;

/// `n` PUBLISH packets (ids 1..=n, payload = id) in one buffer.
fn publishes(topic: &str, qos: QoS, n: u16) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    for id in 1..=n {
        let publish = Publish {
            qos,
            topic: topic.into(),
            packet_id: if qos == QoS::AtMostOnce { 0 } else { id },
            payload: bytes::Bytes::copy_from_slice(&id.to_be_bytes()),
            ..Publish::default()
        };
        encode(&Packet::Publish(publish), V4, &mut buf).unwrap();
    }
    buf.to_vec()
}

fn seq(p: &Publish) -> u16 {
    u16::from_be_bytes([p.payload[0], p.payload[1]])
}

#[tokio::test]
async fn mqtt_4_6_0_1_resent_in_original_order() {
    let broker = start().await;
    let (mut s, _) = connect_ok(&broker, persistent("order")).await;
    sub(&mut s, 1, "ord/r", QoS::ExactlyOnce).await;
    let mut p = connect(&broker, "p").await;
    for id in 1..=6u16 {
        let qos = if id % 2 == 0 {
            QoS::ExactlyOnce
        } else {
            QoS::AtLeastOnce
        };
        publish_acked(&mut p, "ord/r", b"x", qos, id, false).await;
    }
    let mut sent = Vec::new();
    for _ in 0..6 {
        sent.push(s.expect_publish().await.packet_id);
    }
    drop(s);
    let (mut s, _) = connect_ok(&broker, persistent("order")).await;
    let mut resent = Vec::new();
    for _ in 0..6 {
        let got = s.expect_publish().await;
        assert!(got.dup);
        resent.push(got.packet_id);
    }
    assert_eq!(resent, sent);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_6_0_2_pubacks_in_order_received() {
    let broker = start().await;
    let mut p = connect(&broker, "p").await;
    p.send_raw(&publishes("ord/ack", QoS::AtLeastOnce, 50))
        .await;
    for id in 1..=50 {
        assert_eq!(p.recv().await, Packet::PubAck(ack(id)));
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_6_0_3_pubrecs_in_order_received() {
    let broker = start().await;
    let mut p = connect(&broker, "p").await;
    p.send_raw(&publishes("ord/rec", QoS::ExactlyOnce, 50))
        .await;
    for id in 1..=50 {
        assert_eq!(p.recv().await, Packet::PubRec(ack(id)));
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_6_0_4_pubrels_in_order_of_pubrecs() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "ord/rel", QoS::ExactlyOnce).await;
    let mut p = connect(&broker, "p").await;
    for id in 1..=5u16 {
        publish_acked(&mut p, "ord/rel", b"x", QoS::ExactlyOnce, id, false).await;
    }
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(s.expect_publish().await.packet_id);
    }
    // PUBRECs in reverse: PUBRELs follow the PUBREC order.
    ids.reverse();
    let mut buf = bytes::BytesMut::new();
    for id in &ids {
        encode(&Packet::PubRec(ack(*id)), V4, &mut buf).unwrap();
    }
    s.send_raw(&buf).await;
    for id in &ids {
        assert_eq!(s.recv().await, Packet::PubRel(ack(*id)));
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_6_0_6_ordered_topic_delivery() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "ord/#", QoS::ExactlyOnce).await;
    let mut p = connect(&broker, "p").await;
    for (topic, qos) in [
        ("ord/0", QoS::AtMostOnce),
        ("ord/1", QoS::AtLeastOnce),
        ("ord/2", QoS::ExactlyOnce),
    ] {
        p.send_raw(&publishes(topic, qos, 200)).await;
        let (mut next, mut rels) = (1u16, 0);
        let want_rels = if qos == QoS::ExactlyOnce { 200 } else { 0 };
        while next <= 200 || rels < want_rels {
            match s.recv().await {
                Packet::Publish(got) => {
                    assert_eq!((&*got.topic, seq(&got)), (topic, next));
                    next += 1;
                    match qos {
                        QoS::AtMostOnce => {}
                        QoS::AtLeastOnce => puback(&mut s, got.packet_id).await,
                        QoS::ExactlyOnce => pubrec(&mut s, got.packet_id).await,
                    }
                }
                // PUBRELs interleave with the following PUBLISHes.
                Packet::PubRel(r) => {
                    pubcomp(&mut s, r.packet_id).await;
                    rels += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    broker.shutdown().await;
}

/// A PUBLISH whose payload is its place in the sequence sent.
fn numbered(topic: &str, qos: QoS, n: u16, retain: bool) -> Packet {
    Packet::Publish(Publish {
        qos,
        retain,
        topic: topic.into(),
        packet_id: if qos == QoS::AtMostOnce { 0 } else { n },
        payload: bytes::Bytes::copy_from_slice(&n.to_be_bytes()),
        ..Publish::default()
    })
}

#[tokio::test]
async fn mqtt_4_6_0_6_one_read_of_mixed_topics_and_kinds_arrives_in_the_order_sent() {
    // QoS 0 messages on one topic are routed together; a change of topic, a QoS 1 or retained
    // PUBLISH, or another packet must still see them delivered first.
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "mix/#", QoS::AtLeastOnce).await;
    let mut p = connect(&broker, "p").await;
    let plan: Vec<(&str, QoS, bool)> = std::iter::empty()
        .chain(std::iter::repeat_n(("mix/a", QoS::AtMostOnce, false), 150))
        .chain(std::iter::repeat_n(("mix/b", QoS::AtMostOnce, false), 3))
        .chain([("mix/a", QoS::AtMostOnce, false)])
        .chain([("mix/a", QoS::AtLeastOnce, false)])
        .chain(std::iter::repeat_n(("mix/a", QoS::AtMostOnce, false), 5))
        .chain([("mix/a", QoS::AtMostOnce, true)])
        .chain(std::iter::repeat_n(("mix/b", QoS::AtMostOnce, false), 4))
        .collect();
    let mut buf = bytes::BytesMut::new();
    for (n, (topic, qos, retain)) in plan.iter().enumerate() {
        encode(&numbered(topic, *qos, n as u16 + 1, *retain), V4, &mut buf).unwrap();
    }
    encode(&Packet::PingReq, V4, &mut buf).unwrap();
    p.send_raw(&buf).await;
    for (n, (topic, _, _)) in plan.iter().enumerate() {
        let got = s.expect_publish().await;
        assert_eq!((&*got.topic, seq(&got)), (*topic, n as u16 + 1));
        if got.qos == QoS::AtLeastOnce {
            puback(&mut s, got.packet_id).await;
        }
    }
    assert_eq!(p.recv().await, Packet::PubAck(ack(155)));
    assert_eq!(p.recv().await, Packet::PingResp);
    broker.shutdown().await;
}

#[tokio::test]
async fn publishes_read_before_a_malformed_packet_are_delivered() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "bad/after", QoS::AtMostOnce).await;
    let mut p = connect(&broker, "p").await;
    let mut buf = bytes::BytesMut::from(&publishes("bad/after", QoS::AtMostOnce, 10)[..]);
    // A PUBLISH with QoS 3 is malformed [MQTT-3.3.1-4].
    buf.extend_from_slice(&[0x36, 0x05, 0x00, 0x01, b't', 0x00, 0x01]);
    p.send_raw(&buf).await;
    for n in 1..=10 {
        assert_eq!(seq(&s.expect_publish().await), n);
    }
    assert!(matches!(p.recv_within(WAIT).await, Received::Closed));
    broker.shutdown().await;
}
