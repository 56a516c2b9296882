//! Persistence across a restart: a broker stopped cleanly and started again on the same data
//! directory gives clients back their sessions (subscriptions and queued messages) and every
//! retained message, as a rolling update of the broker's pods does.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use ferrumq_broker::codec::*;
use ferrumq_broker::config::BrokerConfig;
use ferrumq_broker::listeners;
use ferrumq_broker::server::Broker;
use support::{connect_packet, start_with, test_config, RawClient, PASSWORD_HASH};

fn persistent_config(dir: &tempfile::TempDir) -> BrokerConfig {
    let mut config = test_config();
    config.persistence.data_dir = Some(dir.path().to_owned());
    config.persistence.autosave_interval_secs = 0;
    config
}

/// A 5.0 CONNECT for `client_id` whose session outlives the connection by an hour.
fn persistent_connect(client_id: &str, clean_start: bool) -> Connect {
    let mut connect = connect_packet(ProtocolVersion::V5, client_id);
    connect.clean_start = clean_start;
    connect.properties.session_expiry_interval = Some(3600);
    connect
}

async fn publish_acked(client: &mut RawClient, topic: &str, payload: &'static [u8], id: u16) {
    client
        .publish(topic, payload, QoS::AtLeastOnce, id, false)
        .await;
    match client.recv().await {
        Packet::PubAck(ack) => assert_eq!(ack.packet_id, id),
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

/// The value of the persistence save counter with `result`.
fn saves(broker: &Broker, result: &str) -> f64 {
    broker
        .stats
        .registry
        .gather()
        .iter()
        .filter(|f| f.name() == "ferrumq_persistence_saves_total")
        .flat_map(|f| f.get_metric())
        .filter(|m| m.get_label().iter().any(|l| l.value() == result))
        .map(|m| m.get_counter().value())
        .sum()
}

/// Starts a broker on `dir` with a persistent session subscribed to `fleet/+/status` (with a
/// Subscription Identifier) and offline, one QoS 1 message queued for it and a retained
/// message on `fleet/a/config`; stops it cleanly.
async fn first_run(dir: &tempfile::TempDir) {
    let running = start_with(persistent_config(dir)).await;
    let (mut keeper, connack) =
        RawClient::connect_with(&running, persistent_connect("keeper", true)).await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    let options = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        ..Default::default()
    };
    keeper
        .subscribe_with(
            1,
            vec![("fleet/+/status".into(), options)],
            SubscribeProperties {
                subscription_identifier: Some(7),
                ..Default::default()
            },
        )
        .await;
    keeper.disconnect().await;

    let mut publisher = RawClient::connect(&running, ProtocolVersion::V3_1_1, "publisher").await;
    publish_acked(&mut publisher, "fleet/a/status", b"queued while away", 1).await;
    publisher
        .publish("fleet/a/config", b"interval=5", QoS::AtMostOnce, 0, true)
        .await;
    publisher.disconnect().await;

    let broker = Arc::clone(&running.broker);
    assert_eq!(
        broker.retained.read().len(),
        1,
        "the retained message is stored"
    );
    running.shutdown().await;
    assert_eq!(saves(&broker, "ok"), 1.0, "stopping saved the state once");
    assert_eq!(saves(&broker, "error"), 0.0);
}

#[tokio::test]
async fn sessions_and_retained_messages_survive_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    first_run(&dir).await;

    let running = start_with(persistent_config(&dir)).await;
    let (mut keeper, connack) =
        RawClient::connect_with(&running, persistent_connect("keeper", false)).await;
    assert!(connack.session_present, "the session was restored");
    let queued = keeper.expect_publish().await;
    assert_eq!(
        (queued.topic.as_ref(), &queued.payload[..], queued.qos),
        (
            "fleet/a/status",
            &b"queued while away"[..],
            QoS::AtLeastOnce
        )
    );
    assert_eq!(
        queued.properties.subscription_identifiers.to_vec(),
        vec![7],
        "the restored subscription keeps its identifier"
    );
    keeper
        .send(&Packet::PubAck(PubResponse {
            packet_id: queued.packet_id,
            ..Default::default()
        }))
        .await;

    // The restored subscription routes new messages too.
    let mut publisher = RawClient::connect(&running, ProtocolVersion::V3_1_1, "publisher").await;
    publish_acked(&mut publisher, "fleet/b/status", b"live", 2).await;
    let live = keeper.expect_publish().await;
    assert_eq!(
        (live.topic.as_ref(), &live.payload[..]),
        ("fleet/b/status", &b"live"[..])
    );

    // [MQTT-3.3.1-9]: a new subscription receives the retained message, flagged as retained.
    let mut reader = RawClient::connect(&running, ProtocolVersion::V3_1_1, "reader").await;
    reader.subscribe(1, "fleet/a/config", QoS::AtMostOnce).await;
    let retained = reader.expect_publish().await;
    assert!(retained.retain);
    assert_eq!(retained.payload, Bytes::from_static(b"interval=5"));
    running.shutdown().await;
}

#[tokio::test]
async fn a_clean_start_discards_a_restored_session() {
    let dir = tempfile::tempdir().unwrap();
    first_run(&dir).await;

    let running = start_with(persistent_config(&dir)).await;
    let (mut keeper, connack) =
        RawClient::connect_with(&running, persistent_connect("keeper", true)).await;
    assert!(!connack.session_present, "[MQTT-3.2.2-2]");
    keeper.expect_nothing().await;
    let mut publisher = RawClient::connect(&running, ProtocolVersion::V3_1_1, "publisher").await;
    publish_acked(&mut publisher, "fleet/c/status", b"after", 3).await;
    keeper.expect_nothing().await;
    running.shutdown().await;
}

#[tokio::test]
async fn a_damaged_state_file_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(ferrumq_broker::store::FILE_NAME);
    std::fs::write(&file, vec![0x5a; 64 * 1024]).unwrap();
    let error = match listeners::start(persistent_config(&dir)).await {
        Ok(_) => panic!("a broker started on a damaged state file"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.contains(&file.display().to_string()),
        "the error names the file: {error}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        vec![0x5a; 64 * 1024],
        "the file is left as it was, for whoever investigates"
    );
}

#[tokio::test]
async fn a_running_broker_saves_every_autosave_interval() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = persistent_config(&dir);
    config.persistence.autosave_interval_secs = 1;
    let running = start_with(config).await;
    let mut publisher = RawClient::connect(&running, ProtocolVersion::V3_1_1, "publisher").await;
    publisher
        .publish("cfg/x", b"saved while running", QoS::AtMostOnce, 0, true)
        .await;
    let broker = Arc::clone(&running.broker);
    support::eventually("an autosave", || saves(&broker, "ok") >= 1.0).await;
    let gathered = broker.stats.registry.gather();
    let retained_saved = gathered
        .iter()
        .find(|f| f.name() == "ferrumq_persistence_saved_retained_messages")
        .map(|f| f.get_metric()[0].get_gauge().value());
    assert_eq!(retained_saved, Some(1.0));
    running.shutdown().await;
}

/// A restored session is held to its user's topic rules while its client is away: it queues
/// only what that user may read, as it did before the restart.
#[tokio::test]
async fn a_restored_session_is_held_to_its_users_topic_rules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("passwords"),
        format!("alice:{PASSWORD_HASH}\nbob:{PASSWORD_HASH}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("acl"),
        "user alice\ntopic read sensors/alice/#\nuser bob\ntopic write sensors/#\n",
    )
    .unwrap();
    let config = || {
        let mut config = persistent_config(&dir);
        config.settings.auth.password_file = Some(dir.path().join("passwords"));
        config.settings.auth.acl_file = Some(dir.path().join("acl"));
        config
    };
    let as_user = |user: &str, clean_start: bool| {
        let mut connect = persistent_connect(user, clean_start);
        connect.username = Some(user.into());
        connect.password = Some(Bytes::from_static(b"s3cret"));
        connect
    };

    let running = start_with(config()).await;
    let (mut alice, _) = RawClient::connect_with(&running, as_user("alice", true)).await;
    alice.subscribe(1, "sensors/#", QoS::AtLeastOnce).await;
    alice.disconnect().await;
    running.shutdown().await;

    let running = start_with(config()).await;
    let (mut bob, connack) = RawClient::connect_with(&running, as_user("bob", true)).await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    publish_acked(&mut bob, "sensors/bob/secret", b"not for alice", 1).await;
    publish_acked(&mut bob, "sensors/alice/temp", b"for alice", 2).await;
    let (mut alice, connack) = RawClient::connect_with(&running, as_user("alice", false)).await;
    assert!(connack.session_present);
    let delivered = alice.expect_publish().await;
    assert_eq!(&delivered.topic[..], "sensors/alice/temp");
    alice.expect_nothing().await;
    running.shutdown().await;
}
