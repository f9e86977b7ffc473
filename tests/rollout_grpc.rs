//! meshctl judges gRPC (issue 13): the failure rule (5xx or a gRPC status
//! in the failing set) read the same way from an exposition endpoint and
//! from a real Prometheus server; gRPC canary rollouts through a real
//! meshproxy with the demo's tonic upstreams and load generator, on the
//! local target and on the fake API server (meshproxy `--kube`);
//! `--grpc-error-codes`; `demo --protocol grpc` as the real binary; and
//! doctor's `grpc-port` warning.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use meshctl::metrics::prometheus::Prometheus;
use meshctl::metrics::proxy::ProxyMetrics;
use meshctl::metrics::{GrpcCodes, MetricsSource};

use mesh_test_support::fixture::discounts_at;
use mesh_test_support::meshctl::words;

use crate::demo::{in_dir, load_line, promoted, refused, rolled_back};
use crate::rollout_harness::{Backend, Protocol, Proxied, runtime};
use crate::rollout_prometheus::{prometheus_binary, start_prometheus};

/// gRPC and HTTP series of `discounts` as meshproxy exposes them (with
/// labels the analysis sums over), and a series of another service.
const GRPC_EXPOSITION: &str = r#"# TYPE istio_requests_total counter
istio_requests_total{reporter="source",destination_service_name="discounts",destination_version="v1",request_protocol="grpc",response_code="200",grpc_response_status="0",response_flags="-"} 500
istio_requests_total{reporter="source",destination_service_name="discounts",destination_version="v1",request_protocol="grpc",response_code="200",grpc_response_status="5",response_flags="-"} 7
istio_requests_total{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="0",response_flags="-"} 88
istio_requests_total{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="13",response_flags="-"} 10
istio_requests_total{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="14",response_flags="UF"} 1
istio_requests_total{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="503",grpc_response_status="14",response_flags="UC"} 1
istio_requests_total{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="http",response_code="502",grpc_response_status="",response_flags="-"} 3
istio_requests_total{reporter="destination",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="13",response_flags="-"} 4
istio_requests_total{reporter="source",destination_service_name="other",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="13",response_flags="-"} 9
# TYPE istio_request_duration_milliseconds histogram
istio_request_duration_milliseconds_bucket{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="0",le="5"} 80
istio_request_duration_milliseconds_bucket{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="0",le="+Inf"} 88
istio_request_duration_milliseconds_bucket{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="13",le="5"} 10
istio_request_duration_milliseconds_bucket{reporter="source",destination_service_name="discounts",destination_version="v2",request_protocol="grpc",response_code="200",grpc_response_status="13",le="+Inf"} 10
"#;

#[test]
fn exposition_and_prometheus_count_grpc_failures_alike() {
    let Some(bin) = prometheus_binary() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let metrics = rt.block_on(mesh_test_support::upstream().body(GRPC_EXPOSITION).run());
    let prom = start_prometheus(bin, &metrics.addr.to_string());
    let url = format!("http://{}/metrics", metrics.addr);
    for codes in [
        GrpcCodes::default(),
        "NOT_FOUND,internal".parse().expect("codes"),
        GrpcCodes::new([]),
    ] {
        let timeout = Duration::from_secs(5);
        let direct = ProxyMetrics::new(&url, timeout)
            .expect("source")
            .with_grpc_codes(codes.clone());
        let promql = Prometheus::new(&prom.url, timeout)
            .expect("source")
            .with_grpc_codes(codes.clone());
        let (a, b) = rt.block_on(async {
            (
                direct.scrape("discounts").await.expect("direct scrape"),
                promql.scrape("discounts").await.expect("prometheus scrape"),
            )
        });
        assert_eq!(a, b, "codes {codes}");
        let v2 = a.version("v2");
        let expected = match codes.to_string().as_str() {
            // INTERNAL 10, UNAVAILABLE 1 (HTTP 200) + 1 (HTTP 503), HTTP 502 3.
            "UNKNOWN,DEADLINE_EXCEEDED,UNIMPLEMENTED,INTERNAL,UNAVAILABLE,DATA_LOSS" => {
                vec![("HTTP 502", 3.0), ("INTERNAL", 10.0), ("UNAVAILABLE", 2.0)]
            }
            // The 503 still counts as a 5xx, the HTTP 200 UNAVAILABLE does not.
            "NOT_FOUND,INTERNAL" => vec![("HTTP 502", 3.0), ("HTTP 503", 1.0), ("INTERNAL", 10.0)],
            _ => vec![("HTTP 502", 3.0), ("HTTP 503", 1.0)],
        };
        let total: f64 = expected.iter().map(|(_, n)| n).sum();
        assert_eq!((v2.requests, v2.errors), (103.0, total), "codes {codes}");
        let got: Vec<(&str, f64)> = v2.failures.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(got, expected, "codes {codes}");
        // v1's NOT_FOUND is a client fault unless the set says otherwise.
        let v1 = a.version("v1");
        let not_found = if codes.to_string().contains("NOT_FOUND") {
            7.0
        } else {
            0.0
        };
        assert_eq!((v1.requests, v1.errors), (507.0, not_found));
        // The destination-reported copies stay apart.
        assert_eq!(a.destination["v2"].requests, 4.0);
    }
    drop(prom);
}

/// gRPC v1/v2 upstreams (the demo's `Greeter`), meshproxy in front of them
/// with the port declared `grpc`, and the demo's gRPC load generator.
struct GrpcMesh {
    mesh: Proxied,
    upstreams: Vec<tokio::task::JoinHandle<()>>,
    load: Option<tokio::task::JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
    stats: Arc<meshctl::demo::LoadStats>,
}

impl GrpcMesh {
    /// v2 answers every `v2_fail_every`-th call with `INTERNAL`.
    fn start(backend: Backend, v2_fail_every: Option<u64>) -> Self {
        use meshctl::demo::grpc;
        let rt = runtime();
        let (v1, t1) = rt.block_on(grpc::upstream("v1", None)).expect("v1");
        let (v2, t2) = rt
            .block_on(grpc::upstream("v2", v2_fail_every))
            .expect("v2");
        let mesh = Proxied::start(rt, backend, Protocol::Grpc, &[("v1", v1), ("v2", v2)]);
        let stats = Arc::new(meshctl::demo::LoadStats::default());
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let load = {
            let _guard = mesh.rt.enter();
            grpc::load(
                grpc::Load {
                    proxy: mesh.proxy,
                    authority: "discounts".to_owned(),
                    rate: 200,
                    max_run: Duration::from_secs(180),
                    mark: None,
                },
                stats.clone(),
                stop_rx,
            )
        };
        let mesh = Self {
            mesh,
            upstreams: vec![t1, t2],
            load: Some(load),
            stop,
            stats,
        };
        assert!(
            mesh.saw_requests("v1"),
            "meshproxy reported no calls to discounts within 30s (load: {} ok, {} failed: {})",
            mesh.stats.ok.load(Ordering::Relaxed),
            mesh.stats.failed.load(Ordering::Relaxed),
            mesh.stats.failures()
        );
        mesh
    }

    /// `meshctl rollout start discounts --to v2` on meshproxy's metrics,
    /// 1 s windows, steps 20, 50, 100%.
    fn rollout(&self, extra: &[&str]) -> crate::util::Meshctl {
        let mut cmd = self.mesh.rollout(&["--steps", "20,50,100"]);
        cmd.args(extra);
        cmd
    }
}

impl std::ops::Deref for GrpcMesh {
    type Target = Proxied;

    fn deref(&self) -> &Proxied {
        &self.mesh
    }
}

impl Drop for GrpcMesh {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(load) = self.load.take() {
            let _ = self
                .mesh
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(5), load).await });
        }
        self.mesh.shutdown();
        for t in &self.upstreams {
            t.abort();
        }
    }
}

/// A healthy gRPC v2 is promoted, and one answering `INTERNAL` on 10% of
/// calls (HTTP 200, `grpc-status: 13`) is rolled back with the code named.
fn promotes_healthy_and_rolls_back_internal(place: Backend) {
    use meshctl::rollout::state::Phase;

    let mesh = GrpcMesh::start(place, None);
    let (code, out, err) = mesh.rollout(&[]).run();
    assert_eq!(code, 0, "{place:?}: {out}{err}");
    let state = mesh.state();
    assert_eq!(state.phase, Phase::Promoted);
    let judged: u64 = state
        .history
        .iter()
        .flat_map(|h| &h.records)
        .map(|r| r.canary.requests)
        .sum();
    assert!(judged >= 30, "{place:?}: {judged} canary calls judged");
    assert_eq!(
        mesh.stats.failed.load(Ordering::Relaxed),
        0,
        "{}",
        mesh.stats.failures()
    );
    drop(mesh);

    let mesh = GrpcMesh::start(place, Some(10));
    let (code, out, err) = mesh.rollout(&[]).run();
    assert_eq!(code, 3, "{place:?}: {out}{err}");
    let state = mesh.state();
    assert_eq!(state.phase, Phase::RolledBack);
    let reason = state.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("the sequential analysis rejected v2: ")
            && reason.contains("failed: INTERNAL ×"),
        "{place:?}: {reason}"
    );
    // The failing codes are kept with the rollout, for any process.
    assert_eq!(
        state.settings.thresholds.grpc_error_codes,
        GrpcCodes::default()
    );
    let record = state
        .history
        .iter()
        .flat_map(|h| &h.records)
        .find(|r| r.canary.errors > 0)
        .expect("a record with failed canary calls");
    assert_eq!(
        record.canary.failures.keys().collect::<Vec<_>>(),
        ["INTERNAL"],
        "{place:?}: {record:?}"
    );
    assert!(
        mesh.stats.failures().starts_with("INTERNAL ×"),
        "{}",
        mesh.stats.failures()
    );
}

on_both_targets! {
    promotes_healthy_and_rolls_back_internal =>
        grpc_canary_on_the_local_target,
        grpc_canary_on_the_fake_api_server;
}

/// `--grpc-error-codes` changes what fails: without INTERNAL in the set the
/// same bad canary is promoted (its calls are HTTP 200s), and the chosen
/// set is what the rollout state keeps.
#[test]
fn grpc_error_codes_flag_decides_what_fails() {
    use meshctl::rollout::state::Phase;

    let mesh = GrpcMesh::start(Backend::Local, Some(10));
    let (code, out, err) = mesh.rollout(&["--grpc-error-codes", "unavailable,4"]).run();
    assert_eq!(code, 0, "{out}{err}");
    let state = mesh.state();
    assert_eq!(state.phase, Phase::Promoted);
    assert_eq!(
        state.settings.thresholds.grpc_error_codes.to_string(),
        "DEADLINE_EXCEEDED,UNAVAILABLE"
    );
    // `analyze` judges the same live traffic (v2 at 100%, 10% INTERNAL):
    // failed with the default codes, naming them; passed without INTERNAL.
    let analyze = |codes: Option<&str>| {
        let mut cmd = crate::util::meshctl();
        cmd.args(words(
            "analyze discounts --compare v1 v2 --for 1s --min-requests 10",
        ))
        .args(["--metrics", &mesh.metrics_url]);
        if let Some(c) = codes {
            cmd.args(["--grpc-error-codes", c]);
        }
        cmd.run()
    };
    let (code, out, err) = analyze(None);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("failed: INTERNAL ×"), "{out}");
    let (code, out, err) = analyze(Some("none"));
    assert_eq!(code, 0, "{out}{err}");
    drop(mesh);

    let (_, err) = crate::util::meshctl()
        .args(words(
            "--target local:/nonexistent rollout start discounts --to v2",
        ))
        .args(["--grpc-error-codes", "INTERNAL,teapot"])
        .run_code(1);
    assert!(
        err.contains("--grpc-error-codes")
            && err.contains("\"teapot\" is not a gRPC status code")
            && err.contains("DATA_LOSS"),
        "{err}"
    );
}

/// `meshctl demo --protocol grpc` as the real binary: gRPC upstreams behind
/// meshproxy (HTTP/2 by the `grpc` port), a healthy v2 promoted (exit 0)
/// and a bad canary's `INTERNAL` answers rolled back (exit 3), named in
/// the decision and in what the load generator saw.
#[test]
fn demo_protocol_grpc_promotes_and_rolls_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = promoted(
        &in_dir(&dir, "--protocol grpc --interval 500ms"),
        &["gRPC calls/s (/meshctl.demo.Greeter/SayHello)"],
    );
    let load = load_line(&out);
    assert!(load.contains(" 0 failed;"), "{load}");
    let endpoints = std::fs::read_to_string(dir.path().join("endpoints.yaml")).expect("endpoints");
    assert!(endpoints.contains("port: {name: grpc}"), "{endpoints}");

    let out = rolled_back("--protocol grpc --bad-canary --interval 500ms");
    assert!(out.contains("failed: INTERNAL ×"), "{out}");
    let load = load_line(&out);
    assert!(load.contains("(INTERNAL ×"), "{load}");

    refused(
        "--protocol grpc --mtls",
        "--protocol grpc does not combine with --mtls",
    );
}

/// `meshctl doctor` sees gRPC in the series of `discounts` and checks that
/// its port is declared for it: passes with `port: {name: grpc-api}`, warns
/// (exit 0, `WARN`) once endpoints.yaml no longer declares the port.
#[test]
fn doctor_warns_about_grpc_on_an_undeclared_port() {
    let mesh = GrpcMesh::start(Backend::Local, None);
    // Both versions serve, so every other check passes.
    std::fs::write(mesh.path().join("discounts.yaml"), discounts_at(50, 50)).expect("resources");
    // Bounded (30 s); the checks below say what is missing if v2 never served.
    let _ = mesh.saw_requests("v2");
    let doctor = |json: bool| {
        let mut cmd = mesh.meshctl(&["doctor", "discounts", "--metrics", &mesh.metrics_url]);
        if json {
            cmd.args(["-o", "json"]);
        }
        cmd.run()
    };
    let (code, out, err) = doctor(true);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    let check = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "grpc-port")
        .expect("the grpc-port check")
        .clone();
    assert_eq!(check["passed"], true, "{check}");
    assert!(check.get("warning").is_none(), "{check}");
    assert!(
        check["message"]
            .as_str()
            .is_some_and(|m| m.contains("port \"grpc-api\"")),
        "{check}"
    );

    let path = mesh.path().join("endpoints.yaml");
    let undeclared = std::fs::read_to_string(&path)
        .expect("endpoints.yaml")
        .replace("    port: {name: grpc-api}\n", "");
    std::fs::write(&path, undeclared).expect("endpoints.yaml");
    let (code, out, err) = doctor(false);
    assert_eq!(code, 0, "a warning is not a failure: {out}{err}");
    let line = out
        .lines()
        .find(|l| l.contains("grpc-port"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.starts_with("WARN"), "{line}");
    assert!(
        line.contains("gRPC traffic seen for \"discounts\" (v1, v2) on a port not declared grpc or http2 (no port declared)"),
        "{line}"
    );
    assert!(
        out.contains("`port: {name: grpc}` under services.discounts in endpoints.yaml"),
        "{out}"
    );
}
