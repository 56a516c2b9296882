//! What the counting allocator costs: one allocation and its deallocation, through the system
//! allocator directly and through [`CountingAllocator`] (which calls the system allocator and
//! counts), for a small (64 B) and a buffer-sized (16 KiB) block. The difference is the price
//! every heap operation of the broker pays for the allocation metrics; the message path itself
//! makes none in steady state.
//!
//! One operation: `alloc` of the layout, a write to the first byte (so the block is really
//! used), `dealloc`. Run with:
//!
//! ```text
//! cargo bench -p ferrumq-benches --bench alloc
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ferrumq_broker::alloc::CountingAllocator;

#[global_allocator]
static A: CountingAllocator = CountingAllocator;

/// One allocate-touch-free round trip through `allocator`.
fn round_trip<G: GlobalAlloc>(allocator: &G, layout: Layout) {
    // SAFETY: `layout` has a non-zero size (the callers pass 64 and 16384 bytes); the pointer
    // is checked for null before it is written, the write is within the block, and the block
    // is freed once, by the allocator that allocated it, with the same layout.
    unsafe {
        let p = allocator.alloc(layout);
        assert!(!p.is_null(), "allocation failed");
        p.write(1);
        black_box(p);
        allocator.dealloc(p, layout);
    }
}

fn alloc(c: &mut Criterion) {
    let mut group = c.benchmark_group("alloc");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for size in [64usize, 16 * 1024] {
        let layout = Layout::from_size_align(size, 8).expect("valid layout");
        group.bench_function(BenchmarkId::new("system", size), |b| {
            b.iter(|| round_trip(&System, layout))
        });
        group.bench_function(BenchmarkId::new("counting", size), |b| {
            b.iter(|| round_trip(&CountingAllocator, layout))
        });
    }
    group.finish();
}

criterion_group!(benches, alloc);
criterion_main!(benches);
