//! The metrics source a command reads, chosen at run time: where it is
//! ([`Endpoint`], from `metrics:` in `meshctl.yaml`, `--metrics` or
//! `--prometheus`) and the one type behind which either source is read
//! ([`AnySource`]), beside `target::any` for targets.

use std::time::Duration;

use super::prometheus::Prometheus;
use super::proxy::ProxyMetrics;
use super::{GrpcCodes, MetricsError, MetricsSource, Snapshot};

/// meshproxy's default admin metrics endpoint, read when nothing names a
/// metrics source.
pub const DEFAULT_METRICS_URL: &str = "http://127.0.0.1:15000/metrics";

/// How long a scrape may take when windows last `window`: the window,
/// between 1 and 10 seconds (`rollout start`'s interval, `analyze --for`).
pub fn scrape_timeout(window: Duration) -> Duration {
    window.clamp(Duration::from_secs(1), Duration::from_secs(10))
}

/// Where rollout analysis reads metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A meshproxy admin `/metrics` endpoint (Prometheus text).
    Proxy(reqwest::Url),
    /// A Prometheus server, queried with PromQL over Istio's metrics.
    Prometheus(reqwest::Url),
}

/// Either metrics source, chosen at run time.
#[derive(Clone, Debug)]
pub enum AnySource {
    /// A `/metrics` endpoint.
    Proxy(ProxyMetrics),
    /// A Prometheus server.
    Prometheus(Prometheus),
}

// === impl Endpoint ===

impl Endpoint {
    /// The URL, whichever kind of source.
    pub fn url(&self) -> &reqwest::Url {
        match self {
            Self::Proxy(u) | Self::Prometheus(u) => u,
        }
    }
}

impl Default for Endpoint {
    /// meshproxy's admin endpoint on loopback ([`DEFAULT_METRICS_URL`]).
    fn default() -> Self {
        Self::Proxy(reqwest::Url::parse(DEFAULT_METRICS_URL).expect("a constant, valid URL"))
    }
}

// === impl AnySource ===

impl AnySource {
    /// A client for `endpoint` whose scrapes give up after `timeout`,
    /// counting a request as failed on 5xx or a gRPC status in `codes`.
    pub fn open(
        endpoint: &Endpoint,
        timeout: Duration,
        codes: &GrpcCodes,
    ) -> Result<Self, MetricsError> {
        Ok(match endpoint {
            Endpoint::Prometheus(u) => Self::Prometheus(
                Prometheus::new(u.as_str(), timeout)?.with_grpc_codes(codes.clone()),
            ),
            Endpoint::Proxy(u) => {
                Self::Proxy(ProxyMetrics::new(u.as_str(), timeout)?.with_grpc_codes(codes.clone()))
            }
        })
    }
}

impl MetricsSource for AnySource {
    fn describe(&self) -> String {
        match self {
            Self::Proxy(p) => p.describe(),
            Self::Prometheus(p) => format!("prometheus {}", p.describe()),
        }
    }

    async fn scrape(&self, service: &str) -> Result<Snapshot, MetricsError> {
        match self {
            Self::Proxy(p) => p.scrape(service).await,
            Self::Prometheus(p) => p.scrape(service).await,
        }
    }

    fn look_every(&self) -> std::time::Duration {
        match self {
            Self::Proxy(p) => p.look_every(),
            Self::Prometheus(p) => p.look_every(),
        }
    }
}
