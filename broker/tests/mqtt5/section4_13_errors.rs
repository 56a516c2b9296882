//! Section 4.13: handling errors, and the Request Problem Information rules of 3.1.2.11.7.

use super::common::*;

#[tokio::test]
async fn mqtt_4_13_1_1_malformed_packet_disconnects_with_0x81() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    c.send_raw(&[0xC1, 0]).await; // PINGREQ with a reserved flag set
    c.expect_disconnect(Some(ReasonCode::MalformedPacket)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_13_1_1_invalid_utf8_is_malformed() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    // PUBLISH QoS 0, topic bytes 0xC3 0x28 (invalid UTF-8), no properties.
    c.send_raw(&[0x30, 5, 0, 2, 0xC3, 0x28, 0]).await;
    c.expect_disconnect(Some(ReasonCode::MalformedPacket)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_13_1_1_server_packet_from_client_is_protocol_error() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    c.send(&Packet::SubAck(SubAck {
        packet_id: 1,
        properties: AckProperties::default(),
        reason_codes: vec![ReasonCode::Success],
    }))
    .await;
    let d = expect_disconnect_packet(&mut c).await;
    assert!(
        matches!(
            d.reason_code,
            ReasonCode::ProtocolError | ReasonCode::MalformedPacket
        ),
        "{:?}",
        d.reason_code
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_13_1_1_property_not_allowed_in_packet_is_malformed() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    // PUBLISH QoS 0 "t" with a Session Expiry Interval property (CONNECT/CONNACK/DISCONNECT only).
    c.send_raw(&[0x30, 9, 0, 1, b't', 5, 0x11, 0, 0, 0, 1])
        .await;
    let d = expect_disconnect_packet(&mut c).await;
    assert!(
        matches!(
            d.reason_code,
            ReasonCode::ProtocolError | ReasonCode::MalformedPacket
        ),
        "{:?}",
        d.reason_code
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_29_no_reason_string_on_acks_when_problem_information_is_0() {
    let broker = start().await;
    let (mut c, _) = client_with(&broker, "c", |c| {
        c.properties.request_problem_information = Some(false)
    })
    .await;
    // Refused publishes get error acknowledgements, without Reason String or User Properties.
    c.send(&Packet::Publish(publish("$x", b"m", QoS::AtLeastOnce, 1)))
        .await;
    match c.recv().await {
        Packet::PubAck(a) => {
            assert!(a.reason_code.is_error());
            assert_eq!(a.properties, AckProperties::default());
        }
        other => panic!("expected PUBACK, got {other:?}"),
    }
    c.send(&Packet::Publish(publish("$x", b"m", QoS::ExactlyOnce, 2)))
        .await;
    match c.recv().await {
        Packet::PubRec(a) => assert_eq!(a.properties, AckProperties::default()),
        other => panic!("expected PUBREC, got {other:?}"),
    }
    c.send(&pubrel(99)).await;
    match c.recv().await {
        Packet::PubComp(a) => assert_eq!(a.properties, AckProperties::default()),
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
    let ack = unsubscribe(&mut c, 3, &["nothing"]).await;
    assert_eq!(ack.properties, AckProperties::default());
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_29_reason_string_on_disconnect_when_problem_information_requested() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    c.send(&Packet::Connect(Box::new(connect_v5("c", |_| {}))))
        .await;
    let d = expect_disconnect_packet(&mut c).await;
    assert_eq!(d.reason_code, ReasonCode::ProtocolError);
    assert!(
        d.properties.reason_string.is_some(),
        "diagnostics are allowed by default"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_13_2_1_error_reason_codes_are_followed_by_close() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    c.send(&Packet::Publish(publish("t", b"", QoS::AtMostOnce, 0)))
        .await;
    c.send_raw(&[0xF0, 0]).await; // AUTH with no authentication in progress
    let d = expect_disconnect_packet(&mut c).await;
    assert!(d.reason_code.is_error());
    broker.shutdown().await;
}
