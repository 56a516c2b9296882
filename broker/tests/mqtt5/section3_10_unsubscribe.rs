//! Sections 3.10 and 3.11: UNSUBSCRIBE and UNSUBACK.

use super::common::*;

#[tokio::test]
async fn mqtt_3_10_4_1_unsubscribe_matches_filters_character_by_character() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    subscribe_opts(&mut c, 1, "a/+", opts(QoS::AtMostOnce), Some(1)).await;
    subscribe_opts(&mut c, 2, "a/b", opts(QoS::AtMostOnce), Some(2)).await;
    // "a/#" would match the same topics but is not a held filter.
    let ack = unsubscribe(&mut c, 3, &["a/#"]).await;
    assert_eq!(ack.reason_codes, [ReasonCode::NoSubscriptionExisted]);
    let ack = unsubscribe(&mut c, 4, &["a/+"]).await;
    assert_eq!(ack.reason_codes, [ReasonCode::Success]);
    let mut p = client(&broker, "p").await;
    pub0(&mut p, "a/b", b"m").await;
    assert_eq!(sub_ids(&c.expect_publish().await), [2]);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_10_4_2_no_new_messages_after_unsubscribe() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    c.subscribe(1, "t", QoS::AtLeastOnce).await;
    unsubscribe(&mut c, 2, &["t"]).await;
    let mut p = client(&broker, "p").await;
    pub1(&mut p, "t", b"m", 1).await;
    c.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_10_4_3_delivery_in_flight_completes_after_unsubscribe() {
    let broker = start().await;
    let (mut c, _) = session_client(&broker, "c", true, 60).await;
    c.subscribe(1, "t", QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    pub1(&mut p, "t", b"m", 1).await;
    let first = c.expect_publish().await;
    unsubscribe(&mut c, 2, &["t"]).await;
    c.disconnect().await;
    // The unacknowledged delivery is still owed to the client.
    let (mut c, present) = session_client(&broker, "c", false, 60).await;
    assert!(present);
    let again = c.expect_publish().await;
    assert_eq!((again.packet_id, again.dup), (first.packet_id, true));
    c.send(&puback(again.packet_id)).await;
    c.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_10_4_5_unsuback_sent_even_when_nothing_was_deleted() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    let ack = unsubscribe(&mut c, 0x0101, &["never/subscribed"]).await;
    assert_eq!(ack.packet_id, 0x0101, "[MQTT-3.10.4-4]");
    assert_eq!(ack.reason_codes, [ReasonCode::NoSubscriptionExisted]);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_11_3_1_one_reason_code_per_filter_in_order() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    c.subscribe(1, "a", QoS::AtMostOnce).await;
    c.subscribe(2, "c", QoS::AtMostOnce).await;
    let ack = unsubscribe(&mut c, 3, &["a", "b", "c", "a"]).await;
    assert_eq!(
        ack.reason_codes,
        [
            ReasonCode::Success,
            ReasonCode::NoSubscriptionExisted,
            ReasonCode::Success,
            ReasonCode::NoSubscriptionExisted,
        ],
        "handled as a sequence [MQTT-3.10.4-6]"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_10_4_1_unsubscribe_shared_subscription() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    c.subscribe(1, "$share/g/t", QoS::AtMostOnce).await;
    let ack = unsubscribe(&mut c, 2, &["$share/g/t", "$share/other/t"]).await;
    assert_eq!(
        ack.reason_codes,
        [ReasonCode::Success, ReasonCode::NoSubscriptionExisted]
    );
    let mut p = client(&broker, "p").await;
    pub0(&mut p, "t", b"m").await;
    c.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_10_3_unsubscribe_without_filters_is_an_error() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    c.send_raw(&[0xA2, 3, 0, 1, 0]).await;
    let d = expect_disconnect_packet(&mut c).await;
    assert!(d.reason_code.is_error(), "{:?}", d.reason_code);
    broker.shutdown().await;
}
