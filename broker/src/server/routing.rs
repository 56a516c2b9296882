//! Routing a PUBLISH to its subscribers' queues: the publisher's side of every fan-out.
//!
//! The tree is searched once per run of messages, and every matched subscription's delivery
//! is queued by [`RunDelivery`] while the tree's read lock is held. That step runs once per
//! subscriber per message (a thousand times for a fan-out to a thousand), so it is written to
//! be inlined whole into the tree's walk: nothing is called through a closure, nothing is
//! looked up per subscriber that is the same for the whole run, and a run of one message (the
//! usual case) queues its delivery without going through an iterator.

use smallvec::SmallVec;

use super::{Broker, Routed, MAX_RUN};
use crate::codec::QoS;
use crate::metrics::DropReason;
use crate::pool::{Handles, MessageRef};
use crate::router::{MatchRef, MatchVisitor};
use crate::session::{Enqueued, LazyNow, Outgoing, QueueRules, Session, SubscriptionIds};

impl Broker {
    /// Routes `message` to every matching subscription: one delivery per client (overlapping
    /// subscriptions merged, section 3.3.4), one member per shared group (section 4.8.2).
    pub fn route(&self, message: &MessageRef) -> Routed {
        self.route_run(std::slice::from_ref(message))
    }

    /// Routes a run of messages with one topic from one publisher, in order, as [`route`]
    /// routes each: they match the same subscriptions, so the tree is searched once, and each
    /// subscriber's queue is locked, filled and its connection woken once for the whole run
    /// instead of once per message. (A shared group's member is picked once per run.)
    ///
    /// Deliveries are queued while the tree's read lock is held, borrowing each subscription's
    /// session from the tree: nothing is cloned per subscriber but the message handles, and
    /// those are counted in batches ([`Handles`]).
    ///
    /// [`route`]: Broker::route
    pub fn route_run(&self, run: &[MessageRef]) -> Routed {
        let Some(first) = run.first() else {
            return Routed::default();
        };
        debug_assert!(run
            .iter()
            .all(|m| m.topic == first.topic && m.publisher == first.publisher));
        // Filled in place: collected, the vector (1.5 KiB inline) was returned by value and
        // copied, a tenth of a single-subscriber publish.
        let mut handles: SmallVec<[Handles<'_>; MAX_RUN]> = SmallVec::new();
        handles.extend(run.iter().map(MessageRef::handles));
        let mut delivery = RunDelivery {
            broker: self,
            run,
            handles: &mut handles,
            rules: self.queue_rules(),
            routed: Routed::default(),
            now: LazyNow::new(),
        };
        self.router.read().visit_matches(
            &first.topic,
            first.publisher.as_ref(),
            &|client| self.is_attached(client),
            &mut delivery,
        );
        delivery.routed
    }

    /// Queues deliveries on a session, in order, counting the outcomes.
    pub fn offer(
        &self,
        session: &Session,
        items: impl IntoIterator<Item = Outgoing>,
        routed: &mut Routed,
        now: &mut LazyNow,
    ) {
        session.deliver(items, &self.queue_rules(), now, |enqueued, qos| {
            self.count(enqueued, qos, routed)
        });
    }

    fn queue_rules(&self) -> QueueRules {
        let limits = &self.settings().limits;
        QueueRules {
            check_acl: self.acl_enabled,
            max_queued: limits.max_queued_messages as usize,
            policy: limits.queue_full_policy,
        }
    }

    /// Counts what became of one delivery offered to a session.
    #[inline(always)]
    fn count(&self, enqueued: Enqueued, qos: QoS, routed: &mut Routed) {
        match enqueued {
            Enqueued::Queued => routed.delivered += 1,
            Enqueued::QueuedDroppingOldest => {
                routed.delivered += 1;
                self.stats.dropped(DropReason::QueueFull);
            }
            Enqueued::Rejected => {
                self.stats.dropped(DropReason::QueueFull);
                if qos != QoS::AtMostOnce {
                    routed.rejected += 1;
                }
            }
            Enqueued::Expired => self.stats.dropped(DropReason::Expired),
        }
    }
}

/// Queues one run of messages on every subscription the tree matches, and counts the
/// outcomes. What is the same for every subscriber (the queue rules, the clock read at most
/// once) is gathered here once per run.
struct RunDelivery<'r, 'h> {
    broker: &'r Broker,
    run: &'r [MessageRef],
    handles: &'r mut [Handles<'h>],
    rules: QueueRules,
    routed: Routed,
    now: LazyNow,
}

impl MatchVisitor for RunDelivery<'_, '_> {
    /// Inlined into the tree's walk: see the module documentation.
    #[inline(always)]
    fn visit(&mut self, m: MatchRef<'_>) {
        // Every subscription in the tree is linked to its session (SUBSCRIBE handling is the
        // tree's only writer); an unlinked one has no session to deliver to.
        let Some(session) = m.session.session() else {
            debug_assert!(false, "unlinked subscription for {}", m.client);
            return;
        };
        let (broker, rules, now, routed) =
            (self.broker, &self.rules, &mut self.now, &mut self.routed);
        let count = |enqueued, qos| broker.count(enqueued, qos, routed);
        match (self.run, &mut *self.handles) {
            ([message], [handles]) => {
                session.deliver_one(outgoing(message, handles, &m), rules, now, count)
            }
            (run, handles) => {
                let items = run.iter().zip(handles.iter_mut());
                let items = items.map(|(message, handles)| outgoing(message, handles, &m));
                session.deliver(items, rules, now, count)
            }
        }
    }
}

/// `message`'s delivery through the match `m`, with a handle from `handles`.
#[inline(always)]
fn outgoing(message: &MessageRef, handles: &mut Handles<'_>, m: &MatchRef<'_>) -> Outgoing {
    Outgoing {
        qos: message.qos.min(m.qos),
        // [MQTT-3.3.1-12/13]: RETAIN is cleared unless Retain As Published.
        retain: message.retain && m.retain_as_published,
        message: handles.next_ref(),
        subscription_ids: SubscriptionIds::from_slice(m.subscription_ids),
        shared_group: m.shared_group.cloned(),
    }
}
