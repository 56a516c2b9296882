//! Sessions (section 4.1): the state a client's identifier keeps across connections.
//!
//! A session holds its subscriptions, the messages queued for it, the QoS 1 and 2 messages in
//! flight to it, and the QoS 2 packet identifiers it has sent us but not yet released. It
//! outlives its connection until its expiry interval ends. Publishers push into a session's
//! queue under its lock ([`SessionLock`]) and wake its connection task, which alone writes to
//! the socket.

mod lock;
mod map;
mod message;
mod outgoing;
mod signal;

use crate::auth::ClientAcl;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Notify;

pub use lock::{RawSessionLock, SessionGuard, SessionLock};
pub use map::SessionMap;
pub use message::{DetachError, LazyNow, Message};
pub use outgoing::{ManyIds, Outgoing, SubscriptionIds};
pub use signal::{ConnectionSignal, Events};

use crate::codec::{ByteString, ProtocolVersion, QoS, ReasonCode};
use crate::config::QueueFullPolicy;
use crate::router::Subscription;

/// A subscription's link to the session it delivers to, so routing reaches the session
/// directly instead of looking its client identifier up in the session map for every
/// delivery (that lookup was a tenth of a fan-out's time).
///
/// Only the subscription tree's copy of a subscription is linked; the session's own record
/// of its subscriptions is not (that would be a cycle). The link is strong, so delivering
/// under the tree's read lock borrows the session without touching its reference count,
/// whose cache line the subscriber's connection shares. A session ends by leaving the map
/// and then removing its subscriptions from the tree, which drops the links; a subscription
/// made by a newer session for the same client replaces the link.
#[derive(Clone, Default)]
pub struct SessionLink(Option<Arc<Session>>);

impl SessionLink {
    pub fn to(session: &Arc<Session>) -> SessionLink {
        SessionLink(Some(Arc::clone(session)))
    }

    /// The linked session; `None` for an unlinked subscription.
    pub fn session(&self) -> Option<&Arc<Session>> {
        self.0.as_ref()
    }
}

impl PartialEq for SessionLink {
    fn eq(&self, other: &SessionLink) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for SessionLink {}

impl fmt::Debug for SessionLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(session) => write!(f, "SessionLink({})", session.client_id),
            None => f.write_str("SessionLink(none)"),
        }
    }
}

/// Where an outbound QoS 1 or 2 exchange stands (section 4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflightState {
    AwaitingPubAck,
    AwaitingPubRec,
    /// PUBREL sent (or to be re-sent on reconnect); the message itself is no longer resent.
    AwaitingPubComp,
}

#[derive(Debug, Clone)]
pub struct Inflight {
    pub packet_id: u16,
    pub state: InflightState,
    pub item: Outgoing,
    /// Sent on the current connection. A resumed session's entries start unsent and are resent
    /// (PUBLISH with DUP, or PUBREL) as the new connection's Receive Maximum allows.
    pub sent: bool,
}

/// What happened to a message offered to a session's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    /// Queued after dropping the oldest queued QoS 0 message to make room.
    QueuedDroppingOldest,
    /// The queue is full of messages that may not be dropped; this one was not queued.
    Rejected,
    /// Expired before it could be queued.
    Expired,
}

/// The connection currently attached to a session. `repr(C)`, signal first: delivering
/// reads only the signal (see [`SessionState`]).
#[derive(Debug, Clone)]
#[repr(C)]
pub struct Attachment {
    /// Wakes this connection's task: new messages, freed inflight slots, a takeover or a kick.
    /// Per connection, not per session, so a new connection never steals the old one's wake-up.
    pub signal: Arc<ConnectionSignal>,
    pub generation: u64,
    pub version: ProtocolVersion,
    /// The client's Receive Maximum: QoS 1/2 messages we may have unacknowledged at once.
    pub receive_maximum: u16,
    /// The client's Maximum Packet Size.
    pub maximum_packet_size: u32,
}

/// Mutable session state, always accessed under [`Session::state`].
///
/// `repr(C)` to keep what a publisher touches for every delivery (the queue, then the
/// attached connection's signal) next to the lock word: with [`Session`] also `repr(C)`, the
/// lock, the queue's header and the signal pointer are the first 64 bytes of the session's
/// allocation, so a delivery from another core moves as few cache lines as it can.
#[derive(Debug)]
#[repr(C)]
pub struct SessionState {
    pub queue: VecDeque<Outgoing>,
    pub attached: Option<Attachment>,
    /// Counts connections to this session; a connection acts on the session only while its
    /// generation is current, so a taken-over connection cannot disturb its successor.
    pub generation: u64,
    /// A B-tree, not a hash map: 24 bytes inline against 48 in every session, and a session
    /// holds few subscriptions (at most `limits.maxSubscriptionsPerClient`).
    pub subscriptions: BTreeMap<String, Subscription>,
    pub inflight: VecDeque<Inflight>,
    /// QoS 2 packet identifiers received and answered with PUBREC, awaiting PUBREL.
    /// A B-tree for size, like `subscriptions`.
    pub inbound_qos2: BTreeSet<u16>,
    /// The small fields together, so they share one word instead of padding one each.
    next_packet_id: u16,
    /// Set to ask the attached connection to close with that reason (server shutdown is
    /// signalled separately; a takeover shows as a newer generation).
    pub kick: Option<ReasonCode>,
    /// Set when the session has been removed from the broker (expired); a connection that
    /// finds it set must look the session up again.
    pub removed: bool,
    /// Session Expiry Interval in seconds; `u32::MAX` never expires.
    pub expiry_interval: u32,
    pub disconnected_at: Option<Instant>,
    /// The generation of the connection that started this session (created it or cleared it
    /// with Clean Start). A Will delayed for an older generation belongs to a session that
    /// has ended, so it is published at once (section 3.1.3.2.2).
    pub started_generation: u64,
    /// Wakes the task holding a delayed Will Message when a connection attaches, so it can
    /// be cancelled (session resumed) or published now (session ended by Clean Start).
    pub will_timer: Option<Arc<Notify>>,
    /// The topic rules of the client that last connected (`None`: every topic); a message it
    /// may not read is not queued.
    pub acl: Option<Arc<ClientAcl>>,
}

/// A session, shared between its connection task and every publisher that routes to it.
/// `repr(C)`, state first: see [`SessionState`].
#[derive(Debug)]
#[repr(C)]
pub struct Session {
    pub state: SessionLock<SessionState>,
    pub client_id: ByteString,
}

impl Session {
    pub fn new(client_id: ByteString) -> Arc<Session> {
        Arc::new(Session {
            client_id,
            state: SessionLock::new(SessionState {
                generation: 0,
                attached: None,
                kick: None,
                subscriptions: BTreeMap::new(),
                queue: VecDeque::new(),
                inflight: VecDeque::new(),
                inbound_qos2: BTreeSet::new(),
                next_packet_id: 1,
                expiry_interval: 0,
                disconnected_at: None,
                removed: false,
                started_generation: 0,
                will_timer: None,
                acl: None,
            }),
        })
    }

    /// Offers messages to this session, in order, under one lock, and wakes its connection
    /// once if any was queued; `outcome` learns what became of each (and its QoS).
    #[inline(always)]
    pub fn deliver(
        &self,
        items: impl IntoIterator<Item = Outgoing>,
        rules: &QueueRules,
        now: &mut LazyNow,
        mut outcome: impl FnMut(Enqueued, QoS),
    ) {
        let mut state = self.state.lock();
        let mut queued = false;
        for item in items {
            self.encode_head(&item);
            queued |= state.offer(item, rules, now, &mut outcome);
        }
        if queued {
            state.wake();
        }
    }

    /// [`deliver`](Self::deliver) of one message: a fan-out's step for each subscriber, kept
    /// free of the iterator (a tenth of the step's instructions), and with the message's head
    /// encoded before the lock is taken: the loads after a locked instruction wait for it,
    /// those before it do not.
    #[inline(always)]
    pub fn deliver_one(
        &self,
        item: Outgoing,
        rules: &QueueRules,
        now: &mut LazyNow,
        mut outcome: impl FnMut(Enqueued, QoS),
    ) {
        self.encode_head(&item);
        let mut state = self.state.lock();
        if state.offer(item, rules, now, &mut outcome) {
            state.wake();
        }
    }

    /// Sets the attached connection (or none), returning the one it replaces. Also keeps a
    /// copy of its protocol level in the lock's [`hint`](lock::hint) byte, which publishers
    /// read without the lock to encode a message's head before taking it. A stale copy (a
    /// session's state set some other way) only means a head is encoded for the wrong form;
    /// the writer then encodes its own.
    pub fn set_attached(
        &self,
        state: &mut SessionState,
        attachment: Option<Attachment>,
    ) -> Option<Attachment> {
        let level = attachment.as_ref().map_or(0, |a| a.version.level());
        lock::hint(&self.state).store(level, Ordering::Relaxed);
        std::mem::replace(&mut state.attached, attachment)
    }

    /// Encodes `item`'s head for the attached connection's form, unless a delivery to
    /// another subscriber of that form did already (see `Message::shared_head`), so that
    /// its queue holds bytes ready to write. Copies with Subscription Identifiers are
    /// encoded whole by the writer.
    #[inline(always)]
    fn encode_head(&self, item: &Outgoing) {
        if item.subscription_ids != SubscriptionIds::None {
            return;
        }
        // 0, no connection attached, is no protocol level.
        if let Some(version) =
            ProtocolVersion::from_level(lock::hint(&self.state).load(Ordering::Relaxed))
        {
            item.message.shared_head(version, item.qos);
        }
    }
}

/// What decides whether a message offered to a session is queued.
#[derive(Debug, Clone, Copy)]
pub struct QueueRules {
    /// Check the client's topic rules: a message it may not read is left out. Without, the
    /// rules' cache line is not touched (most brokers have none).
    pub check_acl: bool,
    /// `limits.maxQueuedMessages`.
    pub max_queued: usize,
    pub policy: QueueFullPolicy,
}

impl SessionState {
    /// Queues `item` unless the client's rules forbid it; `outcome` learns what became of it.
    /// Returns whether it was queued.
    #[inline(always)]
    fn offer(
        &mut self,
        item: Outgoing,
        rules: &QueueRules,
        now: &mut LazyNow,
        outcome: &mut impl FnMut(Enqueued, QoS),
    ) -> bool {
        if rules.check_acl
            && self
                .acl
                .as_ref()
                .is_some_and(|acl| !acl.may_read(&item.message.topic))
        {
            return false;
        }
        let qos = item.qos;
        let result = self.enqueue(item, rules.max_queued, rules.policy, now);
        outcome(result, qos);
        matches!(result, Enqueued::Queued | Enqueued::QueuedDroppingOldest)
    }

    /// Wakes the attached connection, if any.
    pub fn wake(&self) {
        if let Some(attachment) = &self.attached {
            attachment.signal.raise(Events::SESSION);
        }
    }

    /// Queues `item`, bounded by `max_queued`. When full, the oldest queued QoS 0 message makes
    /// room if the policy allows; QoS 1 and 2 messages are never dropped silently: the caller
    /// learns of the rejection and tells the publisher.
    #[inline(always)]
    pub fn enqueue(
        &mut self,
        item: Outgoing,
        max_queued: usize,
        policy: QueueFullPolicy,
        now: &mut LazyNow,
    ) -> Enqueued {
        if item.message.is_expired(now) {
            return Enqueued::Expired;
        }
        if self.queue.len() < max_queued {
            self.queue.push_back(item);
            return Enqueued::Queued;
        }
        if policy == QueueFullPolicy::DropOldestQos0 {
            if let Some(pos) = self.queue.iter().position(|q| q.qos == QoS::AtMostOnce) {
                self.queue.remove(pos);
                self.queue.push_back(item);
                return Enqueued::QueuedDroppingOldest;
            }
        }
        Enqueued::Rejected
    }

    /// A packet identifier not used by any message in flight (section 2.2.1).
    pub fn allocate_packet_id(&mut self) -> Option<u16> {
        if self.inflight.len() >= usize::from(u16::MAX) {
            return None;
        }
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if !self.inflight.iter().any(|f| f.packet_id == id) {
                return Some(id);
            }
        }
    }

    /// The packet identifier [`allocate_packet_id`](Self::allocate_packet_id) tries next
    /// (kept in a saved session, so a restored one does not reuse identifiers at once).
    pub fn next_packet_id(&self) -> u16 {
        self.next_packet_id
    }

    /// Sets where packet identifier allocation continues (restoring a saved session); 0,
    /// which is not a packet identifier, becomes 1.
    pub fn set_next_packet_id(&mut self, id: u16) {
        self.next_packet_id = id.max(1);
    }

    /// Removes and returns the in-flight entry with `packet_id` if it is in `state`.
    pub fn complete(&mut self, packet_id: u16, state: InflightState) -> Option<Inflight> {
        let pos = self
            .inflight
            .iter()
            .position(|f| f.packet_id == packet_id && f.state == state)?;
        self.inflight.remove(pos)
    }

    /// Moves a QoS 2 exchange from awaiting PUBREC to awaiting PUBCOMP. False if unknown.
    pub fn released(&mut self, packet_id: u16) -> bool {
        match self.inflight.iter_mut().find(|f| f.packet_id == packet_id) {
            Some(f) if f.state == InflightState::AwaitingPubRec => {
                f.state = InflightState::AwaitingPubComp;
                true
            }
            Some(f) => f.state == InflightState::AwaitingPubComp,
            None => false,
        }
    }

    /// Drops everything a Clean Start discards (section 3.1.2.4).
    pub fn clear(&mut self) {
        self.subscriptions.clear();
        self.queue.clear();
        self.inflight.clear();
        self.inbound_qos2.clear();
        self.next_packet_id = 1;
    }

    /// Takes the QoS 1/2 messages routed through shared subscriptions, queued or in flight
    /// and not yet received by the client, so they can go to another group member. A QoS 2
    /// message already sent stays: its delivery is completed with this client when it
    /// reconnects, and never handed to another member [MQTT-4.8.2-4], [MQTT-4.8.2-5].
    pub fn take_shared_pending(&mut self) -> Vec<Outgoing> {
        let mut taken = Vec::new();
        self.inflight.retain(|f| {
            let movable = f.item.shared_group.is_some() && f.item.qos == QoS::AtLeastOnce;
            if movable {
                taken.push(f.item.clone());
            }
            !movable
        });
        self.queue.retain(|q| {
            let movable = q.shared_group.is_some() && q.qos != QoS::AtMostOnce;
            if movable {
                taken.push(q.clone());
            }
            !movable
        });
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn outgoing(qos: QoS) -> Outgoing {
        let message = Message::pooled(
            "t".into(),
            qos,
            false,
            Bytes::new(),
            Default::default(),
            None,
            Instant::now(),
        )
        .unwrap();
        Outgoing {
            message,
            qos,
            retain: false,
            subscription_ids: SubscriptionIds::None,
            shared_group: None,
        }
    }

    #[test]
    fn full_queue_drops_oldest_qos0_but_never_qos1() {
        let session = Session::new("c".into());
        let mut st = session.state.lock();
        assert_eq!(
            st.enqueue(
                outgoing(QoS::AtMostOnce),
                2,
                QueueFullPolicy::DropOldestQos0,
                &mut LazyNow::new()
            ),
            Enqueued::Queued
        );
        assert_eq!(
            st.enqueue(
                outgoing(QoS::AtLeastOnce),
                2,
                QueueFullPolicy::DropOldestQos0,
                &mut LazyNow::new()
            ),
            Enqueued::Queued
        );
        assert_eq!(
            st.enqueue(
                outgoing(QoS::AtLeastOnce),
                2,
                QueueFullPolicy::DropOldestQos0,
                &mut LazyNow::new()
            ),
            Enqueued::QueuedDroppingOldest
        );
        assert!(st.queue.iter().all(|q| q.qos == QoS::AtLeastOnce));
        assert_eq!(
            st.enqueue(
                outgoing(QoS::AtMostOnce),
                2,
                QueueFullPolicy::DropOldestQos0,
                &mut LazyNow::new()
            ),
            Enqueued::Rejected
        );
        assert_eq!(st.queue.len(), 2);
    }

    #[test]
    fn mqtt_2_2_1_packet_ids_skip_those_in_flight_and_never_zero() {
        let session = Session::new("c".into());
        let mut st = session.state.lock();
        st.next_packet_id = u16::MAX;
        let a = st.allocate_packet_id().unwrap();
        assert_eq!(a, u16::MAX);
        st.inflight.push_back(Inflight {
            packet_id: 1,
            state: InflightState::AwaitingPubAck,
            item: outgoing(QoS::AtLeastOnce),
            sent: true,
        });
        assert_eq!(st.allocate_packet_id(), Some(2));
    }
}
