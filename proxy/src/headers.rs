//! Istio header operations (`headers.request` / `headers.response` with
//! `set`, `add`, `remove`) of a route and of its destinations, compiled once
//! per configuration load.
//!
//! Names and values are parsed into [`HeaderName`]s and [`HeaderValue`]s
//! when the routing table is built; the request path only removes, inserts
//! and appends them. A destination without operations (on itself or its
//! route) has no [`HeaderRules`] at all, so [`on_request`] and
//! [`on_response`] cost one `None` check.
//!
//! Order, as Envoy applies Istio's configuration: the destination's
//! operations, then the route's; within one `HeaderOperations`, `remove`,
//! then `set` (replace every value), then `add` (append a value).

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::istio::{HeaderOperations, Headers};

/// One compiled `HeaderOperations`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderOps {
    remove: Box<[HeaderName]>,
    set: Box<[(HeaderName, HeaderValue)]>,
    add: Box<[(HeaderName, HeaderValue)]>,
}

/// The operations that apply to one destination of one route, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderRules {
    request: Box<[HeaderOps]>,
    response: Box<[HeaderOps]>,
}

/// A name or value that cannot be compiled, with the field it came from
/// relative to the `headers` object (`response.add.set-cookie`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct HeaderOpError {
    /// `request.set.x-version`.
    pub field: String,
    /// What is wrong and what to use instead.
    pub message: String,
}

// === impl HeaderOps ===

impl HeaderOps {
    /// Compiles one `HeaderOperations`; `dir` (`request`/`response`) only
    /// names the field in errors.
    pub fn compile(ops: &HeaderOperations, dir: &str) -> Result<Self, Vec<HeaderOpError>> {
        let mut errors = Vec::new();
        let remove: Vec<HeaderName> = ops
            .remove
            .iter()
            .filter_map(|n| name(dir, "remove", n, &mut errors))
            .collect();
        let set = pairs(dir, "set", &ops.set, &mut errors);
        let add = pairs(dir, "add", &ops.add, &mut errors);
        if errors.is_empty() {
            Ok(Self {
                remove: remove.into(),
                set: set.into(),
                add: add.into(),
            })
        } else {
            Err(errors)
        }
    }

    /// No operation?
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }

    /// Applies `remove`, `set`, `add` to `headers`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for n in &self.remove {
            headers.remove(n);
        }
        for (n, v) in &self.set {
            headers.insert(n.clone(), v.clone());
        }
        for (n, v) in &self.add {
            headers.append(n.clone(), v.clone());
        }
    }
}

fn name(dir: &str, op: &str, n: &str, errors: &mut Vec<HeaderOpError>) -> Option<HeaderName> {
    let reserved = n.starts_with(':') || n.eq_ignore_ascii_case("host");
    match HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()) {
        Ok(h) if !reserved => Some(h),
        _ => {
            errors.push(HeaderOpError {
                field: format!("{dir}.{op}.{n}"),
                message: format!(
                    "{n:?} cannot be changed by a header operation: use a regular header name (letters, digits and '-'), not a pseudo-header or host"
                ),
            });
            None
        }
    }
}

fn pairs(
    dir: &str,
    op: &str,
    map: &std::collections::BTreeMap<String, String>,
    errors: &mut Vec<HeaderOpError>,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::with_capacity(map.len());
    for (n, v) in map {
        let Some(h) = name(dir, op, n, errors) else {
            continue;
        };
        match HeaderValue::from_str(v) {
            Ok(v) => out.push((h, v)),
            Err(_) => errors.push(HeaderOpError {
                field: format!("{dir}.{op}.{n}"),
                message: format!(
                    "{v:?} is not a valid header value: use visible ASCII characters, spaces and tabs, without line breaks"
                ),
            }),
        }
    }
    out
}

// === impl HeaderRules ===

impl HeaderRules {
    /// Compiles the `headers` of a destination and of its route (either may
    /// be absent). `None` when there is nothing to do.
    pub fn compile(
        destination: Option<&Headers>,
        route: Option<&Headers>,
    ) -> Result<Option<Self>, Vec<HeaderOpError>> {
        let mut request = Vec::new();
        let mut response = Vec::new();
        let mut errors = Vec::new();
        for h in [destination, route].into_iter().flatten() {
            for (dir, ops, out) in [
                ("request", &h.request, &mut request),
                ("response", &h.response, &mut response),
            ] {
                let Some(ops) = ops else { continue };
                match HeaderOps::compile(ops, dir) {
                    Ok(o) if o.is_empty() => {}
                    Ok(o) => out.push(o),
                    Err(e) => errors.extend(e),
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok((!request.is_empty() || !response.is_empty()).then(|| Self {
            request: request.into(),
            response: response.into(),
        }))
    }

    /// Whether no operation touches the response.
    pub fn response_is_empty(&self) -> bool {
        self.response.iter().all(HeaderOps::is_empty)
    }

    /// Applies the request operations to the headers sent upstream.
    pub fn apply_request(&self, headers: &mut HeaderMap) {
        for ops in &self.request {
            ops.apply(headers);
        }
    }

    /// Applies the response operations to the headers sent to the client.
    pub fn apply_response(&self, headers: &mut HeaderMap) {
        for ops in &self.response {
            ops.apply(headers);
        }
    }
}

/// Applies a destination's request operations, if it has any.
#[inline]
pub fn on_request(rules: Option<&HeaderRules>, headers: &mut HeaderMap) {
    if let Some(r) = rules {
        r.apply_request(headers);
    }
}

/// Applies a destination's response operations, if it has any.
#[inline]
pub fn on_response(rules: Option<&HeaderRules>, headers: &mut HeaderMap) {
    if let Some(r) = rules {
        r.apply_response(headers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(yaml: &str) -> Headers {
        crate::istio::yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn remove_then_set_then_add_destination_before_route() {
        let dest = headers(
            "request: {remove: [x-debug], set: {x-version: v1}, add: {x-trace: dest}}\nresponse: {add: {set-cookie: \"ver=v1; Path=/\"}}\n",
        );
        let route = headers("request: {set: {x-version: route}, add: {x-trace: route}}\n");
        let rules = HeaderRules::compile(Some(&dest), Some(&route))
            .unwrap()
            .unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-debug", HeaderValue::from_static("1"));
        h.insert("x-version", HeaderValue::from_static("client"));
        h.append("x-version", HeaderValue::from_static("client2"));
        rules.apply_request(&mut h);
        assert!(!h.contains_key("x-debug"));
        // `set` replaces every value; the route's runs last.
        let v: Vec<_> = h.get_all("x-version").iter().collect();
        assert_eq!(v, ["route"]);
        let t: Vec<_> = h.get_all("x-trace").iter().collect();
        assert_eq!(t, ["dest", "route"]);

        // `add` keeps the upstream's own Set-Cookie.
        let mut resp = HeaderMap::new();
        resp.insert("set-cookie", HeaderValue::from_static("session=abc"));
        on_response(Some(&rules), &mut resp);
        let c: Vec<_> = resp.get_all("set-cookie").iter().collect();
        assert_eq!(c, ["session=abc", "ver=v1; Path=/"]);
    }

    #[test]
    fn nothing_to_do_compiles_to_none() {
        assert_eq!(HeaderRules::compile(None, None), Ok(None));
        let empty = headers("request: {}\nresponse: {set: {}}\n");
        assert_eq!(HeaderRules::compile(Some(&empty), None), Ok(None));
        let mut h = HeaderMap::new();
        on_request(None, &mut h);
        assert!(h.is_empty());
    }

    #[test]
    fn bad_names_and_values_name_the_field() {
        let bad = headers("request: {set: {\":path\": /x}}\nresponse: {add: {x-a: \"a\\nb\"}}\n");
        let errs = HeaderRules::compile(Some(&bad), None).unwrap_err();
        let errs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            [
                "request.set.:path: \":path\" cannot be changed by a header operation: use a regular header name (letters, digits and '-'), not a pseudo-header or host",
                "response.add.x-a: \"a\\nb\" is not a valid header value: use visible ASCII characters, spaces and tabs, without line breaks",
            ]
        );
    }
}
