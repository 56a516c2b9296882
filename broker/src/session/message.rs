//! An application message as the broker holds it between receipt and delivery.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::codec::{
    encode, encoded_len, shared_properties, ByteString, DecodeError, Decoder, EncodeError, Packet,
    ProtocolVersion, Publish, PublishProperties, PublishWire, QoS, SharedHead, SharedHeads,
    MAX_PACKET_SIZE_LIMIT,
};
use crate::pool::MessageRef;

/// One received PUBLISH (or Will, or $SYS update), shared by every subscriber it goes to.
///
/// The wire form without per-subscriber fields is encoded once at receipt (the shared 5.0
/// properties; [`Message::wire`]), so fan-out writes only a small head per subscriber.
/// Envelopes come from the message pool ([`MessageRef`]) and are cleared and reused when the
/// last subscriber is done with them.
#[derive(Debug)]
pub struct Message {
    pub topic: ByteString,
    pub qos: QoS,
    pub retain: bool,
    pub payload: Bytes,
    /// Properties as received, without Topic Alias and Subscription Identifiers (which are
    /// per-connection and per-subscriber).
    pub properties: PublishProperties,
    /// The client that published it, for No Local; `None` for broker-made messages.
    pub publisher: Option<ByteString>,
    pub received_at: Instant,
    /// The 5.0 properties every subscriber receives unchanged, encoded once
    /// ([`shared_properties`]); topic and payload are the fields above, not copies.
    pub shared_properties: Bytes,
    /// The heads of the wire forms most subscribers receive, each encoded once: see
    /// [`Message::shared_head`].
    heads: SharedHeads,
}

impl Default for Message {
    fn default() -> Self {
        Message {
            topic: ByteString::new(),
            qos: QoS::AtMostOnce,
            retain: false,
            payload: Bytes::new(),
            properties: PublishProperties::default(),
            publisher: None,
            received_at: Instant::now(),
            shared_properties: Bytes::new(),
            heads: SharedHeads::default(),
        }
    }
}

impl Message {
    /// A message in a pooled envelope, shared from here on by reference counting.
    /// `received_at` is when its bytes were read (a connection reads the clock once per read,
    /// not per message): delivery latency and Message Expiry count from it.
    pub fn pooled(
        topic: ByteString,
        qos: QoS,
        retain: bool,
        payload: Bytes,
        properties: PublishProperties,
        publisher: Option<ByteString>,
        received_at: Instant,
    ) -> Result<MessageRef, EncodeError> {
        let mut publish = Publish {
            topic,
            qos,
            retain,
            payload,
            properties,
            ..Publish::default()
        };
        Message::from_publish(&mut publish, publisher, received_at)
    }

    /// A message made of what `publish` holds (topic, QoS, RETAIN, properties and payload),
    /// taken out of it and leaving it empty (the connection reuses it for its next PUBLISH).
    /// Topic Alias and Subscription Identifiers are dropped: they are per connection and per
    /// subscriber.
    pub fn from_publish(
        publish: &mut Publish,
        publisher: Option<ByteString>,
        received_at: Instant,
    ) -> Result<MessageRef, EncodeError> {
        MessageRef::new(|message| {
            // A recycled envelope's properties are empty: swapping gives `publish` empty ones
            // without writing a fresh 176-byte default.
            std::mem::swap(&mut message.properties, &mut publish.properties);
            message.properties.topic_alias = None;
            message.properties.subscription_identifiers.clear();
            message.shared_properties = shared_properties(&publish.topic, &message.properties)?;
            message.topic = std::mem::take(&mut publish.topic);
            message.qos = publish.qos;
            message.retain = publish.retain;
            message.payload = std::mem::take(&mut publish.payload);
            message.publisher = publisher;
            message.received_at = received_at;
            Ok(())
        })
    }

    /// This message as one MQTT 5.0 PUBLISH packet (packet identifier 1 at QoS 1 and 2), the
    /// form that carries every part of it: what [`detached`](Self::detached) copies through
    /// and what the state file saves.
    pub fn to_v5_packet(&self) -> Result<BytesMut, EncodeError> {
        let packet = Packet::Publish(Publish {
            topic: self.topic.clone(),
            qos: self.qos,
            retain: self.retain,
            packet_id: u16::from(self.qos != QoS::AtMostOnce),
            payload: self.payload.clone(),
            properties: self.properties.clone(),
            ..Publish::default()
        });
        let mut buf = BytesMut::with_capacity(encoded_len(&packet, ProtocolVersion::V5)?);
        encode(&packet, ProtocolVersion::V5, &mut buf)?;
        Ok(buf)
    }

    /// The message in `packet`, a PUBLISH written by [`to_v5_packet`](Self::to_v5_packet);
    /// its parts are views of `packet`'s bytes.
    pub fn from_v5_packet(
        packet: &mut BytesMut,
        publisher: Option<ByteString>,
        received_at: Instant,
    ) -> Result<MessageRef, DetachError> {
        let mut decoder = Decoder::with_version(ProtocolVersion::V5, MAX_PACKET_SIZE_LIMIT);
        let Some(Packet::Publish(mut publish)) = decoder.decode(packet)? else {
            return Err(DetachError::NotAPublish);
        };
        Ok(Message::from_publish(&mut publish, publisher, received_at)?)
    }

    /// A copy of this message whose topic, payload and properties live in one allocation of
    /// their own, for a message the broker keeps for long (a retained message). Decoded in
    /// place, a message is a view into the read buffer it arrived in, and a view keeps its
    /// whole buffer alive: a retained status update of 20 bytes would keep 16 KiB. The copy
    /// is made by encoding the message and decoding it from a buffer of exactly its size.
    pub fn detached(&self) -> Result<MessageRef, DetachError> {
        let mut packet = self.to_v5_packet()?;
        Message::from_v5_packet(&mut packet, self.publisher.clone(), self.received_at)
    }

    /// What the encoder writes each subscriber's copy from.
    pub fn wire(&self) -> PublishWire<'_> {
        PublishWire {
            topic: &self.topic,
            payload: &self.payload,
            shared_properties: &self.shared_properties,
        }
    }

    /// The head shared by this message's plain deliveries (no Topic Alias, no Subscription
    /// Identifier) to clients speaking `version` at `qos`, encoded by the first delivery that
    /// asks. `None` for a message with an expiry interval (every copy carries what is left of
    /// it) or a head too long to keep inline: those copies are encoded one by one.
    #[inline]
    pub fn shared_head(&self, version: ProtocolVersion, qos: QoS) -> Option<&SharedHead> {
        if self.properties.message_expiry_interval.is_some() {
            return None;
        }
        self.heads.get(|| self.wire(), version, qos)
    }

    /// The shared head for `version` at `qos` if a delivery has encoded it already (routing
    /// encodes it for every attached subscriber's form); encodes nothing.
    pub fn encoded_head(&self, version: ProtocolVersion, qos: QoS) -> Option<&SharedHead> {
        self.heads.encoded(version, qos)
    }

    /// Drops what the message refers to (payload, topic, properties) so an envelope waiting in
    /// the pool pins no memory. Allocates nothing.
    pub fn clear(&mut self) {
        self.heads.clear();
        self.topic = ByteString::new();
        self.payload = Bytes::new();
        self.properties = PublishProperties::default();
        self.publisher = None;
        self.shared_properties = Bytes::new();
    }

    /// Seconds of Message Expiry Interval left now: `Some(None)` when it never expires,
    /// `None` when it has expired (section 3.3.2.3.3: expired messages are never delivered).
    /// Reads the clock only for a message that can expire.
    pub fn remaining_expiry(&self, now: &mut LazyNow) -> Option<Option<u32>> {
        let Some(interval) = self.properties.message_expiry_interval else {
            return Some(None);
        };
        let elapsed = now.get().saturating_duration_since(self.received_at);
        let limit = Duration::from_secs(u64::from(interval));
        if elapsed >= limit {
            return None;
        }
        // Rounded down, as the time already waited counts against the interval.
        Some(Some(interval - elapsed.as_secs() as u32))
    }

    pub fn is_expired(&self, now: &mut LazyNow) -> bool {
        self.remaining_expiry(now).is_none()
    }
}

/// A retained message counts its topic, payload and shared properties against
/// `limits.maxRetainedBytes`.
impl crate::router::Weigh for MessageRef {
    fn weight(&self) -> usize {
        self.topic.len() + self.payload.len() + self.shared_properties.len()
    }
}

/// Why a message could not be copied out of the buffer it arrived in. It was decoded and
/// re-encoded by the same codec, so this means a codec bug (or, read from the state file, a
/// damaged record).
#[derive(Debug, thiserror::Error)]
pub enum DetachError {
    #[error("the message could not be encoded: {0}")]
    Encode(#[from] EncodeError),
    #[error("the encoded message did not decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("the encoded message decoded as another packet")]
    NotAPublish,
}

/// The current time, read from the clock at most once and only if asked for.
///
/// A clock read costs tens of nanoseconds (about a quarter of a fan-out to 1000 subscribers
/// when it was read per subscriber), and only messages with an expiry interval need one, so
/// the delivery path carries one of these instead of reading the clock up front.
#[derive(Debug, Default, Clone, Copy)]
pub struct LazyNow(Option<Instant>);

impl LazyNow {
    pub fn new() -> LazyNow {
        LazyNow(None)
    }

    /// A fixed time, for tests.
    pub fn at(now: Instant) -> LazyNow {
        LazyNow(Some(now))
    }

    pub fn get(&mut self) -> Instant {
        *self.0.get_or_insert_with(Instant::now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_3_3_2_3_3_expiry_counts_down_and_expires() {
        let props = PublishProperties {
            message_expiry_interval: Some(10),
            ..Default::default()
        };
        let msg = Message::pooled(
            "a".into(),
            QoS::AtLeastOnce,
            false,
            Bytes::new(),
            props,
            None,
            Instant::now(),
        )
        .unwrap();
        let t0 = msg.received_at;
        assert_eq!(msg.remaining_expiry(&mut LazyNow::at(t0)), Some(Some(10)));
        assert_eq!(
            msg.remaining_expiry(&mut LazyNow::at(t0 + Duration::from_millis(3500))),
            Some(Some(7))
        );
        assert_eq!(
            msg.remaining_expiry(&mut LazyNow::at(t0 + Duration::from_secs(10))),
            None
        );
        let forever = Message::pooled(
            "a".into(),
            QoS::AtMostOnce,
            false,
            Bytes::new(),
            Default::default(),
            None,
            Instant::now(),
        )
        .unwrap();
        assert_eq!(
            forever.remaining_expiry(&mut LazyNow::at(t0 + Duration::from_secs(1_000_000))),
            Some(None)
        );
    }

    #[test]
    fn a_detached_copy_owns_its_bytes_and_keeps_everything() {
        // A message decoded from a read buffer: its topic and payload are views into it.
        let read_buffer = Bytes::from(vec![b'x'; 16 * 1024]);
        let props = PublishProperties {
            message_expiry_interval: Some(60),
            content_type: Some("text/plain".into()),
            correlation_data: Some(read_buffer.slice(0..4)),
            ..Default::default()
        };
        let original = Message::pooled(
            ByteString::try_from(read_buffer.slice(0..8)).unwrap(),
            QoS::AtLeastOnce,
            true,
            read_buffer.slice(100..120),
            props,
            Some("publisher".into()),
            Instant::now(),
        )
        .unwrap();
        let copy = original.detached().unwrap();
        assert_eq!(copy.topic, original.topic);
        assert_eq!(copy.payload, original.payload);
        assert_eq!(copy.properties, original.properties);
        assert_eq!((copy.qos, copy.retain), (QoS::AtLeastOnce, true));
        assert_eq!(copy.publisher, original.publisher);
        assert_eq!(
            copy.received_at, original.received_at,
            "its expiry still counts from when it was received"
        );
        let buffer = read_buffer.as_ptr_range();
        for view in [copy.payload.as_ptr(), copy.topic.as_ptr()] {
            assert!(
                !buffer.contains(&view),
                "the copy points into the read buffer"
            );
        }
        drop(original);
        drop(read_buffer);
        assert_eq!(&copy.payload[..], &[b'x'; 20][..]);
    }
}
