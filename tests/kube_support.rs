//! Shared setup for the Kubernetes-target tests: the support crate's fake
//! cluster, meshctl's Kubernetes target connected to it, the Gateway fixture
//! and the RBAC check.

use fake_apiserver::FakeApiServer;
use meshctl::cli::KubeArgs;
use meshctl::target::ApplyOptions;
use meshctl::target::kube::KubeTarget;
use meshproxy::istio::Resource;

pub use mesh_test_support::cluster::{Cluster, NS, blocking_cluster, crds};

/// meshctl's view of the fake cluster.
pub trait ClusterTarget {
    /// The kube flags pointing at the cluster.
    fn args(&self) -> KubeArgs;

    /// meshctl's Kubernetes target connected to the cluster.
    async fn target(&self) -> KubeTarget;
}

impl ClusterTarget for Cluster {
    fn args(&self) -> KubeArgs {
        KubeArgs {
            context: None,
            namespace: None,
            kubeconfig: Some(self.kubeconfig.clone()),
        }
    }

    async fn target(&self) -> KubeTarget {
        KubeTarget::connect(&self.args(), None)
            .await
            .expect("connects")
    }
}

/// The discounts fixture (Gateway, VirtualService, DestinationRule).
pub fn discounts() -> Vec<Resource> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kube/discounts.yaml"
    ))
    .expect("fixture");
    meshproxy::istio::yaml::parse_resources(&text).expect("fixture parses")
}

/// The fixture with the canary at `weight` percent.
pub fn discounts_at(weight: u32) -> Vec<Resource> {
    let mut resources = discounts();
    for r in &mut resources {
        if let Resource::VirtualService(vs) = r {
            vs.spec.http[0].route[0].weight = Some(100 - weight);
            vs.spec.http[0].route[1].weight = Some(weight);
        }
    }
    resources
}

/// `(group, resource, verb)` triples.
pub type Triples = std::collections::BTreeSet<(String, String, String)>;

/// `(group, resource, verb)` triples the Role in `deploy/rbac.yaml` grants.
pub fn rbac_grants() -> Triples {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/rbac.yaml"))
        .expect("deploy/rbac.yaml");
    let mut grants = std::collections::BTreeSet::new();
    for doc in meshproxy::istio::yaml::documents(&text) {
        let value: serde_json::Value =
            meshproxy::istio::yaml::from_str(doc.text).expect("rbac.yaml parses");
        if value["kind"] != "Role" {
            continue;
        }
        for rule in value["rules"].as_array().expect("rules") {
            for group in rule["apiGroups"].as_array().expect("apiGroups") {
                for resource in rule["resources"].as_array().expect("resources") {
                    for verb in rule["verbs"].as_array().expect("verbs") {
                        grants.insert((
                            group.as_str().unwrap_or_default().to_owned(),
                            resource.as_str().unwrap_or_default().to_owned(),
                            verb.as_str().unwrap_or_default().to_owned(),
                        ));
                    }
                }
            }
        }
    }
    grants
}

/// The `(group, resource, verb)` triples of the resource requests a server saw.
pub fn used_verbs(server: &FakeApiServer) -> Triples {
    server
        .requests()
        .into_iter()
        .filter_map(|r| Some((r.group?, r.resource?, r.verb)))
        .collect()
}

/// A server-side dry run.
pub const DRY_RUN: ApplyOptions = ApplyOptions {
    dry_run: true,
    force_conflicts: false,
};

/// The triples of `a` that are not in `b`.
pub fn missing_from(a: &Triples, b: &Triples) -> Vec<(String, String, String)> {
    a.difference(b).cloned().collect()
}

/// Fails if meshctl sent a request the CI Role does not allow.
pub fn assert_rbac_allows(server: &FakeApiServer) {
    let missing = missing_from(&used_verbs(server), &rbac_grants());
    assert!(
        missing.is_empty(),
        "deploy/rbac.yaml lacks (group, resource, verb): {missing:?}"
    );
}
