//! Section 4.3 QoS flows (the server as sender and as receiver) and 4.5 message receipt.

use bytes::Bytes;
use ferrumq_broker::codec::*;

use crate::support::*;
use crate::util::*;

#[tokio::test]
async fn mqtt_4_3_1_1_qos0_sent_with_qos0_dup0() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "q0", QoS::AtMostOnce).await;
    let mut p = connect(&broker, "p").await;
    p.publish("q0", b"x", QoS::ExactlyOnce, 1, false).await;
    let got = s.expect_publish().await;
    assert_eq!(
        (got.qos, got.dup, got.packet_id),
        (QoS::AtMostOnce, false, 0)
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_3_2_1_qos1_sent_with_fresh_packet_ids_and_dup0() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "q1", QoS::AtLeastOnce).await;
    let mut p = connect(&broker, "p").await;
    for id in 1..=3 {
        publish_acked(&mut p, "q1", b"x", QoS::AtLeastOnce, id, false).await;
    }
    let mut ids = Vec::new();
    for _ in 0..3 {
        let got = s.expect_publish().await; // unacknowledged, so all three stay in flight
        assert_eq!((got.qos, got.dup), (QoS::AtLeastOnce, false));
        assert_ne!(got.packet_id, 0);
        ids.push(got.packet_id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "packet ids in flight are distinct");
    // Unacknowledged messages are not resent on the same connection (3.1.1).
    s.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_3_2_2_puback_then_same_packet_id_is_a_new_message() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "q1/new", QoS::AtLeastOnce).await;
    let mut p = connect(&broker, "p").await;
    publish_acked(&mut p, "q1/new", b"first", QoS::AtLeastOnce, 5, false).await;
    publish_acked(&mut p, "q1/new", b"second", QoS::AtLeastOnce, 5, false).await;
    assert_eq!(&receive_acked(&mut s).await.payload[..], b"first");
    assert_eq!(&receive_acked(&mut s).await.payload[..], b"second");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_3_3_1_qos2_sender_flow() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "q2", QoS::ExactlyOnce).await;
    let mut p = connect(&broker, "p").await;
    publish_acked(&mut p, "q2", b"x", QoS::ExactlyOnce, 1, false).await;
    let got = s.expect_publish().await;
    assert_eq!((got.qos, got.dup), (QoS::ExactlyOnce, false));
    assert_ne!(got.packet_id, 0);
    pubrec(&mut s, got.packet_id).await;
    assert_eq!(s.recv().await, Packet::PubRel(ack(got.packet_id)));
    // Once PUBREL is sent the PUBLISH is never resent; PUBCOMP ends the exchange.
    s.expect_nothing().await;
    pubcomp(&mut s, got.packet_id).await;
    s.expect_nothing().await;
    expect_alive(&mut s).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_3_3_2_qos2_exactly_once() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "eo", QoS::ExactlyOnce).await;
    let mut p = connect(&broker, "p").await;
    p.publish("eo", b"x", QoS::ExactlyOnce, 9, false).await;
    assert_eq!(p.recv().await, Packet::PubRec(ack(9)));
    // The same packet id again (a resend, DUP set) before PUBREL: PUBREC again, no new message.
    for _ in 0..2 {
        p.send(&Packet::Publish(Publish {
            dup: true,
            qos: QoS::ExactlyOnce,
            topic: "eo".into(),
            packet_id: 9,
            payload: Bytes::from_static(b"x"),
            ..Publish::default()
        }))
        .await;
        assert_eq!(p.recv().await, Packet::PubRec(ack(9)));
    }
    pubrel(&mut p, 9).await;
    assert_eq!(p.recv().await, Packet::PubComp(ack(9)));
    receive_acked(&mut s).await;
    s.expect_nothing().await;
    // After PUBCOMP the id is free: a PUBLISH with it is a new message.
    publish_acked(&mut p, "eo", b"y", QoS::ExactlyOnce, 9, false).await;
    assert_eq!(&receive_acked(&mut s).await.payload[..], b"y");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_3_3_2_pubrel_is_answered_with_pubcomp() {
    let broker = start().await;
    let mut p = connect(&broker, "p").await;
    // A PUBREL for an id the server already completed (a resent PUBREL) still gets PUBCOMP.
    publish_acked(&mut p, "rel", b"x", QoS::ExactlyOnce, 4, false).await;
    pubrel(&mut p, 4).await;
    assert_eq!(p.recv().await, Packet::PubComp(ack(4)));
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_5_0_1_message_added_to_every_matching_session() {
    let broker = start().await;
    let mut online = connect(&broker, "online").await;
    sub(&mut online, 1, "fan/#", QoS::AtLeastOnce).await;
    let (mut offline, _) = connect_ok(&broker, persistent("offline")).await;
    sub(&mut offline, 1, "fan/+", QoS::AtLeastOnce).await;
    offline.disconnect().await;
    let mut p = connect(&broker, "p").await;
    publish_acked(&mut p, "fan/x", b"all", QoS::AtLeastOnce, 1, false).await;
    assert_eq!(&receive_acked(&mut online).await.payload[..], b"all");
    let (mut offline, _) = connect_ok(&broker, persistent("offline")).await;
    assert_eq!(&receive_acked(&mut offline).await.payload[..], b"all");
    broker.shutdown().await;
}
