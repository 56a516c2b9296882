//! Exercises `ferrumq_broker::alloc` with the counting allocator installed as
//! this test binary's global allocator. Measurements use the per-thread view
//! (`alloc::count`), so they are exact even though the test harness runs
//! other tests on other threads at the same time.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use ferrumq_broker::alloc::{self, AllocStats, CountingAllocator};

#[global_allocator]
static A: CountingAllocator = CountingAllocator;

#[test]
fn allocator_is_installed() {
    assert!(alloc::is_installed());
}

#[test]
fn vec_with_capacity_is_one_allocation_of_the_exact_size() {
    let (v, stats) = alloc::count(|| Vec::<u64>::with_capacity(black_box(10)));
    assert_eq!(
        stats,
        AllocStats {
            allocations: 1,
            bytes_allocated: 10 * std::mem::size_of::<u64>() as u64,
            ..AllocStats::default()
        }
    );
    drop(v);
}

#[test]
fn zeroed_allocation_is_counted() {
    // `vec![0; n]` goes through `alloc_zeroed`.
    let (v, stats) = alloc::count(|| vec![0u8; black_box(64)]);
    assert_eq!(stats.allocations, 1);
    assert_eq!(stats.bytes_allocated, 64);
    drop(v);
}

#[test]
fn dropping_a_box_is_one_deallocation() {
    let b = black_box(Box::new([7u8; 32]));
    let ((), stats) = alloc::count(move || drop(b));
    assert_eq!(
        stats,
        AllocStats {
            deallocations: 1,
            bytes_freed: 32,
            ..AllocStats::default()
        }
    );
}

#[test]
fn closure_without_heap_use_counts_nothing() {
    let (sum, stats) = alloc::count(|| {
        let xs = black_box([3u64; 16]);
        xs.iter().sum::<u64>()
    });
    assert_eq!(sum, 48);
    assert_eq!(stats, AllocStats::default());
    assert_eq!(stats.allocating_calls(), 0);
}

#[test]
fn growing_a_vec_is_one_reallocation() {
    let mut v: Vec<u8> = Vec::with_capacity(8);
    let ((), stats) = alloc::count(|| v.reserve_exact(black_box(100)));
    assert_eq!(stats.reallocations, 1);
    assert_eq!(stats.allocations, 0);
    assert_eq!(stats.deallocations, 0);
    // realloc accounts the old block as freed and the new one as allocated.
    assert_eq!(stats.bytes_freed, 8);
    assert_eq!(stats.bytes_allocated, v.capacity() as u64);
    assert!(v.capacity() >= 100);
}

#[test]
fn since_gives_the_delta_between_snapshots() {
    let before = alloc::thread_snapshot();
    let v = black_box(vec![1u32; 4]);
    drop(v);
    let delta = alloc::thread_snapshot().since(&before);
    assert_eq!(delta.allocations, 1);
    assert_eq!(delta.deallocations, 1);
    assert_eq!(delta.bytes_allocated, 16);
    assert_eq!(delta.bytes_freed, 16);
    assert_eq!(delta.net_bytes(), 0);
}

#[test]
fn other_threads_show_in_the_process_view_but_not_in_this_thread() {
    const N: usize = 1000;
    let done = Arc::new(AtomicUsize::new(0));
    let go = Arc::new(AtomicBool::new(false));
    let worker = {
        let (done, go) = (Arc::clone(&done), Arc::clone(&go));
        std::thread::spawn(move || {
            while !go.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            for i in 0..N {
                drop(black_box(Box::new(i)));
                done.fetch_add(1, Ordering::Release);
            }
        })
    };

    let global_before = alloc::snapshot();
    // While measuring this thread, only wait (no heap use) for the worker's
    // N allocations: they must not leak into this thread's counts.
    let ((), mine) = alloc::count(|| {
        go.store(true, Ordering::Release);
        while done.load(Ordering::Acquire) < N {
            std::hint::spin_loop();
        }
    });
    let global = alloc::snapshot().since(&global_before);
    worker.join().unwrap();

    assert_eq!(mine, AllocStats::default());
    assert!(global.allocations >= N as u64, "{global:?}");
    assert!(global.deallocations >= N as u64, "{global:?}");
}

#[test]
fn freeing_on_another_thread_is_counted_there() {
    let (data, stats) = alloc::count(|| vec![0u8; 256]);
    assert_eq!(stats.allocations, 1);
    let freed = std::thread::spawn(move || alloc::count(move || drop(data)).1)
        .join()
        .unwrap();
    assert_eq!(freed.deallocations, 1);
    assert_eq!(freed.bytes_freed, 256);
}
