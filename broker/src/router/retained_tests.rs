//! Tests of [`RetainedStore`].

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::select;

use super::*;
use crate::codec::topic::filter_matches;

/// Test values weigh one byte each, whatever they hold.
impl Weigh for i32 {
    fn weight(&self) -> usize {
        1
    }
}

impl Weigh for (String, usize) {
    fn weight(&self) -> usize {
        self.0.len()
    }
}

fn store(topics: &[&str]) -> RetainedStore<String> {
    let mut s = RetainedStore::new();
    for t in topics {
        s.insert(t, (*t).to_owned());
    }
    s
}

fn lookup(s: &RetainedStore<String>, filter: &str) -> Vec<String> {
    let mut out = Vec::new();
    s.matches(filter, &mut out);
    out.sort();
    out
}

const TOPICS: [&str; 9] = [
    "sport",
    "sport/tennis",
    "sport/tennis/player1",
    "sport/tennis/player1/ranking",
    "sport/golf",
    "sport/",
    "/finance",
    "$SYS/uptime",
    "a/$x",
];

#[test]
fn mqtt_3_3_1_5_insert_replaces_the_retained_message() {
    let mut s = RetainedStore::new();
    assert_eq!(s.insert("a/b", 1), None);
    assert_eq!(s.insert("a/b", 2), Some(1));
    assert_eq!(s.len(), 1);
    let mut out = Vec::new();
    s.matches("a/b", &mut out);
    assert_eq!(out, [2]);
}

#[test]
fn mqtt_3_3_1_6_remove_deletes_and_prunes_nodes() {
    let mut s = store(&["a/b/c", "a/b", "x"]);
    assert_eq!(s.node_count(), 5);
    assert_eq!(s.remove("a/b/c").as_deref(), Some("a/b/c"));
    assert_eq!(s.node_count(), 4, "a/b still holds a message");
    assert_eq!(s.remove("a/b/c"), None);
    assert_eq!(s.remove("a"), None, "a node without a message");
    assert_eq!(s.remove("a/b").as_deref(), Some("a/b"));
    assert_eq!(s.node_count(), 2);
    assert_eq!(s.remove("x").as_deref(), Some("x"));
    assert!(s.is_empty());
    assert_eq!(s.node_count(), 1);
}

#[test]
fn exact_filters_find_one_topic() {
    let s = store(&TOPICS);
    assert_eq!(lookup(&s, "sport/tennis"), ["sport/tennis"]);
    assert_eq!(lookup(&s, "sport/"), ["sport/"]);
    assert_eq!(lookup(&s, "sport/tennis/player2"), Vec::<String>::new());
    assert_eq!(lookup(&s, "Sport"), Vec::<String>::new());
}

#[test]
fn mqtt_4_7_1_1_hash_finds_parent_and_descendants() {
    let s = store(&TOPICS);
    assert_eq!(
        lookup(&s, "sport/tennis/#"),
        [
            "sport/tennis",
            "sport/tennis/player1",
            "sport/tennis/player1/ranking"
        ]
    );
    assert_eq!(lookup(&s, "sport/#").len(), 6);
    assert_eq!(lookup(&s, "#").len(), 8, "everything but $SYS/uptime");
    assert_eq!(lookup(&s, "a/#"), ["a/$x"]);
}

#[test]
fn mqtt_4_7_1_2_plus_finds_one_level() {
    let s = store(&TOPICS);
    assert_eq!(
        lookup(&s, "sport/+"),
        ["sport/", "sport/golf", "sport/tennis"]
    );
    assert_eq!(
        lookup(&s, "+/+"),
        ["/finance", "a/$x", "sport/", "sport/golf", "sport/tennis"]
    );
    assert_eq!(lookup(&s, "+"), ["sport"]);
    assert_eq!(
        lookup(&s, "+/tennis/+/#"),
        ["sport/tennis/player1", "sport/tennis/player1/ranking"]
    );
}

#[test]
fn mqtt_4_7_2_1_dollar_topics_not_matched_by_leading_wildcard() {
    let s = store(&TOPICS);
    assert!(!lookup(&s, "#").contains(&"$SYS/uptime".to_owned()));
    assert!(!lookup(&s, "+/uptime").contains(&"$SYS/uptime".to_owned()));
    assert_eq!(lookup(&s, "$SYS/#"), ["$SYS/uptime"]);
    assert_eq!(lookup(&s, "$SYS/+"), ["$SYS/uptime"]);
}

#[test]
fn retain_where_purges_and_prunes() {
    let mut s = store(&TOPICS);
    let before = s.node_count();
    s.retain_where(|v| !v.starts_with("sport"));
    assert_eq!(s.len(), 3);
    assert_eq!(lookup(&s, "#"), ["/finance", "a/$x"]);
    assert_eq!(s.node_count(), before - 6, "the whole sport subtree went");
    s.retain_where(|_| false);
    assert!(s.is_empty());
    assert_eq!(s.node_count(), 1);
}

#[test]
fn deep_topics_do_not_recurse() {
    let mut s = RetainedStore::new();
    let deep = vec!["a"; 20_000].join("/");
    s.insert(&deep, 1);
    let mut out = Vec::new();
    s.matches("#", &mut out);
    s.matches(&vec!["+"; 20_000].join("/"), &mut out);
    assert_eq!(out, [1, 1]);
    s.retain_where(|_| true);
    assert_eq!(s.remove(&deep), Some(1));
    assert_eq!(s.node_count(), 1);
}

fn topic_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(select(vec!["a", "b", "", "$s"]), 1..5).prop_map(|l| {
        // A topic name has at least one character [MQTT-4.7.3-1].
        let topic = l.join("/");
        if topic.is_empty() {
            "/".to_owned()
        } else {
            topic
        }
    })
}

fn filter_strategy() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(select(vec!["a", "b", "", "+", "$s"]), 0..4),
        any::<bool>(),
    )
        .prop_map(|(mut levels, hash)| {
            if hash || levels.is_empty() || levels == [""] {
                levels.push("#");
            }
            levels.join("/")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn matches_agrees_with_reference_matcher(
        inserts in prop::collection::vec(topic_strategy(), 0..30),
        removes in prop::collection::vec(topic_strategy(), 0..10),
        filters in prop::collection::vec(filter_strategy(), 1..8),
        purge in any::<bool>(),
    ) {
        let mut s = RetainedStore::new();
        let mut model = BTreeMap::new();
        for (i, t) in inserts.iter().enumerate() {
            prop_assert_eq!(s.insert(t, (t.clone(), i)), model.insert(t.clone(), (t.clone(), i)));
        }
        for t in &removes {
            prop_assert_eq!(s.remove(t), model.remove(t));
        }
        if purge {
            s.retain_where(|(_, i)| i % 2 == 0);
            model.retain(|_, (_, i)| *i % 2 == 0);
        }
        prop_assert_eq!(s.len(), model.len());
        let weight: usize = model.keys().map(String::len).sum();
        prop_assert_eq!(s.bytes(), weight, "bytes follow every insert, replace, remove, purge");
        for f in &filters {
            let mut got = Vec::new();
            s.matches(f, &mut got);
            got.sort();
            let want: Vec<_> = model.values().filter(|(t, _)| filter_matches(f, t)).cloned().collect();
            prop_assert_eq!(got, want, "filter {:?}", f);
        }
        for t in model.keys() {
            prop_assert!(s.remove(t).is_some());
        }
        prop_assert_eq!(s.node_count(), 1);
        prop_assert_eq!(s.bytes(), 0);
    }
}

#[test]
fn for_each_visits_every_retained_message_once_including_dollar_topics() {
    let s = store(&["a", "a/b", "$SYS/x", "c/d/e", "/"]);
    let mut seen = Vec::new();
    s.for_each(|v| seen.push(v.clone()));
    seen.sort();
    let mut want: Vec<String> = ["a", "a/b", "$SYS/x", "c/d/e", "/"]
        .iter()
        .map(|t| t.to_string())
        .collect();
    want.sort();
    assert_eq!(seen, want);
}

#[test]
fn insert_within_refuses_new_topics_past_the_count_and_weights_past_the_bytes() {
    let limits = RetainLimits {
        max_messages: 2,
        max_bytes: 12,
    };
    let mut s: RetainedStore<String> = RetainedStore::new();
    assert_eq!(s.insert_within("a", "12345".into(), limits), Ok(None));
    assert_eq!(s.insert_within("b", "123".into(), limits), Ok(None));
    assert_eq!(
        s.insert_within("c", "1".into(), limits),
        Err(RetainRefused::TooManyMessages(2))
    );
    assert_eq!(s.get("c"), None, "a refused message is not stored");
    // Replacing is not a new topic, and its old weight is given back first: 3 + 9 = 12.
    assert_eq!(
        s.insert_within("a", "123456789".into(), limits),
        Ok(Some("12345".into()))
    );
    assert_eq!(
        s.insert_within("b", "1234".into(), limits),
        Err(RetainRefused::TooManyBytes(12))
    );
    assert_eq!((s.len(), s.bytes()), (2, 12));
    s.remove("a");
    assert_eq!((s.len(), s.bytes()), (1, 3));
    s.retain_where(|v| v.len() > 5);
    assert_eq!((s.len(), s.bytes()), (0, 0));
}
