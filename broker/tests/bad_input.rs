//! Bad input and limit breaches: every class of malformed packet and every configured limit,
//! each answered with the exact reason code (5.0 DISCONNECT/CONNACK/SUBACK/PUBACK reason; a bare
//! close for 3.1.1), while a healthy pair of clients connected throughout keeps publishing and
//! receiving normally. Floods are bounded in count; queues for clients that never read stay
//! capped.
mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ferrumq_broker::codec::*;
use ferrumq_broker::config::BrokerConfig;
use ferrumq_broker::listeners::RunningBroker;
use ferrumq_broker::metrics::DropReason;
use support::*;
use tokio::io::AsyncWriteExt;

const V4: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// A 5.0 subscriber and a 3.1.1 publisher, connected before the bad input arrives and checked
/// after it: a QoS 1 message still goes from one to the other.
struct Healthy {
    sub: RawClient,
    publ: RawClient,
    n: u16,
}

impl Healthy {
    async fn new(broker: &RunningBroker) -> Healthy {
        let mut sub = RawClient::connect(broker, V5, "healthy-sub").await;
        sub.subscribe(1, "healthy/t", QoS::AtLeastOnce).await;
        let publ = RawClient::connect(broker, V4, "healthy-pub").await;
        Healthy { sub, publ, n: 0 }
    }

    async fn check(&mut self) {
        self.n += 1;
        let payload = Bytes::from(format!("ok {}", self.n));
        self.publ
            .send(&Packet::Publish(Publish {
                qos: QoS::AtLeastOnce,
                topic: "healthy/t".into(),
                packet_id: self.n,
                payload: payload.clone(),
                ..Publish::default()
            }))
            .await;
        match self.publ.recv().await {
            Packet::PubAck(ack) => assert_eq!(ack.packet_id, self.n),
            other => panic!("healthy publisher: expected PUBACK, got {other:?}"),
        }
        let got = self.sub.expect_publish().await;
        assert_eq!(got.payload, payload, "healthy subscriber");
        self.sub
            .send(&Packet::PubAck(PubResponse {
                packet_id: got.packet_id,
                ..Default::default()
            }))
            .await;
    }
}

/// A whole packet: `first` byte, Remaining Length, `body`.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

fn field(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A QoS 0 PUBLISH with raw topic bytes; for 5.0 an empty property block is added.
fn raw_publish(version: ProtocolVersion, topic: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut body = field(topic);
    if version.is_v5() {
        body.push(0);
    }
    body.extend_from_slice(payload);
    frame(0x30, &body)
}

fn encoded(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode(packet, version, &mut buf).unwrap();
    buf.to_vec()
}

fn publish(topic: &str, qos: QoS, packet_id: u16, payload: Vec<u8>) -> Packet {
    Packet::Publish(Publish {
        qos,
        topic: topic.into(),
        packet_id,
        payload: Bytes::from(payload),
        ..Publish::default()
    })
}

/// Connects a client of `version`, sends `bytes`, and asserts the close: DISCONNECT with
/// `v5_reason` for 5.0, nothing for 3.1.1.
async fn expect_rejected(
    broker: &RunningBroker,
    version: ProtocolVersion,
    bytes: &[u8],
    v5_reason: ReasonCode,
) {
    let mut c = RawClient::connect(broker, version, &format!("bad-{}", version.level())).await;
    c.send_raw(bytes).await;
    let expected = version.is_v5().then_some(v5_reason);
    c.expect_disconnect(expected).await;
}

/// Asserts a connection that never completed CONNECT is closed without any packet.
async fn expect_closed_without_connack(c: &mut RawClient) {
    match c.recv_within(WAIT).await {
        Received::Closed => {}
        other => panic!("expected a close without CONNACK, got {other:?}"),
    }
}

/// Messages the broker dropped for `reason` so far.
fn dropped(broker: &RunningBroker, reason: DropReason) -> u64 {
    broker.broker.stats.dropped_count(reason)
}

fn limited(configure: impl FnOnce(&mut BrokerConfig)) -> BrokerConfig {
    let mut config = test_config();
    configure(&mut config);
    config
}

#[tokio::test]
async fn garbage_bytes_as_first_packet_close_without_connack() {
    let broker = start().await;
    let mut healthy = Healthy::new(&broker).await;
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[0xFF; 32],
        &[0x00, 0x00, 0x00, 0x00],
        &[0x10, 0x05, 0xDE, 0xAD, 0xBE, 0xEF, 0x00], // CONNECT header, nonsense body
        &[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],       // CONNECT with a 5-byte length
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", // a TLS ClientHello
    ] {
        let mut c = RawClient::open(&broker, V5).await;
        c.send_raw(garbage).await;
        expect_closed_without_connack(&mut c).await;
    }
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn first_packet_not_connect_closes_without_connack() {
    let broker = start().await;
    let mut healthy = Healthy::new(&broker).await;
    for first in [
        frame(0xC0, &[]),
        raw_publish(V4, b"t", b"x"),
        frame(0x82, &[0, 1, 0, 1, b'a', 0]),
        frame(0x20, &[0, 0]),
        frame(0xF0, &[0]), // AUTH
    ] {
        let mut c = RawClient::open(&broker, V5).await;
        c.send_raw(&first).await;
        expect_closed_without_connack(&mut c).await;
    }
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn reserved_packet_types_0_and_15() {
    let broker = start().await;
    let mut healthy = Healthy::new(&broker).await;
    // Type 0 is reserved in every version.
    expect_rejected(&broker, V4, &frame(0x00, &[]), ReasonCode::MalformedPacket).await;
    expect_rejected(&broker, V5, &frame(0x00, &[]), ReasonCode::MalformedPacket).await;
    // Type 15 is reserved in 3.1.1; in 5.0 it is AUTH, which needs an authentication method.
    expect_rejected(&broker, V4, &frame(0xF0, &[]), ReasonCode::MalformedPacket).await;
    expect_rejected(&broker, V5, &frame(0xF0, &[]), ReasonCode::ProtocolError).await;
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn bad_fixed_header_flags() {
    let broker = start().await;
    let mut healthy = Healthy::new(&broker).await;
    for bytes in [
        frame(0x41, &[0, 1]),                // PUBACK with flags 0001
        frame(0x60, &[0, 1]),                // PUBREL without its 0010
        frame(0x80, &[0, 1, 0, 1, b'a', 0]), // SUBSCRIBE without its 0010
        frame(0xA0, &[0, 1, 0, 1, b'a']),    // UNSUBSCRIBE without its 0010
        frame(0xC4, &[]),                    // PINGREQ with flags
        frame(0xE2, &[]),                    // DISCONNECT with flags
        frame(0x38, &[0, 1, b't']),          // PUBLISH QoS 0 with DUP
    ] {
        for version in [V4, V5] {
            expect_rejected(&broker, version, &bytes, ReasonCode::MalformedPacket).await;
        }
    }
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn five_byte_remaining_length() {
    let broker = start().await;
    let mut healthy = Healthy::new(&broker).await;
    for version in [V4, V5] {
        expect_rejected(
            &broker,
            version,
            &[0x30, 0x80, 0x80, 0x80, 0x80, 0x01],
            ReasonCode::MalformedPacket,
        )
        .await;
        expect_rejected(
            &broker,
            version,
            &[0xC0, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
            ReasonCode::MalformedPacket,
        )
        .await;
    }
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn publish_with_qos_3() {
    let broker = start().await;
    let mut healthy = Healthy::new(&broker).await;
    for version in [V4, V5] {
        let mut body = field(b"t");
        body.extend_from_slice(&[0, 1]);
        if version.is_v5() {
            body.push(0);
        }
        expect_rejected(
            &broker,
            version,
            &frame(0x36, &body),
            ReasonCode::MalformedPacket,
        )
        .await;
    }
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn invalid_utf8_and_nul_in_topic() {
    let broker = start().await;
    let mut healthy = Healthy::new(&broker).await;
    for topic in [
        &[b'a', 0xFF][..],
        &[0xC0, 0x80],
        &[0xED, 0xA0, 0x80],
        b"a\0b",
        b"\0",
    ] {
        for version in [V4, V5] {
            expect_rejected(
                &broker,
                version,
                &raw_publish(version, topic, b"x"),
                ReasonCode::MalformedPacket,
            )
            .await;
        }
    }
    // The same in a SUBSCRIBE filter.
    let mut body = vec![0, 1];
    body.extend(field(b"a/\xFF"));
    body.push(0);
    expect_rejected(
        &broker,
        V4,
        &frame(0x82, &body),
        ReasonCode::MalformedPacket,
    )
    .await;
    let mut body = vec![0, 1, 0];
    body.extend(field(b"a/\0"));
    body.push(0);
    expect_rejected(
        &broker,
        V5,
        &frame(0x82, &body),
        ReasonCode::MalformedPacket,
    )
    .await;
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn wildcard_in_publish_topic() {
    let broker = start().await;
    let mut healthy = Healthy::new(&broker).await;
    for topic in [&b"a/+"[..], b"#", b"a/#", b"a+"] {
        for version in [V4, V5] {
            expect_rejected(
                &broker,
                version,
                &raw_publish(version, topic, b"x"),
                ReasonCode::TopicNameInvalid,
            )
            .await;
        }
    }
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn packet_over_maximum_size() {
    let broker = start_with(limited(|c| c.settings.limits.max_packet_size = 1024)).await;
    let mut healthy = Healthy::new(&broker).await;
    for version in [V4, V5] {
        let big = encoded(
            &publish("big", QoS::AtMostOnce, 0, vec![b'x'; 2000]),
            version,
        );
        expect_rejected(&broker, version, &big, ReasonCode::PacketTooLarge).await;
        // Only the fixed header has arrived: refused before the body is buffered.
        expect_rejected(&broker, version, &big[..3], ReasonCode::PacketTooLarge).await;
    }
    // An oversized 5.0 CONNECT gets CONNACK 0x95.
    let mut c = RawClient::open(&broker, V5).await;
    let mut connect = connect_packet(V5, "big-connect");
    connect.password = Some(Bytes::from(vec![0u8; 2000]));
    connect.username = Some("u".into());
    c.send(&Packet::Connect(Box::new(connect))).await;
    assert_eq!(
        c.expect_connack().await.reason_code,
        ReasonCode::PacketTooLarge
    );
    expect_closed_without_connack(&mut c).await;
    // Just under the limit is fine.
    let mut ok = RawClient::connect(&broker, V5, "fits").await;
    ok.send(&publish("fits", QoS::AtMostOnce, 0, vec![b'x'; 900]))
        .await;
    ok.send(&Packet::PingReq).await;
    assert_eq!(ok.recv().await, Packet::PingResp);
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn topic_too_long_or_too_deep() {
    let broker = start_with(limited(|c| {
        c.settings.limits.max_topic_length = 32;
        c.settings.limits.max_topic_levels = 4;
    }))
    .await;
    let mut healthy = Healthy::new(&broker).await;
    for topic in ["x".repeat(33), "a/b/c/d/e".to_string()] {
        for version in [V4, V5] {
            let bytes = encoded(&publish(&topic, QoS::AtMostOnce, 0, b"x".to_vec()), version);
            expect_rejected(&broker, version, &bytes, ReasonCode::TopicNameInvalid).await;
        }
        // 5.0 QoS 1: refused in the PUBACK, the connection stays.
        let mut c = RawClient::connect(&broker, V5, "long-q1").await;
        c.send(&publish(&topic, QoS::AtLeastOnce, 3, b"x".to_vec()))
            .await;
        match c.recv().await {
            Packet::PubAck(ack) => assert_eq!(
                (ack.packet_id, ack.reason_code),
                (3, ReasonCode::TopicNameInvalid)
            ),
            other => panic!("expected PUBACK 0x90, got {other:?}"),
        }
        // As a filter: SUBACK failure (0x8F in 5.0, 0x80 in 3.1.1).
        let mut v5 = RawClient::connect(&broker, V5, "long-sub5").await;
        assert_eq!(
            v5.subscribe(1, &topic, QoS::AtMostOnce).await.reason_codes,
            vec![ReasonCode::TopicFilterInvalid]
        );
        let mut v4 = RawClient::connect(&broker, V4, "long-sub4").await;
        assert_eq!(
            v4.subscribe(1, &topic, QoS::AtMostOnce).await.reason_codes,
            vec![ReasonCode::UnspecifiedError]
        );
    }
    // A Will topic over the limits refuses the CONNECT.
    let mut connect = connect_packet(V5, "long-will");
    connect.will = Some(Will {
        topic: "w/".repeat(20).trim_end_matches('/').into(),
        ..Will::default()
    });
    let (_c, ack) = RawClient::connect_with(&broker, connect).await;
    assert_eq!(ack.reason_code, ReasonCode::TopicNameInvalid);
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn too_many_subscriptions_per_client() {
    let broker = start_with(limited(|c| {
        c.settings.limits.max_subscriptions_per_client = 3
    }))
    .await;
    let mut healthy = Healthy::new(&broker).await;
    for (version, refused) in [
        (V5, ReasonCode::QuotaExceeded),
        (V4, ReasonCode::UnspecifiedError),
    ] {
        let mut c = RawClient::connect(&broker, version, "many-subs").await;
        let filters = (0..5)
            .map(|i| {
                (
                    ByteString::from(format!("s/{i}")),
                    SubscriptionOptions::default(),
                )
            })
            .collect();
        let ack = c.subscribe_with(1, filters, Default::default()).await;
        assert_eq!(
            ack.reason_codes,
            vec![
                ReasonCode::Success,
                ReasonCode::Success,
                ReasonCode::Success,
                refused,
                refused
            ],
            "{version:?}"
        );
        c.disconnect().await;
    }
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn max_connections_reached() {
    let broker = start_with(limited(|c| c.settings.limits.max_connections = 3)).await;
    let mut healthy = Healthy::new(&broker).await; // 2 of 3
    let third = RawClient::connect(&broker, V4, "third").await;
    let (mut c, ack) = RawClient::connect_with(&broker, connect_packet(V5, "fourth5")).await;
    assert_eq!(ack.reason_code, ReasonCode::QuotaExceeded);
    expect_closed_without_connack(&mut c).await;
    let mut c = RawClient::open(&broker, V4).await;
    c.send(&Packet::Connect(Box::new(connect_packet(V4, "fourth4"))))
        .await;
    let mut raw = [0u8; 4];
    use tokio::io::AsyncReadExt;
    tokio::time::timeout(WAIT, c.stream.read_exact(&mut raw))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        raw,
        [0x20, 2, 0, 3],
        "3.1.1 CONNACK return code 3, server unavailable"
    );
    healthy.check().await;
    // A slot frees up when a client leaves.
    third.disconnect().await;
    let deadline = Instant::now() + WAIT;
    while broker.broker.connections.load(Ordering::Relaxed) > 2 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let again = RawClient::connect(&broker, V5, "again").await;
    again.disconnect().await;
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn client_id_too_long() {
    let broker = start().await;
    let mut healthy = Healthy::new(&broker).await;
    let long = "i".repeat(usize::from(broker.broker.settings().limits.max_client_id_length) + 1);
    let (mut c, ack) = RawClient::connect_with(&broker, connect_packet(V5, &long)).await;
    assert_eq!(ack.reason_code, ReasonCode::ClientIdentifierNotValid); // 0x85
    expect_closed_without_connack(&mut c).await;
    let (mut c, ack) = RawClient::connect_with(&broker, connect_packet(V4, &long)).await;
    assert_eq!(ack.reason_code.to_v4_connack(), 2);
    expect_closed_without_connack(&mut c).await;
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn half_sent_connect_does_not_block_others() {
    let broker = start().await;
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut c = RawClient::open(&broker, V4).await;
        let bytes = encoded(
            &Packet::Connect(Box::new(connect_packet(V4, "stalled"))),
            V4,
        );
        c.send_raw(&bytes[..bytes.len() / 2]).await;
        stalled.push(c);
    }
    let started = Instant::now();
    let mut healthy = Healthy::new(&broker).await;
    healthy.check().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "healthy clients were held up"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn connect_never_sent_closes_after_the_connect_timeout() {
    let broker = start().await;
    let mut healthy = Healthy::new(&broker).await;
    let mut idle = RawClient::open(&broker, V4).await;
    let mut half = RawClient::open(&broker, V4).await;
    half.send_raw(&[0x10, 0x20, 0x00]).await;
    let started = Instant::now();
    // Sleep: the 10 s CONNECT timeout (connection::CONNECT_TIMEOUT) is the behaviour under test.
    for c in [&mut idle, &mut half] {
        match c.recv_within(Duration::from_secs(13)).await {
            Received::Closed => {}
            other => panic!("expected a close after the connect timeout, got {other:?}"),
        }
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9),
        "closed after {waited:?}, too early"
    );
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn half_open_socket_publishes_will_and_frees_the_session() {
    let broker = start().await;
    let mut healthy = Healthy::new(&broker).await;
    let mut watcher = RawClient::connect(&broker, V5, "watcher").await;
    watcher.subscribe(1, "half/will", QoS::AtMostOnce).await;
    for version in [V4, V5] {
        let mut connect = connect_packet(version, "half");
        connect.will = Some(Will {
            topic: "half/will".into(),
            payload: Bytes::from_static(b"gone"),
            ..Will::default()
        });
        let (mut c, _) = RawClient::connect_with(&broker, connect).await;
        // The client shuts its sending side (FIN) and sends nothing more.
        c.stream.shutdown().await.unwrap();
        match c.recv_within(WAIT).await {
            Received::Closed => {}
            other => panic!("expected the broker to close its side, got {other:?}"),
        }
        assert_eq!(&watcher.expect_publish().await.payload[..], b"gone");
    }
    // A silent 5.0 peer (no FIN, nothing sent) is ended by Keep Alive with 0x8D.
    let mut connect = connect_packet(V5, "silent");
    connect.keep_alive = 1;
    let (mut c, _) = RawClient::connect_with(&broker, connect).await;
    // Sleep: Keep Alive 1 s is the behaviour under test.
    c.expect_disconnect(Some(ReasonCode::KeepAliveTimeout))
        .await;
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn pingreq_flood_is_answered_in_full() {
    let broker = start().await;
    let mut healthy = Healthy::new(&broker).await;
    let mut c = RawClient::connect(&broker, V4, "pinger").await;
    const N: usize = 10_000;
    let bytes: Vec<u8> = std::iter::repeat_n([0xC0u8, 0x00], N).flatten().collect();
    c.send_raw(&bytes).await;
    for _ in 0..N {
        assert_eq!(c.recv().await, Packet::PingResp);
    }
    c.expect_nothing().await;
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn publish_flood_without_subscribers() {
    let broker = start().await;
    let mut healthy = Healthy::new(&broker).await;
    let before = dropped(&broker, DropReason::NoSubscribers);
    let mut c = RawClient::connect(&broker, V5, "flooder").await;
    const N: u64 = 20_000;
    let mut bytes = Vec::new();
    for i in 0..N {
        bytes.extend(encoded(
            &publish("flood/nobody", QoS::AtMostOnce, 0, i.to_be_bytes().to_vec()),
            V5,
        ));
    }
    c.send_raw(&bytes).await;
    c.send(&Packet::PingReq).await;
    assert_eq!(c.recv().await, Packet::PingResp);
    assert_eq!(dropped(&broker, DropReason::NoSubscribers) - before, N);
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn subscriber_that_never_reads_gets_its_queue_capped() {
    const MAX_QUEUED: usize = 100;
    let broker = start_with(limited(|c| {
        c.settings.limits.max_queued_messages = MAX_QUEUED as u32;
    }))
    .await;
    let mut healthy = Healthy::new(&broker).await;
    let mut slow = RawClient::connect(&broker, V4, "slow").await;
    slow.subscribe(1, "flood/slow", QoS::AtMostOnce).await;
    // Never read from `slow` again. 20,000 x 1 KiB is far more than the socket buffers hold.
    let mut publisher = RawClient::connect(&broker, V5, "fast").await;
    let one = encoded(
        &publish("flood/slow", QoS::AtMostOnce, 0, vec![b'p'; 1024]),
        V5,
    );
    let mut bytes = Vec::with_capacity(one.len() * 2000);
    for round in 0..10 {
        bytes.clear();
        for _ in 0..2000 {
            bytes.extend_from_slice(&one);
        }
        publisher.send_raw(&bytes).await;
        // The publisher keeps being served throughout.
        publisher.send(&Packet::PingReq).await;
        assert_eq!(publisher.recv().await, Packet::PingResp, "round {round}");
    }
    assert!(
        dropped(&broker, DropReason::QueueFull) > 0,
        "the queue was never full"
    );
    let queued = broker
        .broker
        .sessions
        .get("slow")
        .unwrap()
        .state
        .lock()
        .queue
        .len();
    assert!(queued <= MAX_QUEUED, "{queued} queued");
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn full_queue_of_qos1_refuses_with_quota_exceeded() {
    let broker = start_with(limited(|c| {
        c.settings.limits.max_queued_messages = 5;
        c.settings.limits.max_inflight_outbound = 5;
    }))
    .await;
    let mut healthy = Healthy::new(&broker).await;
    let mut slow = RawClient::connect(&broker, V5, "slow1").await;
    slow.subscribe(1, "flood/q1", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connect(&broker, V5, "pub1").await;
    // 5 in flight (never acknowledged) + 5 queued are accepted; the 11th is refused.
    let mut codes = Vec::new();
    for id in 1..=12u16 {
        publisher
            .send(&publish("flood/q1", QoS::AtLeastOnce, id, b"m".to_vec()))
            .await;
        match publisher.recv().await {
            Packet::PubAck(ack) => codes.push(ack.reason_code),
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
    assert_eq!(&codes[..10], &[ReasonCode::Success; 10]);
    assert_eq!(&codes[10..], &[ReasonCode::QuotaExceeded; 2]);
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn qos2_beyond_receive_maximum() {
    let broker = start_with(limited(|c| c.settings.limits.receive_maximum = 5)).await;
    let mut healthy = Healthy::new(&broker).await;
    let (mut c, ack) = RawClient::connect_with(&broker, connect_packet(V5, "rm")).await;
    assert_eq!(ack.properties.receive_maximum, Some(5));
    for id in 1..=5u16 {
        c.send(&publish("rm/t", QoS::ExactlyOnce, id, b"x".to_vec()))
            .await;
        assert!(matches!(c.recv().await, Packet::PubRec(_)));
    }
    c.send(&publish("rm/t", QoS::ExactlyOnce, 6, b"x".to_vec()))
        .await;
    c.expect_disconnect(Some(ReasonCode::ReceiveMaximumExceeded))
        .await;
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn second_connect_and_protocol_errors() {
    let broker = start().await;
    let mut healthy = Healthy::new(&broker).await;
    let second = encoded(&Packet::Connect(Box::new(connect_packet(V5, "again"))), V5);
    expect_rejected(&broker, V5, &second, ReasonCode::ProtocolError).await;
    let second = encoded(&Packet::Connect(Box::new(connect_packet(V4, "again"))), V4);
    expect_rejected(&broker, V4, &second, ReasonCode::ProtocolError).await;
    // Packet identifier 0 on a QoS 1 PUBLISH.
    expect_rejected(
        &broker,
        V5,
        &frame(0x32, &[0, 1, b't', 0, 0, 0]),
        ReasonCode::ProtocolError,
    )
    .await;
    // Server-to-client packets sent by a client.
    expect_rejected(
        &broker,
        V5,
        &frame(0x90, &[0, 1, 0, 0]),
        ReasonCode::ProtocolError,
    )
    .await;
    healthy.check().await;
    broker.shutdown().await;
}

/// Fills the socket buffers of `slow` (subscribed to `topic`, never reading).
async fn stall(broker: &RunningBroker, topic: &str) {
    let mut publisher = RawClient::connect(broker, V5, "staller").await;
    let one = encoded(&publish(topic, QoS::AtMostOnce, 0, vec![b'p'; 1024]), V5);
    let bytes: Vec<u8> = std::iter::repeat_n(one, 20_000).flatten().collect();
    publisher.send_raw(&bytes).await;
    publisher.send(&Packet::PingReq).await;
    assert_eq!(publisher.recv().await, Packet::PingResp);
    assert!(dropped(broker, DropReason::QueueFull) > 0, "not stalled");
}

#[tokio::test]
async fn client_that_never_reads_can_be_taken_over() {
    let broker = start_with(limited(|c| c.settings.limits.max_queued_messages = 100)).await;
    let mut healthy = Healthy::new(&broker).await;
    let mut stuck = RawClient::connect(&broker, V5, "stuck").await;
    stuck.subscribe(1, "stuck/t", QoS::AtMostOnce).await;
    stall(&broker, "stuck/t").await;
    // The same client id again: the new connection works; the stuck one is closed.
    let mut fresh = RawClient::connect(&broker, V5, "stuck").await;
    fresh.send(&Packet::PingReq).await;
    assert_eq!(fresh.recv().await, Packet::PingResp);
    let deadline = Instant::now() + WAIT;
    while broker.broker.connections.load(Ordering::Relaxed) > 4 {
        assert!(
            Instant::now() < deadline,
            "the stuck connection was never closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(stuck);
    healthy.check().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn shutdown_is_not_held_up_by_a_client_that_never_reads() {
    let broker = start_with(limited(|c| {
        c.settings.limits.max_queued_messages = 100;
        c.settings.shutdown.grace_period_secs = 10;
    }))
    .await;
    let mut stuck = RawClient::connect(&broker, V5, "stuck").await;
    stuck.subscribe(1, "stuck/t", QoS::AtMostOnce).await;
    stall(&broker, "stuck/t").await;
    let started = Instant::now();
    broker.shutdown().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    drop(stuck);
}
