//! The admin REST API (`/api/v1/...`): off without `admin.apiTokenFile`, every request needs
//! the bearer token, and it lists clients, describes a session, disconnects a client and
//! deletes a retained message.

mod support;

use ferrumq_broker::codec::*;
use ferrumq_broker::config::BrokerConfig;
use ferrumq_broker::listeners::{self, RunningBroker};
use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "0123456789abcdef-admin";

/// A broker whose API token file holds [`TOKEN`] (with a final newline, as editors write it).
async fn broker_with_api(dir: &tempfile::TempDir) -> RunningBroker {
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    start_with(api_config(dir)).await
}

fn api_config(dir: &tempfile::TempDir) -> BrokerConfig {
    let mut config = test_config();
    config.admin.api_token_file = Some(dir.path().join("token"));
    config
}

/// One HTTP/1.0 request to the admin listener: its status code and body.
async fn request(
    broker: &RunningBroker,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(broker.admin).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!("{method} {path} HTTP/1.0\r\nHost: admin\r\n{auth}\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut answer))
        .await
        .expect("the admin listener answers in time")
        .unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("an HTTP status line");
    let body = answer
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_owned());
    (status, body)
}

async fn get_json(broker: &RunningBroker, path: &str) -> Value {
    let (status, body) = request(broker, "GET", path, Some(TOKEN)).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn the_api_is_off_without_a_token_file_and_needs_the_token_with_one() {
    let off = start().await;
    let (status, body) = request(&off, "GET", "/api/v1/clients", Some(TOKEN)).await;
    assert_eq!(status, 404);
    assert!(body.contains("apiTokenFile"), "{body}");
    off.shutdown().await;

    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with_api(&dir).await;
    for token in [None, Some("wrong"), Some(&TOKEN[..10])] {
        let (status, _) = request(&broker, "GET", "/api/v1/clients", token).await;
        assert_eq!(status, 401, "{token:?}");
    }
    let (status, _) = request(&broker, "DELETE", "/api/v1/clients/x", Some("wrong")).await;
    assert_eq!(status, 401);
    assert_eq!(
        request(&broker, "GET", "/api/v1/clients", Some(TOKEN))
            .await
            .0,
        200
    );
    // The probes and metrics stay open: Kubernetes and Prometheus carry no token.
    assert_eq!(request(&broker, "GET", "/healthz", None).await.0, 200);
    broker.shutdown().await;
}

#[tokio::test]
async fn clients_are_listed_in_pages_and_described_with_their_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with_api(&dir).await;
    let mut clients = Vec::new();
    for id in ["c", "a", "b"] {
        clients.push(RawClient::connect(&broker, ProtocolVersion::V5, id).await);
    }
    clients[1]
        .subscribe(1, "fleet/+/status", QoS::AtLeastOnce)
        .await;

    let page = get_json(&broker, "/api/v1/clients?limit=2").await;
    let ids: Vec<&str> = page["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["clientId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(page["next"], "b");
    let rest = get_json(&broker, "/api/v1/clients?limit=2&after=b").await;
    assert_eq!(rest["clients"][0]["clientId"], "c");
    assert!(rest["next"].is_null());

    let a = get_json(&broker, "/api/v1/clients/a").await;
    assert_eq!(a["connected"], true);
    assert_eq!(a["protocolVersion"], 5);
    assert_eq!(a["subscriptions"][0]["filter"], "fleet/+/status");
    assert_eq!(a["subscriptions"][0]["qos"], 1);
    assert_eq!(
        request(&broker, "GET", "/api/v1/clients/nobody", Some(TOKEN))
            .await
            .0,
        404
    );
    assert_eq!(
        request(&broker, "GET", "/api/v1/clients?limit=0", Some(TOKEN))
            .await
            .0,
        400
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn a_client_is_disconnected_with_administrative_action() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with_api(&dir).await;
    let mut client = RawClient::connect(&broker, ProtocolVersion::V5, "noisy device").await;
    let (status, _) = request(
        &broker,
        "DELETE",
        "/api/v1/clients/noisy%20device",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 202);
    client
        .expect_disconnect(Some(ReasonCode::AdministrativeAction))
        .await;
    eventually("the session to be detached", || {
        broker
            .broker
            .sessions
            .get("noisy device")
            .is_none_or(|s| s.state.lock().attached.is_none())
    })
    .await;
    let (status, _) = request(
        &broker,
        "DELETE",
        "/api/v1/clients/noisy%20device",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 404, "no longer connected");
    broker.shutdown().await;
}

#[tokio::test]
async fn a_retained_message_is_deleted_by_topic() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with_api(&dir).await;
    let mut publisher = RawClient::connect(&broker, ProtocolVersion::V3_1_1, "pub").await;
    publisher
        .publish("site/1/alarm state", b"on", QoS::AtMostOnce, 0, true)
        .await;
    eventually("the retained message", || {
        broker.broker.retained.read().len() == 1
    })
    .await;
    let path = "/api/v1/retained/site/1/alarm%20state";
    assert_eq!(request(&broker, "DELETE", path, Some(TOKEN)).await.0, 204);
    assert_eq!(broker.broker.retained.read().len(), 0);
    let mut reader = RawClient::connect(&broker, ProtocolVersion::V3_1_1, "reader").await;
    reader.subscribe(1, "site/#", QoS::AtMostOnce).await;
    reader.expect_nothing().await;
    assert_eq!(request(&broker, "DELETE", path, Some(TOKEN)).await.0, 404);
    broker.shutdown().await;
}

#[tokio::test]
async fn an_empty_token_file_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "\n").unwrap();
    let error = match listeners::start(api_config(&dir)).await {
        Ok(_) => panic!("the broker started with an empty API token"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.contains("admin.apiTokenFile") && error.contains("token"),
        "{error}"
    );
}
