//! `settings.auth.aclFile`: Mosquitto's ACL file decides what each client may publish,
//! subscribe to and receive (rules and their meaning: `broker/src/auth/acl_file.rs`).

mod support;

use bytes::Bytes;
use ferrumq_broker::codec::*;
use ferrumq_broker::config::BrokerConfig;
use ferrumq_broker::listeners::{self, RunningBroker};
use support::*;

const ACL: &str = "\
topic read public/#
user alice
topic readwrite sensors/alice/#
topic read sensors/#
topic deny sensors/secret/#
user bob
topic write sensors/#
pattern readwrite clients/%c/#
";

/// A broker with users alice and bob, the rules above, and anonymous clients allowed.
async fn broker(acl: &str) -> (RunningBroker, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("passwords"),
        format!("alice:{PASSWORD_HASH}\nbob:{PASSWORD_HASH}\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("acl"), acl).unwrap();
    (start_with(config(&dir)).await, dir)
}

fn config(dir: &tempfile::TempDir) -> BrokerConfig {
    let mut config = test_config();
    config.settings.auth.password_file = Some(dir.path().join("passwords"));
    config.settings.auth.acl_file = Some(dir.path().join("acl"));
    config.settings.auth.allow_anonymous = Some(true);
    config
}

fn as_user(version: ProtocolVersion, client_id: &str, user: Option<&str>) -> Connect {
    let mut connect = connect_packet(version, client_id);
    connect.username = user.map(Into::into);
    connect.password = user.map(|_| Bytes::from_static(b"s3cret"));
    connect
}

async fn user(broker: &RunningBroker, version: ProtocolVersion, user: &str) -> RawClient {
    let client_id = format!("{user}-{}", version.level());
    let (client, connack) =
        RawClient::connect_with(broker, as_user(version, &client_id, Some(user))).await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    client
}

async fn suback(client: &mut RawClient, filters: &[&str]) -> Vec<ReasonCode> {
    let filters = filters
        .iter()
        .map(|f| {
            (
                ByteString::from(f.to_string()),
                SubscriptionOptions::default(),
            )
        })
        .collect();
    client
        .subscribe_with(1, filters, SubscribeProperties::default())
        .await
        .reason_codes
}

async fn publish_qos1(client: &mut RawClient, topic: &str, packet_id: u16) -> ReasonCode {
    client
        .publish(topic, b"payload", QoS::AtLeastOnce, packet_id, false)
        .await;
    match client.recv().await {
        Packet::PubAck(ack) if ack.packet_id == packet_id => ack.reason_code,
        other => panic!("expected PUBACK {packet_id}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_publishes_only_where_its_rules_allow() {
    let (broker, _dir) = broker(ACL).await;
    let mut alice = user(&broker, ProtocolVersion::V5, "alice").await;
    assert_eq!(
        suback(&mut alice, &["sensors/#"]).await,
        [ReasonCode::Success]
    );
    let mut bob = user(&broker, ProtocolVersion::V5, "bob").await;
    assert_eq!(
        publish_qos1(&mut bob, "sensors/bob/t", 1).await,
        ReasonCode::Success
    );
    assert_eq!(alice.expect_publish().await.topic, "sensors/bob/t");
    // 5.0: refused with Not Authorized; nothing is delivered.
    assert_eq!(
        publish_qos1(&mut bob, "public/x", 2).await,
        ReasonCode::NotAuthorized
    );
    // 3.1.1 has no way to say so: acknowledged [MQTT-3.3.5-2], dropped.
    let mut bob311 = user(&broker, ProtocolVersion::V3_1_1, "bob").await;
    let mut anonymous_reader = RawClient::connect(&broker, ProtocolVersion::V5, "anon").await;
    assert_eq!(
        suback(&mut anonymous_reader, &["public/#"]).await,
        [ReasonCode::Success]
    );
    assert_eq!(
        publish_qos1(&mut bob311, "public/y", 3).await,
        ReasonCode::Success
    );
    anonymous_reader.expect_nothing().await;
    alice.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn a_subscription_without_read_access_is_refused_per_filter() {
    let (broker, _dir) = broker(ACL).await;
    // 5.0 says Not Authorized (0x87); 3.1.1 has only Failure (0x80, Unspecified Error).
    for (version, refused) in [
        (ProtocolVersion::V5, ReasonCode::NotAuthorized),
        (ProtocolVersion::V3_1_1, ReasonCode::UnspecifiedError),
    ] {
        let mut alice = user(&broker, version, "alice").await;
        let codes = suback(&mut alice, &["sensors/secret/#", "other/#", "sensors/+/t"]).await;
        assert_eq!(
            codes,
            [refused, refused, ReasonCode::Success],
            "{version:?}"
        );
        let mut bob = user(&broker, version, "bob").await;
        assert_eq!(
            suback(&mut bob, &["sensors/#"]).await,
            [refused],
            "write-only"
        );
        // A shared subscription must be readable throughout: a member that dropped a message
        // would lose it for its whole group.
        let shared = suback(
            &mut alice,
            &["$share/g/sensors/#", "$share/g/sensors/bob/+"],
        )
        .await;
        assert_eq!(shared, [refused, ReasonCode::Success], "{version:?}");
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn a_wildcard_subscription_receives_only_what_the_client_may_read() {
    let (broker, _dir) = broker(ACL).await;
    let mut alice = user(&broker, ProtocolVersion::V5, "alice").await;
    // Bob leaves one retained message it may write and alice may not read.
    let mut bob = user(&broker, ProtocolVersion::V5, "bob").await;
    bob.publish("sensors/secret/kept", b"r", QoS::AtMostOnce, 0, true)
        .await;
    bob.publish("sensors/bob/kept", b"r", QoS::AtMostOnce, 0, true)
        .await;
    assert_eq!(suback(&mut alice, &["#"]).await, [ReasonCode::Success]);
    let retained = alice.expect_publish().await;
    assert_eq!(
        (retained.topic.as_ref(), retained.retain),
        ("sensors/bob/kept", true)
    );
    for topic in ["sensors/secret/key", "sensors/bob/t"] {
        bob.publish(topic, b"live", QoS::AtMostOnce, 0, false).await;
    }
    assert_eq!(alice.expect_publish().await.topic, "sensors/bob/t");
    alice.expect_nothing().await;
    // The pattern gives every client its own branch (alice's `#` brings hers back).
    assert_eq!(
        publish_qos1(&mut alice, "clients/alice-5/status", 9).await,
        ReasonCode::Success
    );
    assert_eq!(alice.expect_publish().await.topic, "clients/alice-5/status");
    assert_eq!(
        publish_qos1(&mut alice, "clients/bob-5/status", 10).await,
        ReasonCode::NotAuthorized
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn a_will_the_client_may_not_publish_refuses_the_connect() {
    let (broker, _dir) = broker(ACL).await;
    // CONNACK 0x87 in 5.0; the codec reads 3.1.1's 0x05 Not Authorized as the same code.
    for version in [ProtocolVersion::V5, ProtocolVersion::V3_1_1] {
        let mut connect = as_user(version, "willing", Some("bob"));
        connect.will = Some(Will {
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "public/bob-is-gone".into(),
            payload: Bytes::from_static(b"bye"),
            properties: Default::default(),
        });
        let (_, connack) = RawClient::connect_with(&broker, connect.clone()).await;
        assert_eq!(
            connack.reason_code,
            ReasonCode::NotAuthorized,
            "{version:?}"
        );
        connect.will.as_mut().unwrap().topic = "sensors/bob/gone".into();
        let (_, connack) = RawClient::connect_with(&broker, connect).await;
        assert_eq!(connack.reason_code, ReasonCode::Success, "{version:?}");
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn a_bad_acl_file_stops_start_up_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("passwords"), "").unwrap();
    std::fs::write(dir.path().join("acl"), "topic read a/#\nuser\n").unwrap();
    let error = match listeners::start(config(&dir)).await {
        Ok(_) => panic!("the broker started with a broken ACL file"),
        Err(error) => error.to_string(),
    };
    let expected = format!(
        "settings.auth.aclFile {}:2: ",
        dir.path().join("acl").display()
    );
    assert!(error.starts_with(&expected), "{error}");
}
