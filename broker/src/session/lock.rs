//! The lock on a session's state: one atomic instruction per delivery instead of two, and a
//! byte publishers may read without taking it.
//!
//! Every delivery of a fan-out takes its subscriber's session lock, so a fan-out to a thousand
//! subscribers takes a thousand locks in a row. A locked x86 instruction waits for every
//! earlier store to reach the cache, and no later load starts before it completes, which
//! makes it the costliest step of a delivery. A parking mutex has two per lock: the
//! compare-and-swap that takes it and another that releases it (to learn whether a waiter must
//! be woken). This lock is released with a plain store. Replacing the one with the other took
//! a QoS 0 fan-out to 1000 subscribers from 21.7 to 17.2 µs per PUBLISH
//! (`cargo bench -p ferrumq-benches --bench fanout -- fanout/qos0/1000`).
//!
//! The spinning is bounded by what the lock guards: every critical section is a few hundred
//! nanoseconds to a few microseconds of work on memory (queueing a message, a connection
//! collecting one batch of at most 256 messages, copying a session for the state file). None
//! does I/O or waits, and the guard cannot be held across an `.await` in a task (it is not
//! `Send`), so a waiter never spins on a holder that is itself waiting. A waiter yields its
//! thread between attempts, so a holder that the kernel preempted gets the core back rather
//! than competing with a spinning waiter.
//!
//! The lock word's padding holds a [`hint`] byte: the session keeps its attached connection's
//! protocol level there, so a publisher can encode a message's head for that form before it
//! takes the lock (work after the locked instruction cannot overlap it). The byte costs no
//! memory: a field of its own grew every session's allocation into the next size class
//! (+100 bytes per idle connection, `loadgen --scenario storm`).

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// A mutual-exclusion lock released by a plain store; see the module documentation.
pub type SessionLock<T> = lock_api::Mutex<RawSessionLock, T>;

/// Access to the locked value until dropped. Not `Send`: a task cannot hold it across an
/// `.await` (where it could move to another thread while others spin on it).
pub type SessionGuard<'a, T> = lock_api::MutexGuard<'a, RawSessionLock, T>;

/// The lock word of a [`SessionLock`], and the [`hint`] byte beside it.
#[derive(Debug)]
pub struct RawSessionLock {
    locked: AtomicBool,
    hint: AtomicU8,
}

// SAFETY: `lock_api` requires that the lock gives mutual exclusion, with `lock`/`try_lock`
// acquiring and `unlock` releasing it: `locked` goes from false to true only by a successful
// compare-exchange (Acquire), which at most one thread can win while it is true, and back to
// false only in `unlock`, which `lock_api` calls only from the guard of the thread that holds
// it (Release, so the holder's writes happen before the next holder's reads). The guard
// marker makes guards `!Send`, so they are unlocked on the thread that locked.
#[allow(unsafe_code)]
unsafe impl lock_api::RawMutex for RawSessionLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: RawSessionLock = RawSessionLock {
        locked: AtomicBool::new(false),
        hint: AtomicU8::new(0),
    };

    type GuardMarker = lock_api::GuardNoSend;

    #[inline]
    fn lock(&self) {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            // Wait with plain loads, which do not take the line from the holder.
            while self.locked.load(Ordering::Relaxed) {
                std::thread::yield_now();
            }
        }
    }

    #[inline]
    fn try_lock(&self) -> bool {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[inline]
    unsafe fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

/// The byte kept beside `lock`'s lock word, readable and writable without the lock. Its
/// meaning is the owner's; nothing it holds may be needed for correctness, since it is read
/// without the lock that orders the state it describes.
pub fn hint<T>(lock: &SessionLock<T>) -> &AtomicU8 {
    // SAFETY: `raw` is unsafe because locking or unlocking through the raw lock could break
    // the guards' invariants; this only borrows the `hint` atomic, which no lock operation
    // reads or writes.
    #[allow(unsafe_code)]
    let raw = unsafe { lock.raw() };
    &raw.hint
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn threads_never_hold_the_lock_at_once() {
        // Each increment is a read and a write with a yield between them: without mutual
        // exclusion two threads interleave there and increments are lost.
        let lock = Arc::new(SessionLock::new(0u64));
        let (threads, rounds) = (4, 2_000);
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let lock = Arc::clone(&lock);
                std::thread::spawn(move || {
                    for _ in 0..rounds {
                        let mut guard = lock.lock();
                        let seen = *guard;
                        if seen % 64 == 0 {
                            std::thread::yield_now();
                        }
                        *guard = seen + 1;
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(*lock.lock(), threads * rounds);
    }

    #[test]
    fn a_held_lock_is_not_taken_again_and_is_free_once_dropped() {
        let lock = SessionLock::new(String::from("state"));
        let guard = lock.lock();
        assert!(lock.try_lock().is_none());
        drop(guard);
        lock.lock().push('!');
        assert_eq!(*lock.lock(), "state!");
    }

    #[test]
    fn the_hint_is_kept_through_locking_and_costs_no_space() {
        let lock = SessionLock::new(7u64);
        hint(&lock).store(5, Ordering::Relaxed);
        {
            let _guard = lock.lock();
            assert_eq!(
                hint(&lock).load(Ordering::Relaxed),
                5,
                "readable while held"
            );
            hint(&lock).store(4, Ordering::Relaxed);
        }
        assert_eq!(hint(&lock).load(Ordering::Relaxed), 4);
        assert_eq!(*lock.lock(), 7);
        assert_eq!(
            std::mem::size_of::<SessionLock<u64>>(),
            2 * std::mem::size_of::<u64>()
        );
    }

    /// Compiles only while the guard is not `Send`: with `SessionGuard: Send`, both impls
    /// below apply and the call is ambiguous.
    #[test]
    fn the_guard_cannot_cross_threads() {
        trait AmbiguousIfSend<A> {
            fn check() {}
        }
        impl<T: ?Sized> AmbiguousIfSend<()> for T {}
        impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}
        <SessionGuard<'static, u64> as AmbiguousIfSend<_>>::check();
    }
}
