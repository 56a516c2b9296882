//! The publish-to-delivery latency histogram, recorded by every core at once.
//!
//! Every delivered message is one observation. A `prometheus::Histogram` updates four shared
//! atomics per observation (a shard word, the bucket, a compare-and-swap loop on the sum, the
//! count), so two cores delivering two million messages a second took turns on the same cache
//! lines millions of times a second. Here each thread records into a stripe it alone writes
//! (plain stores, no `lock`ed additions: [`super::stripe`]), and a write of a whole batch adds
//! to each bucket it touched once ([`LatencyHistogram::observe_batch`]).
//! Scrapes sum the stripes and export an ordinary Prometheus histogram, so the metric's name,
//! type, buckets and meaning are unchanged.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};

use super::stripe::{Writer, STRIPES};
/// Most buckets a histogram may have (the last counts what exceeds every bound).
const MAX_BUCKETS: usize = 32;
/// Batches up to this size update the shared buckets one observation at a time.
const SMALL_BATCH: usize = 2;

/// One thread's counters, on cache lines of their own.
#[repr(align(128))]
struct Stripe {
    /// Observations per bucket (not cumulative); index `bounds.len()` is above every bound.
    counts: [AtomicU64; MAX_BUCKETS],
    sum_nanos: AtomicU64,
}

impl Default for Stripe {
    fn default() -> Self {
        Stripe {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

/// A latency histogram with per-thread stripes, exported as a Prometheus histogram.
pub struct LatencyHistogram {
    desc: Desc,
    /// Upper bounds in seconds, ascending, as exported.
    bounds: Vec<f64>,
    /// The same bounds in nanoseconds, for bucketing without floating point.
    bounds_nanos: Vec<u64>,
    stripes: Box<[Stripe]>,
}

impl LatencyHistogram {
    /// A histogram named `name` with the given upper bounds (seconds, ascending, fewer than
    /// 32).
    pub fn new(
        name: &str,
        help: &str,
        bounds: &[f64],
    ) -> Result<LatencyHistogram, prometheus::Error> {
        if bounds.len() >= MAX_BUCKETS || bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err(prometheus::Error::Msg(format!(
                "{name}: bounds must ascend and number fewer than {MAX_BUCKETS}"
            )));
        }
        Ok(LatencyHistogram {
            desc: Desc::new(name.into(), help.into(), Vec::new(), Default::default())?,
            bounds: bounds.to_vec(),
            bounds_nanos: bounds.iter().map(|b| (b * 1e9).round() as u64).collect(),
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
        })
    }

    fn bucket(&self, nanos: u64) -> usize {
        self.bounds_nanos.partition_point(|&bound| bound < nanos)
    }

    /// Records one latency.
    pub fn observe(&self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let writer = Writer::current();
        let stripe = &self.stripes[writer.index()];
        writer.add(&stripe.counts[self.bucket(nanos)], 1);
        writer.add(&stripe.sum_nanos, nanos);
    }

    /// Records the latency of every message received at one of `received` and delivered at
    /// `now`: a batch of up to [`SMALL_BATCH`] adds to its buckets directly; a larger one is
    /// counted locally first, then updates each bucket it touched once.
    pub fn observe_batch(&self, now: Instant, received: &[Instant]) {
        let writer = Writer::current();
        let stripe = &self.stripes[writer.index()];
        let nanos_since = |at: &Instant| {
            u64::try_from(now.saturating_duration_since(*at).as_nanos()).unwrap_or(u64::MAX)
        };
        if received.len() <= SMALL_BATCH {
            // A write of one or two messages (a subscriber that keeps up): adding to the
            // buckets directly is cheaper than zeroing and scanning a local copy of them.
            let mut sum = 0u64;
            for at in received {
                let nanos = nanos_since(at);
                writer.add(&stripe.counts[self.bucket(nanos)], 1);
                sum = sum.saturating_add(nanos);
            }
            writer.add(&stripe.sum_nanos, sum);
            return;
        }
        let mut counts = [0u64; MAX_BUCKETS];
        let mut sum = 0u64;
        for at in received {
            let nanos = nanos_since(at);
            counts[self.bucket(nanos)] += 1;
            sum = sum.saturating_add(nanos);
        }
        for (total, n) in stripe.counts.iter().zip(counts) {
            if n > 0 {
                writer.add(total, n);
            }
        }
        writer.add(&stripe.sum_nanos, sum);
    }
}

/// The registry's handle on a histogram the message path keeps recording into.
pub struct SharedHistogram(pub Arc<LatencyHistogram>);

impl Collector for SharedHistogram {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.collect()
    }
}

impl Collector for LatencyHistogram {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut counts = [0u64; MAX_BUCKETS];
        let mut sum_nanos = 0u64;
        for stripe in self.stripes.iter() {
            for (total, count) in counts.iter_mut().zip(&stripe.counts) {
                *total += count.load(Relaxed);
            }
            sum_nanos = sum_nanos.wrapping_add(stripe.sum_nanos.load(Relaxed));
        }
        let mut cumulative = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(counts)
            .map(|(bound, n)| {
                cumulative += n;
                let mut bucket = proto::Bucket::default();
                bucket.set_upper_bound(*bound);
                bucket.set_cumulative_count(cumulative);
                bucket
            })
            .collect();
        let mut histogram = proto::Histogram::default();
        histogram.set_bucket(buckets);
        // The count includes what exceeds every bound (the +Inf bucket).
        histogram.set_sample_count(cumulative + counts[self.bounds.len()]);
        histogram.set_sample_sum(sum_nanos as f64 / 1e9);
        let mut metric = proto::Metric::default();
        metric.set_histogram(histogram);
        let mut family = MetricFamily::default();
        family.set_name(self.desc.fq_name.clone());
        family.set_help(self.desc.help.clone());
        family.set_field_type(MetricType::HISTOGRAM);
        family.set_metric(vec![metric]);
        vec![family]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (cumulative bucket counts, sample count, sample sum) as a scrape sees them.
    fn exported(h: &LatencyHistogram) -> (Vec<u64>, u64, f64) {
        let family = &h.collect()[0];
        assert_eq!(family.name(), h.desc.fq_name);
        let histogram = family.metric[0].histogram.as_ref().expect("a histogram");
        let buckets = histogram
            .bucket
            .iter()
            .map(|b| b.cumulative_count())
            .collect();
        (buckets, histogram.sample_count(), histogram.sample_sum())
    }

    #[test]
    fn observations_land_in_the_bucket_of_their_upper_bound() {
        let h = LatencyHistogram::new("t_seconds", "t", &[0.001, 0.01]).unwrap();
        h.observe(Duration::from_micros(1_000)); // on the bound: le="0.001"
        h.observe(Duration::from_micros(1_001));
        h.observe(Duration::from_secs(3)); // above every bound
        let (cumulative, count, sum) = exported(&h);
        assert_eq!(cumulative, [1, 2]);
        assert_eq!(count, 3);
        assert!((sum - 3.002_001).abs() < 1e-9);
    }

    #[test]
    fn a_batch_counts_like_single_observations_from_any_thread() {
        let single = LatencyHistogram::new("a_seconds", "a", &[0.000_1, 0.001]).unwrap();
        let batched = LatencyHistogram::new("b_seconds", "b", &[0.000_1, 0.001]).unwrap();
        let now = Instant::now();
        let received: Vec<Instant> = [50u64, 500, 5_000, 50, 900]
            .iter()
            .map(|us| now - Duration::from_micros(*us))
            .collect();
        for at in &received {
            single.observe(now - *at);
        }
        std::thread::scope(|s| {
            s.spawn(|| batched.observe_batch(now, &received[..2]));
            s.spawn(|| batched.observe_batch(now, &received[2..]));
        });
        assert_eq!(exported(&single), exported(&batched));
        assert_eq!(exported(&batched).1, 5);
    }
}
