//! A fan-out harness: real broker state (sessions, subscription tree, queues, outboxes) without
//! sockets, so benchmarks and allocation tests measure the message path itself.
//!
//! One operation ([`FanoutHarness::publish_once`]) is what the broker does for one PUBLISH:
//! copy its wire bytes into the publisher's warm read buffer and decode it in place; wrap it
//! in a pooled message envelope; route it through the subscription tree; queue it on every
//! matching session; then, for every subscriber, move it from the queue into flight and into
//! that connection's outbox as ready-to-write bytes (a per-subscriber head plus the shared
//! payload), and mark those bytes written as a completed `writev` would. For QoS 1 and 2 the
//! subscriber's acknowledgement is simulated by emptying its in-flight window. The only work
//! left out is the system calls.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ferrumq_broker::codec::{
    encode, ByteString, Decoder, Packet, ProtocolVersion, Publish, QoS, SubscriptionOptions,
    MAX_PACKET_SIZE_LIMIT,
};
use ferrumq_broker::config::BrokerConfig;
use ferrumq_broker::delivery::{ClientLimits, Outbox};
use ferrumq_broker::pool;
use ferrumq_broker::pool::MessageRef;
use ferrumq_broker::router::Subscription;
use ferrumq_broker::server::{AttachParams, Attached, Broker, MAX_RUN};
use ferrumq_broker::session::{Message, SessionLink};

/// The topic every subscriber of the harness subscribes to.
pub const TOPIC: &str = "bench/fanout/topic";

struct Subscriber {
    attached: Attached,
    outbox: Outbox,
}

/// Broker state with `n` subscribers on one topic and one publisher's read buffer.
pub struct FanoutHarness {
    broker: Arc<Broker>,
    subscribers: Vec<Subscriber>,
    wire: Bytes,
    read_buffer: BytesMut,
    decoder: Decoder,
    publisher: ByteString,
    /// The messages of a run, kept between runs with its capacity.
    run: Vec<MessageRef>,
}

impl FanoutHarness {
    /// `n` subscribers at `qos` (3.1.1 connections) and a PUBLISH of `payload` bytes at `qos`.
    pub fn new(n: usize, qos: QoS, payload: usize) -> FanoutHarness {
        let mut config = BrokerConfig::default();
        config.settings.limits.max_queued_messages = 1_000;
        let broker = Broker::new(config).expect("the harness's configuration has no password file");
        let version = ProtocolVersion::V3_1_1;
        let mut subscribers = Vec::with_capacity(n);
        for i in 0..n {
            let client_id = ByteString::from(format!("sub-{i}"));
            let attached = broker.attach(
                &client_id,
                AttachParams {
                    clean_start: true,
                    expiry_interval: 0,
                    version,
                    receive_maximum: u16::MAX,
                    maximum_packet_size: u32::MAX,
                    acl: None,
                },
            );
            let options = SubscriptionOptions {
                qos,
                ..Default::default()
            };
            let subscription = Subscription {
                options,
                identifier: None,
                session: SessionLink::default(),
            };
            let linked = Subscription {
                session: SessionLink::to(&attached.session),
                ..subscription.clone()
            };
            broker.router.write().subscribe(TOPIC, &client_id, linked);
            attached
                .session
                .state
                .lock()
                .subscriptions
                .insert(TOPIC.to_string(), subscription);
            let outbox = Outbox::new(ClientLimits {
                version,
                inflight_window: u16::MAX,
                maximum_packet_size: u32::MAX,
                topic_alias_maximum: 0,
            });
            subscribers.push(Subscriber { attached, outbox });
        }
        let publish = Publish {
            topic: TOPIC.into(),
            qos,
            packet_id: if qos == QoS::AtMostOnce { 0 } else { 1 },
            payload: Bytes::from(vec![0xA5; payload]),
            ..Publish::default()
        };
        let mut wire = BytesMut::new();
        encode(&Packet::Publish(publish), version, &mut wire).expect("encodable PUBLISH");
        FanoutHarness {
            broker,
            subscribers,
            wire: wire.freeze(),
            read_buffer: BytesMut::with_capacity(128 * 1024),
            decoder: Decoder::with_version(version, MAX_PACKET_SIZE_LIMIT),
            publisher: ByteString::from_static("publisher"),
            run: Vec::with_capacity(MAX_RUN),
        }
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// One PUBLISH, from wire bytes to ready-to-write bytes for every subscriber. Returns the
    /// number of bytes made ready, summed over subscribers.
    pub fn publish_once(&mut self) -> usize {
        self.read_buffer.extend_from_slice(&self.wire);
        let message = self.decode_one();
        let routed = self.broker.publish(message);
        debug_assert_eq!(routed.delivered, self.subscribers.len());
        self.write_all()
    }

    /// `count` QoS 0 PUBLISH packets arriving in one read, as a publisher streaming to one topic
    /// sends them (at most [`MAX_RUN`]): decoded, routed as one run as the broker's
    /// connections route them, then written by every subscriber in one go. Returns the bytes
    /// made ready, summed over subscribers.
    pub fn publish_run(&mut self, count: usize) -> usize {
        assert!(count <= MAX_RUN, "a run holds at most {MAX_RUN} messages");
        for _ in 0..count {
            self.read_buffer.extend_from_slice(&self.wire);
        }
        let mut run = std::mem::take(&mut self.run);
        run.extend((0..count).map(|_| self.decode_one()));
        assert!(
            run.iter().all(|m| m.qos == QoS::AtMostOnce),
            "runs are QoS 0"
        );
        let routed = self.broker.publish_run(&run);
        debug_assert_eq!(routed.delivered, count * self.subscribers.len());
        run.clear();
        self.run = run;
        self.write_all()
    }

    fn decode_one(&mut self) -> MessageRef {
        let publish = match self.decoder.decode(&mut self.read_buffer) {
            Ok(Some(Packet::Publish(publish))) => publish,
            other => panic!("the harness's own PUBLISH did not decode: {other:?}"),
        };
        Message::from_publish(
            publish,
            Some(self.publisher.clone()),
            std::time::Instant::now(),
        )
        .expect("encodable message")
    }

    /// Every subscriber moves what is queued for it into its outbox, and the outbox is written.
    fn write_all(&mut self) -> usize {
        let stats = &self.broker.stats;
        let mut ready = 0;
        for subscriber in &mut self.subscribers {
            let mut state = subscriber.attached.session.state.lock();
            subscriber.outbox.collect(&mut state, stats);
            state.inflight.clear();
            drop(state);
            ready += subscriber.outbox.pending_len();
            subscriber.outbox.discard_pending(stats);
        }
        // The worker is done with this read and would go idle here, which is when the
        // broker's runtime gives up the handles its deliveries released.
        pool::flush_deferred_releases();
        ready
    }
}
