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

/// The retained message of each topic that has one. `T` is whatever the broker keeps per
/// message (typically a cheaply cloned handle to the encoded PUBLISH).
#[derive(Debug)]
pub struct RetainedStore<T> {
    nodes: Arena<Node<T>>,
    len: usize,
}

impl<T: Clone> Default for RetainedStore<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone> RetainedStore<T> {
    pub fn new() -> Self {
        RetainedStore {
            nodes: Arena::with_root(),
            len: 0,
        }
    }

    /// Stores `value` as the retained message of `topic`, returning the one it replaces
    /// [MQTT-3.3.1-5].
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
        let old = self.nodes[id].value.replace(value);
        if old.is_none() {
            self.len += 1;
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
                node.value = None;
                self.len -= 1;
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
