//! Test support for broker integration tests: a broker on an ephemeral loopback port, and a
//! raw MQTT client built on the codec that sends exact packets and reads exact answers.
#![allow(dead_code)]

pub mod tls;

use std::time::Duration;

use bytes::BytesMut;
use ferrumq_broker::codec::*;
use ferrumq_broker::config::BrokerConfig;
use ferrumq_broker::listeners::{self, RunningBroker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The hash of password "s3cret" in Mosquitto's `$6$` (SHA-512) format, for password files.
pub const PASSWORD_HASH: &str = "$6$EomL2EILM9cp06Ek$bOx3fdhf8XBy/DrXyITa+G5RMpaquKImMg+vO/TuKJcQelVLFSxs3uah4jFVq1NUW9P9OcdO/fE6rJ/x5iduSw==";

/// How long a test waits for a packet it expects. Generous: a loaded CI machine is slow.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be sure nothing arrives.
pub const QUIET: Duration = Duration::from_millis(300);

/// The default test configuration: one listener on 127.0.0.1:0, $SYS off.
pub fn test_config() -> BrokerConfig {
    let mut config = BrokerConfig::default();
    config.listeners[0].bind = "127.0.0.1:0".into();
    config.admin.bind = "127.0.0.1:0".into();
    config.settings.sys.interval_secs = 0;
    config.settings.shutdown.grace_period_secs = 2;
    config
}

pub async fn start() -> RunningBroker {
    start_with(test_config()).await
}

pub async fn start_with(config: BrokerConfig) -> RunningBroker {
    listeners::start(config).await.expect("broker starts")
}

/// A byte stream a test client speaks MQTT over: plain TCP, or TLS for `mqtts` listeners.
pub trait ClientStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> ClientStream for T {}

/// A client that speaks MQTT through the codec, one packet at a time.
pub struct RawClient {
    pub stream: Box<dyn ClientStream>,
    pub decoder: Decoder,
    pub version: ProtocolVersion,
    buf: BytesMut,
}

/// What a client sees when it waits for a packet.
#[derive(Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // short-lived, one at a time: boxing buys nothing
pub enum Received {
    Packet(Packet),
    /// The broker closed the connection.
    Closed,
    /// Nothing arrived in time.
    Nothing,
}

impl RawClient {
    pub async fn open(broker: &RunningBroker, version: ProtocolVersion) -> RawClient {
        let stream = TcpStream::connect(broker.mqtt_addr())
            .await
            .expect("tcp connect");
        stream.set_nodelay(true).unwrap();
        RawClient::over(Box::new(stream), version)
    }

    /// A client on a stream the test opened itself (a TLS stream, say).
    pub fn over(stream: Box<dyn ClientStream>, version: ProtocolVersion) -> RawClient {
        RawClient {
            stream,
            decoder: Decoder::with_version(version, MAX_PACKET_SIZE_LIMIT),
            version,
            buf: BytesMut::new(),
        }
    }

    /// Opens a connection and completes a CONNECT/CONNACK exchange with `connect`.
    pub async fn connect_with(broker: &RunningBroker, connect: Connect) -> (RawClient, ConnAck) {
        let mut client = RawClient::open(broker, connect.protocol).await;
        client.send(&Packet::Connect(Box::new(connect))).await;
        let connack = client.expect_connack().await;
        (client, connack)
    }

    /// Connects with Clean Start and the given client id; asserts the CONNACK is Success.
    pub async fn connect(
        broker: &RunningBroker,
        version: ProtocolVersion,
        client_id: &str,
    ) -> RawClient {
        let (client, connack) =
            RawClient::connect_with(broker, connect_packet(version, client_id)).await;
        assert_eq!(
            connack.reason_code,
            ReasonCode::Success,
            "CONNACK for {client_id}"
        );
        client
    }

    pub async fn send(&mut self, packet: &Packet) {
        let mut buf = BytesMut::new();
        encode(packet, self.version, &mut buf).expect("encodable");
        self.send_raw(&buf).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        // The broker may already have closed the connection; tests then observe Closed.
        let _ = self.stream.write_all(bytes).await;
        // Layered streams (WebSocket) may hold a write until flushed.
        let _ = self.stream.flush().await;
    }

    /// The next packet, the connection closing, or nothing within `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Received {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(packet)) => return Received::Packet(packet),
                Ok(None) => {}
                Err(error) => panic!("broker sent an undecodable packet: {error}"),
            }
            self.buf.reserve(4096);
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return Received::Nothing,
                Ok(Ok(0)) | Ok(Err(_)) => return Received::Closed,
                Ok(Ok(_)) => {}
            }
        }
    }

    pub async fn recv(&mut self) -> Packet {
        match self.recv_within(WAIT).await {
            Received::Packet(packet) => packet,
            other => panic!("expected a packet, got {other:?}"),
        }
    }

    pub async fn expect_connack(&mut self) -> ConnAck {
        match self.recv().await {
            Packet::ConnAck(connack) => connack,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    pub async fn expect_publish(&mut self) -> Publish {
        match self.recv().await {
            Packet::Publish(publish) => publish,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Asserts that no packet arrives for a short while.
    pub async fn expect_nothing(&mut self) {
        match self.recv_within(QUIET).await {
            Received::Nothing => {}
            other => panic!("expected nothing, got {other:?}"),
        }
    }

    /// Asserts the broker closes the connection, after a DISCONNECT with `reason` for 5.0
    /// clients (`None`: a bare close, as 3.1.1 requires).
    pub async fn expect_disconnect(&mut self, reason: Option<ReasonCode>) {
        let mut got = None;
        loop {
            match self.recv_within(WAIT).await {
                Received::Packet(Packet::Disconnect(d)) => got = Some(d.reason_code),
                Received::Packet(_) => continue,
                Received::Closed => break,
                Received::Nothing => {
                    panic!("connection still open; expected a close with {reason:?}")
                }
            }
        }
        assert_eq!(got, reason, "DISCONNECT reason before the close");
    }

    pub async fn subscribe(&mut self, packet_id: u16, filter: &str, qos: QoS) -> SubAck {
        let options = SubscriptionOptions {
            qos,
            ..Default::default()
        };
        self.subscribe_with(
            packet_id,
            vec![(filter.into(), options)],
            SubscribeProperties::default(),
        )
        .await
    }

    pub async fn subscribe_with(
        &mut self,
        packet_id: u16,
        filters: Vec<(ByteString, SubscriptionOptions)>,
        properties: SubscribeProperties,
    ) -> SubAck {
        self.send(&Packet::Subscribe(Subscribe {
            packet_id,
            properties,
            filters,
        }))
        .await;
        match self.recv().await {
            Packet::SubAck(ack) => {
                assert_eq!(ack.packet_id, packet_id);
                ack
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    pub async fn publish(
        &mut self,
        topic: &str,
        payload: &'static [u8],
        qos: QoS,
        packet_id: u16,
        retain: bool,
    ) {
        let publish = Publish {
            topic: topic.into(),
            payload: bytes::Bytes::from_static(payload),
            qos,
            packet_id,
            retain,
            ..Publish::default()
        };
        self.send(&Packet::Publish(publish)).await;
    }

    /// Publishes `size` bytes at QoS 1 to `topic`, expects its PUBACK, and checks that
    /// `subscriber` receives exactly that payload: a message larger than any read buffer or
    /// transport frame, for transports that split and join what they carry.
    pub async fn publish_large_to(&mut self, subscriber: &mut RawClient, topic: &str, size: usize) {
        let payload = bytes::Bytes::from((0..size).map(|i| i as u8).collect::<Vec<_>>());
        let publish = Publish {
            topic: topic.into(),
            qos: QoS::AtLeastOnce,
            packet_id: 7,
            payload: payload.clone(),
            ..Publish::default()
        };
        self.send(&Packet::Publish(publish)).await;
        match self.recv().await {
            Packet::PubAck(ack) => assert_eq!(ack.packet_id, 7),
            other => panic!("expected PUBACK, got {other:?}"),
        }
        let received = subscriber.expect_publish().await;
        assert_eq!(
            (received.topic.as_ref(), &received.payload),
            (topic, &payload)
        );
    }

    pub async fn disconnect(mut self) {
        self.send(&Packet::Disconnect(Disconnect::default())).await;
        let _ = self.recv_within(QUIET).await;
    }
}

/// The value of the metric `series` (name and labels as exposed, e.g.
/// `ferrumq_tls_reloads_total{listener="mqtts",result="ok"}`) in the broker's exposition; 0
/// when the series is not there yet.
pub fn metric(broker: &RunningBroker, series: &str) -> f64 {
    let text = broker.broker.stats.render();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// A CONNECT with Clean Start, keep alive 60 s, and nothing else.
pub fn connect_packet(version: ProtocolVersion, client_id: &str) -> Connect {
    Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 60,
        client_id: client_id.into(),
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties::default(),
    }
}

/// Waits until `cond` holds (polling every 10 ms), for broker-side effects without a packet to
/// wait for; fails the test after [`WAIT`], naming `what` it waited for.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
