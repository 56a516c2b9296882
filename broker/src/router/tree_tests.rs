//! Tests of [`SubscriptionTree`], named after the normative statements they check.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proptest::prelude::*;
use proptest::sample::select;

use super::*;
use crate::codec::topic::filter_matches;

fn cid(s: &str) -> ClientId {
    ClientId::from(s)
}

fn sub(qos: QoS, identifier: Option<u32>) -> Subscription {
    Subscription {
        options: SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        },
        identifier,
        session: Default::default(),
    }
}

fn q0() -> Subscription {
    sub(QoS::AtMostOnce, None)
}

fn all(_: &ClientId) -> bool {
    true
}

fn run(tree: &SubscriptionTree, topic: &str, publisher: Option<&str>) -> Vec<Match> {
    let publisher = publisher.map(cid);
    let mut out = Vec::new();
    tree.matches(topic, publisher.as_ref(), &all, &mut out);
    out.sort_by(|a, b| (&a.shared_group, &a.client).cmp(&(&b.shared_group, &b.client)));
    out
}

fn clients(tree: &SubscriptionTree, topic: &str) -> Vec<String> {
    run(tree, topic, None)
        .into_iter()
        .map(|m| m.client.to_string())
        .collect()
}

/// Whether a tree holding only `filter` delivers `topic`.
fn one_filter_matches(filter: &str, topic: &str) -> bool {
    let mut tree = SubscriptionTree::new();
    tree.subscribe(filter, &cid("c"), q0());
    !run(&tree, topic, None).is_empty()
}

#[test]
fn a_node_is_one_cache_line() {
    assert_eq!(std::mem::size_of::<Node>(), 64);
    assert_eq!(std::mem::align_of::<Node>(), 64);
}

#[test]
fn mqtt_4_7_1_1_hash_matches_parent_and_any_number_of_children() {
    let f = "sport/tennis/player1/#";
    for topic in [
        "sport/tennis/player1",
        "sport/tennis/player1/ranking",
        "sport/tennis/player1/score/wimbledon",
    ] {
        assert!(one_filter_matches(f, topic), "{topic}");
    }
    assert!(!one_filter_matches(f, "sport/tennis/player2"));
    assert!(!one_filter_matches(f, "sport/tennis"));
    assert!(one_filter_matches("sport/#", "sport"));
    assert!(one_filter_matches("#", "anything/at/all"));
    assert!(one_filter_matches("#", "/"));
}

#[test]
fn mqtt_4_7_1_2_plus_matches_one_level() {
    assert!(one_filter_matches("sport/tennis/+", "sport/tennis/player1"));
    assert!(one_filter_matches("sport/tennis/+", "sport/tennis/player2"));
    assert!(!one_filter_matches(
        "sport/tennis/+",
        "sport/tennis/player1/ranking"
    ));
    assert!(!one_filter_matches("sport/+", "sport"));
    assert!(one_filter_matches("sport/+", "sport/"));
    assert!(one_filter_matches("+/tennis/#", "sport/tennis"));
    assert!(one_filter_matches(
        "sport/+/player1",
        "sport/tennis/player1"
    ));
}

#[test]
fn mqtt_4_7_1_empty_levels_are_levels() {
    assert!(one_filter_matches("+/+", "/finance"));
    assert!(one_filter_matches("/+", "/finance"));
    assert!(!one_filter_matches("+", "/finance"));
    assert!(one_filter_matches("a/+/b", "a//b"));
    assert!(one_filter_matches("a//b", "a//b"));
    assert!(!one_filter_matches("a/b", "a//b"));
    assert!(one_filter_matches("/", "/"));
    assert!(one_filter_matches("/#", "/"));
}

#[test]
fn mqtt_4_7_2_1_dollar_topics_not_matched_by_leading_wildcard() {
    assert!(!one_filter_matches("#", "$SYS/monitor/Clients"));
    assert!(!one_filter_matches(
        "+/monitor/Clients",
        "$SYS/monitor/Clients"
    ));
    assert!(!one_filter_matches("+", "$SYS"));
    assert!(one_filter_matches("$SYS/#", "$SYS/monitor/Clients"));
    assert!(one_filter_matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
    assert!(one_filter_matches("$SYS/#", "$SYS"));
    // Only the first level is special.
    assert!(one_filter_matches("a/+", "a/$x"));
    assert!(one_filter_matches("a/#", "a/$x"));
    // Shared subscriptions follow the same rule for their inner filter.
    assert!(!one_filter_matches("$share/g/#", "$SYS/x"));
    assert!(one_filter_matches("$share/g/$SYS/+", "$SYS/x"));
}

#[test]
fn mqtt_4_7_3_4_matching_is_exact_and_case_sensitive() {
    assert!(!one_filter_matches("ACCOUNTS", "Accounts"));
    assert!(!one_filter_matches("a", "a "));
    assert!(!one_filter_matches("a/b", "a/b/c"));
    assert!(!one_filter_matches("a/b/c", "a/b"));
    assert!(one_filter_matches("Accounts payable", "Accounts payable"));
}

#[test]
fn mqtt_3_3_4_2_overlapping_subscriptions_merged_with_max_qos_and_all_ids() {
    let mut tree = SubscriptionTree::new();
    let a = cid("a");
    tree.subscribe("sport/#", &a, sub(QoS::AtMostOnce, Some(1)));
    tree.subscribe("sport/+/x", &a, sub(QoS::ExactlyOnce, Some(2)));
    let mut rap = sub(QoS::AtLeastOnce, None);
    rap.options.retain_as_published = true;
    tree.subscribe("sport/tennis/x", &a, rap);
    tree.subscribe("sport/tennis/x", &cid("b"), sub(QoS::AtLeastOnce, Some(9)));

    let out = run(&tree, "sport/tennis/x", None);
    assert_eq!(out.len(), 2, "one delivery per client: {out:?}");
    let ma = &out[0];
    assert_eq!(ma.client, a);
    assert_eq!(ma.qos, QoS::ExactlyOnce);
    assert!(ma.retain_as_published);
    let mut ids = ma.subscription_ids.to_vec();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [1, 2],
        "every identifier, none for the subscription without one"
    );
    assert_eq!(out[1].subscription_ids.as_slice(), [9]);
    assert!(!out[1].retain_as_published);

    // Only the subscriptions that match contribute.
    let out = run(&tree, "sport/golf", None);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].qos, QoS::AtMostOnce);
    assert_eq!(out[0].subscription_ids.as_slice(), [1]);
}

#[test]
fn overlapping_subscriptions_of_many_clients_merge_per_client() {
    let mut tree = SubscriptionTree::new();
    let ids: Vec<ClientId> = (0..1000).map(|i| cid(&format!("c{i:04}"))).collect();
    for (i, c) in ids.iter().enumerate() {
        tree.subscribe("t/+", c, sub(QoS::AtMostOnce, Some(1)));
        if i % 2 == 0 {
            tree.subscribe("t/x", c, sub(QoS::AtLeastOnce, Some(2)));
        }
    }
    tree.subscribe("$share/g/t/x", &ids[0], q0());
    let out = run(&tree, "t/x", None);
    assert_eq!(out.len(), 1001);
    for (i, m) in out[..1000].iter().enumerate() {
        assert_eq!(m.client, ids[i]);
        assert_eq!(m.shared_group, None);
        if i % 2 == 0 {
            assert_eq!(m.qos, QoS::AtLeastOnce);
            assert_eq!(m.subscription_ids.len(), 2);
        } else {
            assert_eq!(m.qos, QoS::AtMostOnce);
            assert_eq!(m.subscription_ids.as_slice(), [1]);
        }
    }
    assert_eq!(out[1000].shared_group.as_deref().map(|g| &**g), Some("g"));
}

#[test]
fn mqtt_3_8_3_3_no_local() {
    let mut tree = SubscriptionTree::new();
    let mut no_local = sub(QoS::AtLeastOnce, Some(1));
    no_local.options.no_local = true;
    tree.subscribe("chat/#", &cid("a"), no_local.clone());
    tree.subscribe("chat/#", &cid("b"), no_local);
    assert_eq!(clients(&tree, "chat/room"), ["a", "b"]);
    let names =
        |out: Vec<Match>| -> Vec<String> { out.iter().map(|m| m.client.to_string()).collect() };
    assert_eq!(names(run(&tree, "chat/room", Some("a"))), ["b"]);

    // Another subscription of the publisher without No Local still delivers, with only its
    // own identifier.
    tree.subscribe("chat/room", &cid("a"), sub(QoS::AtMostOnce, Some(2)));
    let out = run(&tree, "chat/room", Some("a"));
    assert_eq!(names(out.clone()), ["a", "b"]);
    assert_eq!(out[0].subscription_ids.as_slice(), [2]);
    assert_eq!(out[0].qos, QoS::AtMostOnce);
}

#[test]
fn mqtt_4_8_2_shared_group_round_robin() {
    let mut tree = SubscriptionTree::new();
    for m in ["m1", "m2", "m3"] {
        assert!(tree.subscribe("$share/workers/jobs/+", &cid(m), q0()));
    }
    tree.subscribe("jobs/#", &cid("audit"), q0());
    let mut picked = Vec::new();
    for _ in 0..6 {
        let out = run(&tree, "jobs/1", None);
        assert_eq!(out.len(), 2, "one plain delivery, one per group: {out:?}");
        assert_eq!(out[0].client, "audit");
        assert_eq!(
            out[1].shared_group.as_deref().map(|g| &**g),
            Some("workers")
        );
        picked.push(out[1].client.to_string());
    }
    let first_round: BTreeSet<&str> = picked[..3].iter().map(String::as_str).collect();
    assert_eq!(
        first_round.len(),
        3,
        "each member once per round: {picked:?}"
    );
    assert_eq!(picked[..3], picked[3..], "the same order every round");
}

#[test]
fn shared_group_skips_unavailable_members_then_falls_back() {
    let mut tree = SubscriptionTree::new();
    for m in ["m1", "m2", "m3"] {
        tree.subscribe("$share/g/t", &cid(m), sub(QoS::AtLeastOnce, Some(7)));
    }
    let pick = |available: &dyn Fn(&ClientId) -> bool| {
        let mut out = Vec::new();
        tree.matches("t", None, available, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].subscription_ids.as_slice(), [7]);
        assert_eq!(out[0].qos, QoS::AtLeastOnce);
        out[0].client.to_string()
    };
    let not_m2 = |c: &ClientId| c != "m2";
    let picks: Vec<String> = (0..4).map(|_| pick(&not_m2)).collect();
    assert!(!picks.contains(&"m2".to_owned()), "{picks:?}");
    assert_ne!(
        picks[0], picks[1],
        "alternates between the available members"
    );
    // Nobody available: still delivered, round-robin over everyone.
    let none = |_: &ClientId| false;
    let picks: BTreeSet<String> = (0..3).map(|_| pick(&none)).collect();
    assert_eq!(picks.len(), 3);
}

#[test]
fn mqtt_4_8_2_same_group_name_on_different_filters_are_distinct_subscriptions() {
    let mut tree = SubscriptionTree::new();
    tree.subscribe("$share/g/a/+", &cid("x"), q0());
    tree.subscribe("$share/g/a/b", &cid("y"), q0());
    tree.subscribe("$share/h/a/b", &cid("y"), q0());
    assert_eq!(tree.shared_group_count(), 3);
    let out = run(&tree, "a/b", None);
    let got: Vec<(Option<&str>, &str)> = out
        .iter()
        .map(|m| (m.shared_group.as_deref().map(|g| &**g), &*m.client))
        .collect();
    assert_eq!(got, [(Some("g"), "x"), (Some("g"), "y"), (Some("h"), "y")]);
}

#[test]
fn plain_and_shared_subscriptions_of_one_client_are_separate_deliveries() {
    let mut tree = SubscriptionTree::new();
    let c = cid("c");
    tree.subscribe("a/b", &c, sub(QoS::AtMostOnce, Some(1)));
    tree.subscribe("a/+", &c, sub(QoS::AtMostOnce, Some(2)));
    tree.subscribe("$share/g/a/b", &c, sub(QoS::ExactlyOnce, Some(3)));
    let out = run(&tree, "a/b", None);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].shared_group, None);
    assert_eq!(out[0].subscription_ids.len(), 2);
    assert_eq!(out[1].shared_group.as_deref().map(|g| &**g), Some("g"));
    assert_eq!(out[1].subscription_ids.as_slice(), [3]);
    assert_eq!(out[1].qos, QoS::ExactlyOnce);
}

#[test]
fn mqtt_3_8_4_3_subscribe_replaces_existing_subscription() {
    let mut tree = SubscriptionTree::new();
    let c = cid("c");
    assert!(tree.subscribe("a/#", &c, sub(QoS::AtMostOnce, Some(1))));
    assert!(!tree.subscribe("a/#", &c, sub(QoS::ExactlyOnce, None)));
    assert!(tree.subscribe("$share/g/a/#", &c, q0()));
    assert!(!tree.subscribe("$share/g/a/#", &c, sub(QoS::AtLeastOnce, None)));
    assert_eq!(tree.len(), 2);
    let out = run(&tree, "a/z", None);
    assert_eq!(out[0].qos, QoS::ExactlyOnce);
    assert!(out[0].subscription_ids.is_empty());
    assert_eq!(out[1].qos, QoS::AtLeastOnce);
}

#[test]
fn mqtt_3_10_4_1_unsubscribe_compares_filters_character_by_character() {
    let mut tree = SubscriptionTree::new();
    let c = cid("c");
    tree.subscribe("a/b", &c, q0());
    tree.subscribe("$share/g/a/b", &c, q0());
    assert!(
        !tree.unsubscribe("a/+", &c),
        "a wildcard does not remove what it matches"
    );
    assert!(!tree.unsubscribe("a/b", &cid("other")));
    assert!(!tree.unsubscribe("$share/h/a/b", &c));
    assert!(!tree.unsubscribe("a/b/c", &c));
    assert!(tree.unsubscribe("a/b", &c));
    assert!(!tree.unsubscribe("a/b", &c));
    assert_eq!(clients(&tree, "a/b"), ["c"], "the shared one remains");
    assert!(tree.unsubscribe("$share/g/a/b", &c));
    assert!(tree.is_empty());
}

#[test]
fn unsubscribe_removes_empty_nodes() {
    let mut tree = SubscriptionTree::new();
    assert_eq!(tree.node_count(), 1);
    let (a, b) = (cid("a"), cid("b"));
    tree.subscribe("x/y/z", &a, q0());
    assert_eq!(tree.node_count(), 4);
    tree.subscribe("x/+/#", &b, q0());
    tree.subscribe("$share/g/x/y", &b, q0());
    assert_eq!(tree.node_count(), 6);
    assert!(tree.unsubscribe("x/y/z", &a));
    assert_eq!(
        tree.node_count(),
        5,
        "only x/y/z went; x/y holds the shared group"
    );
    assert!(tree.unsubscribe("$share/g/x/y", &b));
    assert_eq!(tree.node_count(), 4, "x/y went too");
    assert!(tree.unsubscribe("x/+/#", &b));
    assert_eq!(tree.node_count(), 1);
    assert!(tree.is_empty());
    assert_eq!(tree.shared_group_count(), 0);
    // Freed nodes are reused.
    tree.subscribe("p/q", &a, q0());
    assert_eq!(tree.node_count(), 3);
}

#[test]
fn unsubscribe_all_removes_every_listed_filter() {
    let mut tree = SubscriptionTree::new();
    let (a, b) = (cid("a"), cid("b"));
    let filters = ["a/b", "a/#", "$share/g/+", "c"];
    for f in filters {
        tree.subscribe(f, &a, q0());
        tree.subscribe(f, &b, q0());
    }
    assert_eq!(tree.len(), 8);
    assert_eq!(tree.shared_group_count(), 1);
    tree.unsubscribe_all(&a, filters.iter().copied().chain(["not/held"]));
    assert_eq!(tree.len(), 4);
    assert_eq!(tree.shared_group_count(), 1);
    assert_eq!(clients(&tree, "a/b"), ["b"]);
    tree.unsubscribe_all(&b, filters);
    assert!(tree.is_empty());
    assert_eq!(tree.shared_group_count(), 0);
    assert_eq!(tree.node_count(), 1);
}

#[test]
fn matches_appends_and_keeps_existing_entries() {
    let mut tree = SubscriptionTree::new();
    tree.subscribe("t/#", &cid("a"), sub(QoS::AtMostOnce, Some(1)));
    tree.subscribe("t/x", &cid("a"), sub(QoS::AtMostOnce, Some(2)));
    let mut out = Vec::new();
    tree.matches("t/x", None, &all, &mut out);
    tree.matches("t/x", None, &all, &mut out);
    assert_eq!(out.len(), 2, "merging stays within one call");
    assert_eq!(out[0], out[1]);
    assert!(!out[0].subscription_ids.spilled());
}

#[test]
fn deep_topics_and_many_wildcard_branches_do_not_recurse() {
    let mut tree = SubscriptionTree::new();
    let c = cid("c");
    let deep = vec!["a"; 20_000].join("/");
    let pluses = vec!["+"; 20_000].join("/");
    tree.subscribe(&deep, &c, sub(QoS::AtMostOnce, Some(1)));
    tree.subscribe(&pluses, &c, sub(QoS::AtMostOnce, Some(2)));
    let out = run(&tree, &deep, None);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].subscription_ids.len(), 2);
    assert!(tree.unsubscribe(&deep, &c));
    assert!(tree.unsubscribe(&pluses, &c));
    assert_eq!(tree.node_count(), 1);
}

// ---- Property test against the reference matcher ----

#[derive(Debug, Clone)]
struct Op {
    filter: String,
    group: Option<&'static str>,
    client: usize,
    sub: Subscription,
}

impl Op {
    fn full_filter(&self) -> String {
        match self.group {
            Some(g) => format!("$share/{g}/{}", self.filter),
            None => self.filter.clone(),
        }
    }
}

const CLIENTS: [&str; 4] = ["c0", "c1", "c2", "c3"];

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

fn op_strategy() -> impl Strategy<Value = Op> {
    (
        filter_strategy(),
        prop::option::weighted(0.2, select(vec!["g", "h"])),
        0..CLIENTS.len(),
        0u8..3,
        prop::option::of(1u32..100),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(filter, group, client, qos, identifier, no_local, rap)| Op {
                filter,
                group,
                client,
                sub: Subscription {
                    options: SubscriptionOptions {
                        qos: QoS::from_u8(qos).unwrap(),
                        no_local,
                        retain_as_published: rap,
                        ..SubscriptionOptions::default()
                    },
                    identifier,
                    session: Default::default(),
                },
            },
        )
}

type Model = HashMap<(String, Option<&'static str>, usize), Subscription>;

/// What `matches` must return, as comparable values: merged plain deliveries per client, and
/// for shared ones the group name with the set of members that may be picked.
type Expected = (
    BTreeMap<usize, (QoS, bool, Vec<u32>)>,
    Vec<(&'static str, BTreeSet<usize>)>,
);

fn expected(model: &Model, topic: &str, publisher: Option<usize>) -> Expected {
    let mut plain: BTreeMap<usize, (QoS, bool, Vec<u32>)> = BTreeMap::new();
    let mut shared: BTreeMap<(&str, &str), BTreeSet<usize>> = BTreeMap::new();
    for ((filter, group, client), s) in model {
        if !filter_matches(filter, topic) || (s.options.no_local && publisher == Some(*client)) {
            continue;
        }
        match group {
            None => {
                let e = plain
                    .entry(*client)
                    .or_insert((QoS::AtMostOnce, false, Vec::new()));
                e.0 = e.0.max(s.options.qos);
                e.1 |= s.options.retain_as_published;
                e.2.extend(s.identifier);
                e.2.sort_unstable();
            }
            Some(g) => {
                shared.entry((g, filter)).or_default().insert(*client);
            }
        }
    }
    let mut shared: Vec<_> = shared.into_iter().map(|((g, _), m)| (g, m)).collect();
    shared.sort();
    (plain, shared)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn matches_agrees_with_reference_matcher(
        ops in prop::collection::vec(op_strategy(), 1..40),
        removals in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        topics in prop::collection::vec(topic_strategy(), 1..8),
        publisher in prop::option::of(0..CLIENTS.len()),
    ) {
        let ids: Vec<ClientId> = CLIENTS.iter().map(|c| cid(c)).collect();
        let mut tree = SubscriptionTree::new();
        let mut model = Model::new();
        for op in &ops {
            let key = (op.filter.clone(), op.group, op.client);
            let new = model.insert(key, op.sub.clone()).is_none();
            prop_assert_eq!(tree.subscribe(&op.full_filter(), &ids[op.client], op.sub.clone()), new);
        }
        for r in &removals {
            let op = r.get(&ops);
            let existed = model.remove(&(op.filter.clone(), op.group, op.client)).is_some();
            prop_assert_eq!(tree.unsubscribe(&op.full_filter(), &ids[op.client]), existed);
        }
        prop_assert_eq!(tree.len(), model.len());
        let groups: BTreeSet<_> = model.keys().filter_map(|(f, g, _)| g.map(|g| (g, f))).collect();
        prop_assert_eq!(tree.shared_group_count(), groups.len());

        for topic in &topics {
            let mut out = Vec::new();
            tree.matches(topic, publisher.map(|p| &ids[p]), &all, &mut out);
            let client_index = |c: &ClientId| CLIENTS.iter().position(|n| c == *n).unwrap();
            let mut plain = BTreeMap::new();
            let mut shared = Vec::new();
            for m in &out {
                let c = client_index(&m.client);
                match &m.shared_group {
                    None => {
                        let mut ids = m.subscription_ids.to_vec();
                        ids.sort_unstable();
                        let dup = plain.insert(c, (m.qos, m.retain_as_published, ids));
                        prop_assert!(dup.is_none(), "client {} twice for {:?}", c, topic);
                    }
                    Some(g) => shared.push((g.to_string(), c)),
                }
            }
            let (want_plain, want_shared) = expected(&model, topic, publisher);
            prop_assert_eq!(&plain, &want_plain, "topic {:?}", topic);
            // As many shared deliveries per group name as matching shared subscriptions, each
            // to an eligible member of one of them.
            let names = |v: Vec<&str>| v.into_iter().fold(BTreeMap::new(), |mut m, g| {
                *m.entry(g.to_owned()).or_insert(0) += 1;
                m
            });
            prop_assert_eq!(
                names(shared.iter().map(|(g, _)| g.as_str()).collect()),
                names(want_shared.iter().map(|(g, _)| *g).collect()),
                "topic {:?}", topic
            );
            for (g, c) in &shared {
                let eligible = want_shared.iter().any(|(wg, members)| wg == g && members.contains(c));
                prop_assert!(eligible, "{:?}: {}/{} not in {:?}", topic, g, c, want_shared);
            }
        }

        for (filter, group, client) in model.keys() {
            let full = match group {
                Some(g) => format!("$share/{g}/{filter}"),
                None => filter.clone(),
            };
            prop_assert!(tree.unsubscribe(&full, &ids[*client]));
        }
        prop_assert!(tree.is_empty());
        prop_assert_eq!(tree.shared_group_count(), 0);
        prop_assert_eq!(tree.node_count(), 1);
    }
}
