//! `mqtts` listeners: MQTT over TLS, served by the same connection loop as plain TCP.
//!
//! Each test makes a fresh self-signed certificate ([`Identity`]), and starts a broker whose
//! only listener is `mqtts` on 127.0.0.1:0.

mod support;

use ferrumq_broker::codec::*;
use ferrumq_broker::config::TlsFiles;
use ferrumq_broker::listeners::{self, RunningBroker};
use support::tls::{tls_config, trusting, Identity};
use support::*;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

async fn tls_stream(
    broker: &RunningBroker,
    connector: &TlsConnector,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(broker.mqtt_addr()).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .expect("the handshake ends in time")
}

async fn tls_client(
    broker: &RunningBroker,
    identity: &Identity,
    version: ProtocolVersion,
    client_id: &str,
) -> RawClient {
    let stream = tls_stream(broker, &trusting(&identity.cert_pem))
        .await
        .expect("a client that trusts the certificate completes the handshake");
    let mut client = RawClient::over(Box::new(stream), version);
    client
        .send(&Packet::Connect(Box::new(connect_packet(
            version, client_id,
        ))))
        .await;
    assert_eq!(
        client.expect_connack().await.reason_code,
        ReasonCode::Success
    );
    client
}

fn handshake_failures(broker: &RunningBroker) -> f64 {
    metric(
        broker,
        "ferrumq_handshake_failures_total{listener=\"mqtts\"}",
    )
}

#[tokio::test]
async fn publish_and_subscribe_over_tls_at_each_version() {
    let identity = Identity::new();
    let broker = support::start_with(tls_config(identity.files())).await;
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let mut sub = tls_client(&broker, &identity, version, "tls-sub").await;
        sub.subscribe(1, "tls/#", QoS::AtLeastOnce).await;
        let mut publisher = tls_client(&broker, &identity, version, "tls-pub").await;
        // Larger than a TLS record (16 KiB), so one PUBLISH arrives in several.
        publisher
            .publish_large_to(&mut sub, "tls/big", 100_000)
            .await;
        publisher.disconnect().await;
        sub.disconnect().await;
    }
    assert_eq!(handshake_failures(&broker), 0.0);
    broker.shutdown().await;
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_fails_and_is_counted() {
    let identity = Identity::new();
    let broker = support::start_with(tls_config(identity.files())).await;
    let stranger = Identity::new();
    let refused = tls_stream(&broker, &trusting(&stranger.cert_pem)).await;
    let error = refused.expect_err("a certificate the client does not trust");
    assert!(
        error.to_string().contains("certificate"),
        "the client learns why: {error}"
    );
    counted_once_and_still_serving(broker, &identity).await;
}

#[tokio::test]
async fn plain_mqtt_sent_to_a_tls_listener_is_closed_and_counted() {
    let identity = Identity::new();
    let broker = support::start_with(tls_config(identity.files())).await;
    let mut plain = RawClient::open(&broker, ProtocolVersion::V5).await;
    plain
        .send(&Packet::Connect(Box::new(connect_packet(
            ProtocolVersion::V5,
            "plain",
        ))))
        .await;
    // Whatever the TLS layer answers (an alert record at most), no MQTT packet comes back and
    // the connection ends.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        WAIT,
        tokio::io::AsyncReadExt::read_to_end(&mut plain.stream, &mut answer),
    )
    .await;
    assert!(read.is_ok(), "the broker closed the connection");
    assert!(
        answer.first().is_none_or(|&byte| byte == 0x15),
        "nothing but a TLS alert: {answer:02x?}"
    );
    counted_once_and_still_serving(broker, &identity).await;
}

/// After one failed handshake: it is counted, and the listener goes on serving clients that
/// trust it.
async fn counted_once_and_still_serving(broker: RunningBroker, identity: &Identity) {
    eventually("one handshake failure counted", || {
        handshake_failures(&broker) == 1.0
    })
    .await;
    let client = tls_client(&broker, identity, ProtocolVersion::V5, "after").await;
    client.disconnect().await;
    broker.shutdown().await;
}

/// Start-up fails, naming the listener and the file at fault.
async fn start_error(files: TlsFiles) -> String {
    match listeners::start(tls_config(files)).await {
        Ok(_) => panic!("the broker started"),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn bad_tls_files_stop_start_up_naming_the_listener_and_the_file() {
    let identity = Identity::new();
    let other = Identity::new();
    let missing_key = TlsFiles {
        key_file: identity.path("absent.key"),
        ..identity.files()
    };
    let key_of_another = TlsFiles {
        key_file: other.path("tls.key"),
        ..identity.files()
    };
    let garbage = Identity::new();
    std::fs::write(garbage.path("tls.crt"), "not a certificate\n").unwrap();
    let cases = [
        (
            missing_key,
            vec![
                "listener \"mqtts\": tls.keyFile ",
                "absent.key",
                "No such file",
            ],
        ),
        (garbage.files(), vec!["tls.certFile ", "no PEM CERTIFICATE"]),
        (
            key_of_another,
            vec!["tls.certFile ", "keyFile ", "KeyMismatch"],
        ),
    ];
    for (files, expected) in cases {
        let message = start_error(files).await;
        for part in expected {
            assert!(message.contains(part), "{part:?} in {message:?}");
        }
    }
}

fn tls_reloads(broker: &RunningBroker, result: &str) -> f64 {
    let series = format!("ferrumq_tls_reloads_total{{listener=\"mqtts\",result=\"{result}\"}}");
    metric(broker, &series)
}

/// Overwrites `to`'s `name` file with `from`'s, as a renewed certificate lands in place.
fn replace_file(from: &Identity, to: &Identity, name: &str) {
    std::fs::copy(from.path(name), to.path(name)).unwrap();
}

#[tokio::test]
async fn a_renewed_certificate_is_served_after_a_reload_and_broken_files_change_nothing() {
    let first = Identity::new();
    let mut files = first.files();
    files.reload_interval_secs = 0;
    let broker = support::start_with(tls_config(files)).await;
    tls_client(&broker, &first, ProtocolVersion::V5, "before")
        .await
        .disconnect()
        .await;

    let renewed = Identity::new();
    replace_file(&renewed, &first, "tls.crt");
    replace_file(&renewed, &first, "tls.key");
    let reloader = broker.reloader();
    reloader.reload();
    assert_eq!(tls_reloads(&broker, "ok"), 1.0);
    tls_client(&broker, &renewed, ProtocolVersion::V5, "after")
        .await
        .disconnect()
        .await;
    assert!(
        tls_stream(&broker, &trusting(&first.cert_pem))
            .await
            .is_err(),
        "the old certificate is no longer served"
    );

    // A key that does not belong to the certificate: not loaded, the renewed pair stays.
    replace_file(&Identity::new(), &first, "tls.key");
    reloader.reload();
    assert_eq!(tls_reloads(&broker, "error"), 1.0);
    tls_client(&broker, &renewed, ProtocolVersion::V5, "still")
        .await
        .disconnect()
        .await;
    reloader.reload();
    assert_eq!(
        tls_reloads(&broker, "error"),
        2.0,
        "tried again while still broken"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn certificates_are_checked_every_reload_interval() {
    let first = Identity::new();
    let mut files = first.files();
    files.reload_interval_secs = 1;
    let broker = support::start_with(tls_config(files)).await;
    let renewed = Identity::new();
    replace_file(&renewed, &first, "tls.crt");
    replace_file(&renewed, &first, "tls.key");
    eventually("a reload by the timer", || {
        tls_reloads(&broker, "ok") >= 1.0
    })
    .await;
    tls_client(&broker, &renewed, ProtocolVersion::V5, "renewed")
        .await
        .disconnect()
        .await;
    broker.shutdown().await;
}
