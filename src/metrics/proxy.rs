//! meshproxy's `/metrics` endpoint (or any Istio-style exposition, e.g. an
//! Envoy sidecar's `:15090/stats/prometheus`) as a metrics source.

use std::time::Duration;

use super::{GrpcCodes, MetricsError, MetricsSource, Snapshot, exposition};

/// Scrapes a Prometheus/OpenMetrics text endpoint.
#[derive(Clone, Debug)]
pub struct ProxyMetrics {
    url: String,
    client: reqwest::Client,
    codes: GrpcCodes,
}

// === impl ProxyMetrics ===

impl ProxyMetrics {
    /// A source for `url`, each scrape bounded by `timeout`, counting the
    /// default gRPC server faults as failures.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, MetricsError> {
        let client = super::client_for(url, timeout)?;
        Ok(Self {
            url: url.to_owned(),
            client,
            codes: GrpcCodes::default(),
        })
    }

    /// Counts a request as failed on these gRPC statuses (and on 5xx).
    #[must_use]
    pub fn with_grpc_codes(mut self, codes: GrpcCodes) -> Self {
        self.codes = codes;
        self
    }
}

impl MetricsSource for ProxyMetrics {
    fn describe(&self) -> String {
        self.url.clone()
    }

    async fn scrape(&self, service: &str) -> Result<Snapshot, MetricsError> {
        let unreachable = |source| MetricsError::Unreachable {
            url: self.url.clone(),
            source,
        };
        let resp = self
            .client
            .get(&self.url)
            .header(
                "accept",
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            )
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(MetricsError::Status {
                url: self.url.clone(),
                status: status.as_u16(),
            });
        }
        let body = resp.text().await.map_err(unreachable)?;
        let samples = exposition::parse(&body).map_err(|e| MetricsError::Malformed {
            url: self.url.clone(),
            message: e.to_string(),
        })?;
        Snapshot::from_samples(&samples, service, &self.url, &self.codes)
    }
}
