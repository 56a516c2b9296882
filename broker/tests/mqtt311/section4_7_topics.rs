//! Section 4.7 topic names and filters: wildcards, $-topics, and what makes them invalid.

use ferrumq_broker::codec::*;
use ferrumq_broker::listeners::RunningBroker;

use crate::support::*;
use crate::util::*;

/// Which of `topics` a subscriber to `filter` receives.
async fn received_by(broker: &RunningBroker, filter: &str, topics: &[&str]) -> Vec<String> {
    let mut s = connect(broker, "matcher").await;
    sub(&mut s, 1, filter, QoS::AtMostOnce).await;
    // A marker published last, which the subscriber gets through a second subscription.
    sub(&mut s, 2, "zz-marker", QoS::AtMostOnce).await;
    let mut p = connect(broker, "matcher-pub").await;
    for topic in topics {
        p.send_raw(&raw_publish_qos0(topic.as_bytes(), b"x")).await;
    }
    p.publish("zz-marker", b"end", QoS::AtMostOnce, 0, false)
        .await;
    let mut got = Vec::new();
    loop {
        let publish = s.expect_publish().await;
        if &*publish.topic == "zz-marker" {
            break;
        }
        got.push(publish.topic.to_string());
    }
    s.disconnect().await;
    p.disconnect().await;
    got
}

#[tokio::test]
async fn mqtt_4_7_1_1_multi_level_wildcard_matches_parent_and_children() {
    let broker = start().await;
    let topics = [
        "sport/tennis/player1",
        "sport/tennis/player1/ranking",
        "sport/tennis/player1/score/wimbledon",
        "sport/tennis/player2",
        "sport/tennis",
    ];
    assert_eq!(
        received_by(&broker, "sport/tennis/player1/#", &topics).await,
        &topics[..3]
    );
    assert_eq!(
        received_by(&broker, "sport/#", &["sport", "sport/x", "sports"]).await,
        ["sport", "sport/x"]
    );
    assert_eq!(
        received_by(&broker, "#", &["a", "/a", "a/b/c"]).await,
        ["a", "/a", "a/b/c"]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_7_1_1_misplaced_multi_level_wildcard_closes() {
    let broker = start().await;
    for filter in [&b"sport/tennis#"[..], b"sport/#/ranking", b"#/a", b"##"] {
        let mut c = connect(&broker, "bad-hash").await;
        let mut body = vec![0, 1];
        body.extend(field(filter));
        body.push(0);
        c.send_raw(&frame(0x82, &body)).await;
        expect_bare_close(&mut c).await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_7_1_2_single_level_wildcard_matches_one_level() {
    let broker = start().await;
    assert_eq!(
        received_by(
            &broker,
            "sport/tennis/+",
            &[
                "sport/tennis/player1",
                "sport/tennis/player2",
                "sport/tennis/player1/ranking",
                "sport/tennis"
            ]
        )
        .await,
        ["sport/tennis/player1", "sport/tennis/player2"]
    );
    assert_eq!(
        received_by(&broker, "sport/+", &["sport", "sport/"]).await,
        ["sport/"]
    );
    assert_eq!(
        received_by(&broker, "+", &["/finance", "finance"]).await,
        ["finance"]
    );
    assert_eq!(
        received_by(&broker, "+/+", &["/finance", "a/b", "a"]).await,
        ["/finance", "a/b"]
    );
    assert_eq!(
        received_by(&broker, "/+", &["/finance", "finance"]).await,
        ["/finance"]
    );
    assert_eq!(
        received_by(
            &broker,
            "+/tennis/#",
            &["sport/tennis", "x/tennis/y/z", "tennis"]
        )
        .await,
        ["sport/tennis", "x/tennis/y/z"]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_7_1_2_single_level_wildcard_not_filling_its_level_closes() {
    let broker = start().await;
    for filter in [&b"sport+"[..], b"sport/+tennis", b"+a/b"] {
        let mut c = connect(&broker, "bad-plus").await;
        let mut body = vec![0, 1];
        body.extend(field(filter));
        body.push(0);
        c.send_raw(&frame(0x82, &body)).await;
        expect_bare_close(&mut c).await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_7_2_1_dollar_topics() {
    let mut config = test_config();
    config.settings.sys.interval_secs = 1;
    let broker = start_with(config).await;
    eventually("$SYS topics to be retained", || {
        broker.broker.retained.read().len() > 3
    })
    .await;
    // Wildcards at the first level do not match $-topics, neither retained nor live.
    let mut wild = connect(&broker, "wild").await;
    sub(&mut wild, 1, "#", QoS::AtMostOnce).await;
    sub(&mut wild, 2, "+/broker/#", QoS::AtMostOnce).await;
    sub(&mut wild, 3, "+/broker/version", QoS::AtMostOnce).await;
    let mut sys = connect(&broker, "sys").await;
    sub(&mut sys, 1, "$SYS/#", QoS::AtMostOnce).await;
    let got = sys.expect_publish().await;
    assert!(got.topic.starts_with("$SYS/") && got.retain);
    let mut version = connect(&broker, "version").await;
    sub(&mut version, 1, "$SYS/+/version", QoS::AtMostOnce).await;
    assert_eq!(
        &*version.expect_publish().await.topic,
        "$SYS/broker/version"
    );
    // Sleep: the next $SYS tick (1 s interval) is live traffic the wildcards must not get.
    match wild
        .recv_within(std::time::Duration::from_millis(1500))
        .await
    {
        Received::Nothing => {}
        other => panic!("a wildcard at the first level matched a $-topic: {other:?}"),
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_7_3_1_empty_topic_or_filter_closes() {
    let broker = start().await;
    let mut c = connect(&broker, "empty-topic").await;
    c.send_raw(&raw_publish_qos0(b"", b"x")).await;
    expect_bare_close(&mut c).await;
    let mut c = connect(&broker, "empty-filter").await;
    let mut body = vec![0, 1];
    body.extend(field(b""));
    body.push(0);
    c.send_raw(&frame(0x82, &body)).await;
    expect_bare_close(&mut c).await;
    let mut c = connect(&broker, "empty-unsub").await;
    let mut body = vec![0, 1];
    body.extend(field(b""));
    c.send_raw(&frame(0xA2, &body)).await;
    expect_bare_close(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_7_3_2_null_character_closes() {
    let broker = start().await;
    let mut c = connect(&broker, "nul-topic").await;
    c.send_raw(&raw_publish_qos0(b"a\0b", b"x")).await;
    expect_bare_close(&mut c).await;
    let mut c = connect(&broker, "nul-filter").await;
    let mut body = vec![0, 1];
    body.extend(field(b"a/\0"));
    body.push(0);
    c.send_raw(&frame(0x82, &body)).await;
    expect_bare_close(&mut c).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_7_3_4_no_normalisation() {
    let broker = start().await;
    let topics = [
        "sport/tennis",
        "Sport/Tennis",
        "sport/tennis ",
        " sport/tennis",
        "/sport/tennis",
        "sport/tennis/",
        "sport//tennis",
    ];
    assert_eq!(
        received_by(&broker, "sport/tennis", &topics).await,
        ["sport/tennis"]
    );
    assert_eq!(
        received_by(&broker, "Sport/Tennis", &topics).await,
        ["Sport/Tennis"]
    );
    assert_eq!(
        received_by(&broker, "sport/+/tennis", &topics).await,
        ["sport//tennis"]
    );
    assert_eq!(
        received_by(&broker, "sport/tennis/+", &topics).await,
        ["sport/tennis/"]
    );
    // Non-ASCII is compared byte for byte as well.
    assert_eq!(
        received_by(
            &broker,
            "caf\u{e9}",
            &["caf\u{e9}", "cafe\u{301}", "CAF\u{c9}"]
        )
        .await,
        ["caf\u{e9}"]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_1_5_3_1_invalid_utf8_topic_closes() {
    let broker = start().await;
    for topic in [&[b'a', 0xFF][..], &[0xC3, 0x28], &[0xED, 0xA0, 0x80]] {
        let mut c = connect(&broker, "utf8").await;
        c.send_raw(&raw_publish_qos0(topic, b"x")).await;
        expect_bare_close(&mut c).await;
    }
    broker.shutdown().await;
}
