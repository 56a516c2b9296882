//! Fan-out benchmarks: one PUBLISH with a 1 KiB payload to 1, 10, 100 and 1000 subscribers at
//! QoS 0, 1 and 2.
//!
//! `fanout/`: one operation is the publisher's side of one PUBLISH,
//! [`FanoutHarness::route_received`]: decode it in place from the publisher's read buffer
//! (its wire bytes put there beforehand, as a socket read leaves them), wrap it in a pooled
//! envelope, route it through the subscription tree and queue it on every matching session
//! (real sessions, real bounded queues) with its wire head encoded once per form: ready-to-write
//! bytes in every subscriber's queue. Publishes are timed in bursts of [`BURST`]; between
//! bursts, outside the timing, every subscriber's writer drains its queue
//! ([`FanoutHarness::write_all`]), so queues stay as short as a live broker keeps them.
//!
//! `fanout_write/`: one operation is the whole path, [`FanoutHarness::publish_once`]: the
//! above, then every subscriber's writer moves the message into flight and into its outbox
//! (the shared head copied and patched, the payload listed as a shared piece) and marks it
//! written as a completed `writev` would; for QoS 1 and 2 the acknowledgement is simulated by
//! emptying the in-flight window. Only the system calls are left out.
//!
//! Next to criterion's time per operation, each benchmark prints heap allocations per
//! operation of the whole path, measured with the counting allocator installed below. Run with:
//!
//! ```text
//! cargo bench -p ferrumq-benches --bench fanout
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use ferrumq_benches::fanout::FanoutHarness;
use ferrumq_benches::report_allocs;
use ferrumq_broker::alloc::CountingAllocator;
use ferrumq_broker::codec::QoS;

#[global_allocator]
static A: CountingAllocator = CountingAllocator;

const PAYLOAD: usize = 1024;

/// A benchmark group sized for operations of microseconds to milliseconds.
fn short_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    group
}

/// Publishes timed back to back in [`fanout`] before the subscribers' writers drain them.
const BURST: u64 = 16;

/// Every QoS and subscriber count the fan-out groups measure, with a fresh harness, the
/// benchmark's name (`qos{n}`) and its subscriber count.
fn setups() -> impl Iterator<Item = (FanoutHarness, String, usize)> {
    [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .flat_map(|qos| {
            [1usize, 10, 100, 1000].into_iter().map(move |subscribers| {
                let harness = FanoutHarness::new(subscribers, qos, PAYLOAD);
                (harness, format!("qos{}", qos.as_u8()), subscribers)
            })
        })
}

/// The publisher's side of a fan-out ([`FanoutHarness::route_received`]), timed alone.
fn fanout(c: &mut Criterion) {
    let mut group = short_group(c, "fanout");
    for (mut harness, name, subscribers) in setups() {
        let iters = (20_000 / subscribers as u64).max(20);
        report_allocs(&format!("fanout/{name}/{subscribers}"), iters, || {
            black_box(harness.publish_once());
        });
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_function(BenchmarkId::new(name, subscribers), |b| {
            b.iter_custom(|iters| route_in_bursts(&mut harness, iters))
        });
    }
    group.finish();
}

/// Time taken by `iters` [`FanoutHarness::route_received`] calls, in bursts of [`BURST`];
/// receiving the bytes and draining the queues happen outside the timing.
fn route_in_bursts(harness: &mut FanoutHarness, iters: u64) -> Duration {
    let mut timed = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let burst = BURST.min(iters - done);
        harness.receive(burst as usize);
        let start = Instant::now();
        for _ in 0..burst {
            black_box(harness.route_received());
        }
        timed += start.elapsed();
        black_box(harness.write_all());
        done += burst;
    }
    timed
}

/// The whole path of a fan-out, writers included ([`FanoutHarness::publish_once`]).
fn fanout_write(c: &mut Criterion) {
    let mut group = short_group(c, "fanout_write");
    for (mut harness, name, subscribers) in setups() {
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_function(BenchmarkId::new(name, subscribers), |b| {
            b.iter(|| black_box(harness.publish_once()))
        });
    }
    group.finish();
}

/// Messages per run in [`fanout_run`]: the most a connection routes together.
const RUN: usize = ferrumq_broker::server::MAX_RUN;

/// Fan-out of QoS 0 messages that arrive together, as from a publisher streaming to one topic:
/// one operation is [`FanoutHarness::publish_run`] with [`RUN`] PUBLISH packets (1 KiB
/// payloads) in one read: decode them all, route them as one run (the broker's connections do
/// the same with consecutive QoS 0 messages on one topic), then every subscriber moves its
/// [`RUN`] messages into its outbox as ready-to-write bytes in one collect and marks them
/// written. Throughput is counted in deliveries (messages × subscribers), so the per-element
/// time is the cost of one delivery.
fn fanout_run(c: &mut Criterion) {
    let mut group = short_group(c, "fanout_run");
    for subscribers in [1usize, 10, 100, 1000] {
        let mut harness = FanoutHarness::new(subscribers, QoS::AtMostOnce, PAYLOAD);
        let iters = (20_000 / (subscribers * RUN) as u64).max(10);
        report_allocs(&format!("fanout_run/qos0/{subscribers}"), iters, || {
            black_box(harness.publish_run(RUN));
        });
        group.throughput(Throughput::Elements((subscribers * RUN) as u64));
        group.bench_function(BenchmarkId::new(format!("qos0x{RUN}"), subscribers), |b| {
            b.iter(|| black_box(harness.publish_run(RUN)))
        });
    }
    group.finish();
}

criterion_group!(benches, fanout, fanout_write, fanout_run);
criterion_main!(benches);
