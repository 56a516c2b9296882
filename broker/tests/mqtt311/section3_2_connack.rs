//! Section 3.2 CONNACK: first packet from the server, Session Present, refusals.

use ferrumq_broker::codec::*;

use crate::support::*;
use crate::util::*;

#[tokio::test]
async fn mqtt_3_2_0_1_first_packet_from_server_is_connack() {
    let broker = start().await;
    // A session with messages waiting and a retained message: still CONNACK first.
    let (mut c, _) = connect_ok(&broker, persistent("first")).await;
    sub(&mut c, 1, "first/t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    let mut p = connect(&broker, "first-pub").await;
    for id in 1..=5 {
        publish_acked(&mut p, "first/t", b"queued", QoS::AtLeastOnce, id, true).await;
    }
    let mut c = RawClient::open(&broker, V4).await;
    c.send(&Packet::Connect(Box::new(persistent("first"))))
        .await;
    let ack = c.expect_connack().await;
    assert!(ack.session_present);
    for _ in 0..5 {
        receive_acked(&mut c).await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_2_2_1_clean_session_gives_session_present_0() {
    let broker = start().await;
    let (c, _) = connect_ok(&broker, persistent("sp-clean")).await;
    c.disconnect().await;
    let (_c, present) = connect_ok(&broker, connect_packet(V4, "sp-clean")).await;
    assert!(!present);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_2_2_2_session_present() {
    let broker = start().await;
    let (c, _) = connect_ok(&broker, persistent("sp")).await;
    c.disconnect().await;
    let (_c, present) = connect_ok(&broker, persistent("sp")).await;
    assert!(present);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_2_2_3_no_stored_session_gives_session_present_0() {
    let broker = start().await;
    let (_c, present) = connect_ok(&broker, persistent("sp-new")).await;
    assert!(!present);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_2_2_4_refusal_has_session_present_0() {
    let mut config = test_config();
    config.settings.limits.max_connections = 1;
    let broker = start_with(config).await;
    let (c, _) = connect_ok(&broker, persistent("sp-refused")).await;
    c.disconnect().await;
    eventually("the first connection to be gone", || {
        broker
            .broker
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
    })
    .await;
    let _holder = connect(&broker, "holder").await;
    let (mut c, ack) = RawClient::connect_with(&broker, persistent("sp-refused")).await;
    assert_eq!(ack.reason_code.to_v4_connack(), 3, "server unavailable");
    assert!(
        !ack.session_present,
        "a stored session exists, but the CONNECT was refused"
    );
    expect_bare_close(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_2_2_5_refusal_closes_the_connection() {
    let broker = start().await;
    let (mut c, ack) = RawClient::connect_with(&broker, persistent("")).await;
    assert_ne!(ack.reason_code, ReasonCode::Success);
    // Anything sent after the refusal is ignored and the connection is closed.
    c.send(&Packet::PingReq).await;
    expect_bare_close(&mut c).await;
    broker.shutdown().await;
}
