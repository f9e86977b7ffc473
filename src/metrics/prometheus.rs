//! A Prometheus server as a metrics source, so the same rollout works on a
//! real Istio cluster. Two instant queries per scrape over Istio's standard
//! metrics, summed by version and *kept apart by reporter*, so the counting
//! rule of [`super`] (each real request once; mirrored copies only where the
//! rollout asks for them) is applied to the same series as for a direct
//! scrape of meshproxy:
//!
//! ```text
//! sum by (destination_version, response_code, grpc_response_status, reporter) (istio_requests_total{destination_service_name="SVC"})
//! sum by (destination_version, le, reporter) (istio_request_duration_milliseconds_bucket{destination_service_name="SVC"})
//! ```
//!
//! The cumulative sums are differenced by the analysis like a direct scrape.
//! `grpc_response_status` stays in the request sums so a gRPC call that
//! failed with HTTP 200 counts as failed by the same rule
//! ([`super::grpc::failure`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{
    DURATION_BUCKET, GrpcCodes, MetricsError, MetricsSource, REQUESTS_TOTAL, Snapshot, exposition,
};

/// Queries `/api/v1/query` of a Prometheus server.
#[derive(Clone, Debug)]
pub struct Prometheus {
    base: String,
    client: reqwest::Client,
    codes: GrpcCodes,
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
    /// A source for the server at `base` (e.g. `http://127.0.0.1:9090`),
    /// counting the default gRPC server faults as failures.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, MetricsError> {
        let client = super::client_for(base, timeout)?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            client,
            codes: GrpcCodes::default(),
        })
    }

    /// Counts a series as failed when its `grpc_response_status` is one of
    /// these gRPC statuses (and when its `response_code` is 5xx).
    #[must_use]
    pub fn with_grpc_codes(mut self, codes: GrpcCodes) -> Self {
        self.codes = codes;
        self
    }

    /// The PromQL queries for `service`.
    pub fn queries(service: &str) -> [String; 2] {
        let sel = format!("destination_service_name=\"{}\"", service.replace('"', ""));
        [
            format!(
                "sum by (destination_version, response_code, grpc_response_status, reporter) ({REQUESTS_TOTAL}{{{sel}}})"
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
        let unreachable = |source| MetricsError::Unreachable {
            url: url.clone(),
            source,
        };
        let resp = self.client.get(full).send().await.map_err(unreachable)?;
        let status = resp.status();
        let body = resp.text().await.map_err(unreachable)?;
        samples_from_response(name, promql, status, &body, service, &url)
    }
}

/// The samples of one instant-query answer (`body`, with HTTP `status`),
/// named `name` and labelled with `service`.
pub fn samples_from_response(
    name: &str,
    promql: &str,
    status: reqwest::StatusCode,
    body: &str,
    service: &str,
    url: &str,
) -> Result<Vec<exposition::Sample>, MetricsError> {
    let parsed: ApiResponse = serde_json::from_str(body).map_err(|e| MetricsError::Malformed {
        url: url.to_owned(),
        message: format!("not a Prometheus API response ({e})"),
    })?;
    if parsed.status != "success" || !status.is_success() {
        return Err(MetricsError::Malformed {
            url: url.to_owned(),
            message: format!(
                "query {promql:?} failed: {}",
                parsed.error.unwrap_or_else(|| format!("HTTP {status}"))
            ),
        });
    }
    let data = parsed.data.ok_or_else(|| MetricsError::Malformed {
        url: url.to_owned(),
        message: "response has no data".to_owned(),
    })?;
    if data.result_type != "vector" {
        return Err(MetricsError::Malformed {
            url: url.to_owned(),
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
                    url: url.to_owned(),
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

impl MetricsSource for Prometheus {
    fn describe(&self) -> String {
        self.base.clone()
    }

    /// Every 500 ms, two queries each: Prometheus only has new numbers
    /// after its own scrape, so looking more often only adds load.
    fn look_every(&self) -> Duration {
        Duration::from_millis(500)
    }

    async fn scrape(&self, service: &str) -> Result<Snapshot, MetricsError> {
        let [requests, buckets] = Self::queries(service);
        let mut samples = self.query(REQUESTS_TOTAL, &requests, service).await?;
        samples.extend(self.query(DURATION_BUCKET, &buckets, service).await?);
        Snapshot::from_samples(&samples, service, &self.base, &self.codes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Traffic;

    /// A Prometheus answer to the requests query: (reporter, version, code, value).
    fn answer(series: &[(&str, &str, &str, u32)]) -> String {
        let result: Vec<serde_json::Value> = series
            .iter()
            .map(|(r, v, c, n)| {
                serde_json::json!({
                    "metric": {"reporter": r, "destination_version": v, "response_code": c},
                    "value": [1_700_000_000.0, n.to_string()],
                })
            })
            .collect();
        serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": result}})
            .to_string()
    }

    fn snap(series: &[(&str, &str, &str, u32)]) -> Snapshot {
        let [q, _] = Prometheus::queries("d");
        let samples = samples_from_response(
            REQUESTS_TOTAL,
            &q,
            reqwest::StatusCode::OK,
            &answer(series),
            "d",
            "http://prom",
        )
        .unwrap();
        Snapshot::from_samples(&samples, "d", "http://prom", &GrpcCodes::default()).unwrap()
    }

    #[test]
    fn counts_like_a_direct_scrape() {
        // Real Istio: both reporters per version, each request once.
        let w = snap(&[
            ("source", "v1", "200", 190),
            ("destination", "v1", "200", 190),
            ("source", "v2", "503", 2),
            ("destination", "v2", "503", 2),
        ])
        .delta(&snap(&[
            ("source", "v1", "200", 100),
            ("destination", "v1", "200", 100),
        ]));
        assert_eq!(w.version("v1").requests, 90.0);
        assert_eq!(w.version("v2").errors, 2.0);
        // meshproxy after a mirror: v1's source series still count, and the
        // mirror window selects v2's destination-reported copies.
        let w = snap(&[
            ("source", "v1", "200", 150),
            ("destination", "v2", "200", 40),
            ("destination", "v2", "500", 10),
        ])
        .delta(&snap(&[("source", "v1", "200", 100)]));
        assert_eq!(w.version("v1").requests, 50.0);
        let m = w.select("v2", Traffic::Mirrored);
        assert_eq!((m.requests, m.errors), (50.0, 10.0));
    }

    #[test]
    fn a_failed_query_is_malformed_with_the_query() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        let e = samples_from_response(
            REQUESTS_TOTAL,
            "sum(x)",
            reqwest::StatusCode::BAD_REQUEST,
            body,
            "d",
            "http://prom/api/v1/query",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("query \"sum(x)\" failed: parse error"), "{e}");
    }

    #[test]
    fn queries_select_the_service() {
        let [a, b] = Prometheus::queries("discounts");
        assert_eq!(
            a,
            "sum by (destination_version, response_code, grpc_response_status, reporter) (istio_requests_total{destination_service_name=\"discounts\"})"
        );
        assert!(b.contains(
            "istio_request_duration_milliseconds_bucket{destination_service_name=\"discounts\"}"
        ));
    }
}
