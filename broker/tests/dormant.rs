//! Idle connections go to sleep (no task, the socket out of the runtime; issue #4: memory per
//! idle connection) and behave exactly as awake ones: everything that would have woken the
//! connection's task wakes the sleeping connection.
mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use ferrumq_broker::codec::*;
use ferrumq_broker::listeners::RunningBroker;
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;

/// Waits until at least `n` of the broker's connections are asleep (a connection sleeps once
/// idle for about a second, or right after its handshake if it does nothing).
async fn wait_asleep(broker: &RunningBroker, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while broker.broker.asleep.load(Ordering::Relaxed) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} connections did not go to sleep (asleep: {})",
            broker.broker.asleep.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn asleep(broker: &RunningBroker) -> usize {
    broker.broker.asleep.load(Ordering::Relaxed)
}

#[tokio::test]
async fn a_sleeping_subscriber_wakes_for_a_message_and_sleeps_again() {
    let broker = start().await;
    let mut sub = RawClient::connect(&broker, V5, "sleepy-sub").await;
    sub.subscribe(1, "dormant/t", QoS::AtLeastOnce).await;
    wait_asleep(&broker, 1).await;
    let mut publisher = RawClient::connect(&broker, V5, "awake-pub").await;
    publisher
        .publish("dormant/t", b"wake up", QoS::AtMostOnce, 0, false)
        .await;
    let got = sub.expect_publish().await;
    assert_eq!(&got.payload[..], b"wake up");
    // Both connections end up asleep again once idle.
    wait_asleep(&broker, 2).await;
    publisher
        .publish("dormant/t", b"again", QoS::AtMostOnce, 0, false)
        .await;
    assert_eq!(&sub.expect_publish().await.payload[..], b"again");
    broker.shutdown().await;
}

#[tokio::test]
async fn a_sleeping_connection_answers_its_client() {
    let broker = start().await;
    let mut client = RawClient::connect(&broker, V5, "pinger").await;
    wait_asleep(&broker, 1).await;
    client.send(&Packet::PingReq).await;
    assert_eq!(client.recv().await, Packet::PingResp);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_4_3_a_sleeping_connection_taken_over_gets_0x8e() {
    let broker = start().await;
    let mut old = RawClient::connect(&broker, V5, "twin").await;
    wait_asleep(&broker, 1).await;
    let _new = RawClient::connect(&broker, V5, "twin").await;
    old.expect_disconnect(Some(ReasonCode::SessionTakenOver))
        .await;
    broker.shutdown().await;
}

#[tokio::test]
async fn what_a_sleeping_client_sent_before_a_takeover_is_handled_first() {
    let broker = start().await;
    let mut sub = RawClient::connect(&broker, V5, "witness").await;
    sub.subscribe(1, "before/takeover", QoS::AtMostOnce).await;
    let mut old = RawClient::connect(&broker, V5, "handover").await;
    wait_asleep(&broker, 2).await;
    // The PUBLISH and the takeover race to wake the sleeping connection; either way the
    // PUBLISH, which came first, is delivered.
    old.publish("before/takeover", b"last words", QoS::AtMostOnce, 0, false)
        .await;
    let _new = RawClient::connect(&broker, V5, "handover").await;
    assert_eq!(&sub.expect_publish().await.payload[..], b"last words");
    broker.shutdown().await;
}

#[tokio::test]
async fn shutdown_tells_sleeping_connections_0x8b() {
    let broker = start().await;
    let mut a = RawClient::connect(&broker, V5, "sleeper-a").await;
    let mut b = RawClient::connect(&broker, V5, "sleeper-b").await;
    wait_asleep(&broker, 2).await;
    let shutdown = tokio::spawn(broker.shutdown());
    a.expect_disconnect(Some(ReasonCode::ServerShuttingDown))
        .await;
    b.expect_disconnect(Some(ReasonCode::ServerShuttingDown))
        .await;
    shutdown.await.unwrap();
}

#[tokio::test]
async fn mqtt_3_1_2_24_keep_alive_closes_a_silent_sleeping_client() {
    let broker = start().await;
    let mut connect = connect_packet(V5, "silent");
    connect.keep_alive = 1;
    let (mut client, ack) = RawClient::connect_with(&broker, connect).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    wait_asleep(&broker, 1).await;
    client
        .expect_disconnect(Some(ReasonCode::KeepAliveTimeout))
        .await;
    broker.shutdown().await;
}

#[tokio::test]
async fn a_client_lost_while_asleep_has_its_will_published() {
    let broker = start().await;
    let mut watcher = RawClient::connect(&broker, V5, "will-watcher").await;
    watcher.subscribe(1, "wills/#", QoS::AtMostOnce).await;
    let mut connect = connect_packet(V5, "doomed");
    connect.will = Some(Will {
        topic: "wills/doomed".into(),
        payload: bytes::Bytes::from_static(b"gone"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Default::default(),
    });
    let (doomed, ack) = RawClient::connect_with(&broker, connect).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    wait_asleep(&broker, 2).await;
    drop(doomed);
    assert_eq!(&watcher.expect_publish().await.payload[..], b"gone");
    broker.shutdown().await;
}

#[tokio::test]
async fn the_asleep_gauge_counts_sleeping_connections() {
    let broker = start().await;
    let a = RawClient::connect(&broker, V5, "gauge-a").await;
    let _b = RawClient::connect(&broker, V5, "gauge-b").await;
    wait_asleep(&broker, 2).await;
    let scrape = || {
        broker
            .broker
            .stats
            .render()
            .lines()
            .find_map(|l| l.strip_prefix("ferrumq_connections_asleep "))
            .map(|v| v.trim().to_string())
    };
    assert_eq!(scrape().as_deref(), Some("2"));
    a.disconnect().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while asleep(&broker) != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {}",
            asleep(&broker)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(scrape().as_deref(), Some("1"));
    broker.shutdown().await;
}
