//! Rendering: a validated [`ServiceSpec`] through the templates into typed
//! Istio resources.
//!
//! [`render`] is pure (no IO): templates are minijinja files (embedded, or
//! from `--templates DIR`, see [`Templates`]); what each produces is parsed
//! back into the shared resource model, checked for fields the model does
//! not hold (which would otherwise be dropped silently), validated with
//! [`meshproxy::istio::validate`], and checked against the spec (every
//! version is a subset, the `primary` route carries the requested split).
//! Nothing invalid is ever printed or applied. The rollout engine calls
//! `render` with [`Overrides`] to produce each step's weights.

mod check;
mod templates;

use std::path::PathBuf;

use meshproxy::istio::Resource;
use meshproxy::istio::validate::ValidationError;
use meshproxy::istio::yaml::{self, YamlError};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

pub use templates::{Template, TemplateKind, TemplateOrigin, Templates};

use crate::spec::ServiceSpec;
use crate::traffic::Split;

/// The name of the VirtualService HTTP route that carries the version split;
/// a rollout shifts the weights of this route.
pub const PRIMARY_ROUTE: &str = "primary";

/// Changes to what the spec alone would render.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Weights to render instead of the spec's `weights` (a rollout step,
    /// `--promoted`). Every version named must be in the spec.
    pub split: Option<Split>,
}

// === impl Overrides ===

impl Overrides {
    /// The state after promotion (`render --promoted`): the canary (the
    /// spec's last version) at 100%, every version still a subset.
    pub fn promoted(spec: &ServiceSpec) -> Self {
        Self {
            split: Some(Split::all_to(spec.canary().clone())),
        }
    }
}

/// Why rendering failed. Every variant names the template involved.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The templates directory or a template file could not be read.
    #[error("reading templates: {}", path.display())]
    ReadTemplates {
        /// The directory or file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A `*.j2` file in the templates directory that is not one of the three.
    #[error(
        "{}: unknown template: a templates directory holds gateway.yaml.j2, destinationrule.yaml.j2 and virtualservice.yaml.j2 (rename or remove this file)",
        path.display()
    )]
    UnknownTemplate {
        /// The file.
        path: PathBuf,
    },
    /// The template has a syntax error or failed while rendering.
    #[error("{origin}: line {line}: {message}")]
    Template {
        /// The template.
        origin: TemplateOrigin,
        /// 1-based line in the template.
        line: usize,
        /// minijinja's description (`syntax error: unexpected end of input, ...`).
        message: String,
    },
    /// The template's output is not YAML, or not a Gateway, VirtualService or
    /// DestinationRule with fields of the right types.
    #[error("{origin}: the output is not a valid Istio resource{excerpt}")]
    Output {
        /// The template.
        origin: TemplateOrigin,
        /// The offending output line, ` (output line N: TEXT)`, when known.
        excerpt: String,
        /// The parser's message, with position in the output and field path.
        #[source]
        source: Box<YamlError>,
    },
    /// The template's output has fields meshctl does not model.
    #[error(
        "{origin}: the output has {} meshctl does not support: {}: remove {} from the template",
        if fields.len() == 1 { "a field" } else { "fields" },
        fields.join(", "),
        if fields.len() == 1 { "it" } else { "them" }
    )]
    Unsupported {
        /// The template.
        origin: TemplateOrigin,
        /// `VirtualService/discounts spec.http[0].corsPolicy`.
        fields: Vec<String>,
    },
    /// The rendered resources are invalid (names, hosts, ports, weights, subsets).
    #[error("{origins}: rendered resources are invalid")]
    Invalid {
        /// The templates that produced the invalid objects.
        origins: String,
        /// The problems, one per field.
        #[source]
        source: ValidationError,
    },
    /// The rendered resources do not express the spec (custom templates).
    #[error("{origin}: {message}")]
    Spec {
        /// The template at fault.
        origin: TemplateOrigin,
        /// What is missing or wrong, and what the spec asks for.
        message: String,
    },
    /// An override names a version the spec does not define.
    #[error("weights name version {version:?}, which is not one of the versions ({known})")]
    UnknownVersion {
        /// The version.
        version: String,
        /// The spec's versions, comma-separated.
        known: String,
    },
    /// Printing failed.
    #[error("printing the rendered resources")]
    Print(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The variables templates see (documented in `templates/gateway.yaml.j2`).
#[derive(Serialize)]
struct Context<'a> {
    service: &'a str,
    namespace: Option<&'a str>,
    api_version: &'static str,
    labels: std::collections::BTreeMap<&'static str, &'a str>,
    hosts: &'a [String],
    port: Option<u16>,
    versions: Vec<VersionCtx<'a>>,
    route: Vec<RouteCtx<'a>>,
    gateway: Option<GatewayCtx<'a>>,
}

#[derive(Serialize)]
struct VersionCtx<'a> {
    name: &'a str,
    labels: &'a std::collections::BTreeMap<String, String>,
}

#[derive(Serialize)]
struct RouteCtx<'a> {
    version: &'a str,
    weight: u8,
}

#[derive(Serialize)]
struct GatewayCtx<'a> {
    name: &'a str,
    port: u16,
    protocol: &'static str,
    port_name: String,
    selector: &'a std::collections::BTreeMap<String, String>,
    tls: Option<TlsCtx<'a>>,
}

#[derive(Serialize)]
struct TlsCtx<'a> {
    credential_name: &'a str,
}

/// Renders the spec into validated resources, in apply order: Gateway (when
/// the spec has hosts), DestinationRule, VirtualService.
pub fn render(
    spec: &ServiceSpec,
    templates: &Templates,
    overrides: &Overrides,
) -> Result<Vec<Resource>, RenderError> {
    let split = overrides.split.as_ref().unwrap_or(&spec.weights);
    for (v, _) in split.pairs() {
        if spec.version(v).is_none() {
            return Err(RenderError::UnknownVersion {
                version: v.to_string(),
                known: spec
                    .versions
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let ctx = Context {
        service: &spec.service,
        namespace: spec.namespace.as_deref(),
        api_version: spec.istio_api.as_str(),
        labels: [
            ("app.kubernetes.io/name", spec.service.as_str()),
            ("app.kubernetes.io/managed-by", "meshctl"),
        ]
        .into(),
        hosts: &spec.hosts,
        port: spec.port.map(std::num::NonZeroU16::get),
        versions: spec
            .versions
            .iter()
            .map(|v| VersionCtx {
                name: v.name.as_str(),
                labels: &v.labels,
            })
            .collect(),
        route: split
            .pairs()
            .iter()
            .filter(|(_, w)| w.get() > 0)
            .map(|(v, w)| RouteCtx {
                version: v.as_str(),
                weight: w.get(),
            })
            .collect(),
        gateway: spec.gateway.as_ref().map(|g| GatewayCtx {
            name: &g.name,
            port: g.port.get(),
            protocol: if g.tls.is_some() { "HTTPS" } else { "HTTP" },
            port_name: format!(
                "{}-{}",
                if g.tls.is_some() { "https" } else { "http" },
                g.port
            ),
            selector: &g.selector,
            tls: g.tls.as_ref().map(|t| TlsCtx {
                credential_name: &t.credential_name,
            }),
        }),
    };
    let ctx = minijinja::Value::from(minijinja::value::Serde(&ctx));

    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Every printed value becomes JSON, which is valid YAML: a host or label
    // can never break the document's structure.
    env.set_auto_escape_callback(|_| AutoEscape::Json);
    let mut syntax = minijinja::syntax::SyntaxConfig::builder();
    syntax
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true);
    env.set_syntax(syntax.build().expect("default delimiters are valid"));

    let mut produced: Vec<(Resource, &TemplateOrigin)> = Vec::new();
    for t in templates.iter() {
        if t.kind == TemplateKind::Gateway && spec.gateway.is_none() {
            continue;
        }
        let template_error = |e: minijinja::Error| RenderError::Template {
            origin: t.origin.clone(),
            line: e.line().unwrap_or(1),
            message: match e.detail() {
                Some(d) => format!("{}: {d}", e.kind()),
                None => e.kind().to_string(),
            },
        };
        let text = env
            .template_from_named_str(t.kind.file_name(), &t.source)
            .and_then(|tmpl| tmpl.render(&ctx))
            .map_err(template_error)?;
        for r in parse_output(&text, &t.origin)? {
            produced.push((r, &t.origin));
        }
    }

    if let Some(cookie) = &spec.sticky_cookie {
        add_sticky(&mut produced, cookie)?;
    }
    let resources: Vec<Resource> = produced.iter().map(|(r, _)| r.clone()).collect();
    if let Err(e) = meshproxy::istio::validate::validate(&resources) {
        let mut origins: Vec<String> = Vec::new();
        for p in &e.problems {
            let origin = produced
                .iter()
                .find(|(r, _)| format!("{}/{}", r.kind(), r.metadata().name) == p.object)
                .map(|(_, o)| o.to_string());
            if let Some(o) = origin
                && !origins.contains(&o)
            {
                origins.push(o);
            }
        }
        return Err(RenderError::Invalid {
            origins: origins.join(", "),
            source: e,
        });
    }
    check::matches_spec(spec, split, &produced, templates)?;
    Ok(resources)
}

/// Sticky sessions on the VirtualService's `primary` route, exactly as a
/// rollout with `--sticky-cookie` writes them ([`crate::routing::sticky`]),
/// so what is rendered and what a rollout leaves behind agree.
fn add_sticky(
    produced: &mut [(Resource, &TemplateOrigin)],
    cookie: &crate::routing::sticky::CookieName,
) -> Result<(), RenderError> {
    for (r, origin) in produced.iter_mut() {
        let Resource::VirtualService(vs) = r else {
            continue;
        };
        crate::routing::sticky::strip(vs);
        if let Some(i) = vs
            .spec
            .http
            .iter()
            .position(|h| h.name.as_deref() == Some(PRIMARY_ROUTE))
        {
            crate::routing::sticky::apply(vs, i, cookie).map_err(|e| RenderError::Spec {
                origin: (*origin).clone(),
                message: e.to_string(),
            })?;
        }
    }
    Ok(())
}

/// Parses one template's output into resources, rejecting fields the
/// resource model would drop.
fn parse_output(text: &str, origin: &TemplateOrigin) -> Result<Vec<Resource>, RenderError> {
    let resources = yaml::parse_resources(text).map_err(|source| {
        let excerpt = source
            .line()
            .and_then(|n| text.lines().nth(n - 1).map(|l| (n, l)))
            .map(|(n, l)| format!(" (output line {n}: `{}`)", l.trim()))
            .unwrap_or_default();
        RenderError::Output {
            origin: origin.clone(),
            excerpt,
            source: Box::new(source),
        }
    })?;
    let mut fields = Vec::new();
    for (doc, r) in yaml::documents(text).iter().zip(&resources) {
        let raw: serde_json::Value =
            yaml::from_str(doc.text).map_err(|source| RenderError::Output {
                origin: origin.clone(),
                excerpt: String::new(),
                source: Box::new(source),
            })?;
        let typed = serde_json::to_value(r).map_err(|e| RenderError::Print(e.into()))?;
        let object = format!("{}/{}", r.kind(), r.metadata().name);
        check::unmodelled(&raw, &typed, &mut String::new(), &mut |path| {
            fields.push(format!("{object} {path}"));
        });
    }
    if fields.is_empty() {
        Ok(resources)
    } else {
        Err(RenderError::Unsupported {
            origin: origin.clone(),
            fields,
        })
    }
}

/// Prints resources as multi-document YAML for `kubectl apply -f -`.
pub fn to_yaml(resources: &[Resource]) -> Result<String, RenderError> {
    yaml::print_resources(resources).map_err(|e| RenderError::Print(e.into()))
}

/// Prints resources as one JSON `List` (`apiVersion: v1`, `kind: List`),
/// which `kubectl apply -f -` accepts like the YAML stream.
pub fn to_json(resources: &[Resource]) -> Result<String, RenderError> {
    let list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": resources,
    });
    let mut text = serde_json::to_string_pretty(&list).map_err(|e| RenderError::Print(e.into()))?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use meshproxy::istio::VirtualService;

    use super::*;

    fn spec(text: &str) -> ServiceSpec {
        ServiceSpec::from_yaml(text, Path::new("meshctl.yaml")).unwrap()
    }

    /// `s` rendered with the embedded templates at `split`.
    fn render_at(s: &ServiceSpec, split: Split) -> Result<Vec<Resource>, RenderError> {
        render(s, &Templates::embedded(), &Overrides { split: Some(split) })
    }

    fn vs(resources: &[Resource]) -> &VirtualService {
        resources
            .iter()
            .find_map(|r| match r {
                Resource::VirtualService(vs) => Some(vs),
                _ => None,
            })
            .unwrap()
    }

    fn weights(vs: &VirtualService) -> Vec<(String, u32)> {
        vs.spec.http[0]
            .route
            .iter()
            .map(|d| (d.destination.subset.clone().unwrap(), d.weight.unwrap()))
            .collect()
    }

    #[test]
    fn stable_takes_all_traffic_by_default() {
        let s = spec("service: discounts\nversions: [v1, v2]\n");
        let out = render(&s, &Templates::embedded(), &Overrides::default()).unwrap();
        let kinds: Vec<_> = out.iter().map(Resource::kind).collect();
        assert_eq!(kinds, ["DestinationRule", "VirtualService"]);
        assert_eq!(weights(vs(&out)), [("v1".to_owned(), 100)]);
        assert_eq!(vs(&out).spec.http[0].name.as_deref(), Some(PRIMARY_ROUTE));
        assert!(vs(&out).spec.gateways.is_empty());
    }

    #[test]
    fn overrides_render_a_rollout_step() {
        let s =
            spec("service: discounts\nhosts: [d.example.com]\nport: 8080\nversions: [v1, v2]\n");
        let step = Split::parse_pairs(&["v1=75", "v2=25"]).unwrap();
        let out = render_at(&s, step).unwrap();
        let vs = vs(&out);
        assert_eq!(weights(vs), [("v1".to_owned(), 75), ("v2".to_owned(), 25)]);
        assert_eq!(vs.spec.gateways, ["discounts-gateway", "mesh"]);
        assert_eq!(vs.spec.hosts, ["discounts", "d.example.com"]);
        assert_eq!(
            vs.spec.http[0].route[0]
                .destination
                .port
                .as_ref()
                .unwrap()
                .number,
            8080
        );
        assert_eq!(out[0].kind(), "Gateway");
    }

    #[test]
    fn override_naming_an_unknown_version_is_refused() {
        let s = spec("service: discounts\nversions: [v1, v2]\n");
        let err = render_at(&s, Split::all_to("v3".parse().unwrap())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "weights name version \"v3\", which is not one of the versions (v1, v2)"
        );
    }

    #[test]
    fn values_cannot_break_the_yaml() {
        // Labels may hold characters that mean something in YAML; the JSON
        // auto-escaping keeps them scalars.
        let s = spec(
            "service: discounts\nversions:\n  v1: {\"app.kubernetes.io/version\": \"1.0_rc-1\"}\n",
        );
        let out = render(&s, &Templates::embedded(), &Overrides::default()).unwrap();
        let Resource::DestinationRule(dr) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(
            dr.spec.subsets[0].labels["app.kubernetes.io/version"],
            "1.0_rc-1"
        );
    }

    #[test]
    fn unmodelled_fields_are_found_and_empty_ones_ignored() {
        let raw = serde_json::json!({"spec": {"http": [{"route": [], "corsPolicy": {"a": 1}, "gateways": []}], "exportTo": ["."]}, "kind": "X"});
        let typed = serde_json::json!({"spec": {"http": [{"route": []}]}, "kind": "X"});
        let mut found = Vec::new();
        check::unmodelled(&raw, &typed, &mut String::new(), &mut |p| {
            found.push(p.to_owned());
        });
        assert_eq!(found, ["spec.exportTo", "spec.http[0].corsPolicy"]);
    }

    #[test]
    fn sticky_cookie_renders_routes_that_follow_the_weights() {
        let s = spec("service: discounts\nversions: [v1, v2]\nstickyCookie: ver\n");
        let step = Split::parse_pairs(&["v1=90", "v2=10"]).unwrap();
        let out = render_at(&s, step).unwrap();
        let names: Vec<_> = vs(&out)
            .spec
            .http
            .iter()
            .map(|r| r.name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            ["meshctl-sticky-v1", "meshctl-sticky-v2", PRIMARY_ROUTE]
        );
        let primary = &vs(&out).spec.http[2];
        let cookie = |i: usize| {
            primary.route[i]
                .headers
                .as_ref()
                .unwrap()
                .response
                .as_ref()
                .unwrap()
                .add["set-cookie"]
                .clone()
        };
        assert_eq!(cookie(0), "ver=v1; Path=/; HttpOnly; SameSite=Lax");
        assert_eq!(cookie(1), "ver=v2; Path=/; HttpOnly; SameSite=Lax");
        // Promoted: only the new version keeps a sticky route.
        let out = render_at(&s, Split::all_to("v2".parse().unwrap())).unwrap();
        assert_eq!(vs(&out).spec.http.len(), 2);
        assert_eq!(
            vs(&out).spec.http[0].name.as_deref(),
            Some("meshctl-sticky-v2")
        );
        // Without the cookie nothing changes.
        let plain = spec("service: discounts\nversions: [v1, v2]\n");
        let out = render(&plain, &Templates::embedded(), &Overrides::default()).unwrap();
        assert_eq!(vs(&out).spec.http.len(), 1);
        assert!(vs(&out).spec.http[0].route[0].headers.is_none());
    }

    #[test]
    fn json_output_is_a_kubernetes_list() {
        let s = spec("service: discounts\nversions: [v1]\n");
        let out = render(&s, &Templates::embedded(), &Overrides::default()).unwrap();
        let list: serde_json::Value = serde_json::from_str(&to_json(&out).unwrap()).unwrap();
        assert_eq!(list["kind"], "List");
        assert_eq!(list["items"].as_array().unwrap().len(), 2);
        assert!(
            to_yaml(&out)
                .unwrap()
                .starts_with("---\nkind: DestinationRule\n")
        );
    }
}
