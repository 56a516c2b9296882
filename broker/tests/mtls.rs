//! Mutual TLS on `mqtts` listeners: `tls.clientCaFile` requires every client to present a
//! certificate from that authority, and `tls.useIdentityAsUsername` makes the certificate's
//! Common Name the client's username, for authentication and ACL rules alike.

mod support;

use ferrumq_broker::codec::*;
use ferrumq_broker::config::{BrokerConfig, TlsFiles};
use ferrumq_broker::listeners::{self, RunningBroker};
use support::tls::{tls_config, trusting, trusting_as, Authority, Identity};
use support::*;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

fn mtls_config(identity: &Identity, authority: &Authority, as_username: bool) -> BrokerConfig {
    tls_config(TlsFiles {
        client_ca_file: Some(authority.cert_file()),
        use_identity_as_username: as_username,
        ..identity.files()
    })
}

/// Connects over TLS with `connector` and sends a CONNECT for `client_id`; what comes back.
async fn connect_over(
    broker: &RunningBroker,
    connector: &TlsConnector,
    connect: Connect,
) -> (Option<RawClient>, Received) {
    let tcp = TcpStream::connect(broker.mqtt_addr()).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let handshake = tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .expect("the handshake ends in time");
    let Ok(stream) = handshake else {
        return (None, Received::Closed);
    };
    let mut client = RawClient::over(Box::new(stream), connect.protocol);
    client.send(&Packet::Connect(Box::new(connect))).await;
    let received = client.recv_within(WAIT).await;
    (Some(client), received)
}

fn handshake_failures(broker: &RunningBroker) -> f64 {
    metric(
        broker,
        "ferrumq_handshake_failures_total{listener=\"mqtts\"}",
    )
}

fn accepted(received: &Received) -> bool {
    matches!(received, Received::Packet(Packet::ConnAck(ack)) if ack.reason_code == ReasonCode::Success)
}

#[tokio::test]
async fn only_clients_with_a_certificate_from_the_client_ca_get_in() {
    let (identity, authority, stranger) = (
        Identity::new(),
        Authority::new("devices"),
        Authority::new("elsewhere"),
    );
    let broker = support::start_with(mtls_config(&identity, &authority, false)).await;
    let connect = |id: &str| connect_packet(ProtocolVersion::V5, id);

    let device = authority.issue(Some("device-1"));
    let (_client, received) = connect_over(
        &broker,
        &trusting_as(&identity.cert_pem, &device),
        connect("dev-1"),
    )
    .await;
    assert!(
        accepted(&received),
        "a certificate from the client CA: {received:?}"
    );

    let (_, received) =
        connect_over(&broker, &trusting(&identity.cert_pem), connect("no-cert")).await;
    assert!(!accepted(&received), "no certificate: {received:?}");
    let foreign = stranger.issue(Some("device-1"));
    let (_, received) = connect_over(
        &broker,
        &trusting_as(&identity.cert_pem, &foreign),
        connect("foreign"),
    )
    .await;
    assert!(
        !accepted(&received),
        "a certificate from another CA: {received:?}"
    );
    eventually("both refused handshakes counted", || {
        handshake_failures(&broker) == 2.0
    })
    .await;
    broker.shutdown().await;
}

#[tokio::test]
async fn the_certificate_names_the_user_for_authentication_and_acl_rules() {
    let (identity, authority) = (Identity::new(), Authority::new("devices"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("passwords"),
        format!("operator:{PASSWORD_HASH}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("acl"),
        "user device-7\ntopic readwrite devices/device-7/#\n",
    )
    .unwrap();
    let mut config = mtls_config(&identity, &authority, true);
    config.settings.auth.password_file = Some(dir.path().join("passwords"));
    config.settings.auth.acl_file = Some(dir.path().join("acl"));
    let broker = support::start_with(config).await;

    // No username or password in the CONNECT, which a password file otherwise refuses
    // (anonymous clients are not allowed once it is set): the certificate is the credential.
    let device = authority.issue(Some("device-7"));
    let connector = trusting_as(&identity.cert_pem, &device);
    let (client, received) = connect_over(
        &broker,
        &connector,
        connect_packet(ProtocolVersion::V5, "d7"),
    )
    .await;
    assert!(accepted(&received), "{received:?}");
    let mut client = client.unwrap();
    let options = SubscriptionOptions::default();
    let suback = client
        .subscribe_with(
            1,
            vec![
                ("devices/device-7/cmd".into(), options),
                ("devices/device-8/cmd".into(), options),
            ],
            SubscribeProperties::default(),
        )
        .await;
    assert_eq!(
        suback.reason_codes,
        [ReasonCode::Success, ReasonCode::NotAuthorized],
        "the ACL's rules for user device-7 apply"
    );

    // A username and password in the CONNECT do not override the certificate's name.
    let mut claimed = connect_packet(ProtocolVersion::V5, "d7-claims");
    claimed.username = Some("operator".into());
    claimed.password = Some(bytes::Bytes::from_static(b"wrong"));
    let (client, received) = connect_over(&broker, &connector, claimed).await;
    assert!(
        accepted(&received),
        "the password is not checked: {received:?}"
    );
    let suback = client
        .unwrap()
        .subscribe(1, "devices/device-8/cmd", QoS::AtMostOnce)
        .await;
    assert_eq!(
        suback.reason_codes,
        [ReasonCode::NotAuthorized],
        "still device-7's rules"
    );

    // The certificate proves who the client is, not what it may do: a Will on a topic the
    // ACL does not let device-7 publish to refuses the CONNECT.
    let mut with_will = connect_packet(ProtocolVersion::V5, "d7-will");
    with_will.will = Some(Will {
        topic: "devices/device-8/status".into(),
        payload: bytes::Bytes::from_static(b"gone"),
        ..Will::default()
    });
    let (_, received) = connect_over(&broker, &connector, with_will).await;
    assert!(
        matches!(&received, Received::Packet(Packet::ConnAck(ack)) if ack.reason_code == ReasonCode::NotAuthorized),
        "{received:?}"
    );

    // A certificate without a Common Name names nobody: refused.
    let nameless = authority.issue(None);
    let (_, received) = connect_over(
        &broker,
        &trusting_as(&identity.cert_pem, &nameless),
        connect_packet(ProtocolVersion::V5, "nameless"),
    )
    .await;
    assert!(!accepted(&received), "{received:?}");
    broker.shutdown().await;
}

#[tokio::test]
async fn an_unreadable_client_ca_file_stops_start_up_naming_it() {
    let identity = Identity::new();
    let config = tls_config(TlsFiles {
        client_ca_file: Some(identity.path("absent-ca.crt")),
        ..identity.files()
    });
    let error = match listeners::start(config).await {
        Ok(_) => panic!("the broker started"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.contains("listener \"mqtts\": tls.clientCaFile ") && error.contains("absent-ca.crt"),
        "{error}"
    );
}
