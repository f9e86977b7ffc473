//! `Gateway`: a load balancer at the edge of the mesh.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ApiVersion, ObjectMeta};

/// An Istio `Gateway`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    /// `networking.istio.io/v1` unless stated.
    pub api_version: ApiVersion,
    /// Name, namespace, labels, annotations.
    pub metadata: ObjectMeta,
    /// What the gateway listens for.
    pub spec: GatewaySpec,
}

/// `Gateway.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// Labels of the gateway pods this configuration applies to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// Listeners.
    #[serde(default)]
    pub servers: Vec<Server>,
}

/// One listener of a gateway.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Server {
    /// The port the gateway listens on.
    pub port: Port,
    /// Hosts exposed by this listener.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// TLS settings for HTTPS listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsSettings>,
    /// An optional name for the listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A gateway port.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    /// Port number (1..=65535).
    pub number: u32,
    /// `HTTP`, `HTTPS`, `HTTP2`, `GRPC`, `TCP`, `TLS`, `MONGO`.
    pub protocol: String,
    /// Port name.
    pub name: String,
}

/// How a gateway listener terminates TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerTlsMode {
    /// Pass TLS through, routing by SNI.
    Passthrough,
    /// Terminate TLS with a server certificate.
    #[default]
    Simple,
    /// Terminate TLS and require client certificates.
    Mutual,
    /// Pass mesh mTLS through, routing by SNI.
    AutoPassthrough,
    /// Terminate with Istio's own workload certificates.
    IstioMutual,
    /// Terminate and optionally verify client certificates.
    OptionalMutual,
}

/// `Server.tls`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTlsSettings {
    /// Redirect plain HTTP to HTTPS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub https_redirect: bool,
    /// TLS mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ServerTlsMode>,
    /// Name of the Kubernetes secret holding the certificate and key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_name: Option<String>,
}
