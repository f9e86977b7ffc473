//! meshproxy in cluster mode follows what `meshctl apply` writes to the
//! cluster: the real `meshctl` binary changes the weights on the fake API
//! server, meshproxy (in process, `--kube`) gets the change by watch and
//! routes to the other version.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::kube_support::{Cluster, NS};

/// An upstream answering every request with `body` (one request per connection).
async fn upstream(body: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    addr
}

/// `GET /` with `Host: discounts` through the proxy; the response body.
async fn get(proxy: SocketAddr) -> String {
    let exchange = async {
        let mut conn = tokio::net::TcpStream::connect(proxy)
            .await
            .expect("connect");
        conn.write_all(b"GET / HTTP/1.1\r\nhost: discounts\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut text = String::new();
        conn.read_to_string(&mut text).await.expect("read");
        text
    };
    let text = tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .expect("response within 20s");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()
}

async fn meshctl(cluster: &Cluster, args: &[&str]) {
    let mut cmd = crate::kube_support::meshctl_on(cluster, args);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("meshctl runs"))
        .await
        .expect("join");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meshproxy_in_cluster_mode_routes_by_the_weights_meshctl_applies() {
    let cluster = Cluster::start().await;
    let apply = ["apply", "discounts", "--versions", "v1,v2"];
    meshctl(&cluster, &apply).await;
    for (version, body) in [("v1", "from v1"), ("v2", "from v2")] {
        let addr = upstream(body).await;
        let pod = format!("discounts-{version}");
        cluster
            .server
            .insert(
                "",
                "pods",
                NS,
                json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": pod, "labels": {"app": "discounts", "version": version}}}),
            )
            .expect("pod");
        cluster
            .server
            .insert(
                "discovery.k8s.io",
                "endpointslices",
                NS,
                json!({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": pod, "labels": {"kubernetes.io/service-name": "discounts"}},
                    "addressType": "IPv4",
                    "ports": [{"port": addr.port()}],
                    "endpoints": [{"addresses": ["127.0.0.1"], "targetRef": {"kind": "Pod", "name": pod, "namespace": NS}}]
                }),
            )
            .expect("slice");
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
        assert_eq!(get(proxy.listen_addr()).await, "from v1");
    }

    meshctl(
        &cluster,
        &[&apply[..], &["--weight", "v1=0", "--weight", "v2=100"]].concat(),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while get(proxy.listen_addr()).await != "from v2" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "meshproxy did not follow the new weights within 20s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..10 {
        assert_eq!(get(proxy.listen_addr()).await, "from v2");
    }
    proxy.shutdown().await;
}
