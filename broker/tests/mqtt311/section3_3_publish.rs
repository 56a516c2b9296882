//! Section 3.3 PUBLISH: DUP, QoS, RETAIN, topic names and the response a PUBLISH earns.

use bytes::Bytes;
use ferrumq_broker::codec::*;

use crate::support::*;
use crate::util::*;

#[tokio::test]
async fn mqtt_3_3_1_2_qos0_delivered_with_dup_0() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "dup0", QoS::ExactlyOnce).await;
    let mut p = connect(&broker, "p").await;
    p.publish("dup0", b"x", QoS::AtMostOnce, 0, false).await;
    let got = s.expect_publish().await;
    assert_eq!((got.qos, got.dup), (QoS::AtMostOnce, false));
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_3_incoming_dup_is_not_propagated() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "dup", QoS::ExactlyOnce).await;
    let mut p = connect(&broker, "p").await;
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        p.send(&Packet::Publish(Publish {
            dup: true,
            qos,
            topic: "dup".into(),
            packet_id: 3,
            payload: Bytes::from_static(b"resent"),
            ..Publish::default()
        }))
        .await;
        if qos == QoS::AtLeastOnce {
            assert_eq!(p.recv().await, Packet::PubAck(ack(3)));
        } else {
            assert_eq!(p.recv().await, Packet::PubRec(ack(3)));
            pubrel(&mut p, 3).await;
            assert_eq!(p.recv().await, Packet::PubComp(ack(3)));
        }
        let got = receive_acked(&mut s).await;
        assert!(
            !got.dup,
            "first delivery attempt to the subscriber has DUP 0"
        );
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_4_qos_3_closes() {
    let broker = start().await;
    let mut c = connect(&broker, "q3").await;
    let mut body = field(b"t");
    body.extend_from_slice(&[0, 1]);
    c.send_raw(&frame(0x36, &body)).await;
    expect_bare_close(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_5_retained_stored() {
    let broker = start().await;
    let mut p = connect(&broker, "p").await;
    publish_acked(&mut p, "ret/q1", b"stored", QoS::AtLeastOnce, 1, true).await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "ret/q1", QoS::ExactlyOnce).await;
    let got = receive_acked(&mut s).await;
    // Stored with its QoS: delivered at QoS 1 to a QoS 2 subscription.
    assert_eq!(
        (&got.payload[..], got.qos, got.retain),
        (&b"stored"[..], QoS::AtLeastOnce, true)
    );
    broker.shutdown().await;
}

/// `limits.maxRetainedMessages` with a 3.1.1 publisher, which no reason code can tell: a
/// retained message the full store refuses is still acknowledged and delivered to the
/// subscribers of the moment, and only the topic already stored is sent to a later one.
#[tokio::test]
async fn retained_message_beyond_the_limit_is_acknowledged_and_delivered_but_not_stored() {
    let mut config = test_config();
    config.settings.limits.max_retained_messages = 1;
    let broker = start_with(config).await;
    let mut live = connect(&broker, "live").await;
    sub(&mut live, 1, "cap/+", QoS::AtLeastOnce).await;
    let mut p = connect(&broker, "p").await;
    publish_acked(&mut p, "cap/a", b"kept", QoS::AtLeastOnce, 1, true).await;
    publish_acked(&mut p, "cap/b", b"not kept", QoS::AtLeastOnce, 2, true).await;
    let payloads = [
        receive_acked(&mut live).await,
        receive_acked(&mut live).await,
    ]
    .map(|got| got.payload);
    assert_eq!(payloads, [&b"kept"[..], &b"not kept"[..]]);
    let mut late = connect(&broker, "late").await;
    sub(&mut late, 1, "cap/+", QoS::AtLeastOnce).await;
    let got = receive_acked(&mut late).await;
    assert_eq!((&*got.topic, got.retain), ("cap/a", true));
    late.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_6_retained_sent_for_every_matching_topic() {
    let broker = start().await;
    let mut p = connect(&broker, "p").await;
    for (i, topic) in ["many/a", "many/b", "many/c/d"].into_iter().enumerate() {
        publish_acked(&mut p, topic, b"r", QoS::AtLeastOnce, i as u16 + 1, true).await;
    }
    publish_acked(&mut p, "other/a", b"r", QoS::AtLeastOnce, 9, true).await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "many/#", QoS::AtLeastOnce).await;
    let mut topics = Vec::new();
    for _ in 0..3 {
        let got = receive_acked(&mut s).await;
        assert!(got.retain);
        topics.push(got.topic.to_string());
    }
    topics.sort();
    assert_eq!(topics, ["many/a", "many/b", "many/c/d"]);
    s.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_7_retained_qos0_replaces_previous() {
    let broker = start().await;
    let mut p = connect(&broker, "p").await;
    publish_acked(&mut p, "ret/replace", b"old", QoS::AtLeastOnce, 1, true).await;
    publish_acked(&mut p, "ret/replace", b"new", QoS::AtMostOnce, 0, true).await;
    let mut s = connect(&broker, "s").await;
    expect_alive(&mut p).await; // the QoS 0 publish has been processed
    sub(&mut s, 1, "ret/replace", QoS::AtLeastOnce).await;
    let got = s.expect_publish().await;
    assert_eq!((&got.payload[..], got.qos), (&b"new"[..], QoS::AtMostOnce));
    s.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_8_retain_1_when_sent_for_a_new_subscription() {
    let broker = start().await;
    let mut p = connect(&broker, "p").await;
    publish_acked(&mut p, "ret/flag", b"r", QoS::AtMostOnce, 0, true).await;
    expect_alive(&mut p).await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "ret/+", QoS::AtMostOnce).await;
    assert!(s.expect_publish().await.retain);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_9_retain_0_for_an_established_subscription() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "ret/live", QoS::AtLeastOnce).await;
    let mut p = connect(&broker, "p").await;
    publish_acked(&mut p, "ret/live", b"r", QoS::AtLeastOnce, 1, true).await;
    let got = receive_acked(&mut s).await;
    assert!(!got.retain);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_10_empty_retained_deletes() {
    let broker = start().await;
    let mut p = connect(&broker, "p").await;
    publish_acked(&mut p, "ret/del", b"r", QoS::AtLeastOnce, 1, true).await;
    let mut live = connect(&broker, "live").await;
    sub(&mut live, 1, "ret/del", QoS::AtLeastOnce).await;
    assert_eq!(&receive_acked(&mut live).await.payload[..], b"r");
    publish_acked(&mut p, "ret/del", b"", QoS::AtLeastOnce, 2, true).await;
    // Delivered as normal to existing subscribers...
    let got = receive_acked(&mut live).await;
    assert!(got.payload.is_empty());
    // ...and no longer sent to new ones.
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "ret/del", QoS::AtLeastOnce).await;
    s.expect_nothing().await;
    assert_eq!(broker.broker.retained.read().len(), 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_11_empty_retained_not_stored() {
    let broker = start().await;
    let mut p = connect(&broker, "p").await;
    publish_acked(&mut p, "ret/empty", b"", QoS::AtLeastOnce, 1, true).await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "ret/empty", QoS::AtLeastOnce).await;
    s.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_1_12_non_retained_publish_leaves_retained() {
    let broker = start().await;
    let mut p = connect(&broker, "p").await;
    publish_acked(&mut p, "ret/keep", b"kept", QoS::AtLeastOnce, 1, true).await;
    publish_acked(&mut p, "ret/keep", b"passing", QoS::AtLeastOnce, 2, false).await;
    publish_acked(&mut p, "ret/keep", b"", QoS::AtLeastOnce, 3, false).await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "ret/keep", QoS::AtLeastOnce).await;
    assert_eq!(&receive_acked(&mut s).await.payload[..], b"kept");
    s.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_2_2_wildcard_in_topic_name_closes() {
    let broker = start().await;
    for topic in [&b"a/+"[..], b"#", b"a/#", b"+"] {
        let mut c = connect(&broker, "wild").await;
        c.send_raw(&raw_publish_qos0(topic, b"x")).await;
        expect_bare_close(&mut c).await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_2_3_topic_name_is_the_published_one() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "a/+/c", QoS::AtMostOnce).await;
    sub(&mut s, 2, "x/#", QoS::AtMostOnce).await;
    let mut p = connect(&broker, "p").await;
    p.publish("a/b/c", b"1", QoS::AtMostOnce, 0, false).await;
    assert_eq!(&*s.expect_publish().await.topic, "a/b/c");
    p.publish("x/y/z", b"2", QoS::AtMostOnce, 0, false).await;
    assert_eq!(&*s.expect_publish().await.topic, "x/y/z");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_4_1_response_by_qos() {
    let broker = start().await;
    let mut p = connect(&broker, "p").await;
    p.publish("resp", b"0", QoS::AtMostOnce, 0, false).await;
    p.publish("resp", b"1", QoS::AtLeastOnce, 11, false).await;
    assert_eq!(p.recv().await, Packet::PubAck(ack(11)));
    p.publish("resp", b"2", QoS::ExactlyOnce, 12, false).await;
    assert_eq!(p.recv().await, Packet::PubRec(ack(12)));
    pubrel(&mut p, 12).await;
    assert_eq!(p.recv().await, Packet::PubComp(ack(12)));
    p.expect_nothing().await; // QoS 0 got no answer
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_5_1_delivered_at_the_lower_of_published_and_granted_qos() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "min/1", QoS::AtLeastOnce).await;
    sub(&mut s, 2, "min/2", QoS::ExactlyOnce).await;
    sub(&mut s, 3, "min/0", QoS::AtMostOnce).await;
    let mut p = connect(&broker, "p").await;
    let cases = [
        ("min/1", QoS::ExactlyOnce, QoS::AtLeastOnce),
        ("min/2", QoS::AtMostOnce, QoS::AtMostOnce),
        ("min/2", QoS::AtLeastOnce, QoS::AtLeastOnce),
        ("min/0", QoS::ExactlyOnce, QoS::AtMostOnce),
    ];
    for (i, (topic, published, delivered)) in cases.into_iter().enumerate() {
        publish_acked(&mut p, topic, b"x", published, i as u16 + 1, false).await;
        assert_eq!(
            receive_acked(&mut s).await.qos,
            delivered,
            "{topic} at {published:?}"
        );
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_5_2_unauthorized_publish_acked_or_closed() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "$SYS/#", QoS::ExactlyOnce).await;
    let mut p = connect(&broker, "p").await;
    // Clients may not publish to $SYS: the broker must answer per QoS or close, never hang.
    p.publish("$SYS/fake", b"x", QoS::AtLeastOnce, 1, false)
        .await;
    match p.recv_within(WAIT).await {
        Received::Packet(Packet::PubAck(a)) => {
            assert_eq!(a.packet_id, 1);
            p.publish("$SYS/fake", b"x", QoS::ExactlyOnce, 2, false)
                .await;
            assert_eq!(p.recv().await, Packet::PubRec(ack(2)));
            pubrel(&mut p, 2).await;
            assert_eq!(p.recv().await, Packet::PubComp(ack(2)));
        }
        Received::Closed => {}
        other => panic!("expected PUBACK or a close, got {other:?}"),
    }
    s.expect_nothing().await;
    broker.shutdown().await;
}
