//! PUBLISH heads encoded once per wire form and copied for every subscriber that receives it.
//!
//! Most subscribers of a message receive the same bytes but for three fields: the packet
//! identifier, DUP, and RETAIN (which each subscription's Retain As Published decides). They
//! take the topic as published, no Topic Alias, no Subscription Identifier and no remaining
//! Message Expiry: a *plain* delivery ([`Delivery::is_plain`]). Their head is one of four
//! forms (3.1/3.1.1 or 5.0, with or without a packet identifier), encoded once per message
//! for the first two forms its deliveries need ([`SharedHeads`]); each subscriber's copy is
//! that head with its first byte and packet identifier patched ([`SharedHead::write`]), in
//! front of the shared payload. Deliveries that are not plain, a message's third form, and
//! heads longer than [`SHARED_HEAD_MAX`] are encoded per subscriber
//! ([`PublishWire::write_head`]).

use std::sync::OnceLock;

use bytes::BytesMut;

use super::encode::publish_flags;
use super::outbound::{Delivery, PublishWire};
use super::packet::{PacketType, ProtocolVersion, QoS};
use super::wire::{Sink, VARINT_MAX};

/// The longest head kept inline: room for a 3.1.1 topic of 55 bytes with a packet identifier
/// (a head is 1 + remaining length + 2 + topic + 2 bytes in 3.1.1, plus the properties in 5.0).
pub const SHARED_HEAD_MAX: usize = 62;

/// Which of the four wire forms a head is: the protocol (3.1/3.1.1 or 5.0) and whether it has
/// a packet identifier (QoS 1 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Form {
    v5: bool,
    acked: bool,
}

impl Form {
    fn of(v: ProtocolVersion, qos: QoS) -> Form {
        Form {
            v5: v.is_v5(),
            acked: qos != QoS::AtMostOnce,
        }
    }
}

/// One encoded head. `len == 0` marks a form that cannot be shared (too long or unencodable).
#[derive(Clone, Copy)]
pub struct SharedHead {
    bytes: [u8; SHARED_HEAD_MAX],
    len: u8,
    /// Offset of the packet identifier, 0 in the forms without one.
    packet_id_at: u8,
    form: Form,
}

impl std::fmt::Debug for SharedHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedHead")
            .field("head", &self.as_bytes())
            .field("packet_id_at", &self.packet_id_at)
            .finish()
    }
}

/// A fixed buffer the codec writes into; remembers whether anything did not fit.
struct Inline {
    head: SharedHead,
    overflow: bool,
}

impl Sink for Inline {
    fn put_u8(&mut self, v: u8) {
        self.put_slice(&[v])
    }
    fn put_u16(&mut self, v: u16) {
        self.put_slice(&v.to_be_bytes())
    }
    fn put_u32(&mut self, v: u32) {
        self.put_slice(&v.to_be_bytes())
    }
    fn put_slice(&mut self, s: &[u8]) {
        let at = usize::from(self.head.len);
        match self.head.bytes.get_mut(at..at + s.len()) {
            Some(dst) if !self.overflow => {
                dst.copy_from_slice(s);
                self.head.len += s.len() as u8;
            }
            _ => self.overflow = true,
        }
    }
}

impl SharedHead {
    /// The head of `wire`'s plain deliveries in protocol `v` at `qos` (with a packet
    /// identifier at QoS 1 and 2); unshared when it does not fit or cannot be encoded.
    fn encode(wire: &PublishWire, v: ProtocolVersion, qos: QoS) -> SharedHead {
        let form = Form::of(v, qos);
        let acked = form.acked;
        let unshared = SharedHead {
            bytes: [0; SHARED_HEAD_MAX],
            len: 0,
            packet_id_at: 0,
            form,
        };
        let delivery = Delivery {
            qos: if acked {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            },
            packet_id: u16::from(acked),
            ..Delivery::default()
        };
        let body = wire.body_len(v, &delivery);
        if body > VARINT_MAX as usize {
            return unshared;
        }
        let mut inline = Inline {
            head: unshared,
            overflow: false,
        };
        if wire.put_head(v, &delivery, body, &mut inline).is_err() || inline.overflow {
            return unshared;
        }
        let mut head = inline.head;
        if acked {
            // Fixed header byte, remaining length, topic: the identifier comes next.
            let remaining = super::wire::varint_len(body as u32);
            head.packet_id_at = (1 + remaining + 2 + wire.topic.len()) as u8;
        }
        head
    }

    fn is_shared(&self) -> bool {
        self.len > 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Bytes of the head.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends this head for the plain delivery `d`: a copy with DUP, QoS, RETAIN and the
    /// packet identifier set from `d`. `d` must be of this head's form (a packet identifier
    /// exactly when its QoS is 1 or 2).
    pub fn write(&self, d: &Delivery, buf: &mut BytesMut) {
        debug_assert!(d.is_plain());
        debug_assert_eq!(d.qos != QoS::AtMostOnce, self.packet_id_at != 0);
        let start = buf.len();
        buf.extend_from_slice(self.as_bytes());
        let head = &mut buf[start..];
        head[0] = (PacketType::Publish as u8) << 4 | publish_flags(d.dup, d.qos, d.retain);
        if self.packet_id_at != 0 {
            let at = usize::from(self.packet_id_at);
            head[at..at + 2].copy_from_slice(&d.packet_id.to_be_bytes());
        }
    }
}

impl Delivery<'_> {
    /// Whether this copy differs from the published message only in DUP, QoS, RETAIN and the
    /// packet identifier, so it can be written from a [`SharedHead`].
    pub fn is_plain(&self) -> bool {
        self.topic_alias.is_none()
            && !self.omit_topic
            && self.subscription_identifiers.is_empty()
            && self.message_expiry_interval.is_none()
    }
}

/// The shared heads of one message: room for two forms, each encoded by the first delivery
/// that needs it and kept by the first two forms asked for. A message's subscribers rarely
/// span more than two forms (one protocol, or one QoS class), and two slots instead of four
/// keep 136 bytes out of every message envelope; a third form is encoded per subscriber.
/// Safe to fill from any thread: a slot is written once.
#[derive(Debug, Default)]
pub struct SharedHeads([OnceLock<SharedHead>; 2]);

impl SharedHeads {
    /// The head of the plain deliveries of `wire` to a client speaking `v` at `qos`, encoded
    /// now if no delivery needed it before; `None` when that form cannot be shared, or both
    /// slots hold other forms.
    #[inline]
    pub fn get<'w>(
        &self,
        wire: impl Fn() -> PublishWire<'w>,
        v: ProtocolVersion,
        qos: QoS,
    ) -> Option<&SharedHead> {
        let form = Form::of(v, qos);
        // Written out rather than as an iterator chain: every delivery of a fan-out comes
        // here, and for all but the first the answer is the first slot, already filled.
        for slot in &self.0 {
            let head = match slot.get() {
                Some(head) => head,
                None => slot.get_or_init(|| SharedHead::encode(&wire(), v, qos)),
            };
            if head.form == form {
                return head.is_shared().then_some(head);
            }
        }
        None
    }

    /// The head of that form if a delivery has already encoded it; encodes nothing.
    pub fn encoded(&self, v: ProtocolVersion, qos: QoS) -> Option<&SharedHead> {
        let form = Form::of(v, qos);
        self.0
            .iter()
            .filter_map(OnceLock::get)
            .find(|head| head.form == form && head.is_shared())
    }

    /// Forgets every head, for a message envelope going back to its pool.
    pub fn clear(&mut self) {
        for slot in &mut self.0 {
            slot.take();
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::codec::{shared_properties, ByteString, PublishProperties};

    fn wire_parts(topic: &str, props: &PublishProperties) -> (ByteString, Bytes, Bytes) {
        let shared = shared_properties(topic, props).unwrap();
        (
            ByteString::from(topic),
            Bytes::from_static(b"payload"),
            shared,
        )
    }

    /// Every form, patched for every flag combination, is byte for byte what the encoder
    /// writes for that delivery on its own.
    #[test]
    fn a_patched_shared_head_equals_the_head_encoded_for_that_delivery() {
        let props = PublishProperties {
            content_type: Some("text/plain".into()),
            ..Default::default()
        };
        for (topic, props) in [
            ("a/b", PublishProperties::default()),
            ("sensors/1/t", props),
        ] {
            let (topic, payload, shared) = wire_parts(topic, &props);
            let wire = PublishWire {
                topic: &topic,
                payload: &payload,
                shared_properties: &shared,
            };
            for v in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
                for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                    let heads = SharedHeads::default();
                    for (dup, retain, packet_id) in [(false, false, 7), (true, true, 0xABCD)] {
                        let d = Delivery {
                            qos,
                            dup: dup && qos != QoS::AtMostOnce,
                            retain,
                            packet_id: if qos == QoS::AtMostOnce { 0 } else { packet_id },
                            ..Delivery::default()
                        };
                        let mut expected = BytesMut::new();
                        wire.write_head(v, &d, &mut expected).unwrap();
                        let mut patched = BytesMut::new();
                        heads.get(|| wire, v, qos).unwrap().write(&d, &mut patched);
                        assert_eq!(patched, expected, "{v:?} {d:?}");
                    }
                }
            }
        }
    }

    /// Two forms are kept; a third is left to per-subscriber encoding, and the first two
    /// are still found.
    #[test]
    fn two_forms_are_kept_and_a_third_is_encoded_per_subscriber() {
        let (topic, payload, shared) = wire_parts("a/b", &PublishProperties::default());
        let wire = PublishWire {
            topic: &topic,
            payload: &payload,
            shared_properties: &shared,
        };
        let heads = SharedHeads::default();
        let v3 = ProtocolVersion::V3_1_1;
        let v5 = ProtocolVersion::V5;
        assert!(heads.get(|| wire, v3, QoS::AtMostOnce).is_some());
        assert!(heads.get(|| wire, v5, QoS::AtLeastOnce).is_some());
        assert!(heads.get(|| wire, v5, QoS::AtMostOnce).is_none());
        let qos2 = heads.get(|| wire, v5, QoS::ExactlyOnce);
        assert!(qos2.is_some(), "QoS 2 shares the QoS 1 form");
        let again = heads
            .get(|| wire, v3, QoS::AtMostOnce)
            .map(SharedHead::as_bytes);
        // Remaining length 12: topic length (2), "a/b" (3), "payload" (7).
        assert_eq!(again, Some(&[0x30, 12, 0, 3, b'a', b'/', b'b'][..]));
    }

    #[test]
    fn a_head_too_long_to_keep_inline_is_not_shared() {
        let topic = "t/".repeat(40);
        let (topic, payload, shared) = wire_parts(&topic, &PublishProperties::default());
        let wire = PublishWire {
            topic: &topic,
            payload: &payload,
            shared_properties: &shared,
        };
        let heads = SharedHeads::default();
        assert!(heads
            .get(|| wire, ProtocolVersion::V3_1_1, QoS::AtMostOnce)
            .is_none());
    }

    #[test]
    fn deliveries_with_per_subscriber_properties_are_not_plain() {
        assert!(Delivery::default().is_plain());
        for d in [
            Delivery {
                topic_alias: Some(1),
                ..Delivery::default()
            },
            Delivery {
                subscription_identifiers: &[3],
                ..Delivery::default()
            },
            Delivery {
                message_expiry_interval: Some(9),
                ..Delivery::default()
            },
        ] {
            assert!(!d.is_plain(), "{d:?}");
        }
    }
}
