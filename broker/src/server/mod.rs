//! The broker's shared state and the operations every connection uses: routing a message to
//! its subscribers, retained messages, and the session lifecycle (attach, detach, expiry,
//! Will Messages).

pub mod deadlines;
mod lifecycle;
mod reload;
mod routing;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::metrics::Stats;
use crate::metrics::{DropReason, PoolCollector, StateCollector};
pub use lifecycle::{AttachParams, Attached, WillOnClose};

use crate::auth::{AuthFileError, Authenticator, ConfiguredAuth};
use crate::codec::ByteString;
use crate::config::{BrokerConfig, BrokerSettings};
use crate::pool::MessageRef;
use crate::router::{RetainRefused, RetainedStore, SharedTree};
use crate::session::{Events, SessionMap};
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
    use crate::codec::{ByteString, QoS};
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
