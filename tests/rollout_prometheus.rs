//! The Prometheus metrics source against a real Prometheus server (Debian
//! package `prometheus`) scraping Istio metrics on loopback, started by the
//! test and stopped after. Skips with a reason when `prometheus` is missing,
//! unless `MESHCTL_REQUIRE_TOOLS=1`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use meshctl::rollout::state::{Phase, RolloutState};

use mesh_test_support::meshctl::words;

use crate::rollout_harness::{Behaviour, Mesh};

/// A Prometheus server; killed on drop.
pub(crate) struct PromServer {
    child: Child,
    pub(crate) url: String,
    _dir: tempfile::TempDir,
}

impl Drop for PromServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn prometheus_binary() -> Option<&'static str> {
    let found = Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some("prometheus");
    }
    assert!(
        std::env::var_os("MESHCTL_REQUIRE_TOOLS").is_none(),
        "prometheus is required (MESHCTL_REQUIRE_TOOLS=1): apt-get install prometheus"
    );
    eprintln!("skipping: prometheus not installed (apt-get install prometheus)");
    None
}

/// Starts Prometheus scraping `target` (host:port, or a `http://HOST:PORT/metrics`
/// URL; path /metrics) every 500ms.
pub(crate) fn start_prometheus(bin: &str, target: &str) -> PromServer {
    let target = target
        .trim_start_matches("http://")
        .trim_end_matches("/metrics");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 500ms\n  evaluation_interval: 500ms\nscrape_configs:\n- job_name: mesh\n  static_configs:\n  - targets: ['{target}']\n"
        ),
    )
    .expect("writing prometheus.yml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting prometheus");
    let server = PromServer {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    // Ready, and the target scraped at least twice (bounded: 60 s).
    let client = http::blocking_get();
    for _ in 0..300 {
        let q = format!(
            "{}/api/v1/query?query=count(istio_requests_total)",
            server.url
        );
        if client(&q).is_some_and(|body| body.contains("\"result\":[{")) {
            return server;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "prometheus at {} did not scrape {target} within 60s",
        server.url
    );
}

/// Minimal blocking GET over a std TCP stream (no extra client in tests).
mod http {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    pub fn blocking_get() -> impl Fn(&str) -> Option<String> {
        |url: &str| {
            let rest = url.strip_prefix("http://")?;
            let (host, path) = rest.split_once('/')?;
            let mut s = TcpStream::connect(host).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
            let path = path.replace('(', "%28").replace(')', "%29");
            write!(
                s,
                "GET /{path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
            )
            .ok()?;
            let mut out = String::new();
            s.read_to_string(&mut out).ok()?;
            out.starts_with("HTTP/1.1 200").then_some(out)
        }
    }
}

/// `rollout start` (steps 50, 100; 1.5 s windows; `extra`) on the simulator
/// behaving as `behaviour`, judged through a real Prometheus scraping it; it
/// must exit `code`. The final state.
fn through_prometheus(bin: &str, behaviour: Behaviour, extra: &str, code: i32) -> RolloutState {
    let mesh = Mesh::start(behaviour);
    let prom = start_prometheus(bin, &mesh.metrics_url);
    let mut flags = words("--steps 50,100 --interval 1500ms --min-requests 5");
    flags.extend(words(extra));
    flags.extend(["--prometheus", &prom.url]);
    mesh.rollout(&flags).run_code(code);
    mesh.state().expect("a rollout state")
}

#[test]
fn rollout_with_prometheus_source_promotes_and_rolls_back() {
    let Some(bin) = prometheus_binary() else {
        return;
    };
    // Healthy canary: promoted through PromQL over istio_requests_total.
    let s = through_prometheus(bin, Behaviour::healthy(), "", 0);
    assert_eq!(s.phase, Phase::Promoted);

    // Failing canary: the same source sees the 5xx and rolls back.
    let failing = Behaviour::healthy().failing("v2", 0.3);
    let reason = through_prometheus(bin, failing, "--threshold 1", 3)
        .reason
        .unwrap();
    assert!(reason.contains("v2 error rate ≥ "), "{reason}");
}

#[test]
fn prometheus_source_reads_a_real_meshproxy() {
    let Some(bin) = prometheus_binary() else {
        return;
    };
    // The demo runs meshproxy with real traffic; its first step (v2 at 10%) lasts 20 s.
    let (mut demo, head, _lines) = crate::demo::until_step_one("--interval 20s");
    let admin = head
        .iter()
        .find_map(|l| l.split("(metrics http://").nth(1))
        .and_then(|rest| rest.split("/metrics").next())
        .map(str::to_owned);
    let admin = admin.expect("the demo prints its metrics address");
    let prom = start_prometheus(bin, &admin);
    let mut cmd = crate::util::meshctl();
    cmd.args(words(
        "analyze discounts --compare v1 v2 --for 3s --min-requests 5",
    ));
    cmd.args(["--prometheus", &prom.url, "-o", "json"]);
    let (code, out, err) = cmd.run();
    let _ = demo.kill();
    let _ = demo.wait();
    assert_eq!(code, 0, "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON record");
    assert!(
        json["record"]["canary"]["requests"].as_u64().unwrap_or(0) >= 5,
        "{json}"
    );
    assert!(json["record"]["baseline"]["p99_ms"].is_number(), "{json}");
}

#[test]
fn mirror_rollout_through_prometheus_counts_like_a_direct_scrape() {
    use crate::rollout_proxy::{Answer, Load, ProxyMesh};
    let Some(bin) = prometheus_binary() else {
        return;
    };
    // Real meshproxy scraped by real Prometheus: the mirror windows read v2's
    // reporter="destination" copies, the canary steps v1's and v2's
    // reporter="source" requests although v2's mirrored series remain.
    let mesh = ProxyMesh::start(Answer::Ok);
    let load = Load::start(mesh.proxy, None);
    let prom = start_prometheus(bin, &mesh.metrics_url);
    let mut flags = words("--strategy mirror --iterations 2 --steps 50,100 --interval 1500ms");
    flags.extend(["--prometheus", &prom.url]);
    let (code, out, err) = mesh.rollout(&flags).run();
    load.stop();
    assert_eq!(code, 0, "{out}{err}");
    let s = mesh.state();
    assert_eq!(s.phase, Phase::Promoted);
    let counts: Vec<(u8, u64, u64)> = s
        .history
        .iter()
        .map(|h| {
            let r = h.records.last().expect("record");
            (h.weight, r.baseline.requests, r.canary.requests)
        })
        .collect();
    assert_eq!(counts.len(), 4, "{counts:?}");
    for (weight, baseline, canary) in &counts {
        assert!(*canary >= 10, "{counts:?}");
        assert!(*weight == 100 || *baseline >= 10, "{counts:?}");
    }
    drop(prom);
}
