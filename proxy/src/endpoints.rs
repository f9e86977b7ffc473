//! The endpoints file (`DIR/endpoints.yaml`): which addresses serve a service.
//!
//! In a cluster, endpoints come from Kubernetes; in local mode this small file
//! stands in for Pods: each endpoint has an address and labels, and a
//! DestinationRule subset's `labels` select the endpoints whose labels
//! contain them all.
//!
//! ```yaml
//! services:
//!   discounts:               # the service's short host name
//!     endpoints:
//!     - address: 127.0.0.1:8081
//!       labels: {version: v1}
//!     - address: 127.0.0.1:8082
//!       labels: {version: v2}
//! ```

use std::collections::BTreeMap;

use http::uri::Authority;
use serde::{Deserialize, Serialize};

/// The parsed endpoints file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointsFile {
    /// Endpoints per service short name (`discounts`).
    #[serde(default)]
    pub services: BTreeMap<String, ServiceEndpoints>,
}

/// The endpoints of one service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceEndpoints {
    /// Addresses with labels.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

/// One endpoint: an address and the labels subsets select it by.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// `host:port` (`127.0.0.1:8081`).
    pub address: String,
    /// Labels (`version: v1`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A problem in the endpoints file, naming the field and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct EndpointsError {
    /// `services.discounts.endpoints[0].address`.
    pub field: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

// === impl EndpointsFile ===

impl EndpointsFile {
    /// Checks every address and returns them parsed, in file order, per service.
    pub fn validate(&self) -> Result<(), EndpointsError> {
        for (service, eps) in &self.services {
            for (i, ep) in eps.endpoints.iter().enumerate() {
                parse_address(&ep.address).map_err(|message| EndpointsError {
                    field: format!("services.{service}.endpoints[{i}].address"),
                    message,
                })?;
            }
        }
        Ok(())
    }

    /// The addresses of `service` whose labels contain all of `selector`.
    pub fn select(&self, service: &str, selector: &BTreeMap<String, String>) -> Vec<Authority> {
        self.services
            .get(service)
            .map(|s| {
                s.endpoints
                    .iter()
                    .filter(|ep| selector.iter().all(|(k, v)| ep.labels.get(k) == Some(v)))
                    .filter_map(|ep| parse_address(&ep.address).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Parses `host:port` into an authority; the port is required.
pub fn parse_address(address: &str) -> Result<Authority, String> {
    let auth: Authority = address.parse().map_err(|_| {
        format!("{address:?} is not an address: write host:port, e.g. 127.0.0.1:8081")
    })?;
    if auth.port_u16().is_none_or(|p| p == 0) || auth.as_str().contains('@') {
        return Err(format!(
            "{address:?} has no port: write host:port, e.g. 127.0.0.1:8081"
        ));
    }
    Ok(auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "services:\n  discounts:\n    endpoints:\n    - address: 127.0.0.1:8081\n      labels: {version: v1}\n    - address: 127.0.0.1:8082\n      labels: {version: v2, zone: a}\n";

    #[test]
    fn selects_by_labels() {
        let f: EndpointsFile = crate::istio::yaml::from_str(FILE).unwrap();
        f.validate().unwrap();
        let v2 = BTreeMap::from([("version".to_owned(), "v2".to_owned())]);
        assert_eq!(f.select("discounts", &v2), ["127.0.0.1:8082"]);
        assert_eq!(f.select("discounts", &BTreeMap::new()).len(), 2);
        assert!(f.select("reviews", &v2).is_empty());
    }

    #[test]
    fn bad_address_names_field_and_fix() {
        let f: EndpointsFile =
            crate::istio::yaml::from_str(&FILE.replace("127.0.0.1:8082", "localhost")).unwrap();
        assert_eq!(
            f.validate().unwrap_err().to_string(),
            "services.discounts.endpoints[1].address: \"localhost\" has no port: write host:port, e.g. 127.0.0.1:8081"
        );
    }
}
