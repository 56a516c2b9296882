//! Fan-out benchmarks: one PUBLISH with a 1 KiB payload to 1, 10, 100 and 1000 subscribers at
//! QoS 0, 1 and 2.
//!
//! One operation is [`FanoutHarness::publish_once`]: copy the PUBLISH's wire bytes into the
//! publisher's warm read buffer and decode it in place, wrap it in a pooled message envelope,
//! route it through the subscription tree, queue it on every matching session (real sessions,
//! real bounded queues), then for every subscriber move it into flight and into that
//! connection's outbox as ready-to-write bytes (its own head plus the shared payload) and mark
//! them written as a completed `writev` would; for QoS 1 and 2 the subscriber's acknowledgement
//! is simulated by emptying its in-flight window. Only the system calls are left out.
//!
//! Next to criterion's time per operation, each benchmark prints heap allocations per
//! operation, measured with the counting allocator installed below. Run with:
//!
//! ```text
//! cargo bench -p ferrumq-benches --bench fanout
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrumq_benches::fanout::FanoutHarness;
use ferrumq_benches::report_allocs;
use ferrumq_broker::alloc::CountingAllocator;
use ferrumq_broker::codec::QoS;

#[global_allocator]
static A: CountingAllocator = CountingAllocator;

const PAYLOAD: usize = 1024;

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        for subscribers in [1usize, 10, 100, 1000] {
            let mut harness = FanoutHarness::new(subscribers, qos, PAYLOAD);
            let name = format!("qos{}", qos.as_u8());
            let iters = (20_000 / subscribers as u64).max(20);
            report_allocs(&format!("fanout/{name}/{subscribers}"), iters, || {
                black_box(harness.publish_once());
            });
            group.throughput(Throughput::Elements(subscribers as u64));
            group.bench_function(BenchmarkId::new(name, subscribers), |b| {
                b.iter(|| black_box(harness.publish_once()))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
