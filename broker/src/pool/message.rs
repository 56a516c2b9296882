//! The pool of message envelopes.
//!
//! A message is shared by every subscriber it goes to ([`MessageRef`], in `shared.rs`).
//! Rather than freeing it when the last subscriber is done, that last handle clears the
//! message and puts its block back here for the next PUBLISH.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::LazyLock;

use crossbeam_queue::ArrayQueue;

use super::shared::Block;
use super::{Counters, PoolStats};

/// Idle envelopes kept at most. 64 Ki envelopes of 640 bytes (the message with its shared
/// heads, after its count's own cache lines): ~40 MiB at worst, reached only after that many
/// messages were alive at once.
pub const MESSAGE_POOL_CAPACITY: usize = 64 * 1024;

/// The process-wide pool of message envelopes (see [`messages`]).
pub struct MessagePool {
    free: ArrayQueue<Box<Block>>,
    counters: Counters,
}

static MESSAGES: LazyLock<MessagePool> =
    LazyLock::new(|| MessagePool::prefilled(MESSAGE_POOL_CAPACITY, prefill_for_this_machine()));

/// Envelopes made when the pool is first used: a full thread cache per core, at most 16 cores'
/// worth (~0.4 MiB).
///
/// An envelope freed on a thread stays in that thread's cache ([`LOCAL_CAPACITY`]) until the
/// cache is full, and only then reaches the shared queue. A fresh broker whose PUBLISH
/// packets arrive on one core and whose envelopes are freed on another therefore allocated up
/// to a cache's worth per core before the first envelope came back where it was needed: about
/// 10% of the first few hundred messages missed the pool, which is what the pool-hit-ratio
/// alert reports on. Made up front, those envelopes serve from the first message on.
fn prefill_for_this_machine() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    LOCAL_CAPACITY * cores.min(16)
}

/// The message envelope pool.
pub fn messages() -> &'static MessagePool {
    &MESSAGES
}

/// Envelopes a thread keeps for itself in front of the shared queue. A thread that handles a
/// PUBLISH mostly also drops envelopes (its own subscribers', the last reference of another
/// thread's messages), so most gets and puts stay on the thread, without the shared queue's
/// compare-and-swaps on lines every core writes.
pub(super) const LOCAL_CAPACITY: usize = 64;

thread_local! {
    // Boxes, not blocks: a handle's address is its block's, so blocks never move.
    #[allow(clippy::vec_box)]
    static LOCAL: RefCell<Vec<Box<Block>>> = const { RefCell::new(Vec::new()) };
}

/// Envelopes in this thread's cache (tests).
#[cfg(test)]
pub(super) fn local_len() -> usize {
    LOCAL.with(|local| local.borrow().len())
}

impl MessagePool {
    /// A pool keeping at most `capacity` idle envelopes, `prefill` of them made now (not
    /// counted as gets: no message asked for them).
    fn prefilled(capacity: usize, prefill: usize) -> MessagePool {
        let free = ArrayQueue::new(capacity);
        for _ in 0..prefill.min(capacity) {
            let _ = free.push(Box::default());
        }
        MessagePool {
            free,
            counters: Counters::default(),
        }
    }

    /// An empty envelope, owned alone: recycled (this thread's first), or new when there is
    /// none.
    pub(super) fn take(&self) -> Box<Block> {
        let counters = self.counters.local();
        counters.gets.fetch_add(1, Ordering::Relaxed);
        let local = LOCAL
            .try_with(|local| local.borrow_mut().pop())
            .ok()
            .flatten();
        match local.or_else(|| self.free.pop()) {
            Some(envelope) => {
                counters.hits.fetch_add(1, Ordering::Relaxed);
                envelope
            }
            None => {
                counters.misses.fetch_add(1, Ordering::Relaxed);
                Box::default()
            }
        }
    }

    /// Keeps a cleared envelope for reuse, or frees it when the pool is full.
    pub(super) fn put(&self, envelope: Box<Block>) {
        let counters = self.counters.local();
        let mut envelope = Some(envelope);
        // `try_with`: a thread being torn down has no cache; its envelopes go to the queue.
        let _ = LOCAL.try_with(|local| {
            let mut local = local.borrow_mut();
            if local.len() < LOCAL_CAPACITY {
                if local.capacity() == 0 {
                    local.reserve_exact(LOCAL_CAPACITY);
                }
                local.extend(envelope.take());
            }
        });
        let kept = match envelope {
            None => true,
            Some(envelope) => self.free.push(envelope).is_ok(),
        };
        let counter = if kept {
            &counters.returns
        } else {
            &counters.discards
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters, and the shared queue's size (envelopes in threads' own caches, at most
    /// [`LOCAL_CAPACITY`] a thread, are not counted in `size`).
    pub fn stats(&self) -> PoolStats {
        self.counters
            .stats("messages", self.free.len(), self.free.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on a thread of its own, whose envelope cache starts empty.
    fn on_fresh_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
        std::thread::scope(|scope| scope.spawn(f).join().unwrap())
    }

    #[test]
    fn a_prefilled_pool_serves_its_first_envelopes_without_allocating() {
        let pool = MessagePool::prefilled(1024, 2 * LOCAL_CAPACITY);
        assert_eq!(pool.stats().size, 2 * LOCAL_CAPACITY);
        // Envelopes taken on one thread and freed on another, as when the publisher and the
        // subscriber run on different cores: the freeing thread's cache keeps them.
        let taken: Vec<_> = on_fresh_thread(|| (0..LOCAL_CAPACITY).map(|_| pool.take()).collect());
        on_fresh_thread(|| taken.into_iter().for_each(|envelope| pool.put(envelope)));
        let stats = pool.stats();
        assert_eq!((stats.gets, stats.hits, stats.misses), (64, 64, 0));
        let again: Vec<_> = on_fresh_thread(|| (0..LOCAL_CAPACITY).map(|_| pool.take()).collect());
        let stats = pool.stats();
        assert_eq!(
            (stats.gets, stats.misses),
            (128, 0),
            "the rest of the prefill served"
        );
        drop(again);
    }

    #[test]
    fn a_prefill_beyond_capacity_is_capped() {
        let pool = MessagePool::prefilled(8, 100);
        assert_eq!(pool.stats().size, 8);
        assert_eq!(pool.stats().gets, 0, "making the prefill is not a get");
    }
}
