//! Section 4.8 handling errors (and the section 2 rules it enforces): a protocol violation
//! closes the connection, without a DISCONNECT in 3.1.1, and the Will is published.

use ferrumq_broker::codec::*;

use crate::support::*;
use crate::util::*;

#[tokio::test]
async fn mqtt_4_8_0_1_malformed_closes_connection() {
    let broker = start().await;
    let mut watcher = connect(&broker, "watcher").await;
    sub(&mut watcher, 1, "err/will", QoS::AtMostOnce).await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "remaining length of 5 bytes",
            vec![0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        ),
        ("reserved packet type 0", frame(0x00, &[])),
        ("reserved packet type 15", frame(0xF0, &[])),
        ("PUBACK with trailing bytes", frame(0x40, &[0, 1, 0])),
        ("PUBACK too short", frame(0x40, &[0])),
        ("PUBACK with flags", frame(0x42, &[0, 1])),
        (
            "QoS 1 PUBLISH with packet id 0",
            [frame(0x32, &[0, 1, b't', 0, 0])].concat(),
        ),
        ("DUP on QoS 0", frame(0x38, &[0, 1, b't'])),
        ("topic length beyond the packet", frame(0x30, &[0, 9, b't'])),
        (
            "SUBSCRIBE with packet id 0",
            frame(0x82, &[0, 0, 0, 1, b'a', 0]),
        ),
        ("CONNACK from a client", frame(0x20, &[0, 0])),
        ("SUBACK from a client", frame(0x90, &[0, 1, 0])),
        ("UNSUBACK from a client", frame(0xB0, &[0, 1])),
        ("PINGRESP from a client", frame(0xD0, &[])),
    ];
    for (what, bytes) in cases {
        let (mut c, _) = connect_ok(
            &broker,
            with_will("bad", "err/will", b"w", QoS::AtMostOnce, false),
        )
        .await;
        c.send_raw(&bytes).await;
        match c.recv_within(WAIT).await {
            Received::Closed => {}
            other => panic!("{what}: expected a bare close, got {other:?}"),
        }
        match watcher.recv_within(WAIT).await {
            Received::Packet(Packet::Publish(p)) => assert_eq!(&*p.topic, "err/will", "{what}"),
            other => panic!("{what}: expected the Will, got {other:?}"),
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_8_0_1_a_violation_affects_only_its_connection() {
    let broker = start().await;
    let mut s = connect(&broker, "s").await;
    sub(&mut s, 1, "err/ok", QoS::AtLeastOnce).await;
    let mut p = connect(&broker, "p").await;
    for _ in 0..10 {
        let mut bad = RawClient::open(&broker, V4).await;
        bad.send_raw(&[0xFF; 64]).await;
        expect_bare_close(&mut bad).await;
    }
    publish_acked(&mut p, "err/ok", b"fine", QoS::AtLeastOnce, 1, false).await;
    assert_eq!(&receive_acked(&mut s).await.payload[..], b"fine");
    broker.shutdown().await;
}
