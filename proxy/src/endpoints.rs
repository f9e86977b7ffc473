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
//!   greeter:
//!     port: {name: grpc-api}     # or appProtocol: grpc | http2 | kubernetes.io/h2c
//!     endpoints:
//!     - address: 127.0.0.1:50051
//! ```
//!
//! `port` describes the service port as a Kubernetes Service does, so its
//! protocol is chosen as Istio chooses it: a `name` of `grpc`, `grpc-web`
//! or `http2`, alone or followed by `-suffix`, or an `appProtocol` of
//! `grpc`, `grpc-web`, `http2` or `kubernetes.io/h2c` makes upstream
//! requests HTTP/2 (h2c in plain text, ALPN `h2` over TLS).

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
    /// The service port (name and `appProtocol`), which decides the
    /// upstream protocol; absent: HTTP/1.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<ServicePort>,
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

/// A service port, as a Kubernetes Service or EndpointSlice describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServicePort {
    /// Port name; Istio reads the protocol from its prefix (`grpc-api`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Kubernetes `appProtocol` (`grpc`, `http2`, `kubernetes.io/h2c`, ...);
    /// it wins over the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

/// The application protocol of a service port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortProtocol {
    /// HTTP/1.1 to upstreams, or unknown (Istio's auto-detection): the
    /// default.
    #[default]
    Http,
    /// HTTP/2 to upstreams (`http2`, `kubernetes.io/h2c`).
    Http2,
    /// gRPC, over HTTP/2 (`grpc`, `grpc-web`).
    Grpc,
}

/// `appProtocol` values meshproxy knows (Istio's list and Kubernetes' own).
const APP_PROTOCOLS: [&str; 14] = [
    "http",
    "http2",
    "https",
    "grpc",
    "grpc-web",
    "tcp",
    "tls",
    "udp",
    "mongo",
    "mysql",
    "redis",
    "kubernetes.io/h2c",
    "kubernetes.io/ws",
    "kubernetes.io/wss",
];

// === impl ServicePort ===

impl ServicePort {
    /// The port's protocol, as Istio selects it: `appProtocol` first, then
    /// the name's prefix up to the first `-`. Fails for an unknown
    /// `appProtocol` or a name that is not a port name.
    pub fn protocol(&self) -> Result<PortProtocol, (&'static str, String)> {
        if let Some(app) = &self.app_protocol {
            let lower = app.to_ascii_lowercase();
            if !APP_PROTOCOLS.contains(&lower.as_str()) {
                return Err((
                    "appProtocol",
                    format!(
                        "{app:?} is not a protocol meshproxy knows: use one of {}",
                        APP_PROTOCOLS.join(", ")
                    ),
                ));
            }
            return Ok(match lower.as_str() {
                "grpc" | "grpc-web" => PortProtocol::Grpc,
                "http2" | "kubernetes.io/h2c" => PortProtocol::Http2,
                _ => PortProtocol::Http,
            });
        }
        let Some(name) = &self.name else {
            return Ok(PortProtocol::Http);
        };
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !valid {
            return Err((
                "name",
                format!(
                    "{name:?} is not a port name: use lowercase letters, digits and '-', prefixed by the protocol (grpc, grpc-web, http2, http), e.g. grpc-api"
                ),
            ));
        }
        let prefix = |p: &str| name == p || name.starts_with(&format!("{p}-"));
        Ok(if prefix("grpc") || prefix("grpc-web") {
            PortProtocol::Grpc
        } else if prefix("http2") {
            PortProtocol::Http2
        } else {
            PortProtocol::Http
        })
    }
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
            if let Some(port) = &eps.port {
                port.protocol().map_err(|(field, message)| EndpointsError {
                    field: format!("services.{service}.port.{field}"),
                    message,
                })?;
            }
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

    /// The protocol of `service`'s port (HTTP/1.1 when not declared).
    pub fn protocol(&self, service: &str) -> PortProtocol {
        self.services
            .get(service)
            .and_then(|s| s.port.as_ref())
            .and_then(|p| p.protocol().ok())
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
    fn port_protocols_follow_istio() {
        let p = |name: Option<&str>, app: Option<&str>| {
            ServicePort {
                name: name.map(str::to_owned),
                app_protocol: app.map(str::to_owned),
            }
            .protocol()
        };
        assert_eq!(p(Some("grpc"), None), Ok(PortProtocol::Grpc));
        assert_eq!(p(Some("grpc-web"), None), Ok(PortProtocol::Grpc));
        assert_eq!(p(Some("grpc-api"), None), Ok(PortProtocol::Grpc));
        assert_eq!(p(Some("http2-x"), None), Ok(PortProtocol::Http2));
        assert_eq!(p(Some("grpcx"), None), Ok(PortProtocol::Http));
        assert_eq!(p(Some("http"), None), Ok(PortProtocol::Http));
        assert_eq!(p(None, Some("kubernetes.io/h2c")), Ok(PortProtocol::Http2));
        assert_eq!(p(Some("http"), Some("grpc")), Ok(PortProtocol::Grpc));
        assert_eq!(p(None, None), Ok(PortProtocol::Http));
        assert_eq!(p(None, Some("quic")).unwrap_err().0, "appProtocol");
        assert_eq!(p(Some("GRPC_api"), None).unwrap_err().0, "name");
        let f: EndpointsFile = crate::istio::yaml::from_str(&FILE.replace(
            "  discounts:\n",
            "  discounts:\n    port: {appProtocol: h3}\n",
        ))
        .unwrap();
        let e = f.validate().unwrap_err();
        assert_eq!(e.field, "services.discounts.port.appProtocol");
        assert!(e.message.contains("kubernetes.io/h2c"), "{e}");
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
