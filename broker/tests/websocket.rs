//! `ws` and `wss` listeners: MQTT over WebSocket (MQTT 5.0 chapter 6), plain and over TLS.

mod support;

use bytes::{Bytes, BytesMut};
use ferrumq_broker::codec::*;
use ferrumq_broker::config::{BrokerConfig, ListenerProtocol};
use ferrumq_broker::listeners::{RunningBroker, WsStream};
use futures_util::SinkExt;
use support::tls::{tls_config, trusting, Identity};
use support::*;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

fn ws_config() -> BrokerConfig {
    let mut config = test_config();
    config.listeners[0].name = "ws".into();
    config.listeners[0].protocol = ListenerProtocol::Ws;
    config
}

/// The WebSocket handshake as a client offering `subprotocols`; the server's choice with it.
async fn ws_handshake<S>(
    stream: S,
    subprotocols: Option<&str>,
) -> Result<(WebSocketStream<S>, Option<String>), tokio_tungstenite::tungstenite::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut request = "ws://localhost/mqtt".into_client_request().unwrap();
    if let Some(offer) = subprotocols {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(offer).unwrap(),
        );
    }
    let (ws, response) =
        tokio::time::timeout(WAIT, tokio_tungstenite::client_async(request, stream))
            .await
            .expect("the handshake ends in time")?;
    let chosen = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_string());
    Ok((ws, chosen))
}

async fn ws_socket(broker: &RunningBroker, offer: Option<&str>) -> WebSocketStream<TcpStream> {
    let tcp = TcpStream::connect(broker.mqtt_addr()).await.unwrap();
    let (ws, chosen) = ws_handshake(tcp, offer).await.expect("handshake");
    if offer.is_some() {
        assert_eq!(chosen.as_deref(), Some("mqtt"), "[MQTT-6.0.0-4]");
    }
    ws
}

async fn connected(client: &mut RawClient, client_id: &str) {
    let connect = connect_packet(client.version, client_id);
    client.send(&Packet::Connect(Box::new(connect))).await;
    assert_eq!(
        client.expect_connack().await.reason_code,
        ReasonCode::Success
    );
}

async fn ws_client(broker: &RunningBroker, version: ProtocolVersion, id: &str) -> RawClient {
    let ws = ws_socket(broker, Some("mqtt")).await;
    let mut client = RawClient::over(Box::new(WsStream::new(ws)), version);
    connected(&mut client, id).await;
    client
}

fn encoded(packet: &Packet, version: ProtocolVersion) -> Bytes {
    let mut buf = BytesMut::new();
    encode(packet, version, &mut buf).unwrap();
    buf.freeze()
}

fn handshake_failures(broker: &RunningBroker, listener: &str) -> f64 {
    metric(
        broker,
        &format!("ferrumq_handshake_failures_total{{listener=\"{listener}\"}}"),
    )
}

#[tokio::test]
async fn publish_and_subscribe_over_websocket_at_each_version() {
    let broker = start_with(ws_config()).await;
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let mut sub = ws_client(&broker, version, "ws-sub").await;
        sub.subscribe(1, "ws/#", QoS::AtLeastOnce).await;
        let mut publisher = ws_client(&broker, version, "ws-pub").await;
        // Larger than the broker's read buffer (16 KiB): one WebSocket message is read in
        // several turns, the rest waiting in the WebSocket layer, not in the socket.
        publisher.publish_large_to(&mut sub, "ws/big", 70_000).await;
        publisher.disconnect().await;
        sub.disconnect().await;
    }
    assert_eq!(handshake_failures(&broker, "ws"), 0.0);
    broker.shutdown().await;
}

/// [MQTT-6.0.0-2]: a packet may span frames and a frame may hold several packets.
#[tokio::test]
async fn mqtt_6_0_0_2_packets_are_read_across_frame_boundaries() {
    let broker = start_with(ws_config()).await;
    let version = ProtocolVersion::V5;
    let mut sub = ws_client(&broker, version, "frames-sub").await;
    sub.subscribe(1, "frames/#", QoS::AtMostOnce).await;
    let mut ws = ws_socket(&broker, Some("mqtt")).await;
    let connect = encoded(
        &Packet::Connect(Box::new(connect_packet(version, "frames-pub"))),
        version,
    );
    let publish = |n: u8| {
        let publish = Publish {
            topic: "frames/t".into(),
            payload: Bytes::from(vec![n; 10]),
            ..Publish::default()
        };
        encoded(&Packet::Publish(publish), version)
    };
    // CONNECT in two frames, then the first PUBLISH split over the end of one frame and the
    // start of the next, which also holds the whole second PUBLISH.
    let (first, second) = (publish(1), publish(2));
    let mut tail = first[5..].to_vec();
    tail.extend_from_slice(&second);
    let frames = [
        connect[..3].to_vec(),
        connect[3..].to_vec(),
        first[..5].to_vec(),
        tail,
    ];
    for frame in frames {
        ws.send(Message::Binary(frame.into())).await.unwrap();
    }
    for n in [1, 2] {
        assert_eq!(sub.expect_publish().await.payload, Bytes::from(vec![n; 10]));
    }
    broker.shutdown().await;
}

/// [MQTT-6.0.0-1]: a text frame closes the network connection.
#[tokio::test]
async fn mqtt_6_0_0_1_a_text_frame_closes_the_connection() {
    let broker = start_with(ws_config()).await;
    let ws = ws_socket(&broker, Some("mqtt")).await;
    let mut client = RawClient::over(Box::new(WsStream::new(ws)), ProtocolVersion::V5);
    connected(&mut client, "texter").await;
    let mut ws = ws_socket(&broker, Some("mqtt")).await;
    ws.send(Message::Text("CONNECT".into())).await.unwrap();
    let mut raw = RawClient::over(Box::new(WsStream::new(ws)), ProtocolVersion::V5);
    assert_eq!(raw.recv_within(WAIT).await, Received::Closed);
    // The other client is untouched.
    client.subscribe(1, "still/here", QoS::AtMostOnce).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn subprotocols_mqtt_is_chosen_none_is_tolerated_others_are_refused() {
    let broker = start_with(ws_config()).await;
    let tcp = TcpStream::connect(broker.mqtt_addr()).await.unwrap();
    let (_, chosen) = ws_handshake(tcp, Some("chat, mqtt")).await.unwrap();
    assert_eq!(chosen.as_deref(), Some("mqtt"));
    let tcp = TcpStream::connect(broker.mqtt_addr()).await.unwrap();
    let (_, chosen) = ws_handshake(tcp, Some("mqttv3.1")).await.unwrap();
    assert_eq!(
        chosen.as_deref(),
        Some("mqttv3.1"),
        "MQTT 3.1 clients' name"
    );
    let mut none = ws_client_without_subprotocol(&broker).await;
    none.subscribe(1, "no/subprotocol", QoS::AtMostOnce).await;
    let tcp = TcpStream::connect(broker.mqtt_addr()).await.unwrap();
    let refused = ws_handshake(tcp, Some("chat")).await;
    assert!(
        refused.is_err(),
        "a client offering only other subprotocols is refused"
    );
    eventually("the refused handshake counted", || {
        handshake_failures(&broker, "ws") == 1.0
    })
    .await;
    broker.shutdown().await;
}

async fn ws_client_without_subprotocol(broker: &RunningBroker) -> RawClient {
    let ws = ws_socket(broker, None).await;
    let mut client = RawClient::over(Box::new(WsStream::new(ws)), ProtocolVersion::V3_1_1);
    connected(&mut client, "no-subprotocol").await;
    client
}

#[tokio::test]
async fn plain_mqtt_sent_to_a_websocket_listener_is_closed_and_counted() {
    let broker = start_with(ws_config()).await;
    let mut plain = RawClient::open(&broker, ProtocolVersion::V5).await;
    let connect = connect_packet(ProtocolVersion::V5, "plain");
    plain.send(&Packet::Connect(Box::new(connect))).await;
    assert_eq!(plain.recv_within(WAIT).await, Received::Closed);
    eventually("the failed handshake counted", || {
        handshake_failures(&broker, "ws") == 1.0
    })
    .await;
    broker.shutdown().await;
}

#[tokio::test]
async fn publish_and_subscribe_over_websocket_over_tls() {
    let identity = Identity::new();
    let mut config = tls_config(identity.files());
    config.listeners[0].name = "wss".into();
    config.listeners[0].protocol = ListenerProtocol::Wss;
    let broker = start_with(config).await;
    let connector = trusting(&identity.cert_pem);
    let mut clients = Vec::new();
    for id in ["wss-sub", "wss-pub"] {
        let tcp = TcpStream::connect(broker.mqtt_addr()).await.unwrap();
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, tcp).await.expect("TLS handshake");
        let (ws, chosen) = ws_handshake(tls, Some("mqtt"))
            .await
            .expect("WebSocket handshake");
        assert_eq!(chosen.as_deref(), Some("mqtt"));
        let mut client = RawClient::over(Box::new(WsStream::new(ws)), ProtocolVersion::V5);
        connected(&mut client, id).await;
        clients.push(client);
    }
    let [mut sub, mut publisher] = <[RawClient; 2]>::try_from(clients).ok().unwrap();
    sub.subscribe(1, "wss/#", QoS::AtMostOnce).await;
    publisher
        .publish("wss/t", b"through both layers", QoS::AtMostOnce, 0, false)
        .await;
    assert_eq!(
        &sub.expect_publish().await.payload[..],
        b"through both layers"
    );
    assert_eq!(handshake_failures(&broker, "wss"), 0.0);
    broker.shutdown().await;
}
