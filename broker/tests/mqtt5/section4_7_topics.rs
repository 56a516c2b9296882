//! Section 4.7: topic names, topic filters and matching.

use std::time::Duration;

use super::common::*;

/// Subscribes one client to each filter with Subscription Identifier = index + 1, publishes each
/// topic, and returns the identifiers each delivery carried (empty: not delivered).
async fn matching(filters: &[&str], topics: &[&str]) -> Vec<Vec<u32>> {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    for (i, f) in filters.iter().enumerate() {
        let id = i as u32 + 1;
        subscribe_opts(&mut sub, id as u16, f, opts(QoS::AtMostOnce), Some(id)).await;
    }
    let mut p = client(&broker, "p").await;
    let mut out = Vec::new();
    for t in topics {
        pub0(&mut p, t, b"m").await;
        // A marker on a topic only filter 0 matches tells "nothing delivered" apart quickly.
        pub0(&mut p, "marker", b"end").await;
        let mut ids = Vec::new();
        loop {
            let m = sub.expect_publish().await;
            if &*m.topic == "marker" {
                break;
            }
            assert_eq!(&*m.topic, *t);
            ids = sub_ids(&m);
        }
        out.push(ids);
    }
    broker.shutdown().await;
    out
}

#[tokio::test]
async fn mqtt_4_7_1_wildcards_match_per_section_4_7() {
    let filters = [
        "marker",         // 1
        "sport/#",        // 2
        "sport/+",        // 3
        "sport/+/player", // 4
        "+",              // 5
        "+/+",            // 6
        "/+",             // 7
        "#",              // 8
    ];
    let topics = [
        "sport",
        "sport/tennis",
        "sport/tennis/player",
        "sport/",
        "/finance",
        "x",
    ];
    let got = matching(&filters, &topics).await;
    assert_eq!(
        got,
        vec![
            vec![2, 5, 8],    // "#" includes the parent level
            vec![2, 3, 6, 8], // "+" is exactly one level
            vec![2, 4, 8],    //
            vec![2, 3, 6, 8], // an empty level is a level
            vec![6, 7, 8],    // leading "/" makes an empty first level
            vec![5, 8],       //
        ]
    );
}

#[tokio::test]
async fn mqtt_4_7_3_4_no_normalisation_before_matching() {
    let filters = ["marker", "a/b", "A/b", "a/b/", "a//b"];
    let topics = ["a/b", "A/b", "a/b/", "a//b", "a/B"];
    let got = matching(&filters, &topics).await;
    assert_eq!(
        got,
        vec![vec![2], vec![3], vec![4], vec![5], Vec::<u32>::new()]
    );
}

#[tokio::test]
async fn mqtt_4_7_2_1_dollar_topics_not_matched_by_leading_wildcards() {
    let broker = start_with(config(|c| c.settings.sys.interval_secs = 1)).await;
    let mut sys = client(&broker, "sys").await;
    sys.subscribe(1, "$SYS/#", QoS::AtMostOnce).await;
    // The $SYS topics exist: retained values arrive for an explicit "$SYS/" filter.
    assert!(sys.expect_publish().await.topic.starts_with("$SYS/"));
    let mut wild = client(&broker, "wild").await;
    wild.subscribe(1, "#", QoS::AtMostOnce).await;
    wild.subscribe(2, "+/broker/#", QoS::AtMostOnce).await;
    wild.subscribe(3, "+/broker/uptime", QoS::AtMostOnce).await;
    // Neither retained values nor the next periodic update reach leading wildcards.
    assert_eq!(
        wild.recv_within(Duration::from_millis(1200)).await,
        Received::Nothing
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_7_1_1_misplaced_multi_level_wildcard_is_refused() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    // SUBSCRIBE id 1, no properties, "a/#/b" QoS 0.
    c.send_raw(&[0x82, 11, 0, 1, 0, 0, 5, b'a', b'/', b'#', b'/', b'b', 0])
        .await;
    match c.recv().await {
        Packet::SubAck(ack) => assert_eq!(ack.reason_codes, [ReasonCode::TopicFilterInvalid]),
        Packet::Disconnect(d) => {
            assert!(d.reason_code.is_error());
            expect_closed(&mut c).await;
        }
        other => panic!("unexpected {other:?}"),
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_7_1_2_partial_level_single_wildcard_is_refused() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    // SUBSCRIBE id 1, no properties, "a+" QoS 0.
    c.send_raw(&[0x82, 8, 0, 1, 0, 0, 2, b'a', b'+', 0]).await;
    match c.recv().await {
        Packet::SubAck(ack) => assert_eq!(ack.reason_codes, [ReasonCode::TopicFilterInvalid]),
        Packet::Disconnect(d) => {
            assert!(d.reason_code.is_error());
            expect_closed(&mut c).await;
        }
        other => panic!("unexpected {other:?}"),
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_7_3_1_empty_topic_name_without_alias_is_protocol_error() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    // PUBLISH QoS 0, topic "", no properties.
    c.send_raw(&[0x30, 3, 0, 0, 0]).await;
    c.expect_disconnect(Some(ReasonCode::ProtocolError)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_7_3_2_null_character_in_topic_is_malformed() {
    let broker = start().await;
    let mut c = client(&broker, "c").await;
    // PUBLISH QoS 0, topic "a\0b", no properties.
    c.send_raw(&[0x30, 6, 0, 3, b'a', 0, b'b', 0]).await;
    c.expect_disconnect(Some(ReasonCode::MalformedPacket)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_4_7_3_4_topic_over_configured_length_refused() {
    let broker = start_with(config(|c| c.settings.limits.max_topic_length = 8)).await;
    let mut c = client(&broker, "c").await;
    let code = pub1(&mut c, "much/too/long", b"x", 1).await;
    assert_eq!(code, ReasonCode::TopicNameInvalid);
    broker.shutdown().await;
}
