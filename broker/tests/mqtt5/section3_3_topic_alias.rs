//! Section 3.3.2.3.4: Topic Alias, in both directions.

use std::collections::HashMap;

use super::common::*;

fn aliased(topic: &str, alias: u16, payload: &'static [u8]) -> Packet {
    let mut m = publish(topic, payload, QoS::AtMostOnce, 0);
    m.properties.topic_alias = Some(alias);
    Packet::Publish(m)
}

/// Resolves the topic of PUBLISH packets the way a client must, checking every alias rule.
struct Aliases {
    maximum: u16,
    map: HashMap<u16, ByteString>,
}

impl Aliases {
    fn resolve(&mut self, p: &Publish) -> ByteString {
        match p.properties.topic_alias {
            None => {
                assert!(!p.topic.is_empty());
                p.topic.clone()
            }
            Some(alias) => {
                assert!(
                    alias >= 1 && alias <= self.maximum,
                    "alias {alias} outside 1..={} [MQTT-3.3.2-11]",
                    self.maximum
                );
                if p.topic.is_empty() {
                    self.map
                        .get(&alias)
                        .unwrap_or_else(|| panic!("alias {alias} used before it was set"))
                        .clone()
                } else {
                    self.map.insert(alias, p.topic.clone());
                    p.topic.clone()
                }
            }
        }
    }
}

#[tokio::test]
async fn mqtt_3_3_2_8_topic_alias_0_is_0x94() {
    let broker = start().await;
    let mut p = client(&broker, "p").await;
    p.send(&aliased("t", 0, b"x")).await;
    p.expect_disconnect(Some(ReasonCode::TopicAliasInvalid))
        .await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_2_9_topic_alias_above_maximum_is_0x94() {
    let broker = start_with(config(|c| c.settings.session.topic_alias_maximum = 4)).await;
    let (mut p, ack) = client_with(&broker, "p", |_| {}).await;
    assert_eq!(ack.properties.topic_alias_maximum, Some(4));
    p.send(&aliased("t", 4, b"ok")).await;
    sync(&mut p).await;
    p.send(&aliased("t", 5, b"x")).await;
    p.expect_disconnect(Some(ReasonCode::TopicAliasInvalid))
        .await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_2_2_17_any_topic_alias_is_0x94_when_maximum_is_0() {
    let broker = start_with(config(|c| c.settings.session.topic_alias_maximum = 0)).await;
    let mut p = client(&broker, "p").await;
    p.send(&aliased("t", 1, b"x")).await;
    p.expect_disconnect(Some(ReasonCode::TopicAliasInvalid))
        .await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_2_12_unknown_alias_with_empty_topic_is_protocol_error() {
    let broker = start().await;
    let mut p = client(&broker, "p").await;
    p.send(&aliased("", 3, b"x")).await;
    p.expect_disconnect(Some(ReasonCode::ProtocolError)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_2_12_alias_set_then_used_with_empty_topic() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "a/#", QoS::AtMostOnce).await;
    let mut p = client(&broker, "p").await;
    p.send(&aliased("a/one", 1, b"1")).await;
    p.send(&aliased("", 1, b"2")).await;
    // Re-mapping an alias to another topic.
    p.send(&aliased("a/two", 1, b"3")).await;
    p.send(&aliased("", 1, b"4")).await;
    let mut got = Vec::new();
    for _ in 0..4 {
        let m = sub.expect_publish().await;
        assert_eq!(
            m.properties.topic_alias, None,
            "subscriber allows no aliases"
        );
        got.push((m.topic.to_string(), m.payload));
    }
    assert_eq!(
        got,
        [
            ("a/one".to_string(), Bytes::from_static(b"1")),
            ("a/one".to_string(), Bytes::from_static(b"2")),
            ("a/two".to_string(), Bytes::from_static(b"3")),
            ("a/two".to_string(), Bytes::from_static(b"4")),
        ]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_2_7_aliases_do_not_carry_over_to_a_new_connection() {
    let broker = start().await;
    let (mut p, _) = session_client(&broker, "p", false, 60).await;
    p.send(&aliased("a/one", 1, b"1")).await;
    sync(&mut p).await;
    p.disconnect().await;
    let (mut p, present) = session_client(&broker, "p", false, 60).await;
    assert!(present);
    p.send(&aliased("", 1, b"2")).await;
    p.expect_disconnect(Some(ReasonCode::ProtocolError)).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_27_no_outbound_aliases_unless_client_allows() {
    let broker = start().await;
    let mut sub = client(&broker, "sub").await;
    sub.subscribe(1, "t/#", QoS::AtMostOnce).await;
    let (mut sub0, _) = client_with(&broker, "sub0", |c| {
        c.properties.topic_alias_maximum = Some(0)
    })
    .await;
    sub0.subscribe(1, "t/#", QoS::AtMostOnce).await;
    let mut p = client(&broker, "p").await;
    for _ in 0..3 {
        pub0(&mut p, "t/a", b"x").await;
    }
    for s in [&mut sub, &mut sub0] {
        for _ in 0..3 {
            let m = s.expect_publish().await;
            assert_eq!(m.properties.topic_alias, None);
            assert_eq!(&*m.topic, "t/a");
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_3_2_11_outbound_aliases_within_client_maximum() {
    let broker = start().await;
    let (mut sub, _) = client_with(&broker, "sub", |c| {
        c.properties.topic_alias_maximum = Some(2)
    })
    .await;
    sub.subscribe(1, "t/#", QoS::AtMostOnce).await;
    let mut p = client(&broker, "p").await;
    let topics = ["t/a", "t/b", "t/c", "t/a", "t/b", "t/c", "t/a"];
    for t in topics {
        pub0(&mut p, t, b"x").await;
    }
    let mut aliases = Aliases {
        maximum: 2,
        map: HashMap::new(),
    };
    for t in topics {
        let m = sub.expect_publish().await;
        assert_eq!(&*aliases.resolve(&m), t);
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_2_25_dropped_oversized_publish_does_not_consume_an_alias() {
    let broker = start().await;
    let (mut sub, _) = client_with(&broker, "sub", |c| {
        c.properties.topic_alias_maximum = Some(4);
        c.properties.maximum_packet_size = Some(64);
    })
    .await;
    sub.subscribe(1, "t/#", QoS::AtMostOnce).await;
    let mut p = client(&broker, "p").await;
    pub0(&mut p, "t/a", &[b'x'; 100]).await; // too large for the subscriber: dropped
    pub0(&mut p, "t/a", b"small").await;
    pub0(&mut p, "t/a", b"again").await;
    let mut aliases = Aliases {
        maximum: 4,
        map: HashMap::new(),
    };
    for payload in [&b"small"[..], b"again"] {
        let m = sub.expect_publish().await;
        assert_eq!(&m.payload[..], payload);
        assert_eq!(&*aliases.resolve(&m), "t/a");
    }
    broker.shutdown().await;
}
