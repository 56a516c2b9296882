//! Section 3.12 PINGREQ and 3.14 DISCONNECT.

use ferrumq_broker::codec::*;

use crate::support::*;
use crate::util::*;

#[tokio::test]
async fn mqtt_3_12_4_1_pingresp() {
    let broker = start().await;
    let mut c = connect(&broker, "ping").await;
    for _ in 0..3 {
        expect_alive(&mut c).await;
    }
    // Several PINGREQs in one write: one PINGRESP each.
    let mut bytes = Vec::new();
    for _ in 0..5 {
        bytes.extend(frame(0xC0, &[]));
    }
    c.send_raw(&bytes).await;
    for _ in 0..5 {
        assert_eq!(c.recv().await, Packet::PingResp);
    }
    c.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_12_pingreq_with_flags_or_payload_closes() {
    let broker = start().await;
    for bytes in [frame(0xC1, &[]), frame(0xC0, &[0])] {
        let mut c = connect(&broker, "ping").await;
        c.send_raw(&bytes).await;
        expect_bare_close(&mut c).await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_14_1_1_disconnect_with_bad_flags_closes_and_publishes_will() {
    let broker = start().await;
    let mut watcher = connect(&broker, "watcher").await;
    sub(&mut watcher, 1, "dc/will", QoS::AtMostOnce).await;
    let (mut c, _) = connect_ok(
        &broker,
        with_will("dc", "dc/will", b"bad disconnect", QoS::AtMostOnce, false),
    )
    .await;
    c.send_raw(&frame(0xE1, &[])).await;
    expect_bare_close(&mut c).await;
    // Not a valid DISCONNECT, so the Will is not discarded.
    assert_eq!(
        &watcher.expect_publish().await.payload[..],
        b"bad disconnect"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_14_disconnect_with_payload_closes_and_publishes_will() {
    let broker = start().await;
    let mut watcher = connect(&broker, "watcher").await;
    sub(&mut watcher, 1, "dc/will", QoS::AtMostOnce).await;
    let (mut c, _) = connect_ok(
        &broker,
        with_will("dc", "dc/will", b"long", QoS::AtMostOnce, false),
    )
    .await;
    c.send_raw(&frame(0xE0, &[0])).await; // 3.1.1 DISCONNECT has Remaining Length 0
    expect_bare_close(&mut c).await;
    assert_eq!(&watcher.expect_publish().await.payload[..], b"long");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_14_4_3_disconnect_discards_will_and_closes() {
    let broker = start().await;
    let mut watcher = connect(&broker, "watcher").await;
    sub(&mut watcher, 1, "dc/will", QoS::AtMostOnce).await;
    let (mut c, _) = connect_ok(
        &broker,
        with_will("dc", "dc/will", b"no", QoS::AtMostOnce, false),
    )
    .await;
    c.send(&Packet::Disconnect(Disconnect::default())).await;
    expect_bare_close(&mut c).await;
    watcher.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_14_4_packets_after_disconnect_are_ignored() {
    let broker = start().await;
    let mut watcher = connect(&broker, "watcher").await;
    sub(&mut watcher, 1, "dc/after", QoS::AtMostOnce).await;
    let mut c = connect(&broker, "dc").await;
    let mut bytes = frame(0xE0, &[]);
    bytes.extend(raw_publish_qos0(b"dc/after", b"too late"));
    c.send_raw(&bytes).await;
    expect_bare_close(&mut c).await;
    watcher.expect_nothing().await;
    broker.shutdown().await;
}
