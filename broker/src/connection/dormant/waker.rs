//! A waker that is only a number: the token of a sleeping connection.
//!
//! Every sleeping connection registers a waker on its signal. A waker made from an `Arc`
//! would be an allocation of its own per sleeping connection (48 bytes with the allocator's
//! header, against a budget of 700 for the whole connection); this one carries the token in
//! its data word and allocates nothing.
#![allow(unsafe_code)]

use std::task::{RawWaker, RawWakerVTable, Waker};

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_raw, wake_raw, wake_raw, drop_raw);

fn clone_raw(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTABLE)
}

fn wake_raw(data: *const ()) {
    super::wake_token(data.addr());
}

fn drop_raw(_: *const ()) {}

/// A waker that calls `super::wake_token(token)` when woken.
pub(super) fn token_waker(token: usize) -> Waker {
    let data = std::ptr::without_provenance::<()>(token);
    // SAFETY: `Waker::from_raw` requires that the vtable's functions uphold the `RawWaker`
    // contract for `data`, and that the waker may be sent and shared across threads:
    // * `data` is never dereferenced: it is an integer in pointer form (no provenance), only
    //   read back with `addr()`; so every function is valid for any `data`, at any time, from
    //   any thread, and nothing needs freeing (`drop` does nothing).
    // * `clone` returns a `RawWaker` with the same data and vtable, which wakes the same token.
    // * `wake` and `wake_by_ref` call `wake_token`, safe code that is thread-safe (it takes a
    //   mutex) and does not unwind through the vtable in practice (it neither panics nor
    //   allocates under a lock it could re-enter; a panic would abort as any panic in `wake`).
    unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_waker_and_its_clones_carry_the_token() {
        let waker = token_waker(0xDEAD_BEEF_0000_0042);
        let clone = waker.clone();
        assert!(waker.will_wake(&clone));
        assert_eq!(clone.data().addr(), 0xDEAD_BEEF_0000_0042);
        assert!(!waker.will_wake(&token_waker(7)));
        // Waking a token no sleeper holds does nothing (and must not crash).
        clone.wake_by_ref();
        clone.wake();
        drop(waker);
    }
}
