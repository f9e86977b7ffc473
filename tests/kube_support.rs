//! Shared setup for the Kubernetes-target tests: a fake API server on
//! 127.0.0.1 and a kubeconfig pointing at it.

use std::path::PathBuf;

use fake_apiserver::FakeApiServer;
use meshctl::cli::KubeArgs;
use meshctl::target::kube::KubeTarget;
use meshproxy::istio::Resource;

/// Istio's CRD schemas (as `render_schema` finds them), or `None` after saying so.
pub fn crds() -> Option<fake_apiserver::schema::CrdSchemas> {
    let path = std::env::var_os("MESHCTL_ISTIO_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/istio-crds/networking.istio.io.yaml")
        });
    if !path.is_file() {
        assert!(
            std::env::var_os("MESHCTL_REQUIRE_CRDS").is_none_or(|v| v != "1"),
            "MESHCTL_REQUIRE_CRDS=1 but Istio's CRDs are not at {} (set MESHCTL_ISTIO_CRDS)",
            path.display()
        );
        println!(
            "note: Istio's CRDs not found at {}; the fake API server will not validate schemas",
            path.display()
        );
        return None;
    }
    Some(fake_apiserver::schema::CrdSchemas::load(&path).expect("Istio's CRDs load"))
}

/// The namespace the tests work in.
pub const NS: &str = "shop";

/// A fake API server with a kubeconfig (context `fake`, namespace [`NS`]).
pub struct Cluster {
    pub server: std::sync::Arc<FakeApiServer>,
    pub _dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Cluster {
    /// Starts the server, validating Istio objects against Istio's CRDs when
    /// they are available (`MESHCTL_REQUIRE_CRDS=1` makes them mandatory).
    pub async fn start() -> Self {
        let server = FakeApiServer::start().await.expect("fake apiserver starts");
        if let Some(crds) = crds() {
            server.set_crd_schemas(crds);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = server.write_kubeconfig(dir.path(), NS).expect("kubeconfig");
        Self {
            server: std::sync::Arc::new(server),
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

/// A rollout mesh on the Kubernetes target: the fake API server (on its own
/// runtime, so tests can be plain `#[test]`s driving the binary) holding the
/// `discounts` VirtualService and DestinationRule, and the rollout harness's
/// traffic simulator and metrics server following the weights in the
/// cluster (mirrored into the simulator's file every 20 ms).
pub struct KubeMesh {
    pub cluster: Cluster,
    pub mesh: crate::rollout_harness::Mesh,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    mirror: Option<std::thread::JoinHandle<()>>,
    // Dropped last: the fake API server runs on it.
    _rt: tokio::runtime::Runtime,
}

impl KubeMesh {
    pub fn start(behaviour: crate::rollout_harness::Behaviour) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let cluster = rt.block_on(Cluster::start());
        let resources = meshproxy::istio::yaml::parse_resources(crate::rollout_harness::RESOURCES)
            .expect("resources");
        rt.block_on(async {
            use meshctl::target::Target;
            cluster
                .target()
                .await
                .apply(&resources, meshctl::target::ApplyOptions::default())
                .await
                .expect("seeding the cluster")
        });
        let mesh = crate::rollout_harness::Mesh::start(behaviour);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mirror = {
            let stop = stop.clone();
            let server = std::sync::Arc::clone(&cluster.server);
            let file = mesh.path().join("discounts.yaml");
            std::thread::spawn(move || {
                // Bounded: at most 5 minutes.
                for _ in 0..15_000 {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    if let Some(vs) =
                        server.object("networking.istio.io", "virtualservices", NS, "discounts")
                        && let Ok(vs) =
                            serde_json::from_value::<meshproxy::istio::VirtualService>(vs)
                        && let Ok(text) = meshproxy::istio::yaml::print_resources(&[vs.into()])
                    {
                        let tmp = file.with_file_name(".discounts.yaml.tmp");
                        if std::fs::write(&tmp, text).is_ok() {
                            let _ = std::fs::rename(&tmp, &file);
                        }
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            })
        };
        Self {
            cluster,
            mesh,
            stop,
            mirror: Some(mirror),
            _rt: rt,
        }
    }

    /// A meshctl command on the Kubernetes target of the fake cluster.
    pub fn meshctl(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = crate::util::meshctl();
        cmd.arg("--kubeconfig")
            .arg(&self.cluster.kubeconfig)
            .args(args);
        cmd
    }

    /// `meshctl rollout start discounts --to v2` with fast settings.
    pub fn rollout(&self, extra: &[&str]) -> std::process::Command {
        let mut cmd = self.meshctl(&[
            "rollout",
            "start",
            "discounts",
            "--to",
            "v2",
            "--metrics",
            &self.mesh.metrics_url,
        ]);
        cmd.args(extra);
        for (flag, default) in [("--interval", "300ms"), ("--min-requests", "10")] {
            if !extra.contains(&flag) {
                cmd.args([flag, default]);
            }
        }
        cmd
    }

    /// The VirtualService as stored in the cluster.
    pub fn virtual_service(&self) -> meshproxy::istio::VirtualService {
        let raw = self
            .cluster
            .istio("virtualservices", "discounts")
            .expect("the VirtualService");
        serde_json::from_value(raw).expect("a VirtualService")
    }

    /// The rollout state recorded in the cluster.
    pub fn state(&self) -> Option<meshctl::rollout::state::RolloutState> {
        meshctl::rollout::state::RolloutState::read(&self.virtual_service()).ok()
    }

    /// The weights in the cluster.
    pub fn weights(&self) -> std::collections::BTreeMap<String, u8> {
        meshctl::rollout::routes::current_weights(&self.virtual_service())
    }

    /// Waits (bounded, 60 s) until the state satisfies `pred`.
    pub fn wait_for(
        &self,
        what: &str,
        pred: impl Fn(&meshctl::rollout::state::RolloutState) -> bool,
    ) -> meshctl::rollout::state::RolloutState {
        for _ in 0..600 {
            if let Some(s) = self.state()
                && pred(&s)
            {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "timed out after 60s waiting for {what}; state: {:?}",
            self.state()
        );
    }
}

impl Drop for KubeMesh {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.mirror.take() {
            let _ = t.join();
        }
    }
}

/// A fake cluster on its own runtime, for plain `#[test]`s that run the binary.
pub fn blocking_cluster() -> (tokio::runtime::Runtime, Cluster) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let cluster = rt.block_on(Cluster::start());
    (rt, cluster)
}

/// `meshctl --kubeconfig K ARGS...` against a fake cluster.
pub fn meshctl_on(cluster: &Cluster, args: &[&str]) -> std::process::Command {
    let mut cmd = crate::util::meshctl();
    cmd.arg("--kubeconfig").arg(&cluster.kubeconfig).args(args);
    cmd
}
