//! Semantic validation of a set of Istio resources, beyond what the types hold.
//!
//! Used by `meshctl render` before anything is printed or applied, and by
//! `meshproxy` before a new configuration is swapped in. Every problem names
//! the object, the field path and what is expected.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{DestinationRule, Resource, VirtualService};

/// One problem found in a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// `VirtualService/discounts`.
    pub object: String,
    /// `spec.http[0].route[1].weight`.
    pub field: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.object, self.field, self.message)
    }
}

/// All problems found in a set of resources.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// Each problem, in document order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(f, "{n} invalid field{}", if n == 1 { "" } else { "s" })?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// Is `s` a DNS-1123 subdomain (a valid Kubernetes object name)?
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// Is `s` a DNS-1123 label (lowercase alphanumerics and `-`, at most 63)?
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Is `s` a host Istio accepts in `hosts`: a DNS name (case-insensitive),
/// optionally with a leading `*.` wildcard, or `*` alone.
pub fn is_valid_host(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let name = s.strip_prefix("*.").unwrap_or(s);
    let lower = name.to_ascii_lowercase();
    name.len() <= 253 && is_dns1123_subdomain(&lower)
}

/// The short service name of a host: `discounts` for `discounts`,
/// `discounts.default` and `discounts.default.svc.cluster.local`.
pub fn short_host(host: &str) -> &str {
    if host.contains(".svc") || host.split('.').count() == 2 {
        host.split('.').next().unwrap_or(host)
    } else {
        host
    }
}

struct Collector {
    problems: Vec<Problem>,
}

impl Collector {
    fn push(&mut self, object: &str, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            object: object.to_owned(),
            field: field.into(),
            message: message.into(),
        });
    }
}

/// Validates a set of resources together: names, hosts, ports, weights and
/// that every routed subset exists in a DestinationRule for its host.
pub fn validate(resources: &[Resource]) -> Result<(), ValidationError> {
    let mut c = Collector {
        problems: Vec::new(),
    };
    let mut subsets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in resources {
        if let Resource::DestinationRule(dr) = r {
            subsets
                .entry(short_host(&dr.spec.host).to_owned())
                .or_default()
                .extend(dr.spec.subsets.iter().map(|s| s.name.clone()));
        }
    }
    for r in resources {
        let object = format!("{}/{}", r.kind(), r.metadata().name);
        if !is_dns1123_subdomain(&r.metadata().name) {
            c.push(
                &object,
                "metadata.name",
                format!(
                    "{:?} is not a valid Kubernetes name: use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters",
                    r.metadata().name
                ),
            );
        }
        if let Some(ns) = &r.metadata().namespace
            && !is_dns1123_label(ns)
        {
            c.push(
                    &object,
                    "metadata.namespace",
                    format!("{ns:?} is not a valid namespace: use lowercase letters, digits and '-', at most 63 characters"),
                );
        }
        match r {
            Resource::Gateway(gw) => {
                for (i, s) in gw.spec.servers.iter().enumerate() {
                    check_port(
                        &mut c,
                        &object,
                        &format!("spec.servers[{i}].port.number"),
                        s.port.number,
                    );
                    for (j, h) in s.hosts.iter().enumerate() {
                        // Gateway hosts may carry a `namespace/` prefix.
                        let host = h.rsplit('/').next().unwrap_or(h);
                        if !is_valid_host(host) {
                            c.push(
                                &object,
                                format!("spec.servers[{i}].hosts[{j}]"),
                                format!("{h:?} is not a valid DNS host name"),
                            );
                        }
                    }
                    if s.hosts.is_empty() {
                        c.push(
                            &object,
                            format!("spec.servers[{i}].hosts"),
                            "at least one host is required",
                        );
                    }
                }
            }
            Resource::VirtualService(vs) => validate_vs(&mut c, &object, vs, &subsets),
            Resource::DestinationRule(dr) => validate_dr(&mut c, &object, dr),
        }
    }
    if c.problems.is_empty() {
        Ok(())
    } else {
        Err(ValidationError {
            problems: c.problems,
        })
    }
}

fn check_port(c: &mut Collector, object: &str, field: &str, port: u32) {
    if !(1..=65535).contains(&port) {
        c.push(
            object,
            field,
            format!("port {port} is out of range: use 1 to 65535"),
        );
    }
}

fn validate_vs(
    c: &mut Collector,
    object: &str,
    vs: &VirtualService,
    subsets: &BTreeMap<String, BTreeSet<String>>,
) {
    if vs.spec.hosts.is_empty() {
        c.push(object, "spec.hosts", "at least one host is required");
    }
    for (i, h) in vs.spec.hosts.iter().enumerate() {
        if !is_valid_host(h) {
            c.push(
                object,
                format!("spec.hosts[{i}]"),
                format!("{h:?} is not a valid DNS host name"),
            );
        }
    }
    let mut names = BTreeSet::new();
    for (i, route) in vs.spec.http.iter().enumerate() {
        let at = format!("spec.http[{i}]");
        if let Some(name) = &route.name
            && !names.insert(name.as_str())
        {
            c.push(
                object,
                format!("{at}.name"),
                format!("route name {name:?} is used twice: route names must be unique"),
            );
        }
        if route.route.is_empty() {
            c.push(
                object,
                format!("{at}.route"),
                "at least one destination is required",
            );
        }
        let mut sum = 0u32;
        let single = route.route.len() == 1;
        for (j, dest) in route.route.iter().enumerate() {
            let at = format!("{at}.route[{j}]");
            match dest.weight {
                Some(w) if w > 100 => {
                    c.push(
                        object,
                        format!("{at}.weight"),
                        format!("weight {w} is out of range: use 0 to 100"),
                    );
                }
                Some(w) => sum += w,
                None if single => sum += 100,
                None => {
                    c.push(
                        object,
                        format!("{at}.weight"),
                        "a weight is required when a route has more than one destination",
                    );
                }
            }
            if let Some(h) = &dest.headers {
                check_headers(c, object, &format!("{at}.headers"), h);
            }
            let d = &dest.destination;
            if !is_valid_host(&d.host) {
                c.push(
                    object,
                    format!("{at}.destination.host"),
                    format!("{:?} is not a valid DNS host name", d.host),
                );
            }
            if let Some(p) = &d.port {
                check_port(
                    c,
                    object,
                    &format!("{at}.destination.port.number"),
                    p.number,
                );
            }
            if let Some(subset) = &d.subset {
                let known = subsets.get(short_host(&d.host));
                if !known.is_some_and(|s| s.contains(subset)) {
                    let have = known
                        .map(|s| s.iter().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_default();
                    c.push(
                        object,
                        format!("{at}.destination.subset"),
                        if have.is_empty() {
                            format!("subset {subset:?} of host {:?} is not defined: add a DestinationRule for the host with that subset", d.host)
                        } else {
                            format!("subset {subset:?} of host {:?} is not defined in its DestinationRule (defined: {have})", d.host)
                        },
                    );
                }
            }
        }
        if !route.route.is_empty()
            && sum != 100
            && route
                .route
                .iter()
                .all(|d| d.weight.is_some_and(|w| w <= 100) || single)
        {
            c.push(
                object,
                format!("{at}.route"),
                format!("weights sum to {sum}: they must sum to 100"),
            );
        }
        if let Some(t) = &route.timeout {
            check_duration(c, object, &format!("{at}.timeout"), t);
        }
        if let Some(r) = &route.retries
            && let Some(t) = &r.per_try_timeout
        {
            check_duration(c, object, &format!("{at}.retries.perTryTimeout"), t);
        }
        if let Some(f) = &route.fault {
            if let Some(d) = &f.delay {
                check_duration(
                    c,
                    object,
                    &format!("{at}.fault.delay.fixedDelay"),
                    &d.fixed_delay,
                );
                check_percent(
                    c,
                    object,
                    &format!("{at}.fault.delay.percentage.value"),
                    d.percentage,
                );
            }
            if let Some(a) = &f.abort {
                match &a.grpc_status {
                    Some(g) if crate::grpc::parse_code(g).is_none() => c.push(
                        object,
                        format!("{at}.fault.abort.grpcStatus"),
                        format!(
                            "{g:?} is not a gRPC status: use a name such as UNAVAILABLE, INTERNAL or DEADLINE_EXCEEDED"
                        ),
                    ),
                    Some(_) if a.http_status != 0 => c.push(
                        object,
                        format!("{at}.fault.abort"),
                        "set one of httpStatus and grpcStatus, not both".to_owned(),
                    ),
                    Some(_) => {}
                    None if !(200..=599).contains(&a.http_status) => c.push(
                        object,
                        format!("{at}.fault.abort.httpStatus"),
                        format!("{} is not an HTTP status: use 200 to 599", a.http_status),
                    ),
                    None => {}
                }
                check_percent(
                    c,
                    object,
                    &format!("{at}.fault.abort.percentage.value"),
                    a.percentage,
                );
            }
        }
        check_percent(
            c,
            object,
            &format!("{at}.mirrorPercentage.value"),
            route.mirror_percentage,
        );
        if let Some(h) = &route.headers {
            check_headers(c, object, &format!("{at}.headers"), h);
        }
    }
}

/// Header operations: every name a valid HTTP header name that a route may
/// change (not a pseudo-header, not `host`), every value a valid header value.
fn check_headers(c: &mut Collector, object: &str, at: &str, h: &super::Headers) {
    for (dir, ops) in [("request", &h.request), ("response", &h.response)] {
        let Some(ops) = ops else { continue };
        let names = ops
            .set
            .iter()
            .map(|(k, v)| ("set", k, Some(v)))
            .chain(ops.add.iter().map(|(k, v)| ("add", k, Some(v))))
            .chain(ops.remove.iter().map(|k| ("remove", k, None)));
        for (op, name, value) in names {
            let field = format!("{at}.{dir}.{op}.{name}");
            if let Some(problem) = header_name_problem(name) {
                c.push(object, field.as_str(), problem);
            }
            if let Some(v) = value
                && http::HeaderValue::from_str(v).is_err()
            {
                c.push(
                    object,
                    field,
                    format!("{v:?} is not a valid header value: use visible ASCII characters, spaces and tabs, without line breaks"),
                );
            }
        }
    }
}

fn header_name_problem(name: &str) -> Option<String> {
    if name.starts_with(':') {
        return Some(format!(
            "{name:?} is a pseudo-header, which header operations cannot change: use a regular header name"
        ));
    }
    if name.eq_ignore_ascii_case("host") {
        return Some(
            "\"host\" cannot be changed by header operations: route to a different destination instead"
                .to_owned(),
        );
    }
    http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
        .is_err()
        .then(|| format!("{name:?} is not a valid header name: use letters, digits and '-'"))
}

fn check_percent(c: &mut Collector, object: &str, field: &str, p: Option<super::Percent>) {
    if let Some(p) = p
        && !(0.0..=100.0).contains(&p.value)
    {
        c.push(
            object,
            field,
            format!("{} is out of range: use 0 to 100", p.value),
        );
    }
}

fn check_duration(c: &mut Collector, object: &str, field: &str, value: &str) {
    if parse_duration(value).is_none() {
        c.push(object, field, format!("{value:?} is not a duration: use a number with a unit, e.g. \"500ms\", \"5s\" or \"1m\""));
    }
}

/// Parses an Istio duration (`"1.5s"`, `"500ms"`, `"1m"`, `"1h"`, `"10us"`),
/// as protobuf's `Duration` JSON form and Istio's Go parser accept.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().ok()?;
    let secs = match unit {
        "h" => value * 3600.0,
        "m" => value * 60.0,
        "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "ns" => value / 1e9,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| std::time::Duration::from_secs_f64(secs))
}

fn validate_dr(c: &mut Collector, object: &str, dr: &DestinationRule) {
    if !is_valid_host(&dr.spec.host) {
        c.push(
            object,
            "spec.host",
            format!("{:?} is not a valid DNS host name", dr.spec.host),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, s) in dr.spec.subsets.iter().enumerate() {
        if !is_dns1123_label(&s.name) {
            c.push(
                object,
                format!("spec.subsets[{i}].name"),
                format!(
                    "{:?} is not a valid subset name: use lowercase letters, digits and '-'",
                    s.name
                ),
            );
        }
        if !seen.insert(s.name.as_str()) {
            c.push(
                object,
                format!("spec.subsets[{i}].name"),
                format!("subset {:?} is defined twice", s.name),
            );
        }
        if let Some(tls) = s.traffic_policy.as_ref().and_then(|p| p.tls.as_ref()) {
            validate_client_tls(
                c,
                object,
                &format!("spec.subsets[{i}].trafficPolicy.tls"),
                tls,
            );
        }
    }
    if let Some(tls) = dr.spec.traffic_policy.as_ref().and_then(|p| p.tls.as_ref()) {
        validate_client_tls(c, object, "spec.trafficPolicy.tls", tls);
    }
}

/// `trafficPolicy.tls`: the fields each mode needs or forbids (as Istio
/// checks them), and a usable `sni`.
fn validate_client_tls(c: &mut Collector, object: &str, at: &str, tls: &super::ClientTlsSettings) {
    use super::TlsMode;
    if tls.mode == TlsMode::Mutual {
        for (field, value) in [
            ("clientCertificate", &tls.client_certificate),
            ("privateKey", &tls.private_key),
        ] {
            if value.as_deref().is_none_or(str::is_empty) {
                c.push(
                    object,
                    format!("{at}.{field}"),
                    "mode MUTUAL needs clientCertificate and privateKey: set them to the PEM \
                     files meshproxy presents to the upstream, or use ISTIO_MUTUAL",
                );
            }
        }
    }
    if tls.mode == TlsMode::IstioMutual {
        for (field, value) in [
            ("clientCertificate", &tls.client_certificate),
            ("privateKey", &tls.private_key),
            ("caCertificates", &tls.ca_certificates),
        ] {
            if value.is_some() {
                c.push(
                    object,
                    format!("{at}.{field}"),
                    "must be empty with mode ISTIO_MUTUAL (the proxy's own certificate and \
                     mesh CA are used): remove it, or use mode MUTUAL",
                );
            }
        }
    }
    if let Some(sni) = &tls.sni
        && !is_valid_host(sni)
        && sni.parse::<std::net::IpAddr>().is_err()
    {
        c.push(
            object,
            format!("{at}.sni"),
            format!("{sni:?} is not a valid DNS name: use the name on the upstream's certificate"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::yaml::parse_resources;
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let rs = parse_resources(text).unwrap();
        match validate(&rs) {
            Ok(()) => Vec::new(),
            Err(e) => e.problems.iter().map(ToString::to_string).collect(),
        }
    }

    const DR: &str = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: discounts}\nspec:\n  host: discounts\n  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n";

    fn vs(route: &str) -> String {
        format!(
            "{DR}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: discounts}}\nspec:\n  hosts: [discounts]\n  http:\n  - route:\n{route}"
        )
    }

    #[test]
    fn accepts_a_valid_split() {
        let text = vs(
            "    - {destination: {host: discounts, subset: v1}, weight: 90}\n    - {destination: {host: discounts, subset: v2}, weight: 10}\n",
        );
        assert_eq!(problems(&text), Vec::<String>::new());
    }

    #[test]
    fn rejects_weights_not_summing_to_100() {
        let text = vs(
            "    - {destination: {host: discounts, subset: v1}, weight: 90}\n    - {destination: {host: discounts, subset: v2}, weight: 20}\n",
        );
        assert_eq!(
            problems(&text),
            [
                "VirtualService/discounts spec.http[0].route: weights sum to 110: they must sum to 100"
            ]
        );
    }

    #[test]
    fn rejects_unknown_subset() {
        let text = vs("    - {destination: {host: discounts, subset: v3}}\n");
        assert_eq!(
            problems(&text),
            [
                "VirtualService/discounts spec.http[0].route[0].destination.subset: subset \"v3\" of host \"discounts\" is not defined in its DestinationRule (defined: v1, v2)"
            ]
        );
    }

    #[test]
    fn checks_header_operations() {
        let ok = vs(
            "    - destination: {host: discounts, subset: v1}\n      headers:\n        request: {set: {x-version: v1}, remove: [x-debug]}\n        response: {add: {set-cookie: \"ver=v1; Path=/\"}}\n",
        );
        assert_eq!(problems(&ok), Vec::<String>::new());
        let bad = vs(
            "    - destination: {host: discounts, subset: v1}\n      headers:\n        request: {set: {\":authority\": x, \"bad name\": y}, remove: [Host]}\n        response: {add: {x-ok: \"line\\nbreak\"}}\n",
        );
        assert_eq!(
            problems(&bad),
            [
                "VirtualService/discounts spec.http[0].route[0].headers.request.set.:authority: \":authority\" is a pseudo-header, which header operations cannot change: use a regular header name",
                "VirtualService/discounts spec.http[0].route[0].headers.request.set.bad name: \"bad name\" is not a valid header name: use letters, digits and '-'",
                "VirtualService/discounts spec.http[0].route[0].headers.request.remove.Host: \"host\" cannot be changed by header operations: route to a different destination instead",
                "VirtualService/discounts spec.http[0].route[0].headers.response.add.x-ok: \"line\\nbreak\" is not a valid header value: use visible ASCII characters, spaces and tabs, without line breaks",
            ]
        );
    }

    #[test]
    fn rejects_bad_names_and_hosts() {
        let text = DR
            .replace("name: discounts}", "name: Discounts_1}")
            .replace("host: discounts", "host: \"bad host\"");
        assert_eq!(problems(&text).len(), 2, "{:?}", problems(&text));
    }

    #[test]
    fn checks_destination_rule_tls() {
        let policy = |tls: &str| {
            DR.replace(
                "  subsets:\n",
                &format!("  trafficPolicy:\n    tls: {tls}\n  subsets:\n"),
            )
        };
        assert!(problems(&policy("{mode: SIMPLE, sni: reviews.default}")).is_empty());
        assert!(problems(&policy("{mode: ISTIO_MUTUAL}")).is_empty());
        assert_eq!(
            problems(&policy("{mode: MUTUAL, clientCertificate: c.pem}")),
            [
                "DestinationRule/discounts spec.trafficPolicy.tls.privateKey: mode MUTUAL needs clientCertificate and privateKey: set them to the PEM files meshproxy presents to the upstream, or use ISTIO_MUTUAL"
            ]
        );
        assert_eq!(
            problems(&policy(
                "{mode: ISTIO_MUTUAL, caCertificates: ca.pem, sni: \"a b\"}"
            )),
            [
                "DestinationRule/discounts spec.trafficPolicy.tls.caCertificates: must be empty with mode ISTIO_MUTUAL (the proxy's own certificate and mesh CA are used): remove it, or use mode MUTUAL",
                "DestinationRule/discounts spec.trafficPolicy.tls.sni: \"a b\" is not a valid DNS name: use the name on the upstream's certificate",
            ]
        );
        let subset = DR.replace(
            "{name: v2, labels: {version: v2}}",
            "{name: v2, labels: {version: v2}, trafficPolicy: {tls: {mode: MUTUAL}}}",
        );
        assert_eq!(problems(&subset).len(), 2, "{:?}", problems(&subset));
        assert!(
            problems(&subset)[0].contains("spec.subsets[1].trafficPolicy.tls.clientCertificate")
        );
    }

    #[test]
    fn parses_durations() {
        assert_eq!(
            parse_duration("1.5s"),
            Some(std::time::Duration::from_millis(1500))
        );
        assert_eq!(
            parse_duration("500ms"),
            Some(std::time::Duration::from_millis(500))
        );
        assert_eq!(
            parse_duration("2m"),
            Some(std::time::Duration::from_secs(120))
        );
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
    }

    #[test]
    fn hosts() {
        assert!(is_valid_host("discounts.example.com"));
        assert!(is_valid_host("*.example.com"));
        assert!(is_valid_host("Discounts.Example.com"));
        assert!(!is_valid_host("bad host"));
        assert_eq!(
            short_host("discounts.default.svc.cluster.local"),
            "discounts"
        );
        assert_eq!(short_host("discounts.example.com"), "discounts.example.com");
    }
}
