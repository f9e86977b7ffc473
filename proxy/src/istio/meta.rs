//! Object metadata and API versions shared by the three resources.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The API group of Istio's networking resources.
pub const GROUP: &str = "networking.istio.io";

/// The `apiVersion` of an Istio networking resource.
///
/// `v1` is the storage version since Istio 1.22; `v1beta1` and `v1alpha3`
/// are still served and are what older control planes know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiVersion {
    /// `networking.istio.io/v1` (default).
    #[default]
    V1,
    /// `networking.istio.io/v1beta1`.
    V1beta1,
    /// `networking.istio.io/v1alpha3`.
    V1alpha3,
}

// === impl ApiVersion ===

impl ApiVersion {
    /// The version alone (`v1`).
    pub fn version(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V1beta1 => "v1beta1",
            Self::V1alpha3 => "v1alpha3",
        }
    }

    /// Group and version (`networking.istio.io/v1`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "networking.istio.io/v1",
            Self::V1beta1 => "networking.istio.io/v1beta1",
            Self::V1alpha3 => "networking.istio.io/v1alpha3",
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an `apiVersion` that is not one of Istio's networking versions.
#[derive(Debug, thiserror::Error)]
#[error(
    "unsupported apiVersion {0:?}: expected networking.istio.io/v1, networking.istio.io/v1beta1 or networking.istio.io/v1alpha3"
)]
pub struct UnknownApiVersion(pub String);

impl FromStr for ApiVersion {
    type Err = UnknownApiVersion;

    /// Accepts the full form (`networking.istio.io/v1`) or the bare version (`v1`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("networking.istio.io/").unwrap_or(s) {
            "v1" => Ok(Self::V1),
            "v1beta1" => Ok(Self::V1beta1),
            "v1alpha3" => Ok(Self::V1alpha3),
            _ => Err(UnknownApiVersion(s.to_owned())),
        }
    }
}

impl Serialize for ApiVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ApiVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if !s.starts_with("networking.istio.io/") {
            return Err(serde::de::Error::custom(UnknownApiVersion(s)));
        }
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The subset of Kubernetes `ObjectMeta` this project reads and writes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Object name (a DNS-1123 subdomain).
    pub name: String,
    /// Namespace; `None` means the target's default namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations (meshctl keeps rollout state in one).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Opaque version for optimistic concurrency, set by the API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Incremented by the API server on every spec change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
}
