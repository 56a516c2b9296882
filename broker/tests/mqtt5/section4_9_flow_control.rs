//! Section 4.9 (flow control) with the Receive Maximum and Maximum Packet Size rules of
//! sections 3.1.2.11 and 3.3.4.

use super::common::*;

async fn limited_subscriber(broker: &RunningBroker, receive_maximum: u16, qos: QoS) -> RawClient {
    let (mut sub, _) = client_with(broker, "sub", |c| {
        c.properties.receive_maximum = Some(receive_maximum)
    })
    .await;
    sub.subscribe(1, "t", qos).await;
    sub
}

#[tokio::test]
async fn mqtt_3_3_4_9_server_never_exceeds_client_receive_maximum() {
    let broker = start().await;
    let mut sub = limited_subscriber(&broker, 2, QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    for i in 0..5u16 {
        pub1(&mut p, "t", b"m", i + 1).await;
    }
    let a = sub.expect_publish().await;
    let b = sub.expect_publish().await;
    sub.expect_nothing().await; // quota exhausted [MQTT-4.9.0-2]
    sub.send(&puback(a.packet_id)).await;
    let c = sub.expect_publish().await;
    sub.expect_nothing().await;
    for id in [b.packet_id, c.packet_id] {
        sub.send(&puback(id)).await;
    }
    let d = sub.expect_publish().await;
    let e = sub.expect_publish().await;
    sub.expect_nothing().await;
    for id in [d.packet_id, e.packet_id] {
        sub.send(&puback(id)).await;
    }
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_4_9_qos2_slot_held_until_pubcomp_and_freed_by_error_pubrec() {
    let broker = start().await;
    let mut sub = limited_subscriber(&broker, 1, QoS::ExactlyOnce).await;
    let mut p = client(&broker, "p").await;
    for i in 0..3u16 {
        pub2(&mut p, "t", b"m", i + 1).await;
    }
    let a = sub.expect_publish().await;
    sub.send(&pubrec(a.packet_id)).await;
    assert_eq!(sub.recv().await, pubrel(a.packet_id));
    sub.expect_nothing().await; // PUBREC alone does not free the slot
    sub.send(&pubcomp(a.packet_id)).await;
    let b = sub.expect_publish().await;
    // A PUBREC with an error code frees it at once.
    sub.send(&Packet::PubRec(ack_with(
        b.packet_id,
        ReasonCode::UnspecifiedError,
    )))
    .await;
    let c = sub.expect_publish().await;
    assert_eq!(&c.payload[..], b"m");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_9_0_3_other_packets_flow_when_quota_is_zero() {
    let broker = start().await;
    let mut sub = limited_subscriber(&broker, 1, QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    pub1(&mut p, "t", b"1", 1).await;
    pub1(&mut p, "t", b"2", 2).await;
    let first = sub.expect_publish().await;
    // Quota is zero: control packets still get answers [MQTT-3.3.4-10].
    sync(&mut sub).await;
    assert_eq!(
        sub.subscribe(2, "other", QoS::AtMostOnce)
            .await
            .reason_codes,
        [ReasonCode::Success]
    );
    assert_eq!(
        unsubscribe(&mut sub, 3, &["other"]).await.reason_codes,
        [ReasonCode::Success]
    );
    sub.send(&puback(first.packet_id)).await;
    assert_eq!(&sub.expect_publish().await.payload[..], b"2");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_4_8_client_exceeding_receive_maximum_gets_0x93() {
    let broker = start_with(config(|c| c.settings.limits.receive_maximum = 2)).await;
    let (mut p, ack) = client_with(&broker, "p", |_| {}).await;
    assert_eq!(ack.properties.receive_maximum, Some(2));
    async fn publish2(p: &mut RawClient, id: u16) {
        p.send(&Packet::Publish(publish("t", b"m", QoS::ExactlyOnce, id)))
            .await;
        match p.recv().await {
            Packet::PubRec(r) => assert!(r.packet_id == id && !r.reason_code.is_error()),
            other => panic!("expected PUBREC {id}, got {other:?}"),
        }
    }
    publish2(&mut p, 1).await;
    publish2(&mut p, 2).await;
    // Completing one exchange frees its slot.
    p.send(&pubrel(1)).await;
    assert_eq!(p.recv().await, pubcomp(1));
    publish2(&mut p, 3).await;
    // A third unacknowledged QoS 2 message is one too many.
    p.send(&Packet::Publish(publish("t", b"m", QoS::ExactlyOnce, 4)))
        .await;
    p.expect_disconnect(Some(ReasonCode::ReceiveMaximumExceeded))
        .await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_24_oversized_packet_from_client_gets_0x95() {
    let broker = start_with(config(|c| c.settings.limits.max_packet_size = 256)).await;
    let (mut p, ack) = client_with(&broker, "p", |_| {}).await;
    assert_eq!(ack.properties.maximum_packet_size, Some(256));
    pub0(&mut p, "t", &[b'x'; 200]).await;
    sync(&mut p).await;
    pub0(&mut p, "t", &[b'x'; 300]).await;
    p.expect_disconnect(Some(ReasonCode::PacketTooLarge)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_24_server_drops_publish_larger_than_client_maximum() {
    let broker = start().await;
    let (mut sub, _) = client_with(&broker, "sub", |c| {
        c.properties.maximum_packet_size = Some(100)
    })
    .await;
    sub.subscribe(1, "t", QoS::AtMostOnce).await;
    let mut p = client(&broker, "p").await;
    pub0(&mut p, "t", &[b'x'; 200]).await;
    pub0(&mut p, "t", b"fits").await;
    let got = sub.expect_publish().await;
    assert_eq!(&got.payload[..], b"fits", "the large one was discarded");
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_25_dropped_qos1_publish_counts_as_sent() {
    let broker = start().await;
    let (mut sub, _) = client_with(&broker, "sub", |c| {
        c.properties.maximum_packet_size = Some(100);
        c.properties.receive_maximum = Some(1);
        c.properties.session_expiry_interval = Some(60);
    })
    .await;
    sub.subscribe(1, "t", QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    pub1(&mut p, "t", &[b'x'; 200], 1).await;
    pub1(&mut p, "t", b"fits", 2).await;
    // The dropped message holds no quota...
    let got = sub.expect_publish().await;
    assert_eq!(&got.payload[..], b"fits");
    sub.send(&puback(got.packet_id)).await;
    sync(&mut sub).await;
    sub.disconnect().await;
    // ...and is not re-sent on resume.
    let (mut sub, _) = client_with(&broker, "sub", |c| {
        c.clean_start = false;
        c.properties.session_expiry_interval = Some(60);
    })
    .await;
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_4_9_resent_messages_respect_the_new_connections_receive_maximum() {
    let broker = start().await;
    let (mut sub, _) = client_with(&broker, "sub", |c| {
        c.properties.session_expiry_interval = Some(60);
        c.properties.receive_maximum = Some(3);
    })
    .await;
    sub.subscribe(1, "t", QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    for (i, payload) in [b"1", b"2", b"3", b"4"].into_iter().enumerate() {
        pub1(&mut p, "t", payload, i as u16 + 1).await;
    }
    let first: Vec<Publish> = vec![
        sub.expect_publish().await,
        sub.expect_publish().await,
        sub.expect_publish().await,
    ];
    sub.expect_nothing().await;
    drop_connection(sub);
    // Three unacknowledged, but the new connection allows only one at a time.
    let (mut sub, _) = client_with(&broker, "sub", |c| {
        c.clean_start = false;
        c.properties.session_expiry_interval = Some(60);
        c.properties.receive_maximum = Some(1);
    })
    .await;
    for original in &first {
        let again = sub.expect_publish().await;
        assert_eq!((again.packet_id, again.dup), (original.packet_id, true));
        sub.expect_nothing().await;
        sub.send(&puback(again.packet_id)).await;
    }
    let last = sub.expect_publish().await;
    assert_eq!((&last.payload[..], last.dup), (&b"4"[..], false));
    broker.shutdown().await;
}
