//! Section 4.8: shared subscriptions.

use super::common::*;

async fn member(broker: &RunningBroker, id: &str, qos: QoS) -> RawClient {
    let mut c = client(broker, id).await;
    let ack = c.subscribe(1, "$share/g/s/t", qos).await;
    assert!(!ack.reason_codes[0].is_error());
    c
}

/// Collects PUBLISH packets from `c` until it is quiet, acknowledging each.
async fn drain(c: &mut RawClient) -> Vec<Bytes> {
    let mut out = Vec::new();
    loop {
        match c.recv_within(QUIET).await {
            Received::Packet(Packet::Publish(p)) => {
                match p.qos {
                    QoS::AtMostOnce => {}
                    QoS::AtLeastOnce => c.send(&puback(p.packet_id)).await,
                    QoS::ExactlyOnce => c.send(&pubrec(p.packet_id)).await,
                }
                out.push(p.payload);
            }
            Received::Packet(Packet::PubRel(r)) => c.send(&pubcomp(r.packet_id)).await,
            Received::Packet(other) => panic!("unexpected {other:?}"),
            Received::Nothing => return out,
            Received::Closed => panic!("closed"),
        }
    }
}

const PAYLOADS: [&[u8]; 10] = [b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9"];

#[tokio::test]
async fn mqtt_4_8_2_each_message_goes_to_exactly_one_member() {
    let broker = start().await;
    let mut a = member(&broker, "a", QoS::AtLeastOnce).await;
    let mut b = member(&broker, "b", QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    for (i, payload) in PAYLOADS.iter().enumerate() {
        pub1(&mut p, "s/t", payload, i as u16 + 1).await;
    }
    let got_a = drain(&mut a).await;
    let got_b = drain(&mut b).await;
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "both members get a share"
    );
    let mut all: Vec<Bytes> = got_a.into_iter().chain(got_b).collect();
    all.sort();
    let expected: Vec<Bytes> = PAYLOADS.iter().map(|p| Bytes::from_static(p)).collect();
    assert_eq!(all, expected, "every message once");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_8_2_shared_and_non_shared_subscriptions_each_get_a_copy() {
    let broker = start().await;
    let mut a = member(&broker, "a", QoS::AtMostOnce).await;
    a.subscribe(2, "s/t", QoS::AtMostOnce).await;
    let mut p = client(&broker, "p").await;
    pub0(&mut p, "s/t", b"m").await;
    assert_eq!(drain(&mut a).await.len(), 2);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_8_2_3_member_granted_qos_is_respected() {
    let broker = start().await;
    let mut a = member(&broker, "a", QoS::AtMostOnce).await;
    let mut p = client(&broker, "p").await;
    pub1(&mut p, "s/t", b"m", 1).await;
    assert_eq!(a.expect_publish().await.qos, QoS::AtMostOnce);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_8_2_qos1_in_flight_to_departed_member_goes_to_another() {
    let broker = start().await;
    let mut a = member(&broker, "a", QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    pub1(&mut p, "s/t", b"m", 1).await;
    let got = a.expect_publish().await; // not acknowledged
    assert_eq!(&got.payload[..], b"m");
    let mut b = member(&broker, "b", QoS::AtLeastOnce).await;
    drop_connection(a);
    let moved = b.expect_publish().await;
    assert_eq!(&moved.payload[..], b"m");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_8_2_4_qos2_in_flight_stays_with_its_member() {
    let broker = start().await;
    let (mut a, _) = session_client(&broker, "a", true, 60).await;
    a.subscribe(1, "$share/g/s/t", QoS::ExactlyOnce).await;
    let mut p = client(&broker, "p").await;
    pub2(&mut p, "s/t", b"m", 1).await;
    let sent = a.expect_publish().await; // delivery started, not complete
    let mut b = member(&broker, "b", QoS::ExactlyOnce).await;
    drop_connection(a);
    // Not given to another member [MQTT-4.8.2-5]...
    b.expect_nothing().await;
    // ...but completed with the original member when it reconnects [MQTT-4.8.2-4].
    let (mut a, present) = session_client(&broker, "a", false, 60).await;
    assert!(present);
    let again = a.expect_publish().await;
    assert_eq!((again.packet_id, again.dup), (sent.packet_id, true));
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_8_2_6_error_puback_not_resent_to_other_members() {
    let broker = start().await;
    let mut a = member(&broker, "a", QoS::AtLeastOnce).await;
    let mut p = client(&broker, "p").await;
    pub1(&mut p, "s/t", b"m", 1).await;
    let got = a.expect_publish().await;
    let mut b = member(&broker, "b", QoS::AtLeastOnce).await;
    a.send(&Packet::PubAck(ack_with(
        got.packet_id,
        ReasonCode::UnspecifiedError,
    )))
    .await;
    sync(&mut a).await;
    drop_connection(a);
    b.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_8_2_no_retained_messages_for_shared_subscriptions() {
    let broker = start().await;
    let mut p = client(&broker, "p").await;
    retain(&mut p, "s/t", b"r", 1).await;
    let mut a = member(&broker, "a", QoS::AtLeastOnce).await;
    a.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_8_2_1_invalid_share_name_is_refused() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    // SUBSCRIBE id 1, no properties, "$share/g+/t" QoS 0.
    let mut raw = vec![0x82, 0, 0, 1, 0, 0, 11];
    raw.extend_from_slice(b"$share/g+/t");
    raw.push(0);
    raw[1] = (raw.len() - 2) as u8;
    c.send_raw(&raw).await;
    match c.recv().await {
        Packet::SubAck(ack) => assert!(ack.reason_codes[0].is_error()),
        Packet::Disconnect(d) => {
            assert!(d.reason_code.is_error());
            expect_closed(&mut c).await;
        }
        other => panic!("unexpected {other:?}"),
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_8_2_unsubscribed_member_gets_no_more_shares() {
    let broker = start().await;
    let mut a = member(&broker, "a", QoS::AtMostOnce).await;
    let mut b = member(&broker, "b", QoS::AtMostOnce).await;
    unsubscribe(&mut a, 2, &["$share/g/s/t"]).await;
    let mut p = client(&broker, "p").await;
    for payload in PAYLOADS {
        pub0(&mut p, "s/t", payload).await;
    }
    assert_eq!(drain(&mut b).await.len(), PAYLOADS.len());
    assert!(drain(&mut a).await.is_empty());
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_8_2_a_burst_of_qos0_in_one_read_is_shared_once_each_and_in_order() {
    // QoS 0 messages on one topic read together are routed in runs (at most 64), and a run
    // goes to one member: over several runs both members get a share, every message goes to
    // exactly one of them, and each member receives its share in the order published.
    let broker = start().await;
    let mut a = member(&broker, "a", QoS::AtMostOnce).await;
    let mut b = member(&broker, "b", QoS::AtMostOnce).await;
    let mut p = client(&broker, "p").await;
    let mut burst = bytes::BytesMut::new();
    for n in 0..200u16 {
        let publish = Publish {
            topic: "s/t".into(),
            payload: Bytes::copy_from_slice(&n.to_be_bytes()),
            ..Publish::default()
        };
        encode(&Packet::Publish(publish), V5, &mut burst).unwrap();
    }
    p.send_raw(&burst).await;
    let seq = |got: Vec<Bytes>| -> Vec<u16> {
        got.iter()
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .collect()
    };
    let (got_a, got_b) = (seq(drain(&mut a).await), seq(drain(&mut b).await));
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "both members get a share"
    );
    for share in [&got_a, &got_b] {
        assert!(share.windows(2).all(|w| w[0] < w[1]), "in order: {share:?}");
    }
    let mut all: Vec<u16> = got_a.into_iter().chain(got_b).collect();
    all.sort_unstable();
    assert_eq!(all, (0..200).collect::<Vec<u16>>(), "every message once");
    broker.shutdown().await;
}
