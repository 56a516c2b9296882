//! Retained messages (section 3.3.1.3), stored in a trie of topic levels so that a new
//! subscription's filter finds its retained messages by walking only the matching branches,
//! instead of testing the filter against every retained topic.

use smallvec::SmallVec;

use super::arena::{next_level, Arena, Children, NodeId, ROOT};

#[derive(Debug)]
struct Node<T> {
    children: Children,
    value: Option<T>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            children: Children::default(),
            value: None,
        }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.value.is_none() && self.children.is_empty()
    }
}

/// Work items of a filter walk; a stack of them replaces recursion, whose depth a client could
/// choose by publishing to a deep topic.
#[derive(Clone, Copy)]
enum Step {
    /// Match the filter from byte `pos` (past the end: the node itself matches) at `node`.
    Walk(NodeId, usize),
    /// Everything at and below the node matches (a '#' reached it).
    All(NodeId),
}

/// What a retained message counts for against [`RetainLimits::max_bytes`].
pub trait Weigh {
    fn weight(&self) -> usize;
}

impl Weigh for String {
    fn weight(&self) -> usize {
        self.len()
    }
}

/// How much the store may hold (`limits.maxRetainedMessages` and `limits.maxRetainedBytes`):
/// retained messages live until replaced or deleted, so without a bound any client allowed to
/// publish could fill the broker's memory one topic at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetainLimits {
    pub max_messages: usize,
    pub max_bytes: usize,
}

/// Why a message was not retained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RetainRefused {
    #[error("{0} topics already hold a retained message (limits.maxRetainedMessages)")]
    TooManyMessages(usize),
    #[error("retained messages would take more than {0} bytes (limits.maxRetainedBytes)")]
    TooManyBytes(usize),
}

impl RetainRefused {
    /// The `reason` label of `ferrumq_retained_refused_total`.
    pub fn label(&self) -> &'static str {
        match self {
            RetainRefused::TooManyMessages(_) => "messages",
            RetainRefused::TooManyBytes(_) => "bytes",
        }
    }
}

/// The retained message of each topic that has one. `T` is whatever the broker keeps per
/// message (typically a cheaply cloned handle to the encoded PUBLISH).
#[derive(Debug)]
pub struct RetainedStore<T> {
    nodes: Arena<Node<T>>,
    len: usize,
    /// Sum of the stored messages' weights.
    bytes: usize,
}

impl<T: Clone + Weigh> Default for RetainedStore<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + Weigh> RetainedStore<T> {
    pub fn new() -> Self {
        RetainedStore {
            nodes: Arena::with_root(),
            len: 0,
            bytes: 0,
        }
    }

    /// The retained message of `topic`.
    pub fn get(&self, topic: &str) -> Option<&T> {
        let mut id = ROOT;
        for level in topic.split('/') {
            id = self.nodes[id].children.get(level)?;
        }
        self.nodes[id].value.as_ref()
    }

    /// Stores `value` as the retained message of `topic` as [`insert`](Self::insert) does,
    /// unless that would take the store past `limits`: a new topic needs room under
    /// `max_messages`, and the weight after replacing the topic's old message must stay under
    /// `max_bytes`. A refused message leaves the store as it was.
    pub fn insert_within(
        &mut self,
        topic: &str,
        value: T,
        limits: RetainLimits,
    ) -> Result<Option<T>, RetainRefused> {
        let old = self.get(topic).map(Weigh::weight);
        if old.is_none() && self.len >= limits.max_messages {
            return Err(RetainRefused::TooManyMessages(limits.max_messages));
        }
        if self.bytes - old.unwrap_or(0) + value.weight() > limits.max_bytes {
            return Err(RetainRefused::TooManyBytes(limits.max_bytes));
        }
        Ok(self.insert(topic, value))
    }

    /// Stores `value` as the retained message of `topic`, returning the one it replaces
    /// [MQTT-3.3.1-5]. No limit applies (restoring a saved state, say); see
    /// [`insert_within`](Self::insert_within).
    pub fn insert(&mut self, topic: &str, value: T) -> Option<T> {
        let mut id = ROOT;
        for level in topic.split('/') {
            id = match self.nodes[id].children.get(level) {
                Some(child) => child,
                None => {
                    let child = self.nodes.alloc();
                    self.nodes[id].children.insert(level, child);
                    child
                }
            };
        }
        self.bytes += value.weight();
        let old = self.nodes[id].value.replace(value);
        match &old {
            Some(old) => self.bytes -= old.weight(),
            None => self.len += 1,
        }
        old
    }

    /// Removes the retained message of `topic` (a retained PUBLISH with an empty payload
    /// [MQTT-3.3.1-6]) and the nodes this leaves empty.
    pub fn remove(&mut self, topic: &str) -> Option<T> {
        let mut path: SmallVec<[(NodeId, &str); 16]> = SmallVec::new();
        let mut id = ROOT;
        for level in topic.split('/') {
            let child = self.nodes[id].children.get(level)?;
            path.push((id, level));
            id = child;
        }
        let old = self.nodes[id].value.take()?;
        self.len -= 1;
        self.bytes -= old.weight();
        for &(parent, level) in path.iter().rev() {
            if !self.nodes[id].is_empty() {
                break;
            }
            self.nodes[parent].children.remove(level);
            self.nodes.free(id);
            id = parent;
        }
        Some(old)
    }

    /// Appends to `out` the retained messages whose topic matches `filter` (a plain filter; the
    /// caller strips `$share/{group}/`). As for routing, '+' or '#' as the first level do not
    /// match topics starting with '$' [MQTT-4.7.2-1].
    pub fn matches(&self, filter: &str, out: &mut Vec<T>) {
        let mut stack: SmallVec<[Step; 16]> = SmallVec::new();
        stack.push(Step::Walk(ROOT, 0));
        while let Some(step) = stack.pop() {
            match step {
                Step::All(id) => {
                    let node = &self.nodes[id];
                    out.extend(node.value.iter().cloned());
                    stack.extend(node.children.iter().map(|(_, child)| Step::All(child)));
                }
                Step::Walk(id, pos) => {
                    let node = &self.nodes[id];
                    if pos > filter.len() {
                        out.extend(node.value.iter().cloned());
                        continue;
                    }
                    let (level, next) = next_level(filter, pos);
                    let visible = |name: &[u8]| id != ROOT || name.first() != Some(&b'$');
                    match level {
                        // Matches the parent level too ("sport/#" matches "sport").
                        "#" => {
                            out.extend(node.value.iter().cloned());
                            stack.extend(
                                node.children
                                    .iter()
                                    .filter(|(name, _)| visible(name))
                                    .map(|(_, child)| Step::All(child)),
                            );
                        }
                        "+" => stack.extend(
                            node.children
                                .iter()
                                .filter(|(name, _)| visible(name))
                                .map(|(_, child)| Step::Walk(child, next)),
                        ),
                        _ => {
                            if let Some(child) = node.children.get(level) {
                                stack.push(Step::Walk(child, next));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sum of the retained messages' weights (topic, payload and properties bytes for the
    /// broker's messages).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Keeps only the messages for which `keep` returns true (used to purge expired ones), and
    /// removes the nodes this leaves empty.
    pub fn retain_where(&mut self, mut keep: impl FnMut(&T) -> bool) {
        // Pre-order list of live nodes; walked backwards, every node comes after its
        // descendants, so their emptiness is final when the node prunes its children.
        let mut order = vec![ROOT];
        let mut i = 0;
        while let Some(&id) = order.get(i) {
            order.extend(self.nodes[id].children.iter().map(|(_, child)| child));
            i += 1;
        }
        let nodes = &mut self.nodes;
        for &id in order.iter().rev() {
            let node = &mut nodes[id];
            if node.value.as_ref().is_some_and(|v| !keep(v)) {
                if let Some(dropped) = node.value.take() {
                    self.len -= 1;
                    self.bytes -= dropped.weight();
                }
            }
            let mut children = std::mem::take(&mut nodes[id].children);
            children.retain(|child| {
                let empty = nodes[child].is_empty();
                if empty {
                    nodes.free(child);
                }
                !empty
            });
            nodes[id].children = children;
        }
    }

    /// Calls `f` with every retained message, in no particular order (saving a snapshot).
    pub fn for_each(&self, mut f: impl FnMut(&T)) {
        let mut stack = vec![ROOT];
        while let Some(id) = stack.pop() {
            let node = &self.nodes[id];
            if let Some(value) = &node.value {
                f(value);
            }
            stack.extend(node.children.iter().map(|(_, child)| child));
        }
    }

    /// Trie nodes in use, the root included (1 when empty).
    pub fn node_count(&self) -> usize {
        self.nodes.live()
    }
}

#[cfg(test)]
#[path = "retained_tests.rs"]
mod tests;
