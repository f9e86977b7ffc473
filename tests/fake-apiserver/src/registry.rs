//! The resource types the fake server serves, and the discovery documents
//! (`/api`, `/apis`, `/apis/GROUP`, `/apis/GROUP/VERSION`) derived from them.

use serde_json::{Value, json};

/// Istio's networking group.
pub const ISTIO_GROUP: &str = "networking.istio.io";

/// One served resource type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// API group (`""` for core).
    pub group: &'static str,
    /// Served versions, storage version first.
    pub versions: &'static [&'static str],
    /// Plural resource name used in paths.
    pub plural: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// Short names (`vs`).
    pub short_names: &'static [&'static str],
    /// Whether a custom resource (validated against CRD schemas, conversions
    /// between versions are trivial).
    pub custom: bool,
}

const ISTIO_VERSIONS: &[&str] = &["v1", "v1beta1", "v1alpha3"];

/// Everything the fake serves. All are namespaced.
pub const RESOURCES: &[ResourceType] = &[
    ResourceType {
        group: ISTIO_GROUP,
        versions: ISTIO_VERSIONS,
        plural: "gateways",
        kind: "Gateway",
        singular: "gateway",
        short_names: &["gw"],
        custom: true,
    },
    ResourceType {
        group: ISTIO_GROUP,
        versions: ISTIO_VERSIONS,
        plural: "virtualservices",
        kind: "VirtualService",
        singular: "virtualservice",
        short_names: &["vs"],
        custom: true,
    },
    ResourceType {
        group: ISTIO_GROUP,
        versions: ISTIO_VERSIONS,
        plural: "destinationrules",
        kind: "DestinationRule",
        singular: "destinationrule",
        short_names: &["dr"],
        custom: true,
    },
    ResourceType {
        group: "coordination.k8s.io",
        versions: &["v1"],
        plural: "leases",
        kind: "Lease",
        singular: "lease",
        short_names: &[],
        custom: false,
    },
    ResourceType {
        group: "events.k8s.io",
        versions: &["v1"],
        plural: "events",
        kind: "Event",
        singular: "event",
        short_names: &["ev"],
        custom: false,
    },
    ResourceType {
        group: "",
        versions: &["v1"],
        plural: "pods",
        kind: "Pod",
        singular: "pod",
        short_names: &["po"],
        custom: false,
    },
    ResourceType {
        group: "",
        versions: &["v1"],
        plural: "services",
        kind: "Service",
        singular: "service",
        short_names: &["svc"],
        custom: false,
    },
    ResourceType {
        group: "discovery.k8s.io",
        versions: &["v1"],
        plural: "endpointslices",
        kind: "EndpointSlice",
        singular: "endpointslice",
        short_names: &[],
        custom: false,
    },
];

// === impl ResourceType ===

impl ResourceType {
    /// `virtualservices.networking.istio.io`, or `pods` for the core group,
    /// as the API server names a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `group/version` (or `v1` for core).
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// The verbs listed in discovery.
    pub fn verbs() -> Value {
        json!([
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "create",
            "update",
            "watch"
        ])
    }
}

/// Finds a served resource type by group, version and plural.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural && r.versions.contains(&version))
}

/// The versions of `group` served, given the served Istio versions.
fn served(group: &str, istio: &[String]) -> Vec<&'static str> {
    let all = RESOURCES
        .iter()
        .find(|r| r.group == group)
        .map_or(&[][..], |r| r.versions);
    if group == ISTIO_GROUP {
        all.iter()
            .copied()
            .filter(|v| istio.iter().any(|s| s == v))
            .collect()
    } else {
        all.to_vec()
    }
}

/// Whether `group/version` is served.
pub fn serves(group: &str, version: &str, istio: &[String]) -> bool {
    served(group, istio).contains(&version)
}

/// Groups (other than core) in the order discovery lists them.
fn groups(istio: &[String]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if r.group.is_empty() || out.contains(&r.group) || served(r.group, istio).is_empty() {
            continue;
        }
        out.push(r.group);
    }
    out
}

fn group_doc(group: &str, istio: &[String]) -> Value {
    let versions: Vec<Value> = served(group, istio)
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

/// `GET /api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

/// `GET /apis`.
pub fn group_list(istio: &[String]) -> Value {
    let groups: Vec<Value> = groups(istio)
        .into_iter()
        .map(|g| group_doc(g, istio))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/GROUP`, `None` when the group is not served.
pub fn group(group: &str, istio: &[String]) -> Option<Value> {
    if !groups(istio).contains(&group) {
        return None;
    }
    let mut doc = group_doc(group, istio);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// `GET /api/v1` or `GET /apis/GROUP/VERSION`, `None` when not served.
pub fn resource_list(group: &str, version: &str, istio: &[String]) -> Option<Value> {
    if !group.is_empty() && !serves(group, version, istio) {
        return None;
    }
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.versions.contains(&version))
        .map(|r| {
            json!({
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": true,
                "kind": r.kind,
                "verbs": ResourceType::verbs(),
                "shortNames": r.short_names,
            })
        })
        .collect();
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}
