//! Saving a broker's state and loading it into a new broker: everything a session and a
//! retained message carry comes back, what expired meanwhile does not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::codec::{PublishProperties, QoS, SubscriptionOptions, UserProperties};
use crate::config::BrokerConfig;
use crate::router::Subscription;
use crate::server::AttachParams;
use crate::session::{
    Inflight, InflightState, LazyNow, Message, Outgoing, SessionLink, SubscriptionIds,
};

fn broker() -> Arc<Broker> {
    Broker::new(BrokerConfig::default()).unwrap()
}

fn message(
    topic: &str,
    payload: &'static [u8],
    qos: QoS,
    expiry: Option<u32>,
) -> crate::pool::MessageRef {
    let properties = PublishProperties {
        message_expiry_interval: expiry,
        content_type: Some("text/plain".into()),
        user_properties: UserProperties::from_pairs([("k", "v")]).unwrap(),
        ..PublishProperties::default()
    };
    Message::pooled(
        topic.into(),
        qos,
        false,
        Bytes::from_static(payload),
        properties,
        Some("pub".into()),
        Instant::now(),
    )
    .unwrap()
}

fn outgoing(message: crate::pool::MessageRef, qos: QoS) -> Outgoing {
    Outgoing {
        message,
        qos,
        retain: false,
        subscription_ids: SubscriptionIds::from_slice(&[3, 4]),
        shared_group: None,
    }
}

/// Attaches `client_id` with a Session Expiry Interval of `expiry` and subscribes it to
/// `filter` (in the tree and in the session), as CONNECT and SUBSCRIBE do.
fn session_with(
    broker: &Arc<Broker>,
    client_id: &str,
    expiry: u32,
    filter: &str,
) -> Arc<crate::session::Session> {
    let attached = broker.attach(
        &client_id.into(),
        AttachParams {
            clean_start: true,
            expiry_interval: expiry,
            version: crate::codec::ProtocolVersion::V5,
            receive_maximum: 10,
            maximum_packet_size: u32::MAX,
            acl: None,
        },
    );
    let subscription = Subscription {
        options: SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            no_local: true,
            ..Default::default()
        },
        identifier: Some(9),
        session: SessionLink::default(),
    };
    broker.router.write().subscribe(
        filter,
        &client_id.into(),
        Subscription {
            session: SessionLink::to(&attached.session),
            ..subscription.clone()
        },
    );
    attached
        .session
        .state
        .lock()
        .subscriptions
        .insert(filter.to_owned(), subscription);
    attached.session
}

/// Saves `from` into a fresh store in `dir` and loads it into a new broker.
fn round_trip(from: &Arc<Broker>, dir: &tempfile::TempDir) -> (Arc<Broker>, Saved, Restored) {
    let saved = Store::open(dir.path()).unwrap().save(from).unwrap();
    let to = broker();
    let restored = Store::open(dir.path()).unwrap().restore(&to).unwrap();
    (to, saved, restored)
}

#[tokio::test]
async fn a_session_comes_back_with_its_subscriptions_queue_in_flight_window_and_qos2_ids() {
    let from = broker();
    let session = session_with(&from, "dev-1", 600, "site/+/temp");
    {
        let mut st = session.state.lock();
        st.attached = None;
        st.disconnected_at = Some(Instant::now());
        st.queue.push_back(outgoing(
            message("site/1/temp", b"21.5", QoS::AtLeastOnce, None),
            QoS::AtLeastOnce,
        ));
        st.inflight.push_back(Inflight {
            packet_id: 41,
            state: InflightState::AwaitingPubRec,
            item: outgoing(
                message("site/2/temp", b"19", QoS::ExactlyOnce, None),
                QoS::ExactlyOnce,
            ),
            sent: true,
        });
        st.inflight.push_back(Inflight {
            packet_id: 42,
            state: InflightState::AwaitingPubComp,
            item: outgoing(
                message("site/3/temp", b"18", QoS::ExactlyOnce, None),
                QoS::ExactlyOnce,
            ),
            sent: true,
        });
        st.inbound_qos2.insert(77);
        st.set_next_packet_id(43);
    }
    let dir = tempfile::tempdir().unwrap();
    let (to, saved, restored) = round_trip(&from, &dir);
    assert_eq!((saved.sessions, saved.skipped), (1, 0));
    assert_eq!((restored.sessions, restored.expired), (1, 0));

    let back = to.sessions.get("dev-1").expect("restored");
    {
        let st = back.state.lock();
        assert!(st.attached.is_none() && st.disconnected_at.is_some());
        assert_eq!(
            (st.generation, st.expiry_interval, st.next_packet_id()),
            (1, 600, 43)
        );
        let sub = &st.subscriptions["site/+/temp"];
        assert_eq!(
            (sub.options.qos, sub.options.no_local, sub.identifier),
            (QoS::ExactlyOnce, true, Some(9))
        );
        let queued = &st.queue[0];
        assert_eq!(
            (
                &queued.message.topic[..],
                &queued.message.payload[..],
                queued.qos
            ),
            ("site/1/temp", &b"21.5"[..], QoS::AtLeastOnce)
        );
        assert_eq!(queued.subscription_ids.as_slice(), [3, 4]);
        assert_eq!(
            queued.message.properties.content_type.as_deref(),
            Some("text/plain")
        );
        assert_eq!(queued.message.properties.user_properties.iter().count(), 1);
        assert_eq!(
            queued.message.publisher.as_deref(),
            Some("pub"),
            "No Local still knows the publisher"
        );
        let window: Vec<_> = st
            .inflight
            .iter()
            .map(|f| (f.packet_id, f.state, f.sent))
            .collect();
        assert_eq!(
            window,
            [
                (41, InflightState::AwaitingPubRec, false),
                (42, InflightState::AwaitingPubComp, false)
            ],
            "resent on the next connection"
        );
        assert!(
            st.inbound_qos2.contains(&77),
            "a PUBREL for 77 is still answered without a second delivery"
        );
    }

    // The tree links the restored subscription to the restored session: routing reaches it.
    let routed = to.publish(message("site/9/temp", b"live", QoS::AtLeastOnce, None));
    assert_eq!(routed.delivered, 1);
    assert_eq!(back.state.lock().queue.len(), 2);
}

#[tokio::test]
async fn retained_messages_come_back_except_broker_topics_and_expired_ones() {
    let from = broker();
    from.retain(&message("cfg/a", b"keep", QoS::AtLeastOnce, Some(3600)))
        .unwrap();
    from.retain(&message("$SYS/broker/uptime", b"5", QoS::AtMostOnce, None))
        .unwrap();
    // Received two seconds ago with one second to live: expired by the time it is loaded.
    let old = Message::pooled(
        "cfg/old".into(),
        QoS::AtMostOnce,
        true,
        Bytes::from_static(b"stale"),
        PublishProperties {
            message_expiry_interval: Some(1),
            ..PublishProperties::default()
        },
        None,
        Instant::now() - Duration::from_secs(2),
    )
    .unwrap();
    from.retained.write().insert("cfg/old", old);

    let dir = tempfile::tempdir().unwrap();
    let (to, saved, restored) = round_trip(&from, &dir);
    assert_eq!(
        saved.retained, 2,
        "$SYS topics are the broker's own, not saved"
    );
    assert_eq!((restored.retained, restored.expired), (1, 1));
    let mut found = Vec::new();
    to.retained.read().matches("#", &mut found);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (&found[0].topic[..], &found[0].payload[..]),
        ("cfg/a", &b"keep"[..])
    );
    let left = found[0].remaining_expiry(&mut LazyNow::new()).flatten();
    assert!(
        left.is_some_and(|s| s > 3500 && s <= 3600),
        "expiry counts on: {left:?}"
    );
}

#[tokio::test]
async fn sessions_that_end_with_their_connection_or_expired_while_down_are_not_restored() {
    let from = broker();
    session_with(&from, "transient", 0, "a");
    let stale = session_with(&from, "stale", 5, "b");
    {
        let mut st = stale.state.lock();
        st.attached = None;
        st.disconnected_at = Some(Instant::now() - Duration::from_secs(10));
    }
    let live = session_with(&from, "live", 5, "c");
    {
        // Still connected: saved as if disconnected at the save.
        let st = live.state.lock();
        assert!(st.attached.is_some());
    }
    let dir = tempfile::tempdir().unwrap();
    let (to, saved, restored) = round_trip(&from, &dir);
    assert_eq!(
        saved.sessions, 2,
        "Session Expiry Interval 0 ends with the connection"
    );
    assert_eq!((restored.sessions, restored.expired), (1, 1));
    assert!(to.sessions.get("stale").is_none());
    assert!(to.sessions.get("live").is_some());
    let mut matches = Vec::new();
    to.router.read().matches("b", None, &|_| true, &mut matches);
    assert!(
        matches.is_empty(),
        "an expired session's subscriptions are not restored"
    );
}

#[tokio::test]
async fn a_save_replaces_the_previous_snapshot_whole() {
    let from = broker();
    from.retain(&message("x/1", b"one", QoS::AtMostOnce, None))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.save(&from).unwrap();
    from.retain(&message("x/1", b"", QoS::AtMostOnce, None))
        .unwrap();
    from.retain(&message("x/2", b"two", QoS::AtMostOnce, None))
        .unwrap();
    store.save(&from).unwrap();
    drop(store);
    let to = broker();
    Store::open(dir.path()).unwrap().restore(&to).unwrap();
    let mut found = Vec::new();
    to.retained.read().matches("x/#", &mut found);
    let topics: Vec<&str> = found.iter().map(|m| &m.topic[..]).collect();
    assert_eq!(
        topics,
        ["x/2"],
        "a message deleted before the second save stays deleted"
    );
}

#[test]
fn a_file_of_another_format_is_refused_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let txn = store.db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("format", FORMAT + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    match Store::open(dir.path()) {
        Err(StoreError::Format { found, path }) => {
            assert_eq!(found, FORMAT + 1);
            assert_eq!(path, dir.path().join(FILE_NAME));
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a file of format {} was opened", FORMAT + 1),
    }
}

#[tokio::test]
async fn an_unreadable_record_names_itself_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let txn = store.db.begin_write().unwrap();
        txn.open_table(SESSIONS)
            .unwrap()
            .insert("broken-client", &[0xff_u8, 0xff, 0xff][..])
            .unwrap();
        txn.commit().unwrap();
    }
    let error = Store::open(dir.path())
        .unwrap()
        .restore(&broker())
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("broken-client") && text.contains(FILE_NAME),
        "{text}"
    );
}
