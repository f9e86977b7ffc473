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
