//! `meshctl doctor`: preflight checks before a rollout moves traffic. Each
//! check passes or fails with a message and, when it fails, the fix. They
//! are the usual root causes of "no values found" rollbacks: a subset that
//! is missing or selects nothing, a VirtualService routing to a subset that
//! does not exist, a metrics source without series for one of the versions,
//! and subsets that disagree about mTLS.
//!
//! [`diagnose`] gathers what it needs from a [`Target`] and a
//! [`MetricsSource`]; the checks themselves are pure functions of what was
//! read, so each is tested on crafted objects.

use std::collections::{BTreeMap, BTreeSet};

use meshproxy::endpoints::{PortProtocol, ServicePort};
use meshproxy::istio::validate::{Problem, validate};
use meshproxy::istio::{DestinationRule, Resource, Subset, TlsMode, VirtualService};
use serde::Serialize;

use crate::metrics::any::Endpoint;
use crate::metrics::{MetricsError, MetricsSource, Snapshot};
use crate::routing;
use crate::target::{Target, TargetError};

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Short identifier (`subsets`, `endpoints`, `routes`, `route-names`,
    /// `metrics`, `mtls`, `grpc-port`).
    pub name: &'static str,
    /// Did it pass? (A warning passes.)
    pub passed: bool,
    /// Passed with a warning: works now, but likely not as meant.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
    /// What was found.
    pub message: String,
    /// How to fix a failure (`None` when passed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Every check for one service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Service.
    pub service: String,
    /// Stable version, when known.
    pub from: Option<String>,
    /// New version, when known.
    pub to: Option<String>,
    /// Where the objects were read.
    pub target: String,
    /// Where the metrics were read.
    pub metrics: String,
    /// True when every check passed.
    pub passed: bool,
    /// The checks, in order.
    pub checks: Vec<Check>,
}

/// What `doctor` was asked.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Service (the VirtualService and DestinationRule are named after it).
    pub service: String,
    /// Stable version (default: the subset taking most traffic).
    pub from: Option<String>,
    /// New version (default: the DestinationRule's last subset other than `from`).
    pub to: Option<String>,
    /// What the labels of the service's request series say (see
    /// [`series_labels`]); `None` when not read.
    pub series: Option<SeriesLabels>,
}

/// `connection_security_policy` label values (`none`, `mutual_tls`,
/// `unknown`) seen on `istio_requests_total` per `destination_version`.
pub type SecurityPolicies = BTreeMap<String, BTreeSet<String>>;

/// What doctor reads from the labels of a service's `istio_requests_total`
/// series.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeriesLabels {
    /// `connection_security_policy` values per version.
    pub security: SecurityPolicies,
    /// Versions that served gRPC (`request_protocol="grpc"` or a non-empty
    /// `grpc_response_status`).
    pub grpc: BTreeSet<String>,
}

// === impl SeriesLabels ===

impl SeriesLabels {
    /// Adds one series, given its label lookup.
    fn add<'a>(&mut self, label: impl Fn(&str) -> &'a str) {
        let version = label("destination_version").to_owned();
        if label("request_protocol") == "grpc" || !label("grpc_response_status").is_empty() {
            self.grpc.insert(version.clone());
        }
        self.security
            .entry(version)
            .or_default()
            .insert(label("connection_security_policy").to_owned());
    }
}

/// Reads the labels doctor checks (`connection_security_policy`,
/// `request_protocol`, `grpc_response_status`) of `service`'s request
/// series from the metrics source: a `/metrics` endpoint (meshproxy,
/// Envoy) or a Prometheus server. `None` when the source cannot be read or
/// parsed (the `metrics` check reports why).
pub async fn series_labels(
    source: &Endpoint,
    service: &str,
    timeout: std::time::Duration,
) -> Option<SeriesLabels> {
    use Endpoint as M;
    let client = crate::metrics::http_client(timeout).ok()?;
    let mut out = SeriesLabels::default();
    match source {
        M::Proxy(url) => {
            let text = client
                .get(url.clone())
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            for s in crate::metrics::exposition::parse(&text).ok()? {
                if s.name == "istio_requests_total"
                    && s.label("destination_service_name") == service
                {
                    out.add(|k| s.label(k));
                }
            }
        }
        M::Prometheus(base) => {
            #[derive(serde::Deserialize)]
            struct Resp {
                data: Data,
            }
            #[derive(serde::Deserialize)]
            struct Data {
                result: Vec<Series>,
            }
            #[derive(serde::Deserialize)]
            struct Series {
                metric: BTreeMap<String, String>,
            }
            let promql = format!(
                "count by (destination_version, connection_security_policy, request_protocol, grpc_response_status) (istio_requests_total{{destination_service_name=\"{}\"}})",
                service.replace('"', "")
            );
            let url = reqwest::Url::parse_with_params(
                &format!("{}/api/v1/query", base.as_str().trim_end_matches('/')),
                &[("query", promql)],
            )
            .ok()?;
            let resp: Resp = client.get(url).send().await.ok()?.json().await.ok()?;
            for s in &resp.data.result {
                out.add(|k| s.metric.get(k).map_or("", String::as_str));
            }
        }
    }
    Some(out)
}

// === impl Check ===

impl Check {
    fn pass(name: &'static str, message: impl Into<String>) -> Self {
        Self {
            name,
            passed: true,
            warning: false,
            message: message.into(),
            fix: None,
        }
    }

    fn warn(name: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            passed: true,
            warning: true,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(name: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            passed: false,
            warning: false,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }
}

fn selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn subset<'a>(dr: &'a DestinationRule, name: &str) -> Option<&'a Subset> {
    dr.spec.subsets.iter().find(|s| s.name == name)
}

/// Reads what the checks need and runs them all.
pub async fn diagnose<T: Target, M: MetricsSource>(
    target: &T,
    metrics: &M,
    req: &Request,
) -> Report {
    let service = req.service.as_str();
    let vs = target.virtual_service(service).await;
    let dr = target.destination_rule(service).await;
    let from = req
        .from
        .clone()
        .or_else(|| vs.as_ref().ok().and_then(routing::stable_subset));
    let to = req.to.clone().or_else(|| {
        let dr = dr.as_ref().ok()?;
        dr.spec
            .subsets
            .iter()
            .rev()
            .find(|s| Some(&s.name) != from.as_ref())
            .map(|s| s.name.clone())
    });
    let versions: Vec<&str> = [from.as_deref(), to.as_deref()]
        .into_iter()
        .flatten()
        .collect();

    let mut checks = Vec::new();
    checks.push(check_subsets(
        service,
        dr.as_ref(),
        from.as_deref(),
        to.as_deref(),
    ));
    // Endpoints of the subsets that exist.
    let mut selected = Vec::new();
    if let Ok(dr) = &dr {
        for v in &versions {
            if let Some(s) = subset(dr, v) {
                let found = target.endpoints(&dr.spec.host, &s.labels).await;
                selected.push((s.clone(), found));
            }
        }
    }
    checks.push(check_endpoints(
        service,
        dr.is_ok(),
        &selected,
        &target.describe(),
    ));
    checks.push(check_routes(
        service,
        vs.as_ref(),
        dr.as_ref().ok(),
        &versions,
    ));
    checks.push(check_route_names(service, vs.as_ref()));
    let snapshot = metrics.scrape(service).await;
    checks.push(check_metrics(
        service,
        &metrics.describe(),
        snapshot,
        &versions,
    ));
    checks.push(check_mtls(
        service,
        dr.as_ref().ok(),
        &versions,
        req.series.as_ref().map(|l| &l.security),
    ));
    let port = target.service_port(service).await;
    checks.push(check_grpc_port(
        service,
        req.series.as_ref().map(|l| &l.grpc),
        port.as_ref(),
    ));
    Report {
        service: service.to_owned(),
        from,
        to,
        target: target.describe(),
        metrics: metrics.describe(),
        passed: checks.iter().all(|c| c.passed),
        checks,
    }
}

/// The DestinationRule exists and defines both versions as subsets.
pub fn check_subsets(
    service: &str,
    dr: Result<&DestinationRule, &TargetError>,
    from: Option<&str>,
    to: Option<&str>,
) -> Check {
    const NAME: &str = "subsets";
    let dr = match dr {
        Ok(dr) => dr,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("cannot read DestinationRule {service:?}: {e}"),
                format!(
                    "create it: `meshctl apply {service} --versions v1,v2` (a DestinationRule named after the service, with one subset per version)"
                ),
            );
        }
    };
    let (Some(from), Some(to)) = (from, to) else {
        return Check::fail(
            NAME,
            format!(
                "cannot tell which versions to check: DestinationRule {service:?} defines {} and the VirtualService routes to none of them",
                names(dr)
            ),
            "pass --from STABLE and --to NEW",
        );
    };
    let missing: Vec<&str> = [from, to]
        .into_iter()
        .filter(|v| subset(dr, v).is_none())
        .collect();
    if missing.is_empty() {
        Check::pass(
            NAME,
            format!("DestinationRule {service:?} defines subsets {from} and {to}"),
        )
    } else {
        Check::fail(
            NAME,
            format!(
                "DestinationRule {service:?} has no subset {} (defined: {})",
                missing.join(", "),
                names(dr)
            ),
            format!(
                "add the subset{s} to spec.subsets (e.g. `- name: {m}\n        labels: {{version: {m}}}`), or render it: `meshctl apply {service} --versions {from},{to}`",
                s = if missing.len() == 1 { "" } else { "s" },
                m = missing[0],
            ),
        )
    }
}

fn names(dr: &DestinationRule) -> String {
    if dr.spec.subsets.is_empty() {
        return "none".to_owned();
    }
    dr.spec
        .subsets
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each subset's labels select at least one endpoint.
pub fn check_endpoints(
    service: &str,
    have_rule: bool,
    selected: &[(Subset, Result<Vec<String>, TargetError>)],
    target: &str,
) -> Check {
    const NAME: &str = "endpoints";
    if !have_rule || selected.is_empty() {
        return Check::fail(
            NAME,
            format!("no subsets of {service:?} to look up endpoints for"),
            "fix the `subsets` check first",
        );
    }
    let mut found = Vec::new();
    let mut empty = Vec::new();
    for (s, result) in selected {
        match result {
            Ok(eps) if !eps.is_empty() => found.push(format!(
                "{} ({}): {}",
                s.name,
                selector(&s.labels),
                eps.join(", ")
            )),
            Ok(_) => empty.push(format!(
                "subset {} ({}) selects no endpoints",
                s.name,
                selector(&s.labels)
            )),
            Err(e) => {
                return Check::fail(
                    NAME,
                    format!("cannot list the endpoints of {service:?} in {target}: {e}"),
                    "make the endpoints readable (see the message), then run doctor again",
                );
            }
        }
    }
    if empty.is_empty() {
        return Check::pass(NAME, found.join("; "));
    }
    let s = selected
        .iter()
        .find(|(_, r)| r.as_ref().is_ok_and(Vec::is_empty))
        .map_or(&selected[0].0, |(s, _)| s);
    Check::fail(
        NAME,
        empty.join("; "),
        format!(
            "run the {v} workload with the labels {sel} (Kubernetes: in the Deployment's pod template; local target: an endpoint under services.{service} in endpoints.yaml with `labels: {{{map}}}`), or change the subset's labels to match the running workload",
            v = s.name,
            sel = selector(&s.labels),
            map = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    )
}

/// The VirtualService routes only to existing subsets, its weights sum to
/// 100, and a route carries the versions the rollout moves.
pub fn check_routes(
    service: &str,
    vs: Result<&VirtualService, &TargetError>,
    dr: Option<&DestinationRule>,
    versions: &[&str],
) -> Check {
    const NAME: &str = "routes";
    let vs = match vs {
        Ok(vs) => vs,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("cannot read VirtualService {service:?}: {e}"),
                format!("create it: `meshctl apply {service} --versions v1,v2`"),
            );
        }
    };
    let mut resources = vec![Resource::VirtualService(vs.clone())];
    resources.extend(dr.cloned().map(Resource::DestinationRule));
    // Route names have their own check.
    let problems: Vec<Problem> = validate(&resources)
        .err()
        .map(|e| e.problems)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| !p.field.ends_with(".name") || !p.field.starts_with("spec.http["))
        .collect();
    if !problems.is_empty() {
        return Check::fail(
            NAME,
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            format!(
                "route only to subsets the DestinationRule defines and make each route's weights sum to 100; `meshctl apply {service}` re-renders a valid VirtualService (`meshctl diff {service}` shows the change first)"
            ),
        );
    }
    if let [from, to] = versions
        && routing::route_index(vs, from, to).is_none()
    {
        return Check::fail(
            NAME,
            format!(
                "VirtualService {service:?} has no HTTP route with a destination subset {from:?} or {to:?}"
            ),
            format!(
                "render it with `meshctl apply {service} --versions {from},{to}`, or pass --from with the subset the VirtualService routes to"
            ),
        );
    }
    Check::pass(
        NAME,
        format!(
            "VirtualService {service:?}: {} HTTP route(s), every destination subset defined, weights sum to 100",
            vs.spec.http.len()
        ),
    )
}

/// HTTP route names are unique (Istio rejects duplicates; meshctl and
/// dashboards address routes by name).
pub fn check_route_names(service: &str, vs: Result<&VirtualService, &TargetError>) -> Check {
    const NAME: &str = "route-names";
    let Ok(vs) = vs else {
        return Check::fail(
            NAME,
            format!("VirtualService {service:?} could not be read"),
            "fix the `routes` check first",
        );
    };
    let mut seen = BTreeSet::new();
    let dups: BTreeSet<&str> = vs
        .spec
        .http
        .iter()
        .filter_map(|r| r.name.as_deref())
        .filter(|n| !seen.insert(*n))
        .collect();
    if dups.is_empty() {
        Check::pass(NAME, format!("route names of {service:?} are unique"))
    } else {
        let list = dups.into_iter().collect::<Vec<_>>().join(", ");
        Check::fail(
            NAME,
            format!("VirtualService {service:?} uses route name(s) {list} more than once"),
            "give every entry of spec.http a unique `name` (or remove the duplicates)",
        )
    }
}

/// The metrics source answers and has request and latency series for every
/// version, with the labels the analysis selects on.
pub fn check_metrics(
    service: &str,
    source: &str,
    snapshot: Result<Snapshot, MetricsError>,
    versions: &[&str],
) -> Check {
    const NAME: &str = "metrics";
    let snap = match snapshot {
        Ok(s) => s,
        Err(e) => {
            let fix = match &e {
                MetricsError::Unreachable { .. } => format!(
                    "start meshproxy (its admin listener serves /metrics) or pass the right source: --metrics URL (a /metrics endpoint) or --prometheus URL; it is {source} now"
                ),
                MetricsError::Status { .. } => "check the URL: meshproxy serves /metrics on its admin listener, Prometheus is queried at its base URL (--prometheus http://HOST:9090)".to_owned(),
                MetricsError::Malformed { .. } => "point --metrics at a Prometheus text endpoint (meshproxy's /metrics, Envoy's /stats/prometheus) or use --prometheus for a Prometheus server".to_owned(),
                MetricsError::Empty { .. } => format!(
                    "send traffic to {service} through the mesh, and check that istio_requests_total carries destination_service_name=\"{service}\""
                ),
            };
            return Check::fail(NAME, e.to_string(), fix);
        }
    };
    let seen = snap.versions();
    if seen.contains_key("") {
        return Check::fail(
            NAME,
            format!(
                "{source}: istio_requests_total series of {service:?} have no destination_version label"
            ),
            "label the workloads with `version` (Istio reports it as destination_version) so the analysis can tell v1 from v2",
        );
    }
    let mut missing = Vec::new();
    let mut no_latency = Vec::new();
    for v in versions {
        match seen.get(*v) {
            None => missing.push(*v),
            Some(c) if c.buckets.is_empty() => no_latency.push(*v),
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        let have: Vec<&str> = seen.keys().map(String::as_str).collect();
        return Check::fail(
            NAME,
            format!(
                "{source} has no istio_requests_total series for destination_service_name=\"{service}\" destination_version={} (versions seen: {})",
                missing.join(","),
                have.join(", ")
            ),
            format!(
                "send some traffic to {} before the rollout (e.g. a smoke test through the mesh), and check that its workloads carry the label the mesh reports as destination_version",
                missing.join(" and ")
            ),
        );
    }
    if !no_latency.is_empty() {
        return Check::fail(
            NAME,
            format!(
                "{source} has no istio_request_duration_milliseconds_bucket series for {service:?} version {}: the p99 check cannot work",
                no_latency.join(", ")
            ),
            "export Istio's request-duration histogram (meshproxy and Istio's sidecars do by default; check metric relabelling that drops it)",
        );
    }
    Check::pass(
        NAME,
        format!(
            "{source} has request and latency series for {} of {service:?}",
            versions.join(" and ")
        ),
    )
}

/// The effective client TLS mode of a subset: its own, else the rule's.
fn tls_mode(dr: &DestinationRule, s: &Subset) -> Option<TlsMode> {
    s.traffic_policy
        .as_ref()
        .and_then(|p| p.tls.as_ref())
        .or_else(|| dr.spec.traffic_policy.as_ref().and_then(|p| p.tls.as_ref()))
        .map(|t| t.mode)
}

fn mode_name(m: Option<TlsMode>) -> &'static str {
    match m {
        None => "unset (plain text)",
        Some(TlsMode::Disable) => "DISABLE",
        Some(TlsMode::Simple) => "SIMPLE",
        Some(TlsMode::Mutual) => "MUTUAL",
        Some(TlsMode::IstioMutual) => "ISTIO_MUTUAL",
    }
}

fn is_mutual(m: Option<TlsMode>) -> bool {
    matches!(m, Some(TlsMode::Mutual | TlsMode::IstioMutual))
}

/// Both versions are reached the same way: either both with mutual TLS
/// (`MUTUAL`/`ISTIO_MUTUAL`) or both without, since a rollout that moves
/// traffic from an mTLS subset to a plain-text one (or back) fails every
/// request where the server side insists on the other; and `MUTUAL` names
/// its client certificate and key. With `observed` (the metrics source's
/// `connection_security_policy` per version), a version the DestinationRule
/// sends with mutual TLS must not show plain-text (`none`) requests: that
/// means the proxies are not doing what the rule says.
pub fn check_mtls(
    service: &str,
    dr: Option<&DestinationRule>,
    versions: &[&str],
    observed: Option<&SecurityPolicies>,
) -> Check {
    const NAME: &str = "mtls";
    let Some(dr) = dr else {
        return Check::fail(
            NAME,
            format!("DestinationRule {service:?} could not be read"),
            "fix the `subsets` check first",
        );
    };
    let modes: Vec<(&str, Option<TlsMode>, &Subset)> = versions
        .iter()
        .filter_map(|v| subset(dr, v).map(|s| (*v, tls_mode(dr, s), s)))
        .collect();
    if let Some((v, _, s)) = modes.iter().find(|(_, m, s)| {
        *m == Some(TlsMode::Mutual) && {
            let tls = s
                .traffic_policy
                .as_ref()
                .and_then(|p| p.tls.as_ref())
                .or_else(|| dr.spec.traffic_policy.as_ref().and_then(|p| p.tls.as_ref()));
            tls.is_none_or(|t| t.client_certificate.is_none() || t.private_key.is_none())
        }
    }) {
        return Check::fail(
            NAME,
            format!(
                "subset {v} of DestinationRule {service:?} uses tls mode MUTUAL without clientCertificate and privateKey",
            ),
            format!(
                "set trafficPolicy.tls.clientCertificate and privateKey for subset {} (or use ISTIO_MUTUAL to present the proxy's workload certificate)",
                s.name
            ),
        );
    }
    let described = modes
        .iter()
        .map(|(v, m, _)| format!("{v}: {}", mode_name(*m)))
        .collect::<Vec<_>>()
        .join(", ");
    let mutual: BTreeSet<bool> = modes.iter().map(|(_, m, _)| is_mutual(*m)).collect();
    if mutual.len() > 1 {
        return Check::fail(
            NAME,
            format!("subsets of DestinationRule {service:?} disagree on mTLS ({described})"),
            "give both subsets the same trafficPolicy.tls.mode (set it once at spec.trafficPolicy and remove the per-subset overrides)",
        );
    }
    if let Some(observed) = observed {
        for (v, m, _) in &modes {
            let seen = observed.get(*v);
            if is_mutual(*m) && seen.is_some_and(|s| s.contains("none")) {
                return Check::fail(
                    NAME,
                    format!(
                        "DestinationRule {service:?} sends {v} with {} but the metrics show connection_security_policy=\"none\" for {v}: its requests travel in plain text",
                        mode_name(*m)
                    ),
                    format!(
                        "turn on mTLS where the traffic flows (Istio: a STRICT PeerAuthentication and sidecars on both ends; meshproxy: start it with its workload certificate, --tls-cert/--tls-key/--tls-ca), or set trafficPolicy.tls.mode to DISABLE for subset {v} if plain text is intended"
                    ),
                );
            }
        }
        let seen: Vec<String> = modes
            .iter()
            .filter_map(|(v, _, _)| {
                let s = observed.get(*v)?;
                let s: Vec<&str> = s
                    .iter()
                    .map(String::as_str)
                    .filter(|p| !p.is_empty())
                    .collect();
                (!s.is_empty()).then(|| format!("{v}: {}", s.join("/")))
            })
            .collect();
        if !seen.is_empty() {
            return Check::pass(
                NAME,
                format!(
                    "client TLS modes agree ({described}); metrics agree (connection_security_policy {})",
                    seen.join(", ")
                ),
            );
        }
    }
    Check::pass(NAME, format!("client TLS modes agree ({described})"))
}

/// gRPC traffic goes to a port declared gRPC or HTTP/2, as Istio decides
/// it (a port name `grpc`, `grpc-web`, `http2`, alone or with a `-suffix`,
/// or `appProtocol: grpc | grpc-web | http2 | kubernetes.io/h2c`). On an
/// undeclared port the mesh treats the traffic as HTTP/1.1 or by
/// auto-detection: Istio's per-protocol features and meshproxy's HTTP/2
/// upstream connections depend on the declaration, so the check warns.
/// `grpc` holds the versions whose series show gRPC (`None`: metrics not
/// read); `port` is the service's declared port (`None`: none declared).
pub fn check_grpc_port(
    service: &str,
    grpc: Option<&BTreeSet<String>>,
    port: Result<&Option<ServicePort>, &TargetError>,
) -> Check {
    const NAME: &str = "grpc-port";
    let Some(grpc) = grpc.filter(|g| !g.is_empty()) else {
        return Check::pass(
            NAME,
            format!(
                "no gRPC traffic seen for {service:?} (request_protocol=\"grpc\" or grpc_response_status)"
            ),
        );
    };
    let versions = grpc
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let fix = format!(
        "declare the port's protocol: name it `grpc` (or `grpc-NAME`, `http2-NAME`) or set `appProtocol: grpc`; local target: `port: {{name: grpc}}` under services.{service} in endpoints.yaml; Kubernetes: the port of Service {service:?} (and its EndpointSlices)"
    );
    let port = match port {
        Ok(p) => p,
        Err(e) => {
            return Check::warn(
                NAME,
                format!(
                    "gRPC traffic seen for {service:?} ({versions}) but its port protocol could not be read: {e}"
                ),
                fix,
            );
        }
    };
    let described = match port {
        None => "no port declared".to_owned(),
        Some(p) => describe_port(p),
    };
    match port.as_ref().map(ServicePort::protocol) {
        Some(Ok(PortProtocol::Grpc | PortProtocol::Http2)) => Check::pass(
            NAME,
            format!(
                "gRPC traffic of {service:?} ({versions}) goes to a port declared for it ({described})"
            ),
        ),
        Some(Err((field, message))) => Check::warn(
            NAME,
            format!(
                "gRPC traffic seen for {service:?} ({versions}) but its port's {field} is invalid: {message}"
            ),
            fix,
        ),
        Some(Ok(PortProtocol::Http)) | None => Check::warn(
            NAME,
            format!(
                "gRPC traffic seen for {service:?} ({versions}) on a port not declared grpc or http2 ({described}): the mesh treats it as HTTP/1.1"
            ),
            fix,
        ),
    }
}

fn describe_port(p: &ServicePort) -> String {
    match (&p.name, &p.app_protocol) {
        (Some(n), Some(a)) => format!("port {n:?}, appProtocol {a:?}"),
        (Some(n), None) => format!("port {n:?}"),
        (None, Some(a)) => format!("appProtocol {a:?}"),
        (None, None) => "a port without name or appProtocol".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use meshproxy::istio::yaml;

    use super::*;

    fn dr(text: &str) -> DestinationRule {
        yaml::from_str(text).unwrap()
    }

    const DR: &str = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: discounts}
spec:
  host: discounts
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
";

    #[test]
    fn mtls_passes_when_modes_agree_and_fails_when_mixed() {
        assert!(check_mtls("discounts", Some(&dr(DR)), &["v1", "v2"], None).passed);
        let mixed = dr(&DR.replace(
            "    labels: {version: v2}\n",
            "    labels: {version: v2}\n    trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n",
        ));
        let c = check_mtls("discounts", Some(&mixed), &["v1", "v2"], None);
        assert!(!c.passed);
        assert_eq!(
            c.message,
            "subsets of DestinationRule \"discounts\" disagree on mTLS (v1: unset (plain text), v2: ISTIO_MUTUAL)"
        );
        // Set once for the rule, both subsets agree.
        let rule = dr(&DR.replace(
            "  host: discounts\n",
            "  host: discounts\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n",
        ));
        assert!(check_mtls("discounts", Some(&rule), &["v1", "v2"], None).passed);
        let mutual = dr(&DR.replace(
            "  host: discounts\n",
            "  host: discounts\n  trafficPolicy: {tls: {mode: MUTUAL}}\n",
        ));
        let c = check_mtls("discounts", Some(&mutual), &["v1", "v2"], None);
        assert!(
            c.message.contains("MUTUAL without clientCertificate"),
            "{c:?}"
        );
    }

    #[test]
    fn mtls_compares_the_rule_with_the_metrics_security_label() {
        let rule = DR.replace(
            "  host: discounts\n",
            "  host: discounts\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n",
        );
        let seen = |v1: &[&str], v2: &[&str]| -> SecurityPolicies {
            [
                (
                    "v1".to_owned(),
                    v1.iter().map(|s| (*s).to_owned()).collect(),
                ),
                (
                    "v2".to_owned(),
                    v2.iter().map(|s| (*s).to_owned()).collect(),
                ),
            ]
            .into()
        };
        let ok = seen(&["mutual_tls"], &["mutual_tls", "unknown"]);
        let c = check_mtls("discounts", Some(&dr(&rule)), &["v1", "v2"], Some(&ok));
        assert!(c.passed, "{c:?}");
        assert!(
            c.message.contains(
                "metrics agree (connection_security_policy v1: mutual_tls, v2: mutual_tls/unknown)"
            ),
            "{}",
            c.message
        );
        let plain = seen(&["mutual_tls"], &["none"]);
        let c = check_mtls("discounts", Some(&dr(&rule)), &["v1", "v2"], Some(&plain));
        assert!(!c.passed);
        assert_eq!(
            c.message,
            "DestinationRule \"discounts\" sends v2 with ISTIO_MUTUAL but the metrics show connection_security_policy=\"none\" for v2: its requests travel in plain text"
        );
        assert!(
            c.fix
                .unwrap()
                .contains("set trafficPolicy.tls.mode to DISABLE for subset v2"),
        );
        // Plain-text rules are not second-guessed (Istio's auto mTLS may
        // still encrypt), and no series means nothing to compare.
        let c = check_mtls(
            "discounts",
            Some(&dr(DR)),
            &["v1", "v2"],
            Some(&seen(&["mutual_tls"], &["none"])),
        );
        assert!(c.passed, "{c:?}");
        let c = check_mtls(
            "discounts",
            Some(&dr(&rule)),
            &["v1", "v2"],
            Some(&SecurityPolicies::new()),
        );
        assert_eq!(
            c.message,
            "client TLS modes agree (v1: ISTIO_MUTUAL, v2: ISTIO_MUTUAL)"
        );
    }

    #[test]
    fn missing_subset_names_the_subset_and_the_fix() {
        let c = check_subsets("discounts", Ok(&dr(DR)), Some("v1"), Some("v3"));
        assert!(!c.passed);
        assert_eq!(
            c.message,
            "DestinationRule \"discounts\" has no subset v3 (defined: v1, v2)"
        );
        assert!(c.fix.unwrap().contains("--versions v1,v3"));
    }

    #[test]
    fn grpc_traffic_on_an_undeclared_port_warns() {
        let grpc: BTreeSet<String> = ["v2".to_owned()].into();
        let port = |name: Option<&str>, app: Option<&str>| {
            Some(ServicePort {
                name: name.map(str::to_owned),
                app_protocol: app.map(str::to_owned),
            })
        };
        // No gRPC seen, or metrics not read: nothing to say.
        let c = check_grpc_port("d", Some(&BTreeSet::new()), Ok(&None));
        assert!(c.passed && !c.warning, "{c:?}");
        assert!(check_grpc_port("d", None, Ok(&None)).passed);
        // Declared by name or appProtocol.
        for p in [
            port(Some("grpc"), None),
            port(Some("grpc-api"), None),
            port(Some("http2-x"), None),
            port(None, Some("kubernetes.io/h2c")),
        ] {
            let c = check_grpc_port("d", Some(&grpc), Ok(&p));
            assert!(c.passed && !c.warning, "{c:?}");
        }
        // Undeclared: a warning that passes, with the fix.
        for p in [None, port(Some("http"), None), port(Some("grpcx"), None)] {
            let c = check_grpc_port("d", Some(&grpc), Ok(&p));
            assert!(c.passed && c.warning, "{c:?}");
            assert!(
                c.message.contains("not declared grpc or http2"),
                "{}",
                c.message
            );
            assert!(c.fix.as_deref().unwrap().contains("port: {name: grpc}"));
        }
        let c = check_grpc_port("d", Some(&grpc), Ok(&port(None, Some("h3"))));
        assert!(
            c.warning && c.message.contains("appProtocol is invalid"),
            "{c:?}"
        );
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["warning"], true);
        let ok = serde_json::to_value(check_grpc_port("d", None, Ok(&None))).unwrap();
        assert!(ok.get("warning").is_none());
    }
}
