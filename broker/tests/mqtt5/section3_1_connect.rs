//! Section 3.1: CONNECT. Protocol level, Clean Start, Keep Alive, Client Identifier, takeover.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::common::*;

/// Reads raw bytes until the broker closes the connection (bounded by `WAIT`).
async fn read_to_close(c: &mut RawClient) -> Vec<u8> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(WAIT, c.stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "connection still open");
    out
}

#[tokio::test]
async fn mqtt_3_1_0_2_second_connect_is_protocol_error() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    c.send(&Packet::Connect(Box::new(connect_v5("c", |_| {}))))
        .await;
    c.expect_disconnect(Some(ReasonCode::ProtocolError)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_2_unsupported_protocol_level_refused_and_closed() {
    let broker = start().await;
    let mut c = RawClient::open(&broker, V5).await;
    // "MQTT" with protocol level 6.
    c.send_raw(&[
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 6, 0x02, 0, 60, 0, 1, b'a',
    ])
    .await;
    let bytes = read_to_close(&mut c).await;
    if !bytes.is_empty() {
        // Optional CONNACK: 0x84 in the 5.0 form or 0x01 in the 3.1.1 form the client reads.
        assert_eq!(bytes[0], 0x20, "only a CONNACK may precede the close");
        assert!(matches!(bytes[3], 0x84 | 0x01), "{bytes:?}");
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_3_reserved_connect_flag_is_malformed() {
    let broker = start().await;
    let mut c = RawClient::open(&broker, V5).await;
    // 5.0 CONNECT, flags 0x03 (Clean Start and the reserved bit), no properties, id "a".
    c.send_raw(&[
        0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x03, 0, 60, 0, 0, 1, b'a',
    ])
    .await;
    let bytes = read_to_close(&mut c).await;
    if !bytes.is_empty() {
        assert_eq!(&bytes[..4], &[0x20, 3, 0, 0x81], "CONNACK 0x81 at most");
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_4_clean_start_discards_session() {
    let broker = start().await;
    let (mut c, _) = session_client(&broker, "c", true, 60).await;
    c.subscribe(1, "t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    let mut p = client(&broker, "p").await;
    pub1(&mut p, "t", b"queued", 1).await;

    let (mut c, present) = session_client(&broker, "c", true, 60).await;
    assert!(
        !present,
        "Clean Start gives Session Present 0 [MQTT-3.2.2-2]"
    );
    c.expect_nothing().await; // the queued message went with the old session
    pub1(&mut p, "t", b"after", 2).await;
    c.expect_nothing().await; // and so did the subscription
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_5_clean_start_0_resumes_existing_session() {
    let broker = start().await;
    let (mut c, present) = session_client(&broker, "c", false, 60).await;
    assert!(!present);
    c.subscribe(1, "t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    let (mut c, present) = session_client(&broker, "c", false, 60).await;
    assert!(present);
    let mut p = client(&broker, "p").await;
    pub1(&mut p, "t", b"m", 1).await;
    assert_eq!(&c.expect_publish().await.payload[..], b"m");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_6_clean_start_0_without_session_creates_one() {
    let broker = start().await;
    let (_c, present) = session_client(&broker, "fresh", false, 60).await;
    assert!(!present, "no session existed");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_22_keep_alive_enforced_at_one_and_a_half_times() {
    let broker = start().await;
    let started = Instant::now();
    let (mut c, _) = client_with(&broker, "c", |c| c.keep_alive = 1).await;
    c.expect_disconnect(Some(ReasonCode::KeepAliveTimeout))
        .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1400) && elapsed < Duration::from_millis(2500),
        "closed after {elapsed:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_22_packets_within_keep_alive_keep_connection_open() {
    let broker = start().await;
    let (mut c, _) = client_with(&broker, "c", |c| c.keep_alive = 1).await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sync(&mut c).await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_21_server_keep_alive_replaces_client_value() {
    let broker = start_with(config(|c| {
        c.settings.session.server_keep_alive_secs = Some(1)
    }))
    .await;
    let started = Instant::now();
    let (mut c, ack) = client_with(&broker, "c", |c| c.keep_alive = 60).await;
    assert_eq!(ack.properties.server_keep_alive, Some(1));
    c.expect_disconnect(Some(ReasonCode::KeepAliveTimeout))
        .await;
    assert!(started.elapsed() < Duration::from_millis(2500));
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_3_6_empty_client_id_gets_unique_assigned_identifier() {
    let broker = start().await;
    let (_a, ack_a) = client_with(&broker, "", |_| {}).await;
    let (_b, ack_b) = client_with(&broker, "", |_| {}).await;
    let a = ack_a
        .properties
        .assigned_client_identifier
        .expect("Assigned Client Identifier [MQTT-3.2.2-16]");
    let b = ack_b
        .properties
        .assigned_client_identifier
        .expect("Assigned Client Identifier");
    assert!(!a.is_empty());
    assert_ne!(a, b, "identifiers are unique [MQTT-3.1.3-6]");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_3_7_assigned_identifier_names_the_session() {
    let broker = start().await;
    let (mut a, ack) = client_with(&broker, "", |c| {
        c.properties.session_expiry_interval = Some(60);
    })
    .await;
    let id = ack.properties.assigned_client_identifier.unwrap();
    a.subscribe(1, "t", QoS::AtLeastOnce).await;
    a.disconnect().await;
    // The session is kept under the assigned identifier.
    let (_a, present) = session_client(&broker, &id, false, 60).await;
    assert!(present);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_3_8_rejected_client_id_gets_0x85_and_close() {
    let broker = start_with(config(|c| {
        c.settings.session.allow_empty_client_id = false;
    }))
    .await;
    let long = "x".repeat(200);
    let (mut c, ack) = try_connect(&broker, connect_v5(&long, |_| {})).await;
    assert_eq!(ack.reason_code, ReasonCode::ClientIdentifierNotValid);
    assert!(!ack.session_present, "[MQTT-3.2.2-6]");
    expect_closed(&mut c).await;
    let (mut c, ack) = try_connect(&broker, connect_v5("", |_| {})).await;
    assert_eq!(ack.reason_code, ReasonCode::ClientIdentifierNotValid);
    expect_closed(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_4_3_takeover_disconnects_old_with_0x8e() {
    let broker = start().await;
    let (mut old, _) = session_client(&broker, "c", false, 60).await;
    old.subscribe(1, "t", QoS::AtLeastOnce).await;
    let (mut new, present) = session_client(&broker, "c", false, 60).await;
    assert!(present, "the session moves to the new connection");
    old.expect_disconnect(Some(ReasonCode::SessionTakenOver))
        .await;
    let mut p = client(&broker, "p").await;
    pub1(&mut p, "t", b"m", 1).await;
    assert_eq!(&new.expect_publish().await.payload[..], b"m");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_4_3_takeover_with_clean_start_also_disconnects_old() {
    let broker = start().await;
    let mut old = client(&broker, "c").await;
    let _new = client(&broker, "c").await;
    old.expect_disconnect(Some(ReasonCode::SessionTakenOver))
        .await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_4_6_refused_connect_data_after_it_is_not_processed() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "t", QoS::AtMostOnce).await;
    // A CONNECT the broker refuses (unknown authentication method) with a PUBLISH behind it in
    // the same write.
    let mut bytes = bytes::BytesMut::new();
    let connect = connect_v5("c", |c| {
        c.properties.authentication_method = Some("SCRAM-SHA-1".into())
    });
    encode(&Packet::Connect(Box::new(connect)), V5, &mut bytes).unwrap();
    encode(
        &Packet::Publish(publish("t", b"sneaky", QoS::AtMostOnce, 0)),
        V5,
        &mut bytes,
    )
    .unwrap();
    let mut c = RawClient::open(&broker, V5).await;
    c.send_raw(&bytes).await;
    let ack = c.expect_connack().await;
    assert_eq!(ack.reason_code, ReasonCode::BadAuthenticationMethod);
    expect_closed(&mut c).await;
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_4_4_connection_limit_refusal_is_connack_error_then_close() {
    let broker = start_with(config(|c| c.settings.limits.max_connections = 1)).await;
    let _first = client(&broker, "a").await;
    let (mut c, ack) = try_connect(&broker, connect_v5("b", |_| {})).await;
    assert!(ack.reason_code.is_error(), "{:?}", ack.reason_code);
    assert!(!ack.session_present);
    expect_closed(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_11_receive_maximum_0_is_protocol_error() {
    let broker = start().await;
    let mut c = RawClient::open(&broker, V5).await;
    let connect = connect_v5("c", |c| c.properties.receive_maximum = Some(0));
    c.send(&Packet::Connect(Box::new(connect))).await;
    // A CONNACK 0x82 may precede the close.
    match c.recv_within(WAIT).await {
        Received::Packet(Packet::ConnAck(ack)) => {
            assert_eq!(ack.reason_code, ReasonCode::ProtocolError);
            expect_closed(&mut c).await;
        }
        Received::Closed => {}
        other => panic!("expected CONNACK 0x82 or a close, got {other:?}"),
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_11_maximum_packet_size_0_is_protocol_error() {
    let broker = start().await;
    let mut c = RawClient::open(&broker, V5).await;
    let connect = connect_v5("c", |c| c.properties.maximum_packet_size = Some(0));
    c.send(&Packet::Connect(Box::new(connect))).await;
    // A CONNACK 0x82 may precede the close.
    match c.recv_within(WAIT).await {
        Received::Packet(Packet::ConnAck(ack)) => {
            assert_eq!(ack.reason_code, ReasonCode::ProtocolError);
            expect_closed(&mut c).await;
        }
        Received::Closed => {}
        other => panic!("expected CONNACK 0x82 or a close, got {other:?}"),
    }
    broker.shutdown().await;
}
