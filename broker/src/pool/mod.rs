//! Object pools for the message path.
//!
//! A [`Pool`] is a bounded, lock-free free list (crossbeam's `ArrayQueue`): `get` pops a
//! recycled object or makes a new one, and the [`Pooled`] handle it returns puts the object
//! back when dropped. Objects returned beyond the pool's capacity, or that [`Recycle`] says are
//! not worth keeping (grown too large, still shared), are freed and counted as discards.
//!
//! Ownership is enforced by types: the only way to give an object back is to drop its handle,
//! so using it after returning it, or returning it while a borrow of it is alive, does not
//! compile:
//!
//! ```compile_fail
//! use ferrumq_broker::pool::{Pool, Recycle};
//! let pool: Pool<Vec<u8>> = Pool::new("example", 4, Vec::new);
//! let buf = pool.get();
//! drop(buf);          // returned to the pool
//! let _ = buf.len();  // error: use of moved value
//! ```
//!
//! ```compile_fail
//! use ferrumq_broker::pool::{Pool, Recycle};
//! let pool: Pool<Vec<u8>> = Pool::new("example", 4, Vec::new);
//! let buf = pool.get();
//! let still_using: &Vec<u8> = &buf;
//! drop(buf);                 // error: cannot move out of `buf` because it is borrowed
//! let _ = still_using.len();
//! ```
//!
//! Shared buffers cannot be reused while a send points at them either: payloads and heads that
//! leave a buffer are `Bytes` views, and `BytesMut` only ever writes to memory it owns alone
//! (see [`Recycle`] for `BytesMut`, and the `pool` tests).

mod message;
mod shared;

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use bytes::BytesMut;
use crossbeam_queue::ArrayQueue;

pub use message::{messages, MessagePool, MESSAGE_POOL_CAPACITY};
pub use shared::{flush_deferred_releases, DeferredRef, Handles, MessageRef};

use crate::delivery::WriteBuffer;
use crate::router::Match;

/// Idle routing-result vectors kept: one per thread routing at once is enough; a few spare.
pub const ROUTING_POOL_CAPACITY: usize = 256;
/// Idle I/O buffers kept for connections that are between reads or writes.
pub const BUFFER_POOL_CAPACITY: usize = 1024;
/// Size of a new read or write buffer.
pub const BUFFER_SIZE: usize = 16 * 1024;

static ROUTING_RESULTS: LazyLock<Pool<Vec<Match>>> =
    LazyLock::new(|| Pool::new("routing_results", ROUTING_POOL_CAPACITY, Vec::new));
static READ_BUFFERS: LazyLock<Pool<BytesMut>> = LazyLock::new(|| {
    Pool::new("read_buffers", BUFFER_POOL_CAPACITY, || {
        BytesMut::with_capacity(BUFFER_SIZE)
    })
});
static WRITE_BUFFERS: LazyLock<Pool<Box<WriteBuffer>>> = LazyLock::new(|| {
    Pool::new("write_buffers", BUFFER_POOL_CAPACITY, || {
        Box::new(WriteBuffer::with_capacity(BUFFER_SIZE))
    })
});

/// Vectors that receive the subscriptions a topic matches.
pub fn routing_results() -> &'static Pool<Vec<Match>> {
    &ROUTING_RESULTS
}

/// Buffers a connection reads into while it has bytes to read.
pub fn read_buffers() -> &'static Pool<BytesMut> {
    &READ_BUFFERS
}

/// Buffers (with their lists of pieces) a connection encodes into while it has bytes to write.
pub fn write_buffers() -> &'static Pool<Box<WriteBuffer>> {
    &WRITE_BUFFERS
}

/// Every pool's counters, for the metrics endpoint.
pub fn all_stats() -> [PoolStats; 4] {
    [
        messages().stats(),
        routing_results().stats(),
        read_buffers().stats(),
        write_buffers().stats(),
    ]
}

/// How an object is made ready for its next user when it comes back to a pool.
pub trait Recycle {
    /// Resets the object. Returns false if it should be freed instead of kept.
    fn recycle(&mut self) -> bool;
}

impl<T> Recycle for Vec<T> {
    /// Cleared; kept unless it grew past 64 Ki elements (a one-off burst should not pin memory).
    fn recycle(&mut self) -> bool {
        self.clear();
        self.capacity() <= 64 * 1024
    }
}

/// Room a recycled buffer must offer without allocating.
pub const MIN_BUFFER_ROOM: usize = 4096;

impl Recycle for BytesMut {
    /// Cleared and kept only if it can offer [`MIN_BUFFER_ROOM`] bytes without allocating.
    /// Memory still shared with `Bytes` views in use (a queued payload, a write in progress) is
    /// never written again: a `BytesMut` writes only to the part of its memory it owns alone,
    /// and `try_reclaim` moves back to the front only when no view is left. A buffer without
    /// that room is dropped here; its memory lives on, untouched, until the last view goes.
    fn recycle(&mut self) -> bool {
        self.clear();
        self.capacity() <= 1024 * 1024 && self.try_reclaim(MIN_BUFFER_ROOM)
    }
}

/// Counters of one pool, a cache line per stripe, each thread counting in its own (see
/// [`crate::alloc::thread_stripe`]): one shared set was written by every get and put on every
/// core, and moving that line between cores was a good part of what a pool cost per message.
/// Relaxed atomics: statistics, ordering nothing. A reading sums the stripes.
#[derive(Debug, Default)]
struct Counters {
    stripes: [CounterStripe; crate::alloc::STRIPES],
}

#[derive(Debug, Default)]
#[repr(align(64))]
struct CounterStripe {
    gets: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    returns: AtomicU64,
    discards: AtomicU64,
}

impl Counters {
    /// The calling thread's stripe.
    fn local(&self) -> &CounterStripe {
        &self.stripes[crate::alloc::thread_stripe() % crate::alloc::STRIPES]
    }

    fn sum(&self, counter: impl Fn(&CounterStripe) -> &AtomicU64) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| counter(stripe).load(Ordering::Relaxed))
            .sum()
    }

    /// A point-in-time view, with the pool's own size and capacity.
    fn stats(&self, name: &'static str, size: usize, capacity: usize) -> PoolStats {
        PoolStats {
            name,
            gets: self.sum(|c| &c.gets),
            hits: self.sum(|c| &c.hits),
            misses: self.sum(|c| &c.misses),
            returns: self.sum(|c| &c.returns),
            discards: self.sum(|c| &c.discards),
            size,
            capacity,
        }
    }
}

/// A point-in-time view of a pool's counters, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    pub name: &'static str,
    pub gets: u64,
    pub hits: u64,
    pub misses: u64,
    pub returns: u64,
    pub discards: u64,
    /// Objects waiting in the pool now.
    pub size: usize,
    pub capacity: usize,
}

/// A bounded pool of `T`.
pub struct Pool<T: Recycle> {
    name: &'static str,
    free: ArrayQueue<T>,
    make: fn() -> T,
    counters: Counters,
}

impl<T: Recycle> Pool<T> {
    /// A pool keeping at most `capacity` idle objects, making new ones with `make`.
    pub fn new(name: &'static str, capacity: usize, make: fn() -> T) -> Pool<T> {
        Pool {
            name,
            free: ArrayQueue::new(capacity.max(1)),
            make,
            counters: Counters::default(),
        }
    }

    /// An object from the pool, or a new one when it is empty.
    pub fn get(&self) -> Pooled<'_, T> {
        Pooled {
            value: Some(self.take()),
            pool: self,
        }
    }

    /// Takes an object out for good (it will not return on its own); for objects whose
    /// lifetime is managed elsewhere, which hand it back with [`Pool::put`].
    pub fn take(&self) -> T {
        let counters = self.counters.local();
        counters.gets.fetch_add(1, Ordering::Relaxed);
        match self.free.pop() {
            Some(value) => {
                counters.hits.fetch_add(1, Ordering::Relaxed);
                value
            }
            None => {
                counters.misses.fetch_add(1, Ordering::Relaxed);
                (self.make)()
            }
        }
    }

    /// Gives an object back: recycled and kept, or freed if it should not be kept or the pool
    /// is full.
    pub fn put(&self, mut value: T) {
        let counters = self.counters.local();
        if value.recycle() && self.free.push(value).is_ok() {
            counters.returns.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.discards.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> PoolStats {
        self.counters
            .stats(self.name, self.free.len(), self.free.capacity())
    }
}

/// An object on loan from a pool; dropping it returns it.
pub struct Pooled<'p, T: Recycle> {
    /// Always `Some` until `drop` takes it.
    value: Option<T>,
    pool: &'p Pool<T>,
}

impl<T: Recycle> Deref for Pooled<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match &self.value {
            Some(value) => value,
            None => unreachable!("a Pooled value is only taken in drop"),
        }
    }
}

impl<T: Recycle> DerefMut for Pooled<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        match &mut self.value {
            Some(value) => value,
            None => unreachable!("a Pooled value is only taken in drop"),
        }
    }
}

impl<T: Recycle> Drop for Pooled<'_, T> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            self.pool.put(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_come_back_and_are_reused() {
        let pool: Pool<Vec<u32>> = Pool::new("t", 2, Vec::new);
        {
            let mut v = pool.get();
            v.reserve(100);
            v.push(1);
        }
        let v = pool.get();
        assert!(v.is_empty(), "recycled objects are cleared");
        assert!(v.capacity() >= 100, "and keep their memory");
        let s = pool.stats();
        assert_eq!(
            (s.gets, s.hits, s.misses, s.returns, s.discards),
            (2, 1, 1, 1, 0)
        );
    }

    #[test]
    fn returns_beyond_capacity_are_freed_and_counted() {
        let pool: Pool<Vec<u8>> = Pool::new("t", 1, Vec::new);
        let (a, b) = (pool.get(), pool.get());
        drop(a);
        drop(b);
        let s = pool.stats();
        assert_eq!((s.returns, s.discards, s.size, s.capacity), (1, 1, 1, 1));
    }

    #[test]
    fn a_buffer_still_shared_with_a_send_is_never_overwritten() {
        // The classic bug: reusing a buffer while a write still points at it. The view keeps
        // its bytes whether the pool reuses the buffer (writing only after them) or not.
        let pool: Pool<BytesMut> = Pool::new("t", 4, || BytesMut::with_capacity(16 * 1024));
        let mut buf = pool.get();
        buf.extend_from_slice(b"in flight");
        let sending = buf.split().freeze();
        drop(buf);
        let mut next = pool.get();
        next.extend_from_slice(&[b'x'; 8 * 1024]);
        assert_eq!(&sending[..], b"in flight");
    }

    #[test]
    fn a_shared_buffer_without_room_is_discarded_not_reused() {
        let pool: Pool<BytesMut> = Pool::new("t", 4, || BytesMut::with_capacity(8 * 1024));
        let mut buf = pool.get();
        buf.extend_from_slice(&[7u8; 8000]);
        let sending = buf.split().freeze();
        drop(buf);
        assert_eq!(pool.stats().discards, 1);
        let fresh = pool.get();
        assert_eq!(pool.stats().misses, 2, "a new buffer was made");
        drop(fresh);
        assert!(sending.iter().all(|b| *b == 7));
    }

    #[test]
    fn a_buffer_whose_views_are_gone_is_reused() {
        let pool: Pool<BytesMut> = Pool::new("t", 4, || BytesMut::with_capacity(16 * 1024));
        let mut buf = pool.get();
        buf.extend_from_slice(&[1u8; 15 * 1024]);
        drop(buf.split().freeze());
        drop(buf);
        let s = pool.stats();
        assert_eq!((s.returns, s.discards), (1, 0));
    }
}
