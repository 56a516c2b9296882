//! Reloading `passwordFile` and `aclFile` while the broker runs: new users get in and new
//! rules bind connected clients without a restart; a file that no longer parses changes
//! nothing and is counted.

mod support;

use std::path::Path;

use bytes::Bytes;
use ferrumq_broker::codec::*;
use ferrumq_broker::config::BrokerConfig;
use ferrumq_broker::listeners::RunningBroker;
use support::*;

fn write_users(dir: &Path, users: &[&str]) {
    let lines: String = users
        .iter()
        .map(|u| format!("{u}:{PASSWORD_HASH}\n"))
        .collect();
    std::fs::write(dir.join("passwords"), lines).unwrap();
}

fn config(dir: &Path, reload_interval_secs: u32) -> BrokerConfig {
    let mut config = test_config();
    config.settings.auth.password_file = Some(dir.join("passwords"));
    config.settings.auth.acl_file = Some(dir.join("acl"));
    config.settings.auth.reload_interval_secs = reload_interval_secs;
    config
}

async fn connect_as(broker: &RunningBroker, user: &str) -> (RawClient, ReasonCode) {
    let mut connect = connect_packet(ProtocolVersion::V5, &format!("{user}-client"));
    connect.username = Some(user.into());
    connect.password = Some(Bytes::from_static(b"s3cret"));
    let (client, connack) = RawClient::connect_with(broker, connect).await;
    (client, connack.reason_code)
}

fn reloads(broker: &RunningBroker, result: &str) -> f64 {
    metric(
        broker,
        &format!("ferrumq_auth_reloads_total{{result=\"{result}\"}}"),
    )
}

#[tokio::test]
async fn a_user_added_to_the_password_file_gets_in_after_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    write_users(dir.path(), &["alice"]);
    std::fs::write(dir.path().join("acl"), "pattern readwrite #\n").unwrap();
    let broker = start_with(config(dir.path(), 0)).await;
    assert_eq!(
        connect_as(&broker, "bob").await.1,
        ReasonCode::BadUserNameOrPassword
    );

    write_users(dir.path(), &["alice", "bob"]);
    assert!(broker.broker.reload_auth().unwrap(), "the file changed");
    assert!(
        !broker.broker.reload_auth().unwrap(),
        "nothing changed since"
    );
    assert_eq!(connect_as(&broker, "bob").await.1, ReasonCode::Success);

    write_users(dir.path(), &["bob"]);
    broker.broker.reload_auth_logged();
    assert_eq!(
        connect_as(&broker, "alice").await.1,
        ReasonCode::BadUserNameOrPassword
    );
    assert_eq!(reloads(&broker, "ok"), 1.0);
    broker.shutdown().await;
}

#[tokio::test]
async fn new_topic_rules_bind_connected_clients_and_a_broken_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_users(dir.path(), &["alice", "bob"]);
    let acl = dir.path().join("acl");
    std::fs::write(
        &acl,
        "user alice\ntopic read sensors/#\nuser bob\ntopic write sensors/#\n",
    )
    .unwrap();
    let broker = start_with(config(dir.path(), 0)).await;
    let (mut alice, code) = connect_as(&broker, "alice").await;
    assert_eq!(code, ReasonCode::Success);
    alice.subscribe(1, "sensors/#", QoS::AtMostOnce).await;
    let (mut bob, _) = connect_as(&broker, "bob").await;
    bob.publish("sensors/1", b"before", QoS::AtMostOnce, 0, false)
        .await;
    assert_eq!(
        alice.expect_publish().await.payload,
        Bytes::from_static(b"before")
    );

    // A line the broker cannot read: the reload fails, naming the line, and the rules in
    // force stay.
    std::fs::write(&acl, "topic read a/#\nuser\n").unwrap();
    let error = broker.broker.reload_auth().unwrap_err().to_string();
    assert!(
        error.contains("aclFile") && error.contains(":2:"),
        "{error}"
    );
    broker.broker.reload_auth_logged();
    assert_eq!(reloads(&broker, "error"), 1.0);
    bob.publish("sensors/2", b"still", QoS::AtMostOnce, 0, false)
        .await;
    assert_eq!(
        alice.expect_publish().await.payload,
        Bytes::from_static(b"still")
    );

    // Alice loses read access: her connection receives nothing more, without reconnecting.
    std::fs::write(
        &acl,
        "user alice\ntopic read other/#\nuser bob\ntopic write sensors/#\n",
    )
    .unwrap();
    assert!(broker.broker.reload_auth().unwrap());
    bob.publish("sensors/3", b"after", QoS::AtMostOnce, 0, false)
        .await;
    alice.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn changed_files_are_picked_up_every_reload_interval() {
    let dir = tempfile::tempdir().unwrap();
    write_users(dir.path(), &["alice"]);
    std::fs::write(dir.path().join("acl"), "pattern readwrite #\n").unwrap();
    let broker = start_with(config(dir.path(), 1)).await;
    write_users(dir.path(), &["alice", "carol"]);
    eventually("a reload by the timer", || reloads(&broker, "ok") >= 1.0).await;
    assert_eq!(connect_as(&broker, "carol").await.1, ReasonCode::Success);
    broker.shutdown().await;
}
