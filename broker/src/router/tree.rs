//! The subscription tree: which clients receive a PUBLISH to a given topic.
//!
//! A trie over topic levels. Every node stands for a filter prefix; its literal children are
//! keyed by level, and the wildcards get dedicated child slots (`plus`, `hash`) so that matching
//! never compares against '+' or '#' strings. A node holds the subscriptions whose filter ends
//! exactly there, one per client, plus the shared subscriptions (`$share/{group}/{filter}`)
//! ending there.
//!
//! Matching walks the topic level by level. At each node it follows the literal child for the
//! level and, for '+', branches (pending branches go on a small stack that lives on the call
//! stack: deep topics cannot overflow the thread's stack, and ordinary ones do not allocate);
//! a '#' child matches whatever remains, including nothing. Cost is proportional to the topic's
//! depth times the number of wildcard branches that exist along it, not to the number of
//! subscriptions.

use std::sync::Arc;

use smallvec::SmallVec;

use super::arena::{next_level, Arena, Children, NodeId, NONE, ROOT};
use super::subscribers::{Entry, Index, SharedGroup, SubscribersMut};
use crate::codec::topic::split_shared;
use crate::codec::{ByteString, QoS, SubscriptionOptions};
use crate::session::SessionLink;

/// Clients are identified by their MQTT Client Identifier.
pub type ClientId = ByteString;

/// One client's subscription to one filter, as SUBSCRIBE requested it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub options: SubscriptionOptions,
    /// The Subscription Identifier (MQTT 5.0, section 3.8.2.1.2), if the SUBSCRIBE carried one.
    pub identifier: Option<u32>,
    /// The subscribing session, which every match carries on to delivery.
    pub session: SessionLink,
}

/// One delivery a PUBLISH produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub client: ClientId,
    /// Highest granted QoS among this client's matching (non-shared) subscriptions
    /// [MQTT-3.3.4-2]; the sender still caps it by the PUBLISH's own QoS.
    pub qos: QoS,
    /// OR over the merged subscriptions' Retain As Published options.
    pub retain_as_published: bool,
    /// Every matching subscription's identifier [MQTT-3.3.4-3].
    pub subscription_ids: SmallVec<[u32; 2]>,
    /// `Some(group)` when this delivery comes from `$share/{group}/{filter}`.
    pub shared_group: Option<Arc<ByteString>>,
    /// The session to deliver to, from the (first) matching subscription.
    pub session: SessionLink,
}

/// One delivery borrowed from the tree (or from a merged [`Match`]), as
/// [`SubscriptionTree::visit_matches`] hands it out.
#[derive(Debug, Clone, Copy)]
pub struct MatchRef<'a> {
    pub client: &'a ClientId,
    pub qos: QoS,
    pub retain_as_published: bool,
    pub subscription_ids: &'a [u32],
    pub shared_group: Option<&'a Arc<ByteString>>,
    pub session: &'a SessionLink,
}

/// What [`SubscriptionTree::visit_matches`] hands each match to. A trait rather than a closure
/// so that a visitor can have its step inlined into the walk (`#[inline(always)]` on
/// [`visit`](MatchVisitor::visit)): the broker's routing does, because the step runs once per
/// subscriber of a fan-out. Any `FnMut(MatchRef)` closure is a visitor too.
pub trait MatchVisitor {
    fn visit(&mut self, m: MatchRef<'_>);
}

impl<F: FnMut(MatchRef<'_>)> MatchVisitor for F {
    #[inline]
    fn visit(&mut self, m: MatchRef<'_>) {
        self(m)
    }
}

impl<'a> MatchRef<'a> {
    #[inline]
    fn of(
        client: &'a ClientId,
        sub: &'a Subscription,
        shared_group: Option<&'a Arc<ByteString>>,
    ) -> Self {
        MatchRef {
            client,
            qos: sub.options.qos,
            retain_as_published: sub.options.retain_as_published,
            subscription_ids: sub.identifier.as_slice(),
            shared_group,
            session: &sub.session,
        }
    }
}

impl Match {
    pub fn as_ref(&self) -> MatchRef<'_> {
        MatchRef {
            client: &self.client,
            qos: self.qos,
            retain_as_published: self.retain_as_published,
            subscription_ids: &self.subscription_ids,
            shared_group: self.shared_group.as_ref(),
            session: &self.session,
        }
    }

    #[inline]
    fn new(client: &ClientId, sub: &Subscription, shared_group: Option<Arc<ByteString>>) -> Match {
        let mut subscription_ids = SmallVec::new();
        if let Some(id) = sub.identifier {
            subscription_ids.push(id);
        }
        Match {
            client: client.clone(),
            qos: sub.options.qos,
            retain_as_published: sub.options.retain_as_published,
            subscription_ids,
            shared_group,
            session: sub.session.clone(),
        }
    }
}

/// A trie node; see the module documentation.
///
/// Exactly one cache line: a match walk touches one node per topic level, and on a large tree
/// each is likely a cache miss, so what a walk reads is kept together and what only some nodes
/// need (a subscriber index, shared groups) lives out of line in [`Rare`].
#[derive(Debug)]
#[repr(align(64))]
struct Node {
    children: Children,
    /// The '+' child.
    plus: NodeId,
    /// The '#' child: its subscriptions match this level and everything below it.
    hash: NodeId,
    /// Non-shared subscriptions ending here, one per client.
    subs: Vec<Entry>,
    /// `None` unless there is something in it, so `is_empty` and matching need not look inside.
    rare: Option<Box<Rare>>,
}

/// The parts of a node that most nodes do not need.
#[derive(Debug, Default)]
struct Rare {
    /// Index of `Node::subs` once it is large.
    index: Option<Index>,
    /// Shared subscriptions ending here. A group name is unique per node; a handful at most in
    /// practice, hence a vector.
    groups: Vec<SharedGroup>,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            children: Children::default(),
            plus: NONE,
            hash: NONE,
            subs: Vec::new(),
            rare: None,
        }
    }
}

impl Node {
    fn is_empty(&self) -> bool {
        self.plus == NONE
            && self.hash == NONE
            && self.subs.is_empty()
            && self.rare.is_none()
            && self.children.is_empty()
    }

    #[inline]
    fn groups(&self) -> &[SharedGroup] {
        match &self.rare {
            Some(rare) => &rare.groups,
            None => &[],
        }
    }

    /// Runs `f` on the non-shared subscriber list, creating or dropping [`Rare`] as the index
    /// comes and goes.
    fn with_subs<R>(&mut self, f: impl FnOnce(&mut SubscribersMut<'_>) -> R) -> R {
        let mut spare = None;
        let index = match &mut self.rare {
            Some(rare) => &mut rare.index,
            None => &mut spare,
        };
        let result = f(&mut SubscribersMut {
            entries: &mut self.subs,
            index,
        });
        if spare.is_some() {
            self.rare.get_or_insert_with(Box::default).index = spare;
        }
        self.tidy();
        result
    }

    /// Drops [`Rare`] once it holds nothing, keeping `is_empty` a field check.
    fn tidy(&mut self) {
        if self
            .rare
            .as_ref()
            .is_some_and(|r| r.index.is_none() && r.groups.is_empty())
        {
            self.rare = None;
        }
    }
}

/// Pending branches of a match walk: (node, position in the topic). Sixteen cover any
/// realistic filter set without touching the heap; more spill over.
type Branches = SmallVec<[(NodeId, usize); 16]>;

/// Every subscription of every client, indexed for matching topics. See the module docs.
///
/// Mutation takes `&mut self`; matching takes `&self` and can run on many threads at once
/// (shared-group cursors are atomics), so the broker can put the tree behind a read-write lock.
#[derive(Debug)]
pub struct SubscriptionTree {
    nodes: Arena<Node>,
    subscriptions: usize,
    groups: usize,
}

impl Default for SubscriptionTree {
    fn default() -> Self {
        Self::new()
    }
}

/// Splits `$share/{group}/{filter}`. A malformed shared filter (which validation rejects before
/// it gets here) is treated as a plain filter: it is stored and removed consistently, and
/// since `$share` topics cannot be published to, it never matches anything.
fn parse_filter(filter: &str) -> (Option<&str>, &str) {
    match split_shared(filter) {
        Some(Ok((group, inner))) => (Some(group), inner),
        _ => (None, filter),
    }
}

impl SubscriptionTree {
    pub fn new() -> Self {
        SubscriptionTree {
            nodes: Arena::with_root(),
            subscriptions: 0,
            groups: 0,
        }
    }

    /// Adds or replaces `client`'s subscription to `filter` (which may be
    /// `$share/{group}/{f}`) [MQTT-3.8.4-3]. Returns true if it did not exist before (needed
    /// for Retain Handling 1). `filter` must be valid (`codec::topic::is_valid_topic_filter`).
    pub fn subscribe(&mut self, filter: &str, client: &ClientId, sub: Subscription) -> bool {
        debug_assert!(
            crate::codec::topic::is_valid_topic_filter(filter),
            "invalid filter {filter:?}"
        );
        let (group, inner) = parse_filter(filter);
        let id = self.node_for(inner);
        let node = &mut self.nodes[id];
        let added = match group {
            None => node.with_subs(|subs| subs.upsert(client, sub)),
            Some(name) => {
                let groups = &mut node.rare.get_or_insert_with(Box::default).groups;
                let i = match groups.iter().position(|g| *g.name == name) {
                    Some(i) => i,
                    None => {
                        groups.push(SharedGroup::new(name));
                        self.groups += 1;
                        groups.len() - 1
                    }
                };
                groups[i].members_mut().upsert(client, sub)
            }
        };
        if added {
            self.subscriptions += 1;
        }
        added
    }

    /// The node for a plain filter, created with its ancestors as needed.
    fn node_for(&mut self, filter: &str) -> NodeId {
        let mut id = ROOT;
        for level in filter.split('/') {
            let node = &self.nodes[id];
            let existing = match level {
                "+" => node.plus,
                "#" => node.hash,
                _ => node.children.get(level).unwrap_or(NONE),
            };
            id = if existing != NONE {
                existing
            } else {
                let child = self.nodes.alloc();
                let node = &mut self.nodes[id];
                match level {
                    "+" => node.plus = child,
                    "#" => node.hash = child,
                    _ => node.children.insert(level, child),
                }
                child
            };
        }
        id
    }

    /// Removes `client`'s subscription to `filter`, and the nodes this leaves empty. Returns
    /// true if it existed.
    pub fn unsubscribe(&mut self, filter: &str, client: &ClientId) -> bool {
        let (group, inner) = parse_filter(filter);
        // (parent, level) for every step down, to prune on the way back up.
        let mut path: SmallVec<[(NodeId, &str); 16]> = SmallVec::new();
        let mut id = ROOT;
        for level in inner.split('/') {
            let node = &self.nodes[id];
            let child = match level {
                "+" => node.plus,
                "#" => node.hash,
                _ => node.children.get(level).unwrap_or(NONE),
            };
            if child == NONE {
                return false;
            }
            path.push((id, level));
            id = child;
        }
        let node = &mut self.nodes[id];
        let removed = match (group, &mut node.rare) {
            (None, _) => node.with_subs(|subs| subs.remove(client)),
            (Some(_), None) => false,
            (Some(name), Some(rare)) => match rare.groups.iter().position(|g| *g.name == name) {
                None => false,
                Some(i) => {
                    let removed = rare.groups[i].members_mut().remove(client);
                    if rare.groups[i].members.is_empty() {
                        rare.groups.swap_remove(i);
                        self.groups -= 1;
                        node.tidy();
                    }
                    removed
                }
            },
        };
        if !removed {
            return false;
        }
        self.subscriptions -= 1;
        for &(parent, level) in path.iter().rev() {
            if !self.nodes[id].is_empty() {
                break;
            }
            let p = &mut self.nodes[parent];
            match level {
                "+" => p.plus = NONE,
                "#" => p.hash = NONE,
                _ => {
                    p.children.remove(level);
                }
            }
            self.nodes.free(id);
            id = parent;
        }
        true
    }

    /// Removes all of a client's subscriptions, given the filters it holds (the session knows
    /// them; the tree has no per-client index, which would cost memory on every subscription).
    pub fn unsubscribe_all<'a>(
        &mut self,
        client: &ClientId,
        filters: impl IntoIterator<Item = &'a str>,
    ) {
        for filter in filters {
            self.unsubscribe(filter, client);
        }
    }

    /// Appends to `out` the deliveries of a PUBLISH to `topic`:
    ///
    /// - one [`Match`] per client with matching non-shared subscriptions, merged over all of
    ///   them (highest QoS, every identifier) [MQTT-3.3.4-2], [MQTT-3.3.4-3];
    /// - one per matching shared subscription (a group name *and* filter, section 4.8.2): a
    ///   member picked round-robin among those for which `available` is true, else any member.
    ///
    /// Subscriptions with No Local are skipped for `publisher` [MQTT-3.8.3-3]. Topics starting
    /// with '$' are not matched by filters starting with '+' or '#' [MQTT-4.7.2-1].
    ///
    /// Does not allocate when `out` has room, the topic needs at most 16 pending wildcard
    /// branches and merged identifier lists fit inline. Existing contents of `out` are kept.
    pub fn matches(
        &self,
        topic: &str,
        publisher: Option<&ClientId>,
        available: &dyn Fn(&ClientId) -> bool,
        out: &mut Vec<Match>,
    ) {
        let start = out.len();
        // Nodes that contributed non-shared matches: a client can appear twice only if more
        // than one did, so merging is skipped in the common case.
        let mut contributing = 0usize;
        self.for_each_matching_node(topic, |node| {
            let before = out.len();
            for (client, sub) in &node.subs {
                if !(sub.options.no_local && publisher == Some(client)) {
                    out.push(Match::new(client, sub, None));
                }
            }
            if out.len() > before {
                contributing += 1;
            }
            for group in node.groups() {
                if let Some((client, sub)) = group.pick(publisher, available) {
                    out.push(Match::new(client, sub, Some(group.name.clone())));
                }
            }
        });
        if contributing > 1 {
            merge_per_client(out, start);
        }
    }

    /// Calls `visit` for each delivery [`matches`](Self::matches) would produce, in the same
    /// order, borrowing from the tree. When at most one node holds matching non-shared
    /// subscriptions (the usual case: nothing to merge) no [`Match`] is built and nothing is
    /// cloned, which is what fan-out to many subscribers pays per subscriber; otherwise the
    /// merged list is built in a vector from the routing-results pool and visited from there.
    pub fn visit_matches(
        &self,
        topic: &str,
        publisher: Option<&ClientId>,
        available: &dyn Fn(&ClientId) -> bool,
        visit: &mut impl MatchVisitor,
    ) {
        let mut nodes: SmallVec<[&Node; 16]> = SmallVec::new();
        self.for_each_matching_node(topic, |node| nodes.push(node));
        if nodes.iter().filter(|node| !node.subs.is_empty()).count() > 1 {
            let mut merged = crate::pool::routing_results().get();
            self.matches(topic, publisher, available, &mut merged);
            for m in merged.iter() {
                visit.visit(m.as_ref());
            }
            return;
        }
        for node in nodes {
            for (client, sub) in &node.subs {
                if !(sub.options.no_local && publisher == Some(client)) {
                    visit.visit(MatchRef::of(client, sub, None));
                }
            }
            for group in node.groups() {
                if let Some((client, sub)) = group.pick(publisher, available) {
                    visit.visit(MatchRef::of(client, sub, Some(&group.name)));
                }
            }
        }
    }

    /// Calls `f` on every node whose subscriptions match `topic`: the walk shared by
    /// [`matches`](Self::matches) and [`visit_matches`](Self::visit_matches).
    #[inline]
    fn for_each_matching_node<'a>(&'a self, topic: &str, mut f: impl FnMut(&'a Node)) {
        let dollar = topic.starts_with('$');
        // The walk starts at the root without going through the branch stack, which is then
        // only touched when a '+' exists along the way.
        let mut branches = Branches::new();
        let mut walk = Some((ROOT, 0));
        while let Some((mut id, mut pos)) = walk.take().or_else(|| branches.pop()) {
            loop {
                let node = &self.nodes[id];
                let wildcards = !(dollar && id == ROOT);
                if node.hash != NONE && wildcards {
                    f(&self.nodes[node.hash]);
                }
                if pos > topic.len() {
                    f(node);
                    break;
                }
                let (level, next) = next_level(topic, pos);
                if node.plus != NONE && wildcards {
                    branches.push((node.plus, next));
                }
                match node.children.get(level) {
                    Some(child) => (id, pos) = (child, next),
                    None => break,
                }
            }
        }
    }

    /// Number of subscriptions, shared-group members included.
    pub fn len(&self) -> usize {
        self.subscriptions
    }

    pub fn is_empty(&self) -> bool {
        self.subscriptions == 0
    }

    /// Number of shared subscriptions (distinct group name and filter pairs).
    pub fn shared_group_count(&self) -> usize {
        self.groups
    }

    /// Trie nodes in use, the root included (1 when empty). For tests and memory metrics.
    pub fn node_count(&self) -> usize {
        self.nodes.live()
    }
}

/// Merges `out[start..]` in place so that each client has one non-shared entry: sorts by
/// (shared?, client), then folds runs of the same client. O(n log n) and allocation-free
/// (unstable sort), so a topic with thousands of subscribers over overlapping filters stays
/// cheap; shared deliveries are never merged.
fn merge_per_client(out: &mut Vec<Match>, start: usize) {
    out[start..].sort_unstable_by(|a, b| {
        (a.shared_group.is_some(), &a.client).cmp(&(b.shared_group.is_some(), &b.client))
    });
    let mut w = start;
    for r in start + 1..out.len() {
        let (head, tail) = out.split_at_mut(r);
        let (kept, next) = (&mut head[w], &mut tail[0]);
        if kept.shared_group.is_none() && next.shared_group.is_none() && kept.client == next.client
        {
            kept.qos = kept.qos.max(next.qos);
            kept.retain_as_published |= next.retain_as_published;
            kept.subscription_ids
                .extend_from_slice(&next.subscription_ids);
        } else {
            w += 1;
            out.swap(w, r);
        }
    }
    out.truncate(w + 1);
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
