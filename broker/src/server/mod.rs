//! The broker's shared state and the operations every connection uses: routing a message to
//! its subscribers, retained messages, and the session lifecycle (attach, detach, expiry,
//! Will Messages).

pub mod deadlines;
mod lifecycle;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::metrics::Stats;
use crate::metrics::{DropReason, PoolCollector, StateCollector};
pub use lifecycle::{AttachParams, Attached, WillOnClose};

use crate::auth::{Authenticator, ConfiguredAuth, PasswordFileError};
use crate::codec::{ByteString, QoS};
use crate::config::{BrokerConfig, BrokerSettings};
use crate::pool::{Handles, MessageRef};
use crate::router::{MatchRef, RetainedStore, SubscriptionTree};
use crate::session::{Enqueued, Events, LazyNow, Outgoing, Session, SessionMap, SubscriptionIds};
use deadlines::DeadlineWheel;

/// Everything connections share. One per broker process.
pub struct Broker {
    pub config: BrokerConfig,
    /// Decides who may connect (the authentication hook).
    pub authenticator: Box<dyn Authenticator>,
    /// Every session, by client identifier.
    pub sessions: SessionMap,
    pub router: RwLock<SubscriptionTree>,
    pub retained: RwLock<RetainedStore<MessageRef>>,
    pub stats: Stats,
    pub started: Instant,
    /// Cancelled on SIGTERM/SIGINT or a drain (by [`Broker::begin_shutdown`]): listeners stop,
    /// connections send DISCONNECT 0x8B.
    pub shutdown: CancellationToken,
    /// Every connection's Keep Alive deadline.
    pub keep_alive: DeadlineWheel,
    /// When idle connections should go to sleep (see `connection::dormant`).
    pub sleep_deadlines: DeadlineWheel,
    /// The runtime serving this broker's connections, where a sleeping connection wakes up;
    /// set by the first connection that goes to sleep.
    pub runtime: OnceLock<tokio::runtime::Handle>,
    /// Tracks connection and timer tasks, so shutdown can wait for them.
    pub tasks: TaskTracker,
    pub connections: AtomicUsize,
    /// Of those, the connections asleep (see `connection::dormant`).
    pub asleep: AtomicUsize,
    assigned_ids: AtomicU64,
}

/// What routing one message did, for the publisher's PUBACK/PUBREC reason code.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Routed {
    /// Subscribers the message was queued for.
    pub delivered: usize,
    /// QoS 1/2 deliveries refused because a subscriber's queue was full.
    pub rejected: usize,
}

impl Broker {
    /// A broker authenticating clients as its configuration says (its password file read).
    pub fn new(config: BrokerConfig) -> Result<Arc<Broker>, PasswordFileError> {
        let authenticator = Box::new(ConfiguredAuth::new(&config.settings.auth)?);
        Ok(Broker::with_authenticator(config, authenticator))
    }

    /// A broker that asks `authenticator` about every CONNECT.
    pub fn with_authenticator(
        config: BrokerConfig,
        authenticator: Box<dyn Authenticator>,
    ) -> Arc<Broker> {
        let broker = Arc::new(Broker {
            config,
            authenticator,
            sessions: SessionMap::default(),
            router: RwLock::new(SubscriptionTree::new()),
            retained: RwLock::new(RetainedStore::new()),
            stats: Stats::new().expect("metric names are unique"),
            started: Instant::now(),
            shutdown: CancellationToken::new(),
            keep_alive: DeadlineWheel::new(Events::KEEP_ALIVE),
            sleep_deadlines: DeadlineWheel::new(Events::IDLE),
            runtime: OnceLock::new(),
            tasks: TaskTracker::new(),
            connections: AtomicUsize::new(0),
            asleep: AtomicUsize::new(0),
            assigned_ids: AtomicU64::new(0),
        });
        let registry = &broker.stats.registry;
        if let Err(error) = registry.register(Box::new(StateCollector::new(&broker))) {
            tracing::warn!(%error, "state metrics unavailable");
        }
        if let Err(error) = registry.register(Box::new(PoolCollector::default())) {
            tracing::warn!(%error, "pool metrics unavailable");
        }
        #[cfg(target_os = "linux")]
        if let Err(error) = registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        )) {
            tracing::warn!(%error, "process metrics unavailable");
        }
        broker
    }

    pub fn settings(&self) -> &BrokerSettings {
        &self.config.settings
    }

    /// A client identifier for a client that sent none (section 3.1.3.1), unique in this
    /// process and recognisable in logs.
    pub fn assign_client_id(&self) -> ByteString {
        let n = self.assigned_ids.fetch_add(1, Ordering::Relaxed);
        let started = self.started.elapsed().as_nanos() as u64;
        ByteString::from(format!(
            "ferrumq-{:x}-{n}",
            started ^ (u64::from(std::process::id()) << 32)
        ))
    }

    /// Starts shutting down: cancels [`Broker::shutdown`] (listeners stop accepting, a
    /// handshake in progress is refused) and tells every attached connection to close.
    ///
    /// A connection that attaches while this runs is not missed: either its session is seen
    /// here with the connection attached, or the attach comes after the cancel, and the
    /// connection checks the cancel once attached.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
        for session in self.sessions.all() {
            if let Some(attached) = &session.state.lock().attached {
                attached.signal.raise(Events::SHUTDOWN);
            }
        }
    }

    fn is_attached(&self, client: &ByteString) -> bool {
        self.sessions
            .get(client)
            .is_some_and(|s| s.state.lock().attached.is_some())
    }

    /// Routes `message` to every matching subscription: one delivery per client (overlapping
    /// subscriptions merged, section 3.3.4), one member per shared group (section 4.8.2).
    ///
    /// Deliveries are queued while the tree's read lock is held, borrowing each subscription's
    /// session from the tree: nothing is cloned per subscriber but the message handle, and
    /// those handles are counted in batches ([`Handles`]).
    pub fn route(&self, message: &MessageRef) -> Routed {
        let mut routed = Routed::default();
        let mut now = LazyNow::new();
        let mut handles = message.handles();
        self.router.read().visit_matches(
            &message.topic,
            message.publisher.as_ref(),
            &|client| self.is_attached(client),
            &mut |m| self.deliver_match(&mut handles, m, &mut routed, &mut now),
        );
        routed
    }

    fn deliver_match(
        &self,
        handles: &mut Handles<'_>,
        m: MatchRef<'_>,
        routed: &mut Routed,
        now: &mut LazyNow,
    ) {
        // Every subscription in the tree is linked to its session (SUBSCRIBE handling is the
        // tree's only writer); an unlinked one has no session to deliver to.
        let Some(session) = m.session.session() else {
            debug_assert!(false, "unlinked subscription for {}", m.client);
            return;
        };
        let message = handles.next_ref();
        let item = Outgoing {
            qos: message.qos.min(m.qos),
            // [MQTT-3.3.1-12/13]: RETAIN is cleared unless Retain As Published.
            retain: message.retain && m.retain_as_published,
            message,
            subscription_ids: SubscriptionIds::from_slice(m.subscription_ids),
            shared_group: m.shared_group.cloned(),
        };
        self.offer(session, item, routed, now);
    }

    /// Queues one delivery on a session, counting the outcome.
    pub fn offer(&self, session: &Session, item: Outgoing, routed: &mut Routed, now: &mut LazyNow) {
        let limits = &self.settings().limits;
        let qos = item.qos;
        match session.deliver(
            item,
            limits.max_queued_messages as usize,
            limits.queue_full_policy,
            now,
        ) {
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
            Enqueued::Expired => {
                self.stats.dropped(DropReason::Expired);
            }
        }
    }

    /// Stores or deletes the retained message for a topic (section 3.3.1.3): a zero-length
    /// payload deletes it.
    pub fn retain(&self, message: &MessageRef) {
        if message.payload.is_empty() {
            self.retained.write().remove(&message.topic);
            return;
        }
        // Kept for long, so copied out of the read buffer it arrived in (before the lock).
        let kept = message.detached().unwrap_or_else(|error| {
            tracing::warn!(%error, "retained message kept as received");
            message.clone()
        });
        self.retained.write().insert(&message.topic, kept);
    }

    /// Publishes a message from any source (client, Will, $SYS): retains it if asked, routes it.
    pub fn publish(&self, message: MessageRef) -> Routed {
        self.stats.received(message.qos);
        if message.retain && self.settings().features.retain_available {
            self.retain(&message);
        }
        let routed = self.route(&message);
        if routed.delivered == 0 && routed.rejected == 0 {
            self.stats.dropped(DropReason::NoSubscribers);
        }
        routed
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::codec::ByteString;
    use crate::session::Message;

    #[test]
    fn a_retained_message_does_not_keep_the_buffer_it_arrived_in() {
        let broker = Broker::new(BrokerConfig::default()).unwrap();
        let read_buffer = Bytes::from(vec![b'v'; 16 * 1024]);
        let message = Message::pooled(
            ByteString::try_from(read_buffer.slice(0..6)).unwrap(),
            QoS::AtMostOnce,
            true,
            read_buffer.slice(64..80),
            Default::default(),
            None,
        )
        .unwrap();
        broker.publish(message);
        let mut found = Vec::new();
        broker.retained.read().matches("vvvvvv", &mut found);
        assert_eq!(found.len(), 1, "the message is retained");
        assert_eq!(&found[0].payload[..], &[b'v'; 16][..]);
        let buffer = read_buffer.as_ptr_range();
        assert!(!buffer.contains(&found[0].payload.as_ptr()));
        assert!(!buffer.contains(&found[0].topic.as_ptr()));
    }
}
