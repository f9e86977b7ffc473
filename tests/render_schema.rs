//! Everything `meshctl render` prints is accepted by Istio's own CRD schemas
//! (`networking.istio.io.yaml`), with unknown fields rejected as strict field
//! validation does. The CRDs come from `MESHCTL_ISTIO_CRDS` or
//! `../shared/istio-crds/` beside the repository; when neither exists the
//! tests say they skipped, unless `MESHCTL_REQUIRE_CRDS=1` (set by `.ci/run`).

use fake_apiserver::schema::{CrdSchemas, FieldErrorKind};
use serde_json::{Value, json};

use crate::render::{CASES, run_case};

/// The CRD schemas, or `None` (after saying so) when they are not available.
fn crds() -> Option<CrdSchemas> {
    CrdSchemas::istio()
}

/// Validates one object; returns the problems as the API server words them.
fn problems(crds: &CrdSchemas, obj: &Value) -> Vec<String> {
    let api_version = obj["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap();
    let kind = obj["kind"].as_str().unwrap();
    crds.validate(group, version, kind, obj)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn crds_define_the_three_kinds() {
    let Some(crds) = crds() else { return };
    let mut kinds: Vec<_> = crds
        .kinds()
        .map(|c| (c.kind.as_str(), c.plural.as_str(), c.storage_version()))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("DestinationRule", "destinationrules", Some("v1")),
            ("Gateway", "gateways", Some("v1")),
            ("VirtualService", "virtualservices", Some("v1")),
        ]
    );
}

#[test]
fn every_rendered_document_passes_the_crd_schemas() {
    let Some(crds) = crds() else { return };
    let mut checked = 0;
    for case in CASES {
        let out = run_case(case);
        assert!(
            out.status.success(),
            "{}: {}",
            case.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let objects: Vec<Value> = if case.args.contains(&"json") {
            let list: Value = serde_json::from_str(&text).unwrap();
            list["items"].as_array().unwrap().clone()
        } else {
            meshproxy::istio::yaml::documents(&text)
                .iter()
                .map(|d| meshproxy::istio::yaml::from_str(d.text).unwrap())
                .collect()
        };
        assert!(objects.len() >= 2, "{}: {text}", case.name);
        for obj in &objects {
            let found = problems(&crds, obj);
            assert!(
                found.is_empty(),
                "{}: {} {} is rejected by the CRD schema:\n{}\n{obj:#}",
                case.name,
                obj["kind"],
                obj["metadata"]["name"],
                found.join("\n")
            );
            checked += 1;
        }
    }
    assert!(checked >= 2 * CASES.len());
}

#[test]
fn the_validator_rejects_unknown_fields_and_wrong_types() {
    let Some(crds) = crds() else { return };
    let bad = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "discounts"},
        "spec": {
            "hosts": ["discounts"],
            "http": [{
                "name": "primary",
                "route": [
                    {"destination": {"host": "discounts", "subset": "v1"}, "weight": 90},
                    {"destination": {"host": "discounts", "subset": "v2"}, "wieght": 10},
                    {"destination": {"host": "discounts", "subset": "v3"}, "weight": "ten"}
                ]
            }]
        }
    });
    let errors = crds.validate("networking.istio.io", "v1", "VirtualService", &bad);
    let found: Vec<_> = errors.iter().map(|e| (e.kind, e.to_string())).collect();
    assert_eq!(
        found,
        [
            (
                FieldErrorKind::Unknown,
                "unknown field \"spec.http[0].route[1].wieght\"".to_owned()
            ),
            (
                FieldErrorKind::Type,
                "spec.http[0].route[2].weight: Invalid value: \"string\": spec.http[0].route[2].weight in body must be of type integer: \"string\"".to_owned()
            ),
        ]
    );

    // A Gateway port missing its required protocol, and a TLS mode Istio
    // does not know.
    let gw = json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "Gateway",
        "metadata": {"name": "edge"},
        "spec": {"servers": [{"port": {"number": 443, "name": "https"}, "hosts": ["a.example.com"], "tls": {"mode": "STRICT"}}]}
    });
    assert_eq!(
        problems(&crds, &gw),
        [
            "spec.servers[0].port.protocol: Required value",
            "spec.servers[0].tls.mode: Unsupported value: \"STRICT\": supported values: \"PASSTHROUGH\", \"SIMPLE\", \"MUTUAL\", \"AUTO_PASSTHROUGH\", \"ISTIO_MUTUAL\", \"OPTIONAL_MUTUAL\"",
        ]
    );
}

#[test]
fn the_validator_applies_istios_one_of_rules() {
    let Some(crds) = crds() else { return };
    let vs = |uri: Value| {
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "discounts", "namespace": "shop", "annotations": {"meshctl.io/rollout": "{}"}},
            "spec": {
                "hosts": ["discounts"],
                "http": [{
                    "name": "canary-header",
                    "match": [{"uri": uri, "headers": {"x-canary": {"exact": "1"}}}],
                    "route": [{"destination": {"host": "discounts", "subset": "v2", "port": {"number": 8080}}}],
                    "timeout": "5s",
                    "retries": {"attempts": 2, "perTryTimeout": "1s", "retryOn": "5xx"},
                    "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 10.5}}},
                    "mirror": {"host": "discounts", "subset": "v2"},
                    "mirrorPercentage": {"value": 50}
                }]
            }
        })
    };
    assert_eq!(
        problems(&crds, &vs(json!({"prefix": "/api"}))),
        Vec::<String>::new()
    );
    assert_eq!(
        problems(&crds, &vs(json!({"prefix": "/api", "exact": "/api"}))),
        [
            "spec.http[0].match[0].uri: Invalid value: \"object\": spec.http[0].match[0].uri in body must validate one and only one schema (oneOf). Found 2 valid alternatives"
        ]
    );
}
