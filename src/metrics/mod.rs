//! Where rollout analysis gets its numbers: a [`MetricsSource`] returns a
//! [`Snapshot`] of Istio's cumulative counters for one service, per version.
//! The analysis works on the difference of two snapshots (one window), never
//! on all-time averages.
//!
//! Two sources: meshproxy's own `/metrics` endpoint ([`proxy::ProxyMetrics`])
//! and a Prometheus server queried with PromQL ([`prometheus::Prometheus`]).

pub mod exposition;
pub mod prometheus;
pub mod proxy;

use std::collections::BTreeMap;
use std::future::Future;

use serde::Serialize;

/// Istio's request counter.
pub const REQUESTS_TOTAL: &str = "istio_requests_total";
/// Istio's request-duration histogram buckets (milliseconds).
pub const DURATION_BUCKET: &str = "istio_request_duration_milliseconds_bucket";

/// An HTTP client with a timeout. Installs the ring crypto provider first:
/// reqwest is built without one (`rustls-no-provider`), and `https://`
/// metrics or webhook URLs need it.
pub fn http_client(timeout: std::time::Duration) -> Result<reqwest::Client, reqwest::Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
}

/// Cumulative counters of one version of a service.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VersionCounters {
    /// Requests (all response codes).
    pub requests: f64,
    /// Requests answered with a 5xx.
    pub errors: f64,
    /// Latency histogram: (upper bound in ms, cumulative count), sorted by bound.
    pub buckets: Vec<(f64, f64)>,
}

/// Cumulative counters of every version of one service at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// Counters per `destination_version`.
    pub versions: BTreeMap<String, VersionCounters>,
}

/// Why a scrape produced no usable numbers. Every variant fails the check.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The source could not be reached (connection refused, timeout, ...).
    #[error("metrics source {url} is unreachable: {source}")]
    Unreachable {
        /// The URL.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The source answered with an error status.
    #[error("metrics source {url} answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The body is not valid exposition text / Prometheus API JSON.
    #[error("metrics source {url} returned malformed data: {message}")]
    Malformed {
        /// The URL.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// No `istio_requests_total` series for the service.
    #[error(
        "metrics source {url} has no istio_requests_total series for destination_service_name={service:?}: is traffic reaching the service through the mesh?"
    )]
    Empty {
        /// The URL.
        url: String,
        /// The service.
        service: String,
    },
}

/// A place to read a service's Istio counters from.
pub trait MetricsSource: Send + Sync {
    /// A description for messages (`http://127.0.0.1:15000/metrics`).
    fn describe(&self) -> String;

    /// Reads the cumulative counters of `service`, per version.
    fn scrape(&self, service: &str) -> impl Future<Output = Result<Snapshot, MetricsError>> + Send;
}

// === impl VersionCounters ===

impl VersionCounters {
    /// `self - earlier`, treating a decrease as a counter reset (as
    /// Prometheus' `increase` does): the new value is then the delta.
    pub fn delta(&self, earlier: &Self) -> Self {
        fn d(now: f64, then: f64) -> f64 {
            if now >= then { now - then } else { now }
        }
        let reset = self.requests < earlier.requests;
        let buckets = self
            .buckets
            .iter()
            .map(|&(le, c)| {
                let then = earlier
                    .buckets
                    .iter()
                    .find(|(l, _)| *l == le)
                    .map_or(0.0, |&(_, c)| c);
                (le, if reset { c } else { d(c, then) })
            })
            .collect();
        if reset {
            return Self {
                requests: self.requests,
                errors: self.errors,
                buckets,
            };
        }
        Self {
            requests: d(self.requests, earlier.requests),
            errors: d(self.errors, earlier.errors),
            buckets,
        }
    }

    fn add_bucket(&mut self, le: f64, count: f64) {
        match self.buckets.iter_mut().find(|(l, _)| *l == le) {
            Some((_, c)) => *c += count,
            None => self.buckets.push((le, count)),
        }
    }
}

// === impl Snapshot ===

impl Snapshot {
    /// Counters of one version (zero when the version has no series yet).
    pub fn version(&self, v: &str) -> VersionCounters {
        self.versions.get(v).cloned().unwrap_or_default()
    }

    /// The window between `earlier` and `self`.
    pub fn delta(&self, earlier: &Self) -> Self {
        let versions = self
            .versions
            .iter()
            .map(|(v, now)| (v.clone(), now.delta(&earlier.version(v))))
            .collect();
        Self { versions }
    }

    /// Builds a snapshot of `service` from parsed exposition samples.
    ///
    /// Series are selected by `destination_service_name` (falling back to
    /// the short name of `destination_service`) and summed over every other
    /// label. When both reporters are present (real Istio reports each
    /// request twice), only `reporter="destination"` is counted.
    pub fn from_samples(
        samples: &[exposition::Sample],
        service: &str,
        url: &str,
    ) -> Result<Self, MetricsError> {
        let matches = |s: &exposition::Sample| {
            let name = s.label("destination_service_name");
            if name.is_empty() {
                let full = s.label("destination_service");
                full.split('.').next() == Some(service)
            } else {
                name == service
            }
        };
        let relevant: Vec<&exposition::Sample> = samples
            .iter()
            .filter(|s| (s.name == REQUESTS_TOTAL || s.name == DURATION_BUCKET) && matches(s))
            .collect();
        let has_destination = relevant
            .iter()
            .any(|s| s.label("reporter") == "destination");
        let mut snap = Self::default();
        let mut any_requests = false;
        for s in relevant {
            if has_destination && s.label("reporter") != "destination" {
                continue;
            }
            if !s.value.is_finite() || s.value < 0.0 {
                return Err(MetricsError::Malformed {
                    url: url.to_owned(),
                    message: format!(
                        "{} has value {} (a counter must be finite and >= 0)",
                        s.name, s.value
                    ),
                });
            }
            let v = snap
                .versions
                .entry(s.label("destination_version").to_owned())
                .or_default();
            if s.name == REQUESTS_TOTAL {
                any_requests = true;
                v.requests += s.value;
                if s.label("response_code").starts_with('5') {
                    v.errors += s.value;
                }
            } else {
                let le =
                    exposition::parse_le(s.label("le")).ok_or_else(|| MetricsError::Malformed {
                        url: url.to_owned(),
                        message: format!(
                            "{DURATION_BUCKET} has le={:?}, not a number",
                            s.label("le")
                        ),
                    })?;
                v.add_bucket(le, s.value);
            }
        }
        if !any_requests {
            return Err(MetricsError::Empty {
                url: url.to_owned(),
                service: service.to_owned(),
            });
        }
        for v in snap.versions.values_mut() {
            v.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
istio_requests_total{reporter="source",destination_service_name="discounts",destination_version="v1",response_code="200"} 90
istio_requests_total{reporter="source",destination_service_name="discounts",destination_version="v1",response_code="503"} 10
istio_requests_total{reporter="source",destination_service_name="discounts",destination_version="v2",response_code="200"} 5
istio_requests_total{reporter="source",destination_service_name="other",destination_version="v2",response_code="500"} 5
istio_request_duration_milliseconds_bucket{reporter="source",destination_service_name="discounts",destination_version="v1",response_code="200",le="10"} 80
istio_request_duration_milliseconds_bucket{reporter="source",destination_service_name="discounts",destination_version="v1",response_code="503",le="10"} 10
istio_request_duration_milliseconds_bucket{reporter="source",destination_service_name="discounts",destination_version="v1",response_code="200",le="+Inf"} 90
istio_request_duration_milliseconds_bucket{reporter="source",destination_service_name="discounts",destination_version="v1",response_code="503",le="+Inf"} 10
"#;

    #[test]
    fn snapshot_sums_over_other_labels() {
        let samples = exposition::parse(TEXT).unwrap();
        let snap = Snapshot::from_samples(&samples, "discounts", "u").unwrap();
        let v1 = snap.version("v1");
        assert_eq!((v1.requests, v1.errors), (100.0, 10.0));
        assert_eq!(v1.buckets, vec![(10.0, 90.0), (f64::INFINITY, 100.0)]);
        assert_eq!(snap.version("v2").requests, 5.0);
        assert_eq!(snap.version("v3"), VersionCounters::default());
    }

    #[test]
    fn empty_service_is_an_error() {
        let samples = exposition::parse(TEXT).unwrap();
        let e = Snapshot::from_samples(&samples, "nope", "http://x/metrics").unwrap_err();
        assert!(
            e.to_string()
                .contains("no istio_requests_total series for destination_service_name=\"nope\""),
            "{e}"
        );
    }

    #[test]
    fn destination_reporter_wins_over_source() {
        let text = r#"
istio_requests_total{reporter="source",destination_service_name="d",destination_version="v1",response_code="200"} 7
istio_requests_total{reporter="destination",destination_service_name="d",destination_version="v1",response_code="200"} 6
"#;
        let snap = Snapshot::from_samples(&exposition::parse(text).unwrap(), "d", "u").unwrap();
        assert_eq!(snap.version("v1").requests, 6.0);
    }

    #[test]
    fn delta_handles_counter_reset() {
        let then = VersionCounters {
            requests: 100.0,
            errors: 10.0,
            buckets: vec![(10.0, 100.0)],
        };
        let now = VersionCounters {
            requests: 150.0,
            errors: 12.0,
            buckets: vec![(10.0, 150.0)],
        };
        let d = now.delta(&then);
        assert_eq!((d.requests, d.errors, d.buckets[0].1), (50.0, 2.0, 50.0));
        let restarted = VersionCounters {
            requests: 3.0,
            errors: 1.0,
            buckets: vec![(10.0, 3.0)],
        };
        let d = restarted.delta(&then);
        assert_eq!((d.requests, d.errors, d.buckets[0].1), (3.0, 1.0, 3.0));
    }
}
