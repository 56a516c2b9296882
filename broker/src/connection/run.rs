//! Runs of QoS 0 PUBLISH packets on one topic, routed together.
//!
//! A publisher streaming to one topic sends many PUBLISH packets per socket read. Routed one by
//! one, each locks every subscriber's queue and checks its wake-up, and those are cache lines
//! the subscribers' cores keep taking back: in a 1000-subscriber fan-out the lock was a sixth
//! of the broker's time. Consecutive QoS 0 messages that are not retained and share a topic
//! match the same subscriptions, so they are held here until the topic changes, another kind
//! of packet arrives, [`MAX_RUN`] are held or the read buffer is done, and then routed as one
//! run ([`Broker::publish_run`]). Order is kept: a run is routed before anything after it.

use smallvec::SmallVec;

use crate::codec::QoS;
use crate::pool::MessageRef;
use crate::server::{Broker, MAX_RUN};

/// Messages received and not yet routed; empty between reads.
#[derive(Default)]
pub(super) struct PublishRun {
    messages: SmallVec<[MessageRef; MAX_RUN]>,
}

impl PublishRun {
    /// Whether `message` may wait in a run: QoS 0 (nothing to acknowledge, so nothing to learn
    /// from routing before the next packet) and not retained.
    pub(super) fn admits(message: &MessageRef) -> bool {
        message.qos == QoS::AtMostOnce && !message.retain
    }

    /// Adds an admitted message, routing the run first if the message cannot join it.
    pub(super) fn push(&mut self, broker: &Broker, message: MessageRef) {
        debug_assert!(PublishRun::admits(&message));
        if self.messages.len() == MAX_RUN
            || self
                .messages
                .first()
                .is_some_and(|first| first.topic != message.topic)
        {
            self.flush(broker);
        }
        self.messages.push(message);
    }

    /// Routes the run, if any.
    pub(super) fn flush(&mut self, broker: &Broker) {
        if !self.messages.is_empty() {
            broker.publish_run(&self.messages);
            self.messages.clear();
        }
    }
}
