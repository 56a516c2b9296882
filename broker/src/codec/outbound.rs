//! A PUBLISH prepared once and written for many subscribers.
//!
//! Fan-out must not re-encode the payload per subscriber. The 5.0 properties that every
//! subscriber receives unchanged (payload format, content type, response topic, correlation
//! data, user properties) are encoded once ([`shared_properties`]); [`PublishWire`] borrows
//! them with the topic and payload from whoever holds them (the broker's message, or an
//! [`OutboundPublish`] that owns all three). What
//! differs per subscriber ([`Delivery`]: QoS, DUP, RETAIN, packet identifier, topic alias,
//! subscription identifiers, remaining message expiry) is written into a small head in front of
//! the shared payload. The head and the payload `Bytes` go to the socket together in one
//! vectored write, so the payload is never copied.

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;

use super::encode::publish_flags;
use super::error::EncodeError;
use super::packet::{PacketType, ProtocolVersion, Publish, QoS};
use super::properties::{checked_varint, id, PropertyBlock, PublishProperties};
use super::wire::{varint_len, Counter, Sink, VARINT_MAX};

/// Whether `p` has any property that [`OutboundPublish`] encodes once for every subscriber.
fn has_shared_properties(p: &PublishProperties) -> bool {
    p.payload_format_indicator.is_some()
        || p.response_topic.is_some()
        || p.correlation_data.is_some()
        || p.content_type.is_some()
        || !p.user_properties.is_empty()
}

/// The subscriber-independent parts of a PUBLISH, encoded once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutboundPublish {
    topic: ByteString,
    payload: Bytes,
    /// Encoded 5.0 properties shared by every subscriber, without a length prefix.
    shared_properties: Bytes,
}

/// What one subscriber's copy of a PUBLISH says that others may not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery<'a> {
    pub qos: QoS,
    pub dup: bool,
    pub retain: bool,
    /// Non-zero when `qos` is 1 or 2.
    pub packet_id: u16,
    /// The Topic Alias to send (5.0).
    pub topic_alias: Option<u16>,
    /// Send an empty topic name because the receiver already knows `topic_alias` (5.0).
    pub omit_topic: bool,
    /// One per matching subscription that has an identifier (5.0).
    pub subscription_identifiers: &'a [u32],
    /// What is left of the Message Expiry Interval when the message is sent (5.0).
    pub message_expiry_interval: Option<u32>,
}

impl OutboundPublish {
    /// Prepares `publish` for fan-out. Allocates only if it has shared 5.0 properties.
    pub fn new(publish: &Publish) -> Result<Self, EncodeError> {
        Ok(OutboundPublish {
            shared_properties: shared_properties(&publish.topic, &publish.properties)?,
            topic: publish.topic.clone(),
            payload: publish.payload.clone(),
        })
    }

    /// The encoder's view of this PUBLISH.
    pub fn wire(&self) -> PublishWire<'_> {
        PublishWire {
            topic: &self.topic,
            payload: &self.payload,
            shared_properties: &self.shared_properties,
        }
    }

    /// The payload, shared by every subscriber's copy.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }
}

/// The 5.0 properties of `p` that every subscriber receives unchanged, encoded once without a
/// length prefix; empty (and nothing copied or counted) when there are none, as for every
/// 3.1.1 message. Fails when `topic` cannot be encoded.
pub fn shared_properties(topic: &str, p: &PublishProperties) -> Result<Bytes, EncodeError> {
    if topic.len() > usize::from(u16::MAX) {
        return Err(EncodeError::FieldTooLong(topic.len()));
    }
    if !has_shared_properties(p) {
        return Ok(Bytes::new());
    }
    let shared = PublishProperties {
        payload_format_indicator: p.payload_format_indicator,
        response_topic: p.response_topic.clone(),
        correlation_data: p.correlation_data.clone(),
        content_type: p.content_type.clone(),
        user_properties: p.user_properties.clone(),
        ..PublishProperties::default()
    };
    let mut counter = Counter(0);
    shared.write_properties(&mut counter)?;
    let mut buf = BytesMut::with_capacity(counter.0);
    shared.write_properties(&mut buf)?;
    Ok(buf.freeze())
}

/// A PUBLISH as the encoder needs it: the topic, the payload and the shared properties,
/// borrowed from wherever they are kept (an [`OutboundPublish`], or a broker's message that
/// holds them once instead of twice).
#[derive(Debug, Clone, Copy)]
pub struct PublishWire<'a> {
    pub topic: &'a ByteString,
    pub payload: &'a Bytes,
    /// From [`shared_properties`].
    pub shared_properties: &'a Bytes,
}

impl PublishWire<'_> {
    fn properties_len(&self, d: &Delivery) -> usize {
        let mut counter = Counter(0);
        write_per_delivery_properties(d, &mut counter);
        counter.0 + self.shared_properties.len()
    }

    /// Length of the body (everything after the fixed header) for `d`.
    pub(super) fn body_len(&self, v: ProtocolVersion, d: &Delivery) -> usize {
        let topic = if d.omit_topic && v.is_v5() {
            0
        } else {
            self.topic.len()
        };
        let mut len = 2 + topic + self.payload.len();
        if d.qos != QoS::AtMostOnce {
            len += 2;
        }
        if v.is_v5() {
            let props = self.properties_len(d);
            len += varint_len(props as u32) + props;
        }
        len
    }

    /// Size of the whole packet for this delivery: what the receiver's Maximum Packet Size is
    /// compared to.
    pub fn encoded_len(&self, v: ProtocolVersion, d: &Delivery) -> usize {
        let body = self.body_len(v, d);
        1 + varint_len(body as u32) + body
    }

    /// Size of the head [`write_head`](Self::write_head) produces.
    pub fn head_len(&self, v: ProtocolVersion, d: &Delivery) -> usize {
        self.encoded_len(v, d) - self.payload.len()
    }

    /// Writes everything but the payload: fixed header, topic, packet identifier, properties.
    /// The packet is this head followed by [`payload`](Self::payload).
    pub fn write_head(
        &self,
        v: ProtocolVersion,
        d: &Delivery,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        if d.qos != QoS::AtMostOnce && d.packet_id == 0 {
            return Err(EncodeError::MissingPacketIdentifier(d.qos.as_u8()));
        }
        if v.is_v5() {
            for sub_id in d.subscription_identifiers {
                checked_varint(*sub_id)?;
            }
        }
        let body = self.body_len(v, d);
        if body > VARINT_MAX as usize {
            return Err(EncodeError::PacketTooLarge(body));
        }
        buf.reserve(self.head_len(v, d));
        self.put_head(v, d, body, buf)
    }

    /// Writes the head of a packet whose body is `body` bytes long (checked by the caller).
    pub(super) fn put_head<S: Sink>(
        &self,
        v: ProtocolVersion,
        d: &Delivery,
        body: usize,
        buf: &mut S,
    ) -> Result<(), EncodeError> {
        buf.put_u8((PacketType::Publish as u8) << 4 | publish_flags(d.dup, d.qos, d.retain));
        buf.put_varint(body as u32);
        if d.omit_topic && v.is_v5() {
            buf.put_u16(0);
        } else {
            buf.put_binary(self.topic.as_bytes())?;
        }
        if d.qos != QoS::AtMostOnce {
            buf.put_u16(d.packet_id);
        }
        if v.is_v5() {
            buf.put_varint(self.properties_len(d) as u32);
            write_per_delivery_properties(d, buf);
            buf.put_slice(self.shared_properties);
        }
        Ok(())
    }

    /// The whole packet as one buffer (head and a copy of the payload). For tests and for the
    /// rare path that needs contiguous bytes; fan-out uses `write_head` plus `payload`.
    pub fn to_bytes(&self, v: ProtocolVersion, d: &Delivery) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::with_capacity(self.encoded_len(v, d));
        self.write_head(v, d, &mut buf)?;
        buf.extend_from_slice(self.payload);
        Ok(buf.freeze())
    }
}

fn write_per_delivery_properties<S: Sink>(d: &Delivery, s: &mut S) {
    if let Some(expiry) = d.message_expiry_interval {
        s.put_u8(id::MESSAGE_EXPIRY_INTERVAL);
        s.put_u32(expiry);
    }
    if let Some(alias) = d.topic_alias {
        s.put_u8(id::TOPIC_ALIAS);
        s.put_u16(alias);
    }
    for sub_id in d.subscription_identifiers {
        s.put_u8(id::SUBSCRIPTION_IDENTIFIER);
        s.put_varint(*sub_id);
    }
}
