//! Pool metrics, read from the pools' own counters at scrape time: the pools count with relaxed
//! atomics, and nothing on the message path touches Prometheus for them.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};

use crate::pool;

/// Exports `ferrumq_pool_*{pool}` for every pool. The hit ratio is
/// `ferrumq_pool_hits_total / ferrumq_pool_gets_total`.
pub struct PoolCollector {
    gets: IntCounterVec,
    hits: IntCounterVec,
    misses: IntCounterVec,
    returns: IntCounterVec,
    discards: IntCounterVec,
    size: IntGaugeVec,
    capacity: IntGaugeVec,
    descs: Vec<Desc>,
}

fn counters(name: &str, help: &str) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), &["pool"]).expect("static metric options are valid")
}

fn gauges(name: &str, help: &str) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), &["pool"]).expect("static metric options are valid")
}

impl Default for PoolCollector {
    fn default() -> Self {
        let mut collector = PoolCollector {
            gets: counters("ferrumq_pool_gets_total", "Objects requested from the pool."),
            hits: counters("ferrumq_pool_hits_total", "Requests served by a recycled object."),
            misses: counters("ferrumq_pool_misses_total", "Requests that had to allocate a new object."),
            returns: counters("ferrumq_pool_returns_total", "Objects given back and kept for reuse."),
            discards: counters(
                "ferrumq_pool_discards_total",
                "Objects given back but freed: pool full, object too large, or memory still shared.",
            ),
            size: gauges("ferrumq_pool_size", "Idle objects waiting in the pool."),
            capacity: gauges("ferrumq_pool_capacity", "Most idle objects the pool keeps."),
            descs: Vec::new(),
        };
        collector.descs = collector
            .parts()
            .iter()
            .flat_map(|c| c.desc().into_iter().cloned())
            .collect();
        collector
    }
}

impl PoolCollector {
    fn parts(&self) -> [&dyn Collector; 7] {
        [
            &self.gets,
            &self.hits,
            &self.misses,
            &self.returns,
            &self.discards,
            &self.size,
            &self.capacity,
        ]
    }
}

impl Collector for PoolCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        for stats in pool::all_stats() {
            let labels = [stats.name];
            for (metric, value) in [
                (&self.gets, stats.gets),
                (&self.hits, stats.hits),
                (&self.misses, stats.misses),
                (&self.returns, stats.returns),
                (&self.discards, stats.discards),
            ] {
                let counter = metric.with_label_values(&labels);
                counter.reset();
                counter.inc_by(value);
            }
            self.size.with_label_values(&labels).set(stats.size as i64);
            self.capacity
                .with_label_values(&labels)
                .set(stats.capacity as i64);
        }
        self.parts().iter().flat_map(|c| c.collect()).collect()
    }
}
