//! An application message as the broker holds it between receipt and delivery.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::{ByteString, EncodeError, OutboundPublish, Publish, PublishProperties, QoS};

/// One received PUBLISH (or Will, or $SYS update), shared by every subscriber it goes to.
///
/// The wire form without per-subscriber fields is encoded once at receipt
/// ([`OutboundPublish`]), so fan-out writes only a small head per subscriber.
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
    pub wire: OutboundPublish,
}

impl Message {
    pub fn new(
        topic: ByteString,
        qos: QoS,
        retain: bool,
        payload: Bytes,
        mut properties: PublishProperties,
        publisher: Option<ByteString>,
    ) -> Result<Message, EncodeError> {
        properties.topic_alias = None;
        properties.subscription_identifiers.clear();
        let publish = Publish {
            topic: topic.clone(),
            qos,
            retain,
            payload: payload.clone(),
            properties,
            ..Publish::default()
        };
        let wire = OutboundPublish::new(&publish)?;
        Ok(Message {
            topic,
            qos,
            retain,
            payload,
            properties: publish.properties,
            publisher,
            received_at: Instant::now(),
            wire,
        })
    }

    /// Seconds of Message Expiry Interval left at `now`: `Some(None)` when it never expires,
    /// `None` when it has expired (section 3.3.2.3.3: expired messages are never delivered).
    pub fn remaining_expiry(&self, now: Instant) -> Option<Option<u32>> {
        let Some(interval) = self.properties.message_expiry_interval else {
            return Some(None);
        };
        let elapsed = now.saturating_duration_since(self.received_at);
        let limit = Duration::from_secs(u64::from(interval));
        if elapsed >= limit {
            return None;
        }
        // Rounded down, as the time already waited counts against the interval.
        Some(Some(interval - elapsed.as_secs() as u32))
    }

    pub fn is_expired(&self, now: Instant) -> bool {
        self.remaining_expiry(now).is_none()
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
        let msg = Message::new(
            "a".into(),
            QoS::AtLeastOnce,
            false,
            Bytes::new(),
            props,
            None,
        )
        .unwrap();
        let t0 = msg.received_at;
        assert_eq!(msg.remaining_expiry(t0), Some(Some(10)));
        assert_eq!(
            msg.remaining_expiry(t0 + Duration::from_millis(3500)),
            Some(Some(7))
        );
        assert_eq!(msg.remaining_expiry(t0 + Duration::from_secs(10)), None);
        let forever = Message::new(
            "a".into(),
            QoS::AtMostOnce,
            false,
            Bytes::new(),
            Default::default(),
            None,
        )
        .unwrap();
        assert_eq!(
            forever.remaining_expiry(t0 + Duration::from_secs(1_000_000)),
            Some(None)
        );
    }
}
