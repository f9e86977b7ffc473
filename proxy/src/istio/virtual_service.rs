//! `VirtualService`: how requests for a host are routed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ApiVersion, ObjectMeta};

/// An Istio `VirtualService`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualService {
    /// `networking.istio.io/v1` unless stated.
    pub api_version: ApiVersion,
    /// Name, namespace, labels, annotations.
    pub metadata: ObjectMeta,
    /// Hosts, gateways and HTTP routes.
    pub spec: VirtualServiceSpec,
}

/// `VirtualService.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceSpec {
    /// Destination hosts this routing applies to.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Gateways (and `mesh`) the routes apply to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// Ordered HTTP routes; the first match wins.
    #[serde(default)]
    pub http: Vec<HttpRoute>,
}

/// One HTTP route: match conditions and weighted destinations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    /// Route name (unique within the VirtualService).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Conditions, OR-ed; empty matches everything.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "match")]
    pub matches: Vec<HttpMatchRequest>,
    /// Weighted destinations.
    #[serde(default)]
    pub route: Vec<HttpRouteDestination>,
    /// Overall request timeout (`"5s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Retry policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<HttpRetry>,
    /// Fault injection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    /// Shadow traffic destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Destination>,
    /// Share of traffic mirrored (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_percentage: Option<Percent>,
    /// Header operations for every request this route takes and its
    /// responses (applied after the chosen destination's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
}

/// Match conditions, AND-ed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpMatchRequest {
    /// Name of the match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// URI match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<StringMatch>,
    /// Method match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    /// Authority (Host) match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<StringMatch>,
    /// Header matches (keys lowercase).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, StringMatch>,
    /// Headers that must be absent / not match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub without_headers: BTreeMap<String, StringMatch>,
    /// Query parameter matches.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query_params: BTreeMap<String, StringMatch>,
    /// Case-insensitive URI matching.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_uri_case: bool,
}

/// One of exact, prefix or regex (RE2 syntax).
///
/// Istio writes it as a one-key map (`uri: {prefix: /api}`); serde_yaml
/// would read and write a plain enum as a YAML tag (`!prefix /api`), so the
/// wire form goes through [`StringMatchRepr`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StringMatchRepr", into = "StringMatchRepr")]
pub enum StringMatch {
    /// Exact string.
    Exact(String),
    /// Prefix.
    Prefix(String),
    /// RE2 regular expression, anchored on the whole value.
    Regex(String),
}

/// The wire form of [`StringMatch`]: exactly one of the three keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StringMatchRepr {
    /// Exact string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// Prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// RE2 regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

impl TryFrom<StringMatchRepr> for StringMatch {
    type Error = String;

    fn try_from(r: StringMatchRepr) -> Result<Self, String> {
        match (r.exact, r.prefix, r.regex) {
            (Some(s), None, None) => Ok(Self::Exact(s)),
            (None, Some(s), None) => Ok(Self::Prefix(s)),
            (None, None, Some(s)) => Ok(Self::Regex(s)),
            _ => Err("a string match needs exactly one of `exact`, `prefix` or `regex`".to_owned()),
        }
    }
}

impl From<StringMatch> for StringMatchRepr {
    fn from(m: StringMatch) -> Self {
        match m {
            StringMatch::Exact(s) => Self {
                exact: Some(s),
                ..Self::default()
            },
            StringMatch::Prefix(s) => Self {
                prefix: Some(s),
                ..Self::default()
            },
            StringMatch::Regex(s) => Self {
                regex: Some(s),
                ..Self::default()
            },
        }
    }
}

/// A destination with its share of traffic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteDestination {
    /// Where to send the request.
    pub destination: Destination,
    /// Share of traffic, 0..=100; weights of a route sum to 100. Istio treats
    /// an absent weight on a single destination as 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Header operations for requests sent to this destination and their
    /// responses (e.g. a `set-cookie` naming the version, for sticky sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
}

/// Istio `Headers`: operations on the request sent upstream and on the
/// response sent back to the client.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headers {
    /// Operations on the request before it is forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<HeaderOperations>,
    /// Operations on the response before it is returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<HeaderOperations>,
}

/// Istio `HeaderOperations`, applied in Envoy's order: `remove`, then `set`
/// (overwrite), then `add` (append).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderOperations {
    /// Overwrite these headers (name → value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    /// Append these headers (name → value), keeping existing values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub add: BTreeMap<String, String>,
    /// Remove these headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

// === impl Headers ===

impl Headers {
    /// No operation in either direction?
    pub fn is_empty(&self) -> bool {
        self.request.as_ref().is_none_or(HeaderOperations::is_empty)
            && self
                .response
                .as_ref()
                .is_none_or(HeaderOperations::is_empty)
    }
}

// === impl HeaderOperations ===

impl HeaderOperations {
    /// No `set`, `add` or `remove`?
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

/// A service (and optionally a subset and port).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// Service host (`discounts`).
    pub host: String,
    /// DestinationRule subset (`v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    /// Port on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSelector>,
}

/// `destination.port`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PortSelector {
    /// Port number.
    pub number: u32,
}

/// Retry policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRetry {
    /// Number of retries (not counting the first try).
    #[serde(default)]
    pub attempts: u32,
    /// Timeout per try (`"2s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<String>,
    /// Comma-separated conditions (`5xx,connect-failure,reset,gateway-error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<String>,
}

/// Fault injection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    /// Delay a share of requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Delay>,
    /// Abort a share of requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<Abort>,
}

/// `fault.delay`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delay {
    /// Fixed delay (`"5s"`).
    pub fixed_delay: String,
    /// Share of requests delayed (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<Percent>,
}

/// `fault.abort`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Abort {
    /// HTTP status returned (0: not set; then `grpcStatus` is).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub http_status: u16,
    /// gRPC status returned instead, by name (`UNAVAILABLE`), as Istio
    /// spells it; gRPC clients get it as `grpc-status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<String>,
    /// Share of requests aborted (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<Percent>,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

/// A percentage, 0.0..=100.0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percent {
    /// The value.
    pub value: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_match_is_a_one_key_map_on_the_wire() {
        let m: HttpMatchRequest = crate::istio::yaml::from_str(
            "uri: {prefix: /api}\nheaders:\n  x-canary: {exact: \"yes\"}\n",
        )
        .unwrap();
        assert_eq!(m.uri, Some(StringMatch::Prefix("/api".into())));
        let printed = crate::istio::yaml::to_string(&m).unwrap();
        assert!(printed.contains("uri:\n  prefix: /api"), "{printed}");
        let err =
            crate::istio::yaml::from_str::<HttpMatchRequest>("uri: {prefix: /a, exact: /b}\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("exactly one of `exact`, `prefix` or `regex`"),
            "{err}"
        );
    }

    #[test]
    fn header_operations_use_istio_field_names() {
        let text = "name: r\nheaders: {request: {remove: [x-debug]}}\nroute:\n- destination: {host: d, subset: v1}\n  weight: 100\n  headers:\n    request: {set: {x-version: v1}}\n    response: {add: {set-cookie: \"v=v1; Path=/\"}}\n";
        let r: HttpRoute = crate::istio::yaml::from_str(text).unwrap();
        assert_eq!(
            r.headers.as_ref().unwrap().request.as_ref().unwrap().remove,
            ["x-debug"]
        );
        let h = r.route[0].headers.as_ref().unwrap();
        assert_eq!(h.request.as_ref().unwrap().set["x-version"], "v1");
        assert_eq!(
            h.response.as_ref().unwrap().add["set-cookie"],
            "v=v1; Path=/"
        );
        assert!(!h.is_empty() && Headers::default().is_empty());
        let printed = crate::istio::yaml::to_string(&r).unwrap();
        let again: HttpRoute = crate::istio::yaml::from_str(&printed).unwrap();
        assert_eq!(again, r);
    }
}
