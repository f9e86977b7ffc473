//! Checks on rendered output beyond `istio::validate`: fields the resource
//! model would drop, and whether the resources express the spec. Both guard
//! custom templates (`--templates DIR`); the embedded ones always pass.

use meshproxy::istio::Resource;
use serde_json::Value;

use super::{PRIMARY_ROUTE, RenderError, TemplateKind, TemplateOrigin, Templates};
use crate::spec::ServiceSpec;
use crate::traffic::Split;

/// Calls `found` with the path of every field in `raw` (what the template
/// wrote) that `typed` (the parsed resource, serialised again) lacks. Empty
/// values (`null`, `false`, `[]`, `{}`) are skipped: the model omits them.
pub(super) fn unmodelled(
    raw: &Value,
    typed: &Value,
    path: &mut String,
    found: &mut impl FnMut(&str),
) {
    match (raw, typed) {
        (Value::Object(r), Value::Object(t)) => {
            for (k, v) in r {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                match t.get(k) {
                    Some(tv) => unmodelled(v, tv, path, found),
                    None if is_empty(v) => {}
                    None => found(path),
                }
                path.truncate(len);
            }
        }
        (Value::Array(r), Value::Array(t)) => {
            for (i, (rv, tv)) in r.iter().zip(t).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                unmodelled(rv, tv, path, found);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// The one object `pick` finds among `produced`; else the message
/// `expected one WHAT, the templates produced N`.
fn the_one<'a, T>(
    produced: &'a [(Resource, &TemplateOrigin)],
    what: &str,
    pick: impl Fn(&'a Resource) -> Option<&'a T>,
) -> Result<&'a T, String> {
    let found: Vec<&T> = produced.iter().filter_map(|(r, _)| pick(r)).collect();
    match found.as_slice() {
        [one] => Ok(one),
        _ => Err(format!(
            "expected one {what}, the templates produced {}",
            found.len()
        )),
    }
}

/// Checks that the resources express the spec: one DestinationRule for the
/// service with every version as a subset (same labels), one VirtualService
/// for the service whose `primary` route sends `split`, and the Gateway
/// named by the spec, bound by the VirtualService.
pub(super) fn matches_spec(
    spec: &ServiceSpec,
    split: &Split,
    produced: &[(Resource, &TemplateOrigin)],
    templates: &Templates,
) -> Result<(), RenderError> {
    let origin_of = |kind: TemplateKind| {
        templates
            .iter()
            .find(|t| t.kind == kind)
            .map(|t| t.origin.clone())
            .expect("every kind has a template")
    };
    let fail = |kind: TemplateKind, message: String| RenderError::Spec {
        origin: origin_of(kind),
        message,
    };
    let service = spec.service.as_str();

    let dr = the_one(
        produced,
        &format!("DestinationRule for host {service:?}"),
        |r| match r {
            Resource::DestinationRule(dr) => Some(dr),
            _ => None,
        },
    )
    .map_err(|m| fail(TemplateKind::DestinationRule, m))?;
    if dr.spec.host != service {
        return Err(fail(
            TemplateKind::DestinationRule,
            format!(
                "DestinationRule/{} has host {:?}: it must be the service, {service:?}",
                dr.metadata.name, dr.spec.host
            ),
        ));
    }
    for v in &spec.versions {
        let subset = dr.spec.subsets.iter().find(|s| s.name == v.name.as_str());
        if subset.is_none_or(|s| s.labels != v.labels) {
            let labels = v
                .labels
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(fail(
                TemplateKind::DestinationRule,
                format!(
                    "DestinationRule/{} must define subset {:?} with labels {{{labels}}}, as the spec's versions say",
                    dr.metadata.name,
                    v.name.as_str()
                ),
            ));
        }
    }

    let vs = the_one(
        produced,
        &format!("VirtualService for {service:?}"),
        |r| match r {
            Resource::VirtualService(vs) => Some(vs),
            _ => None,
        },
    )
    .map_err(|m| fail(TemplateKind::VirtualService, m))?;
    let name = &vs.metadata.name;
    for h in std::iter::once(service).chain(spec.hosts.iter().map(String::as_str)) {
        if !vs.spec.hosts.iter().any(|x| x.eq_ignore_ascii_case(h)) {
            return Err(fail(
                TemplateKind::VirtualService,
                format!("VirtualService/{name} must list host {h:?} in spec.hosts"),
            ));
        }
    }
    let Some(route) = vs
        .spec
        .http
        .iter()
        .find(|r| r.name.as_deref() == Some(PRIMARY_ROUTE))
    else {
        return Err(fail(
            TemplateKind::VirtualService,
            format!(
                "VirtualService/{name} has no http route named {PRIMARY_ROUTE:?}: a rollout shifts the weights of that route"
            ),
        ));
    };
    let mut routed = Vec::new();
    for d in &route.route {
        let weight = d
            .weight
            .unwrap_or(if route.route.len() == 1 { 100 } else { 0 });
        if weight == 0 {
            continue;
        }
        match &d.destination.subset {
            Some(s) if meshproxy::istio::validate::short_host(&d.destination.host) == service => {
                routed.push(format!("{s}={weight}"));
            }
            _ => {
                return Err(fail(
                    TemplateKind::VirtualService,
                    format!(
                        "VirtualService/{name} route {PRIMARY_ROUTE:?} must send traffic to subsets of host {service:?} (found host {:?}, subset {:?})",
                        d.destination.host, d.destination.subset
                    ),
                ));
            }
        }
    }
    let wanted: Vec<String> = split
        .pairs()
        .iter()
        .filter(|(_, w)| w.get() > 0)
        .map(|(v, w)| format!("{v}={w}"))
        .collect();
    let (mut a, mut b) = (routed.clone(), wanted.clone());
    a.sort();
    b.sort();
    if a != b {
        return Err(fail(
            TemplateKind::VirtualService,
            format!(
                "VirtualService/{name} route {PRIMARY_ROUTE:?} sends {} but the weights are {}",
                routed.join(" "),
                wanted.join(" ")
            ),
        ));
    }

    let gateways: Vec<_> = produced
        .iter()
        .filter_map(|(r, _)| match r {
            Resource::Gateway(gw) => Some(gw),
            _ => None,
        })
        .collect();
    match &spec.gateway {
        None if !gateways.is_empty() => Err(fail(
            TemplateKind::Gateway,
            "produced a Gateway, but the spec has no external hosts".to_owned(),
        )),
        None => Ok(()),
        Some(g) => {
            if !gateways.iter().any(|gw| gw.metadata.name == g.name) {
                return Err(fail(
                    TemplateKind::Gateway,
                    format!("expected Gateway/{}, as the spec says", g.name),
                ));
            }
            if !vs.spec.gateways.contains(&g.name) {
                return Err(fail(
                    TemplateKind::VirtualService,
                    format!(
                        "VirtualService/{name} must list gateway {:?} in spec.gateways (and \"mesh\" for traffic inside the mesh)",
                        g.name
                    ),
                ));
            }
            Ok(())
        }
    }
}
