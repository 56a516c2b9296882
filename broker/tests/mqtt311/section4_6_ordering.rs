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
