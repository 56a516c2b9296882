//! Building blocks shared by the subscription tree and the retained store: an arena of trie
//! nodes addressed by `u32` ids, and the table of a node's literal children.
//!
//! Nodes live in one `Vec` rather than in individual boxes so that a walk touches fewer cache
//! lines and a parent refers to a child with 4 bytes instead of 8. Freed slots are reset to an
//! empty node (releasing everything the node owned) and reused by the next insertion, so churn
//! does not grow memory beyond the high-water mark of live nodes.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ops::{Index, IndexMut};

use hashbrown::hash_map::{self, HashMap};
use hashbrown::Equivalent;

use super::hash::KeyedHashBuilder;

/// Index of a node in an [`Arena`].
pub(crate) type NodeId = u32;

/// "No such child" in `NodeId` fields (cheaper than `Option<NodeId>`, which is 8 bytes).
pub(crate) const NONE: NodeId = NodeId::MAX;

/// The root of every trie: allocated by the owner's constructor and never freed.
pub(crate) const ROOT: NodeId = 0;

/// Nodes of one trie. `N::default()` is the empty node.
#[derive(Debug)]
pub(crate) struct Arena<N> {
    slots: Vec<N>,
    free: Vec<NodeId>,
}

impl<N: Default> Arena<N> {
    /// An arena holding only the root.
    pub(crate) fn with_root() -> Self {
        let mut arena = Arena {
            slots: Vec::new(),
            free: Vec::new(),
        };
        let root = arena.alloc();
        debug_assert_eq!(root, ROOT);
        arena
    }

    /// A new empty node, reusing a freed slot when there is one.
    pub(crate) fn alloc(&mut self) -> NodeId {
        if let Some(id) = self.free.pop() {
            return id;
        }
        let id = NodeId::try_from(self.slots.len())
            .ok()
            .filter(|&id| id != NONE)
            .expect("trie node ids exhausted");
        self.slots.push(N::default());
        id
    }

    /// Releases `id` (which must not be referenced any more): its contents are dropped now.
    pub(crate) fn free(&mut self, id: NodeId) {
        debug_assert_ne!(id, ROOT, "the root is never freed");
        self.slots[id as usize] = N::default();
        self.free.push(id);
    }

    /// Nodes in use, the root included.
    pub(crate) fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

impl<N> Index<NodeId> for Arena<N> {
    type Output = N;

    #[inline]
    fn index(&self, id: NodeId) -> &N {
        &self.slots[id as usize]
    }
}

impl<N> IndexMut<NodeId> for Arena<N> {
    #[inline]
    fn index_mut(&mut self, id: NodeId) -> &mut N {
        &mut self.slots[id as usize]
    }
}

/// Levels up to this many bytes are stored inline in a [`Level`].
const INLINE: usize = 22;

/// One topic level as a trie key.
///
/// Levels are short in practice ("site", "42", "temp"), so they are stored inline: comparing
/// a key then reads the child table's own cache line instead of chasing a pointer to a separate
/// allocation, which on a large tree is a cache miss per comparison. Longer levels are boxed.
/// 24 bytes either way.
#[derive(Debug, Clone)]
pub(crate) enum Level {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Level {
    fn new(level: &str) -> Level {
        let b = level.as_bytes();
        if b.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..b.len()].copy_from_slice(b);
            Level::Inline {
                len: b.len() as u8,
                bytes,
            }
        } else {
            Level::Heap(b.into())
        }
    }

    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Level::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Level::Heap(b) => b,
        }
    }
}

// Equality and hashing are those of the bytes, as `Borrow<[u8]>` requires, so that a map keyed
// by `Level` is searched with a `&[u8]` without building a key.
impl PartialEq for Level {
    fn eq(&self, other: &Level) -> bool {
        bytes_eq(self.as_bytes(), other.as_bytes())
    }
}

impl Eq for Level {}

impl Hash for Level {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl Borrow<[u8]> for Level {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Byte-string equality without a call to `memcmp` for short strings: levels are a few bytes
/// long, and the call with its size dispatch costs more than the comparison. Up to 16 bytes,
/// two (possibly overlapping) word loads per side cover every byte.
#[inline]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let u32_at = |s: &[u8], i: usize| u32::from_ne_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    let u64_at = |s: &[u8], i: usize| {
        let mut w = [0; 8];
        w.copy_from_slice(&s[i..i + 8]);
        u64::from_ne_bytes(w)
    };
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => u32_at(a, 0) == u32_at(b, 0) && u32_at(a, n - 4) == u32_at(b, n - 4),
        8..=16 => u64_at(a, 0) == u64_at(b, 0) && u64_at(a, n - 8) == u64_at(b, n - 8),
        _ => a == b,
    }
}

/// Up to this many children a node keeps them in a vector and finds one by comparing keys,
/// which for short levels beats hashing (SipHash in particular); above it, a hash map.
const LIST_MAX: usize = 8;

/// A map shrinks back to a list when it falls to this size, so a node hovering around
/// [`LIST_MAX`] does not convert on every insert and remove.
const LIST_BACK: usize = LIST_MAX / 2;

type LevelMap = HashMap<Level, NodeId, KeyedHashBuilder>;

/// A topic level as a child-map lookup key: hashed as a [`Level`] is, compared with
/// [`bytes_eq`]. Looked up by `[u8]`, the map compared keys with a call to `memcmp` (a tenth
/// of a `+` walk at 10K subscriptions).
struct LevelKey<'a>(&'a [u8]);

impl Hash for LevelKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Equivalent<Level> for LevelKey<'_> {
    #[inline]
    fn equivalent(&self, key: &Level) -> bool {
        bytes_eq(self.0, key.as_bytes())
    }
}

/// Literal (non-wildcard) children of a node, keyed by topic level.
///
/// The map hashes with [`KeyedHashBuilder`]: keyed (topic levels come from clients, and a
/// predictable hash would let one client slow every lookup with colliding levels), and several
/// times cheaper than std's SipHash.
#[derive(Debug)]
pub(crate) enum Children {
    List(Vec<(Level, NodeId)>),
    // Boxed so that the enum, present in every node, is 24 bytes instead of 48: the map is
    // rare (wide nodes only) and small nodes are what a walk touches most.
    #[allow(clippy::box_collection)]
    Map(Box<LevelMap>),
}

impl Default for Children {
    fn default() -> Self {
        Children::List(Vec::new())
    }
}

impl Children {
    // Always inlined: called once per topic level, and out of line its prologue and
    // epilogue were a fifth of its cost.
    #[inline(always)]
    pub(crate) fn get(&self, level: &str) -> Option<NodeId> {
        let level = level.as_bytes();
        match self {
            Children::List(list) => list
                .iter()
                .find(|(key, _)| bytes_eq(key.as_bytes(), level))
                .map(|&(_, id)| id),
            Children::Map(map) => map.get(&LevelKey(level)).copied(),
        }
    }

    /// Adds a child; `level` must not be present yet.
    pub(crate) fn insert(&mut self, level: &str, id: NodeId) {
        debug_assert!(self.get(level).is_none());
        match self {
            Children::List(list) if list.len() < LIST_MAX => {
                // Most nodes have a single child: do not round the first allocation up to 4.
                list.reserve_exact(1);
                list.push((Level::new(level), id));
            }
            Children::List(list) => {
                let mut map = LevelMap::with_capacity_and_hasher(LIST_MAX * 2, Default::default());
                map.extend(list.drain(..));
                map.insert(Level::new(level), id);
                *self = Children::Map(Box::new(map));
            }
            Children::Map(map) => {
                map.insert(Level::new(level), id);
            }
        }
    }

    pub(crate) fn remove(&mut self, level: &str) -> Option<NodeId> {
        let level = level.as_bytes();
        match self {
            Children::List(list) => {
                let i = list
                    .iter()
                    .position(|(key, _)| bytes_eq(key.as_bytes(), level))?;
                let (_, id) = list.swap_remove(i);
                if list.is_empty() {
                    *list = Vec::new();
                }
                Some(id)
            }
            Children::Map(map) => {
                let id = map.remove(&LevelKey(level))?;
                self.shrink();
                Some(id)
            }
        }
    }

    /// Keeps the children for which `keep` returns true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(NodeId) -> bool) {
        match self {
            Children::List(list) => list.retain(|&(_, id)| keep(id)),
            Children::Map(map) => {
                map.retain(|_, id| keep(*id));
                self.shrink();
            }
        }
    }

    fn shrink(&mut self) {
        if let Children::Map(map) = self {
            if map.len() <= LIST_BACK {
                let list = std::mem::take(&mut **map).into_iter().collect();
                *self = Children::List(list);
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Children::List(list) => list.is_empty(),
            Children::Map(map) => map.is_empty(),
        }
    }

    /// `(level, child)` pairs, in no particular order.
    pub(crate) fn iter(&self) -> ChildIter<'_> {
        match self {
            Children::List(list) => ChildIter::List(list.iter()),
            Children::Map(map) => ChildIter::Map(map.iter()),
        }
    }
}

/// Iterator over `(level, child)` pairs, in no particular order.
pub(crate) enum ChildIter<'a> {
    List(std::slice::Iter<'a, (Level, NodeId)>),
    Map(hash_map::Iter<'a, Level, NodeId>),
}

impl<'a> Iterator for ChildIter<'a> {
    type Item = (&'a [u8], NodeId);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            ChildIter::List(it) => it.next().map(|(key, id)| (key.as_bytes(), *id)),
            ChildIter::Map(it) => it.next().map(|(key, id)| (key.as_bytes(), *id)),
        }
    }
}

/// Splits off the first level of `rest`, a suffix of a topic or filter starting at byte `pos`
/// of a string of length `len`. Returns the level and the position of the next level, which is
/// `len + 1` ("past the end") once the last level has been consumed: a trailing '/' thus yields
/// a final empty level, as section 4.7 requires.
#[inline]
pub(crate) fn next_level(s: &str, pos: usize) -> (&str, usize) {
    let rest = &s[pos..];
    match find_slash(rest.as_bytes()) {
        Some(i) => (&rest[..i], pos + i + 1),
        None => (rest, s.len() + 1),
    }
}

/// Position of the first '/', scanning eight bytes per step (SWAR): a byte-at-a-time loop was
/// a tenth of the cost of a whole match.
#[inline]
fn find_slash(b: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const SLASHES: u64 = u64::from_ne_bytes([b'/'; 8]);
    let mut words = b.chunks_exact(8);
    for (k, word) in (&mut words).enumerate() {
        let mut w = [0; 8];
        w.copy_from_slice(word);
        let x = u64::from_le_bytes(w) ^ SLASHES;
        // The classic "has a zero byte" test; its lowest set bit is always a true zero byte,
        // which in little-endian order is the first slash.
        let zeros = x.wrapping_sub(ONES) & !x & HIGHS;
        if zeros != 0 {
            return Some(8 * k + zeros.trailing_zeros() as usize / 8);
        }
    }
    let tail = words.remainder();
    let i = tail.iter().position(|&c| c == b'/')?;
    Some(b.len() - tail.len() + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn children_switch_between_list_and_map() {
        let mut c = Children::default();
        let names: Vec<String> = (0..40).map(|i| format!("l{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            c.insert(n, i as NodeId);
        }
        assert!(matches!(c, Children::Map(_)));
        for (i, n) in names.iter().enumerate() {
            assert_eq!(c.get(n), Some(i as NodeId));
        }
        assert_eq!(c.iter().count(), 40);
        for n in &names[..38] {
            assert!(c.remove(n).is_some());
        }
        assert!(matches!(c, Children::List(_)));
        assert_eq!(c.get("l39"), Some(39));
        assert_eq!(c.remove("nope"), None);
        c.retain(|id| id == 38);
        assert_eq!(c.iter().collect::<Vec<_>>(), vec![(&b"l38"[..], 38)]);
    }

    #[test]
    fn long_levels_are_boxed_and_compare_by_content() {
        let short = "x".repeat(INLINE);
        let long = "y".repeat(INLINE + 1);
        assert!(matches!(Level::new(&short), Level::Inline { .. }));
        assert!(matches!(Level::new(&long), Level::Heap(_)));
        assert_eq!(std::mem::size_of::<Level>(), 24);
        let mut c = Children::default();
        for (i, l) in [short.as_str(), long.as_str(), "", "a"]
            .into_iter()
            .enumerate()
        {
            c.insert(l, i as NodeId);
        }
        assert_eq!(c.get(&long), Some(1));
        assert_eq!(c.get(""), Some(2));
        assert_eq!(c.get(&long[1..]), None);
        // A map is searched with `&[u8]`: a key and its bytes must hash alike.
        let b = KeyedHashBuilder::default();
        for l in [short.as_str(), long.as_str(), ""] {
            assert_eq!(b.hash_one(Level::new(l)), b.hash_one(l.as_bytes()));
        }
    }

    #[test]
    fn bytes_eq_agrees_with_slice_equality() {
        let words: Vec<Vec<u8>> = (0..=20)
            .flat_map(|n| {
                let base: Vec<u8> = (0..n).map(|i| b'a' + i as u8).collect();
                let mut variants = vec![base.clone()];
                for i in 0..n {
                    let mut v = base.clone();
                    v[i] = b'Z';
                    variants.push(v);
                }
                variants
            })
            .collect();
        for a in &words {
            for b in &words {
                assert_eq!(bytes_eq(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn find_slash_finds_the_first_slash() {
        for len in 0..40 {
            for at in 0..=len {
                let mut s = vec![b'x'; len];
                if at < len {
                    s[at] = b'/';
                    if at + 3 < len {
                        s[at + 3] = b'/';
                    }
                }
                let want = s.iter().position(|&c| c == b'/');
                assert_eq!(find_slash(&s), want, "{len} {at}");
            }
        }
        assert_eq!(find_slash("\u{2f}é/".as_bytes()), Some(0));
        assert_eq!(find_slash("éééé/".as_bytes()), Some(8));
    }

    #[test]
    fn next_level_yields_empty_levels() {
        let split = |s: &str| {
            let mut out = Vec::new();
            let mut pos = 0;
            while pos <= s.len() {
                let (level, next) = next_level(s, pos);
                out.push(level.to_owned());
                pos = next;
            }
            out
        };
        assert_eq!(split("a/b"), ["a", "b"]);
        assert_eq!(split("/"), ["", ""]);
        assert_eq!(split("/a/"), ["", "a", ""]);
        assert_eq!(split("a"), ["a"]);
    }

    #[test]
    fn arena_reuses_freed_slots() {
        let mut a: Arena<Children> = Arena::with_root();
        let x = a.alloc();
        let y = a.alloc();
        assert_eq!(a.live(), 3);
        a[x].insert("k", 7);
        a.free(x);
        assert_eq!(a.live(), 2);
        assert_eq!(a.alloc(), x);
        assert!(a[x].is_empty(), "a reused slot starts empty");
        assert_ne!(x, y);
    }
}
