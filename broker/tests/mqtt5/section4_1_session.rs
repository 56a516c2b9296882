//! Section 4.1: session state and its lifetime.

use std::time::Duration;

use super::common::*;

#[tokio::test]
async fn mqtt_4_1_0_1_and_2_session_kept_while_connected_then_expires() {
    let broker = start().await;
    let (mut c, _) = session_client(&broker, "c", true, 1).await;
    c.subscribe(1, "t", QoS::AtLeastOnce).await;
    // Connected for longer than the expiry interval: nothing is discarded [MQTT-4.1.0-1].
    tokio::time::sleep(Duration::from_millis(1200)).await;
    c.disconnect().await;
    let (c, present) = session_client(&broker, "c", false, 1).await;
    assert!(present);
    c.disconnect().await;
    // Disconnected for longer than the interval: discarded [MQTT-4.1.0-2].
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (mut c, present) = session_client(&broker, "c", false, 1).await;
    assert!(!present, "session gone after expiry");
    let mut p = client(&broker, "p").await;
    pub1(&mut p, "t", b"m", 1).await;
    c.expect_nothing().await; // its subscription went with it
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_23_session_expiry_0_ends_session_at_close() {
    let broker = start().await;
    let (mut c, _) = session_client(&broker, "c", true, 0).await;
    c.subscribe(1, "t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    let (_c, present) = session_client(&broker, "c", false, 60).await;
    assert!(!present);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_23_session_expiry_absent_means_0() {
    let broker = start().await;
    let (c, _) = client_with(&broker, "c", |c| c.clean_start = false).await;
    drop_connection(c);
    let mut probe = client(&broker, "probe").await;
    sync(&mut probe).await;
    wait_until("session removed", || {
        broker.broker.sessions.get("c").is_none()
    })
    .await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_1_0_session_stores_messages_while_disconnected() {
    let broker = start().await;
    let (mut c, _) = session_client(&broker, "c", true, 60).await;
    c.subscribe(1, "q1", QoS::AtLeastOnce).await;
    c.subscribe(2, "q2", QoS::ExactlyOnce).await;
    drop_connection(c);
    let mut p = client(&broker, "p").await;
    pub1(&mut p, "q1", b"one", 1).await;
    pub2(&mut p, "q2", b"two", 2).await;
    let (mut c, present) = session_client(&broker, "c", false, 60).await;
    assert!(present);
    let a = recv_acked(&mut c).await;
    let b = recv_acked(&mut c).await;
    assert_eq!((&a.payload[..], a.qos), (&b"one"[..], QoS::AtLeastOnce));
    assert_eq!((&b.payload[..], b.qos), (&b"two"[..], QoS::ExactlyOnce));
    c.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_5_0_1_message_added_to_every_matching_session() {
    let broker = start().await;
    let mut subs = Vec::new();
    for id in ["s1", "s2", "s3"] {
        let mut s = client(&broker, id).await;
        s.subscribe(1, "fan/+", QoS::AtLeastOnce).await;
        subs.push(s);
    }
    let mut p = client(&broker, "p").await;
    pub1(&mut p, "fan/out", b"m", 1).await;
    for s in &mut subs {
        assert_eq!(&recv_acked(s).await.payload[..], b"m");
    }
    broker.shutdown().await;
}
