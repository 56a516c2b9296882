//! The broker's shared state and the operations every connection uses: routing a message to
//! its subscribers, retained messages, and the session lifecycle (attach, detach, expiry,
//! Will Messages).

pub mod deadlines;
mod lifecycle;
mod reload;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use smallvec::SmallVec;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::metrics::Stats;
use crate::metrics::{DropReason, PoolCollector, StateCollector};
pub use lifecycle::{AttachParams, Attached, WillOnClose};

use crate::auth::{AuthFileError, Authenticator, ConfiguredAuth};
use crate::codec::{ByteString, QoS};
use crate::config::{BrokerConfig, BrokerSettings};
use crate::pool::{Handles, MessageRef};
use crate::router::{MatchRef, RetainRefused, RetainedStore, SharedTree};
use crate::session::{Enqueued, Events, LazyNow, Outgoing, Session, SessionMap, SubscriptionIds};
use deadlines::DeadlineWheel;

/// Everything connections share. One per broker process.
pub struct Broker {
    pub config: BrokerConfig,
    /// Decides who may connect (the authentication hook).
    pub authenticator: Box<dyn Authenticator>,
    /// Whether the authenticator gives clients topic rules (an ACL file): only then do
    /// PUBLISH and SUBSCRIBE look them up.
    pub acl_enabled: bool,
    /// Every session, by client identifier.
    pub sessions: SessionMap,
    pub router: SharedTree,
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

/// Most messages [`Broker::route_run`] takes at once (longer runs are routed in parts).
pub const MAX_RUN: usize = 64;

/// What routing one message did, for the publisher's PUBACK/PUBREC reason code.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Routed {
    /// Subscribers the message was queued for.
    pub delivered: usize,
    /// QoS 1/2 deliveries refused because a subscriber's queue was full.
    pub rejected: usize,
    /// The message asked to be retained and the retained store was full
    /// (`limits.maxRetainedMessages` or `maxRetainedBytes`): delivered, not retained.
    pub retain_refused: bool,
}

impl Broker {
    /// A broker authenticating clients as its configuration says (its password file read).
    pub fn new(config: BrokerConfig) -> Result<Arc<Broker>, AuthFileError> {
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
            acl_enabled: authenticator.enforces_topic_rules(),
            authenticator,
            sessions: SessionMap::default(),
            router: SharedTree::default(),
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

    /// Runs `work` every `interval` (never when it is zero) until the broker starts shutting
    /// down, each time on a blocking thread: the periodic file I/O (saving state, reloading
    /// changed files) must not hold up a worker thread that serves connections.
    pub fn every_blocking(&self, interval: Duration, work: impl Fn() + Send + Sync + 'static) {
        if interval.is_zero() {
            return;
        }
        let shutdown = self.shutdown.clone();
        let work = Arc::new(work);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.cancelled() => return,
                }
                let work = Arc::clone(&work);
                let _ = tokio::task::spawn_blocking(move || work()).await;
            }
        });
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
        let mut routed = Routed::default();
        let Some(first) = run.first() else {
            return routed;
        };
        debug_assert!(run
            .iter()
            .all(|m| m.topic == first.topic && m.publisher == first.publisher));
        let mut now = LazyNow::new();
        // Filled in place: collected, the vector (1.5 KiB inline) was returned by value and
        // copied, a tenth of a single-subscriber publish.
        let mut handles: SmallVec<[Handles<'_>; MAX_RUN]> = SmallVec::new();
        handles.extend(run.iter().map(MessageRef::handles));
        self.router.read().visit_matches(
            &first.topic,
            first.publisher.as_ref(),
            &|client| self.is_attached(client),
            |m| self.deliver_match(run, &mut handles, m, &mut routed, &mut now),
        );
        routed
    }

    fn deliver_match(
        &self,
        run: &[MessageRef],
        handles: &mut [Handles<'_>],
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
        let items = run.iter().zip(handles).map(|(message, handles)| Outgoing {
            qos: message.qos.min(m.qos),
            // [MQTT-3.3.1-12/13]: RETAIN is cleared unless Retain As Published.
            retain: message.retain && m.retain_as_published,
            message: handles.next_ref(),
            subscription_ids: SubscriptionIds::from_slice(m.subscription_ids),
            shared_group: m.shared_group.cloned(),
        });
        self.offer(session, items, routed, now);
    }

    /// Queues deliveries on a session, in order, counting the outcomes.
    pub fn offer(
        &self,
        session: &Session,
        items: impl IntoIterator<Item = Outgoing>,
        routed: &mut Routed,
        now: &mut LazyNow,
    ) {
        let limits = &self.settings().limits;
        session.deliver(
            items,
            self.acl_enabled,
            limits.max_queued_messages as usize,
            limits.queue_full_policy,
            now,
            |enqueued, qos| match enqueued {
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
            },
        );
    }

    /// Stores or deletes the retained message for a topic (section 3.3.1.3): a zero-length
    /// payload deletes it. A message that would take the store past `limits.maxRetained*` is
    /// not stored (and counted in `ferrumq_retained_refused_total`); deleting always works.
    pub fn retain(&self, message: &MessageRef) -> Result<(), RetainRefused> {
        if message.payload.is_empty() {
            self.retained.write().remove(&message.topic);
            return Ok(());
        }
        // Kept for long, so copied out of the read buffer it arrived in (before the lock).
        let kept = message.detached().unwrap_or_else(|error| {
            tracing::warn!(%error, "retained message kept as received");
            message.clone()
        });
        let limits = self.settings().limits.retain_limits();
        let stored = self
            .retained
            .write()
            .insert_within(&message.topic, kept, limits);
        if let Err(refused) = stored {
            tracing::debug!(topic = %message.topic, %refused, "message not retained");
            self.stats.retain_refused(refused);
        }
        stored.map(drop)
    }

    /// Publishes a message from any source (client, Will, $SYS): retains it if asked (see
    /// [`Broker::retain`]; a message the full store refuses is still routed), routes it.
    pub fn publish(&self, message: MessageRef) -> Routed {
        let retain_refused = message.retain
            && self.settings().features.retain_available
            && self.retain(&message).is_err();
        Routed {
            retain_refused,
            ..self.publish_run(std::slice::from_ref(&message))
        }
    }

    /// Counts and routes a run of messages with one topic and publisher ([`Broker::route_run`]);
    /// storing a retained message is the caller's part ([`Broker::publish`] does it). A run that
    /// reaches no subscriber counts each message as dropped for want of one.
    pub fn publish_run(&self, run: &[MessageRef]) -> Routed {
        for message in run {
            self.stats.received(message.qos);
        }
        let routed = self.route_run(run);
        if routed.delivered == 0 && routed.rejected == 0 {
            for _ in run {
                self.stats.dropped(DropReason::NoSubscribers);
            }
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

    fn qos0(topic: &str, n: u8) -> MessageRef {
        Message::pooled(
            ByteString::from(topic.to_string()),
            QoS::AtMostOnce,
            false,
            Bytes::from(vec![n]),
            Default::default(),
            Some(ByteString::from_static("publisher")),
            Instant::now(),
        )
        .unwrap()
    }

    #[test]
    fn a_run_is_queued_in_order_and_a_full_queue_drops_per_message() {
        let mut config = BrokerConfig::default();
        config.settings.limits.max_queued_messages = 3;
        let broker = Broker::new(config).unwrap();
        let client = ByteString::from_static("sub");
        let attached = broker.attach(
            &client,
            AttachParams {
                clean_start: true,
                expiry_interval: 0,
                version: crate::codec::ProtocolVersion::V3_1_1,
                receive_maximum: 10,
                maximum_packet_size: u32::MAX,
                acl: None,
            },
        );
        let subscription = crate::router::Subscription {
            options: Default::default(),
            identifier: None,
            session: crate::session::SessionLink::to(&attached.session),
        };
        broker
            .router
            .write()
            .subscribe("run/t", &client, subscription);
        let run: Vec<MessageRef> = (1..=5).map(|n| qos0("run/t", n)).collect();
        let routed = broker.publish_run(&run);
        assert_eq!(
            routed.delivered, 5,
            "each message was queued, the oldest dropped"
        );
        assert_eq!(broker.stats.received_total(), 5);
        assert_eq!(broker.stats.dropped_count(DropReason::QueueFull), 2);
        let st = attached.session.state.lock();
        let queued: Vec<u8> = st.queue.iter().map(|q| q.message.payload[0]).collect();
        assert_eq!(queued, [3, 4, 5]);
        drop(st);
        let nobody: Vec<MessageRef> = (1..=4).map(|n| qos0("run/none", n)).collect();
        assert_eq!(broker.publish_run(&nobody), Routed::default());
        assert_eq!(broker.stats.dropped_count(DropReason::NoSubscribers), 4);
    }

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
            Instant::now(),
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
