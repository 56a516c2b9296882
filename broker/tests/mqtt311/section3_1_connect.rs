//! Section 3.1 CONNECT: the handshake, Clean Session, Will, Keep Alive and Client Identifier.

use std::time::{Duration, Instant};

use ferrumq_broker::codec::*;
use ferrumq_broker::listeners::RunningBroker;

use crate::support::*;
use crate::util::*;

#[tokio::test]
async fn mqtt_3_1_0_1_first_packet_must_be_connect() {
    let broker = start().await;
    for first in [
        frame(0xC0, &[]),                    // PINGREQ
        frame(0x82, &[0, 1, 0, 1, b'a', 0]), // SUBSCRIBE
        raw_publish_qos0(b"t", b"x"),        // PUBLISH
        frame(0xE0, &[]),                    // DISCONNECT
    ] {
        let mut c = RawClient::open(&broker, V4).await;
        c.send_raw(&first).await;
        expect_bare_close(&mut c).await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_0_2_second_connect_closes() {
    let broker = start().await;
    let mut c = connect(&broker, "twice").await;
    c.send(&Packet::Connect(Box::new(connect_packet(V4, "twice"))))
        .await;
    expect_bare_close(&mut c).await;
    // The broker is fine, and the client id is free again.
    let mut again = connect(&broker, "twice").await;
    expect_alive(&mut again).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_1_wrong_protocol_name_is_not_accepted() {
    let broker = start().await;
    let mut c = RawClient::open(&broker, V4).await;
    c.send_raw(&raw_connect(b"MQTX", 4, 0x02, b"name", &[]))
        .await;
    // The server MAY disconnect (after a refusing CONNACK); it must not accept it as MQTT.
    loop {
        match c.recv_within(WAIT).await {
            Received::Packet(Packet::ConnAck(ack)) => {
                assert_ne!(ack.reason_code, ReasonCode::Success)
            }
            Received::Closed => break,
            other => panic!("expected a refusal and close, got {other:?}"),
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_2_unsupported_level_gets_connack_0x01() {
    let broker = start().await;
    for level in [0u8, 2, 6, 7, 255] {
        let mut c = RawClient::open(&broker, V4).await;
        c.send_raw(&raw_connect(b"MQTT", level, 0x02, b"lvl", &[]))
            .await;
        let ack = c.expect_connack().await;
        assert_eq!(
            ack.reason_code,
            ReasonCode::UnsupportedProtocolVersion,
            "level {level}"
        );
        assert!(!ack.session_present);
        expect_bare_close(&mut c).await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_3_reserved_flag_closes() {
    let broker = start().await;
    let mut c = RawClient::open(&broker, V4).await;
    c.send_raw(&raw_connect(b"MQTT", 4, 0x03, b"reserved", &[]))
        .await;
    expect_bare_close(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_4_clean_session_0_resumes_session() {
    let broker = start().await;
    let (mut c, present) = connect_ok(&broker, persistent("resume")).await;
    assert!(!present);
    assert_eq!(
        sub(&mut c, 1, "resume/t", QoS::AtLeastOnce).await,
        ReasonCode::GrantedQos1
    );
    c.disconnect().await;
    let (mut c, present) = connect_ok(&broker, persistent("resume")).await;
    assert!(present);
    // The subscription is still there without subscribing again.
    let mut p = connect(&broker, "resume-pub").await;
    publish_acked(&mut p, "resume/t", b"hi", QoS::AtLeastOnce, 1, false).await;
    let got = receive_acked(&mut c).await;
    assert_eq!((&*got.topic, &got.payload[..]), ("resume/t", &b"hi"[..]));
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_5_qos1_and_qos2_stored_while_disconnected() {
    let broker = start().await;
    let (mut c, _) = connect_ok(&broker, persistent("offline")).await;
    sub(&mut c, 1, "off/#", QoS::ExactlyOnce).await;
    c.disconnect().await;
    let mut p = connect(&broker, "offline-pub").await;
    publish_acked(&mut p, "off/1", b"one", QoS::AtLeastOnce, 1, false).await;
    publish_acked(&mut p, "off/2", b"two", QoS::ExactlyOnce, 2, false).await;
    let (mut c, present) = connect_ok(&broker, persistent("offline")).await;
    assert!(present);
    let a = receive_acked(&mut c).await;
    let b = receive_acked(&mut c).await;
    assert_eq!((&*a.topic, a.qos), ("off/1", QoS::AtLeastOnce));
    assert_eq!((&*b.topic, b.qos), ("off/2", QoS::ExactlyOnce));
    c.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_6_clean_session_discards_state() {
    let broker = start().await;
    let (mut c, _) = connect_ok(&broker, persistent("clean")).await;
    sub(&mut c, 1, "clean/t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    // A message queued for the old session must not reach the new one either.
    let mut p = connect(&broker, "clean-pub").await;
    publish_acked(&mut p, "clean/t", b"old", QoS::AtLeastOnce, 1, false).await;

    let (mut c, present) = connect_ok(&broker, connect_packet(V4, "clean")).await;
    assert!(!present);
    c.expect_nothing().await;
    publish_acked(&mut p, "clean/t", b"new", QoS::AtLeastOnce, 2, false).await;
    c.expect_nothing().await;
    c.disconnect().await;
    // A Clean Session lasts only as long as its connection.
    let (_c, present) = connect_ok(&broker, persistent("clean")).await;
    assert!(!present);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_7_retained_messages_survive_the_session() {
    let broker = start().await;
    let mut p = connect(&broker, "ret-owner").await;
    publish_acked(&mut p, "keep/me", b"kept", QoS::AtLeastOnce, 1, true).await;
    p.disconnect().await;
    let mut s = connect(&broker, "ret-reader").await;
    sub(&mut s, 1, "keep/me", QoS::AtLeastOnce).await;
    let got = receive_acked(&mut s).await;
    assert!(got.retain);
    assert_eq!(&got.payload[..], b"kept");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_8_will_published_on_abnormal_close() {
    let broker = start().await;
    let mut watcher = connect(&broker, "watcher").await;
    sub(&mut watcher, 1, "will/abnormal", QoS::AtLeastOnce).await;
    let (c, _) = connect_ok(
        &broker,
        with_will("dies", "will/abnormal", b"gone", QoS::AtLeastOnce, false),
    )
    .await;
    drop(c); // TCP close without DISCONNECT
    let got = receive_acked(&mut watcher).await;
    assert_eq!(
        (&*got.topic, &got.payload[..], got.qos),
        ("will/abnormal", &b"gone"[..], QoS::AtLeastOnce)
    );
    assert!(!got.retain);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_8_will_published_on_protocol_error() {
    let broker = start().await;
    let mut watcher = connect(&broker, "watcher").await;
    sub(&mut watcher, 1, "will/err", QoS::AtMostOnce).await;
    let (mut c, _) = connect_ok(
        &broker,
        with_will("bad", "will/err", b"err", QoS::AtMostOnce, false),
    )
    .await;
    c.send_raw(&raw_publish_qos0(b"a/#", b"wildcard in a topic name"))
        .await;
    expect_bare_close(&mut c).await;
    assert_eq!(&watcher.expect_publish().await.payload[..], b"err");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_8_will_published_on_keep_alive_timeout() {
    let broker = start().await;
    let mut watcher = connect(&broker, "watcher").await;
    sub(&mut watcher, 1, "will/ka", QoS::AtMostOnce).await;
    let mut connect = with_will("silent", "will/ka", b"timeout", QoS::AtMostOnce, false);
    connect.keep_alive = 1;
    let (_c, _) = connect_ok(&broker, connect).await;
    // Sleep: Keep Alive 1 s is the behaviour under test.
    let got = watcher.expect_publish().await;
    assert_eq!(&got.payload[..], b"timeout");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_10_will_removed_on_disconnect() {
    let broker = start().await;
    let mut watcher = connect(&broker, "watcher").await;
    sub(&mut watcher, 1, "will/clean", QoS::AtMostOnce).await;
    let (c, _) = connect_ok(
        &broker,
        with_will("polite", "will/clean", b"no", QoS::AtMostOnce, true),
    )
    .await;
    c.disconnect().await;
    watcher.expect_nothing().await;
    // Nor was it retained.
    let mut late = connect(&broker, "late").await;
    sub(&mut late, 1, "will/clean", QoS::AtMostOnce).await;
    late.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_10_will_published_only_once() {
    let broker = start().await;
    let mut watcher = connect(&broker, "watcher").await;
    sub(&mut watcher, 1, "will/once", QoS::AtMostOnce).await;
    let (c, _) = connect_ok(
        &broker,
        Connect {
            clean_start: false,
            ..with_will("once", "will/once", b"w", QoS::AtMostOnce, false)
        },
    )
    .await;
    drop(c);
    watcher.expect_publish().await;
    // Resuming the session and closing normally must not publish the old Will again.
    let (c, present) = connect_ok(&broker, persistent("once")).await;
    assert!(present);
    c.disconnect().await;
    watcher.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_11_will_qos_without_will_flag_closes() {
    let broker = start().await;
    let mut c = RawClient::open(&broker, V4).await;
    c.send_raw(&raw_connect(b"MQTT", 4, 0x02 | 0x08, b"wq", &[]))
        .await;
    expect_bare_close(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_13_will_retain_without_will_flag_closes() {
    let broker = start().await;
    let mut c = RawClient::open(&broker, V4).await;
    c.send_raw(&raw_connect(b"MQTT", 4, 0x02 | 0x20, b"wr", &[]))
        .await;
    expect_bare_close(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_14_will_qos_3_closes() {
    let broker = start().await;
    let mut c = RawClient::open(&broker, V4).await;
    let mut will = field(b"w/t");
    will.extend_from_slice(&field(b"p"));
    c.send_raw(&raw_connect(b"MQTT", 4, 0x02 | 0x04 | 0x18, b"wq3", &will))
        .await;
    expect_bare_close(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_16_will_retain_0_published_not_retained() {
    let broker = start().await;
    let (c, _) = connect_ok(
        &broker,
        with_will("nr", "will/nr", b"w", QoS::AtMostOnce, false),
    )
    .await;
    let mut watcher = connect(&broker, "watcher").await;
    sub(&mut watcher, 1, "will/nr", QoS::AtMostOnce).await;
    drop(c);
    assert!(!watcher.expect_publish().await.retain);
    let mut late = connect(&broker, "late").await;
    sub(&mut late, 1, "will/nr", QoS::AtMostOnce).await;
    late.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_17_will_retain_1_published_retained() {
    let broker = start().await;
    let (c, _) = connect_ok(
        &broker,
        with_will("r", "will/r", b"last", QoS::AtLeastOnce, true),
    )
    .await;
    drop(c);
    let mut late = connect(&broker, "late").await;
    eventually("the will to be retained", || {
        broker.broker.retained.read().len() == 1
    })
    .await;
    sub(&mut late, 1, "will/r", QoS::AtLeastOnce).await;
    let got = receive_acked(&mut late).await;
    assert!(got.retain);
    assert_eq!(
        (&got.payload[..], got.qos),
        (&b"last"[..], QoS::AtLeastOnce)
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_22_password_without_username_closes() {
    let broker = start().await;
    let mut c = RawClient::open(&broker, V4).await;
    c.send_raw(&raw_connect(
        b"MQTT",
        4,
        0x02 | 0x40,
        b"pw",
        &field(b"secret"),
    ))
    .await;
    expect_bare_close(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_24_keep_alive_1_5x() {
    let broker = start().await;
    let (mut c, _) = connect_ok(
        &broker,
        Connect {
            keep_alive: 1,
            ..connect_packet(V4, "ka")
        },
    )
    .await;
    // Sleep: Keep Alive 1 s is the behaviour under test.
    let started = Instant::now();
    match c.recv_within(Duration::from_secs(4)).await {
        Received::Closed => {}
        other => panic!("expected a close after 1.5 s, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_millis(2500),
        "closed after {waited:?}, expected 1.5 s"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_24_keep_alive_reset_by_each_packet() {
    let broker = start().await;
    let (mut c, _) = connect_ok(
        &broker,
        Connect {
            keep_alive: 1,
            ..connect_packet(V4, "ka-ok")
        },
    )
    .await;
    // Sleep: Keep Alive 1 s is the behaviour under test; 2.4 s of PINGREQs every 0.8 s.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(800)).await;
        expect_alive(&mut c).await;
    }
    broker.shutdown().await;
}

/// Connects a subscriber with Keep Alive `keep_alive` that will not read, and floods it with
/// QoS 0 messages until the broker's writes to it block (25 MiB, far beyond loopback's socket
/// buffers). Returns the broker, the subscriber and the publisher (kept connected).
async fn blocked_subscriber(
    client_id: &str,
    keep_alive: u16,
) -> (RunningBroker, RawClient, RawClient) {
    let broker = start().await;
    let (mut sub, _) = connect_ok(
        &broker,
        Connect {
            keep_alive,
            ..connect_packet(V4, client_id)
        },
    )
    .await;
    sub.subscribe(1, "flood", QoS::AtMostOnce).await;
    let mut publisher = connect(&broker, "flooder").await;
    let publish = Packet::Publish(Publish {
        topic: "flood".into(),
        payload: bytes::Bytes::from(vec![0x5A; 64 * 1024]),
        ..Publish::default()
    });
    for _ in 0..400 {
        publisher.send(&publish).await;
    }
    (broker, sub, publisher)
}

/// Waits (bounded) until the broker has `n` connections; returns the count last seen.
async fn wait_for_connections(broker: &RunningBroker, n: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let now = broker
            .broker
            .connections
            .load(std::sync::atomic::Ordering::Relaxed);
        if now == n || Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn mqtt_3_1_2_24_keep_alive_closes_a_client_that_neither_reads_nor_sends() {
    let (broker, _sub, _publisher) = blocked_subscriber("stuck", 1).await;
    // Keep Alive must end the connection even though its writes are blocked: only the
    // flooding publisher stays connected.
    assert_eq!(
        wait_for_connections(&broker, 1, Duration::from_secs(15)).await,
        1,
        "the stuck subscriber is still connected"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_24_a_slow_reader_that_keeps_sending_stays_connected() {
    let (broker, mut sub, _publisher) = blocked_subscriber("slow", 1).await;
    // Sleep: 3 s of PINGREQs every 0.5 s (Keep Alive 1 s) while the broker's writes to this
    // client stay blocked; the broker must read them and keep the connection.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sub.send(&Packet::PingReq).await;
    }
    assert_eq!(
        broker
            .broker
            .connections
            .load(std::sync::atomic::Ordering::Relaxed),
        2,
        "a client that sends within Keep Alive was closed"
    );
    // It is still served: reading on, it gets the flood and a PINGRESP per PINGREQ.
    let mut pongs = 0;
    while pongs < 6 {
        match sub.recv().await {
            Packet::PingResp => pongs += 1,
            Packet::Publish(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_24_keep_alive_0_never_times_out() {
    let broker = start().await;
    let (mut c, _) = connect_ok(
        &broker,
        Connect {
            keep_alive: 0,
            ..connect_packet(V4, "ka0")
        },
    )
    .await;
    // Sleep: checks no timer fires (1.6 s would end a 1 s keep alive).
    match c.recv_within(Duration::from_millis(1600)).await {
        Received::Nothing => {}
        other => panic!("expected the connection to stay open, got {other:?}"),
    }
    expect_alive(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_3_2_client_id_identifies_the_session() {
    let broker = start().await;
    let (c, _) = connect_ok(&broker, persistent("id-a")).await;
    c.disconnect().await;
    let (c, present) = connect_ok(&broker, persistent("id-b")).await;
    assert!(!present, "id-b must not get id-a's session");
    c.disconnect().await;
    let (_c, present) = connect_ok(&broker, persistent("id-a")).await;
    assert!(present);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_3_4_invalid_utf8_client_id_closes() {
    let broker = start().await;
    let mut c = RawClient::open(&broker, V4).await;
    c.send_raw(&raw_connect(b"MQTT", 4, 0x02, &[b'a', 0xC3, 0x28], &[]))
        .await;
    expect_bare_close(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_3_5_client_ids_of_1_to_23_alphanumerics_accepted() {
    let broker = start().await;
    for id in ["a", "Z9", "0123456789abcdefghijKLM"] {
        let c = connect(&broker, id).await;
        c.disconnect().await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_3_6_empty_client_id_gets_a_unique_identity() {
    let broker = start().await;
    let (mut a, _) = connect_ok(&broker, connect_packet(V4, "")).await;
    let (mut b, _) = connect_ok(&broker, connect_packet(V4, "")).await;
    // Both stay connected (neither took the other over) and both receive.
    sub(&mut a, 1, "anon", QoS::AtMostOnce).await;
    sub(&mut b, 1, "anon", QoS::AtMostOnce).await;
    let mut p = connect(&broker, "anon-pub").await;
    p.publish("anon", b"x", QoS::AtMostOnce, 0, false).await;
    a.expect_publish().await;
    b.expect_publish().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_3_8_empty_client_id_without_clean_session_gets_0x02() {
    let broker = start().await;
    let (mut c, ack) = RawClient::connect_with(&broker, persistent("")).await;
    assert_eq!(ack.reason_code, ReasonCode::ClientIdentifierNotValid);
    assert!(!ack.session_present);
    expect_bare_close(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_3_9_rejected_client_id_gets_0x02() {
    let broker = start().await;
    let long = "x".repeat(usize::from(broker.broker.settings().limits.max_client_id_length) + 1);
    let (mut c, ack) = RawClient::connect_with(&broker, connect_packet(V4, &long)).await;
    assert_eq!(ack.reason_code, ReasonCode::ClientIdentifierNotValid);
    expect_bare_close(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_4_1_malformed_connect_closes_without_connack() {
    let broker = start().await;
    let mut bad_cases = vec![
        // Trailing byte after the client id.
        raw_connect(b"MQTT", 4, 0x02, b"trail", &[0]),
        // Will flag set but no Will fields.
        raw_connect(b"MQTT", 4, 0x06, b"nowill", &[]),
        // User name flag set but no user name.
        raw_connect(b"MQTT", 4, 0x82, b"nouser", &[]),
    ];
    // Remaining Length shorter than the fields.
    let mut short = raw_connect_v4("short");
    short[1] -= 2;
    short.truncate(short.len() - 2);
    bad_cases.push(short);
    for bytes in bad_cases {
        let mut c = RawClient::open(&broker, V4).await;
        c.send_raw(&bytes).await;
        expect_bare_close(&mut c).await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_4_2_takeover_closes_existing() {
    let broker = start().await;
    let mut first = connect(&broker, "dup-id").await;
    let mut second = connect(&broker, "dup-id").await;
    expect_bare_close(&mut first).await;
    expect_alive(&mut second).await;
    sub(&mut second, 1, "dup/t", QoS::AtMostOnce).await;
    let mut p = connect(&broker, "dup-pub").await;
    p.publish("dup/t", b"x", QoS::AtMostOnce, 0, false).await;
    second.expect_publish().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_4_2_takeover_keeps_a_persistent_session() {
    let broker = start().await;
    let (mut first, _) = connect_ok(&broker, persistent("move")).await;
    sub(&mut first, 1, "move/t", QoS::AtLeastOnce).await;
    let (mut second, present) = connect_ok(&broker, persistent("move")).await;
    assert!(present);
    expect_bare_close(&mut first).await;
    let mut p = connect(&broker, "move-pub").await;
    publish_acked(&mut p, "move/t", b"m", QoS::AtLeastOnce, 1, false).await;
    assert_eq!(&receive_acked(&mut second).await.payload[..], b"m");
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_4_4_connack_then_pipelined_packets_are_processed() {
    let broker = start().await;
    let mut c = RawClient::open(&broker, V4).await;
    // Clients need not wait for CONNACK: CONNECT, SUBSCRIBE and PINGREQ in one write.
    let mut bytes = raw_connect_v4("pipelined");
    bytes.extend(frame(0x82, &[0, 7, 0, 1, b'p', 0]));
    bytes.extend(frame(0xC0, &[]));
    c.send_raw(&bytes).await;
    assert_eq!(c.expect_connack().await.reason_code, ReasonCode::Success);
    match c.recv().await {
        Packet::SubAck(ack) => assert_eq!(
            (ack.packet_id, ack.reason_codes),
            (7, vec![ReasonCode::Success])
        ),
        other => panic!("expected SUBACK, got {other:?}"),
    }
    assert_eq!(c.recv().await, Packet::PingResp);
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_4_5_nothing_processed_after_a_refused_connect() {
    let broker = start().await;
    let mut watcher = connect(&broker, "watcher").await;
    sub(&mut watcher, 1, "refused/t", QoS::AtMostOnce).await;
    let mut c = RawClient::open(&broker, V4).await;
    // Empty client id with Clean Session 0 (refused with 0x02), then a PUBLISH in the same write.
    let mut bytes = raw_connect(b"MQTT", 4, 0x00, b"", &[]);
    bytes.extend(raw_publish_qos0(b"refused/t", b"must not arrive"));
    c.send_raw(&bytes).await;
    assert_eq!(
        c.expect_connack().await.reason_code,
        ReasonCode::ClientIdentifierNotValid
    );
    expect_bare_close(&mut c).await;
    watcher.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_a_client_whose_writes_are_blocked() {
    // Keep Alive off: only the shutdown can end this connection.
    let (broker, _sub, _publisher) = blocked_subscriber("stuck-at-shutdown", 0).await;
    broker.broker.begin_shutdown();
    assert_eq!(
        wait_for_connections(&broker, 0, Duration::from_secs(10)).await,
        0,
        "a connection stayed open after shutdown"
    );
    broker.shutdown().await;
}
