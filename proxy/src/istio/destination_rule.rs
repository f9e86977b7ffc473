//! `DestinationRule`: the subsets (versions) of a service and how to reach them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ApiVersion, ObjectMeta};

/// An Istio `DestinationRule`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRule {
    /// `networking.istio.io/v1` unless stated.
    pub api_version: ApiVersion,
    /// Name, namespace, labels, annotations.
    pub metadata: ObjectMeta,
    /// Host and subsets.
    pub spec: DestinationRuleSpec,
}

/// `DestinationRule.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    /// The service this rule applies to (`discounts`, or its FQDN).
    pub host: String,
    /// Policy applied to all subsets unless a subset overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
    /// Named versions of the service, selected by pod labels.
    #[serde(default)]
    pub subsets: Vec<Subset>,
}

/// A named subset (version) of a service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subset {
    /// Subset name, referenced by `VirtualService` destinations (`v1`).
    pub name: String,
    /// Pod labels selecting the subset's endpoints (`version: v1`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Policy overriding the rule-level one for this subset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
}

/// Traffic policy; client TLS and the HTTP protocol choice are modelled.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicy {
    /// How to talk TLS to the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTlsSettings>,
    /// Connection pool settings; only `http.h2UpgradePolicy` and
    /// `http.useClientProtocol` are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPoolSettings>,
}

/// `trafficPolicy.connectionPool`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionPoolSettings {
    /// HTTP settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpPoolSettings>,
}

/// `trafficPolicy.connectionPool.http`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpPoolSettings {
    /// Whether HTTP/1.1 requests go to the upstream as HTTP/2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h2_upgrade_policy: Option<H2UpgradePolicy>,
    /// Send each request with the client's own HTTP version (HTTP/2
    /// clients get HTTP/2 upstream).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_client_protocol: bool,
}

/// `connectionPool.http.h2UpgradePolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum H2UpgradePolicy {
    /// The mesh default (no upgrade in meshproxy).
    #[default]
    Default,
    /// Keep HTTP/1.1.
    DoNotUpgrade,
    /// Send HTTP/1.1 requests to the upstream as HTTP/2.
    Upgrade,
}

/// Outbound TLS mode (`trafficPolicy.tls.mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TlsMode {
    /// Plain text.
    #[default]
    Disable,
    /// TLS, verifying the server.
    Simple,
    /// mTLS with configured client certificate files.
    Mutual,
    /// mTLS with the proxy's own workload certificate.
    IstioMutual,
}

/// `trafficPolicy.tls`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientTlsSettings {
    /// TLS mode.
    #[serde(default)]
    pub mode: TlsMode,
    /// Client certificate file (PEM), for `MUTUAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    /// Client private key file (PEM), for `MUTUAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// CA certificates file (PEM) to verify the server with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
    /// Names the server certificate must carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
    /// SNI to send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
}
