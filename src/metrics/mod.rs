//! Where rollout analysis gets its numbers: a [`MetricsSource`] returns a
//! [`Snapshot`] of Istio's cumulative counters for one service, per version.
//! The analysis works on the difference of two snapshots (one window), never
//! on all-time averages.
//!
//! Two sources: meshproxy's own `/metrics` endpoint ([`proxy::ProxyMetrics`])
//! and a Prometheus server queried with PromQL ([`prometheus::Prometheus`]).
//! Both keep the `reporter` label apart, so the counting rule below is the
//! same for either.
//!
//! # Counting each request once
//!
//! Istio reports a request from up to two proxies: the client's
//! (`reporter="source"`) and the destination's (`reporter="destination"`).
//! A mirrored (shadow) copy is reported only by the destination's proxy; its
//! response never reaches a client. meshproxy is a client-side proxy: its
//! real requests are `reporter="source"`, its mirrored copies
//! `reporter="destination"`. A [`Snapshot`] keeps the two reporters apart
//! and the window (the difference of two snapshots) is judged with one of
//! two selections ([`Traffic`]), per version:
//!
//! - [`Traffic::Real`] (what clients were served): the version's
//!   `reporter="source"` series when they counted requests in the window,
//!   else its `reporter="destination"` series (traffic only the
//!   destination's proxy saw, e.g. from clients outside the mesh). With real
//!   Istio both reporters count each in-mesh request, and only the source
//!   side is taken, so each request counts once; mirrored copies never count
//!   as real traffic of a version that also served real requests.
//! - [`Traffic::Mirrored`] (shadow copies): the version's
//!   `reporter="destination"` series. The rollout selects this only for the
//!   new version while its route weight is 0 and the route mirrors to it
//!   (the `mirror` and `bluegreen` strategies' preview), so every
//!   destination-reported request of that version in the window is a
//!   mirrored copy. The stable baseline of that window stays
//!   [`Traffic::Real`].
//!
//! Series without a `reporter` label count as `reporter="source"`.
//!
//! # What counts as failed
//!
//! One rule for both sources ([`grpc::failure`]): HTTP status 5xx, or a
//! gRPC status (`grpc_response_status`) in the rollout's failing set
//! ([`grpc::GrpcCodes`]). [`VersionCounters::errors`] counts those requests
//! and [`VersionCounters::failures`] keeps them per cause.

pub mod any;
pub mod exposition;
pub mod grpc;
pub mod prometheus;
pub mod proxy;

use std::collections::BTreeMap;
use std::future::Future;

use serde::Serialize;

pub use grpc::GrpcCodes;

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

/// The HTTP client of a metrics source that scrapes `url`; failing to
/// build one is [`MetricsError::Unreachable`] for `url`.
fn client_for(url: &str, timeout: std::time::Duration) -> Result<reqwest::Client, MetricsError> {
    http_client(timeout).map_err(|source| MetricsError::Unreachable {
        url: url.to_owned(),
        source,
    })
}

/// Cumulative counters of one version of a service.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VersionCounters {
    /// Requests (all response codes).
    pub requests: f64,
    /// Failed requests: a 5xx, or a gRPC status in the failing set (see
    /// [`grpc::failure`]).
    pub errors: f64,
    /// Latency histogram: (upper bound in ms, cumulative count), sorted by bound.
    pub buckets: Vec<(f64, f64)>,
    /// The failed requests per cause (`INTERNAL`, `HTTP 503`); the values
    /// sum to `errors`.
    pub failures: BTreeMap<String, f64>,
}

/// Cumulative counters of every version of one service at one moment, per
/// reporter (see the module docs for how a window selects among them).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// Requests reported by the client's proxy (`reporter="source"`, or no
    /// `reporter` label), per `destination_version`.
    pub source: BTreeMap<String, VersionCounters>,
    /// Requests reported by the destination's proxy
    /// (`reporter="destination"`), per `destination_version`: real requests
    /// with real Istio, mirrored copies with meshproxy and Istio alike.
    pub destination: BTreeMap<String, VersionCounters>,
}

/// Which requests of a version a window counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Traffic {
    /// Requests clients were served: source-reported when there are any,
    /// else destination-reported.
    #[default]
    Real,
    /// Mirrored (shadow) copies: destination-reported requests of a version
    /// that takes no real traffic (weight 0) while a route mirrors to it.
    Mirrored,
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

    /// How often `--analysis sequential` looks at this source during a
    /// bake ([`LOOK`]; a source whose numbers only change at its own scrape
    /// interval says less often).
    fn look_every(&self) -> std::time::Duration {
        LOOK
    }
}

/// How often `--analysis sequential` looks at a source that answers from
/// live counters (meshproxy's `/metrics`): every 250 ms. A 5% canary at a
/// 10% step of 200 requests/s is caught a median ~6 canary requests sooner
/// than at 500 ms (the decision benchmark), for 4 scrapes a second of one
/// small exposition.
pub const LOOK: std::time::Duration = std::time::Duration::from_millis(250);

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
                failures: self.failures.clone(),
            };
        }
        let failures = self
            .failures
            .iter()
            .map(|(k, &n)| {
                let then = earlier.failures.get(k).copied().unwrap_or(0.0);
                (k.clone(), d(n, then))
            })
            .filter(|&(_, n)| n > 0.0)
            .collect();
        Self {
            requests: d(self.requests, earlier.requests),
            errors: d(self.errors, earlier.errors),
            buckets,
            failures,
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
    /// Real traffic of one version (zero when the version has no series yet).
    pub fn version(&self, v: &str) -> VersionCounters {
        self.select(v, Traffic::Real)
    }

    /// The counters of version `v` that `traffic` selects.
    pub fn select(&self, v: &str, traffic: Traffic) -> VersionCounters {
        let source = self.source.get(v);
        let destination = self.destination.get(v);
        let chosen = match traffic {
            Traffic::Mirrored => destination,
            Traffic::Real => match source {
                Some(s) if s.requests > 0.0 => Some(s),
                _ => destination.or(source),
            },
        };
        chosen.cloned().unwrap_or_default()
    }

    /// Real traffic of every version seen (by either reporter).
    pub fn versions(&self) -> BTreeMap<String, VersionCounters> {
        self.source
            .keys()
            .chain(self.destination.keys())
            .map(|v| (v.clone(), self.version(v)))
            .collect()
    }

    /// The window between `earlier` and `self`, per reporter.
    pub fn delta(&self, earlier: &Self) -> Self {
        fn each(
            now: &BTreeMap<String, VersionCounters>,
            then: &BTreeMap<String, VersionCounters>,
        ) -> BTreeMap<String, VersionCounters> {
            now.iter()
                .map(|(v, c)| {
                    (
                        v.clone(),
                        c.delta(&then.get(v).cloned().unwrap_or_default()),
                    )
                })
                .collect()
        }
        Self {
            source: each(&self.source, &earlier.source),
            destination: each(&self.destination, &earlier.destination),
        }
    }

    /// Builds a snapshot of `service` from parsed exposition samples.
    ///
    /// Series are selected by `destination_service_name` (falling back to
    /// the short name of `destination_service`), kept apart by `reporter`
    /// and summed over every other label. A request series counts as
    /// failed by [`grpc::failure`] with the failing gRPC codes `codes`.
    pub fn from_samples(
        samples: &[exposition::Sample],
        service: &str,
        url: &str,
        codes: &GrpcCodes,
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
        let mut snap = Self::default();
        let mut any_requests = false;
        for s in samples
            .iter()
            .filter(|s| (s.name == REQUESTS_TOTAL || s.name == DURATION_BUCKET) && matches(s))
        {
            if !s.value.is_finite() || s.value < 0.0 {
                return Err(MetricsError::Malformed {
                    url: url.to_owned(),
                    message: format!(
                        "{} has value {} (a counter must be finite and >= 0)",
                        s.name, s.value
                    ),
                });
            }
            let by_reporter = if s.label("reporter") == "destination" {
                &mut snap.destination
            } else {
                &mut snap.source
            };
            let v = by_reporter
                .entry(s.label("destination_version").to_owned())
                .or_default();
            if s.name == REQUESTS_TOTAL {
                any_requests = true;
                v.requests += s.value;
                if let Some(cause) = grpc::failure(
                    s.label("response_code"),
                    s.label("grpc_response_status"),
                    codes,
                ) {
                    v.errors += s.value;
                    *v.failures.entry(cause.to_string()).or_default() += s.value;
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
        for v in snap
            .source
            .values_mut()
            .chain(snap.destination.values_mut())
        {
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
        let snap =
            Snapshot::from_samples(&samples, "discounts", "u", &GrpcCodes::default()).unwrap();
        let v1 = snap.version("v1");
        assert_eq!((v1.requests, v1.errors), (100.0, 10.0));
        assert_eq!(v1.buckets, vec![(10.0, 90.0), (f64::INFINITY, 100.0)]);
        assert_eq!(snap.version("v2").requests, 5.0);
        assert_eq!(snap.version("v3"), VersionCounters::default());
    }

    #[test]
    fn empty_service_is_an_error() {
        let samples = exposition::parse(TEXT).unwrap();
        let e = Snapshot::from_samples(&samples, "nope", "http://x/metrics", &GrpcCodes::default())
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("no istio_requests_total series for destination_service_name=\"nope\""),
            "{e}"
        );
    }

    fn snap(text: &str) -> Snapshot {
        Snapshot::from_samples(
            &exposition::parse(text).unwrap(),
            "d",
            "u",
            &GrpcCodes::default(),
        )
        .unwrap()
    }

    /// `istio_requests_total` of service `d`: (reporter, version, code, value).
    fn requests(series: &[(&str, &str, &str, u32)]) -> String {
        series
            .iter()
            .map(|(r, v, c, n)| {
                format!(
                    "istio_requests_total{{reporter=\"{r}\",destination_service_name=\"d\",destination_version=\"{v}\",response_code=\"{c}\"}} {n}\n"
                )
            })
            .collect()
    }

    #[test]
    fn real_istio_counts_each_request_once() {
        // Both sidecars report every request: the window counts it once.
        let before = snap(&requests(&[
            ("source", "v1", "200", 100),
            ("destination", "v1", "200", 100),
            ("source", "v2", "200", 10),
            ("destination", "v2", "200", 10),
        ]));
        let after = snap(&requests(&[
            ("source", "v1", "200", 190),
            ("destination", "v1", "200", 190),
            ("source", "v2", "200", 20),
            ("source", "v2", "503", 2),
            ("destination", "v2", "200", 20),
            ("destination", "v2", "503", 2),
        ]));
        let w = after.delta(&before);
        assert_eq!(w.version("v1").requests, 90.0);
        let v2 = w.version("v2");
        assert_eq!((v2.requests, v2.errors), (12.0, 2.0));
        assert_eq!(after.versions()["v1"].requests, 190.0);
    }

    #[test]
    fn meshproxy_source_series_count_after_a_mirror_ran() {
        // meshproxy: real requests are reporter="source"; the mirrored copies
        // of an earlier mirror phase stay as reporter="destination" series of
        // v2 and must not hide v1's or v2's real traffic.
        let before = snap(&requests(&[
            ("source", "v1", "200", 500),
            ("destination", "v2", "200", 480),
            ("destination", "v2", "500", 20),
        ]));
        let after = snap(&requests(&[
            ("source", "v1", "200", 590),
            ("source", "v2", "200", 10),
            ("destination", "v2", "200", 480),
            ("destination", "v2", "500", 20),
        ]));
        let w = after.delta(&before);
        assert_eq!(w.version("v1").requests, 90.0);
        let v2 = w.version("v2");
        assert_eq!((v2.requests, v2.errors), (10.0, 0.0));
        // The old rule (destination only, once any exists) saw no v1 traffic.
        assert_eq!(w.select("v1", Traffic::Mirrored).requests, 0.0);
    }

    #[test]
    fn mirror_window_analyses_mirrored_copies_against_real_baseline() {
        let before = snap(&requests(&[("source", "v1", "200", 100)]));
        let after = snap(&requests(&[
            ("source", "v1", "200", 200),
            ("destination", "v2", "200", 45),
            ("destination", "v2", "500", 5),
        ]));
        let w = after.delta(&before);
        assert_eq!(w.select("v1", Traffic::Real).requests, 100.0);
        let m = w.select("v2", Traffic::Mirrored);
        assert_eq!((m.requests, m.errors), (50.0, 5.0));
        // Real Istio in the same phase: v1 reported twice, v2's copies once.
        let istio = snap(&requests(&[
            ("source", "v1", "200", 200),
            ("destination", "v1", "200", 200),
            ("destination", "v2", "200", 45),
            ("destination", "v2", "500", 5),
        ]))
        .delta(&snap(&requests(&[
            ("source", "v1", "200", 100),
            ("destination", "v1", "200", 100),
        ])));
        assert_eq!(istio.version("v1").requests, 100.0);
        assert_eq!(istio.select("v2", Traffic::Mirrored).requests, 50.0);
    }

    #[test]
    fn destination_only_traffic_still_counts_as_real() {
        // Clients outside the mesh: only the destination's sidecar reports.
        let text = r#"
istio_requests_total{reporter="destination",destination_service_name="d",destination_version="v1",response_code="200"} 6
istio_requests_total{destination_service_name="d",destination_version="v3",response_code="200"} 4
"#;
        let s = snap(text);
        assert_eq!(s.version("v1").requests, 6.0);
        assert_eq!(s.source["v3"].requests, 4.0, "no reporter label: source");
    }

    #[test]
    fn grpc_failures_count_once_with_their_codes() {
        let text = r#"
istio_requests_total{reporter="source",destination_service_name="d",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="0"} 88
istio_requests_total{reporter="source",destination_service_name="d",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="13"} 10
istio_requests_total{reporter="source",destination_service_name="d",destination_version="v2",request_protocol="grpc",response_code="503",grpc_response_status="14"} 2
istio_requests_total{reporter="source",destination_service_name="d",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="5"} 3
istio_requests_total{reporter="source",destination_service_name="d",destination_version="v1",request_protocol="http",response_code="502",grpc_response_status=""} 1
"#;
        let s = snap(text);
        let v2 = s.version("v2");
        assert_eq!((v2.requests, v2.errors), (103.0, 12.0));
        assert_eq!(
            v2.failures,
            BTreeMap::from([
                ("INTERNAL".to_owned(), 10.0),
                ("UNAVAILABLE".to_owned(), 2.0)
            ])
        );
        assert_eq!(s.version("v1").failures["HTTP 502"], 1.0);
        // Another set: NOT_FOUND counts, UNAVAILABLE's 503 still does (as 5xx).
        let codes: GrpcCodes = "not_found".parse().unwrap();
        let s =
            Snapshot::from_samples(&exposition::parse(text).unwrap(), "d", "u", &codes).unwrap();
        let v2 = s.version("v2");
        assert_eq!(v2.errors, 5.0);
        assert_eq!(
            v2.failures,
            BTreeMap::from([("HTTP 503".to_owned(), 2.0), ("NOT_FOUND".to_owned(), 3.0)])
        );
    }

    #[test]
    fn delta_handles_counter_reset() {
        let then = VersionCounters {
            requests: 100.0,
            errors: 10.0,
            buckets: vec![(10.0, 100.0)],
            failures: BTreeMap::from([("HTTP 500".to_owned(), 10.0)]),
        };
        let now = VersionCounters {
            requests: 150.0,
            errors: 12.0,
            buckets: vec![(10.0, 150.0)],
            failures: BTreeMap::from([("HTTP 500".to_owned(), 12.0)]),
        };
        let d = now.delta(&then);
        assert_eq!((d.requests, d.errors, d.buckets[0].1), (50.0, 2.0, 50.0));
        assert_eq!(d.failures["HTTP 500"], 2.0);
        let restarted = VersionCounters {
            requests: 3.0,
            errors: 1.0,
            buckets: vec![(10.0, 3.0)],
            failures: BTreeMap::from([("HTTP 500".to_owned(), 1.0)]),
        };
        let d = restarted.delta(&then);
        assert_eq!((d.requests, d.errors, d.buckets[0].1), (3.0, 1.0, 3.0));
    }
}
