//! Section 3.10 UNSUBSCRIBE and 3.11 UNSUBACK.

use ferrumq_broker::codec::*;

use crate::support::*;
use crate::util::*;

async fn unsubscribe(c: &mut RawClient, packet_id: u16, filters: &[&str]) {
    c.send(&Packet::Unsubscribe(Unsubscribe {
        packet_id,
        properties: Default::default(),
        filters: filters.iter().map(|f| (*f).into()).collect(),
    }))
    .await;
    match c.recv().await {
        Packet::UnsubAck(ack) => assert_eq!(ack.packet_id, packet_id),
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
}

#[tokio::test]
async fn mqtt_3_10_1_1_unsubscribe_with_bad_flags_closes() {
    let broker = start().await;
    let mut c = connect(&broker, "u").await;
    let mut body = vec![0, 1];
    body.extend(field(b"a"));
    c.send_raw(&frame(0xA0, &body)).await;
    expect_bare_close(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_10_3_2_unsubscribe_without_filters_closes() {
    let broker = start().await;
    let mut c = connect(&broker, "u").await;
    c.send_raw(&frame(0xA2, &[0, 1])).await;
    expect_bare_close(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_10_4_1_only_the_identical_filter_is_deleted() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "u/+", QoS::AtMostOnce).await;
    // Matches u/+ as a topic would, but is not the same filter: nothing is deleted.
    unsubscribe(&mut s, 2, &["u/b"]).await;
    unsubscribe(&mut s, 3, &["U/+"]).await;
    let mut p = connect(&broker, "p").await;
    p.publish("u/b", b"still", QoS::AtMostOnce, 0, false).await;
    assert_eq!(&s.expect_publish().await.payload[..], b"still");
    unsubscribe(&mut s, 4, &["u/+"]).await;
    p.publish("u/b", b"gone", QoS::AtMostOnce, 0, false).await;
    s.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_10_4_2_no_new_messages_after_unsubscribe() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "u/t", QoS::AtLeastOnce).await;
    unsubscribe(&mut s, 2, &["u/t"]).await;
    let mut p = connect(&broker, "p").await;
    publish_acked(&mut p, "u/t", b"x", QoS::AtLeastOnce, 1, false).await;
    s.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_10_4_3_started_qos2_delivery_completes_after_unsubscribe() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "u/q2", QoS::ExactlyOnce).await;
    let mut p = connect(&broker, "p").await;
    publish_acked(&mut p, "u/q2", b"x", QoS::ExactlyOnce, 1, false).await;
    let got = s.expect_publish().await;
    unsubscribe(&mut s, 2, &["u/q2"]).await;
    pubrec(&mut s, got.packet_id).await;
    assert_eq!(s.recv().await, Packet::PubRel(ack(got.packet_id)));
    pubcomp(&mut s, got.packet_id).await;
    s.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_10_4_4_unsuback_with_the_same_packet_id() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "u/id", QoS::AtMostOnce).await;
    for id in [7u16, 0xBEEF, u16::MAX] {
        unsubscribe(&mut s, id, &["u/id"]).await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_10_4_5_unsuback_even_without_match() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    unsubscribe(&mut s, 1, &["never/subscribed"]).await;
    unsubscribe(&mut s, 2, &["#", "+/+"]).await;
    expect_alive(&mut s).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_10_4_6_multiple_filters_one_unsuback() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "m/a", QoS::AtMostOnce).await;
    sub(&mut s, 2, "m/b", QoS::AtMostOnce).await;
    sub(&mut s, 3, "m/c", QoS::AtMostOnce).await;
    unsubscribe(&mut s, 4, &["m/a", "m/c", "m/none"]).await;
    s.expect_nothing().await; // one UNSUBACK only
    let mut p = connect(&broker, "p").await;
    for topic in ["m/a", "m/b", "m/c"] {
        p.publish(topic, b"x", QoS::AtMostOnce, 0, false).await;
    }
    assert_eq!(&*s.expect_publish().await.topic, "m/b");
    s.expect_nothing().await;
    broker.shutdown().await;
}
