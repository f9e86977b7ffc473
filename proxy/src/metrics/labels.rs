//! Label sets of the metrics meshproxy exports, named as Istio names them.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;

/// Labels of `istio_requests_total` and `istio_request_duration_milliseconds`.
///
/// The names and values follow Istio's standard metrics, so PromQL written
/// for a real Istio mesh works against meshproxy unchanged.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Always `source`: meshproxy reports as the client-side proxy.
    pub reporter: &'static str,
    /// Always `meshproxy`.
    pub source_workload: &'static str,
    /// `discounts.default.svc.cluster.local`, or `unknown` when no route matched.
    pub destination_service: Arc<str>,
    /// `discounts`.
    pub destination_service_name: Arc<str>,
    /// `default`.
    pub destination_service_namespace: Arc<str>,
    /// The DestinationRule subset (`v2`), or `unknown`.
    pub destination_version: Arc<str>,
    /// `http` or `grpc`.
    pub request_protocol: &'static str,
    /// The status code sent to the client.
    pub response_code: u16,
    /// The gRPC status a gRPC call ended with (`"0"`, `"14"`), empty for
    /// plain HTTP (Istio's `grpc_response_status`).
    pub grpc_response_status: &'static str,
    /// Envoy response flags (`-`, `UF`, `UT`, `UH`, `FI`, `DI`, `NR`, …).
    pub response_flags: &'static str,
    /// `none` or `mutual_tls`.
    pub connection_security_policy: &'static str,
    /// The client's SPIFFE ID from its verified certificate, or `unknown`.
    pub source_principal: Arc<str>,
}

/// Labels of `meshproxy_http1_handoffs_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandoffLabels {
    /// Why the lean HTTP/1.1 lane handed the connection to hyper
    /// (`h2_prior_knowledge`, `http_1_0`, `upgrade`, `expect`, `connect`,
    /// `request_body`, `invalid_head`, `too_many_headers`, `head_too_large`).
    pub reason: &'static str,
}
