//! MQTT 3.1 (protocol name "MQIsdp", level 3): connect, publish and subscribe, also across
//! versions with 3.1.1 clients.

use ferrumq_broker::codec::*;

use crate::support::*;
use crate::util::*;

const V3: ProtocolVersion = ProtocolVersion::V3_1;

#[tokio::test]
async fn mqtt31_connect_with_mqisdp_level_3() {
    let broker = start().await;
    let mut c = RawClient::open(&broker, V3).await;
    c.send_raw(&raw_connect(b"MQIsdp", 3, 0x02, b"old-client", &[]))
        .await;
    let ack = c.expect_connack().await;
    assert_eq!(
        (ack.reason_code, ack.session_present),
        (ReasonCode::Success, false)
    );
    expect_alive(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt31_mismatched_name_and_level_refused_with_0x01() {
    let broker = start().await;
    for (name, level) in [(&b"MQIsdp"[..], 4u8), (b"MQTT", 3), (b"MQIsdp", 5)] {
        let mut c = RawClient::open(&broker, V4).await;
        c.send_raw(&raw_connect(name, level, 0x02, b"mix", &[]))
            .await;
        assert_eq!(
            c.expect_connack().await.reason_code,
            ReasonCode::UnsupportedProtocolVersion
        );
        expect_bare_close(&mut c).await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt31_pubsub_at_each_qos_with_a_311_peer() {
    let broker = start().await;
    let mut old = RawClient::connect(&broker, V3, "old").await;
    let mut new = connect(&broker, "new").await;
    sub(&mut old, 1, "v3/from-new", QoS::ExactlyOnce).await;
    sub(&mut new, 1, "v3/from-old", QoS::ExactlyOnce).await;
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let id = i as u16 + 1;
        publish_acked(&mut old, "v3/from-old", b"o", qos, id, false).await;
        let got = receive_acked(&mut new).await;
        assert_eq!(
            (&*got.topic, &got.payload[..], got.qos),
            ("v3/from-old", &b"o"[..], qos)
        );
        publish_acked(&mut new, "v3/from-new", b"n", qos, id, false).await;
        let got = receive_acked(&mut old).await;
        assert_eq!(
            (&*got.topic, &got.payload[..], got.qos),
            ("v3/from-new", &b"n"[..], qos)
        );
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt31_client_id_over_23_bytes_refused_with_0x02() {
    let broker = start().await;
    let (mut c, ack) = RawClient::connect_with(&broker, connect_packet(V3, &"x".repeat(24))).await;
    assert_eq!(ack.reason_code, ReasonCode::ClientIdentifierNotValid);
    expect_bare_close(&mut c).await;
    let ok = RawClient::connect(&broker, V3, &"x".repeat(23)).await;
    ok.disconnect().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt31_empty_client_id_refused_with_0x02() {
    let broker = start().await;
    let (mut c, ack) = RawClient::connect_with(&broker, connect_packet(V3, "")).await;
    assert_eq!(ack.reason_code, ReasonCode::ClientIdentifierNotValid);
    expect_bare_close(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt31_retained_will_and_persistent_session() {
    let broker = start().await;
    let (c, _) = RawClient::connect_with(
        &broker,
        Connect {
            protocol: V3,
            ..with_will("old-will", "v3/will", b"bye", QoS::AtLeastOnce, true)
        },
    )
    .await;
    drop(c);
    let (mut s, ack) = RawClient::connect_with(
        &broker,
        Connect {
            protocol: V3,
            ..persistent("old-sub")
        },
    )
    .await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    eventually("the will to be retained", || {
        broker.broker.retained.read().len() == 1
    })
    .await;
    sub(&mut s, 1, "v3/will", QoS::AtLeastOnce).await;
    let got = receive_acked(&mut s).await;
    assert_eq!((&got.payload[..], got.retain), (&b"bye"[..], true));
    s.disconnect().await;
    let mut p = connect(&broker, "new-pub").await;
    publish_acked(&mut p, "v3/will", b"queued", QoS::AtLeastOnce, 1, false).await;
    let (mut s, _) = RawClient::connect_with(
        &broker,
        Connect {
            protocol: V3,
            ..persistent("old-sub")
        },
    )
    .await;
    // The session (subscription and the message queued for it) was kept.
    assert_eq!(&receive_acked(&mut s).await.payload[..], b"queued");
    broker.shutdown().await;
}
