//! Cluster mode (`meshproxy --kube`) against the fake API server: routes
//! and endpoints come from VirtualServices, DestinationRules, EndpointSlices
//! and Pods, and a weight change arrives by watch and is routed at once.

use std::net::SocketAddr;

use mesh_test_support::{Cluster, NS};
use serde_json::{Value, json};

use crate::util::*;

fn vs(v1: u32, v2: u32) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "svc"},
        "spec": {"hosts": ["svc"], "http": [{"name": "primary", "route": [
            {"destination": {"host": "svc", "subset": "v1"}, "weight": v1},
            {"destination": {"host": "svc", "subset": "v2"}, "weight": v2}
        ]}]}
    })
}

/// The cluster holding service `svc`: one Pod per version behind its own
/// EndpointSlice (each upstream listens on its own port).
async fn cluster(v1: SocketAddr, v2: SocketAddr) -> Cluster {
    let cluster = Cluster::without_crds().await;
    let server = &cluster.server;
    server
        .insert("networking.istio.io", "virtualservices", NS, vs(100, 0))
        .expect("vs");
    server
        .insert(
            "networking.istio.io",
            "destinationrules",
            NS,
            json!({
                "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "metadata": {"name": "svc"},
                "spec": {"host": "svc", "subsets": [
                    {"name": "v1", "labels": {"version": "v1"}},
                    {"name": "v2", "labels": {"version": "v2"}}
                ]}
            }),
        )
        .expect("dr");
    cluster.add_workload("svc", "v1", v1);
    cluster.add_workload("svc", "v2", v2);
    cluster
}

fn kube(kubeconfig: &std::path::Path) -> meshproxy::KubeSource {
    meshproxy::KubeSource {
        namespace: Some(NS.to_owned()),
        kubeconfig: Some(kubeconfig.to_owned()),
    }
}

fn set_weights(cluster: &Cluster, v1: u32, v2: u32) {
    cluster.edit_virtual_service("svc", "meshctl-rollout", |o| {
        o["spec"]["http"][0]["route"][0]["weight"] = json!(v1);
        o["spec"]["http"][0]["route"][1]["weight"] = json!(v2);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weight_change_arrives_by_watch_and_is_routed() {
    let v1 = upstream().body("v1").run().await;
    let v2 = upstream().body("v2").run().await;
    let cluster = cluster(v1.addr, v2.addr).await;
    let server = &cluster.server;
    let unused = tempfile::tempdir().expect("tempdir");
    let p = proxy_with(unused.path(), |s| s.kube = Some(kube(&cluster.kubeconfig))).await;
    let c = client();
    for _ in 0..20 {
        assert_eq!(get(&c, p.listen_addr(), "svc", "/").await.body, "v1");
    }
    let generation = p.live().generation();

    set_weights(&cluster, 0, 100);
    let addr = p.listen_addr();
    eventually("v2 takes the traffic", || {
        let c = c.clone();
        async move { get(&c, addr, "svc", "/").await.body == "v2" }
    })
    .await;
    assert!(p.live().generation() > generation);
    for _ in 0..20 {
        assert_eq!(get(&c, p.listen_addr(), "svc", "/").await.body, "v2");
    }
    // The proxy only reads: list and watch.
    let verbs: std::collections::BTreeSet<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.resource.is_some())
        .map(|r| r.verb)
        .collect();
    assert_eq!(verbs, ["list", "watch"].map(String::from).into());
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_change_in_the_cluster_is_rejected_and_the_old_routes_keep_serving() {
    let v1 = upstream().body("v1").run().await;
    let v2 = upstream().body("v2").run().await;
    let cluster = cluster(v1.addr, v2.addr).await;
    let unused = tempfile::tempdir().expect("tempdir");
    let p = proxy_with(unused.path(), |s| s.kube = Some(kube(&cluster.kubeconfig))).await;
    let admin = p.admin_addr();
    // Weights that do not sum to 100: meshproxy must refuse them.
    set_weights(&cluster, 50, 40);
    eventually("the reload failure is counted", || async move {
        let m = admin_get(admin, "/metrics").await.body;
        metric_value(&m, "meshproxy_config_reload_failures_total", &[]) >= 1.0
    })
    .await;
    let c = client();
    for _ in 0..10 {
        assert_eq!(get(&c, p.listen_addr(), "svc", "/").await.body, "v1");
    }
    p.shutdown().await;
}

#[tokio::test]
async fn start_up_errors_name_the_problem() {
    let cluster = Cluster::without_crds().await;
    let dir = tempfile::tempdir().expect("tempdir");
    cluster.server.set_istio_installed(false);
    let mut s = meshproxy::Settings::local(dir.path());
    s.kube = Some(kube(&cluster.kubeconfig));
    let e = meshproxy::start(s.clone()).await.expect_err("no CRDs");
    assert!(
        e.to_string()
            .starts_with("--kube: the Istio CRDs are not installed"),
        "{e}"
    );

    let closed = cluster.unreachable();
    let e = meshproxy::start(s).await.expect_err("unreachable");
    assert!(
        e.to_string().contains(&format!(
            "cannot reach the Kubernetes API server at http://{closed}"
        )),
        "{e}"
    );
}
