//! Shared helpers for FerrumQ benchmarks.
//!
//! Criterion reports time per operation; [`report_allocs`] adds the other
//! number the broker's design cares about, heap allocations and bytes per
//! operation, measured with [`ferrumq_broker::alloc`]. A bench binary must
//! install the counting allocator for the numbers to be real:
//!
//! ```
//! use ferrumq_benches::report_allocs;
//! use ferrumq_broker::alloc::CountingAllocator;
//!
//! #[global_allocator]
//! static A: CountingAllocator = CountingAllocator;
//!
//! fn main() {
//!     let mut buf = Vec::with_capacity(64);
//!     let r = report_allocs("reuse_buffer", 1_000, || {
//!         buf.clear();
//!         buf.extend_from_slice(b"hello");
//!     });
//!     assert_eq!(r.allocs_per_op(), 0.0);
//! }
//! ```

pub mod fanout;
pub mod publish_scan;

use ferrumq_broker::alloc::{self, AllocStats};

/// Calls made before measuring, so one-time work (lazy initialisation,
/// buffers growing to their steady-state size) is not charged to every
/// operation.
pub const WARM_UP_ITERS: u64 = 100;

/// Allocation counts of `iters` runs of a measured closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocReport {
    /// Number of measured runs.
    pub iters: u64,
    /// Allocator calls made by the current thread over all measured runs.
    pub stats: AllocStats,
    /// Whether the counting allocator was installed (if not, every count is
    /// zero and meaningless).
    pub installed: bool,
}

impl AllocReport {
    /// Allocating calls (allocations + reallocations) per operation.
    pub fn allocs_per_op(&self) -> f64 {
        per_op(self.stats.allocating_calls(), self.iters)
    }

    /// Bytes requested from the allocator per operation.
    pub fn bytes_per_op(&self) -> f64 {
        per_op(self.stats.bytes_allocated, self.iters)
    }

    /// Deallocations per operation.
    pub fn frees_per_op(&self) -> f64 {
        per_op(self.stats.deallocations, self.iters)
    }
}

fn per_op(total: u64, iters: u64) -> f64 {
    if iters == 0 {
        0.0
    } else {
        total as f64 / iters as f64
    }
}

impl std::fmt::Display for AllocReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.installed {
            return write!(
                f,
                "allocation counts unavailable (CountingAllocator is not the #[global_allocator])"
            );
        }
        write!(
            f,
            "{} allocs/op, {} bytes/op ({} allocations, {} reallocations, {} deallocations over {} iters)",
            fmt_num(self.allocs_per_op()),
            fmt_num(self.bytes_per_op()),
            self.stats.allocations,
            self.stats.reallocations,
            self.stats.deallocations,
            self.iters,
        )
    }
}

/// Whole numbers print without decimals, others with two.
fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// Measures heap use of `f` without printing: runs it [`WARM_UP_ITERS`]
/// times unmeasured, then `iters` times counting the allocator calls made
/// on the current thread (work `f` hands to other threads is not counted).
pub fn measure_allocs(iters: u64, mut f: impl FnMut()) -> AllocReport {
    for _ in 0..WARM_UP_ITERS {
        f();
    }
    let ((), stats) = alloc::count(|| {
        for _ in 0..iters {
            f();
        }
    });
    AllocReport {
        iters,
        stats,
        installed: alloc::is_installed(),
    }
}

/// Like [`measure_allocs`], and prints `name: X allocs/op, Y bytes/op (...)`
/// to stdout, next to criterion's timing output.
pub fn report_allocs(name: &str, iters: u64, f: impl FnMut()) -> AllocReport {
    let report = measure_allocs(iters, f);
    println!("{name}: {report}");
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    // The lib's unit-test binary is a binary of its own, so it can install
    // the allocator and test the helper for real.
    #[global_allocator]
    static A: ferrumq_broker::alloc::CountingAllocator = ferrumq_broker::alloc::CountingAllocator;

    #[test]
    fn counts_one_allocation_per_op() {
        let r = measure_allocs(50, || drop(black_box(Vec::<u32>::with_capacity(4))));
        assert!(r.installed);
        assert_eq!(r.iters, 50);
        assert_eq!(r.stats.allocations, 50);
        assert_eq!(r.stats.deallocations, 50);
        assert_eq!(r.allocs_per_op(), 1.0);
        assert_eq!(r.bytes_per_op(), 16.0);
        assert_eq!(
            r.to_string(),
            "1 allocs/op, 16 bytes/op (50 allocations, 0 reallocations, 50 deallocations over 50 iters)"
        );
    }

    #[test]
    fn warm_up_is_not_charged() {
        // Grows once during warm-up, then reuses its buffer: zero per op.
        let mut buf: Vec<u8> = Vec::new();
        let r = report_allocs("reuse", 1000, || {
            buf.clear();
            buf.extend_from_slice(black_box(b"0123456789"));
        });
        assert_eq!(r.stats, AllocStats::default());
        assert_eq!(r.allocs_per_op(), 0.0);
    }

    #[test]
    fn zero_iters_is_not_a_division_by_zero() {
        let r = measure_allocs(0, || {});
        assert_eq!(r.allocs_per_op(), 0.0);
        assert_eq!(r.bytes_per_op(), 0.0);
    }
}
