//! Shared setup for the Kubernetes-target tests: a fake API server on
//! 127.0.0.1 and a kubeconfig pointing at it.

use std::path::PathBuf;

use fake_apiserver::FakeApiServer;
use meshctl::cli::KubeArgs;
use meshctl::target::kube::KubeTarget;
use meshproxy::istio::Resource;

/// The namespace the tests work in.
pub const NS: &str = "shop";

/// A fake API server with a kubeconfig (context `fake`, namespace [`NS`]).
pub struct Cluster {
    pub server: FakeApiServer,
    pub _dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Cluster {
    pub async fn start() -> Self {
        let server = FakeApiServer::start().await.expect("fake apiserver starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = server.write_kubeconfig(dir.path(), NS).expect("kubeconfig");
        Self {
            server,
            _dir: dir,
            kubeconfig,
        }
    }

    pub fn args(&self) -> KubeArgs {
        KubeArgs {
            context: None,
            namespace: None,
            kubeconfig: Some(self.kubeconfig.clone()),
        }
    }

    pub async fn target(&self) -> KubeTarget {
        KubeTarget::connect(&self.args(), None)
            .await
            .expect("connects")
    }

    /// An Istio object as stored.
    pub fn istio(&self, plural: &str, name: &str) -> Option<serde_json::Value> {
        self.server.object("networking.istio.io", plural, NS, name)
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

/// `(group, resource, verb)` triples the Role in `deploy/rbac.yaml` grants.
pub fn rbac_grants() -> std::collections::BTreeSet<(String, String, String)> {
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
pub fn used_verbs(server: &FakeApiServer) -> std::collections::BTreeSet<(String, String, String)> {
    server
        .requests()
        .into_iter()
        .filter_map(|r| Some((r.group?, r.resource?, r.verb)))
        .collect()
}

/// Fails if meshctl sent a request the CI Role does not allow.
pub fn assert_rbac_allows(server: &FakeApiServer) {
    let grants = rbac_grants();
    let missing: Vec<_> = used_verbs(server)
        .into_iter()
        .filter(|u| !grants.contains(u))
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/rbac.yaml lacks (group, resource, verb): {missing:?}"
    );
}
