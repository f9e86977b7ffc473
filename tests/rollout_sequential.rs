//! `--analysis sequential` (the default, issue 14) end to end: the real
//! `meshctl` binary rolls out through a real meshproxy (in process) to
//! upstreams on 127.0.0.1:0, judged on meshproxy's own `/metrics`, on the
//! local directory target and on the fake API server (`meshproxy --kube`
//! following the VirtualService meshctl writes). A healthy canary promotes
//! with its error-rate bound in the reason; a canary failing 5% of its
//! requests and a slow one are rolled back at the first rejection, with the
//! evidence as the reason and in `status`.

use std::time::Duration;

use mesh_test_support::upstream;
use meshctl::rollout::state::{Phase, RolloutState};

use crate::rollout_harness::{Backend, Protocol, Proxied, runtime};
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

/// meshproxy in front of a healthy v1 and a v2 answering as `canary` says,
/// on `backend`.
fn start(backend: Backend, canary: Canary) -> Proxied {
    let rt = runtime();
    let v2 = match canary {
        Canary::Healthy => upstream(),
        Canary::FivePercentErrors => upstream().fail_every(20, 500),
        Canary::Slow => upstream().delay(Duration::from_millis(150)),
    };
    let (v1, v2) = rt.block_on(async { (upstream().run().await, v2.run().await) });
    Proxied::start(
        rt,
        backend,
        Protocol::Http,
        &[("v1", v1.addr), ("v2", v2.addr)],
    )
}

/// Starts the mesh and load, runs `rollout start` with the default
/// analysis, 2 s steps of 20, 50, 100% (once meshproxy's metrics count
/// requests, so the first window's scrape finds them) and `extra`; it must
/// exit `code`. The mesh, stdout and the state.
fn run(
    backend: Backend,
    canary: Canary,
    extra: &[&str],
    code: i32,
) -> (Proxied, String, RolloutState) {
    let mesh = start(backend, canary);
    let load = Load::start(mesh.proxy, None);
    assert!(
        mesh.saw_requests("v1"),
        "no requests to discounts in meshproxy's metrics within 30 s"
    );
    let mut cmd = mesh.rollout(&["--steps", "20,50,100", "--interval", "2s"]);
    let (actual, out, err) = cmd.args(extra).run();
    load.stop();
    assert_eq!(actual, code, "stdout:\n{out}\nstderr:\n{err}");
    let s = state(&mesh);
    (mesh, out, s)
}

/// The reason of a rollout the sequential analysis rolled back.
fn rejection(s: &RolloutState) -> String {
    let reason = s.reason.clone().unwrap_or_default();
    let rejected = reason.starts_with("the sequential analysis rejected v2: ");
    assert!(rejected, "{reason}");
    reason
}

/// The rollout state as `rollout status -o json` reports it.
fn state(mesh: &Proxied) -> RolloutState {
    let (code, out, err) = mesh
        .meshctl(&["rollout", "status", "discounts", "-o", "json"])
        .run();
    assert!(code == 0 || code == 3, "status: {out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("status JSON");
    serde_json::from_value(v["state"].clone()).expect("a rollout state")
}

fn healthy_canary_promotes_with_its_bound(backend: Backend) {
    let (_mesh, _, s) = run(backend, Canary::Healthy, &[], 0);
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
    let (mesh, out, s) = run(backend, Canary::FivePercentErrors, &["-o", "json"], 3);
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
    let reason = rejection(&s);
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
    let (_mesh, _, s) = run(backend, Canary::Slow, &["--max-p99", "100ms"], 3);
    assert_eq!((s.phase, s.failed_checks), (Phase::RolledBack, 1));
    let reason = rejection(&s);
    // The p99 floor names the bucket boundary it judged; the comparison
    // with v1 names the boundaries it found v2 slower at.
    assert!(
        reason.contains("v2 requests slower than 100ms: ")
            || reason.contains("v2 vs v1 latency: p = "),
        "{reason}"
    );
    assert!(!reason.contains("errors"), "no error evidence: {reason}");
}

on_both_targets! {
    healthy_canary_promotes_with_its_bound =>
        healthy_canary_promotes_with_its_bound_local,
        healthy_canary_promotes_with_its_bound_kube;
    five_percent_errors_roll_back_on_the_evidence =>
        five_percent_errors_roll_back_on_the_evidence_local,
        five_percent_errors_roll_back_on_the_evidence_kube;
    slow_canary_rolls_back_on_latency =>
        slow_canary_rolls_back_on_latency_local,
        slow_canary_rolls_back_on_latency_kube;
}
