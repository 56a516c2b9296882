//! Counter stripes that one thread each writes alone, so a hot counter is updated with a plain
//! load and store instead of an atomic read-modify-write.
//!
//! A `lock`ed addition costs about twenty cycles even on a line no other core touches; the
//! delivery-latency histogram made two per delivered message. A thread claims one of
//! [`OWNED_STRIPES`] stripe indices the first time it records and gives it back when it ends;
//! while it holds the index no other thread writes that stripe, so a relaxed load followed by a
//! relaxed store loses nothing, and a scrape on another thread still reads every value
//! atomically. Threads beyond that many share [`SHARED_STRIPE`] with atomic additions.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Stripes that are claimed by one thread at a time (at most 64: one bit each below).
pub const OWNED_STRIPES: usize = 16;
/// The stripe every thread without a claimed one adds to atomically.
pub const SHARED_STRIPE: usize = OWNED_STRIPES;
/// Stripes a striped counter needs: the owned ones and the shared one.
pub const STRIPES: usize = OWNED_STRIPES + 1;

const _: () = assert!(OWNED_STRIPES <= 64);

/// Claimed stripe indices, one bit each.
static CLAIMED: AtomicU64 = AtomicU64::new(0);

const UNCLAIMED: usize = usize::MAX;

/// This thread's stripe index; gives it back when the thread ends.
struct Claim(Cell<usize>);

impl Drop for Claim {
    fn drop(&mut self) {
        let index = self.0.get();
        if index < OWNED_STRIPES {
            // Release: this thread's last stores to the stripe happen before the next owner's
            // first load (it claims with Acquire).
            CLAIMED.fetch_and(!(1 << index), Ordering::Release);
        }
    }
}

thread_local! {
    static CLAIM: Claim = const { Claim(Cell::new(UNCLAIMED)) };
}

/// Where this thread records: its own stripe, or the shared one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writer(usize);

impl Writer {
    /// This thread's writer, claiming a stripe the first time.
    #[inline]
    pub fn current() -> Writer {
        CLAIM
            .try_with(|claim| {
                let index = claim.0.get();
                if index != UNCLAIMED {
                    return Writer(index);
                }
                let index = claim_free().unwrap_or(SHARED_STRIPE);
                claim.0.set(index);
                Writer(index)
            })
            // A thread being torn down has given its stripe back.
            .unwrap_or(Writer(SHARED_STRIPE))
    }

    /// The stripe to write.
    pub fn index(self) -> usize {
        self.0
    }

    /// Adds `n` to `counter` of this writer's stripe.
    #[inline]
    pub fn add(self, counter: &AtomicU64, n: u64) {
        if self.0 == SHARED_STRIPE {
            counter.fetch_add(n, Ordering::Relaxed);
        } else {
            // The stripe's only writer: nothing can come between the load and the store.
            counter.store(
                counter.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
        }
    }
}

fn claim_free() -> Option<usize> {
    let mut claimed = CLAIMED.load(Ordering::Acquire);
    loop {
        let index = (!claimed).trailing_zeros() as usize;
        if index >= OWNED_STRIPES {
            return None;
        }
        match CLAIMED.compare_exchange_weak(
            claimed,
            claimed | (1 << index),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return Some(index),
            Err(now) => claimed = now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Barrier, Mutex};

    /// These tests claim every stripe at once; the other waits meanwhile.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn live_threads_never_share_an_owned_stripe_and_none_is_lost() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // More threads than stripes, all alive at once: each owned stripe has one writer,
        // the rest share the shared stripe, and every addition is counted.
        let counters: Vec<AtomicU64> = (0..STRIPES).map(|_| AtomicU64::new(0)).collect();
        let threads = OWNED_STRIPES + 8;
        let barrier = Barrier::new(threads);
        let per_thread = 10_000u64;
        let writers: Vec<Writer> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let writer = Writer::current();
                        barrier.wait();
                        for _ in 0..per_thread {
                            writer.add(&counters[writer.index()], 1);
                        }
                        barrier.wait();
                        writer
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let total: u64 = counters.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        assert_eq!(total, per_thread * threads as u64);
        let mut owned: Vec<usize> = writers
            .iter()
            .map(|w| w.index())
            .filter(|&i| i != SHARED_STRIPE)
            .collect();
        let claimed = owned.len();
        owned.sort_unstable();
        owned.dedup();
        assert_eq!(owned.len(), claimed, "no owned stripe had two live writers");
    }

    #[test]
    fn a_finished_thread_gives_its_stripe_back() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // Far more threads than stripes, one after another: were stripes not given back,
        // every thread after the first few would be left with the shared one.
        let indices: Vec<usize> = (0..4 * OWNED_STRIPES)
            .map(|_| {
                std::thread::spawn(|| Writer::current().index())
                    .join()
                    .unwrap()
            })
            .collect();
        assert_ne!(indices.last(), Some(&SHARED_STRIPE), "{indices:?}");
    }
}
