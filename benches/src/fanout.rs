//! A fan-out harness: real broker state (sessions, subscription tree, queues, outboxes) without
//! sockets, so benchmarks and allocation tests measure the message path itself.
//!
//! The broker's work for one PUBLISH is split the way the broker splits it between threads:
//!
//! - the publisher's side ([`FanoutHarness::route_received`]): decode the PUBLISH in place from
//!   the publisher's read buffer (where [`FanoutHarness::receive`] put its wire bytes, as a
//!   socket read would), wrap it in a pooled message envelope, route it through the
//!   subscription tree, and queue it on every matching session with its wire head encoded
//!   (once per wire form, shared by every subscriber that receives the same bytes): the
//!   ready-to-write bytes are in every subscriber's queue;
//! - every subscriber's writer ([`FanoutHarness::write_all`]): move what is queued into flight
//!   and into the connection's outbox (the shared head copied and its packet identifier
//!   patched, the payload listed as a shared piece), and mark those bytes written as a
//!   completed `writev` would. For QoS 1 and 2 the subscriber's acknowledgement is simulated
//!   by emptying its in-flight window.
//!
//! [`FanoutHarness::publish_once`] does all of it for one PUBLISH. The only work left out is
//! the system calls.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use ferrumq_broker::codec::{
    encode, ByteString, Decoded, Decoder, Packet, ProtocolVersion, Publish, QoS,
    SubscriptionOptions, MAX_PACKET_SIZE_LIMIT,
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
    /// When the bytes now in `read_buffer` were read: like a connection, the harness reads the
    /// clock once per read, not once per message.
    received_at: Instant,
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
            received_at: Instant::now(),
        }
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// One PUBLISH, from wire bytes to written bytes for every subscriber: [`receive`],
    /// [`route_received`] and [`write_all`]. Returns the number of bytes made ready, summed
    /// over subscribers.
    ///
    /// [`receive`]: FanoutHarness::receive
    /// [`route_received`]: FanoutHarness::route_received
    /// [`write_all`]: FanoutHarness::write_all
    pub fn publish_once(&mut self) -> usize {
        self.receive(1);
        self.route_received();
        self.write_all()
    }

    /// `count` copies of the PUBLISH arrive in the publisher's read buffer, as one socket read
    /// would leave them.
    pub fn receive(&mut self, count: usize) {
        for _ in 0..count {
            self.read_buffer.extend_from_slice(&self.wire);
        }
        self.received_at = Instant::now();
    }

    /// The publisher's side of one PUBLISH already received: decoded in place, routed, and
    /// queued on every subscriber with its wire head encoded. Returns the subscribers it was
    /// queued for.
    pub fn route_received(&mut self) -> usize {
        let message = self.decode_one();
        let routed = self.broker.publish(message);
        debug_assert_eq!(routed.delivered, self.subscribers.len());
        routed.delivered
    }

    /// `count` QoS 0 PUBLISH packets arriving in one read, as a publisher streaming to one topic
    /// sends them (at most [`MAX_RUN`]): decoded, routed as one run as the broker's
    /// connections route them, then written by every subscriber in one go. Returns the bytes
    /// made ready, summed over subscribers.
    pub fn publish_run(&mut self, count: usize) -> usize {
        assert!(count <= MAX_RUN, "a run holds at most {MAX_RUN} messages");
        self.receive(count);
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

    /// Decodes the next PUBLISH as a connection does: into a `Publish` of the read (here one
    /// per message, as if each came in a read of its own), whose contents the message takes.
    fn decode_one(&mut self) -> MessageRef {
        let mut publish = Publish::default();
        match self
            .decoder
            .decode_reusing(&mut self.read_buffer, &mut publish)
        {
            Ok(Some(Decoded::Publish)) => {}
            other => panic!("the harness's own PUBLISH did not decode: {other:?}"),
        }
        Message::from_publish(&mut publish, Some(self.publisher.clone()), self.received_at)
            .expect("encodable message")
    }

    /// For every subscriber, the messages waiting in its queue and whether each one's wire head
    /// for that subscriber is already encoded (ready-to-write bytes, not a message still to
    /// encode).
    pub fn queued_ready(&self) -> Vec<(usize, bool)> {
        self.subscribers
            .iter()
            .map(|subscriber| {
                let state = subscriber.attached.session.state.lock();
                let ready = state.queue.iter().all(|item| {
                    item.message
                        .encoded_head(subscriber.outbox.limits().version, item.qos)
                        .is_some()
                });
                (state.queue.len(), ready)
            })
            .collect()
    }

    /// Every subscriber's writer moves what is queued for it into its outbox, and the outbox
    /// is written. Returns the bytes that were ready, summed over subscribers.
    pub fn write_all(&mut self) -> usize {
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
