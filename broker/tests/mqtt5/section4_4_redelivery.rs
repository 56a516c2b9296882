//! Section 4.4: message delivery retry when a session resumes.

use super::common::*;

/// A persistent subscriber that received `n` QoS `qos` messages on "t" without acknowledging
/// them, and then lost its connection.
async fn unacked(broker: &RunningBroker, qos: QoS, n: u16) -> Vec<Publish> {
    let (mut sub, _) = session_client(broker, "sub", true, 60).await;
    sub.subscribe(1, "t", qos).await;
    let mut p = client(broker, "p").await;
    for i in 0..n {
        match qos {
            QoS::AtLeastOnce => {
                pub1(&mut p, "t", b"m", i + 1).await;
            }
            _ => {
                pub2(&mut p, "t", b"m", i + 1).await;
            }
        }
    }
    let mut got = Vec::new();
    for _ in 0..n {
        got.push(sub.expect_publish().await);
    }
    p.disconnect().await;
    drop_connection(sub);
    got
}

#[tokio::test]
async fn mqtt_4_4_0_1_unacked_qos1_resent_with_dup_and_same_id() {
    let broker = start().await;
    let first = unacked(&broker, QoS::AtLeastOnce, 1).await.remove(0);
    assert!(!first.dup);
    let (mut sub, present) = session_client(&broker, "sub", false, 60).await;
    assert!(present);
    let again = sub.expect_publish().await;
    assert!(again.dup, "DUP on re-delivery [MQTT-3.3.1-1]");
    assert_eq!(again.packet_id, first.packet_id);
    assert_eq!(again.payload, first.payload);
    sub.send(&puback(again.packet_id)).await;
    sub.expect_nothing().await;
    // Acknowledged now: not sent again on the next resume.
    sub.disconnect().await;
    let (mut sub, _) = session_client(&broker, "sub", false, 60).await;
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_4_0_1_unacked_qos2_publish_resent_with_dup() {
    let broker = start().await;
    let first = unacked(&broker, QoS::ExactlyOnce, 1).await.remove(0);
    let (mut sub, _) = session_client(&broker, "sub", false, 60).await;
    let again = sub.expect_publish().await;
    assert_eq!(
        (again.packet_id, again.dup, again.qos),
        (first.packet_id, true, QoS::ExactlyOnce)
    );
    sub.send(&pubrec(again.packet_id)).await;
    assert_eq!(sub.recv().await, pubrel(again.packet_id));
    sub.send(&pubcomp(again.packet_id)).await;
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_4_0_1_pubrel_resent_not_publish_after_pubrec() {
    let broker = start().await;
    let (mut sub, _) = session_client(&broker, "sub", true, 60).await;
    sub.subscribe(1, "t", QoS::ExactlyOnce).await;
    let mut p = client(&broker, "p").await;
    pub2(&mut p, "t", b"m", 1).await;
    let m = sub.expect_publish().await;
    sub.send(&pubrec(m.packet_id)).await;
    assert_eq!(sub.recv().await, pubrel(m.packet_id));
    drop_connection(sub);
    let (mut sub, present) = session_client(&broker, "sub", false, 60).await;
    assert!(present);
    // The PUBLISH is not sent again once PUBREL has been [MQTT-4.3.3-5].
    assert_eq!(sub.recv().await, pubrel(m.packet_id));
    sub.send(&pubcomp(m.packet_id)).await;
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_4_0_2_puback_with_error_is_not_retransmitted() {
    let broker = start().await;
    let (mut sub, _) = session_client(&broker, "sub", true, 60).await;
    sub.subscribe(1, "t", QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    pub1(&mut p, "t", b"m", 1).await;
    let m = sub.expect_publish().await;
    sub.send(&Packet::PubAck(ack_with(
        m.packet_id,
        ReasonCode::ImplementationSpecificError,
    )))
    .await;
    sync(&mut sub).await;
    drop_connection(sub);
    let (mut sub, present) = session_client(&broker, "sub", false, 60).await;
    assert!(present);
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_6_0_1_resent_in_original_order() {
    let broker = start().await;
    let first = unacked(&broker, QoS::AtLeastOnce, 4).await;
    let (mut sub, _) = session_client(&broker, "sub", false, 60).await;
    for original in &first {
        let again = sub.expect_publish().await;
        assert_eq!((again.packet_id, again.dup), (original.packet_id, true));
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_4_0_1_clean_start_discards_unacked_messages() {
    let broker = start().await;
    unacked(&broker, QoS::AtLeastOnce, 2).await;
    let (mut sub, present) = session_client(&broker, "sub", true, 60).await;
    assert!(!present);
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_4_0_1_unacked_then_queued_messages_follow_in_order() {
    let broker = start().await;
    let (mut sub, _) = client_with(&broker, "sub", |c| {
        c.properties.session_expiry_interval = Some(60);
        c.properties.receive_maximum = Some(2);
    })
    .await;
    sub.subscribe(1, "t", QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    for (i, payload) in [b"1", b"2", b"3", b"4"].into_iter().enumerate() {
        pub1(&mut p, "t", payload, i as u16 + 1).await;
    }
    // Two in flight, two queued behind the Receive Maximum.
    let a = sub.expect_publish().await;
    let b = sub.expect_publish().await;
    sub.expect_nothing().await;
    drop_connection(sub);
    let (mut sub, _) = session_client(&broker, "sub", false, 60).await;
    let mut got = Vec::new();
    for _ in 0..4 {
        let m = recv_acked(&mut sub).await;
        got.push((m.payload.clone(), m.dup));
    }
    assert_eq!(
        got,
        [
            (a.payload, true),
            (b.payload, true),
            (Bytes::from_static(b"3"), false),
            (Bytes::from_static(b"4"), false)
        ]
    );
    broker.shutdown().await;
}
