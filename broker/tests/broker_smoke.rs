//! The broker's basic promise: a subscriber receives what a publisher sends, in both versions.
mod support;

use ferrumq_broker::codec::*;
use support::*;

#[tokio::test]
async fn publish_reaches_subscriber_at_each_qos_across_versions() {
    let broker = start().await;
    let mut sub = RawClient::connect(&broker, ProtocolVersion::V5, "sub").await;
    let ack = sub.subscribe(1, "a/+", QoS::ExactlyOnce).await;
    assert_eq!(ack.reason_codes, vec![ReasonCode::GrantedQos2]);
    let mut publ = RawClient::connect(&broker, ProtocolVersion::V3_1_1, "pub").await;

    publ.publish("a/0", b"zero", QoS::AtMostOnce, 0, false)
        .await;
    let got = sub.expect_publish().await;
    assert_eq!(
        (&*got.topic, &got.payload[..], got.qos),
        ("a/0", &b"zero"[..], QoS::AtMostOnce)
    );

    publ.publish("a/1", b"one", QoS::AtLeastOnce, 7, false)
        .await;
    assert_eq!(
        publ.recv().await,
        Packet::PubAck(PubResponse {
            packet_id: 7,
            ..Default::default()
        })
    );
    let got = sub.expect_publish().await;
    assert_eq!(got.qos, QoS::AtLeastOnce);
    sub.send(&Packet::PubAck(PubResponse {
        packet_id: got.packet_id,
        ..Default::default()
    }))
    .await;

    publ.publish("a/2", b"two", QoS::ExactlyOnce, 8, false)
        .await;
    assert_eq!(
        publ.recv().await,
        Packet::PubRec(PubResponse {
            packet_id: 8,
            ..Default::default()
        })
    );
    publ.send(&Packet::PubRel(PubResponse {
        packet_id: 8,
        ..Default::default()
    }))
    .await;
    assert_eq!(
        publ.recv().await,
        Packet::PubComp(PubResponse {
            packet_id: 8,
            ..Default::default()
        })
    );
    let got = sub.expect_publish().await;
    assert_eq!((got.qos, &got.payload[..]), (QoS::ExactlyOnce, &b"two"[..]));
    sub.send(&Packet::PubRec(PubResponse {
        packet_id: got.packet_id,
        ..Default::default()
    }))
    .await;
    assert_eq!(
        sub.recv().await,
        Packet::PubRel(PubResponse {
            packet_id: got.packet_id,
            ..Default::default()
        })
    );
    sub.send(&Packet::PubComp(PubResponse {
        packet_id: got.packet_id,
        ..Default::default()
    }))
    .await;
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn shutdown_tells_v5_clients_server_shutting_down() {
    let broker = start().await;
    let mut client = RawClient::connect(&broker, ProtocolVersion::V5, "c").await;
    let mut old = RawClient::connect(&broker, ProtocolVersion::V3_1_1, "d").await;
    broker.shutdown().await;
    client
        .expect_disconnect(Some(ReasonCode::ServerShuttingDown))
        .await;
    old.expect_disconnect(None).await;
}

/// The authentication hook decides who connects: an embedder's authenticator refuses a user.
#[tokio::test]
async fn authenticator_hook_refuses_with_its_reason_code() {
    use ferrumq_broker::auth::{Authenticator, Decision};
    struct DenyMallory;
    impl Authenticator for DenyMallory {
        fn supports_method(&self, _: &str) -> bool {
            false
        }
        fn authenticate(&self, connect: &Connect) -> Decision {
            match connect.username.as_deref() {
                Some("mallory") => Decision::Deny(ReasonCode::BadUserNameOrPassword),
                _ => Decision::Allow,
            }
        }
    }
    let broker =
        ferrumq_broker::listeners::start_with_authenticator(test_config(), Box::new(DenyMallory))
            .await
            .expect("broker starts");
    let mut refused = connect_packet(ProtocolVersion::V5, "m");
    refused.username = Some("mallory".into());
    let (mut client, connack) = RawClient::connect_with(&broker, refused).await;
    assert_eq!(connack.reason_code, ReasonCode::BadUserNameOrPassword);
    assert_eq!(client.recv_within(WAIT).await, Received::Closed);
    let mut allowed = connect_packet(ProtocolVersion::V3_1_1, "a");
    allowed.username = Some("alice".into());
    let (_client, connack) = RawClient::connect_with(&broker, allowed).await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    broker.shutdown().await;
}
