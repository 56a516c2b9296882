//! One queued delivery, kept small: the publisher writes one into every subscriber's queue and
//! the subscriber's core reads it back, so its size is the cache lines that cross between
//! cores per delivery.

use std::sync::Arc;

use smallvec::SmallVec;

use crate::codec::{ByteString, QoS};
use crate::pool::MessageRef;

/// One message waiting to be sent to this session: 40 bytes, against 72 when the identifiers
/// were a `SmallVec` and the group name a `ByteString` (more than a cache line per queued
/// message, which the subscriber's core then missed on).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub message: MessageRef,
    pub subscription_ids: SubscriptionIds,
    /// Set when it was routed through a shared subscription, so it can be given to another
    /// member if this session ends before acknowledging it. The tree's own name, shared.
    pub shared_group: Option<Arc<ByteString>>,
    /// The QoS it is delivered at: the lower of the published and the granted QoS.
    pub qos: QoS,
    pub retain: bool,
}

/// The Subscription Identifiers a delivery carries [MQTT-3.3.4-3]: none, or one or two inline
/// (a subscription has at most one; two when a client's overlapping subscriptions were
/// merged, kept inline as the `SmallVec` before this was). Three or more are rare enough to be
/// boxed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SubscriptionIds {
    #[default]
    None,
    One(u32),
    Two([u32; 2]),
    Many(Box<ManyIds>),
}

/// Three or more identifiers (see [`SubscriptionIds::Many`]), in one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManyIds(SmallVec<[u32; 4]>);

impl SubscriptionIds {
    #[inline]
    pub fn from_slice(ids: &[u32]) -> SubscriptionIds {
        match *ids {
            [] => SubscriptionIds::None,
            [id] => SubscriptionIds::One(id),
            [a, b] => SubscriptionIds::Two([a, b]),
            _ => SubscriptionIds::Many(Box::new(ManyIds(SmallVec::from_slice(ids)))),
        }
    }

    pub fn as_slice(&self) -> &[u32] {
        match self {
            SubscriptionIds::None => &[],
            SubscriptionIds::One(id) => std::slice::from_ref(id),
            SubscriptionIds::Two(ids) => ids,
            SubscriptionIds::Many(ids) => &ids.0,
        }
    }
}

impl From<Option<u32>> for SubscriptionIds {
    fn from(id: Option<u32>) -> SubscriptionIds {
        id.map_or(SubscriptionIds::None, SubscriptionIds::One)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_delivery_fits_in_two_fifths_of_a_line_pair() {
        assert_eq!(std::mem::size_of::<SubscriptionIds>(), 16);
        assert!(std::mem::size_of::<Outgoing>() <= 40);
    }

    #[test]
    fn identifiers_read_back_as_given() {
        for ids in [&[][..], &[7], &[7, 9], &[1, 2, 3], &[1, 2, 3, 4, 5]] {
            assert_eq!(SubscriptionIds::from_slice(ids).as_slice(), ids);
        }
        assert_eq!(SubscriptionIds::from(Some(5)).as_slice(), [5]);
        assert_eq!(SubscriptionIds::from(None).as_slice(), [0u32; 0]);
    }
}
