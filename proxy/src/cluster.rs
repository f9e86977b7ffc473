//! Cluster mode (`meshproxy --kube`): the same inputs the directory source
//! reads (Istio resources plus endpoints with labels), watched in a
//! Kubernetes namespace instead of a directory.
//!
//! Four kube-runtime reflectors keep VirtualServices, DestinationRules,
//! EndpointSlices and Pods; after every change a [`Snapshot`] is rebuilt from
//! the stores and handed on, where it is validated and swapped in atomically
//! exactly like a directory reload. Endpoints come from EndpointSlices
//! (`kubernetes.io/service-name` label, ready addresses, the first port); an
//! endpoint's labels are its Pod's (through `targetRef`), which is what
//! DestinationRule subsets select, as in Istio.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::core::{ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

use crate::KubeSource;
use crate::endpoints::{EndpointsFile, ServiceEndpoints};
use crate::istio::{ApiVersion, GROUP, Resource};
use crate::routes::{ConfigFile, ConfigSnapshot};
use crate::source::Live;

/// How long start-up waits for the first complete read of the namespace.
pub const FIRST_SYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Why cluster mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No usable Kubernetes configuration.
    #[error("{0}")]
    Config(String),
    /// The API server did not answer usefully.
    #[error("{0}")]
    Api(String),
    /// The first configuration read from the cluster is invalid.
    #[error("the resources in namespace {namespace:?} are invalid: {problems}")]
    Invalid {
        /// Namespace.
        namespace: String,
        /// What is wrong.
        problems: String,
    },
}

/// The label on an EndpointSlice naming its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// One ready endpoint of a service, with its Pod's labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `podIP:port`.
    pub address: SocketAddr,
    /// The Pod's labels (`version: v2`), which subsets select.
    pub labels: BTreeMap<String, String>,
}

/// Everything the route table is built from, as read from the cluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// VirtualServices and DestinationRules that parse as Istio resources.
    pub resources: Vec<Resource>,
    /// Endpoints by service short name.
    pub endpoints: BTreeMap<String, Vec<Endpoint>>,
    /// The service port (name, `appProtocol`) by service short name, from
    /// the EndpointSlice's first port (the controller copies both from the
    /// Service), which decides the upstream protocol as in Istio.
    pub ports: BTreeMap<String, crate::endpoints::ServicePort>,
    /// Objects left out, with the reason (for a log line each).
    pub skipped: Vec<String>,
}

fn istio_resource(version: ApiVersion, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: GROUP.to_owned(),
        version: version.version().to_owned(),
        api_version: version.as_str().to_owned(),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
    }
}

/// Parses stored Istio objects into resources, skipping (and naming) the ones
/// meshproxy's model cannot read.
fn parse_istio(kind: &str, objects: &[Arc<DynamicObject>], out: &mut Snapshot) {
    for obj in objects {
        let name = obj.metadata.name.clone().unwrap_or_default();
        let mut value = match serde_json::to_value(obj.as_ref()) {
            Ok(v) => v,
            Err(e) => {
                out.skipped.push(format!("{kind} {name:?}: {e}"));
                continue;
            }
        };
        value["kind"] = serde_json::Value::String(kind.to_owned());
        match serde_json::from_value::<Resource>(value) {
            Ok(r) => out.resources.push(r),
            Err(e) => out.skipped.push(format!("{kind} {name:?}: {e}")),
        }
    }
}

/// Builds a snapshot from the stores' contents (pure; the watch loop calls it).
pub fn snapshot(
    virtual_services: &[Arc<DynamicObject>],
    destination_rules: &[Arc<DynamicObject>],
    slices: &[Arc<EndpointSlice>],
    pods: &[Arc<Pod>],
) -> Snapshot {
    let mut out = Snapshot::default();
    parse_istio("VirtualService", virtual_services, &mut out);
    parse_istio("DestinationRule", destination_rules, &mut out);
    out.resources
        .sort_by(|a, b| (a.kind(), &a.metadata().name).cmp(&(b.kind(), &b.metadata().name)));
    let pod_labels: BTreeMap<(&str, &str), &BTreeMap<String, String>> = pods
        .iter()
        .filter_map(|p| {
            Some((
                (
                    p.metadata.namespace.as_deref().unwrap_or_default(),
                    p.metadata.name.as_deref()?,
                ),
                p.metadata.labels.as_ref()?,
            ))
        })
        .collect();
    for slice in slices {
        let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        let first_port = slice.ports.as_ref().and_then(|ps| ps.first());
        if let Some(p) = first_port
            && (p.name.as_deref().is_some_and(|n| !n.is_empty()) || p.app_protocol.is_some())
        {
            out.ports.insert(
                service.clone(),
                crate::endpoints::ServicePort {
                    name: p.name.clone().filter(|n| !n.is_empty()),
                    app_protocol: p.app_protocol.clone(),
                },
            );
        }
        let Some(port) = first_port
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            out.skipped
                .push(format!("EndpointSlice for {service:?}: no port"));
            continue;
        };
        let namespace = slice.metadata.namespace.as_deref().unwrap_or_default();
        let entry = out.endpoints.entry(service.clone()).or_default();
        for ep in slice.endpoints.iter().flatten() {
            let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if !ready {
                continue;
            }
            let labels = ep
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| {
                    let ns = r.namespace.as_deref().unwrap_or(namespace);
                    pod_labels.get(&(ns, r.name.as_deref()?))
                })
                .map(|l| (*l).clone())
                .unwrap_or_default();
            for address in &ep.addresses {
                match address.parse::<IpAddr>() {
                    Ok(ip) => entry.push(Endpoint {
                        address: SocketAddr::new(ip, port),
                        labels: labels.clone(),
                    }),
                    Err(_) => out.skipped.push(format!(
                        "EndpointSlice for {service:?}: address {address:?} is not an IP"
                    )),
                }
            }
        }
        entry.sort_by_key(|e| e.address);
    }
    out
}

/// The proxy's configuration from a snapshot, validated as a directory's
/// would be; `Err` lists the problems (the live table is then kept).
pub fn to_config(snapshot: &Snapshot, source: &str) -> Result<ConfigSnapshot, String> {
    if let Err(e) = crate::istio::validate::validate(&snapshot.resources) {
        return Err(e
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "));
    }
    let files = snapshot
        .resources
        .iter()
        .map(|r| ConfigFile {
            name: format!("{source}/{}/{}", r.kind(), r.metadata().name),
            resources: vec![r.clone()],
        })
        .collect();
    let services = snapshot
        .endpoints
        .iter()
        .map(|(service, eps)| {
            (
                service.clone(),
                ServiceEndpoints {
                    port: snapshot.ports.get(service).cloned(),
                    endpoints: eps
                        .iter()
                        .map(|e| crate::endpoints::Endpoint {
                            address: e.address.to_string(),
                            labels: e.labels.clone(),
                        })
                        .collect(),
                },
            )
        })
        .collect();
    let endpoints = EndpointsFile { services };
    endpoints
        .validate()
        .map_err(|e| format!("EndpointSlice {e}"))?;
    Ok(ConfigSnapshot {
        generation: 0,
        source: source.to_owned(),
        files,
        endpoints,
    })
}

/// Connects (kubeconfig inference, `kube.kubeconfig` / `kube.namespace`
/// override), discovers the Istio version, loads the first complete
/// snapshot into `live` (failing when it is invalid, as a bad directory
/// does), then follows the namespace in a background task until `shutdown`.
/// Later invalid snapshots are logged and leave the live table serving.
pub async fn start(
    live: std::sync::Arc<Live>,
    settings: &KubeSource,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<u64, ClusterError> {
    let options = kube::config::KubeConfigOptions::default();
    let config = match &settings.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                ClusterError::Config(format!("--kubeconfig {}: {e}", path.display()))
            })?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| {
                    ClusterError::Config(format!("--kubeconfig {}: {e}", path.display()))
                })?
        }
        None => kube::Config::infer().await.map_err(|e| {
            ClusterError::Config(format!(
                "no Kubernetes configuration ({e}); set KUBECONFIG or --kubeconfig"
            ))
        })?,
    };
    let namespace = settings
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config)
        .map_err(|e| ClusterError::Config(format!("building a client for {server}: {e}")))?;
    let version = discover(&client, &server).await?;
    let source = format!("kube:{namespace}");
    let mut snapshots = Box::pin(watch(client, &namespace, version));
    let first = tokio::time::timeout(FIRST_SYNC_TIMEOUT, snapshots.next())
        .await
        .map_err(|_| {
            ClusterError::Api(format!(
                "no complete read of namespace {namespace:?} from {server} within {FIRST_SYNC_TIMEOUT:?}; check that the account may list and watch virtualservices, destinationrules, endpointslices and pods there"
            ))
        })?
        .ok_or_else(|| ClusterError::Api("the watch ended before the first read".into()))?;
    for s in &first.skipped {
        tracing::warn!(namespace, "ignoring {s}");
    }
    let snapshot = to_config(&first, &source).map_err(|problems| ClusterError::Invalid {
        namespace: namespace.clone(),
        problems,
    })?;
    let generation = live.apply(snapshot).map_err(|e| ClusterError::Invalid {
        namespace: namespace.clone(),
        problems: e.to_string(),
    })?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                next = snapshots.next() => {
                    let Some(snap) = next else { return };
                    for s in &snap.skipped {
                        tracing::warn!(namespace, "ignoring {s}");
                    }
                    match to_config(&snap, &source).map(|c| live.apply(c)) {
                        Ok(Ok(generation)) => tracing::info!(namespace, generation, "configuration reloaded from the cluster"),
                        Ok(Err(e)) => tracing::error!(namespace, "rejected the cluster's new configuration, keeping the current one: {e}"),
                        Err(problems) => {
                            live.reject();
                            tracing::error!(namespace, "rejected the cluster's new configuration, keeping the current one: {problems}");
                        }
                    }
                }
                r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { return },
            }
        }
    });
    Ok(generation)
}

/// `networking.istio.io/v1` when served, else `v1beta1`.
async fn discover(client: &Client, server: &str) -> Result<ApiVersion, ClusterError> {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroup;
    let req = http::Request::get(format!("/apis/{GROUP}"))
        .body(Vec::new())
        .map_err(|e| ClusterError::Api(e.to_string()))?;
    let group: APIGroup = client.request(req).await.map_err(|e| match &e {
        kube::Error::Api(s) if s.code == 404 => ClusterError::Api(format!(
            "the Istio CRDs are not installed: {server} does not serve {GROUP}; install them (`istioctl install` or the istio/base Helm chart)"
        )),
        kube::Error::Api(s) => ClusterError::Api(format!("{server}: {}", s.message)),
        other => ClusterError::Api(format!("cannot reach the Kubernetes API server at {server}: {other}")),
    })?;
    let served: Vec<&str> = group.versions.iter().map(|v| v.version.as_str()).collect();
    if served.contains(&"v1") {
        Ok(ApiVersion::V1)
    } else if served.contains(&"v1beta1") {
        Ok(ApiVersion::V1beta1)
    } else {
        Err(ClusterError::Api(format!(
            "{server} serves {GROUP} versions {} but meshproxy needs v1 or v1beta1; upgrade Istio's CRDs",
            served.join(", ")
        )))
    }
}

/// Watches `namespace` and yields a fresh [`Snapshot`] after every change
/// (the first once all four lists have been read). Watch errors are logged
/// and retried with kube-runtime's default backoff; the stream does not end.
pub fn watch(
    client: Client,
    namespace: &str,
    istio: ApiVersion,
) -> impl Stream<Item = Snapshot> + Send + use<> {
    let vs_ar = istio_resource(istio, "VirtualService", "virtualservices");
    let dr_ar = istio_resource(istio, "DestinationRule", "destinationrules");
    let vs_writer = reflector::store::Writer::<DynamicObject>::new(vs_ar.clone());
    let dr_writer = reflector::store::Writer::<DynamicObject>::new(dr_ar.clone());
    let vs_store = vs_writer.as_reader();
    let dr_store = dr_writer.as_reader();
    let (slice_store, slice_writer) = reflector::store::<EndpointSlice>();
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let config = watcher::Config::default();
    let ns = namespace.to_owned();

    let vs_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &vs_ar);
    let dr_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &dr_ar);
    let slice_api: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let pod_api: Api<Pod> = Api::namespaced(client, namespace);

    /// `true` for events after which the store shows a new state.
    fn tag<S, T>(what: &'static str, ns: String, s: S) -> impl Stream<Item = bool> + Send
    where
        S: Stream<Item = Result<watcher::Event<T>, watcher::Error>> + Send,
    {
        s.map(move |ev| match ev {
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => false,
            Ok(_) => true,
            Err(e) => {
                tracing::warn!("watching {what} in namespace {ns:?}: {e} (retrying)");
                false
            }
        })
    }

    let events = futures_util::stream::select_all([
        tag(
            "virtualservices.networking.istio.io",
            ns.clone(),
            reflector::reflector(vs_writer, watcher(vs_api, config.clone()).default_backoff()),
        )
        .boxed(),
        tag(
            "destinationrules.networking.istio.io",
            ns.clone(),
            reflector::reflector(dr_writer, watcher(dr_api, config.clone()).default_backoff()),
        )
        .boxed(),
        tag(
            "endpointslices.discovery.k8s.io",
            ns.clone(),
            reflector::reflector(
                slice_writer,
                watcher(slice_api, config.clone()).default_backoff(),
            ),
        )
        .boxed(),
        tag(
            "pods",
            ns,
            reflector::reflector(pod_writer, watcher(pod_api, config).default_backoff()),
        )
        .boxed(),
    ]);
    let stores = Stores {
        vs: vs_store,
        dr: dr_store,
        slices: slice_store,
        pods: pod_store,
    };
    events.filter_map(move |changed| {
        let stores = stores.clone();
        async move { (changed && stores.ready()).then(|| stores.snapshot()) }
    })
}

#[derive(Clone)]
struct Stores {
    vs: Store<DynamicObject>,
    dr: Store<DynamicObject>,
    slices: Store<EndpointSlice>,
    pods: Store<Pod>,
}

// === impl Stores ===

impl Stores {
    fn ready(&self) -> bool {
        futures_util::FutureExt::now_or_never(async {
            self.vs.wait_until_ready().await.is_ok()
                && self.dr.wait_until_ready().await.is_ok()
                && self.slices.wait_until_ready().await.is_ok()
                && self.pods.wait_until_ready().await.is_ok()
        })
        .unwrap_or(false)
    }

    fn snapshot(&self) -> Snapshot {
        snapshot(
            &self.vs.state(),
            &self.dr.state(),
            &self.slices.state(),
            &self.pods.state(),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fake_apiserver::FakeApiServer;
    use serde_json::json;

    use super::*;

    const NS: &str = "shop";

    fn vs(weight_v2: u32) -> serde_json::Value {
        json!({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "discounts"},
            "spec": {"hosts": ["discounts"], "http": [{"route": [
                {"destination": {"host": "discounts", "subset": "v1"}, "weight": 100 - weight_v2},
                {"destination": {"host": "discounts", "subset": "v2"}, "weight": weight_v2}
            ]}]}
        })
    }

    fn seed(server: &FakeApiServer) {
        server
            .insert("networking.istio.io", "virtualservices", NS, vs(0))
            .expect("vs");
        server
            .insert(
                "networking.istio.io",
                "destinationrules",
                NS,
                json!({
                    "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                    "metadata": {"name": "discounts"},
                    "spec": {"host": "discounts", "subsets": [
                        {"name": "v1", "labels": {"version": "v1"}},
                        {"name": "v2", "labels": {"version": "v2"}}
                    ]}
                }),
            )
            .expect("dr");
        for (pod, version, ip) in [
            ("discounts-a", "v1", "10.0.0.1"),
            ("discounts-b", "v2", "10.0.0.2"),
        ] {
            server
                .insert(
                    "",
                    "pods",
                    NS,
                    json!({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": pod, "labels": {"app": "discounts", "version": version}},
                        "status": {"podIP": ip}}),
                )
                .expect("pod");
        }
        server
            .insert(
                "discovery.k8s.io",
                "endpointslices",
                NS,
                json!({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": "discounts-abcde", "labels": {"kubernetes.io/service-name": "discounts"}},
                    "addressType": "IPv4",
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                    "endpoints": [
                        {"addresses": ["10.0.0.1"], "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "discounts-a", "namespace": NS}},
                        {"addresses": ["10.0.0.2"], "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "discounts-b", "namespace": NS}},
                        {"addresses": ["10.0.0.3"], "conditions": {"ready": false}}
                    ]
                }),
            )
            .expect("slice");
    }

    #[test]
    fn the_slice_port_declares_the_protocol() {
        let slice = |port: serde_json::Value| {
            let s: EndpointSlice = serde_json::from_value(json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "greeter-x", "namespace": NS, "labels": {"kubernetes.io/service-name": "greeter"}},
                "addressType": "IPv4",
                "ports": [port],
                "endpoints": [{"addresses": ["10.0.0.9"], "conditions": {"ready": true}}]
            }))
            .expect("slice");
            snapshot(&[], &[], &[Arc::new(s)], &[])
        };
        let named = slice(json!({"name": "grpc-api", "port": 50051}));
        let config = to_config(&named, "cluster").expect("valid");
        assert_eq!(
            config.endpoints.protocol("greeter"),
            crate::endpoints::PortProtocol::Grpc
        );
        let app = slice(json!({"name": "web", "port": 8080, "appProtocol": "kubernetes.io/h2c"}));
        assert_eq!(
            to_config(&app, "cluster")
                .expect("valid")
                .endpoints
                .protocol("greeter"),
            crate::endpoints::PortProtocol::Http2
        );
        let bad = slice(json!({"port": 8080, "appProtocol": "h3"}));
        let err = to_config(&bad, "cluster").unwrap_err();
        assert!(err.contains("services.greeter.port.appProtocol"), "{err}");
    }

    async fn client(server: &FakeApiServer) -> Client {
        let kubeconfig =
            kube::config::Kubeconfig::from_yaml(&server.kubeconfig(NS)).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("config");
        Client::try_from(config).expect("client")
    }

    fn weight_v2(s: &Snapshot) -> Option<u32> {
        s.resources.iter().find_map(|r| match r {
            Resource::VirtualService(vs) => vs.spec.http[0].route[1].weight,
            _ => None,
        })
    }

    #[tokio::test]
    async fn snapshots_follow_the_cluster() {
        let server = FakeApiServer::start().await.expect("fake apiserver");
        seed(&server);
        let mut snapshots = Box::pin(watch(client(&server).await, NS, ApiVersion::V1));
        let next = async |s: &mut std::pin::Pin<Box<_>>| -> Snapshot {
            tokio::time::timeout(Duration::from_secs(20), StreamExt::next(s))
                .await
                .expect("snapshot within 20s")
                .expect("stream open")
        };
        let first = next(&mut snapshots).await;
        assert_eq!(first.resources.len(), 2, "{first:?}");
        assert_eq!(weight_v2(&first), Some(0));
        let endpoints = &first.endpoints["discounts"];
        assert_eq!(
            endpoints,
            &vec![
                Endpoint {
                    address: "10.0.0.1:8080".parse().expect("addr"),
                    labels: [
                        ("app".into(), "discounts".into()),
                        ("version".into(), "v1".into())
                    ]
                    .into(),
                },
                Endpoint {
                    address: "10.0.0.2:8080".parse().expect("addr"),
                    labels: [
                        ("app".into(), "discounts".into()),
                        ("version".into(), "v2".into())
                    ]
                    .into(),
                },
            ],
            "the unready endpoint is left out"
        );

        server
            .edit(
                "networking.istio.io",
                "virtualservices",
                NS,
                "discounts",
                "meshctl-rollout",
                |v| {
                    v["spec"]["http"][0]["route"][0]["weight"] = json!(75);
                    v["spec"]["http"][0]["route"][1]["weight"] = json!(25);
                },
            )
            .expect("edit");
        let mut latest = next(&mut snapshots).await;
        while weight_v2(&latest) != Some(25) {
            latest = next(&mut snapshots).await;
        }
        assert_eq!(latest.endpoints, first.endpoints);
    }

    #[test]
    fn unreadable_objects_are_skipped_and_named() {
        let bad: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "broken"}, "spec": {"http": "not a list"}
        }))
        .expect("dynamic object");
        let s = snapshot(&[Arc::new(bad)], &[], &[], &[]);
        assert!(s.resources.is_empty());
        assert_eq!(s.skipped.len(), 1);
        assert!(
            s.skipped[0].starts_with("VirtualService \"broken\": "),
            "{:?}",
            s.skipped
        );
    }
}
