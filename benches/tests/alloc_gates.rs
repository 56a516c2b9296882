//! Allocation gates (issue #4): after warm-up, the message path allocates nothing. Allocation
//! counts are deterministic (the counting allocator counts per thread), so these are tests,
//! not benchmarks.

use ferrumq_benches::fanout::FanoutHarness;
use ferrumq_broker::alloc::{self, CountingAllocator};
use ferrumq_broker::codec::QoS;

#[global_allocator]
static A: CountingAllocator = CountingAllocator;

/// The pools are process-wide, so tests running at the same time on other threads would take
/// envelopes and vectors from under each other and make this thread allocate. One at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `warm` operations, then counts the allocating calls of `measured` more.
fn allocations_after_warm_up(harness: &mut FanoutHarness, warm: usize, measured: usize) -> u64 {
    for _ in 0..warm {
        harness.publish_once();
    }
    let ((), stats) = alloc::count(|| {
        for _ in 0..measured {
            assert!(harness.publish_once() > 0);
        }
    });
    stats.allocating_calls()
}

#[test]
fn counting_allocator_is_installed() {
    assert!(alloc::is_installed());
}

#[test]
fn qos0_fanout_to_1000_subscribers_allocates_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut harness = FanoutHarness::new(1000, QoS::AtMostOnce, 1024);
    assert_eq!(allocations_after_warm_up(&mut harness, 50, 50), 0);
}

#[test]
fn single_subscriber_publish_allocates_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut harness = FanoutHarness::new(1, QoS::AtMostOnce, 1024);
    assert_eq!(allocations_after_warm_up(&mut harness, 200, 1000), 0);
}

#[test]
fn qos1_round_trip_allocates_nothing_once_the_inflight_window_is_warm() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut harness = FanoutHarness::new(1, QoS::AtLeastOnce, 1024);
    assert_eq!(allocations_after_warm_up(&mut harness, 200, 1000), 0);
    let mut harness = FanoutHarness::new(100, QoS::AtLeastOnce, 1024);
    assert_eq!(allocations_after_warm_up(&mut harness, 50, 50), 0);
}

#[test]
fn qos2_fanout_allocates_nothing_once_warm() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut harness = FanoutHarness::new(100, QoS::ExactlyOnce, 1024);
    assert_eq!(allocations_after_warm_up(&mut harness, 50, 50), 0);
}

#[test]
fn a_run_of_qos0_publishes_to_1000_subscribers_allocates_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut harness = FanoutHarness::new(1000, QoS::AtMostOnce, 1024);
    let run = ferrumq_broker::server::MAX_RUN;
    for _ in 0..10 {
        harness.publish_run(run);
    }
    let (ready, stats) = alloc::count(|| harness.publish_run(run));
    assert!(ready > 0);
    assert_eq!(stats.allocating_calls(), 0);
}
