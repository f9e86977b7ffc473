//! `meshctl doctor` through the binary (issue 7): a healthy setup passes
//! every check; each check fails on a crafted broken setup with its fix.
//! Local directory targets, metrics from a real loopback HTTP server serving
//! exposition text, and the endpoints check against the fake API server.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use mesh_test_support::fixture::discounts_rule;
use meshctl::target::Target;
use meshproxy::istio::yaml;
use serde_json::json;

use crate::kube_support::{Cluster, ClusterTarget, NS};
use crate::util::meshctl;

/// The fixture's DestinationRule (subsets v1, v2), then a VirtualService
/// whose route `primary` names both subsets (v1 at 100, v2 at 0).
static RESOURCES: LazyLock<String> =
    LazyLock::new(|| format!("{}---\n{VIRTUAL_SERVICE}", discounts_rule()));

const VIRTUAL_SERVICE: &str = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: discounts
spec:
  hosts:
  - discounts
  http:
  - name: primary
    route:
    - destination:
        host: discounts
        subset: v1
      weight: 100
    - destination:
        host: discounts
        subset: v2
      weight: 0
";

const ENDPOINTS: &str = "\
services:
  discounts:
    endpoints:
    - address: 127.0.0.1:8081
      labels: {version: v1}
    - address: 127.0.0.1:8082
      labels: {version: v2}
";

/// meshproxy-style exposition text with series for `versions`.
fn exposition(versions: &[&str]) -> String {
    let mut text = String::from("# TYPE istio_requests_total counter\n");
    for v in versions {
        text.push_str(&format!(
            "istio_requests_total{{reporter=\"source\",destination_service_name=\"discounts\",destination_version=\"{v}\",response_code=\"200\"}} 10\n"
        ));
    }
    text.push_str("# TYPE istio_request_duration_milliseconds histogram\n");
    for v in versions {
        for le in ["5", "+Inf"] {
            text.push_str(&format!(
                "istio_request_duration_milliseconds_bucket{{reporter=\"source\",destination_service_name=\"discounts\",destination_version=\"{v}\",le=\"{le}\"}} 10\n"
            ));
        }
    }
    text
}

/// A loopback HTTP server answering every request with `body`, stopped on drop.
struct MetricsServer {
    url: String,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl MetricsServer {
    fn start(body: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            url: format!("http://{addr}/metrics"),
            stop,
            addr,
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// A local target directory with `resources` and `endpoints`.
fn mesh(resources: &str, endpoints: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("discounts.yaml"), resources).unwrap();
    std::fs::write(dir.path().join("endpoints.yaml"), endpoints).unwrap();
    dir
}

/// Runs doctor with `-o json`: (exit code, the report).
fn doctor(dir: &Path, metrics: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let out = meshctl()
        .args(["doctor", "discounts", "-o", "json", "--metrics", metrics])
        .local(dir)
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "failed checks are not errors"
    );
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap(), report)
}

/// The names of the checks in `report` that `keep` keeps, in order.
fn check_names(report: &serde_json::Value, keep: fn(&serde_json::Value) -> bool) -> Vec<&str> {
    let checks = report["checks"].as_array().expect("checks");
    let kept = checks.iter().filter(|c| keep(c));
    kept.map(|c| c["name"].as_str().expect("a name")).collect()
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

/// A local target directory and a metrics server for doctor.
struct Setup {
    dir: tempfile::TempDir,
    metrics: MetricsServer,
}

impl Setup {
    /// The target holding `resources` and `endpoints`; metrics with series
    /// for `versions`.
    fn new(resources: &str, endpoints: &str, versions: &[&str]) -> Self {
        let dir = mesh(resources, endpoints);
        let metrics = MetricsServer::start(exposition(versions));
        Self { dir, metrics }
    }

    /// Doctor (`-o json`) fails exactly check `name`, with `message` and
    /// `fix` fragments.
    fn fails_only(&self, name: &str, message: &str, fix: &str) {
        let (code, report) = doctor(self.dir.path(), &self.metrics.url, &[]);
        only_failure(code, &report, name, message, fix);
    }
}

/// Asserts that exactly `name` failed, with `message` and `fix` fragments.
fn only_failure(code: i32, report: &serde_json::Value, name: &str, message: &str, fix: &str) {
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["passed"], false);
    let failed = check_names(report, |c| c["passed"] == false);
    assert_eq!(failed, [name], "{report:#}");
    let c = check(report, name);
    let m = c["message"].as_str().unwrap();
    assert!(m.contains(message), "message {m:?} lacks {message:?}");
    let f = c["fix"].as_str().unwrap();
    assert!(f.contains(fix), "fix {f:?} lacks {fix:?}");
}

#[test]
fn a_healthy_setup_passes_every_check() {
    let dir = mesh(&RESOURCES, ENDPOINTS);
    let metrics = MetricsServer::start(exposition(&["v1", "v2"]));
    let (code, report) = doctor(dir.path(), &metrics.url, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["passed"], true);
    assert_eq!(
        (&report["from"], &report["to"]),
        (&json!("v1"), &json!("v2"))
    );
    let names = check_names(&report, |_| true);
    assert_eq!(
        names,
        [
            "subsets",
            "endpoints",
            "routes",
            "route-names",
            "metrics",
            "mtls",
            "grpc-port"
        ]
    );
    assert_eq!(
        check(&report, "endpoints")["message"],
        "v1 (version=v1): 127.0.0.1:8081; v2 (version=v2): 127.0.0.1:8082"
    );

    // The text form: one line per check, a summary, exit 0.
    let (text, _) = meshctl()
        .args(["doctor", "discounts", "--metrics", &metrics.url])
        .local(dir.path())
        .run_code(0);
    assert!(
        text.starts_with("doctor discounts (v1 -> v2) on local:"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("PASS  ")).count(),
        7,
        "{text}"
    );
    assert!(text.ends_with("7 of 7 checks passed\n"), "{text}");
}

#[test]
fn a_missing_subset_fails_subsets() {
    let dir = mesh(&RESOURCES, ENDPOINTS);
    let metrics = MetricsServer::start(exposition(&["v1", "v2", "v3"]));
    let (code, report) = doctor(dir.path(), &metrics.url, &["--to", "v3"]);
    assert_eq!(code, 1);
    let c = check(&report, "subsets");
    assert_eq!(c["passed"], false);
    assert_eq!(
        c["message"],
        "DestinationRule \"discounts\" has no subset v3 (defined: v1, v2)"
    );
    assert!(
        c["fix"]
            .as_str()
            .unwrap()
            .contains("`meshctl apply discounts --versions v1,v3`"),
        "{c}"
    );
}

#[test]
fn a_subset_selecting_no_endpoints_fails_endpoints() {
    let only_v1 = ENDPOINTS.replace("      labels: {version: v2}", "      labels: {version: v1}");
    let setup = Setup::new(&RESOURCES, &only_v1, &["v1", "v2"]);
    setup.fails_only("endpoints", "subset v2 (version=v2) selects no endpoints", "local target: an endpoint under services.discounts in endpoints.yaml with `labels: {version: v2}`");
}

#[test]
fn a_route_to_an_undefined_subset_fails_routes() {
    let broken = RESOURCES.replace(
        "        subset: v2\n      weight: 0",
        "        subset: v9\n      weight: 0",
    );
    let setup = Setup::new(&broken, ENDPOINTS, &["v1", "v2"]);
    setup.fails_only("routes", "VirtualService/discounts spec.http[0].route[1].destination.subset: subset \"v9\" of host \"discounts\" is not defined in its DestinationRule (defined: v1, v2)", "route only to subsets the DestinationRule defines");
}

#[test]
fn weights_not_summing_to_100_fail_routes() {
    let broken = RESOURCES.replace("      weight: 100", "      weight: 90");
    let setup = Setup::new(&broken, ENDPOINTS, &["v1", "v2"]);
    setup.fails_only(
        "routes",
        "spec.http[0].route: weights sum to 90: they must sum to 100",
        "make each route's weights sum to 100",
    );
}

#[test]
fn duplicate_route_names_fail_route_names() {
    let extra = "  - name: primary\n    route:\n    - destination:\n        host: discounts\n        subset: v1\n";
    let setup = Setup::new(&format!("{}{extra}", *RESOURCES), ENDPOINTS, &["v1", "v2"]);
    setup.fails_only(
        "route-names",
        "uses route name(s) primary more than once",
        "give every entry of spec.http a unique `name`",
    );
}

#[test]
fn metrics_without_series_for_the_new_version_fail_metrics() {
    let setup = Setup::new(&RESOURCES, ENDPOINTS, &["v1"]);
    setup.fails_only("metrics", "has no istio_requests_total series for destination_service_name=\"discounts\" destination_version=v2 (versions seen: v1)", "send some traffic to v2 before the rollout");
}

#[test]
fn an_unreachable_metrics_source_fails_metrics() {
    let dir = mesh(&RESOURCES, ENDPOINTS);
    // A port that was just free: nothing listens there.
    let url = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/metrics", l.local_addr().unwrap())
    };
    let (code, report) = doctor(dir.path(), &url, &[]);
    only_failure(
        code,
        &report,
        "metrics",
        &format!("metrics source {url} is unreachable"),
        "start meshproxy (its admin listener serves /metrics) or pass the right source",
    );
}

#[test]
fn mixed_mtls_modes_fail_mtls() {
    // Subset v2 alone sends with ISTIO_MUTUAL.
    let v2 = "    labels: {version: v2}\n";
    let tls = "    trafficPolicy:\n      tls:\n        mode: ISTIO_MUTUAL\n";
    let broken = RESOURCES.replace(v2, &format!("{v2}{tls}"));
    let setup = Setup::new(&broken, ENDPOINTS, &["v1", "v2"]);
    setup.fails_only(
        "mtls",
        "disagree on mTLS (v1: unset (plain text), v2: ISTIO_MUTUAL)",
        "give both subsets the same trafficPolicy.tls.mode",
    );
}

#[test]
fn istio_mutual_rule_with_plain_text_series_fails_mtls() {
    let rule = RESOURCES.replacen(
        "spec:\n  host: discounts\n",
        "spec:\n  host: discounts\n  trafficPolicy:\n    tls:\n      mode: ISTIO_MUTUAL\n",
        1,
    );
    let dir = mesh(&rule, ENDPOINTS);
    let with_policy = |policy: &str| {
        exposition(&["v1", "v2"]).replace(
            "response_code=\"200\"",
            &format!("response_code=\"200\",connection_security_policy=\"{policy}\""),
        )
    };
    let metrics = MetricsServer::start(with_policy("none"));
    let (code, report) = doctor(dir.path(), &metrics.url, &[]);
    only_failure(
        code,
        &report,
        "mtls",
        "DestinationRule \"discounts\" sends v1 with ISTIO_MUTUAL but the metrics show connection_security_policy=\"none\" for v1",
        "turn on mTLS where the traffic flows",
    );
    // The same rule with mutual_tls series passes.
    let metrics = MetricsServer::start(with_policy("mutual_tls"));
    let (code, report) = doctor(dir.path(), &metrics.url, &[]);
    assert_eq!(code, 0, "{report:#}");
    let m = check(&report, "mtls")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(m.contains("metrics agree"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_pods_with_the_subset_labels_on_kubernetes() {
    let cluster = Cluster::start().await;
    let target = cluster.target().await;
    let resources = yaml::parse_resources(&RESOURCES).unwrap();
    target
        .apply(&resources, meshctl::target::ApplyOptions::default())
        .await
        .unwrap();
    let pod = |name: &str, version: &str| {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "discounts", "version": version}},
            "spec": {"containers": [{"name": "app", "image": "discounts"}]},
        })
    };
    cluster
        .server
        .insert("", "pods", NS, pod("discounts-v1-7d9f", "v1"))
        .unwrap();
    let metrics = MetricsServer::start(exposition(&["v1", "v2"]));
    let kubeconfig = cluster.kubeconfig.clone();
    let url = metrics.url.clone();
    let run = move || {
        let kubeconfig = kubeconfig.clone();
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let out = meshctl()
                .args(["doctor", "discounts", "-o", "json", "--target", "kube"])
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["--metrics", &url])
                .output()
                .unwrap();
            let report: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
            (out.status.code().unwrap(), report)
        })
    };
    let (code, report) = run().await.unwrap();
    only_failure(
        code,
        &report,
        "endpoints",
        "subset v2 (version=v2) selects no endpoints",
        "Kubernetes: in the Deployment's pod template",
    );
    cluster
        .server
        .insert("", "pods", NS, pod("discounts-v2-5c4b", "v2"))
        .unwrap();
    let (code, report) = run().await.unwrap();
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        check(&report, "endpoints")["message"],
        "v1 (version=v1): discounts-v1-7d9f; v2 (version=v2): discounts-v2-5c4b"
    );
    assert_eq!(report["target"], "kube:fake/shop");
    crate::kube_support::assert_rbac_allows(&cluster.server);
}

#[test]
fn a_missing_or_broken_endpoints_file_fails_endpoints_naming_the_file() {
    let dir = mesh(&RESOURCES, ENDPOINTS);
    let metrics = MetricsServer::start(exposition(&["v1", "v2"]));
    std::fs::remove_file(dir.path().join("endpoints.yaml")).unwrap();
    let (code, report) = doctor(dir.path(), &metrics.url, &[]);
    let file = dir.path().join("endpoints.yaml");
    only_failure(
        code,
        &report,
        "endpoints",
        &format!(
            "{} does not exist: create it with the service's endpoints (services: {{discounts: {{endpoints: [{{address: 127.0.0.1:8081, labels: {{version: v1}}}}]}}}})",
            file.display()
        ),
        "make the endpoints readable",
    );
    std::fs::write(
        &file,
        "services:\n  discounts:\n    endpoints:\n    - adress: 127.0.0.1:8081\n",
    )
    .unwrap();
    let (code, report) = doctor(dir.path(), &metrics.url, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        check(&report, "endpoints")["message"],
        format!(
            "cannot list the endpoints of \"discounts\" in local:{}: {}: line 4 column 7 at field `services.discounts.endpoints[0].adress`: unknown field `adress`, expected `address` or `labels`; fix the file",
            dir.path().display(),
            file.display()
        )
    );
    // An address meshproxy would reject is reported as meshproxy reports it.
    std::fs::write(&file, ENDPOINTS.replace("127.0.0.1:8082", "127.0.0.1")).unwrap();
    let (code, report) = doctor(dir.path(), &metrics.url, &[]);
    assert_eq!(code, 1);
    let message = check(&report, "endpoints")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.ends_with(&format!(
            "{}: services.discounts.endpoints[1].address: \"127.0.0.1\" has no port: write host:port, e.g. 127.0.0.1:8081",
            file.display()
        )),
        "{message}"
    );
}

#[test]
fn doctor_without_a_service_says_how_to_name_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = meshctl()
        .arg("doctor")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: doctor needs a SERVICE: `meshctl doctor SERVICE` (or a meshctl.yaml)\n"
    );
}

#[test]
fn the_service_and_metrics_source_come_from_the_spec_file() {
    let dir = mesh(&RESOURCES, ENDPOINTS);
    let metrics = MetricsServer::start(exposition(&["v1", "v2"]));
    let spec = dir.path().join("meshctl.yaml");
    std::fs::write(
        &spec,
        format!(
            "service: discounts\nversions: [v1, v2]\nmetrics:\n  proxy: {}\n",
            metrics.url
        ),
    )
    .unwrap();
    let out = meshctl()
        .args(["doctor", "-o", "json", "-f"])
        .arg(&spec)
        .local(dir.path())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["service"], "discounts");
    assert_eq!(report["metrics"], metrics.url.as_str());
}

#[test]
fn a_prometheus_source_is_checked_for_both_versions() {
    let dir = mesh(&RESOURCES, ENDPOINTS);
    // One answer serves both of the source's queries (requests by code,
    // buckets by le): each series carries both labels.
    let vector = |versions: &[&str]| {
        let result: Vec<serde_json::Value> = versions
            .iter()
            .map(|v| {
                json!({
                    "metric": {"destination_version": v, "response_code": "200", "reporter": "destination", "le": "+Inf"},
                    "value": [1_700_000_000.0, "10"],
                })
            })
            .collect();
        json!({"status": "success", "data": {"resultType": "vector", "result": result}}).to_string()
    };
    // Doctor with `--prometheus BASE`: the exit code and the report.
    let on_prometheus = |base: &str| {
        let out = meshctl()
            .args(["doctor", "discounts", "-o", "json", "--prometheus", base])
            .local(dir.path())
            .output()
            .expect("running meshctl");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a report");
        (out.status.code().expect("an exit code"), report)
    };
    let prometheus = MetricsServer::start(vector(&["v1"]));
    let base = prometheus.url.trim_end_matches("/metrics").to_owned();
    let (code, report) = on_prometheus(&base);
    only_failure(
        code,
        &report,
        "metrics",
        "destination_version=v2 (versions seen: v1)",
        "send some traffic to v2",
    );
    assert_eq!(report["metrics"], format!("prometheus {base}"));
    let healthy = MetricsServer::start(vector(&["v1", "v2"]));
    let base = healthy.url.trim_end_matches("/metrics").to_owned();
    // The same server given as --metrics serves JSON, not exposition text.
    let (code, report) = doctor(dir.path(), &healthy.url, &[]);
    only_failure(
        code,
        &report,
        "metrics",
        "returned malformed data",
        "point --metrics at a Prometheus text endpoint",
    );
    let (code, report) = on_prometheus(&base);
    assert_eq!(code, 0, "{report:#}");
}
