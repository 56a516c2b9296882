//! The pool of message envelopes.
//!
//! A message is shared by every subscriber it goes to, so it lives in an `Arc`. Rather than
//! freeing that `Arc` when the last subscriber is done, [`MessageRef`]'s `drop` checks whether
//! it holds the last reference (`Arc::get_mut` succeeds only then), clears the message, and
//! puts the `Arc` back in the pool for the next PUBLISH. Two handles dropped at the same
//! moment on two threads may both see the other and neither recycle: the `Arc` is then freed
//! as usual and counted as a discard. That race costs an allocation, never correctness.

use std::cell::RefCell;
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

/// Envelopes a thread keeps for itself in front of the shared queue. A thread that handles a
/// PUBLISH mostly also drops envelopes (its own subscribers', the last reference of another
/// thread's messages), so most gets and puts stay on the thread, without the shared queue's
/// compare-and-swaps on lines every core writes.
const LOCAL_CAPACITY: usize = 64;

thread_local! {
    static LOCAL: RefCell<Vec<Arc<Message>>> = const { RefCell::new(Vec::new()) };
}

impl MessagePool {
    /// A unique, empty envelope: recycled (this thread's first), or new when there is none.
    fn take(&self) -> Arc<Message> {
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
                Arc::new(Message::default())
            }
        }
    }

    fn put(&self, envelope: Arc<Message>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> MessageRef {
        MessageRef::new(|m| {
            m.topic = crate::codec::ByteString::from_static("t/1");
            m.payload = bytes::Bytes::from_static(b"payload");
            Ok::<(), ()>(())
        })
        .unwrap()
    }

    /// The pool is process-wide, so each test runs on a thread of its own and looks only at
    /// what its own thread's cache does.
    fn on_fresh_thread(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(f).join().unwrap();
    }

    #[test]
    fn an_envelope_dropped_on_a_thread_is_reused_there_cleared() {
        on_fresh_thread(|| {
            let first = message();
            let address = Arc::as_ptr(first.0.as_ref().unwrap());
            drop(first);
            assert_eq!(LOCAL.with(|l| l.borrow().len()), 1, "kept by this thread");
            let second = MessageRef::new(|m| {
                assert!(
                    m.topic.is_empty() && m.payload.is_empty(),
                    "its buffers were let go before reuse"
                );
                Ok::<(), ()>(())
            })
            .unwrap();
            assert_eq!(Arc::as_ptr(second.0.as_ref().unwrap()), address);
            assert_eq!(LOCAL.with(|l| l.borrow().len()), 0);
        });
    }

    #[test]
    fn a_thread_keeps_at_most_its_share_and_the_rest_goes_to_the_shared_queue() {
        on_fresh_thread(|| {
            let held: Vec<MessageRef> = (0..LOCAL_CAPACITY + 8).map(|_| message()).collect();
            let before = messages().stats();
            drop(held);
            let after = messages().stats();
            assert_eq!(LOCAL.with(|l| l.borrow().len()), LOCAL_CAPACITY);
            assert_eq!(
                after.returns + after.discards - before.returns - before.discards,
                (LOCAL_CAPACITY + 8) as u64,
                "every envelope is counted back"
            );
        });
    }

    #[test]
    fn a_shared_message_is_recycled_only_by_its_last_reference() {
        on_fresh_thread(|| {
            let a = message();
            let b = a.clone();
            drop(a);
            assert_eq!(LOCAL.with(|l| l.borrow().len()), 0, "b still holds it");
            drop(b);
            assert_eq!(LOCAL.with(|l| l.borrow().len()), 1);
        });
    }
}
