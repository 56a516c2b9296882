//! The pool of message envelopes.
//!
//! A message is shared by every subscriber it goes to, so it lives in an `Arc`. Rather than
//! freeing that `Arc` when the last subscriber is done, [`MessageRef`]'s `drop` checks whether
//! it holds the last reference (`Arc::get_mut` succeeds only then), clears the message, and
//! puts the `Arc` back in the pool for the next PUBLISH. Two handles dropped at the same
//! moment on two threads may both see the other and neither recycle: the `Arc` is then freed
//! as usual and counted as a discard. That race costs an allocation, never correctness.

use std::ops::Deref;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};

use crossbeam_queue::ArrayQueue;

use super::{Counters, PoolStats};
use crate::session::Message;

/// Idle envelopes kept at most. 64 Ki envelopes of a few hundred bytes: ~16 MiB at worst,
/// reached only after that many messages were alive at once.
pub const MESSAGE_POOL_CAPACITY: usize = 64 * 1024;

/// The process-wide pool of message envelopes (see [`messages`]).
pub struct MessagePool {
    free: ArrayQueue<Arc<Message>>,
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

impl MessagePool {
    /// A unique, empty envelope: recycled, or new when the pool is empty.
    fn take(&self) -> Arc<Message> {
        self.counters.gets.fetch_add(1, Ordering::Relaxed);
        match self.free.pop() {
            Some(envelope) => {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                envelope
            }
            None => {
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                Arc::new(Message::default())
            }
        }
    }

    fn put(&self, envelope: Arc<Message>) {
        if self.free.push(envelope).is_ok() {
            self.counters.returns.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters.discards.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> PoolStats {
        let c = &self.counters;
        PoolStats {
            name: "messages",
            gets: c.gets.load(Ordering::Relaxed),
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            returns: c.returns.load(Ordering::Relaxed),
            discards: c.discards.load(Ordering::Relaxed),
            size: self.free.len(),
            capacity: self.free.capacity(),
        }
    }
}

/// A shared reference to a pooled message. Cloning it is a reference-count increment; the
/// last one dropped returns the envelope to the pool.
#[derive(Clone)]
pub struct MessageRef(Option<Arc<Message>>);

impl MessageRef {
    /// Fills an envelope from the pool with `fill` and shares it.
    pub fn new<E>(fill: impl FnOnce(&mut Message) -> Result<(), E>) -> Result<MessageRef, E> {
        let mut envelope = messages().take();
        match Arc::get_mut(&mut envelope) {
            Some(message) => fill(message)?,
            // Envelopes in the pool are unique by construction; a shared one is not reused.
            None => {
                let mut fresh = Arc::new(Message::default());
                if let Some(message) = Arc::get_mut(&mut fresh) {
                    fill(message)?;
                }
                envelope = fresh;
            }
        }
        Ok(MessageRef(Some(envelope)))
    }

    /// Whether two references share one message.
    pub fn ptr_eq(a: &MessageRef, b: &MessageRef) -> bool {
        match (&a.0, &b.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Deref for MessageRef {
    type Target = Message;
    fn deref(&self) -> &Message {
        match &self.0 {
            Some(message) => message,
            None => unreachable!("a MessageRef is only emptied in drop"),
        }
    }
}

impl std::fmt::Debug for MessageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl Drop for MessageRef {
    fn drop(&mut self) {
        let Some(mut envelope) = self.0.take() else {
            return;
        };
        // When another reference is alive, whoever drops last recycles it. The count is read
        // first: `Arc::get_mut` is a compare-and-swap on the shared counts, and in a fan-out
        // every drop but the last would pay that contended read-modify-write for nothing.
        if Arc::strong_count(&envelope) != 1 {
            return;
        }
        if let Some(message) = Arc::get_mut(&mut envelope) {
            message.clear();
            messages().put(envelope);
        }
    }
}
