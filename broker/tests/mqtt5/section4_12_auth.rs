//! Section 4.12: enhanced authentication (the broker supports no method).

use super::common::*;

#[tokio::test]
async fn mqtt_4_12_0_1_unsupported_authentication_method_gets_0x8c_and_close() {
    let broker = start().await;
    let (mut c, ack) = try_connect(
        &broker,
        connect_v5("c", |c| {
            c.properties.authentication_method = Some("SCRAM-SHA-256".into());
            c.properties.authentication_data = Some(Bytes::from_static(b"client-first"));
        }),
    )
    .await;
    assert!(
        matches!(
            ack.reason_code,
            ReasonCode::BadAuthenticationMethod | ReasonCode::NotAuthorized
        ),
        "{:?}",
        ack.reason_code
    );
    expect_closed(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_12_0_5_auth_without_method_in_connect_is_protocol_error() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    c.send(&Packet::Auth(Auth {
        reason_code: ReasonCode::ReAuthenticate,
        ..Default::default()
    }))
    .await;
    c.expect_disconnect(Some(ReasonCode::ProtocolError)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_12_0_6_no_auth_packet_or_method_without_client_method() {
    let broker = start().await;
    let (mut c, ack) = client_with(&broker, "c", |_| {}).await;
    assert_eq!(ack.properties.authentication_method, None);
    assert_eq!(ack.properties.authentication_data, None);
    c.expect_nothing().await;
    broker.shutdown().await;
}
