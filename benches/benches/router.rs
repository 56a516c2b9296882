//! Routing benchmarks: [`SubscriptionTree::matches`] against 10K, 100K and 1M subscriptions,
//! and subscribe / unsubscribe in a 10K tree.
//!
//! The topic space models a fleet: `site/{s}/device/{d}/{metric}` with 100 devices per site,
//! and one client per subscription. Subscription `i` is on site `i / 100`, device `i % 100`;
//! its filter depends on the set:
//!
//! - `exact`: `site/{s}/device/{d}/temp`
//! - `plus`: `site/{s}/device/{d}/+` (even `i`) or `site/{s}/+/{d}/temp` (odd `i`), so both
//!   a trailing and an inner '+' branch are walked
//! - `hash`: `site/{s}/device/{d}/#`
//! - `mixed`: 70% exact, 20% plus (both kinds), 10% hash
//!
//! Every published topic is `site/{s}/device/{d}/temp` for an existing device and is matched
//! by exactly one subscription, so the figures compare tree sizes and filter shapes, not
//! fan-out. Two access patterns: `hot` publishes the same topic every time (the tree's path is
//! in cache: the compute cost), `scattered` cycles through 4096 topics spread over the whole
//! tree (most nodes come from L3 or memory, as with real traffic). `match_fanout` measures
//! fan-out separately: 1000 clients on one topic, through one filter and through two
//! overlapping ones (which triggers the per-client merge).
//!
//! One `match` operation is: one `matches` call (with a publisher, so No Local is checked)
//! into a reused output vec, then clear (dropping the `Match`es). One `visit` operation is one
//! `visit_matches` call, the borrowing form the broker routes with, whose visitor reads each
//! delivery's QoS. Allocations per operation are
//! printed next to criterion's timing by `ferrumq_benches::report_allocs`.
//!
//! Time is the benchmark thread's CPU time ([`CpuTime`]), so that figures taken on a shared,
//! loaded machine are not inflated by time spent descheduled; set `ROUTER_BENCH_CLOCK=wall`
//! for wall-clock time. `ROUTER_BENCH_SIZES=10000,100000` restricts the tree sizes.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
};
use ferrumq_benches::report_allocs;
use ferrumq_broker::alloc::{self, CountingAllocator};
use ferrumq_broker::codec::{QoS, SubscriptionOptions};
use ferrumq_broker::router::{
    ClientId, Match, MatchRef, SharedTree, Subscription, SubscriptionTree,
};

#[global_allocator]
static A: CountingAllocator = CountingAllocator;

const DEVICES_PER_SITE: usize = 100;
const SCATTERED_TOPICS: usize = 4096;
/// Operations counted for allocations (divided by the deliveries per operation).
const ALLOC_ITERS: u64 = 10_000;

/// CPU time of the calling thread, read from `/proc/thread-self/schedstat` (Linux; no `unsafe`
/// or extra dependency needed). The kernel refreshes that counter at scheduler ticks and
/// context switches, so each reading may lag by up to a tick; the lag is as likely at the
/// start of a sample as at its end, so it adds noise over criterion's samples, not bias.
/// Falls back to wall-clock time where the file is unavailable.
struct CpuTime {
    wall: bool,
}

impl CpuTime {
    fn new() -> CpuTime {
        let forced = std::env::var("ROUTER_BENCH_CLOCK").is_ok_and(|v| v == "wall");
        CpuTime {
            wall: forced || thread_cpu().is_none(),
        }
    }

    fn now(&self) -> Duration {
        if !self.wall {
            if let Some(t) = thread_cpu() {
                return t;
            }
        }
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        EPOCH.get_or_init(Instant::now).elapsed()
    }
}

fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

impl Measurement for CpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        self.now()
    }
    fn end(&self, start: Duration) -> Duration {
        self.now().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

type C = Criterion<CpuTime>;

#[derive(Clone, Copy, Debug)]
enum Set {
    Exact,
    Plus,
    Hash,
    Mixed,
}

impl Set {
    const ALL: [Set; 4] = [Set::Exact, Set::Plus, Set::Hash, Set::Mixed];

    fn name(self) -> &'static str {
        match self {
            Set::Exact => "exact",
            Set::Plus => "plus",
            Set::Hash => "hash",
            Set::Mixed => "mixed",
        }
    }

    fn filter(self, i: usize) -> String {
        let (s, d) = (i / DEVICES_PER_SITE, i % DEVICES_PER_SITE);
        let exact = || format!("site/{s}/device/{d}/temp");
        let plus = || match i % 2 {
            0 => format!("site/{s}/device/{d}/+"),
            _ => format!("site/{s}/+/{d}/temp"),
        };
        let hash = || format!("site/{s}/device/{d}/#");
        match self {
            Set::Exact => exact(),
            Set::Plus => plus(),
            Set::Hash => hash(),
            Set::Mixed => match i % 10 {
                0..=6 => exact(),
                7 | 8 => plus(),
                _ => hash(),
            },
        }
    }
}

fn sub(qos: QoS, identifier: Option<u32>) -> Subscription {
    Subscription {
        options: SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        },
        identifier,
        session: Default::default(),
    }
}

fn build(set: Set, n: usize) -> SubscriptionTree {
    let mut tree = SubscriptionTree::new();
    for i in 0..n {
        let client = ClientId::from(format!("client-{i}"));
        tree.subscribe(&set.filter(i), &client, sub(QoS::AtLeastOnce, Some(1)));
    }
    assert_eq!(tree.len(), n);
    tree
}

fn device_topic(i: usize) -> String {
    format!(
        "site/{}/device/{}/temp",
        i / DEVICES_PER_SITE,
        i % DEVICES_PER_SITE
    )
}

/// `count` topics of existing devices, in a scattered order (multiplicative hashing of the
/// index).
fn topics(n: usize, count: usize) -> Vec<String> {
    (0..count as u64)
        .map(|k| device_topic((k.wrapping_mul(0x9E37_79B9_7F4A_7C15) % n as u64) as usize))
        .collect()
}

fn available(_: &ClientId) -> bool {
    true
}

/// The name of a match or visit benchmark and the publisher it matches for, or `None` when
/// the benchmark is filtered out.
fn selected_match(group: &str, function: &str, param: &str) -> Option<(String, ClientId)> {
    let name = format!("{group}/{function}/{param}");
    selected(&name).then(|| (name, ClientId::from("publisher")))
}

/// Benchmarks one `match` operation (see the module docs) over `topics`, cycling through them,
/// after checking that each yields `expect` deliveries, and prints its allocations per
/// operation.
fn bench_match(
    c: &mut C,
    (group, function, param): (&str, &str, &str),
    tree: &SubscriptionTree,
    topics: &[String],
    expect: usize,
) {
    let Some((name, publisher)) = selected_match(group, function, param) else {
        return;
    };
    let mut out: Vec<Match> = Vec::with_capacity(expect);
    for topic in topics {
        tree.matches(topic, Some(&publisher), &available, &mut out);
        assert_eq!(out.len(), expect, "{name}: {topic}");
        out.clear();
    }
    let mut k = 0usize;
    let mut op = || {
        let topic = &topics[k % topics.len()];
        k = k.wrapping_add(1);
        tree.matches(black_box(topic), Some(&publisher), &available, &mut out);
        black_box(&out);
        out.clear();
    };
    let mut g = group_of(c, group);
    g.bench_function(BenchmarkId::new(function, param), |b| b.iter(&mut op));
    g.finish();
    report_allocs(&name, (ALLOC_ITERS / expect as u64).max(100), op);
}

/// Benchmarks one `visit` operation: one `visit_matches` call (what the broker's routing
/// does) with a visitor that reads each delivery's QoS, over `topics` as [`bench_match`].
fn bench_visit(
    c: &mut C,
    (group, function, param): (&str, &str, &str),
    tree: &SubscriptionTree,
    topics: &[String],
    expect: usize,
) {
    let Some((name, publisher)) = selected_match(group, function, param) else {
        return;
    };
    for topic in topics {
        let mut seen = 0;
        let mut count = |_: MatchRef<'_>| seen += 1;
        tree.visit_matches(topic, Some(&publisher), &available, &mut count);
        assert_eq!(seen, expect, "{name}: {topic}");
    }
    let mut k = 0usize;
    let mut op = || {
        let topic = &topics[k % topics.len()];
        k = k.wrapping_add(1);
        let mut qos = 0u8;
        tree.visit_matches(
            black_box(topic),
            Some(&publisher),
            &available,
            &mut |m: MatchRef<'_>| qos = qos.wrapping_add(m.qos.as_u8()),
        );
        black_box(qos);
    };
    let mut g = group_of(c, group);
    g.bench_function(BenchmarkId::new(function, param), |b| b.iter(&mut op));
    g.finish();
    report_allocs(&name, (ALLOC_ITERS / expect as u64).max(100), op);
}

/// Criterion's name filter, if one was given and is a plain substring: setups (building a
/// 1M tree, counting allocations) are skipped for benchmarks it excludes, so that profiling one
/// benchmark profiles only it.
fn filter() -> Option<String> {
    const TAKES_VALUE: [&str; 12] = [
        "--profile-time",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--save-baseline",
        "--baseline",
        "--load-baseline",
        "--color",
        "--output-format",
        "--plotting-backend",
        "--noise-threshold",
        "--nresamples",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let positional = args.iter().enumerate().find(|(i, a)| {
        !a.starts_with('-') && (*i == 0 || !TAKES_VALUE.contains(&args[i - 1].as_str()))
    });
    let (_, f) = positional?;
    let plain = !f.contains(['^', '$', '.', '*', '+', '?', '(', '[', '|', '\\']);
    plain.then(|| f.clone())
}

fn selected(id: &str) -> bool {
    static FILTER: OnceLock<Option<String>> = OnceLock::new();
    FILTER
        .get_or_init(filter)
        .as_ref()
        .is_none_or(|f| id.contains(f.as_str()))
}

fn sizes() -> Vec<usize> {
    match std::env::var("ROUTER_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|n| n.trim().parse().expect("ROUTER_BENCH_SIZES: numbers"))
            .collect(),
        Err(_) => vec![10_000, 100_000, 1_000_000],
    }
}

fn label(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n % 1000 == 0 => format!("{}K", n / 1000),
        n => n.to_string(),
    }
}

fn match_benches(c: &mut C) {
    for n in sizes() {
        let hot = topics(n, 1);
        let scattered = topics(n, SCATTERED_TOPICS);
        for set in Set::ALL {
            let ids = ["match", "visit"].map(|g| {
                ["hot", "scattered"].map(|p| format!("{g}/{}/{p}/{}", set.name(), label(n)))
            });
            let ids = ids.as_flattened();
            if !ids.iter().any(|id| selected(id)) {
                continue;
            }
            let tree = build(set, n);
            let size = label(n);
            let hot_name = format!("{}/hot", set.name());
            bench_match(c, ("match", &hot_name, &size), &tree, &hot, 1);
            let scattered_name = format!("{}/scattered", set.name());
            bench_match(c, ("match", &scattered_name, &size), &tree, &scattered, 1);
            bench_visit(c, ("visit", &hot_name, &size), &tree, &hot, 1);
            bench_visit(c, ("visit", &scattered_name, &size), &tree, &scattered, 1);
        }
    }
}

fn fanout_benches(c: &mut C) {
    let ids =
        ["one_filter", "two_filters_merged"].map(|p| format!("match_fanout/1000_clients/{p}"));
    if !ids.iter().any(|id| selected(id)) {
        return;
    }
    let mut tree = build(Set::Mixed, 10_000);
    let fans: Vec<ClientId> = (0..1000)
        .map(|i| ClientId::from(format!("fan-{i}")))
        .collect();
    for fan in &fans {
        tree.subscribe("alerts/fire", fan, sub(QoS::AtLeastOnce, Some(1)));
    }
    let topic = ["alerts/fire".to_owned()];
    let id = ("match_fanout", "1000_clients", "one_filter");
    bench_match(c, id, &tree, &topic, 1000);
    for fan in &fans {
        tree.subscribe("alerts/+", fan, sub(QoS::AtMostOnce, Some(2)));
    }
    let id = ("match_fanout", "1000_clients", "two_filters_merged");
    bench_match(c, id, &tree, &topic, 1000);
}

/// Subscribe and unsubscribe of a new leaf filter (`site/{s}/device/{d}/cmd`, a device's
/// command topic, by a new client) in a 10K mixed tree, each with the tree's write lock taken
/// and released as the broker does (`SharedTree::write`, every per-thread read shard). Each
/// timed operation is undone untimed, so the tree stays at 10K.
fn churn_benches(c: &mut C) {
    if !selected("churn/subscribe/10K") && !selected("churn/unsubscribe/10K") {
        return;
    }
    const BATCH: usize = 1000;
    let tree = SharedTree::new(build(Set::Mixed, 10_000));
    let filters: Vec<String> = (0..BATCH)
        .map(|i| device_topic(i * 10).replace("/temp", "/cmd"))
        .collect();
    let clients: Vec<ClientId> = (0..BATCH)
        .map(|i| ClientId::from(format!("cmd-{i}")))
        .collect();
    let s = sub(QoS::AtLeastOnce, Some(3));
    let clock = CpuTime::new();

    let mut g = group_of(c, "churn");
    g.bench_function(BenchmarkId::new("subscribe", "10K"), |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = (iters - done).min(BATCH as u64) as usize;
                let start = clock.now();
                for k in 0..n {
                    black_box(tree.write().subscribe(&filters[k], &clients[k], s.clone()));
                }
                timed += clock.now().saturating_sub(start);
                for k in 0..n {
                    tree.write().unsubscribe(&filters[k], &clients[k]);
                }
                done += n as u64;
            }
            timed
        })
    });
    g.bench_function(BenchmarkId::new("unsubscribe", "10K"), |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = (iters - done).min(BATCH as u64) as usize;
                for k in 0..n {
                    tree.write().subscribe(&filters[k], &clients[k], s.clone());
                }
                let start = clock.now();
                for k in 0..n {
                    black_box(tree.write().unsubscribe(&filters[k], &clients[k]));
                }
                timed += clock.now().saturating_sub(start);
                done += n as u64;
            }
            timed
        })
    });
    g.finish();
    assert_eq!(tree.read().len(), 10_000);

    // Allocations of each half, counted separately.
    let (mut subscribe, mut unsubscribe) = ((0, 0), (0, 0));
    for k in 0..BATCH {
        let (_, st) = alloc::count(|| tree.write().subscribe(&filters[k], &clients[k], s.clone()));
        subscribe = (
            subscribe.0 + st.allocating_calls(),
            subscribe.1 + st.bytes_allocated,
        );
        let (_, st) = alloc::count(|| tree.write().unsubscribe(&filters[k], &clients[k]));
        unsubscribe = (
            unsubscribe.0 + st.allocating_calls(),
            unsubscribe.1 + st.bytes_allocated,
        );
    }
    for (name, (calls, bytes)) in [("subscribe", subscribe), ("unsubscribe", unsubscribe)] {
        let per = |x: u64| x as f64 / BATCH as f64;
        println!(
            "churn/{name}/10K: {:.2} allocs/op, {:.0} bytes/op",
            per(calls),
            per(bytes)
        );
    }
}

fn config() -> C {
    Criterion::default()
        .with_measurement(CpuTime::new())
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(20)
}

/// A group whose samples all run the same number of iterations (~75 ms each), long enough
/// for the tick granularity of [`CpuTime`] to stay a small error; criterion's default linear
/// sampling starts with samples shorter than a tick.
fn group_of<'a>(c: &'a mut C, name: &str) -> BenchmarkGroup<'a, CpuTime> {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat);
    g
}

criterion_group! {
    name = benches;
    config = config();
    targets = match_benches, fanout_benches, churn_benches
}
criterion_main!(benches);
