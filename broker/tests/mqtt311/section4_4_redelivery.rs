//! Section 4.4 message delivery retry: resending unacknowledged PUBLISH and PUBREL on reconnect.

use bytes::Bytes;
use ferrumq_broker::codec::*;
use ferrumq_broker::listeners::RunningBroker;

use crate::support::*;
use crate::util::*;

/// A persistent subscriber to `topic` at `qos`, then one message published to it.
async fn one_message_in_flight(
    broker: &RunningBroker,
    id: &str,
    topic: &str,
    qos: QoS,
) -> (RawClient, Publish) {
    let (mut s, _) = connect_ok(broker, persistent(id)).await;
    sub(&mut s, 1, topic, qos).await;
    let mut p = connect(broker, &format!("{id}-pub")).await;
    publish_acked(&mut p, topic, b"payload", qos, 1, false).await;
    let got = s.expect_publish().await;
    assert!(!got.dup);
    (s, got)
}

#[tokio::test]
async fn mqtt_4_4_0_1_redelivery_with_dup() {
    let broker = start().await;
    let (s, first) = one_message_in_flight(&broker, "redeliver", "rd/1", QoS::AtLeastOnce).await;
    drop(s); // no PUBACK
    let (mut s, present) = connect_ok(&broker, persistent("redeliver")).await;
    assert!(present);
    let again = s.expect_publish().await;
    assert!(again.dup);
    assert_eq!(
        (
            again.packet_id,
            &*again.topic,
            &again.payload[..],
            again.qos
        ),
        (first.packet_id, "rd/1", &b"payload"[..], QoS::AtLeastOnce)
    );
    puback(&mut s, again.packet_id).await;
    s.expect_nothing().await;
    // Acknowledged now: not sent a third time.
    drop(s);
    let (mut s, _) = connect_ok(&broker, persistent("redeliver")).await;
    s.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_4_0_1_qos2_publish_redelivered_until_pubrec() {
    let broker = start().await;
    let (s, first) = one_message_in_flight(&broker, "rd2", "rd/2", QoS::ExactlyOnce).await;
    drop(s);
    let (mut s, _) = connect_ok(&broker, persistent("rd2")).await;
    let again = s.expect_publish().await;
    assert!(again.dup);
    assert_eq!(
        (again.packet_id, again.qos),
        (first.packet_id, QoS::ExactlyOnce)
    );
    pubrec(&mut s, again.packet_id).await;
    assert_eq!(s.recv().await, Packet::PubRel(ack(again.packet_id)));
    pubcomp(&mut s, again.packet_id).await;
    s.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_4_0_1_pubrel_resent_on_reconnect() {
    let broker = start().await;
    let (mut s, first) = one_message_in_flight(&broker, "rel", "rd/rel", QoS::ExactlyOnce).await;
    pubrec(&mut s, first.packet_id).await;
    assert_eq!(s.recv().await, Packet::PubRel(ack(first.packet_id)));
    drop(s); // no PUBCOMP
    let (mut s, _) = connect_ok(&broker, persistent("rel")).await;
    // PUBREL again with the original id, and not the PUBLISH.
    assert_eq!(s.recv().await, Packet::PubRel(ack(first.packet_id)));
    pubcomp(&mut s, first.packet_id).await;
    s.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_4_0_1_inbound_qos2_state_survives_reconnect() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "rd/in", QoS::AtMostOnce).await;
    let (mut p, _) = connect_ok(&broker, persistent("inbound")).await;
    p.publish("rd/in", b"x", QoS::ExactlyOnce, 3, false).await;
    assert_eq!(p.recv().await, Packet::PubRec(ack(3)));
    s.expect_publish().await;
    drop(p); // the publisher never saw... it resends after reconnecting
    let (mut p, present) = connect_ok(&broker, persistent("inbound")).await;
    assert!(present);
    p.send(&Packet::Publish(Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        topic: "rd/in".into(),
        packet_id: 3,
        payload: Bytes::from_static(b"x"),
        ..Publish::default()
    }))
    .await;
    assert_eq!(p.recv().await, Packet::PubRec(ack(3)));
    pubrel(&mut p, 3).await;
    assert_eq!(p.recv().await, Packet::PubComp(ack(3)));
    s.expect_nothing().await; // not delivered twice
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_4_0_1_redelivery_after_takeover() {
    let broker = start().await;
    let (mut old, first) =
        one_message_in_flight(&broker, "take", "rd/take", QoS::AtLeastOnce).await;
    let (mut s, present) = connect_ok(&broker, persistent("take")).await;
    assert!(present);
    expect_bare_close(&mut old).await;
    let again = s.expect_publish().await;
    assert!(again.dup);
    assert_eq!(again.packet_id, first.packet_id);
    broker.shutdown().await;
}
