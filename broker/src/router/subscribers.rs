//! The subscriptions held at one trie node, at most one per client, and shared groups.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::{ClientId, Subscription};
use crate::codec::ByteString;

/// Above this many entries a client → position index is kept, so subscribe and unsubscribe stay
/// O(1) on a filter with thousands of subscribers.
const INDEX_MIN: usize = 16;

/// The index is dropped again below this size (hysteresis, so it is not rebuilt on every
/// subscribe and unsubscribe around [`INDEX_MIN`]).
const INDEX_DROP: usize = INDEX_MIN / 2;

/// One subscription of one client.
pub(crate) type Entry = (ClientId, Subscription);

/// Client → position in the entry vector.
pub(crate) type Index = HashMap<ClientId, u32>;

/// Mutable view of a list of subscriptions keyed by client: a dense vector of entries plus,
/// beyond [`INDEX_MIN`] entries, an index.
///
/// Matching only iterates, and a vector is the fastest thing to iterate; lookups by client
/// scan it while small and use the index when large. Each client appears at most once, so the
/// matches one list contributes never need merging among themselves. The two halves are
/// borrowed separately because a trie node keeps its (rare) index out of line, to stay one
/// cache line.
pub(crate) struct SubscribersMut<'a> {
    pub(crate) entries: &'a mut Vec<Entry>,
    pub(crate) index: &'a mut Option<Index>,
}

impl SubscribersMut<'_> {
    fn position(&self, client: &ClientId) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(client).map(|&i| i as usize),
            None => self.entries.iter().position(|(c, _)| c == client),
        }
    }

    /// Adds or replaces `client`'s subscription; true if it is new.
    pub(crate) fn upsert(&mut self, client: &ClientId, sub: Subscription) -> bool {
        if let Some(i) = self.position(client) {
            self.entries[i].1 = sub;
            return false;
        }
        if self.entries.is_empty() {
            // Most filters have one subscriber: do not round the first allocation up to 4.
            self.entries.reserve_exact(1);
        }
        let i = self.entries.len();
        self.entries.push((client.clone(), sub));
        match &mut self.index {
            Some(index) => {
                index.insert(client.clone(), position_u32(i));
            }
            None if self.entries.len() > INDEX_MIN => {
                let index = self
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(i, (c, _))| (c.clone(), position_u32(i)))
                    .collect();
                *self.index = Some(index);
            }
            None => {}
        }
        true
    }

    /// Removes `client`'s subscription; true if there was one.
    pub(crate) fn remove(&mut self, client: &ClientId) -> bool {
        let Some(i) = self.position(client) else {
            return false;
        };
        self.entries.swap_remove(i);
        if self.entries.len() < INDEX_DROP {
            *self.index = None;
        } else if let Some(index) = &mut self.index {
            index.remove(client);
            if let Some((moved, _)) = self.entries.get(i) {
                index.insert(moved.clone(), position_u32(i));
            }
        }
        if self.entries.is_empty() {
            *self.entries = Vec::new();
        } else if self.entries.capacity() > 4 * self.entries.len() {
            self.entries.shrink_to(2 * self.entries.len());
        }
        true
    }
}

fn position_u32(i: usize) -> u32 {
    u32::try_from(i).expect("more than u32::MAX subscribers on one filter")
}

/// One shared subscription, `$share/{name}/{filter}` (section 4.8.2): its members and the
/// round-robin cursor that picks which member receives the next message.
#[derive(Debug)]
pub(crate) struct SharedGroup {
    /// Shared with every queued delivery routed through this group (see `Outgoing`).
    pub(crate) name: Arc<ByteString>,
    pub(crate) members: Vec<Entry>,
    index: Option<Index>,
    /// Where the next search for a member starts. Atomic so that matching works through `&self`
    /// (concurrent readers); `Relaxed` because it orders nothing and an occasional duplicate pick
    /// under a race only skews the balance slightly.
    cursor: AtomicUsize,
}

impl SharedGroup {
    pub(crate) fn new(name: &str) -> Self {
        SharedGroup {
            name: Arc::new(ByteString::from(name)),
            members: Vec::new(),
            index: None,
            cursor: AtomicUsize::new(0),
        }
    }

    pub(crate) fn members_mut(&mut self) -> SubscribersMut<'_> {
        SubscribersMut {
            entries: &mut self.members,
            index: &mut self.index,
        }
    }

    /// Picks the member to deliver to: the next one in round-robin order for which `available`
    /// holds, else (every member offline or congested) the next one in order, whose session
    /// will queue the message. Members excluded by No Local are never picked; `None` when no
    /// member is eligible.
    pub(crate) fn pick(
        &self,
        publisher: Option<&ClientId>,
        available: &dyn Fn(&ClientId) -> bool,
    ) -> Option<&Entry> {
        let members = &self.members;
        let n = members.len();
        if n == 0 {
            return None;
        }
        let start = self.cursor.load(Ordering::Relaxed) % n;
        let mut fallback = None;
        for k in 0..n {
            let i = if start + k >= n {
                start + k - n
            } else {
                start + k
            };
            let member = &members[i];
            if member.1.options.no_local && publisher == Some(&member.0) {
                continue;
            }
            if available(&member.0) {
                // Continue after the chosen member, so members behind an unavailable one do
                // not get a double share.
                self.cursor.store(i + 1, Ordering::Relaxed);
                return Some(member);
            }
            fallback.get_or_insert(i);
        }
        let i = fallback?;
        self.cursor.store(i + 1, Ordering::Relaxed);
        Some(&members[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{QoS, SubscriptionOptions};

    fn sub(id: u32) -> Subscription {
        Subscription {
            options: SubscriptionOptions::default(),
            identifier: Some(id),
            session: Default::default(),
        }
    }

    #[test]
    fn index_stays_consistent_across_growth_and_removal() {
        let clients: Vec<ClientId> = (0..100).map(|i| ClientId::from(format!("c{i}"))).collect();
        let (mut entries, mut index) = (Vec::new(), None);
        let mut s = SubscribersMut {
            entries: &mut entries,
            index: &mut index,
        };
        for (i, c) in clients.iter().enumerate() {
            assert!(s.upsert(c, sub(i as u32)));
        }
        assert!(s.index.is_some());
        assert!(!s.upsert(&clients[5], sub(500)), "replacing is not new");
        assert_eq!(s.entries.len(), 100);
        // Remove every other client, then check every remaining lookup.
        for c in clients.iter().step_by(2) {
            assert!(s.remove(c));
            assert!(!s.remove(c));
        }
        for (i, c) in clients.iter().enumerate() {
            let found = s.position(c).map(|p| s.entries[p].1.identifier);
            let expected = match i {
                _ if i % 2 == 0 => None,
                5 => Some(Some(500)),
                _ => Some(Some(i as u32)),
            };
            assert_eq!(found, expected, "{c}");
        }
        for c in clients.iter().skip(1).step_by(2) {
            assert!(s.remove(c));
        }
        assert!(s.entries.is_empty());
        assert!(s.index.is_none());
        assert_eq!(s.entries.capacity(), 0);
    }

    #[test]
    fn pick_skips_no_local_publisher() {
        let mut g = SharedGroup::new("g");
        let a = ClientId::from("a");
        let mut only = sub(1);
        only.options.no_local = true;
        only.options.qos = QoS::AtLeastOnce;
        g.members_mut().upsert(&a, only);
        assert!(g.pick(Some(&a), &|_| true).is_none());
        assert_eq!(g.pick(None, &|_| true).map(|m| &m.0), Some(&a));
    }
}
