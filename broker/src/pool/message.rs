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

/// Idle envelopes kept at most. 64 Ki envelopes of a few hundred bytes: ~24 MiB at worst,
/// reached only after that many messages were alive at once.
pub const MESSAGE_POOL_CAPACITY: usize = 64 * 1024;

/// The process-wide pool of message envelopes (see [`messages`]).
pub struct MessagePool {
    free: ArrayQueue<Box<Block>>,
    counters: Counters,
}

static MESSAGES: LazyLock<MessagePool> = LazyLock::new(|| MessagePool {
    free: ArrayQueue::new(MESSAGE_POOL_CAPACITY),
    counters: Counters::default(),
});

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
