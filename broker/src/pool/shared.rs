//! The shared handle on a pooled message: a reference count of our own, so a fan-out can take
//! its handles in batches.
//!
//! A message goes to every matching subscriber, and each queue entry holds a handle on it. With
//! `Arc`, the publishing core increments the count once per subscriber while the subscribers'
//! cores decrement it as they finish: in a 1000-subscriber fan-out the count's cache line
//! moved between the cores up to twice per delivery, and that increment was the broker's
//! hottest instruction. [`Handles`] takes 1, 2, 4, … up to [`MAX_RESERVED`] references with
//! one atomic addition and hands them out without touching the count, so the line moves a few
//! times per message instead. `std::sync::Arc` has no way to add more than one at once.
//!
//! The count also sits on a line pair of its own, apart from the message ([`Block`]): the
//! subscribers' reads of the message no longer wait for the publisher's writes of the count.
#![allow(unsafe_code)]

use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};

use super::message::messages;
use crate::session::Message;

/// Most references a [`Handles`] takes with one addition. Those left unused when it is
/// dropped are given back with one subtraction.
pub const MAX_RESERVED: usize = 64;

/// Counts above this abort, as `Arc` does: they could only come from leaked handles, and
/// wrapping would free a message still in use.
const MAX_COUNT: usize = isize::MAX as usize;

/// A value alone on a pair of cache lines (what adjacent-line prefetching moves together).
#[repr(align(128))]
struct LinePair<T>(T);

/// A message with its reference count, as allocated and pooled. The count is zero while the
/// block is in the pool (owned by its `Box`) and counts live [`MessageRef`]s otherwise.
#[repr(C)]
pub(super) struct Block {
    count: LinePair<AtomicUsize>,
    pub(super) message: Message,
}

impl Default for Block {
    fn default() -> Self {
        Block {
            count: LinePair(AtomicUsize::new(0)),
            message: Message::default(),
        }
    }
}

/// A shared reference to a pooled message. Cloning it is a reference-count increment; the
/// last one dropped returns the message, cleared, to the pool.
pub struct MessageRef(NonNull<Block>);

// SAFETY: a `MessageRef` gives only shared access (`&Message`) to a block that stays alive
// while any handle exists, exactly like `Arc<Message>`, which is `Send` and `Sync` when
// `Message` is both (checked below); the count is atomic, and the block is only touched
// mutably by the one thread that took the count to zero (after an acquire fence).
unsafe impl Send for MessageRef {}
// SAFETY: as for `Send`.
unsafe impl Sync for MessageRef {}

const _: () = {
    const fn shared_message<T: Send + Sync>() {}
    shared_message::<Message>();
};

impl MessageRef {
    /// Fills an envelope from the pool with `fill` and shares it. On an error the envelope
    /// goes back to the pool, cleared.
    pub fn new<E>(fill: impl FnOnce(&mut Message) -> Result<(), E>) -> Result<MessageRef, E> {
        let mut block = messages().take();
        if let Err(error) = fill(&mut block.message) {
            block.message.clear();
            messages().put(block);
            return Err(error);
        }
        block.count.0.store(1, Ordering::Relaxed);
        Ok(MessageRef(NonNull::from(Box::leak(block))))
    }

    /// Whether two references share one message.
    pub fn ptr_eq(a: &MessageRef, b: &MessageRef) -> bool {
        a.0 == b.0
    }

    /// A source of handles on this message for a fan-out, taking references in batches.
    pub fn handles(&self) -> Handles<'_> {
        Handles {
            message: self,
            reserved: 0,
            next_batch: 1,
        }
    }

    fn block(&self) -> &Block {
        // SAFETY: this handle is one of the block's `count` references, so the block was
        // leaked from its `Box` by `new` and is not freed or recycled until the count reaches
        // zero, which needs this handle's own release in `drop`. Mutable access happens only
        // in `new` (before any handle exists) and in `release` (after the last).
        unsafe { self.0.as_ref() }
    }

    /// Adds `n` references.
    fn acquire(&self, n: usize) {
        // Relaxed, as `Arc::clone`: a new reference is made from an existing one, which
        // already orders every access to the message it guards.
        if self.block().count.0.fetch_add(n, Ordering::Relaxed) > MAX_COUNT {
            std::process::abort();
        }
    }

    /// Gives up `n` references of the block at `block`; whoever gives up the last recycles it.
    ///
    /// # Safety
    /// The caller owns `n` of the block's references and uses none of them afterwards.
    unsafe fn release(block: NonNull<Block>, n: usize) {
        // SAFETY: the caller's `n` references keep the block alive until this subtraction.
        let count = unsafe { &block.as_ref().count.0 };
        // Release, then an acquire fence by the last owner, as `Arc`'s drop: every use of the
        // message by other handles happens before it is cleared for reuse.
        if count.fetch_sub(n, Ordering::Release) != n {
            return;
        }
        fence(Ordering::Acquire);
        // SAFETY: the count went from `n` to zero, so the caller held the last references and
        // no other handle exists: the block is ours alone, and it was leaked from a `Box` in
        // `new`, so rebuilding the `Box` takes back that allocation exactly once.
        let mut block = unsafe { Box::from_raw(block.as_ptr()) };
        block.message.clear();
        messages().put(block);
    }
}

impl MessageRef {
    /// Gives this reference up later, on this thread, together with the other references to
    /// the same message given up meanwhile: see [`DeferredReleases`].
    ///
    /// A message with a payload over [`DEFER_MAX_PAYLOAD`] is given up at once: what it would
    /// save is nothing next to writing the payload, and it would keep that much memory.
    pub fn release_later(self) {
        if self.payload.len() > DEFER_MAX_PAYLOAD {
            return;
        }
        let block = self.0;
        std::mem::forget(self);
        if DEFERRED.try_with(|d| d.borrow_mut().add(block)).is_err() {
            // SAFETY: the reference `self` owned, forgotten above and used nowhere else.
            unsafe { MessageRef::release(block, 1) }
        }
    }
}

/// A handle given up with [`MessageRef::release_later`] when it is dropped: for the handles the
/// message path drops by the thousand, one per delivery (the payloads listed for a write).
pub struct DeferredRef(std::mem::ManuallyDrop<MessageRef>);

impl From<MessageRef> for DeferredRef {
    fn from(handle: MessageRef) -> DeferredRef {
        DeferredRef(std::mem::ManuallyDrop::new(handle))
    }
}

impl Drop for DeferredRef {
    fn drop(&mut self) {
        // SAFETY: the handle is taken once, here, and `self` is never used again.
        unsafe { std::mem::ManuallyDrop::take(&mut self.0) }.release_later();
    }
}

impl Deref for DeferredRef {
    type Target = Message;
    fn deref(&self) -> &Message {
        &self.0
    }
}

impl std::fmt::Debug for DeferredRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// Slots for messages with deferred releases, per thread (a power of two).
const DEFERRED_SLOTS: usize = 256;
/// References a thread defers before it gives them all up, busy or not.
const FLUSH_EVERY: u32 = 4096;
/// The largest payload whose message may wait in a thread's table.
pub const DEFER_MAX_PAYLOAD: usize = 16 * 1024;

/// References given up on one thread and not yet subtracted, counted per message.
///
/// In a fan-out every subscriber drops its handle on the same message once it is written, from
/// whichever core runs that subscriber: one subtraction per delivery on a line both cores
/// write. Subscribers written one after another on one thread give up handles on the same
/// messages (a write takes up to a few dozen queued messages), so counting them here first
/// turns up to thousands of contended subtractions into one per message per thread. A message
/// waits in its slot until another message needs the slot, [`FLUSH_EVERY`] references have
/// been deferred since the last flush (so a worker that never goes idle holds messages for a
/// few thousand deliveries at most), or [`flush_deferred_releases`] runs (the broker's runtime
/// calls it whenever a worker goes idle). At most [`DEFERRED_SLOTS`] messages of at most
/// [`DEFER_MAX_PAYLOAD`] bytes each wait per thread, and none once the thread has nothing to
/// do.
struct DeferredReleases {
    /// A message and the references given up on it, direct-mapped by address.
    slots: [(Option<NonNull<Block>>, usize); DEFERRED_SLOTS],
    /// The occupied slots, so a flush visits only those.
    occupied: [u8; DEFERRED_SLOTS],
    occupied_len: usize,
    /// References deferred since the last flush.
    deferred: u32,
}

const _: () = assert!(DEFERRED_SLOTS.is_power_of_two() && DEFERRED_SLOTS <= 256);

thread_local! {
    static DEFERRED: std::cell::RefCell<DeferredReleases> =
        const {
            std::cell::RefCell::new(DeferredReleases {
                slots: [(None, 0); DEFERRED_SLOTS],
                occupied: [0; DEFERRED_SLOTS],
                occupied_len: 0,
                deferred: 0,
            })
        };
}

impl DeferredReleases {
    fn add(&mut self, block: NonNull<Block>) {
        if self.deferred == FLUSH_EVERY {
            self.flush();
        }
        self.deferred += 1;
        // Fibonacci hashing of the address: blocks are 128-byte aligned, so the low bits say
        // nothing.
        let hash = (block.as_ptr() as usize >> 7).wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize);
        let index = hash >> (usize::BITS - DEFERRED_SLOTS.trailing_zeros());
        let slot = &mut self.slots[index];
        match *slot {
            (Some(held), ref mut n) if held == block => *n += 1,
            (Some(held), n) => {
                // A collision: the older message's references go back now.
                *slot = (Some(block), 1);
                // SAFETY: the slot owned the `n` references given to it by `release_later`.
                unsafe { MessageRef::release(held, n) }
            }
            (None, _) => {
                *slot = (Some(block), 1);
                self.occupied[self.occupied_len] = index as u8;
                self.occupied_len += 1;
            }
        }
    }

    fn flush(&mut self) {
        for &index in &self.occupied[..self.occupied_len] {
            if let (Some(block), n) = std::mem::take(&mut self.slots[usize::from(index)]) {
                // SAFETY: as in `add`: the slot owned these references.
                unsafe { MessageRef::release(block, n) }
            }
        }
        self.occupied_len = 0;
        self.deferred = 0;
    }
}

impl Drop for DeferredReleases {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Subtracts every reference this thread has given up with [`MessageRef::release_later`],
/// recycling the messages no one else holds.
pub fn flush_deferred_releases() {
    let _ = DEFERRED.try_with(|d| d.borrow_mut().flush());
}

impl Clone for MessageRef {
    fn clone(&self) -> Self {
        self.acquire(1);
        MessageRef(self.0)
    }
}

impl Drop for MessageRef {
    fn drop(&mut self) {
        // SAFETY: this handle owns one reference and is gone after this.
        unsafe { MessageRef::release(self.0, 1) }
    }
}

impl Deref for MessageRef {
    type Target = Message;
    fn deref(&self) -> &Message {
        &self.block().message
    }
}

impl std::fmt::Debug for MessageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// Handles on one message for the subscribers of a fan-out: references are added in batches
/// of 1, 2, 4, … up to [`MAX_RESERVED`] (a single-subscriber publish adds exactly one), and the
/// ones not handed out are given back when this is dropped.
pub struct Handles<'a> {
    message: &'a MessageRef,
    /// References added and not yet handed out.
    reserved: usize,
    next_batch: usize,
}

impl Handles<'_> {
    /// One more handle on the message.
    pub fn next_ref(&mut self) -> MessageRef {
        if self.reserved == 0 {
            self.message.acquire(self.next_batch);
            self.reserved = self.next_batch;
            self.next_batch = (self.next_batch * 2).min(MAX_RESERVED);
        }
        self.reserved -= 1;
        MessageRef(self.message.0)
    }
}

impl Drop for Handles<'_> {
    fn drop(&mut self) {
        if self.reserved > 0 {
            // SAFETY: the `reserved` references were added by `next_ref` and never handed
            // out. (The borrowed handle still holds one, so this never recycles.)
            unsafe { MessageRef::release(self.message.0, self.reserved) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::message::{local_len, LOCAL_CAPACITY};

    fn message() -> MessageRef {
        MessageRef::new(|m| {
            m.topic = crate::codec::ByteString::from_static("t/1");
            m.payload = bytes::Bytes::from_static(b"payload");
            Ok::<(), ()>(())
        })
        .unwrap()
    }

    fn count(m: &MessageRef) -> usize {
        m.block().count.0.load(Ordering::Relaxed)
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
            let address = first.0;
            drop(first);
            assert_eq!(local_len(), 1, "kept by this thread");
            let second = MessageRef::new(|m| {
                assert!(
                    m.topic.is_empty() && m.payload.is_empty(),
                    "its buffers were let go before reuse"
                );
                Ok::<(), ()>(())
            })
            .unwrap();
            assert_eq!(second.0, address);
            assert_eq!(local_len(), 0);
        });
    }

    #[test]
    fn a_thread_keeps_at_most_its_share_and_the_rest_goes_to_the_shared_queue() {
        on_fresh_thread(|| {
            let held: Vec<MessageRef> = (0..LOCAL_CAPACITY + 8).map(|_| message()).collect();
            let before = messages().stats();
            drop(held);
            let after = messages().stats();
            assert_eq!(local_len(), LOCAL_CAPACITY);
            // At least: tests on other threads return envelopes to the same pool meanwhile.
            assert!(
                after.returns + after.discards - before.returns - before.discards
                    >= (LOCAL_CAPACITY + 8) as u64,
                "every envelope is counted back"
            );
        });
    }

    #[test]
    fn the_message_starts_the_line_pair_after_its_count() {
        let shared = message();
        let count_at = std::ptr::from_ref(&shared.block().count) as usize;
        let message_at = std::ptr::from_ref::<Message>(&shared) as usize;
        assert_eq!(count_at % 128, 0);
        assert_eq!(message_at, count_at + 128);
    }

    #[test]
    fn a_shared_message_is_recycled_only_by_its_last_reference() {
        on_fresh_thread(|| {
            let a = message();
            let b = a.clone();
            assert_eq!(count(&a), 2);
            drop(a);
            assert_eq!(local_len(), 0, "b still holds it");
            assert_eq!(&*b.topic, "t/1", "b still reads it");
            drop(b);
            assert_eq!(local_len(), 1);
        });
    }

    #[test]
    fn handles_add_references_in_growing_batches_and_give_back_the_unused() {
        on_fresh_thread(|| {
            let message = message();
            let mut taken = Vec::new();
            let mut handles = message.handles();
            taken.push(handles.next_ref());
            assert_eq!(count(&message), 2, "a single subscriber adds exactly one");
            taken.push(handles.next_ref());
            taken.push(handles.next_ref());
            assert_eq!(count(&message), 1 + 1 + 2, "then two at once");
            taken.push(handles.next_ref());
            assert_eq!(count(&message), 1 + 1 + 2 + 4, "then four");
            drop(handles);
            assert_eq!(
                count(&message),
                1 + 4,
                "the three never handed out are given back"
            );
            assert!(taken.iter().all(|h| MessageRef::ptr_eq(h, &message)));
            drop(message);
            assert_eq!(local_len(), 0);
            drop(taken);
            assert_eq!(local_len(), 1, "the last handed-out handle recycles it");
        });
    }

    #[test]
    fn handles_dropped_on_many_threads_recycle_the_message_exactly_once() {
        let message = message();
        let mut handles = message.handles();
        let mut taken: Vec<MessageRef> = (0..1000).map(|_| handles.next_ref()).collect();
        drop(handles);
        drop(message);
        let recycled: usize = std::thread::scope(|s| {
            let workers: Vec<_> = (0..8)
                .map(|_| {
                    let chunk: Vec<MessageRef> = taken.drain(..125.min(taken.len())).collect();
                    s.spawn(move || {
                        for handle in chunk {
                            assert_eq!(&*handle.payload, b"payload");
                            drop(handle);
                        }
                        // The last handle's thread keeps the envelope in its own cache.
                        local_len()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        assert_eq!(recycled, 1, "one message, recycled once");
    }

    #[test]
    fn references_given_up_later_are_subtracted_once_per_message_at_the_flush() {
        on_fresh_thread(|| {
            let message = message();
            let mut handles = message.handles();
            let taken: Vec<MessageRef> = (0..100).map(|_| handles.next_ref()).collect();
            drop(handles);
            let payloads: Vec<DeferredRef> = taken.into_iter().map(DeferredRef::from).collect();
            assert_eq!(
                &*payloads[0].payload, b"payload",
                "a deferred handle still reads"
            );
            drop(payloads);
            assert_eq!(count(&message), 101, "nothing subtracted yet");
            flush_deferred_releases();
            assert_eq!(count(&message), 1, "all hundred at once");
            drop(message);
            assert_eq!(local_len(), 1, "recycled by its last reference");
        });
    }

    #[test]
    fn more_messages_than_slots_are_each_released_exactly_once() {
        on_fresh_thread(|| {
            let messages: Vec<MessageRef> = (0..3 * DEFERRED_SLOTS).map(|_| message()).collect();
            for round in 0..3 {
                for m in &messages {
                    m.clone().release_later();
                }
                assert!(messages.iter().all(|m| count(m) <= 2 + round));
            }
            // Collisions gave some back early; the flush gives back the rest.
            flush_deferred_releases();
            assert!(messages.iter().all(|m| count(m) == 1));
        });
    }

    #[test]
    fn a_busy_thread_gives_deferred_references_up_without_going_idle() {
        on_fresh_thread(|| {
            let held = message();
            held.clone().release_later();
            assert_eq!(count(&held), 2, "deferred");
            let other = message();
            for _ in 0..FLUSH_EVERY {
                other.clone().release_later();
            }
            assert_eq!(
                count(&held),
                1,
                "given up after FLUSH_EVERY more, with no flush"
            );
        });
    }

    #[test]
    fn a_message_with_a_large_payload_is_given_up_at_once() {
        on_fresh_thread(|| {
            let large = MessageRef::new(|m| {
                m.payload = bytes::Bytes::from(vec![0u8; DEFER_MAX_PAYLOAD + 1]);
                Ok::<(), ()>(())
            })
            .unwrap();
            large.clone().release_later();
            assert_eq!(count(&large), 1);
        });
    }

    #[test]
    fn a_thread_that_ends_gives_up_what_it_deferred() {
        let message = message();
        let clones: Vec<MessageRef> = (0..10).map(|_| message.clone()).collect();
        std::thread::spawn(move || clones.into_iter().for_each(MessageRef::release_later))
            .join()
            .unwrap();
        assert_eq!(count(&message), 1);
    }

    #[test]
    fn a_failed_fill_returns_the_envelope_cleared() {
        on_fresh_thread(|| {
            let failed = MessageRef::new(|m| {
                m.payload = bytes::Bytes::from_static(b"half-made");
                Err::<(), &str>("cannot encode")
            });
            assert_eq!(failed.err(), Some("cannot encode"));
            assert_eq!(local_len(), 1);
            let next = message();
            assert_eq!(&*next.payload, b"payload");
        });
    }
}
