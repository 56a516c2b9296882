//! Section 4.3: QoS 0, 1 and 2 protocol flows, with the broker as receiver and as sender.

use std::collections::HashSet;

use super::common::*;

#[tokio::test]
async fn mqtt_4_3_2_5_qos1_same_packet_id_after_puback_is_a_new_message() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "t", QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    pub1(&mut p, "t", b"a", 5).await;
    let mut again = publish("t", b"b", QoS::AtLeastOnce, 5);
    again.dup = true;
    pub1_with(&mut p, again).await;
    assert_eq!(recv_payloads(&mut sub, 2).await, [&b"a"[..], &b"b"[..]]);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_3_3_9_qos2_duplicate_before_pubrel_not_delivered_twice() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "t", QoS::ExactlyOnce).await;
    let mut p = client(&broker, "p").await;
    p.send(&Packet::Publish(publish("t", b"once", QoS::ExactlyOnce, 9)))
        .await;
    assert_eq!(p.recv().await, pubrec(9));
    let mut dup = publish("t", b"once", QoS::ExactlyOnce, 9);
    dup.dup = true;
    p.send(&Packet::Publish(dup)).await;
    assert_eq!(p.recv().await, pubrec(9), "PUBREC again [MQTT-4.3.3-9]");
    p.send(&pubrel(9)).await;
    assert_eq!(p.recv().await, pubcomp(9), "[MQTT-4.3.3-11]");
    assert_eq!(&recv_acked(&mut sub).await.payload[..], b"once");
    sub.expect_nothing().await;
    // After PUBCOMP the identifier starts a new message [MQTT-4.3.3-12].
    assert!(!pub2(&mut p, "t", b"new", 9).await.is_error());
    assert_eq!(&recv_acked(&mut sub).await.payload[..], b"new");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_3_3_11_pubrel_for_unknown_id_gets_pubcomp_0x92() {
    let broker = start().await;
    let mut p = client(&broker, "p").await;
    p.send(&pubrel(77)).await;
    assert_eq!(
        p.recv().await,
        Packet::PubComp(ack_with(77, ReasonCode::PacketIdentifierNotFound))
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_3_3_8_after_error_pubrec_same_id_is_a_new_message() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "t", QoS::ExactlyOnce).await;
    let mut p = client(&broker, "p").await;
    // Clients may not publish to $-topics here: PUBREC with an error reason code.
    p.send(&Packet::Publish(publish("$t", b"x", QoS::ExactlyOnce, 3)))
        .await;
    match p.recv().await {
        Packet::PubRec(r) => {
            assert_eq!(r.packet_id, 3);
            assert!(r.reason_code.is_error());
        }
        other => panic!("expected PUBREC, got {other:?}"),
    }
    // No PUBREL is needed; the same identifier is a new message.
    assert!(!pub2(&mut p, "t", b"ok", 3).await.is_error());
    assert_eq!(&recv_acked(&mut sub).await.payload[..], b"ok");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_3_2_2_server_qos1_publish_has_id_and_dup_0_until_puback() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "t", QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    for i in 0..5 {
        pub1(&mut p, "t", b"m", 100 + i).await;
    }
    let mut ids = HashSet::new();
    for _ in 0..5 {
        let m = sub.expect_publish().await;
        assert_eq!(m.qos, QoS::AtLeastOnce);
        assert!(!m.dup);
        assert_ne!(m.packet_id, 0);
        ids.insert(m.packet_id);
    }
    assert_eq!(
        ids.len(),
        5,
        "unused identifiers for unacknowledged messages [MQTT-4.3.2-1]"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_3_3_2_server_qos2_flow_pubrec_then_pubrel_then_pubcomp() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "t", QoS::ExactlyOnce).await;
    let mut p = client(&broker, "p").await;
    pub2(&mut p, "t", b"m", 1).await;
    let m = sub.expect_publish().await;
    assert_eq!((m.qos, m.dup), (QoS::ExactlyOnce, false));
    assert_ne!(m.packet_id, 0);
    sub.send(&pubrec(m.packet_id)).await;
    assert_eq!(sub.recv().await, pubrel(m.packet_id), "[MQTT-4.3.3-4]");
    sub.send(&pubcomp(m.packet_id)).await;
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_3_3_4_pubrec_with_error_ends_the_exchange() {
    let broker = start().await;
    let (mut sub, _) = session_client(&broker, "sub", true, 60).await;
    sub.subscribe(1, "t", QoS::ExactlyOnce).await;
    let mut p = client(&broker, "p").await;
    pub2(&mut p, "t", b"m", 1).await;
    let m = sub.expect_publish().await;
    sub.send(&Packet::PubRec(ack_with(
        m.packet_id,
        ReasonCode::UnspecifiedError,
    )))
    .await;
    sub.expect_nothing().await; // no PUBREL
    sub.disconnect().await;
    let (mut sub, present) = session_client(&broker, "sub", false, 60).await;
    assert!(present);
    sub.expect_nothing().await; // not resent [MQTT-4.4.0-2]
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_3_1_qos0_delivered_at_most_once_without_ack() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "t", QoS::ExactlyOnce).await;
    let mut p = client(&broker, "p").await;
    pub0(&mut p, "t", b"m").await;
    let m = sub.expect_publish().await;
    assert_eq!((m.qos, m.packet_id, m.dup), (QoS::AtMostOnce, 0, false));
    sub.expect_nothing().await;
    broker.shutdown().await;
}
