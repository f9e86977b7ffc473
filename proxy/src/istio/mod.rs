//! Istio's networking resources (`networking.istio.io`) as plain serde types.
//!
//! This is the one resource model both binaries share: `meshctl` renders and
//! validates these types, `meshproxy` routes by them. The types carry no
//! Kubernetes client dependency; `meshctl` talks to the API server through
//! `kube::core::DynamicObject` built from their JSON form.
//!
//! Field names follow Istio's API (`camelCase`), and only fields that this
//! project understands are modelled. Unknown fields are kept out by
//! [`validate`] and by the CRD-schema test rather than silently dropped at
//! parse time, so the same types read objects written by newer Istio versions.

mod destination_rule;
mod gateway;
mod meta;
pub mod validate;
mod virtual_service;
pub mod yaml;

pub use destination_rule::{
    ClientTlsSettings, ConnectionPoolSettings, DestinationRule, DestinationRuleSpec,
    H2UpgradePolicy, HttpPoolSettings, Subset, TlsMode, TrafficPolicy,
};
pub use gateway::{Gateway, GatewaySpec, Port, Server, ServerTlsMode, ServerTlsSettings};
pub use meta::{ApiVersion, GROUP, ObjectMeta};
pub use virtual_service::{
    Abort, Delay, Destination, Fault, HeaderOperations, Headers, HttpMatchRequest, HttpRetry,
    HttpRoute, HttpRouteDestination, Percent, PortSelector, StringMatch, StringMatchRepr,
    VirtualService, VirtualServiceSpec,
};

use serde::{Deserialize, Serialize};

/// Any of the three resources, tagged by `kind`, as found in a multi-document
/// YAML stream or a JSON list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Resource {
    /// A `Gateway`: which external hosts and ports enter the mesh.
    Gateway(Gateway),
    /// A `VirtualService`: how requests for a host are routed.
    VirtualService(VirtualService),
    /// A `DestinationRule`: which subsets (versions) of a service exist.
    DestinationRule(DestinationRule),
}

// === impl Resource ===

impl Resource {
    /// The resource's `kind` as Kubernetes spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Gateway(_) => "Gateway",
            Self::VirtualService(_) => "VirtualService",
            Self::DestinationRule(_) => "DestinationRule",
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Self::Gateway(r) => &r.metadata,
            Self::VirtualService(r) => &r.metadata,
            Self::DestinationRule(r) => &r.metadata,
        }
    }

    /// The object's `apiVersion`.
    pub fn api_version(&self) -> ApiVersion {
        match self {
            Self::Gateway(r) => r.api_version,
            Self::VirtualService(r) => r.api_version,
            Self::DestinationRule(r) => r.api_version,
        }
    }

    /// The plural resource name used in API paths (`virtualservices`).
    pub fn plural(&self) -> &'static str {
        match self {
            Self::Gateway(_) => "gateways",
            Self::VirtualService(_) => "virtualservices",
            Self::DestinationRule(_) => "destinationrules",
        }
    }
}

impl From<Gateway> for Resource {
    fn from(r: Gateway) -> Self {
        Self::Gateway(r)
    }
}

impl From<VirtualService> for Resource {
    fn from(r: VirtualService) -> Self {
        Self::VirtualService(r)
    }
}

impl From<DestinationRule> for Resource {
    fn from(r: DestinationRule) -> Self {
        Self::DestinationRule(r)
    }
}
