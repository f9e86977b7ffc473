//! meshproxy in cluster mode follows what `meshctl apply` writes to the
//! cluster: the real `meshctl` binary changes the weights on the fake API
//! server, meshproxy (in process, `--kube`) gets the change by watch and
//! routes to the other version.

use std::net::SocketAddr;

use mesh_test_support::upstream::{client, get};
use mesh_test_support::{Cluster, NS, eventually, upstream};

use crate::util::meshctl;

/// `GET /` with `Host: discounts` through the proxy; the response body.
async fn body(proxy: SocketAddr) -> String {
    let reply = get(&client(), proxy, "discounts", "/").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

/// Runs meshctl against the cluster off the async runtime; it must succeed.
async fn meshctl_on(cluster: &Cluster, args: &[&str]) {
    let mut cmd = meshctl();
    cmd.kubeconfig(&cluster.kubeconfig).args(args);
    tokio::task::spawn_blocking(move || cmd.run_ok())
        .await
        .expect("join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meshproxy_in_cluster_mode_routes_by_the_weights_meshctl_applies() {
    let cluster = Cluster::start().await;
    let apply = ["apply", "discounts", "--versions", "v1,v2"];
    meshctl_on(&cluster, &apply).await;
    for version in ["v1", "v2"] {
        let up = upstream().body(&format!("from {version}")).run().await;
        cluster.add_workload("discounts", version, up.addr);
    }
    let unused = tempfile::tempdir().expect("tempdir");
    let mut settings = meshproxy::Settings::local(unused.path());
    settings.kube = Some(meshproxy::KubeSource {
        namespace: Some(NS.to_owned()),
        kubeconfig: Some(cluster.kubeconfig.clone()),
    });
    settings.workers = Some(1);
    let proxy = meshproxy::start(settings)
        .await
        .expect("meshproxy --kube starts");
    for _ in 0..10 {
        assert_eq!(body(proxy.listen_addr()).await, "from v1");
    }

    meshctl_on(
        &cluster,
        &[&apply[..], &["--weight", "v1=0", "--weight", "v2=100"]].concat(),
    )
    .await;
    eventually("meshproxy follows the new weights", || async {
        body(proxy.listen_addr()).await == "from v2"
    })
    .await;
    for _ in 0..10 {
        assert_eq!(body(proxy.listen_addr()).await, "from v2");
    }
    proxy.shutdown().await;
}
