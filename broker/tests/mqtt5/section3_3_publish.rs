//! Section 3.3: PUBLISH. Flags, retained messages, properties forwarded, message expiry and
//! subscription identifiers on delivery.

use std::time::Duration;

use super::common::*;

#[tokio::test]
async fn mqtt_3_3_1_3_outgoing_dup_set_independently_of_incoming() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "t", QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    let mut msg = publish("t", b"m", QoS::AtLeastOnce, 1);
    msg.dup = true;
    pub1_with(&mut p, msg).await;
    let got = sub.expect_publish().await;
    assert!(!got.dup, "first transmission to the subscriber");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_5_retained_message_stored_and_replaced() {
    let broker = start().await;
    let mut p = client(&broker, "p").await;
    retain(&mut p, "r/t", b"first", 1).await;
    retain(&mut p, "r/t", b"second", 2).await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "r/t", QoS::AtLeastOnce).await;
    let got = sub.expect_publish().await;
    assert_eq!(&got.payload[..], b"second");
    sub.send(&puback(got.packet_id)).await;
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_6_empty_retained_payload_clears_and_is_delivered() {
    let broker = start().await;
    let mut p = client(&broker, "p").await;
    retain(&mut p, "r/t", b"value", 1).await;
    let mut live = client(&broker, "live").await;
    subscribe_opts(
        &mut live,
        1,
        "r/t",
        SubscriptionOptions {
            retain_handling: RetainHandling::DoNotSend,
            ..opts(QoS::AtLeastOnce)
        },
        None,
    )
    .await;
    retain(&mut p, "r/t", b"", 2).await;
    // Processed normally for current subscribers.
    let got = recv_acked(&mut live).await;
    assert!(got.payload.is_empty());
    // ...but neither it nor the old value is stored [MQTT-3.3.1-7].
    let mut late = client(&broker, "late").await;
    late.subscribe(1, "r/t", QoS::AtLeastOnce).await;
    late.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_8_non_retained_publish_leaves_retained_message() {
    let broker = start().await;
    let mut p = client(&broker, "p").await;
    retain(&mut p, "r/t", b"kept", 1).await;
    pub1(&mut p, "r/t", b"transient", 2).await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "r/t", QoS::AtLeastOnce).await;
    let got = sub.expect_publish().await;
    assert_eq!(&got.payload[..], b"kept");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_9_retained_on_subscribe_has_retain_set() {
    let broker = start().await;
    let mut p = client(&broker, "p").await;
    retain(&mut p, "r/a", b"a", 1).await;
    retain(&mut p, "r/b", b"b", 2).await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "r/+", QoS::AtLeastOnce).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        let m = recv_acked(&mut sub).await;
        assert!(
            m.retain,
            "retained messages sent on subscribe have RETAIN 1"
        );
        got.push(m.payload);
    }
    got.sort();
    assert_eq!(got, [&b"a"[..], &b"b"[..]]);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_10_retain_handling_1_sends_only_for_new_subscription() {
    let broker = start().await;
    let mut p = client(&broker, "p").await;
    retain(&mut p, "r/t", b"v", 1).await;
    let mut sub = client(&broker, "sub").await;
    let o = SubscriptionOptions {
        retain_handling: RetainHandling::SendIfNew,
        ..opts(QoS::AtLeastOnce)
    };
    subscribe_opts(&mut sub, 1, "r/t", o, None).await;
    assert!(recv_acked(&mut sub).await.retain);
    subscribe_opts(&mut sub, 2, "r/t", o, None).await;
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_11_retain_handling_2_never_sends_retained() {
    let broker = start().await;
    let mut p = client(&broker, "p").await;
    retain(&mut p, "r/t", b"v", 1).await;
    let mut sub = client(&broker, "sub").await;
    let o = SubscriptionOptions {
        retain_handling: RetainHandling::DoNotSend,
        ..opts(QoS::AtLeastOnce)
    };
    subscribe_opts(&mut sub, 1, "r/t", o, None).await;
    sub.expect_nothing().await;
    // Live messages still flow.
    pub1(&mut p, "r/t", b"live", 2).await;
    assert_eq!(&sub.expect_publish().await.payload[..], b"live");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_9_retain_handling_0_resends_on_every_subscribe() {
    let broker = start().await;
    let mut p = client(&broker, "p").await;
    retain(&mut p, "r/t", b"v", 1).await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "r/t", QoS::AtLeastOnce).await;
    assert!(recv_acked(&mut sub).await.retain);
    sub.subscribe(2, "r/t", QoS::AtLeastOnce).await;
    assert!(recv_acked(&mut sub).await.retain, "[MQTT-3.8.4-4]");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_12_retain_cleared_on_forward_without_retain_as_published() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "r/t", QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    retain(&mut p, "r/t", b"v", 1).await;
    assert!(!sub.expect_publish().await.retain);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_13_retain_as_published_keeps_flag() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    let o = SubscriptionOptions {
        retain_as_published: true,
        ..opts(QoS::AtLeastOnce)
    };
    subscribe_opts(&mut sub, 1, "r/t", o, None).await;
    let mut p = client(&broker, "p").await;
    retain(&mut p, "r/t", b"v", 1).await;
    assert!(recv_acked(&mut sub).await.retain);
    pub1(&mut p, "r/t", b"plain", 2).await;
    assert!(!recv_acked(&mut sub).await.retain);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_retain_refused_with_0x9a_when_unavailable() {
    let broker = start_with(config(|c| c.settings.features.retain_available = false)).await;
    let mut p = client(&broker, "p").await;
    let mut m = publish("t", b"v", QoS::AtMostOnce, 0);
    m.retain = true;
    p.send(&Packet::Publish(m)).await;
    p.expect_disconnect(Some(ReasonCode::RetainNotSupported))
        .await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_2_3_delivered_topic_is_the_published_topic() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "a/+/c", QoS::AtMostOnce).await;
    let mut p = client(&broker, "p").await;
    pub0(&mut p, "a/b/c", b"m").await;
    assert_eq!(&*sub.expect_publish().await.topic, "a/b/c");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_2_4_publish_properties_forwarded_unaltered() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "t", QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    let mut m = publish("t", b"text", QoS::AtLeastOnce, 1);
    m.properties.payload_format_indicator = Some(true);
    m.properties.content_type = Some("application/json".into()); // [MQTT-3.3.2-20]
    m.properties.response_topic = Some("reply/to".into()); // [MQTT-3.3.2-15]
    m.properties.correlation_data = Some(Bytes::from_static(b"\x00\x01")); // [MQTT-3.3.2-16]
    pub1_with(&mut p, m).await;
    let got = sub.expect_publish().await.properties;
    assert_eq!(got.payload_format_indicator, Some(true));
    assert_eq!(got.content_type.as_deref(), Some("application/json"));
    assert_eq!(got.response_topic.as_deref(), Some("reply/to"));
    assert_eq!(got.correlation_data.as_deref(), Some(&b"\x00\x01"[..]));
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_2_17_user_properties_forwarded_in_order() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "t", QoS::AtMostOnce).await;
    let mut p = client(&broker, "p").await;
    let mut m = publish("t", b"x", QoS::AtMostOnce, 0);
    m.properties.user_properties = user_props(&[("k", "1"), ("a", "2"), ("k", "3")]);
    p.send(&Packet::Publish(m)).await;
    let got = sub.expect_publish().await;
    let pairs: Vec<_> = got.properties.user_properties.iter().collect();
    assert_eq!(
        pairs,
        [("k", "1"), ("a", "2"), ("k", "3")],
        "[MQTT-3.3.2-18]"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_2_6_expiry_forwarded_as_remaining_interval() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "t", QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    let mut m = publish("t", b"x", QoS::AtLeastOnce, 1);
    m.properties.message_expiry_interval = Some(100);
    pub1_with(&mut p, m).await;
    let got = sub.expect_publish().await;
    let left = got.properties.message_expiry_interval.expect("expiry");
    assert!((99..=100).contains(&left), "{left}");
    // No expiry in, no expiry out.
    pub1(&mut p, "t", b"y", 2).await;
    assert_eq!(
        sub.expect_publish()
            .await
            .properties
            .message_expiry_interval,
        None
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_2_5_expired_messages_are_not_delivered() {
    let broker = start().await;
    let (mut sub, _) = session_client(&broker, "sub", true, 60).await;
    sub.subscribe(1, "t", QoS::AtLeastOnce).await;
    sub.disconnect().await;
    let mut p = client(&broker, "p").await;
    let mut short = publish("t", b"short", QoS::AtLeastOnce, 1);
    short.properties.message_expiry_interval = Some(1);
    pub1_with(&mut p, short).await;
    let mut long = publish("t", b"long", QoS::AtLeastOnce, 2);
    long.properties.message_expiry_interval = Some(10);
    pub1_with(&mut p, long).await;
    // A retained message with an expiry expires from the store too.
    let mut kept = publish("r/t", b"retained", QoS::AtLeastOnce, 3);
    kept.retain = true;
    kept.properties.message_expiry_interval = Some(1);
    pub1_with(&mut p, kept).await;

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (mut sub, present) = session_client(&broker, "sub", false, 60).await;
    assert!(present);
    let got = sub.expect_publish().await;
    assert_eq!(&got.payload[..], b"long", "the expired message was dropped");
    let left = got.properties.message_expiry_interval.unwrap();
    assert!(left <= 8, "waiting time is subtracted: {left}");
    sub.send(&puback(got.packet_id)).await;
    sub.subscribe(2, "r/t", QoS::AtLeastOnce).await;
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_2_2_wildcard_in_topic_name_is_an_error() {
    let broker = start().await;
    let mut p = client(&broker, "p").await;
    p.send(&Packet::Publish(publish("a/+", b"x", QoS::AtMostOnce, 0)))
        .await;
    let d = expect_disconnect_packet(&mut p).await;
    assert!(
        matches!(
            d.reason_code,
            ReasonCode::TopicNameInvalid | ReasonCode::MalformedPacket | ReasonCode::ProtocolError
        ),
        "{:?}",
        d.reason_code
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_4_6_subscription_identifier_from_client_is_protocol_error() {
    let broker = start().await;
    let mut p = client(&broker, "p").await;
    let mut m = publish("t", b"x", QoS::AtMostOnce, 0);
    m.properties.subscription_identifiers.push(5);
    p.send(&Packet::Publish(m)).await;
    p.expect_disconnect(Some(ReasonCode::ProtocolError)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_4_3_subscription_identifier_on_delivery() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    subscribe_opts(&mut sub, 1, "a/b", opts(QoS::AtMostOnce), Some(7)).await;
    subscribe_opts(&mut sub, 2, "x/y", opts(QoS::AtMostOnce), None).await;
    let mut p = client(&broker, "p").await;
    pub0(&mut p, "a/b", b"1").await;
    assert_eq!(sub_ids(&sub.expect_publish().await), [7]);
    pub0(&mut p, "x/y", b"2").await;
    assert_eq!(sub_ids(&sub.expect_publish().await), Vec::<u32>::new());
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_4_3_overlapping_subscriptions_one_delivery_with_all_identifiers() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    subscribe_opts(&mut sub, 1, "a/+", opts(QoS::AtMostOnce), Some(1)).await;
    subscribe_opts(&mut sub, 2, "a/#", opts(QoS::AtMostOnce), Some(2)).await;
    subscribe_opts(&mut sub, 3, "a/b", opts(QoS::AtMostOnce), Some(3)).await;
    let mut p = client(&broker, "p").await;
    pub0(&mut p, "a/b", b"m").await;
    assert_eq!(sub_ids(&sub.expect_publish().await), [1, 2, 3]);
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_4_2_overlapping_subscriptions_use_maximum_qos() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "a/+", QoS::AtMostOnce).await;
    sub.subscribe(2, "a/#", QoS::ExactlyOnce).await;
    sub.subscribe(3, "a/b", QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    pub2(&mut p, "a/b", b"m", 1).await;
    let got = recv_acked(&mut sub).await;
    assert_eq!(got.qos, QoS::ExactlyOnce);
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_4_3_retained_delivery_carries_subscription_identifier() {
    let broker = start().await;
    let mut p = client(&broker, "p").await;
    retain(&mut p, "r/t", b"v", 1).await;
    let mut sub = client(&broker, "sub").await;
    subscribe_opts(&mut sub, 1, "r/#", opts(QoS::AtLeastOnce), Some(42)).await;
    let got = sub.expect_publish().await;
    assert!(got.retain);
    assert_eq!(sub_ids(&got), [42]);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_4_1_publish_acknowledged_per_qos() {
    let broker = start().await;
    let mut p = client(&broker, "p").await;
    // QoS 0: nothing back.
    pub0(&mut p, "t", b"0").await;
    p.expect_nothing().await;
    // QoS 1: PUBACK; QoS 2: PUBREC, PUBREL, PUBCOMP (helpers assert the packet ids).
    assert!(!pub1(&mut p, "t", b"1", 10).await.is_error());
    assert!(!pub2(&mut p, "t", b"2", 11).await.is_error());
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_2_payload_format_invalid_is_refused_or_forwarded_intact() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "t", QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    let mut m = publish("t", b"\xff\xfe", QoS::AtLeastOnce, 1);
    m.properties.payload_format_indicator = Some(true);
    let code = pub1_with(&mut p, m).await;
    if code == ReasonCode::PayloadFormatInvalid {
        sub.expect_nothing().await;
    } else {
        assert_eq!(&sub.expect_publish().await.payload[..], b"\xff\xfe");
    }
    broker.shutdown().await;
}

fn retained_publish(topic: &str, payload: &'static [u8], id: u16) -> Publish {
    Publish {
        retain: true,
        ..publish(topic, payload, QoS::AtLeastOnce, id)
    }
}

/// `limits.maxRetainedMessages`: a retained PUBLISH to a new topic beyond it still reaches
/// the current subscribers but is not stored, and the 5.0 publisher is told with 0x97 (Quota
/// exceeded); replacing a stored message and deleting one still work.
#[tokio::test]
async fn retained_messages_beyond_the_limit_are_delivered_not_stored_and_refused_with_0x97() {
    let broker = start_with(config(|c| c.settings.limits.max_retained_messages = 1)).await;
    let mut live = client(&broker, "live").await;
    live.subscribe(1, "r/+", QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    let sent = pub1_with(&mut p, retained_publish("r/a", b"one", 1)).await;
    assert_eq!(sent, ReasonCode::Success);
    let refused = pub1_with(&mut p, retained_publish("r/b", b"two", 2)).await;
    assert_eq!(refused, ReasonCode::QuotaExceeded);
    assert_eq!(recv_payloads(&mut live, 2).await, ["one", "two"]);
    let replaced = pub1_with(&mut p, retained_publish("r/a", b"uno", 3)).await;
    assert_eq!(replaced, ReasonCode::Success);
    assert_eq!(recv_payloads(&mut live, 1).await, ["uno"]);

    let mut late = client(&broker, "late").await;
    late.subscribe(1, "r/+", QoS::AtLeastOnce).await;
    let got = recv_acked(&mut late).await;
    assert_eq!((&*got.topic, &got.payload[..]), ("r/a", &b"uno"[..]));
    late.expect_nothing().await;

    // Deleting r/a makes room for r/b.
    pub1_with(&mut p, retained_publish("r/a", b"", 4)).await;
    let stored = pub1_with(&mut p, retained_publish("r/b", b"two", 5)).await;
    assert_eq!(stored, ReasonCode::Success);
    let stats = &broker.broker.stats;
    assert_eq!(stats.retain_refused_count("messages"), 1);
    assert_eq!(stats.retain_refused_count("bytes"), 0);
    broker.shutdown().await;
}

/// `limits.maxRetainedBytes` counts topic and payload bytes; a message that would go past it
/// is refused the same way, and one that fits in place of the topic's old message is not.
#[tokio::test]
async fn retained_bytes_beyond_the_limit_are_refused_with_0x97() {
    let broker = start_with(config(|c| c.settings.limits.max_retained_bytes = 10)).await;
    let mut p = client(&broker, "p").await;
    // "r/a" + "one": 6 bytes.
    let first = pub1_with(&mut p, retained_publish("r/a", b"one", 1)).await;
    assert_eq!(first, ReasonCode::NoMatchingSubscribers);
    let too_many = pub1_with(&mut p, retained_publish("r/b", b"two", 2)).await;
    assert_eq!(too_many, ReasonCode::QuotaExceeded);
    // 3 + 7 = 10 bytes in place of the old 6: fits.
    let replaced = pub1_with(&mut p, retained_publish("r/a", b"seven!!", 3)).await;
    assert_eq!(replaced, ReasonCode::NoMatchingSubscribers);
    assert_eq!(broker.broker.stats.retain_refused_count("bytes"), 1);
    assert_eq!(broker.broker.retained.read().bytes(), 10);
    broker.shutdown().await;
}

/// The PUBLISH packets of one read are decoded into one reused `Publish`: nothing of one may
/// leak into the next. Three packets in one write: properties and a Topic Alias, then none,
/// then the alias alone; each arrives as sent.
#[tokio::test]
async fn publishes_read_together_keep_their_own_properties() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "read/+", QoS::AtMostOnce).await;
    let mut p = client(&broker, "p").await;
    let mut first = publish("read/a", b"1", QoS::AtMostOnce, 0);
    first.properties.content_type = Some("text/plain".into());
    first.properties.user_properties = user_props(&[("k", "v")]);
    first.properties.topic_alias = Some(1);
    let second = publish("read/b", b"2", QoS::AtMostOnce, 0);
    let mut third = publish("", b"3", QoS::AtMostOnce, 0);
    third.properties.topic_alias = Some(1);
    let mut bytes = bytes::BytesMut::new();
    for m in [first, second, third] {
        encode(&Packet::Publish(m), ProtocolVersion::V5, &mut bytes).unwrap();
    }
    p.send_raw(&bytes).await;
    let got: Vec<Publish> = vec![
        sub.expect_publish().await,
        sub.expect_publish().await,
        sub.expect_publish().await,
    ];
    let seen: Vec<(&str, &[u8], Option<&str>, bool)> = got
        .iter()
        .map(|m| {
            (
                &*m.topic,
                &m.payload[..],
                m.properties.content_type.as_deref(),
                m.properties.user_properties.is_empty(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("read/a", &b"1"[..], Some("text/plain"), false),
            ("read/b", &b"2"[..], None, true),
            ("read/a", &b"3"[..], None, true),
        ]
    );
    broker.shutdown().await;
}
