//! Helpers shared by the MQTT 5.0 conformance tests: CONNECT variants, acknowledgement packets
//! and small assertions built on the raw test client.
#![allow(dead_code)]

use std::time::Duration;

pub use bytes::Bytes;
pub use ferrumq_broker::codec::*;
pub use ferrumq_broker::config::BrokerConfig;
pub use ferrumq_broker::listeners::RunningBroker;

pub use crate::support::*;

pub const V5: ProtocolVersion = ProtocolVersion::V5;

/// A 5.0 CONNECT with Clean Start and keep alive 60 s, changed by `f`.
pub fn connect_v5(client_id: &str, f: impl FnOnce(&mut Connect)) -> Connect {
    let mut connect = connect_packet(V5, client_id);
    f(&mut connect);
    connect
}

/// Connects a 5.0 client with Clean Start; asserts Success.
pub async fn client(broker: &RunningBroker, client_id: &str) -> RawClient {
    RawClient::connect(broker, V5, client_id).await
}

/// Connects a 5.0 client with `connect` changed by `f`; asserts Success.
pub async fn client_with(
    broker: &RunningBroker,
    client_id: &str,
    f: impl FnOnce(&mut Connect),
) -> (RawClient, ConnAck) {
    let (c, ack) = RawClient::connect_with(broker, connect_v5(client_id, f)).await;
    assert_eq!(
        ack.reason_code,
        ReasonCode::Success,
        "CONNACK for {client_id}"
    );
    (c, ack)
}

/// Connects with the given Clean Start and Session Expiry Interval; returns the client and
/// whether the session was present.
pub async fn session_client(
    broker: &RunningBroker,
    client_id: &str,
    clean_start: bool,
    expiry: u32,
) -> (RawClient, bool) {
    let (c, ack) = client_with(broker, client_id, |c| {
        c.clean_start = clean_start;
        c.properties.session_expiry_interval = Some(expiry);
    })
    .await;
    (c, ack.session_present)
}

/// Sends CONNECT and returns the CONNACK, whatever its reason code.
pub async fn try_connect(broker: &RunningBroker, connect: Connect) -> (RawClient, ConnAck) {
    RawClient::connect_with(broker, connect).await
}

pub fn ack(packet_id: u16) -> PubResponse {
    PubResponse {
        packet_id,
        ..Default::default()
    }
}

pub fn ack_with(packet_id: u16, reason_code: ReasonCode) -> PubResponse {
    PubResponse {
        packet_id,
        reason_code,
        ..Default::default()
    }
}

pub fn puback(packet_id: u16) -> Packet {
    Packet::PubAck(ack(packet_id))
}
pub fn pubrec(packet_id: u16) -> Packet {
    Packet::PubRec(ack(packet_id))
}
pub fn pubrel(packet_id: u16) -> Packet {
    Packet::PubRel(ack(packet_id))
}
pub fn pubcomp(packet_id: u16) -> Packet {
    Packet::PubComp(ack(packet_id))
}

/// A PUBLISH from a client.
pub fn publish(topic: &str, payload: &'static [u8], qos: QoS, packet_id: u16) -> Publish {
    Publish {
        topic: topic.into(),
        payload: Bytes::from_static(payload),
        qos,
        packet_id,
        ..Publish::default()
    }
}

pub fn opts(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        ..Default::default()
    }
}

/// Subscribes to one filter with options and an optional Subscription Identifier; returns the
/// SUBACK reason codes.
pub async fn subscribe_opts(
    c: &mut RawClient,
    packet_id: u16,
    filter: &str,
    options: SubscriptionOptions,
    identifier: Option<u32>,
) -> Vec<ReasonCode> {
    c.subscribe_with(
        packet_id,
        vec![(filter.into(), options)],
        SubscribeProperties {
            subscription_identifier: identifier,
            ..Default::default()
        },
    )
    .await
    .reason_codes
}

pub async fn unsubscribe(c: &mut RawClient, packet_id: u16, filters: &[&str]) -> UnsubAck {
    c.send(&Packet::Unsubscribe(Unsubscribe {
        packet_id,
        properties: UserProperties::default(),
        filters: filters.iter().map(|f| ByteString::from(*f)).collect(),
    }))
    .await;
    match c.recv().await {
        Packet::UnsubAck(ack) => ack,
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
}

/// Publishes QoS 0 and does not wait for anything.
pub async fn pub0(c: &mut RawClient, topic: &str, payload: &'static [u8]) {
    c.publish(topic, payload, QoS::AtMostOnce, 0, false).await;
}

/// Publishes QoS 1 and waits for the PUBACK; returns its reason code.
pub async fn pub1(c: &mut RawClient, topic: &str, payload: &'static [u8], id: u16) -> ReasonCode {
    pub1_with(c, publish(topic, payload, QoS::AtLeastOnce, id)).await
}

/// Sends a QoS 1 PUBLISH and waits for the PUBACK; returns its reason code.
pub async fn pub1_with(c: &mut RawClient, p: Publish) -> ReasonCode {
    let id = p.packet_id;
    c.send(&Packet::Publish(p)).await;
    match c.recv().await {
        Packet::PubAck(a) if a.packet_id == id => a.reason_code,
        other => panic!("expected PUBACK {id}, got {other:?}"),
    }
}

/// Publishes a retained QoS 1 message and waits for the PUBACK.
pub async fn retain(c: &mut RawClient, topic: &str, payload: &'static [u8], id: u16) {
    let mut p = publish(topic, payload, QoS::AtLeastOnce, id);
    p.retain = true;
    pub1_with(c, p).await;
}

/// Runs a whole QoS 2 exchange as publisher; returns the PUBREC reason code.
pub async fn pub2(c: &mut RawClient, topic: &str, payload: &'static [u8], id: u16) -> ReasonCode {
    c.send(&Packet::Publish(publish(
        topic,
        payload,
        QoS::ExactlyOnce,
        id,
    )))
    .await;
    let code = match c.recv().await {
        Packet::PubRec(r) if r.packet_id == id => r.reason_code,
        other => panic!("expected PUBREC {id}, got {other:?}"),
    };
    if !code.is_error() {
        c.send(&pubrel(id)).await;
        assert_eq!(c.recv().await, pubcomp(id));
    }
    code
}

/// Waits for a PUBLISH and acknowledges it as its QoS requires (whole QoS 2 exchange).
pub async fn recv_acked(c: &mut RawClient) -> Publish {
    let p = c.expect_publish().await;
    match p.qos {
        QoS::AtMostOnce => {}
        QoS::AtLeastOnce => c.send(&puback(p.packet_id)).await,
        QoS::ExactlyOnce => {
            c.send(&pubrec(p.packet_id)).await;
            assert_eq!(c.recv().await, pubrel(p.packet_id));
            c.send(&pubcomp(p.packet_id)).await;
        }
    }
    p
}

/// Payloads of the next `n` PUBLISH packets, acknowledging each (QoS 2 exchanges may
/// interleave: a PUBREL can arrive after later PUBLISH packets).
pub async fn recv_payloads(c: &mut RawClient, n: usize) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(n);
    let mut open = 0usize;
    while out.len() < n || open > 0 {
        match c.recv().await {
            Packet::Publish(p) => {
                match p.qos {
                    QoS::AtMostOnce => {}
                    QoS::AtLeastOnce => c.send(&puback(p.packet_id)).await,
                    QoS::ExactlyOnce => {
                        open += 1;
                        c.send(&pubrec(p.packet_id)).await;
                    }
                }
                out.push(p.payload);
            }
            Packet::PubRel(r) => {
                open -= 1;
                c.send(&pubcomp(r.packet_id)).await;
            }
            other => panic!("expected PUBLISH or PUBREL, got {other:?}"),
        }
    }
    out
}

/// Round-trips a PINGREQ: everything the broker did for earlier packets on this connection
/// has been written once PINGRESP arrives.
pub async fn sync(c: &mut RawClient) {
    c.send(&Packet::PingReq).await;
    match c.recv().await {
        Packet::PingResp => {}
        other => panic!("expected PINGRESP, got {other:?}"),
    }
}

/// The next packet, skipping nothing; panics on a close or silence.
pub async fn next(c: &mut RawClient) -> Packet {
    c.recv().await
}

/// Asserts the connection is closed without a DISCONNECT and without any other packet first.
pub async fn expect_closed(c: &mut RawClient) {
    match c.recv_within(WAIT).await {
        Received::Closed => {}
        other => panic!("expected the connection to close, got {other:?}"),
    }
}

/// Waits until the broker has no session for `client_id` (bounded by `WAIT`).
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads the DISCONNECT the broker sends before closing; asserts the close follows.
pub async fn expect_disconnect_packet(c: &mut RawClient) -> Disconnect {
    let d = match c.recv().await {
        Packet::Disconnect(d) => d,
        other => panic!("expected DISCONNECT, got {other:?}"),
    };
    expect_closed(c).await;
    d
}

pub fn config(f: impl FnOnce(&mut BrokerConfig)) -> BrokerConfig {
    let mut config = test_config();
    f(&mut config);
    config
}

pub fn user_props(pairs: &[(&str, &str)]) -> UserProperties {
    UserProperties::from_pairs(pairs.iter().copied()).unwrap()
}

pub fn will(topic: &str, payload: &'static [u8]) -> Will {
    Will {
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.into(),
        payload: Bytes::from_static(payload),
        properties: WillProperties::default(),
    }
}

/// Drops the TCP connection without DISCONNECT (an abnormal close).
pub fn drop_connection(c: RawClient) {
    drop(c);
}

pub fn sub_ids(p: &Publish) -> Vec<u32> {
    let mut ids: Vec<u32> = p.properties.subscription_identifiers.to_vec();
    ids.sort_unstable();
    ids
}
