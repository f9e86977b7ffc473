//! A lock-free fixed-bucket histogram for the request path.
//!
//! prometheus-client's `Histogram` takes a mutex on every observation; two
//! workers recording the same series contend on it. This histogram keeps one
//! atomic per bucket and the sum in integer microseconds, so `observe` is a
//! few relaxed atomic adds. It encodes as a classic Prometheus histogram.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Istio's (Envoy's) default bucket bounds for request durations, in ms.
pub const ISTIO_DURATION_BUCKETS_MS: &[f64] = &[
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// A duration histogram in milliseconds over [`ISTIO_DURATION_BUCKETS_MS`].
#[derive(Clone, Debug)]
pub struct DurationHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Non-cumulative counts; the last slot is `+Inf`.
    buckets: Box<[AtomicU64]>,
    sum_micros: AtomicU64,
}

// === impl DurationHistogram ===

impl Default for DurationHistogram {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                buckets: (0..=ISTIO_DURATION_BUCKETS_MS.len())
                    .map(|_| AtomicU64::new(0))
                    .collect(),
                sum_micros: AtomicU64::new(0),
            }),
        }
    }
}

impl DurationHistogram {
    /// Records one duration.
    #[inline]
    pub fn observe(&self, d: std::time::Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        #[allow(clippy::cast_precision_loss)] // ms of a request fit an f64 exactly enough
        let ms = micros as f64 / 1000.0;
        let i = ISTIO_DURATION_BUCKETS_MS.partition_point(|b| *b < ms);
        self.inner.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.inner.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The number of observations.
    pub fn count(&self) -> u64 {
        self.inner
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .sum()
    }

    /// The sum of observations in milliseconds.
    pub fn sum_ms(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let us = self.inner.sum_micros.load(Ordering::Relaxed) as f64;
        us / 1000.0
    }
}

impl TypedMetric for DurationHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for DurationHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // prometheus-client's encoder takes per-bucket counts and makes
        // them cumulative itself.
        let buckets: Vec<(f64, u64)> = ISTIO_DURATION_BUCKETS_MS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.inner.buckets.iter())
            .map(|(le, n)| (le, n.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        encoder.encode_histogram::<NoLabelSet>(self.sum_ms(), count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_are_upper_inclusive() {
        let h = DurationHistogram::default();
        h.observe(Duration::from_micros(500)); // 0.5 ms -> le=0.5
        h.observe(Duration::from_millis(3)); // -> le=5
        h.observe(Duration::from_secs(7200)); // -> +Inf
        assert_eq!(h.count(), 3);
        assert_eq!(h.inner.buckets[0].load(Ordering::Relaxed), 1);
        assert_eq!(h.inner.buckets[2].load(Ordering::Relaxed), 1);
        assert_eq!(
            h.inner.buckets[ISTIO_DURATION_BUCKETS_MS.len()].load(Ordering::Relaxed),
            1
        );
        assert!((h.sum_ms() - 7_200_003.5).abs() < 1e-6, "{}", h.sum_ms());
    }
}
