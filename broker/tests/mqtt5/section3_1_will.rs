//! Section 3.1.2.5 and 3.1.3.2: the Will Message, when it is published and when it is not.

use std::time::{Duration, Instant};

use super::common::*;

async fn watcher(broker: &RunningBroker, filter: &str) -> RawClient {
    let mut w = client(broker, "watcher").await;
    w.subscribe(1, filter, QoS::AtLeastOnce).await;
    w
}

async fn with_will(broker: &RunningBroker, id: &str, f: impl FnOnce(&mut Connect)) -> RawClient {
    client_with(broker, id, |c| {
        c.will = Some(will("will/t", b"gone"));
        f(c);
    })
    .await
    .0
}

#[tokio::test]
async fn mqtt_3_1_2_8_will_published_on_abnormal_close() {
    let broker = start().await;
    let mut w = watcher(&broker, "will/#").await;
    let c = with_will(&broker, "c", |_| {}).await;
    drop_connection(c);
    let got = w.expect_publish().await;
    assert_eq!((&*got.topic, &got.payload[..]), ("will/t", &b"gone"[..]));
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_8_will_published_when_server_closes_for_protocol_error() {
    let broker = start().await;
    let mut w = watcher(&broker, "will/#").await;
    let mut c = with_will(&broker, "c", |_| {}).await;
    c.send(&Packet::Connect(Box::new(connect_v5("c", |_| {}))))
        .await;
    c.expect_disconnect(Some(ReasonCode::ProtocolError)).await;
    assert_eq!(&w.expect_publish().await.payload[..], b"gone");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_8_will_published_on_keep_alive_timeout() {
    let broker = start().await;
    let mut w = watcher(&broker, "will/#").await;
    let mut c = with_will(&broker, "c", |c| c.keep_alive = 1).await;
    c.expect_disconnect(Some(ReasonCode::KeepAliveTimeout))
        .await;
    assert_eq!(&w.expect_publish().await.payload[..], b"gone");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_8_will_published_when_session_taken_over() {
    let broker = start().await;
    let mut w = watcher(&broker, "will/#").await;
    let mut old = with_will(&broker, "c", |_| {}).await;
    let _new = client(&broker, "c").await;
    old.expect_disconnect(Some(ReasonCode::SessionTakenOver))
        .await;
    assert_eq!(&w.expect_publish().await.payload[..], b"gone");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_10_will_discarded_on_normal_disconnect() {
    let broker = start().await;
    let mut w = watcher(&broker, "will/#").await;
    let c = with_will(&broker, "c", |_| {}).await;
    c.disconnect().await;
    w.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_14_2_1_disconnect_0x04_publishes_will() {
    let broker = start().await;
    let mut w = watcher(&broker, "will/#").await;
    let mut c = with_will(&broker, "c", |_| {}).await;
    c.send(&Packet::Disconnect(Disconnect {
        reason_code: ReasonCode::DisconnectWithWillMessage,
        ..Default::default()
    }))
    .await;
    expect_closed(&mut c).await;
    assert_eq!(&w.expect_publish().await.payload[..], b"gone");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_14_will_retain_0_published_not_retained() {
    let broker = start().await;
    let c = with_will(&broker, "c", |_| {}).await;
    let mut w = watcher(&broker, "will/#").await;
    drop_connection(c);
    let got = w.expect_publish().await;
    assert!(!got.retain);
    // Not stored: a later subscriber gets nothing.
    let mut late = client(&broker, "late").await;
    late.subscribe(1, "will/#", QoS::AtLeastOnce).await;
    late.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_15_will_retain_1_published_as_retained() {
    let broker = start().await;
    let c = with_will(&broker, "c", |c| {
        c.will.as_mut().unwrap().retain = true;
        c.will.as_mut().unwrap().qos = QoS::AtLeastOnce;
    })
    .await;
    let mut w = watcher(&broker, "will/#").await;
    drop_connection(c);
    assert_eq!(&w.expect_publish().await.payload[..], b"gone");
    let mut late = client(&broker, "late").await;
    late.subscribe(1, "will/#", QoS::AtLeastOnce).await;
    let got = late.expect_publish().await;
    assert!(got.retain, "retained will [MQTT-3.1.2-15]");
    assert_eq!(&got.payload[..], b"gone");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_12_will_qos_is_delivery_qos() {
    let broker = start().await;
    let mut w = watcher(&broker, "will/#").await; // granted QoS 1
    let c = with_will(&broker, "c", |c| {
        c.will.as_mut().unwrap().qos = QoS::ExactlyOnce
    })
    .await;
    drop_connection(c);
    assert_eq!(w.expect_publish().await.qos, QoS::AtLeastOnce);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_3_10_will_properties_and_user_property_order_forwarded() {
    let broker = start().await;
    let mut w = watcher(&broker, "will/#").await;
    let c = with_will(&broker, "c", |c| {
        let p = &mut c.will.as_mut().unwrap().properties;
        p.payload_format_indicator = Some(true);
        p.content_type = Some("text/plain".into());
        p.response_topic = Some("reply/here".into());
        p.correlation_data = Some(Bytes::from_static(b"corr"));
        p.user_properties = user_props(&[("b", "2"), ("a", "1"), ("b", "3")]);
    })
    .await;
    drop_connection(c);
    let got = w.expect_publish().await;
    let p = &got.properties;
    assert_eq!(p.payload_format_indicator, Some(true));
    assert_eq!(p.content_type.as_deref(), Some("text/plain"));
    assert_eq!(p.response_topic.as_deref(), Some("reply/here"));
    assert_eq!(p.correlation_data.as_deref(), Some(&b"corr"[..]));
    let users: Vec<_> = p.user_properties.iter().collect();
    assert_eq!(users, [("b", "2"), ("a", "1"), ("b", "3")]);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_3_9_will_delay_cancelled_by_reconnect() {
    let broker = start().await;
    let mut w = watcher(&broker, "will/#").await;
    let c = with_will(&broker, "c", |c| {
        c.properties.session_expiry_interval = Some(60);
        c.will.as_mut().unwrap().properties.will_delay_interval = Some(1);
    })
    .await;
    drop_connection(c);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_c, present) = session_client(&broker, "c", false, 60).await;
    assert!(present);
    // Past the delay: still nothing.
    assert_eq!(
        w.recv_within(Duration::from_millis(1300)).await,
        Received::Nothing
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_3_9_will_delay_defers_publication() {
    let broker = start().await;
    let mut w = watcher(&broker, "will/#").await;
    let c = with_will(&broker, "c", |c| {
        c.properties.session_expiry_interval = Some(60);
        c.will.as_mut().unwrap().properties.will_delay_interval = Some(1);
    })
    .await;
    let closed = Instant::now();
    drop_connection(c);
    let got = w.expect_publish().await;
    assert_eq!(&got.payload[..], b"gone");
    assert!(
        closed.elapsed() >= Duration::from_millis(900),
        "published after {:?}",
        closed.elapsed()
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_3_9_will_published_when_session_ends_before_delay() {
    let broker = start().await;
    let mut w = watcher(&broker, "will/#").await;
    // Session Expiry 0: the session ends at the close, long before the 60 s delay.
    let c = with_will(&broker, "c", |c| {
        c.will.as_mut().unwrap().properties.will_delay_interval = Some(60);
    })
    .await;
    drop_connection(c);
    assert_eq!(&w.expect_publish().await.payload[..], b"gone");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_3_9_clean_start_reconnect_ends_session_and_publishes_delayed_will() {
    let broker = start().await;
    let mut w = watcher(&broker, "will/#").await;
    let c = with_will(&broker, "c", |c| {
        c.properties.session_expiry_interval = Some(60);
        c.will.as_mut().unwrap().properties.will_delay_interval = Some(60);
    })
    .await;
    drop_connection(c);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Clean Start discards the session the Will was waiting on: it ends, so the Will goes now.
    let (_c, present) = session_client(&broker, "c", true, 60).await;
    assert!(!present);
    assert_eq!(&w.expect_publish().await.payload[..], b"gone");
    broker.shutdown().await;
}
