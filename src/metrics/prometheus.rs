//! A Prometheus server as a metrics source, so the same rollout works on a
//! real Istio cluster. Two instant queries per scrape over Istio's standard
//! metrics, summed by version (and reporter, to avoid counting a request
//! twice when both sidecars report it):
//!
//! ```text
//! sum by (destination_version, response_code, reporter) (istio_requests_total{destination_service_name="SVC"})
//! sum by (destination_version, le, reporter) (istio_request_duration_milliseconds_bucket{destination_service_name="SVC"})
//! ```
//!
//! The cumulative sums are differenced by the analysis like a direct scrape.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{DURATION_BUCKET, MetricsError, MetricsSource, REQUESTS_TOTAL, Snapshot, exposition};

/// Queries `/api/v1/query` of a Prometheus server.
#[derive(Clone, Debug)]
pub struct Prometheus {
    base: String,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiData {
    result_type: String,
    result: Vec<VectorSample>,
}

#[derive(Deserialize)]
struct VectorSample {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

// === impl Prometheus ===

impl Prometheus {
    /// A source for the server at `base` (e.g. `http://127.0.0.1:9090`).
    pub fn new(base: &str, timeout: Duration) -> Result<Self, MetricsError> {
        let client = super::http_client(timeout).map_err(|source| MetricsError::Unreachable {
            url: base.to_owned(),
            source,
        })?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            client,
        })
    }

    /// The PromQL queries for `service`.
    pub fn queries(service: &str) -> [String; 2] {
        let sel = format!("destination_service_name=\"{}\"", service.replace('"', ""));
        [
            format!(
                "sum by (destination_version, response_code, reporter) ({REQUESTS_TOTAL}{{{sel}}})"
            ),
            format!("sum by (destination_version, le, reporter) ({DURATION_BUCKET}{{{sel}}})"),
        ]
    }

    async fn query(
        &self,
        name: &str,
        promql: &str,
        service: &str,
    ) -> Result<Vec<exposition::Sample>, MetricsError> {
        let url = format!("{}/api/v1/query", self.base);
        let full = reqwest::Url::parse_with_params(&url, &[("query", promql)]).map_err(|e| {
            MetricsError::Malformed {
                url: url.clone(),
                message: format!("not a valid URL: {e}; use --prometheus http://HOST:9090"),
            }
        })?;
        let resp =
            self.client
                .get(full)
                .send()
                .await
                .map_err(|source| MetricsError::Unreachable {
                    url: url.clone(),
                    source,
                })?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|source| MetricsError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let parsed: ApiResponse =
            serde_json::from_str(&body).map_err(|e| MetricsError::Malformed {
                url: url.clone(),
                message: format!("not a Prometheus API response ({e})"),
            })?;
        if parsed.status != "success" || !status.is_success() {
            return Err(MetricsError::Malformed {
                url,
                message: format!(
                    "query {promql:?} failed: {}",
                    parsed.error.unwrap_or_else(|| format!("HTTP {status}"))
                ),
            });
        }
        let data = parsed.data.ok_or_else(|| MetricsError::Malformed {
            url: url.clone(),
            message: "response has no data".to_owned(),
        })?;
        if data.result_type != "vector" {
            return Err(MetricsError::Malformed {
                url,
                message: format!("expected a vector result, got {}", data.result_type),
            });
        }
        data.result
            .into_iter()
            .map(|s| {
                let mut labels = s.metric;
                labels.insert("destination_service_name".to_owned(), service.to_owned());
                let value =
                    exposition::parse_le(&s.value.1).ok_or_else(|| MetricsError::Malformed {
                        url: url.clone(),
                        message: format!("value {:?} is not a number", s.value.1),
                    })?;
                Ok(exposition::Sample {
                    name: name.to_owned(),
                    labels,
                    value,
                })
            })
            .collect()
    }
}

impl MetricsSource for Prometheus {
    fn describe(&self) -> String {
        self.base.clone()
    }

    async fn scrape(&self, service: &str) -> Result<Snapshot, MetricsError> {
        let [requests, buckets] = Self::queries(service);
        let mut samples = self.query(REQUESTS_TOTAL, &requests, service).await?;
        samples.extend(self.query(DURATION_BUCKET, &buckets, service).await?);
        Snapshot::from_samples(&samples, service, &self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_select_the_service() {
        let [a, b] = Prometheus::queries("discounts");
        assert_eq!(
            a,
            "sum by (destination_version, response_code, reporter) (istio_requests_total{destination_service_name=\"discounts\"})"
        );
        assert!(b.contains(
            "istio_request_duration_milliseconds_bucket{destination_service_name=\"discounts\"}"
        ));
    }
}
