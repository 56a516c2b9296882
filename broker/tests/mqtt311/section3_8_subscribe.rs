//! Sections 3.6 (PUBREL flags), 3.8 SUBSCRIBE and 3.9 SUBACK.

use ferrumq_broker::codec::*;

use crate::support::*;
use crate::util::*;

/// SUBSCRIBE body: packet id 1 and (filter, options byte) pairs.
fn subscribe_body(filters: &[(&[u8], u8)]) -> Vec<u8> {
    let mut body = vec![0, 1];
    for (filter, options) in filters {
        body.extend(field(filter));
        body.push(*options);
    }
    body
}

#[tokio::test]
async fn mqtt_3_6_1_1_pubrel_with_bad_flags_closes() {
    let broker = start().await;
    let mut p = connect(&broker, "p").await;
    p.publish("rel", b"x", QoS::ExactlyOnce, 1, false).await;
    assert_eq!(p.recv().await, Packet::PubRec(ack(1)));
    p.send_raw(&frame(0x60, &[0, 1])).await; // flags 0000 instead of 0010
    expect_bare_close(&mut p).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_1_1_subscribe_with_bad_flags_closes() {
    let broker = start().await;
    for first in [0x80u8, 0x81, 0x83, 0x8A] {
        let mut c = connect(&broker, "flags").await;
        c.send_raw(&frame(first, &subscribe_body(&[(b"a", 0)])))
            .await;
        expect_bare_close(&mut c).await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_3_2_wildcards_rejected_when_not_supported() {
    let mut config = test_config();
    config.settings.features.wildcard_subscription_available = false;
    let broker = start_with(config).await;
    let mut c = connect(&broker, "nowild").await;
    let ack = c
        .subscribe_with(
            1,
            vec![
                ("a/+".into(), Default::default()),
                ("a/b".into(), Default::default()),
                ("#".into(), Default::default()),
            ],
            Default::default(),
        )
        .await;
    assert_eq!(
        ack.reason_codes,
        vec![
            ReasonCode::UnspecifiedError,
            ReasonCode::Success,
            ReasonCode::UnspecifiedError
        ]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_3_3_subscribe_without_filters_closes() {
    let broker = start().await;
    let mut c = connect(&broker, "empty").await;
    c.send_raw(&frame(0x82, &[0, 1])).await;
    expect_bare_close(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_3_4_reserved_bits_or_qos_3_in_options_close() {
    let broker = start().await;
    for options in [0x03u8, 0x04, 0x80, 0xFC] {
        let mut c = connect(&broker, "opts").await;
        c.send_raw(&frame(0x82, &subscribe_body(&[(b"a", options)])))
            .await;
        expect_bare_close(&mut c).await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_4_1_suback_with_the_same_packet_id() {
    let broker = start().await;
    let mut c = connect(&broker, "ids").await;
    for id in [1u16, 2, 0x1234, u16::MAX] {
        // RawClient::subscribe asserts SUBACK carries the same packet id.
        c.subscribe(id, "ids/t", QoS::AtLeastOnce).await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_4_3_resubscribe_replaces_and_resends_retained() {
    let broker = start().await;
    let mut p = connect(&broker, "p").await;
    publish_acked(&mut p, "re/t", b"r", QoS::AtLeastOnce, 1, true).await;
    let mut s = connect(&broker, "s").await;
    assert_eq!(
        sub(&mut s, 1, "re/t", QoS::AtLeastOnce).await,
        ReasonCode::GrantedQos1
    );
    assert!(receive_acked(&mut s).await.retain);
    assert_eq!(
        sub(&mut s, 2, "re/t", QoS::AtMostOnce).await,
        ReasonCode::Success
    );
    // Retained messages are re-sent, at the new QoS.
    let got = s.expect_publish().await;
    assert_eq!((got.retain, got.qos), (true, QoS::AtMostOnce));
    // One subscription, replaced: one delivery at the new QoS.
    publish_acked(&mut p, "re/t", b"live", QoS::AtLeastOnce, 2, false).await;
    let got = s.expect_publish().await;
    assert_eq!((&got.payload[..], got.qos), (&b"live"[..], QoS::AtMostOnce));
    s.expect_nothing().await;
    assert_eq!(broker.broker.router.read().len(), 1);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_4_4_multiple_filters_one_suback() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    let ack = s
        .subscribe_with(
            9,
            vec![
                (
                    "m/a".into(),
                    SubscriptionOptions {
                        qos: QoS::AtMostOnce,
                        ..Default::default()
                    },
                ),
                (
                    "m/b".into(),
                    SubscriptionOptions {
                        qos: QoS::AtLeastOnce,
                        ..Default::default()
                    },
                ),
                (
                    "m/c".into(),
                    SubscriptionOptions {
                        qos: QoS::ExactlyOnce,
                        ..Default::default()
                    },
                ),
            ],
            Default::default(),
        )
        .await;
    assert_eq!(ack.reason_codes.len(), 3);
    s.expect_nothing().await; // exactly one SUBACK
    let mut p = connect(&broker, "p").await;
    for topic in ["m/a", "m/b", "m/c"] {
        p.publish(topic, b"x", QoS::AtMostOnce, 0, false).await;
        assert_eq!(&*s.expect_publish().await.topic, topic);
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_4_5_return_codes_in_order() {
    let mut config = test_config();
    config.settings.limits.max_topic_levels = 3;
    config.settings.features.maximum_qos = 1;
    let broker = start_with(config).await;
    let mut s = connect(&broker, "s").await;
    let opts = |qos| SubscriptionOptions {
        qos,
        ..Default::default()
    };
    let ack = s
        .subscribe_with(
            3,
            vec![
                ("o/1".into(), opts(QoS::AtLeastOnce)),
                ("o/too/many/levels".into(), opts(QoS::AtMostOnce)),
                ("o/2".into(), opts(QoS::ExactlyOnce)),
                ("o/0".into(), opts(QoS::AtMostOnce)),
            ],
            Default::default(),
        )
        .await;
    assert_eq!(
        ack.reason_codes,
        vec![
            ReasonCode::GrantedQos1,
            ReasonCode::UnspecifiedError, // 0x80 Failure
            ReasonCode::GrantedQos1,      // granted lower than requested [MQTT-3.8.4-6]
            ReasonCode::Success,
        ]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_4_5_overlapping_max_qos() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "ov/#", QoS::AtMostOnce).await;
    sub(&mut s, 2, "ov/a", QoS::ExactlyOnce).await;
    sub(&mut s, 3, "+/a", QoS::AtLeastOnce).await;
    let mut p = connect(&broker, "p").await;
    publish_acked(&mut p, "ov/a", b"once", QoS::ExactlyOnce, 1, false).await;
    // 3.1.1: one delivery, at the highest QoS of the matching subscriptions.
    let got = receive_acked(&mut s).await;
    assert_eq!(
        (&got.payload[..], got.qos),
        (&b"once"[..], QoS::ExactlyOnce)
    );
    s.expect_nothing().await;
    publish_acked(&mut p, "ov/a", b"q1", QoS::AtLeastOnce, 2, false).await;
    assert_eq!(receive_acked(&mut s).await.qos, QoS::AtLeastOnce);
    s.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_8_4_6_granted_qos_may_be_lower() {
    let mut config = test_config();
    config.settings.features.maximum_qos = 1;
    let broker = start_with(config).await;
    let mut s = connect(&broker, "s").await;
    assert_eq!(
        sub(&mut s, 1, "low", QoS::ExactlyOnce).await,
        ReasonCode::GrantedQos1
    );
    let mut p = connect(&broker, "p").await;
    publish_acked(&mut p, "low", b"x", QoS::AtLeastOnce, 1, false).await;
    assert_eq!(receive_acked(&mut s).await.qos, QoS::AtLeastOnce);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_9_3_1_failure_0x80_for_a_refused_subscription() {
    let mut config = test_config();
    config.settings.limits.max_subscriptions_per_client = 2;
    let broker = start_with(config).await;
    let mut s = connect(&broker, "s").await;
    assert_eq!(
        sub(&mut s, 1, "q/1", QoS::AtMostOnce).await,
        ReasonCode::Success
    );
    assert_eq!(
        sub(&mut s, 2, "q/2", QoS::AtLeastOnce).await,
        ReasonCode::GrantedQos1
    );
    // The raw byte on the wire is 0x80; the codec decodes it as UnspecifiedError.
    assert_eq!(
        sub(&mut s, 3, "q/3", QoS::AtMostOnce).await,
        ReasonCode::UnspecifiedError
    );
    // Replacing an existing subscription is not a new one.
    assert_eq!(
        sub(&mut s, 4, "q/1", QoS::ExactlyOnce).await,
        ReasonCode::GrantedQos2
    );
    // The refused filter gets nothing.
    let mut p = connect(&broker, "p").await;
    p.publish("q/3", b"x", QoS::AtMostOnce, 0, false).await;
    s.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_9_3_2_only_defined_return_codes() {
    let broker = start().await;
    let mut c = RawClient::open(&broker, V4).await;
    c.send_raw(&raw_connect_v4("codes")).await;
    // Read the raw bytes of CONNACK + SUBACK: return codes must be 0x00, 0x01, 0x02 or 0x80.
    let mut body = subscribe_body(&[(b"c/0", 0), (b"c/1", 1), (b"c/2", 2)]);
    body[1] = 5;
    c.send_raw(&frame(0x82, &body)).await;
    use tokio::io::AsyncReadExt;
    let mut bytes = vec![0u8; 4 + 7];
    tokio::time::timeout(WAIT, c.stream.read_exact(&mut bytes))
        .await
        .expect("CONNACK and SUBACK in time")
        .unwrap();
    assert_eq!(&bytes[..4], &[0x20, 2, 0, 0]);
    assert_eq!(&bytes[4..], &[0x90, 5, 0, 5, 0, 1, 2]);
    broker.shutdown().await;
}
