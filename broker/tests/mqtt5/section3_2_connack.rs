//! Section 3.2: CONNACK. Session Present, reason codes and the properties that tell the client
//! the broker's limits and features.

use super::common::*;

#[tokio::test]
async fn mqtt_3_2_0_1_connack_is_first_packet_even_with_queued_messages() {
    let broker = start().await;
    let (mut c, _) = session_client(&broker, "c", false, 60).await;
    c.subscribe(1, "t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    let mut p = client(&broker, "p").await;
    retain(&mut p, "t", b"r", 1).await;
    pub1(&mut p, "t", b"queued", 2).await;
    // connect_with fails unless the first packet is CONNACK.
    let (mut c, present) = session_client(&broker, "c", false, 60).await;
    assert!(present);
    assert_eq!(&c.expect_publish().await.payload[..], b"r");
    assert_eq!(&c.expect_publish().await.payload[..], b"queued");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_2_0_2_only_one_connack_per_connection() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    c.subscribe(1, "t", QoS::AtMostOnce).await;
    sync(&mut c).await;
    c.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_2_2_2_session_present_on_resume() {
    let broker = start().await;
    let (c, present) = session_client(&broker, "c", false, 60).await;
    assert!(!present);
    c.disconnect().await;
    let (_c, present) = session_client(&broker, "c", false, 60).await;
    assert!(present, "resumed session [MQTT-3.2.2-3]");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_2_2_2_clean_start_gives_session_present_0() {
    let broker = start().await;
    let (c, _) = session_client(&broker, "c", false, 60).await;
    c.disconnect().await;
    let (_c, present) = session_client(&broker, "c", true, 60).await;
    assert!(!present);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_2_2_6_refusal_has_session_present_0_and_closes() {
    let broker = start().await;
    let (c, _) = session_client(&broker, "c", false, 60).await;
    c.disconnect().await;
    let (mut c, ack) = try_connect(
        &broker,
        connect_v5("c", |c| {
            c.clean_start = false;
            c.properties.authentication_method = Some("unknown".into());
        }),
    )
    .await;
    assert_eq!(ack.reason_code, ReasonCode::BadAuthenticationMethod);
    assert!(!ack.session_present, "[MQTT-3.2.2-6]");
    expect_closed(&mut c).await; // [MQTT-3.2.2-7]
                                 // The refused CONNECT did not disturb the stored session.
    let (_c, present) = session_client(&broker, "c", false, 60).await;
    assert!(present);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_2_2_3_connack_advertises_limits() {
    let broker = start_with(config(|c| {
        c.settings.limits.receive_maximum = 7;
        c.settings.limits.max_packet_size = 4096;
        c.settings.session.topic_alias_maximum = 5;
    }))
    .await;
    let (_c, ack) = client_with(&broker, "c", |_| {}).await;
    let p = &ack.properties;
    assert_eq!(p.receive_maximum, Some(7));
    assert_eq!(p.maximum_packet_size, Some(4096));
    assert_eq!(p.topic_alias_maximum, Some(5));
    // Features that are available are not advertised as unavailable.
    assert_ne!(p.retain_available, Some(false));
    assert_ne!(p.wildcard_subscription_available, Some(false));
    assert_ne!(p.subscription_identifiers_available, Some(false));
    assert_ne!(p.shared_subscription_available, Some(false));
    assert_eq!(p.maximum_qos, None, "QoS 2 is the default");
    // [MQTT-4.12.0-6]: no Authentication Method when the client sent none.
    assert_eq!(p.authentication_method, None);
    assert_eq!(ack.reason_code, ReasonCode::Success);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_2_2_3_connack_advertises_disabled_features() {
    let broker = start_with(config(|c| {
        let f = &mut c.settings.features;
        f.retain_available = false;
        f.wildcard_subscription_available = false;
        f.subscription_identifiers_available = false;
        f.shared_subscription_available = false;
        f.maximum_qos = 1;
        c.settings.session.topic_alias_maximum = 0;
    }))
    .await;
    let (_c, ack) = client_with(&broker, "c", |_| {}).await;
    let p = &ack.properties;
    assert_eq!(p.retain_available, Some(false));
    assert_eq!(p.wildcard_subscription_available, Some(false));
    assert_eq!(p.subscription_identifiers_available, Some(false));
    assert_eq!(p.shared_subscription_available, Some(false));
    assert_eq!(p.maximum_qos, Some(QoS::AtLeastOnce), "[MQTT-3.2.2-9]");
    assert!(matches!(p.topic_alias_maximum, None | Some(0)));
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_2_2_3_session_expiry_returned_when_lowered() {
    let broker = start_with(config(|c| {
        c.settings.session.max_session_expiry_interval_secs = 100
    }))
    .await;
    let (_c, ack) = client_with(&broker, "c", |c| {
        c.properties.session_expiry_interval = Some(u32::MAX);
    })
    .await;
    assert_eq!(ack.properties.session_expiry_interval, Some(100));
    let (_d, ack) = client_with(&broker, "d", |c| {
        c.properties.session_expiry_interval = Some(50);
    })
    .await;
    assert!(matches!(
        ack.properties.session_expiry_interval,
        None | Some(50)
    ));
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_2_2_12_will_qos_above_maximum_refused_with_0x9b() {
    let broker = start_with(config(|c| c.settings.features.maximum_qos = 1)).await;
    let (mut c, ack) = try_connect(
        &broker,
        connect_v5("c", |c| {
            let mut w = will("w", b"x");
            w.qos = QoS::ExactlyOnce;
            c.will = Some(w);
        }),
    )
    .await;
    assert_eq!(ack.reason_code, ReasonCode::QosNotSupported);
    expect_closed(&mut c).await;
    // A Will at the maximum QoS is fine.
    client_with(&broker, "d", |c| {
        let mut w = will("w", b"x");
        w.qos = QoS::AtLeastOnce;
        c.will = Some(w);
    })
    .await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_2_2_14_will_retain_refused_with_0x9a_when_retain_unavailable() {
    let broker = start_with(config(|c| c.settings.features.retain_available = false)).await;
    let (mut c, ack) = try_connect(
        &broker,
        connect_v5("c", |c| {
            let mut w = will("w", b"x");
            w.retain = true;
            c.will = Some(w);
        }),
    )
    .await;
    assert_eq!(ack.reason_code, ReasonCode::RetainNotSupported);
    expect_closed(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_28_no_response_information_unless_requested() {
    let broker = start().await;
    let (_c, ack) = client_with(&broker, "c", |_| {}).await;
    assert_eq!(ack.properties.response_information, None);
    let (_d, ack) = client_with(&broker, "d", |c| {
        c.properties.request_response_information = Some(false)
    })
    .await;
    assert_eq!(ack.properties.response_information, None);
    broker.shutdown().await;
}
