//! The fake cluster: the fake Kubernetes API server on 127.0.0.1 with a
//! kubeconfig pointing at it, validating Istio objects against Istio's CRDs
//! when they are available, and workloads (a Pod and an EndpointSlice per
//! version) behind a service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use fake_apiserver::FakeApiServer;
use fake_apiserver::schema::CrdSchemas;
use serde_json::json;

/// The namespace the tests work in.
pub const NS: &str = "shop";

/// Istio's CRD schemas when they are available (see [`CrdSchemas::istio`]).
#[must_use]
pub fn crds() -> Option<CrdSchemas> {
    CrdSchemas::istio()
}

/// A fake API server with a kubeconfig (namespace [`NS`]).
pub struct Cluster {
    /// The server.
    pub server: Arc<FakeApiServer>,
    /// The kubeconfig file pointing at it.
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

// === impl Cluster ===

impl Cluster {
    /// Starts the server, validating Istio objects against Istio's CRDs when
    /// they are available (`MESHCTL_REQUIRE_CRDS=1` makes them mandatory).
    ///
    /// # Panics
    /// When the server or the kubeconfig cannot be set up.
    pub async fn start() -> Self {
        let cluster = Self::without_crds().await;
        if let Some(crds) = crds() {
            cluster.server.set_crd_schemas(crds);
        }
        cluster
    }

    /// Starts the server without Istio's schemas (it accepts any Istio object).
    ///
    /// # Panics
    /// When the server or the kubeconfig cannot be set up.
    pub async fn without_crds() -> Self {
        let server = FakeApiServer::start().await.expect("fake apiserver starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = server.write_kubeconfig(dir.path(), NS).expect("kubeconfig");
        Self {
            server: Arc::new(server),
            kubeconfig,
            _dir: dir,
        }
    }

    /// Points the kubeconfig at an address on 127.0.0.1 nothing listens on;
    /// that address.
    ///
    /// # Panics
    /// When the kubeconfig cannot be rewritten.
    #[must_use]
    pub fn unreachable(&self) -> SocketAddr {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = closed.local_addr().expect("addr");
        drop(closed);
        let text = self
            .server
            .kubeconfig(NS)
            .replace(&self.server.url(), &format!("http://{addr}"));
        std::fs::write(&self.kubeconfig, text).expect("writing the kubeconfig");
        addr
    }

    /// An Istio object as stored.
    #[must_use]
    pub fn istio(&self, plural: &str, name: &str) -> Option<serde_json::Value> {
        self.istio_in(NS, plural, name)
    }

    /// An Istio object as stored in `namespace`.
    #[must_use]
    pub fn istio_in(&self, namespace: &str, plural: &str, name: &str) -> Option<serde_json::Value> {
        self.server
            .object("networking.istio.io", plural, namespace, name)
    }

    /// An Istio object as stored, which must exist.
    ///
    /// # Panics
    /// When it does not.
    #[must_use]
    pub fn istio_object(&self, plural: &str, name: &str) -> serde_json::Value {
        self.istio(plural, name)
            .unwrap_or_else(|| panic!("{plural}/{name} in the cluster"))
    }

    /// Edits the `discounts`-style VirtualService `name` as field manager
    /// `manager` would (a `kubectl edit`, say).
    ///
    /// # Panics
    /// When the object does not exist or the server refuses the edit.
    pub fn edit_virtual_service(
        &self,
        name: &str,
        manager: &str,
        edit: impl FnOnce(&mut serde_json::Value),
    ) {
        self.server
            .edit(
                "networking.istio.io",
                "virtualservices",
                NS,
                name,
                manager,
                edit,
            )
            .expect("edit");
    }

    /// The `reason`s of the Events recorded in [`NS`].
    #[must_use]
    pub fn event_reasons(&self) -> Vec<String> {
        self.server
            .objects("events.k8s.io", "events", NS)
            .iter()
            .map(|e| e["reason"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The statuses of the requests with `verb` on `resource`, in order.
    #[must_use]
    pub fn statuses(&self, resource: &str, verb: &str) -> Vec<u16> {
        self.server
            .requests()
            .iter()
            .filter(|r| r.resource.as_deref() == Some(resource) && r.verb == verb)
            .map(|r| r.status)
            .collect()
    }

    /// A workload of `service` at `version` listening on `addr`: a Pod
    /// `SERVICE-VERSION` (labels `app`, `version`, its IP) and an
    /// EndpointSlice of the same name pointing at it, port `http`.
    ///
    /// # Panics
    /// When the server refuses either object.
    pub fn add_workload(&self, service: &str, version: &str, addr: SocketAddr) {
        let port = json!({"name": "http", "port": addr.port(), "protocol": "TCP"});
        self.add_workload_on(service, version, addr, port);
    }

    /// A gRPC workload: as [`Cluster::add_workload`], with the slice's port
    /// named `grpc` and `appProtocol: grpc` (what meshproxy `--kube` reads
    /// the upstream protocol from).
    ///
    /// # Panics
    /// When the server refuses either object.
    pub fn add_grpc_workload(&self, service: &str, version: &str, addr: SocketAddr) {
        let port = json!({"name": "grpc", "port": addr.port(), "appProtocol": "grpc"});
        self.add_workload_on(service, version, addr, port);
    }

    /// A workload whose EndpointSlice declares `port` (a slice port object).
    fn add_workload_on(
        &self,
        service: &str,
        version: &str,
        addr: SocketAddr,
        port: serde_json::Value,
    ) {
        let pod = format!("{service}-{version}");
        self.server
            .insert(
                "",
                "pods",
                NS,
                json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": pod, "labels": {"app": service, "version": version}},
                    "status": {"podIP": addr.ip().to_string()}}),
            )
            .expect("pod");
        self.server
            .insert(
                "discovery.k8s.io",
                "endpointslices",
                NS,
                json!({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": pod, "labels": {"kubernetes.io/service-name": service}},
                    "addressType": "IPv4",
                    "ports": [port],
                    "endpoints": [{"addresses": [addr.ip().to_string()], "conditions": {"ready": true},
                                   "targetRef": {"kind": "Pod", "name": pod, "namespace": NS}}]
                }),
            )
            .expect("endpoint slice");
    }
}

/// A fake cluster on its own runtime, for plain `#[test]`s that run the
/// binary; keep the runtime alive as long as the cluster.
///
/// # Panics
/// When the runtime cannot be built.
#[must_use]
pub fn blocking_cluster() -> (tokio::runtime::Runtime, Cluster) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let cluster = rt.block_on(Cluster::start());
    (rt, cluster)
}
