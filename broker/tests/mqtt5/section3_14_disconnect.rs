//! Section 3.14: DISCONNECT, in both directions; section 3.12: PINGREQ.

use std::time::Duration;

use super::common::*;

fn disconnect_with_expiry(expiry: u32) -> Packet {
    Packet::Disconnect(Disconnect {
        reason_code: ReasonCode::Success,
        properties: DisconnectProperties {
            session_expiry_interval: Some(expiry),
            ..Default::default()
        },
    })
}

#[tokio::test]
async fn mqtt_3_14_2_2_disconnect_cannot_raise_session_expiry_from_zero() {
    let broker = start().await;
    let mut c = client(&broker, "c").await; // Session Expiry 0
    c.send(&disconnect_with_expiry(60)).await;
    c.expect_disconnect(Some(ReasonCode::ProtocolError)).await;
    // The session was not kept.
    let (_c, present) = session_client(&broker, "c", false, 60).await;
    assert!(!present);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_14_2_2_disconnect_session_expiry_0_ends_session() {
    let broker = start().await;
    let (mut c, _) = session_client(&broker, "c", false, 60).await;
    c.send(&disconnect_with_expiry(0)).await;
    expect_closed(&mut c).await;
    let (_c, present) = session_client(&broker, "c", false, 60).await;
    assert!(!present);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_14_2_2_disconnect_can_extend_session_expiry() {
    let broker = start().await;
    let (mut c, _) = session_client(&broker, "c", false, 1).await;
    c.send(&disconnect_with_expiry(60)).await;
    expect_closed(&mut c).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (_c, present) = session_client(&broker, "c", false, 60).await;
    assert!(present, "the DISCONNECT's 60 s replaced the CONNECT's 1 s");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_14_2_3_server_reason_string_respects_client_maximum_packet_size() {
    let broker = start().await;
    let (mut c, _) = client_with(&broker, "c", |c| {
        c.properties.maximum_packet_size = Some(16);
    })
    .await;
    c.send(&Packet::Connect(Box::new(connect_v5("c", |_| {}))))
        .await;
    let d = expect_disconnect_packet(&mut c).await;
    assert_eq!(d.reason_code, ReasonCode::ProtocolError);
    let size = encoded_len(&Packet::Disconnect(d), V5).unwrap();
    assert!(size <= 16, "DISCONNECT of {size} bytes exceeds 16");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_14_4_1_nothing_sent_after_server_disconnect() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    c.subscribe(1, "t", QoS::AtMostOnce).await;
    let mut p = client(&broker, "p").await;
    // The violation and a burst of deliveries race; the DISCONNECT must still be last.
    c.send(&Packet::PubRel(ack(1))).await; // fine: answered with PUBCOMP 0x92
    for _ in 0..20 {
        pub0(&mut p, "t", b"m").await;
    }
    c.send(&Packet::Connect(Box::new(connect_v5("c", |_| {}))))
        .await;
    let mut last = None;
    loop {
        match c.recv_within(WAIT).await {
            Received::Packet(packet) => last = Some(packet),
            Received::Closed => break,
            Received::Nothing => panic!("still open"),
        }
    }
    assert!(
        matches!(last, Some(Packet::Disconnect(ref d)) if d.reason_code == ReasonCode::ProtocolError),
        "{last:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_14_normal_disconnect_closes_connection() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    c.send(&Packet::Disconnect(Disconnect::default())).await;
    expect_closed(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_12_4_1_pingreq_answered_with_pingresp() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    for _ in 0..3 {
        sync(&mut c).await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_14_2_1_server_disconnect_on_shutdown_is_0x8b() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    let shutdown = tokio::spawn(broker.shutdown());
    c.expect_disconnect(Some(ReasonCode::ServerShuttingDown))
        .await;
    shutdown.await.unwrap();
}
