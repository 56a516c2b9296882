//! The lock on a session's state: one atomic instruction per delivery instead of two.
//!
//! Every delivery of a fan-out takes its subscriber's session lock, so a fan-out to a thousand
//! subscribers takes a thousand locks in a row. A locked x86 instruction waits for every
//! earlier store to reach the cache, which makes it the costliest step of a delivery. A
//! parking mutex has two per lock: the compare-and-swap that takes it and another that
//! releases it (to learn whether a waiter must be woken). A spin lock is released with a plain
//! store. Replacing the one with the other took a QoS 0 fan-out to 1000 subscribers from 21.7
//! to 17.2 µs per PUBLISH (`cargo bench -p ferrumq-benches --bench fanout -- fanout/qos0/1000`).
//!
//! The spinning is bounded by what the lock guards: every critical section is a few
//! hundred nanoseconds to a few microseconds of work on memory (queueing a message, a
//! connection collecting one batch of at most 256 messages, copying a session for the state
//! file). None does I/O or waits, and the guard cannot be held across an `.await` in a task
//! (it is not `Send`), so a waiter never spins on a holder that is itself waiting. A waiter
//! yields its thread between attempts, so a holder that the kernel preempted gets the core
//! back rather than competing with a spinning waiter.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use spin::mutex::{SpinMutex, SpinMutexGuard};
use spin::relax::Yield;

/// A mutual-exclusion lock released by a plain store; see the module documentation.
pub struct SessionLock<T>(SpinMutex<T, Yield>);

/// Access to the locked value until dropped. Not `Send`: a task cannot hold it across an
/// `.await` (where it could be moved to another thread while others spin on it).
pub struct SessionGuard<'a, T> {
    guard: SpinMutexGuard<'a, T>,
    not_send: PhantomData<*const ()>,
}

impl<T> SessionLock<T> {
    pub const fn new(value: T) -> SessionLock<T> {
        SessionLock(SpinMutex::new(value))
    }

    /// Waits until the lock is free, then takes it.
    #[inline]
    pub fn lock(&self) -> SessionGuard<'_, T> {
        SessionGuard {
            guard: self.0.lock(),
            not_send: PhantomData,
        }
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<SessionGuard<'_, T>> {
        self.0.try_lock().map(|guard| SessionGuard {
            guard,
            not_send: PhantomData,
        })
    }
}

impl<T> Deref for SessionGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for SessionGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T: fmt::Debug> fmt::Debug for SessionLock<T> {
    /// The value if the lock is free now; never waits (a `Debug` of a session held by its
    /// own thread must not deadlock).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Some(guard) => f.debug_tuple("SessionLock").field(&*guard).finish(),
            None => f.write_str("SessionLock(<locked>)"),
        }
    }
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
        assert_eq!(format!("{lock:?}"), "SessionLock(<locked>)");
        drop(guard);
        assert_eq!(format!("{lock:?}"), "SessionLock(\"state\")");
        lock.lock().push('!');
        assert_eq!(*lock.lock(), "state!");
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
