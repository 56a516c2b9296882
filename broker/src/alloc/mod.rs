//! Counting global allocator, used to prove (in tests) and report (in
//! benchmarks) that the broker's message path does not touch the heap.
//!
//! A test or bench binary installs it once:
//!
//! ```
//! use ferrumq_broker::alloc::{self, CountingAllocator};
//!
//! #[global_allocator]
//! static A: CountingAllocator = CountingAllocator;
//!
//! fn main() {
//!     let (v, stats) = alloc::count(|| Vec::<u64>::with_capacity(10));
//!     assert_eq!(stats.allocations, 1);
//!     assert_eq!(stats.bytes_allocated, 10 * 8);
//!     drop(v);
//! }
//! ```
//!
//! # Two views of the counters
//!
//! * **Current thread** — [`thread_snapshot`] and [`count`]. Every thread has
//!   its own plain (non-atomic) counters, so a measurement on one thread is
//!   exact and deterministic no matter what other threads (the test harness,
//!   tokio workers, …) allocate meanwhile. Memory is attributed to the thread
//!   that called the allocator: freeing on thread B a buffer allocated on
//!   thread A counts as a deallocation on B. This is what tests and benches
//!   should use.
//! * **Whole process** — [`snapshot`]. Totals over every thread since the
//!   process started, kept in striped atomics (see below). Useful for
//!   metrics and for multi-threaded scenarios; not deterministic in tests,
//!   because other threads keep allocating.
//!
//! If [`CountingAllocator`] is not the `#[global_allocator]` of the running
//! binary, every counter stays at zero; [`is_installed`] tells.
//!
//! # Cost, and why it is built this way
//!
//! A single set of global atomic counters would put every allocating thread
//! on the same cache line, and each `malloc`/`free` would pay a contended
//! atomic read-modify-write. Instead each allocator call does:
//!
//! 1. plain `Cell<u64>` increments in a `const`-initialised thread-local
//!    (a few instructions; no atomics), for the per-thread view, and
//! 2. `Relaxed` `fetch_add`s on one of [`STRIPES`] cache-line-padded stripes
//!    of atomics, chosen per thread round-robin, for the process-wide view.
//!    With up to `STRIPES` threads each thread owns its stripe's cache line,
//!    so the atomics are uncontended; beyond that, threads share stripes but
//!    contention stays divided by `STRIPES`.
//!
//! `Relaxed` is enough: the counters are statistics, they order no other
//! memory. A process-wide [`snapshot`] sums the stripes one load at a time,
//! so it is not an instantaneous cut across counters while other threads
//! run, but every counter in it is monotonic from one snapshot to the next.
//!
//! # Accounting rules
//!
//! * `alloc` / `alloc_zeroed`: `allocations += 1`, `bytes_allocated += size`.
//! * `dealloc`: `deallocations += 1`, `bytes_freed += size`.
//! * `realloc`: `reallocations += 1`, `bytes_freed += old size`,
//!   `bytes_allocated += new size` (so `bytes_allocated - bytes_freed` stays
//!   the live heap size); it does not count as an allocation nor as a
//!   deallocation.
//! * Failed calls (null returned) are not counted.

mod allocator;
mod arenas;

pub use arenas::use_one_malloc_arena;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

pub use allocator::CountingAllocator;

/// Number of cache-line-padded stripes of the process-wide counters.
pub const STRIPES: usize = 16;

/// Allocator counters, either cumulative (from [`snapshot`] or
/// [`thread_snapshot`]) or a difference between two of them
/// ([`AllocStats::since`], [`count`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AllocStats {
    /// Successful `alloc` and `alloc_zeroed` calls.
    pub allocations: u64,
    /// `dealloc` calls.
    pub deallocations: u64,
    /// Successful `realloc` calls.
    pub reallocations: u64,
    /// Bytes requested by allocations plus the new sizes of reallocations.
    pub bytes_allocated: u64,
    /// Bytes released by deallocations plus the old sizes of reallocations.
    pub bytes_freed: u64,
}

impl AllocStats {
    /// The counts that happened between `earlier` and `self`.
    ///
    /// Each field saturates at zero, so mixing up the arguments (or the
    /// thread and process views) gives zeros rather than a wrapped number.
    #[must_use]
    pub fn since(&self, earlier: &AllocStats) -> AllocStats {
        AllocStats {
            allocations: self.allocations.saturating_sub(earlier.allocations),
            deallocations: self.deallocations.saturating_sub(earlier.deallocations),
            reallocations: self.reallocations.saturating_sub(earlier.reallocations),
            bytes_allocated: self.bytes_allocated.saturating_sub(earlier.bytes_allocated),
            bytes_freed: self.bytes_freed.saturating_sub(earlier.bytes_freed),
        }
    }

    /// Calls that may have obtained new memory: allocations plus
    /// reallocations. This is the number a zero-allocation path must keep
    /// at zero.
    #[must_use]
    pub fn allocating_calls(&self) -> u64 {
        self.allocations + self.reallocations
    }

    /// `bytes_allocated - bytes_freed`: growth of the live heap (negative if
    /// more was freed than allocated, e.g. on a thread that frees buffers
    /// another thread allocated).
    #[must_use]
    pub fn net_bytes(&self) -> i128 {
        i128::from(self.bytes_allocated) - i128::from(self.bytes_freed)
    }
}

/// Per-thread counters. Only `Cell<u64>`: no `Drop`, so the thread-local
/// below needs no destructor registration, and its `const` initialiser means
/// no lazy initialisation — touching it never allocates, which is what makes
/// it usable from inside the global allocator.
struct LocalCounters {
    allocations: Cell<u64>,
    deallocations: Cell<u64>,
    reallocations: Cell<u64>,
    bytes_allocated: Cell<u64>,
    bytes_freed: Cell<u64>,
    /// Index of this thread's stripe, or `usize::MAX` until first use.
    stripe: Cell<usize>,
}

thread_local! {
    static LOCAL: LocalCounters = const {
        LocalCounters {
            allocations: Cell::new(0),
            deallocations: Cell::new(0),
            reallocations: Cell::new(0),
            bytes_allocated: Cell::new(0),
            bytes_freed: Cell::new(0),
            stripe: Cell::new(usize::MAX),
        }
    };
}

/// One stripe of the process-wide counters, alone on its cache line(s).
/// 128-byte alignment covers the adjacent-line prefetcher on x86_64 and the
/// 128-byte lines of some aarch64 cores.
#[repr(align(128))]
struct Stripe {
    allocations: AtomicU64,
    deallocations: AtomicU64,
    reallocations: AtomicU64,
    bytes_allocated: AtomicU64,
    bytes_freed: AtomicU64,
}

impl Stripe {
    const fn new() -> Self {
        Stripe {
            allocations: AtomicU64::new(0),
            deallocations: AtomicU64::new(0),
            reallocations: AtomicU64::new(0),
            bytes_allocated: AtomicU64::new(0),
            bytes_freed: AtomicU64::new(0),
        }
    }
}

static GLOBAL: [Stripe; STRIPES] = [const { Stripe::new() }; STRIPES];
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

/// The stripe of the thread owning `local`, assigned round-robin on first use.
#[inline]
fn stripe_of(local: &LocalCounters) -> usize {
    let mut stripe = local.stripe.get();
    if stripe == usize::MAX {
        stripe = NEXT_STRIPE.fetch_add(1, Relaxed) % STRIPES;
        local.stripe.set(stripe);
    }
    stripe
}

/// This thread's stripe, in `0..STRIPES`: the one its allocator counters use. The pools'
/// counters use it too, so each thread keeps to one stripe index. (The latency histograms
/// need a stripe no other thread writes: `metrics::stripe`.)
pub fn thread_stripe() -> usize {
    LOCAL.try_with(stripe_of).unwrap_or(0)
}

/// Which kind of allocator call to record. Everything on the recording path
/// below is panic-free (wrapping arithmetic, `try_with`), because unwinding
/// out of a global allocator is undefined behaviour.
#[derive(Clone, Copy)]
enum Event {
    Alloc { size: usize },
    Dealloc { size: usize },
    Realloc { old: usize, new: usize },
}

#[inline]
fn bump(cell: &Cell<u64>, by: u64) {
    cell.set(cell.get().wrapping_add(by));
}

/// Records one allocator call in the current thread's counters and in its
/// stripe. Never allocates and never panics.
#[inline]
fn record(event: Event) {
    // `try_with` rather than `with`: it cannot panic. With a const,
    // drop-free thread-local it always succeeds on targets with native TLS;
    // elsewhere a call made while the runtime sets the slot up is skipped.
    let stripe = LOCAL
        .try_with(|local| {
            match event {
                Event::Alloc { size } => {
                    bump(&local.allocations, 1);
                    bump(&local.bytes_allocated, size as u64);
                }
                Event::Dealloc { size } => {
                    bump(&local.deallocations, 1);
                    bump(&local.bytes_freed, size as u64);
                }
                Event::Realloc { old, new } => {
                    bump(&local.reallocations, 1);
                    bump(&local.bytes_freed, old as u64);
                    bump(&local.bytes_allocated, new as u64);
                }
            }
            stripe_of(local)
        })
        .unwrap_or(0);
    let s = &GLOBAL[stripe % STRIPES];
    match event {
        Event::Alloc { size } => {
            s.allocations.fetch_add(1, Relaxed);
            s.bytes_allocated.fetch_add(size as u64, Relaxed);
        }
        Event::Dealloc { size } => {
            s.deallocations.fetch_add(1, Relaxed);
            s.bytes_freed.fetch_add(size as u64, Relaxed);
        }
        Event::Realloc { old, new } => {
            s.reallocations.fetch_add(1, Relaxed);
            s.bytes_freed.fetch_add(old as u64, Relaxed);
            s.bytes_allocated.fetch_add(new as u64, Relaxed);
        }
    }
}

/// Process-wide totals since start: the sum over every thread.
///
/// Not deterministic while other threads run; for measuring a piece of code
/// prefer [`count`] / [`thread_snapshot`].
#[must_use]
pub fn snapshot() -> AllocStats {
    let sum = |field: fn(&Stripe) -> &AtomicU64| {
        GLOBAL
            .iter()
            .fold(0u64, |acc, s| acc.wrapping_add(field(s).load(Relaxed)))
    };
    AllocStats {
        allocations: sum(|s| &s.allocations),
        deallocations: sum(|s| &s.deallocations),
        reallocations: sum(|s| &s.reallocations),
        bytes_allocated: sum(|s| &s.bytes_allocated),
        bytes_freed: sum(|s| &s.bytes_freed),
    }
}

/// Totals of the calling thread since it started (exact: no other thread
/// writes these counters).
#[must_use]
pub fn thread_snapshot() -> AllocStats {
    LOCAL
        .try_with(|l| AllocStats {
            allocations: l.allocations.get(),
            deallocations: l.deallocations.get(),
            reallocations: l.reallocations.get(),
            bytes_allocated: l.bytes_allocated.get(),
            bytes_freed: l.bytes_freed.get(),
        })
        .unwrap_or_default()
}

/// Runs `f` on the current thread and returns its result with the allocator
/// calls it made on this thread (calls made by other threads, including
/// threads `f` spawns, are not included).
///
/// The returned value is moved out of the measured region, so dropping it
/// is not counted; measure the drop separately if it matters.
pub fn count<R>(f: impl FnOnce() -> R) -> (R, AllocStats) {
    let before = thread_snapshot();
    let result = f();
    let after = thread_snapshot();
    (result, after.since(&before))
}

/// Whether [`CountingAllocator`] is this binary's global allocator, i.e.
/// whether the counters mean anything. Checked by making one small
/// allocation and seeing whether this thread's counter moved.
#[must_use]
pub fn is_installed() -> bool {
    let (_, stats) = count(|| drop(std::hint::black_box(Box::new(0u8))));
    stats.allocations > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_saturating_delta() {
        let earlier = AllocStats {
            allocations: 1,
            deallocations: 2,
            reallocations: 3,
            bytes_allocated: 40,
            bytes_freed: 50,
        };
        let later = AllocStats {
            allocations: 4,
            deallocations: 2,
            reallocations: 5,
            bytes_allocated: 100,
            bytes_freed: 60,
        };
        let delta = later.since(&earlier);
        assert_eq!(
            delta,
            AllocStats {
                allocations: 3,
                deallocations: 0,
                reallocations: 2,
                bytes_allocated: 60,
                bytes_freed: 10,
            }
        );
        assert_eq!(delta.allocating_calls(), 5);
        assert_eq!(delta.net_bytes(), 50);
        // Reversed arguments saturate instead of wrapping.
        assert_eq!(earlier.since(&later).allocations, 0);
    }

    #[test]
    fn stripes_are_cache_line_padded() {
        assert!(std::mem::align_of::<Stripe>() >= 128);
        assert_eq!(std::mem::size_of::<Stripe>() % 128, 0);
    }

    #[test]
    fn recording_updates_thread_and_process_views() {
        // The library's own test binary does not install the allocator, so
        // drive the recorder directly.
        let (thread_before, global_before) = (thread_snapshot(), snapshot());
        record(Event::Alloc { size: 24 });
        record(Event::Realloc { old: 24, new: 48 });
        record(Event::Dealloc { size: 48 });
        let thread = thread_snapshot().since(&thread_before);
        assert_eq!(
            thread,
            AllocStats {
                allocations: 1,
                deallocations: 1,
                reallocations: 1,
                bytes_allocated: 72,
                bytes_freed: 72,
            }
        );
        let global = snapshot().since(&global_before);
        assert!(global.allocations >= 1 && global.reallocations >= 1);
        assert!(global.bytes_allocated >= 72 && global.bytes_freed >= 72);
    }
}
