//! The `discounts` service every end-to-end test rolls out: a VirtualService
//! routing all traffic to subset v1 and a DestinationRule with subsets v1 and
//! v2, plus the local target's endpoints file for it.

use std::net::SocketAddr;

/// The `discounts` VirtualService (v1 at 100%) and DestinationRule (subsets
/// v1, v2), as a local target's `discounts.yaml` holds them.
pub const DISCOUNTS: &str = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: discounts
spec:
  hosts: [discounts]
  http:
  - route:
    - destination: {host: discounts, subset: v1}
      weight: 100
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: discounts
spec:
  host: discounts
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
";

/// The DestinationRule of [`DISCOUNTS`] alone (subsets v1, v2).
#[must_use]
pub fn discounts_rule() -> &'static str {
    DISCOUNTS
        .split_once("---\n")
        .map_or(DISCOUNTS, |(_, rule)| rule)
}

/// [`DISCOUNTS`] routed `v1` percent to v1 and `v2` percent to v2.
#[must_use]
pub fn discounts_at(v1: u8, v2: u8) -> String {
    DISCOUNTS.replace(
        "      weight: 100\n",
        &format!(
            "      weight: {v1}\n    - destination: {{host: discounts, subset: v2}}\n      weight: {v2}\n"
        ),
    )
}

/// A local target's `endpoints.yaml` for `discounts`: each address labelled
/// with its version.
#[must_use]
pub fn discounts_endpoints(endpoints: &[(&str, SocketAddr)]) -> String {
    discounts_endpoints_on(None, endpoints)
}

/// [`discounts_endpoints`] with the service's port declared as `port`
/// (`port: {name: PORT}`, e.g. `grpc-api` for gRPC upstreams) when given.
#[must_use]
pub fn discounts_endpoints_on(port: Option<&str>, endpoints: &[(&str, SocketAddr)]) -> String {
    let mut text = String::from("services:\n  discounts:\n");
    if let Some(port) = port {
        text.push_str(&format!("    port: {{name: {port}}}\n"));
    }
    text.push_str("    endpoints:\n");
    for (version, addr) in endpoints {
        text.push_str(&format!(
            "    - {{address: \"{addr}\", labels: {{version: {version}}}}}\n"
        ));
    }
    text
}
