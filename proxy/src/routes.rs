//! The compiled, immutable routing table.
//!
//! A [`RouteTable`] is built once per configuration load from the
//! VirtualServices, DestinationRules and the endpoints file: hosts are
//! indexed, regexes compiled, durations parsed, weights turned into a
//! [`WeightedSchedule`] and every destination resolved to its endpoints and
//! metric handles. The request path only reads it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::uri::Authority;
use http::{HeaderMap, HeaderName, Method, StatusCode};
use regex::Regex;
use serde::Serialize;

use crate::endpoints::{EndpointsFile, PortProtocol};
use crate::headers::HeaderRules;
use crate::istio::validate::{parse_duration, short_host};
use crate::istio::{
    DestinationRule, HttpMatchRequest, HttpRoute, Resource, StringMatch, VirtualService,
};
use crate::metrics::{DestinationId, DestinationMetrics, ProxyMetrics};
use crate::split::WeightedSchedule;

/// A configuration problem found while compiling, naming the file, the
/// object, the field and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {object} {field}: {message}")]
pub struct CompileError {
    /// The file the object came from.
    pub file: String,
    /// `VirtualService/discounts`.
    pub object: String,
    /// `spec.http[0].match[0].uri.regex`.
    pub field: String,
    /// What is wrong and what is expected.
    pub message: String,
}

/// The resources of one configuration, with the file each came from.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ConfigSnapshot {
    /// Incremented on every accepted load; 1 for the first.
    pub generation: u64,
    /// The configuration directory.
    pub source: String,
    /// Resource files, in load order, with their resources.
    pub files: Vec<ConfigFile>,
    /// The endpoints file's content.
    pub endpoints: EndpointsFile,
}

/// One resource file.
#[derive(Clone, Debug, Serialize)]
pub struct ConfigFile {
    /// File name inside the directory.
    pub name: String,
    /// Its resources.
    pub resources: Vec<Resource>,
}

/// The live routing table.
#[derive(Debug)]
pub struct RouteTable {
    /// Keyed by a fast hash: one lookup per request, keys from the config.
    exact: HashMap<Box<str>, Arc<VirtualHost>, foldhash::fast::RandomState>,
    /// `(".example.com", vhost)`, longest suffix first.
    wildcard: Vec<(Box<str>, Arc<VirtualHost>)>,
    any: Option<Arc<VirtualHost>>,
    snapshot: Arc<ConfigSnapshot>,
}

/// The routes of one VirtualService.
#[derive(Debug)]
pub struct VirtualHost {
    /// `default/discounts`.
    pub name: String,
    /// Ordered routes; the first that matches wins.
    pub routes: Vec<Route>,
}

/// One compiled `http[]` route.
#[derive(Debug)]
pub struct Route {
    /// The route's name, or `http[i]`.
    pub name: String,
    matches: Vec<RequestMatch>,
    destinations: Vec<Arc<Backend>>,
    weights: Vec<u32>,
    split: WeightedSchedule,
    /// `None`: the proxy's default timeout; `Some(ZERO)`: disabled (`timeout: 0s`).
    pub timeout: Option<Duration>,
    /// Retry policy (Istio's default when `retries` is absent).
    pub retry: RetryPolicy,
    /// Fault injection.
    pub fault: FaultPolicy,
    /// Shadow traffic: the destination and the share of requests copied.
    pub mirror: Option<Mirror>,
    /// Header operations per destination (parallel to `destinations`);
    /// empty when neither the route nor any destination has any.
    header_rules: Box<[Option<Box<HeaderRules>>]>,
}

/// Where a route mirrors traffic.
#[derive(Debug)]
pub struct Mirror {
    /// The shadow destination.
    pub backend: Arc<Backend>,
    /// Share of requests mirrored, 0.0..=1.0.
    pub fraction: f64,
}

/// Conditions of one `match[]` entry, AND-ed.
#[derive(Debug)]
struct RequestMatch {
    uri: Option<Matcher>,
    ignore_uri_case: bool,
    method: Option<Matcher>,
    authority: Option<Matcher>,
    headers: Vec<(HeaderName, Matcher)>,
    without_headers: Vec<(HeaderName, Matcher)>,
    query: Vec<(String, Matcher)>,
}

/// A compiled `StringMatch`.
#[derive(Debug)]
enum Matcher {
    Exact(String),
    Prefix(String),
    /// Anchored on the whole value, as RE2 `FullMatch` (Istio) does.
    Regex(Regex),
}

/// A destination: a service version with its endpoints.
#[derive(Debug)]
pub struct Backend {
    /// `discounts`/`v2`, for logs.
    pub name: String,
    endpoints: Box<[Authority]>,
    next: AtomicUsize,
    /// Metric handles for this destination.
    pub metrics: DestinationMetrics,
    /// DestinationRule `trafficPolicy.tls` (the subset's overrides the
    /// rule's); `None` is plain text (`DISABLE` compiles to `None`).
    pub tls: Option<crate::istio::ClientTlsSettings>,
    /// When requests go to this destination as HTTP/2.
    pub http2: Http2Policy,
}

/// When a destination's requests go upstream as HTTP/2, as Istio decides:
/// always for a port declared `grpc`/`http2` or with `h2UpgradePolicy:
/// UPGRADE`; with `useClientProtocol`, when the client spoke HTTP/2; and
/// always for gRPC requests, which never go out as HTTP/1.1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Http2Policy {
    /// Every request goes as HTTP/2.
    pub always: bool,
    /// HTTP/2 clients' requests go as HTTP/2 (`useClientProtocol`).
    pub client_protocol: bool,
}

// === impl Http2Policy ===

impl Http2Policy {
    /// Whether a request from an HTTP/2 client (`client_h2`), gRPC or
    /// not, goes upstream as HTTP/2.
    #[inline]
    pub fn use_h2(self, client_h2: bool, grpc: bool) -> bool {
        self.always || grpc || (self.client_protocol && client_h2)
    }
}

/// Which failures are retried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetryOn {
    /// `5xx`: any 5xx response, and per-try timeouts.
    pub server_error: bool,
    /// `gateway-error`: 502, 503, 504, and per-try timeouts.
    pub gateway_error: bool,
    /// `connect-failure`.
    pub connect_failure: bool,
    /// `reset` / `refused-stream`: the connection failed after it was set up.
    pub reset: bool,
    /// `retriable-4xx`: 409.
    pub conflict: bool,
    /// gRPC statuses (in a trailers-only response's headers) retried, as
    /// a bit set of codes: `cancelled`, `deadline-exceeded`, `internal`,
    /// `resource-exhausted`, `unavailable`.
    pub grpc: u32,
}

/// A route's retry policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first try.
    pub attempts: u32,
    /// Timeout of each try.
    pub per_try_timeout: Option<Duration>,
    /// Conditions that trigger a retry.
    pub on: RetryOn,
}

/// A route's fault injection.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultPolicy {
    /// Fixed delay and the share of requests delayed (0.0..=1.0).
    pub delay: Option<(Duration, f64)>,
    /// What aborted requests get and the share aborted (0.0..=1.0).
    pub abort: Option<(AbortWith, f64)>,
}

/// The answer of an injected abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbortWith {
    /// `httpStatus`: this HTTP status (gRPC clients get its gRPC mapping).
    Http(StatusCode),
    /// `grpcStatus`: this gRPC status (plain HTTP clients get its HTTP
    /// mapping).
    Grpc(u8),
}

// === impl RetryPolicy ===

impl Default for RetryPolicy {
    /// Istio's default: 2 retries on connect failures and refused streams.
    fn default() -> Self {
        Self {
            attempts: 2,
            per_try_timeout: None,
            on: RetryOn {
                connect_failure: true,
                reset: false,
                ..RetryOn::default()
            },
        }
    }
}

// === impl RouteTable ===

impl RouteTable {
    /// A table that routes nothing (before the first load).
    pub fn empty() -> Self {
        Self {
            exact: HashMap::default(),
            wildcard: Vec::new(),
            any: None,
            snapshot: Arc::new(ConfigSnapshot::default()),
        }
    }

    /// Compiles a configuration. `metrics` provides the destinations' handles.
    pub fn compile(
        snapshot: ConfigSnapshot,
        metrics: &ProxyMetrics,
    ) -> Result<Self, Vec<CompileError>> {
        let mut cx = Compiler {
            endpoints: &snapshot.endpoints,
            metrics,
            rules: BTreeMap::new(),
            backends: HashMap::new(),
            errors: Vec::new(),
        };
        for f in &snapshot.files {
            for r in &f.resources {
                if let Resource::DestinationRule(dr) = r {
                    cx.rules
                        .insert(short_host(&dr.spec.host).to_ascii_lowercase(), dr);
                }
            }
        }
        let mut exact: HashMap<Box<str>, (Arc<VirtualHost>, String)> = HashMap::new();
        let mut wildcard: Vec<(Box<str>, Arc<VirtualHost>)> = Vec::new();
        let mut any = None;
        for f in &snapshot.files {
            for r in &f.resources {
                let Resource::VirtualService(vs) = r else {
                    continue;
                };
                let object = format!("VirtualService/{}", vs.metadata.name);
                let vhost = Arc::new(cx.virtual_host(&f.name, &object, vs));
                let ns = vs.metadata.namespace.as_deref().unwrap_or("default");
                for (i, host) in vs.spec.hosts.iter().enumerate() {
                    let host = host.to_ascii_lowercase();
                    if host == "*" {
                        any = Some(vhost.clone());
                    } else if let Some(suffix) = host.strip_prefix('*') {
                        wildcard.push((suffix.into(), vhost.clone()));
                    } else {
                        let mut names = vec![host.clone()];
                        if !host.contains('.') {
                            // A short name also answers to its cluster names.
                            names.push(format!("{host}.{ns}"));
                            names.push(format!("{host}.{ns}.svc"));
                            names.push(format!("{host}.{ns}.svc.cluster.local"));
                        }
                        for name in names {
                            let owner = format!("{} ({})", object, f.name);
                            if let Some((_, other)) = exact.get(name.as_str()) {
                                cx.errors.push(CompileError {
                                    file: f.name.clone(),
                                    object: object.clone(),
                                    field: format!("spec.hosts[{i}]"),
                                    message: format!(
                                        "host {name:?} is already routed by {other}: keep each host in one VirtualService"
                                    ),
                                });
                                break;
                            }
                            exact.insert(name.into(), (vhost.clone(), owner));
                        }
                    }
                }
            }
        }
        if !cx.errors.is_empty() {
            return Err(cx.errors);
        }
        wildcard.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        Ok(Self {
            exact: exact.into_iter().map(|(k, (v, _))| (k, v)).collect(),
            wildcard,
            any,
            snapshot: Arc::new(snapshot),
        })
    }

    /// The configuration this table was compiled from.
    pub fn snapshot(&self) -> &Arc<ConfigSnapshot> {
        &self.snapshot
    }

    /// The VirtualService for a request's host (`Host` / `:authority`, any port).
    pub fn host(&self, authority: &str) -> Option<&Arc<VirtualHost>> {
        let host = strip_port(authority);
        let lower;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = host.to_ascii_lowercase();
            lower.as_str()
        } else {
            host
        };
        if let Some(v) = self.exact.get(host) {
            return Some(v);
        }
        self.wildcard
            .iter()
            .find(|(suffix, _)| host.len() > suffix.len() && host.ends_with(&**suffix))
            .map(|(_, v)| v)
            .or(self.any.as_ref())
    }
}

fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        // [::1]:8080
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    }
}

// === impl VirtualHost ===

impl VirtualHost {
    /// The first route that matches the request.
    pub fn route(&self, method: &Method, uri: &http::Uri, headers: &HeaderMap) -> Option<&Route> {
        self.routes.iter().find(|r| {
            r.matches.is_empty() || r.matches.iter().any(|m| m.matches(method, uri, headers))
        })
    }
}

// === impl Route ===

impl Route {
    /// Picks the destination for the next request by weight.
    pub fn pick(&self) -> &Arc<Backend> {
        &self.destinations[self.split.pick()]
    }

    /// The destination for subset `version`, if the route currently sends
    /// it traffic (weight above 0). Sticky sessions use it.
    pub fn destination_for_version(&self, version: &str) -> Option<&Arc<Backend>> {
        self.destinations
            .iter()
            .zip(&self.weights)
            .find(|(b, w)| **w > 0 && &*b.metrics.id().version == version)
            .map(|(b, _)| b)
    }

    /// The header operations for a request sent to `backend` (one of this
    /// route's destinations): its own, then the route's. `None` without any.
    #[inline]
    pub fn header_rules(&self, backend: &Backend) -> Option<&HeaderRules> {
        if self.header_rules.is_empty() {
            return None;
        }
        let i = self
            .destinations
            .iter()
            .position(|b| std::ptr::eq(&**b, backend))?;
        self.header_rules[i].as_deref()
    }
}

// === impl RequestMatch ===

impl RequestMatch {
    fn matches(&self, method: &Method, uri: &http::Uri, headers: &HeaderMap) -> bool {
        if let Some(m) = &self.uri {
            let path = uri.path();
            let ok = if self.ignore_uri_case {
                m.matches(&path.to_ascii_lowercase())
            } else {
                m.matches(path)
            };
            if !ok {
                return false;
            }
        }
        if let Some(m) = &self.method
            && !m.matches(method.as_str())
        {
            return false;
        }
        if let Some(m) = &self.authority {
            let auth = uri
                .authority()
                .map(Authority::as_str)
                .or_else(|| {
                    headers
                        .get(http::header::HOST)
                        .and_then(|h| h.to_str().ok())
                })
                .unwrap_or("");
            if !m.matches(auth) {
                return false;
            }
        }
        for (name, m) in &self.headers {
            match headers.get(name).and_then(|v| v.to_str().ok()) {
                Some(v) if m.matches(v) => {}
                _ => return false,
            }
        }
        for (name, m) in &self.without_headers {
            if headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| m.matches(v))
            {
                return false;
            }
        }
        if !self.query.is_empty() {
            let q = uri.query().unwrap_or("");
            for (key, m) in &self.query {
                let found = q.split('&').any(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    k == key && m.matches(v)
                });
                if !found {
                    return false;
                }
            }
        }
        true
    }
}

// === impl Matcher ===

impl Matcher {
    fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(s) => value == s,
            Self::Prefix(s) => value.starts_with(s.as_str()),
            Self::Regex(r) => r.is_match(value),
        }
    }
}

// === impl Backend ===

impl Backend {
    /// The next endpoint in round-robin order, `None` when there is none.
    pub fn next_endpoint(&self) -> Option<&Authority> {
        if self.endpoints.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.endpoints.len();
        Some(&self.endpoints[i])
    }

    /// The number of endpoints.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }
}

struct Compiler<'a> {
    endpoints: &'a EndpointsFile,
    metrics: &'a ProxyMetrics,
    rules: BTreeMap<String, &'a DestinationRule>,
    backends: HashMap<(String, Option<String>), Arc<Backend>>,
    errors: Vec<CompileError>,
}

impl Compiler<'_> {
    fn error(&mut self, file: &str, object: &str, field: String, message: String) {
        self.errors.push(CompileError {
            file: file.to_owned(),
            object: object.to_owned(),
            field,
            message,
        });
    }

    fn virtual_host(&mut self, file: &str, object: &str, vs: &VirtualService) -> VirtualHost {
        let ns = vs.metadata.namespace.as_deref().unwrap_or("default");
        let routes = vs
            .spec
            .http
            .iter()
            .enumerate()
            .filter_map(|(i, r)| self.route(file, object, ns, &format!("spec.http[{i}]"), r))
            .collect();
        VirtualHost {
            name: format!("{ns}/{}", vs.metadata.name),
            routes,
        }
    }

    fn route(
        &mut self,
        file: &str,
        object: &str,
        ns: &str,
        at: &str,
        r: &HttpRoute,
    ) -> Option<Route> {
        let errors_before = self.errors.len();
        let mut matches = Vec::new();
        for (j, m) in r.matches.iter().enumerate() {
            if let Some(m) = self.request_match(file, object, &format!("{at}.match[{j}]"), m) {
                matches.push(m);
            }
        }
        let mut destinations = Vec::new();
        let mut weights = Vec::new();
        let mut header_rules = Vec::new();
        let single = r.route.len() == 1;
        let route_headers_ok =
            self.header_errors(file, object, &format!("{at}.headers"), r.headers.as_ref());
        for (j, d) in r.route.iter().enumerate() {
            let at_dest = format!("{at}.route[{j}].headers");
            if self.header_errors(file, object, &at_dest, d.headers.as_ref()) && route_headers_ok {
                header_rules.push(
                    HeaderRules::compile(d.headers.as_ref(), r.headers.as_ref())
                        .ok()
                        .flatten()
                        .map(Box::new),
                );
            }
            destinations.push(self.backend(
                ns,
                &d.destination.host,
                d.destination.subset.as_deref(),
            ));
            weights.push(d.weight.unwrap_or(if single { 100 } else { 0 }));
        }
        let split = match WeightedSchedule::new(&weights) {
            Ok(s) => Some(s),
            Err(e) => {
                self.error(file, object, format!("{at}.route"), e.to_string());
                None
            }
        };
        let duration = |cx: &mut Self, field: String, s: &str| match parse_duration(s) {
            Some(d) => Some(d),
            None => {
                cx.error(
                    file,
                    object,
                    field,
                    format!("{s:?} is not a duration: use a number with a unit, e.g. \"500ms\", \"5s\" or \"1m\""),
                );
                None
            }
        };
        let timeout = r
            .timeout
            .as_deref()
            .and_then(|t| duration(self, format!("{at}.timeout"), t));
        let mut retry = RetryPolicy::default();
        if let Some(rt) = &r.retries {
            retry.attempts = rt.attempts;
            retry.per_try_timeout = rt.per_try_timeout.as_deref().and_then(|t| {
                duration(self, format!("{at}.retries.perTryTimeout"), t).filter(|d| !d.is_zero())
            });
            if let Some(on) = &rt.retry_on {
                match parse_retry_on(on) {
                    Ok(on) => retry.on = on,
                    Err(msg) => self.error(file, object, format!("{at}.retries.retryOn"), msg),
                }
            }
        }
        let mut fault = FaultPolicy::default();
        if let Some(f) = &r.fault {
            if let Some(d) = &f.delay
                && let Some(delay) =
                    duration(self, format!("{at}.fault.delay.fixedDelay"), &d.fixed_delay)
            {
                fault.delay = Some((delay, fraction(d.percentage)));
            }
            if let Some(a) = &f.abort {
                let grpc = a.grpc_status.as_deref().map(crate::grpc::parse_code);
                match (grpc, StatusCode::from_u16(a.http_status)) {
                    (Some(Some(code)), _) => {
                        fault.abort = Some((AbortWith::Grpc(code), fraction(a.percentage)));
                    }
                    (Some(None), _) => self.error(
                        file,
                        object,
                        format!("{at}.fault.abort.grpcStatus"),
                        "not a gRPC status: use a name such as UNAVAILABLE or INTERNAL".to_owned(),
                    ),
                    (None, Ok(s)) => {
                        fault.abort = Some((AbortWith::Http(s), fraction(a.percentage)));
                    }
                    (None, Err(_)) => self.error(
                        file,
                        object,
                        format!("{at}.fault.abort.httpStatus"),
                        format!("{} is not an HTTP status: use 200 to 599", a.http_status),
                    ),
                }
            }
        }
        let mirror = r.mirror.as_ref().map(|m| Mirror {
            backend: self.backend(ns, &m.host, m.subset.as_deref()),
            fraction: fraction(r.mirror_percentage),
        });
        if self.errors.len() > errors_before {
            return None;
        }
        Some(Route {
            name: r
                .name
                .clone()
                .unwrap_or_else(|| at.trim_start_matches("spec.").to_owned()),
            matches,
            destinations,
            weights,
            split: split?,
            timeout,
            retry,
            fault,
            mirror,
            header_rules: if header_rules.iter().all(Option::is_none) {
                Box::default()
            } else {
                header_rules.into()
            },
        })
    }

    /// Reports the header operations that cannot be compiled; `true` when
    /// there are none.
    fn header_errors(
        &mut self,
        file: &str,
        object: &str,
        at: &str,
        headers: Option<&crate::istio::Headers>,
    ) -> bool {
        match HeaderRules::compile(headers, None) {
            Ok(_) => true,
            Err(errs) => {
                for e in errs {
                    self.error(file, object, format!("{at}.{}", e.field), e.message);
                }
                false
            }
        }
    }

    fn request_match(
        &mut self,
        file: &str,
        object: &str,
        at: &str,
        m: &HttpMatchRequest,
    ) -> Option<RequestMatch> {
        let before = self.errors.len();
        let compile = |cx: &mut Self, field: String, sm: &StringMatch| -> Option<Matcher> {
            match sm {
                StringMatch::Exact(s) => Some(Matcher::Exact(s.clone())),
                StringMatch::Prefix(s) => Some(Matcher::Prefix(s.clone())),
                StringMatch::Regex(re) => match Regex::new(&format!("^(?:{re})$")) {
                    Ok(r) => Some(Matcher::Regex(r)),
                    Err(e) => {
                        cx.error(
                            file,
                            object,
                            field,
                            format!("{re:?} is not a valid RE2 regular expression: {e}"),
                        );
                        None
                    }
                },
            }
        };
        let uri = m.uri.as_ref().and_then(|u| {
            let lowered;
            let u = if m.ignore_uri_case {
                lowered = match u {
                    StringMatch::Exact(s) => StringMatch::Exact(s.to_ascii_lowercase()),
                    StringMatch::Prefix(s) => StringMatch::Prefix(s.to_ascii_lowercase()),
                    StringMatch::Regex(s) => StringMatch::Regex(format!("(?i:{s})")),
                };
                &lowered
            } else {
                u
            };
            compile(self, format!("{at}.uri"), u)
        });
        let method = m
            .method
            .as_ref()
            .and_then(|u| compile(self, format!("{at}.method"), u));
        let authority = m
            .authority
            .as_ref()
            .and_then(|u| compile(self, format!("{at}.authority"), u));
        let mut headers = Vec::new();
        let mut without_headers = Vec::new();
        for (list, out, field) in [
            (&m.headers, &mut headers, "headers"),
            (&m.without_headers, &mut without_headers, "withoutHeaders"),
        ] {
            for (name, sm) in list {
                let field = format!("{at}.{field}.{name}");
                match HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()) {
                    Ok(h) => {
                        if let Some(mm) = compile(self, field, sm) {
                            out.push((h, mm));
                        }
                    }
                    Err(_) => {
                        self.error(
                            file,
                            object,
                            field,
                            format!(
                                "{name:?} is not a valid header name: use letters, digits and '-'"
                            ),
                        );
                    }
                }
            }
        }
        let mut query = Vec::new();
        for (key, sm) in &m.query_params {
            if let Some(mm) = compile(self, format!("{at}.queryParams.{key}"), sm) {
                query.push((key.clone(), mm));
            }
        }
        (self.errors.len() == before).then_some(RequestMatch {
            uri,
            ignore_uri_case: m.ignore_uri_case,
            method,
            authority,
            headers,
            without_headers,
            query,
        })
    }

    fn backend(&mut self, vs_ns: &str, host: &str, subset: Option<&str>) -> Arc<Backend> {
        let short = short_host(host).to_ascii_lowercase();
        let key = (short.clone(), subset.map(str::to_owned));
        if let Some(b) = self.backends.get(&key) {
            return b.clone();
        }
        let rule = self.rules.get(&short).copied();
        let ns = rule
            .and_then(|r| r.metadata.namespace.as_deref())
            .unwrap_or(vs_ns)
            .to_owned();
        let subset_rule =
            subset.and_then(|s| rule.and_then(|r| r.spec.subsets.iter().find(|x| x.name == s)));
        let selector = subset_rule.map(|s| s.labels.clone()).unwrap_or_default();
        let tls = subset_rule
            .and_then(|s| s.traffic_policy.as_ref())
            .and_then(|p| p.tls.clone())
            .or_else(|| {
                rule.and_then(|r| r.spec.traffic_policy.as_ref())
                    .and_then(|p| p.tls.clone())
            })
            // A subset's DISABLE overrides the rule's TLS, then means none.
            .filter(|t| t.mode != crate::istio::TlsMode::Disable);
        // The subset's `connectionPool.http` overrides the rule's, as a whole.
        let pool_http = subset_rule
            .and_then(|s| s.traffic_policy.as_ref())
            .and_then(|p| p.connection_pool.as_ref())
            .and_then(|c| c.http.as_ref())
            .or_else(|| {
                rule.and_then(|r| r.spec.traffic_policy.as_ref())
                    .and_then(|p| p.connection_pool.as_ref())
                    .and_then(|c| c.http.as_ref())
            });
        let port = self.endpoints.protocol(&short);
        let http2 = Http2Policy {
            always: port != PortProtocol::Http
                || pool_http
                    .and_then(|h| h.h2_upgrade_policy)
                    .is_some_and(|p| p == crate::istio::H2UpgradePolicy::Upgrade),
            client_protocol: pool_http.is_some_and(|h| h.use_client_protocol),
        };
        let endpoints = self.endpoints.select(&short, &selector);
        let service = if short.contains('.') {
            short.clone()
        } else {
            format!("{short}.{ns}.svc.cluster.local")
        };
        let id = DestinationId {
            service: service.into(),
            name: short.as_str().into(),
            namespace: ns.into(),
            version: subset.unwrap_or("unknown").into(),
        };
        let b = Arc::new(Backend {
            name: format!("{short}/{}", subset.unwrap_or("-")),
            endpoints: endpoints.into_boxed_slice(),
            next: AtomicUsize::new(0),
            metrics: self.metrics.destination(id),
            tls,
            http2,
        });
        self.backends.insert(key, b.clone());
        b
    }
}

fn fraction(p: Option<crate::istio::Percent>) -> f64 {
    p.map_or(1.0, |p| (p.value / 100.0).clamp(0.0, 1.0))
}

/// Parses `retryOn` (`5xx,connect-failure`).
fn parse_retry_on(s: &str) -> Result<RetryOn, String> {
    let mut on = RetryOn::default();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "5xx" => on.server_error = true,
            "gateway-error" => on.gateway_error = true,
            "connect-failure" => on.connect_failure = true,
            "reset" | "refused-stream" => on.reset = true,
            "retriable-4xx" => on.conflict = true,
            "cancelled" => on.grpc |= 1 << crate::grpc::CANCELLED,
            "deadline-exceeded" => on.grpc |= 1 << crate::grpc::DEADLINE_EXCEEDED,
            "internal" => on.grpc |= 1 << crate::grpc::INTERNAL,
            "resource-exhausted" => on.grpc |= 1 << crate::grpc::RESOURCE_EXHAUSTED,
            "unavailable" => on.grpc |= 1 << crate::grpc::UNAVAILABLE,
            // Header and code lists need extra config; they never match here.
            "retriable-status-codes" | "retriable-headers" | "envoy-ratelimited" => {}
            other => {
                return Err(format!(
                    "unknown retry condition {other:?}: use a comma-separated list of 5xx, gateway-error, connect-failure, reset, refused-stream, retriable-4xx, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable"
                ));
            }
        }
    }
    Ok(on)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    fn table(vs_http: &str) -> Result<RouteTable, Vec<CompileError>> {
        let text = format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: discounts}}\nspec:\n  host: discounts\n  subsets:\n  - {{name: v1, labels: {{version: v1}}}}\n  - {{name: v2, labels: {{version: v2}}}}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: discounts}}\nspec:\n  hosts: [discounts, \"*.example.com\"]\n  http:\n{vs_http}"
        );
        let resources = crate::istio::yaml::parse_resources(&text).unwrap();
        let endpoints: EndpointsFile = crate::istio::yaml::from_str(
            "services:\n  discounts:\n    endpoints:\n    - {address: 127.0.0.1:8081, labels: {version: v1}}\n    - {address: 127.0.0.1:8082, labels: {version: v2}}\n",
        )
        .unwrap();
        let snapshot = ConfigSnapshot {
            generation: 1,
            source: "test".into(),
            files: vec![ConfigFile {
                name: "discounts.yaml".into(),
                resources,
            }],
            endpoints,
        };
        let mut reg = Registry::default();
        RouteTable::compile(snapshot, &ProxyMetrics::register(&mut reg))
    }

    fn req(
        t: &RouteTable,
        host: &str,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> Option<String> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let vhost = t.host(host)?;
        let uri: http::Uri = uri.parse().unwrap();
        vhost
            .route(&method.parse().unwrap(), &uri, &h)
            .map(|r| r.name.clone())
    }

    const ROUTES: &str = "  - name: exact\n    match: [{uri: {exact: /health}}]\n    route: [{destination: {host: discounts, subset: v1}}]\n  - name: header\n    match: [{headers: {x-canary: {exact: \"yes\"}}}, {headers: {cookie: {regex: \".*canary=1.*\"}}}]\n    route: [{destination: {host: discounts, subset: v2}}]\n  - name: regex\n    match: [{uri: {regex: \"/items/[0-9]+\"}, method: {exact: POST}}]\n    route: [{destination: {host: discounts, subset: v2}}]\n  - name: prefix\n    match: [{uri: {prefix: /api/}}]\n    route: [{destination: {host: discounts, subset: v1}, weight: 90}, {destination: {host: discounts, subset: v2}, weight: 10}]\n";

    #[test]
    fn matches_in_order_with_istio_semantics() {
        let t = table(ROUTES).unwrap();
        assert_eq!(
            req(&t, "discounts", "GET", "/health", &[]).as_deref(),
            Some("exact")
        );
        assert_eq!(req(&t, "discounts", "GET", "/health/x", &[]), None);
        assert_eq!(
            req(&t, "discounts:80", "GET", "/x", &[("x-canary", "yes")]).as_deref(),
            Some("header")
        );
        assert_eq!(
            req(&t, "discounts", "GET", "/x", &[("x-canary", "no")]),
            None
        );
        assert_eq!(
            req(&t, "discounts", "GET", "/x", &[("cookie", "a=b; canary=1")]).as_deref(),
            Some("header")
        );
        assert_eq!(
            req(&t, "discounts", "POST", "/items/42", &[]).as_deref(),
            Some("regex")
        );
        // Regexes match the whole path, as RE2 FullMatch does.
        assert_eq!(req(&t, "discounts", "POST", "/items/42/x", &[]), None);
        assert_eq!(req(&t, "discounts", "GET", "/items/42", &[]), None);
        assert_eq!(
            req(&t, "discounts", "GET", "/api/v1?q=1", &[]).as_deref(),
            Some("prefix")
        );
    }

    #[test]
    fn hosts_short_names_wildcards_and_ports() {
        let t = table(ROUTES).unwrap();
        for host in [
            "discounts",
            "discounts:8080",
            "DISCOUNTS",
            "discounts.default.svc.cluster.local",
            "shop.example.com:443",
        ] {
            assert!(t.host(host).is_some(), "{host}");
        }
        for host in ["reviews", "example.com", "discounts.other"] {
            assert!(t.host(host).is_none(), "{host}");
        }
    }

    #[test]
    fn invalid_regex_names_file_object_and_field() {
        let errs = table("  - match: [{uri: {regex: \"/items/[0-9\"}}]\n    route: [{destination: {host: discounts, subset: v1}}]\n").unwrap_err();
        assert_eq!(errs.len(), 1);
        let msg = errs[0].to_string();
        assert!(
            msg.starts_with("discounts.yaml: VirtualService/discounts spec.http[0].match[0].uri: \"/items/[0-9\" is not a valid RE2 regular expression"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_retry_condition_is_named() {
        let errs = table("  - retries: {attempts: 2, retryOn: \"5xx,sometimes\"}\n    route: [{destination: {host: discounts, subset: v1}}]\n").unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            "discounts.yaml: VirtualService/discounts spec.http[0].retries.retryOn: unknown retry condition \"sometimes\": use a comma-separated list of 5xx, gateway-error, connect-failure, reset, refused-stream, retriable-4xx, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable"
        );
    }

    #[test]
    fn destinations_resolve_endpoints_and_labels() {
        let t = table("  - route: [{destination: {host: discounts, subset: v1}, weight: 90}, {destination: {host: discounts, subset: v2}, weight: 10}]\n    timeout: 2s\n    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: \"gateway-error,connect-failure\"}\n    fault: {abort: {httpStatus: 503, percentage: {value: 25}}}\n").unwrap();
        let route = t
            .host("discounts")
            .unwrap()
            .route(&Method::GET, &"/".parse().unwrap(), &HeaderMap::new())
            .unwrap();
        assert_eq!(route.timeout, Some(Duration::from_secs(2)));
        assert_eq!(route.retry.attempts, 3);
        assert!(
            route.retry.on.gateway_error
                && route.retry.on.connect_failure
                && !route.retry.on.server_error
        );
        assert_eq!(
            route.fault.abort,
            Some((AbortWith::Http(StatusCode::SERVICE_UNAVAILABLE), 0.25))
        );
        let mut v2 = 0;
        for _ in 0..100 {
            let b = route.pick();
            if &*b.metrics.id().version == "v2" {
                v2 += 1;
                assert_eq!(b.next_endpoint().unwrap().as_str(), "127.0.0.1:8082");
                assert_eq!(
                    &*b.metrics.id().service,
                    "discounts.default.svc.cluster.local"
                );
            }
        }
        assert_eq!(v2, 10);
    }

    #[test]
    fn header_rules_belong_to_their_destination() {
        let t = table("  - headers: {response: {set: {x-route: r}}}\n    route:\n    - {destination: {host: discounts, subset: v1}, weight: 50, headers: {response: {add: {set-cookie: v=v1}}}}\n    - {destination: {host: discounts, subset: v2}, weight: 50}\n").unwrap();
        let route = t
            .host("discounts")
            .unwrap()
            .route(&Method::GET, &"/".parse().unwrap(), &HeaderMap::new())
            .unwrap();
        for _ in 0..4 {
            let b = route.pick();
            let mut h = HeaderMap::new();
            crate::headers::on_response(route.header_rules(b), &mut h);
            assert_eq!(h["x-route"], "r");
            let v1 = &*b.metrics.id().version == "v1";
            assert_eq!(h.contains_key("set-cookie"), v1, "{h:?}");
        }
        let plain = table("  - route: [{destination: {host: discounts, subset: v1}}]\n").unwrap();
        let route = plain
            .host("discounts")
            .unwrap()
            .route(&Method::GET, &"/".parse().unwrap(), &HeaderMap::new())
            .unwrap();
        assert!(route.header_rules(route.pick()).is_none());
        let errs = table("  - route:\n    - {destination: {host: discounts, subset: v1}, headers: {request: {set: {\"x a\": b}}}}\n").unwrap_err();
        assert!(
            errs[0].to_string().starts_with(
                "discounts.yaml: VirtualService/discounts spec.http[0].route[0].headers.request.set.x a: "
            ),
            "{}",
            errs[0]
        );
    }
}
