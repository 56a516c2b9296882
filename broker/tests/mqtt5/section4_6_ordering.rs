//! Section 4.6: message ordering.

use bytes::BytesMut;

use super::common::*;

const N: usize = 30;

fn numbered(qos: QoS, i: usize) -> Packet {
    Packet::Publish(Publish {
        topic: "o/t".into(),
        payload: Bytes::from(i.to_string()),
        qos,
        packet_id: if qos == QoS::AtMostOnce {
            0
        } else {
            i as u16 + 1
        },
        ..Publish::default()
    })
}

/// Sends every packet in one write, so the broker handles them back to back.
async fn send_all(c: &mut RawClient, packets: &[Packet]) {
    let mut buf = BytesMut::new();
    for p in packets {
        encode(p, V5, &mut buf).unwrap();
    }
    c.send_raw(&buf).await;
}

async fn check_order(qos: QoS) {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "o/#", QoS::ExactlyOnce).await;
    let mut p = client(&broker, "p").await;
    let packets: Vec<Packet> = (0..N).map(|i| numbered(qos, i)).collect();
    send_all(&mut p, &packets).await;
    let got = recv_payloads(&mut sub, N).await;
    let expected: Vec<Bytes> = (0..N).map(|i| Bytes::from(i.to_string())).collect();
    assert_eq!(got, expected);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_6_0_5_qos0_forwarded_in_publish_order() {
    check_order(QoS::AtMostOnce).await;
}

#[tokio::test]
async fn mqtt_4_6_0_5_qos1_forwarded_in_publish_order() {
    check_order(QoS::AtLeastOnce).await;
}

#[tokio::test]
async fn mqtt_4_6_0_5_qos2_forwarded_in_publish_order() {
    check_order(QoS::ExactlyOnce).await;
}

#[tokio::test]
async fn mqtt_4_6_0_6_order_kept_for_offline_session() {
    let broker = start().await;
    let (mut sub, _) = session_client(&broker, "sub", true, 60).await;
    sub.subscribe(1, "o/#", QoS::AtLeastOnce).await;
    sub.disconnect().await;
    let mut p = client(&broker, "p").await;
    let packets: Vec<Packet> = (0..N).map(|i| numbered(QoS::AtLeastOnce, i)).collect();
    send_all(&mut p, &packets).await;
    for i in 0..N {
        assert_eq!(p.recv().await, puback(i as u16 + 1));
    }
    let (mut sub, _) = session_client(&broker, "sub", false, 60).await;
    let got = recv_payloads(&mut sub, N).await;
    let expected: Vec<Bytes> = (0..N).map(|i| Bytes::from(i.to_string())).collect();
    assert_eq!(got, expected);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_6_0_2_acks_sent_in_order_publishes_were_received() {
    let broker = start().await;
    let mut p = client(&broker, "p").await;
    let mut packets: Vec<Packet> = (0..10).map(|i| numbered(QoS::AtLeastOnce, i)).collect();
    packets.extend((10..20).map(|i| numbered(QoS::ExactlyOnce, i)));
    send_all(&mut p, &packets).await;
    for i in 0..10u16 {
        match p.recv().await {
            Packet::PubAck(a) => assert_eq!(a.packet_id, i + 1),
            other => panic!("expected PUBACK {}, got {other:?}", i + 1),
        }
    }
    for i in 10..20u16 {
        match p.recv().await {
            Packet::PubRec(a) => assert_eq!(a.packet_id, i + 1),
            other => panic!("expected PUBREC {}, got {other:?}", i + 1),
        }
    }
    let rels: Vec<Packet> = (11..=20).map(pubrel).collect();
    send_all(&mut p, &rels).await;
    for i in 11..=20 {
        assert_eq!(p.recv().await, pubcomp(i));
    }
    broker.shutdown().await;
}
