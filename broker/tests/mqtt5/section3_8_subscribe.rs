//! Sections 3.8 and 3.9: SUBSCRIBE and SUBACK.

use super::common::*;

#[tokio::test]
async fn mqtt_3_8_3_3_no_local_not_sent_back_to_publisher() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    let o = SubscriptionOptions {
        no_local: true,
        ..opts(QoS::AtMostOnce)
    };
    subscribe_opts(&mut c, 1, "t", o, None).await;
    let mut other = client(&broker, "other").await;
    other.subscribe(1, "t", QoS::AtMostOnce).await;
    pub0(&mut c, "t", b"mine").await;
    assert_eq!(&other.expect_publish().await.payload[..], b"mine");
    c.expect_nothing().await;
    // Messages from other clients still arrive.
    pub0(&mut other, "t", b"theirs").await;
    assert_eq!(&c.expect_publish().await.payload[..], b"theirs");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_3_4_no_local_on_shared_subscription_is_protocol_error() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    // SUBSCRIBE id 1, no properties, "$share/g/t" with options No Local | QoS 0.
    let mut raw = vec![0x82, 0, 0, 1, 0, 0, 10];
    raw.extend_from_slice(b"$share/g/t");
    raw.push(0b0000_0100);
    raw[1] = (raw.len() - 2) as u8;
    c.send_raw(&raw).await;
    c.expect_disconnect(Some(ReasonCode::ProtocolError)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_3_5_reserved_subscription_option_bits_are_malformed() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    c.send_raw(&[0x82, 7, 0, 1, 0, 0, 1, b't', 0b0100_0000])
        .await;
    c.expect_disconnect(Some(ReasonCode::MalformedPacket)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_3_2_subscribe_without_filters_is_protocol_error() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    c.send_raw(&[0x82, 3, 0, 1, 0]).await;
    let d = expect_disconnect_packet(&mut c).await;
    assert!(
        matches!(
            d.reason_code,
            ReasonCode::ProtocolError | ReasonCode::MalformedPacket
        ),
        "{:?}",
        d.reason_code
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_3_retain_handling_3_is_protocol_error() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    c.send_raw(&[0x82, 7, 0, 1, 0, 0, 1, b't', 0b0011_0000])
        .await;
    c.expect_disconnect(Some(ReasonCode::ProtocolError)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_2_subscription_identifier_0_is_protocol_error() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    // SUBSCRIBE id 1, properties [0x0B 0x00], filter "t" QoS 0.
    c.send_raw(&[0x82, 9, 0, 1, 2, 0x0B, 0, 0, 1, b't', 0])
        .await;
    c.expect_disconnect(Some(ReasonCode::ProtocolError)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_4_1_suback_has_same_packet_id_and_one_code_per_filter() {
    let broker = start_with(config(|c| {
        c.settings.features.wildcard_subscription_available = false
    }))
    .await;
    let mut c = client(&broker, "c").await;
    let ack = c
        .subscribe_with(
            0x1234,
            vec![
                ("a".into(), opts(QoS::AtLeastOnce)),
                ("b/+".into(), opts(QoS::AtLeastOnce)),
                ("c".into(), opts(QoS::ExactlyOnce)),
                ("d".into(), opts(QoS::AtMostOnce)),
            ],
            SubscribeProperties::default(),
        )
        .await;
    assert_eq!(ack.packet_id, 0x1234);
    assert_eq!(
        ack.reason_codes,
        [
            ReasonCode::GrantedQos1,
            ReasonCode::WildcardSubscriptionsNotSupported,
            ReasonCode::GrantedQos2,
            ReasonCode::Success,
        ],
        "[MQTT-3.8.4-6], [MQTT-3.9.3-1]"
    );
    // The accepted filters work; the refused one does not.
    let mut p = client(&broker, "p").await;
    pub0(&mut p, "b/x", b"no").await;
    pub0(&mut p, "a", b"yes").await;
    assert_eq!(&c.expect_publish().await.payload[..], b"yes");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_4_3_resubscribe_replaces_existing_subscription() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    subscribe_opts(&mut c, 1, "t", opts(QoS::AtMostOnce), Some(1)).await;
    subscribe_opts(&mut c, 2, "t", opts(QoS::AtLeastOnce), Some(2)).await;
    let mut p = client(&broker, "p").await;
    pub1(&mut p, "t", b"m", 1).await;
    let got = recv_acked(&mut c).await;
    assert_eq!(got.qos, QoS::AtLeastOnce);
    assert_eq!(sub_ids(&got), [2], "the new subscription's identifier only");
    c.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_4_3_resubscribe_without_identifier_removes_it() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    subscribe_opts(&mut c, 1, "t", opts(QoS::AtMostOnce), Some(9)).await;
    subscribe_opts(&mut c, 2, "t", opts(QoS::AtMostOnce), None).await;
    let mut p = client(&broker, "p").await;
    pub0(&mut p, "t", b"m").await;
    assert_eq!(sub_ids(&c.expect_publish().await), Vec::<u32>::new());
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_4_8_delivery_qos_is_minimum_of_published_and_granted() {
    let broker = start().await;
    let mut low = client(&broker, "low").await;
    low.subscribe(1, "t", QoS::AtLeastOnce).await;
    let mut high = client(&broker, "high").await;
    high.subscribe(1, "t", QoS::ExactlyOnce).await;
    let mut p = client(&broker, "p").await;
    pub2(&mut p, "t", b"two", 1).await;
    assert_eq!(recv_acked(&mut low).await.qos, QoS::AtLeastOnce);
    assert_eq!(recv_acked(&mut high).await.qos, QoS::ExactlyOnce);
    pub0(&mut p, "t", b"zero").await;
    assert_eq!(low.expect_publish().await.qos, QoS::AtMostOnce);
    assert_eq!(high.expect_publish().await.qos, QoS::AtMostOnce);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_4_7_granted_qos_capped_by_maximum_qos() {
    let broker = start_with(config(|c| c.settings.features.maximum_qos = 1)).await;
    let mut c = client(&broker, "c").await;
    let ack = c.subscribe(1, "t", QoS::ExactlyOnce).await;
    assert_eq!(ack.reason_codes, [ReasonCode::GrantedQos1]);
    let mut p = client(&broker, "p").await;
    // A QoS 2 PUBLISH to a broker whose Maximum QoS is 1 [MQTT-3.2.2-11].
    p.send(&Packet::Publish(publish("t", b"x", QoS::ExactlyOnce, 1)))
        .await;
    p.expect_disconnect(Some(ReasonCode::QosNotSupported)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_9_3_shared_subscriptions_refused_with_0x9e_when_unavailable() {
    let broker = start_with(config(|c| {
        c.settings.features.shared_subscription_available = false
    }))
    .await;
    let mut c = client(&broker, "c").await;
    let ack = c.subscribe(1, "$share/g/t", QoS::AtMostOnce).await;
    assert_eq!(
        ack.reason_codes,
        [ReasonCode::SharedSubscriptionsNotSupported]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_2_subscription_identifier_when_unavailable_is_0xa1() {
    let broker = start_with(config(|c| {
        c.settings.features.subscription_identifiers_available = false
    }))
    .await;
    let mut c = client(&broker, "c").await;
    c.send(&Packet::Subscribe(Subscribe {
        packet_id: 1,
        properties: SubscribeProperties {
            subscription_identifier: Some(3),
            ..Default::default()
        },
        filters: vec![("t".into(), opts(QoS::AtMostOnce))],
    }))
    .await;
    c.expect_disconnect(Some(ReasonCode::SubscriptionIdentifiersNotSupported))
        .await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_9_3_subscription_quota_refused_with_0x97() {
    let broker = start_with(config(|c| {
        c.settings.limits.max_subscriptions_per_client = 1
    }))
    .await;
    let mut c = client(&broker, "c").await;
    assert_eq!(
        c.subscribe(1, "a", QoS::AtMostOnce).await.reason_codes,
        [ReasonCode::Success]
    );
    assert_eq!(
        c.subscribe(2, "b", QoS::AtMostOnce).await.reason_codes,
        [ReasonCode::QuotaExceeded]
    );
    // Replacing the held subscription is not a new one.
    assert_eq!(
        c.subscribe(3, "a", QoS::AtLeastOnce).await.reason_codes,
        [ReasonCode::GrantedQos1]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_9_3_filter_over_limits_refused_with_0x8f() {
    let broker = start_with(config(|c| c.settings.limits.max_topic_levels = 3)).await;
    let mut c = client(&broker, "c").await;
    let ack = c
        .subscribe_with(
            1,
            vec![
                ("a/b/c/d".into(), opts(QoS::AtMostOnce)),
                ("a/b/c".into(), opts(QoS::AtMostOnce)),
            ],
            SubscribeProperties::default(),
        )
        .await;
    assert_eq!(
        ack.reason_codes,
        [ReasonCode::TopicFilterInvalid, ReasonCode::Success]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_4_5_multiple_filters_handled_as_a_sequence() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    let ack = c
        .subscribe_with(
            1,
            vec![
                ("t".into(), opts(QoS::AtMostOnce)),
                ("t".into(), opts(QoS::AtLeastOnce)),
            ],
            SubscribeProperties::default(),
        )
        .await;
    assert_eq!(
        ack.reason_codes,
        [ReasonCode::Success, ReasonCode::GrantedQos1]
    );
    let mut p = client(&broker, "p").await;
    pub1(&mut p, "t", b"m", 1).await;
    assert_eq!(recv_acked(&mut c).await.qos, QoS::AtLeastOnce);
    c.expect_nothing().await;
    broker.shutdown().await;
}
