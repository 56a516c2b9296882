//! Helpers shared by the MQTT 3.1.1 conformance modules: raw packet bytes, CONNECT variants and
//! acknowledgement shorthands on top of `support::RawClient`.
#![allow(dead_code)]

use bytes::Bytes;
use ferrumq_broker::codec::*;
use ferrumq_broker::listeners::RunningBroker;

use crate::support::*;

pub const V4: ProtocolVersion = ProtocolVersion::V3_1_1;

/// A 3.1.1 client connected with Clean Session 1.
pub async fn connect(broker: &RunningBroker, client_id: &str) -> RawClient {
    RawClient::connect(broker, V4, client_id).await
}

/// A 3.1.1 CONNECT with Clean Session 0.
pub fn persistent(client_id: &str) -> Connect {
    Connect {
        clean_start: false,
        ..connect_packet(V4, client_id)
    }
}

/// A 3.1.1 CONNECT (Clean Session 1) carrying a Will.
pub fn with_will(
    client_id: &str,
    topic: &str,
    payload: &'static [u8],
    qos: QoS,
    retain: bool,
) -> Connect {
    Connect {
        will: Some(Will {
            qos,
            retain,
            topic: topic.into(),
            payload: Bytes::from_static(payload),
            properties: Default::default(),
        }),
        ..connect_packet(V4, client_id)
    }
}

/// Connects with `connect` and asserts CONNACK 0x00; returns the client and Session Present.
pub async fn connect_ok(broker: &RunningBroker, connect: Connect) -> (RawClient, bool) {
    let (client, ack) = RawClient::connect_with(broker, connect).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    (client, ack.session_present)
}

pub fn ack(packet_id: u16) -> PubResponse {
    PubResponse {
        packet_id,
        ..Default::default()
    }
}

pub async fn puback(c: &mut RawClient, packet_id: u16) {
    c.send(&Packet::PubAck(ack(packet_id))).await;
}
pub async fn pubrec(c: &mut RawClient, packet_id: u16) {
    c.send(&Packet::PubRec(ack(packet_id))).await;
}
pub async fn pubrel(c: &mut RawClient, packet_id: u16) {
    c.send(&Packet::PubRel(ack(packet_id))).await;
}
pub async fn pubcomp(c: &mut RawClient, packet_id: u16) {
    c.send(&Packet::PubComp(ack(packet_id))).await;
}

/// Publishes at QoS 0/1/2 and completes the publisher's side of the flow.
pub async fn publish_acked(
    c: &mut RawClient,
    topic: &str,
    payload: &'static [u8],
    qos: QoS,
    packet_id: u16,
    retain: bool,
) {
    c.publish(topic, payload, qos, packet_id, retain).await;
    match qos {
        QoS::AtMostOnce => {}
        QoS::AtLeastOnce => assert_eq!(c.recv().await, Packet::PubAck(ack(packet_id))),
        QoS::ExactlyOnce => {
            assert_eq!(c.recv().await, Packet::PubRec(ack(packet_id)));
            pubrel(c, packet_id).await;
            assert_eq!(c.recv().await, Packet::PubComp(ack(packet_id)));
        }
    }
}

/// Receives one PUBLISH and completes the receiver's side of its QoS flow.
pub async fn receive_acked(c: &mut RawClient) -> Publish {
    let p = c.expect_publish().await;
    match p.qos {
        QoS::AtMostOnce => {}
        QoS::AtLeastOnce => puback(c, p.packet_id).await,
        QoS::ExactlyOnce => {
            pubrec(c, p.packet_id).await;
            assert_eq!(c.recv().await, Packet::PubRel(ack(p.packet_id)));
            pubcomp(c, p.packet_id).await;
        }
    }
    p
}

/// Subscribes to one filter and returns its SUBACK return code.
pub async fn sub(c: &mut RawClient, packet_id: u16, filter: &str, qos: QoS) -> ReasonCode {
    let ack = c.subscribe(packet_id, filter, qos).await;
    assert_eq!(ack.reason_codes.len(), 1);
    ack.reason_codes[0]
}

/// Asserts the broker closes the connection without sending anything (3.1.1 has no
/// DISCONNECT from the server).
pub async fn expect_bare_close(c: &mut RawClient) {
    match c.recv_within(WAIT).await {
        Received::Closed => {}
        other => panic!("expected the connection to close with nothing sent, got {other:?}"),
    }
}

/// Asserts the connection is still open and working: PINGREQ gets PINGRESP.
pub async fn expect_alive(c: &mut RawClient) {
    c.send(&Packet::PingReq).await;
    assert_eq!(c.recv().await, Packet::PingResp);
}

/// A whole packet: `first` byte, Remaining Length, `body`.
pub fn frame(first: u8, body: &[u8]) -> Vec<u8> {
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

/// A length-prefixed string or binary field.
pub fn field(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// CONNECT bytes with an exact protocol name, level and flags byte, keep alive 60, and the
/// client id as the only payload field (callers add Will or user fields by appending to `extra`).
pub fn raw_connect(name: &[u8], level: u8, flags: u8, client_id: &[u8], extra: &[u8]) -> Vec<u8> {
    let mut body = field(name);
    body.push(level);
    body.push(flags);
    body.extend_from_slice(&60u16.to_be_bytes());
    body.extend_from_slice(&field(client_id));
    body.extend_from_slice(extra);
    frame(0x10, &body)
}

/// A 3.1.1 Clean Session CONNECT as raw bytes.
pub fn raw_connect_v4(client_id: &str) -> Vec<u8> {
    raw_connect(b"MQTT", 4, 0x02, client_id.as_bytes(), &[])
}

/// A QoS 0 PUBLISH with raw topic bytes.
pub fn raw_publish_qos0(topic: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut body = field(topic);
    body.extend_from_slice(payload);
    frame(0x30, &body)
}

/// Opens a raw connection and completes CONNECT/CONNACK from raw bytes.
pub async fn raw_connected(broker: &RunningBroker, client_id: &str) -> RawClient {
    let mut c = RawClient::open(broker, V4).await;
    c.send_raw(&raw_connect_v4(client_id)).await;
    assert_eq!(c.expect_connack().await.reason_code, ReasonCode::Success);
    c
}
