//! `--analysis sequential` (the default, issue 14) end to end: the real
//! `meshctl` binary rolls out through a real meshproxy (in process) to
//! upstreams on 127.0.0.1:0, judged on meshproxy's own `/metrics`, on the
//! local directory target and on the fake API server (`meshproxy --kube`
//! following the VirtualService meshctl writes). A healthy canary promotes
//! with its error-rate bound in the reason; a canary failing 5% of its
//! requests and a slow one are rolled back at the first rejection, with the
//! evidence as the reason and in `status`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mesh_test_support::fixture::{DISCOUNTS, discounts_endpoints};
use mesh_test_support::meshctl::Meshctl;
use meshctl::rollout::state::{Phase, RolloutState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::kube_support::{Cluster, NS};
use crate::rollout_proxy::Load;

/// How the new version answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Canary {
    /// 200 at once.
    Healthy,
    /// 500 to every 20th request (5%).
    FivePercentErrors,
    /// 200 after 150 ms.
    Slow,
}

/// An upstream on 127.0.0.1:0 answering as `canary` says (v1: healthy).
async fn upstream(canary: Canary) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let served = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let served = served.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 2048];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf)).await {
                        Ok(Ok(0) | Err(_)) | Err(_) => return,
                        Ok(Ok(n)) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let n = served.fetch_add(1, Ordering::SeqCst) + 1;
                let status = match canary {
                    Canary::FivePercentErrors if n.is_multiple_of(20) => {
                        "500 Internal Server Error"
                    }
                    Canary::Slow => {
                        tokio::time::sleep(Duration::from_millis(150)).await;
                        "200 OK"
                    }
                    _ => "200 OK",
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    addr
}

/// Where the service lives.
#[derive(Clone, Copy, Debug)]
enum Backend {
    Local,
    Kube,
}

/// meshproxy, the upstreams, and the target (a directory, or a fake cluster).
struct Mesh {
    dir: tempfile::TempDir,
    proxy: SocketAddr,
    metrics_url: String,
    cluster: Option<Cluster>,
    handle: Option<meshproxy::Handle>,
    rt: tokio::runtime::Runtime,
}

impl Mesh {
    fn start(backend: Backend, canary: Canary) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let (a1, a2) =
            rt.block_on(async { (upstream(Canary::Healthy).await, upstream(canary).await) });
        let mut settings = meshproxy::Settings::local(dir.path());
        settings.workers = Some(1);
        let cluster = match backend {
            Backend::Local => {
                std::fs::write(dir.path().join("discounts.yaml"), DISCOUNTS).expect("resources");
                std::fs::write(
                    dir.path().join("endpoints.yaml"),
                    discounts_endpoints(&[("v1", a1), ("v2", a2)]),
                )
                .expect("endpoints");
                None
            }
            Backend::Kube => {
                let cluster = rt.block_on(Cluster::start());
                cluster.add_workload("discounts", "v1", a1);
                cluster.add_workload("discounts", "v2", a2);
                let mut apply = crate::util::meshctl();
                apply.kubeconfig(&cluster.kubeconfig);
                apply
                    .args(["apply", "discounts", "--versions", "v1,v2"])
                    .run_ok();
                settings.kube = Some(meshproxy::KubeSource {
                    namespace: Some(NS.to_owned()),
                    kubeconfig: Some(cluster.kubeconfig.clone()),
                });
                Some(cluster)
            }
        };
        let handle = rt
            .block_on(meshproxy::start(settings))
            .expect("meshproxy starts");
        let proxy = handle.listen_addr();
        let metrics_url = format!("http://{}/metrics", handle.admin_addr());
        Self {
            dir,
            proxy,
            metrics_url,
            cluster,
            handle: Some(handle),
            rt,
        }
    }

    fn meshctl(&self, args: &[&str]) -> Meshctl {
        let mut cmd = crate::util::meshctl();
        match &self.cluster {
            Some(c) => cmd.kubeconfig(&c.kubeconfig),
            None => cmd.local(self.dir.path()),
        };
        cmd.args(args);
        cmd
    }

    /// Waits (bounded: 20 s) until meshproxy's metrics count requests to
    /// the service, so the first window's scrape finds them (in cluster mode
    /// meshproxy first syncs from the API server).
    fn wait_for_traffic(&self) {
        let admin = self
            .metrics_url
            .trim_start_matches("http://")
            .trim_end_matches("/metrics")
            .to_owned();
        for _ in 0..200 {
            let mut text = String::new();
            if let Ok(mut conn) = std::net::TcpStream::connect(&admin) {
                use std::io::{Read, Write};
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = write!(
                    conn,
                    "GET /metrics HTTP/1.1\r\nhost: {admin}\r\nconnection: close\r\n\r\n"
                );
                let _ = conn.read_to_string(&mut text);
            }
            if text.contains("istio_requests_total{") && text.contains("discounts") {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no requests to discounts in meshproxy's metrics within 20 s");
    }

    /// `rollout start` with the default analysis, 2 s steps of 20, 50, 100%.
    fn rollout(&self, extra: &[&str]) -> (i32, String, String) {
        self.wait_for_traffic();
        let mut cmd = self.meshctl(&[
            "rollout",
            "start",
            "discounts",
            "--to",
            "v2",
            "--steps",
            "20,50,100",
            "--interval",
            "2s",
            "--min-requests",
            "10",
            "--metrics",
            &self.metrics_url,
        ]);
        cmd.args(extra);
        cmd.run()
    }

    fn state(&self) -> RolloutState {
        let (code, out, err) = self
            .meshctl(&["rollout", "status", "discounts", "-o", "json"])
            .run();
        assert!(code == 0 || code == 3, "status: {out}{err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect("status JSON");
        serde_json::from_value(v["state"].clone()).expect("a rollout state")
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(20), h.shutdown()).await;
            });
        }
    }
}

fn healthy_canary_promotes_with_its_bound(backend: Backend) {
    let mesh = Mesh::start(backend, Canary::Healthy);
    let load = Load::start(mesh.proxy, None);
    let (code, out, err) = mesh.rollout(&[]);
    load.stop();
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let s = mesh.state();
    assert_eq!(s.phase, Phase::Promoted);
    let reason = s.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("all 3 steps passed analysis; v2 takes 100%; v2 error rate ≤ "),
        "{reason}"
    );
    assert!(reason.contains("with 99% confidence (0 of "), "{reason}");
    let evidence = s
        .evidence
        .as_ref()
        .expect("the sequential evidence in the state");
    assert!(evidence.errors.canary.requests >= 30, "{evidence:?}");
    assert_eq!(evidence.errors.p_value, 1.0);
    // Every step's record carries the evidence behind its verdict.
    for h in &s.history {
        let r = h.records.last().expect("a record");
        let e = r.evidence.as_ref().expect("evidence in the record");
        assert!(
            !e.rejected && r.reason.starts_with("no test rejected: v2 errors 0 of "),
            "{r:?}"
        );
    }
}

fn five_percent_errors_roll_back_on_the_evidence(backend: Backend) {
    let mesh = Mesh::start(backend, Canary::FivePercentErrors);
    let load = Load::start(mesh.proxy, None);
    let (code, out, err) = mesh.rollout(&["-o", "json"]);
    load.stop();
    assert_eq!(code, 3, "stdout:\n{out}\nstderr:\n{err}");
    let s = mesh.state();
    assert_eq!(s.phase, Phase::RolledBack);
    let reasons: Vec<&str> = s
        .history
        .iter()
        .flat_map(|h| h.records.iter().map(|r| r.reason.as_str()))
        .collect();
    assert_eq!(
        s.failed_checks, 1,
        "rolled back at the first rejection: {reasons:#?}"
    );
    let reason = s.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("the sequential analysis rejected v2: "),
        "{reason}"
    );
    assert!(reason.contains(" < 0.01"), "{reason}");
    // The JSON events carry the evidence: the rejecting test and its p.
    let rejected: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "analysis" && e["record"]["evidence"]["rejected"] == true)
        .collect();
    assert_eq!(rejected.len(), 1, "{out}");
    let tests = rejected[0]["record"]["evidence"]["tests"]
        .as_array()
        .unwrap();
    assert!(
        tests.iter().any(|t| t["rejected"] == true
            && ["vs-baseline", "success-rate"].contains(&t["test"].as_str().unwrap())
            && t["p_value"].as_f64().unwrap() < 0.01),
        "{tests:?}"
    );
    let (text, _) = mesh
        .meshctl(&["rollout", "status", "discounts"])
        .run_code(3);
    assert!(text.contains("evidence over "), "{text}");
    assert!(text.contains("vs-baseline: v2 errors "), "{text}");
}

fn slow_canary_rolls_back_on_latency(backend: Backend) {
    let mesh = Mesh::start(backend, Canary::Slow);
    let load = Load::start(mesh.proxy, None);
    let (code, out, err) = mesh.rollout(&["--max-p99", "100ms"]);
    load.stop();
    assert_eq!(code, 3, "stdout:\n{out}\nstderr:\n{err}");
    let s = mesh.state();
    assert_eq!((s.phase, s.failed_checks), (Phase::RolledBack, 1));
    let reason = s.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("the sequential analysis rejected v2: "),
        "{reason}"
    );
    // The p99 floor names the bucket boundary it judged; the comparison
    // with v1 names the boundaries it found v2 slower at.
    assert!(
        reason.contains("v2 requests slower than 100ms: ")
            || reason.contains("v2 vs v1 latency: p = "),
        "{reason}"
    );
    assert!(!reason.contains("errors"), "no error evidence: {reason}");
}

#[test]
fn healthy_canary_promotes_with_its_bound_local() {
    healthy_canary_promotes_with_its_bound(Backend::Local);
}

#[test]
fn healthy_canary_promotes_with_its_bound_kube() {
    healthy_canary_promotes_with_its_bound(Backend::Kube);
}

#[test]
fn five_percent_errors_roll_back_on_the_evidence_local() {
    five_percent_errors_roll_back_on_the_evidence(Backend::Local);
}

#[test]
fn five_percent_errors_roll_back_on_the_evidence_kube() {
    five_percent_errors_roll_back_on_the_evidence(Backend::Kube);
}

#[test]
fn slow_canary_rolls_back_on_latency_local() {
    slow_canary_rolls_back_on_latency(Backend::Local);
}

#[test]
fn slow_canary_rolls_back_on_latency_kube() {
    slow_canary_rolls_back_on_latency(Backend::Kube);
}
