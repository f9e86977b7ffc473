//! `meshctl rollout start`, `status`, `promote` and `rollback` end to end,
//! through the real binary on the local directory target (issue 5).
//!
//! Most tests run on both targets: `NAME::local` on a local directory,
//! `NAME::kube` on the fake Kubernetes API server (the same binary, with
//! `--target kube --kubeconfig ...`).

use std::process::Stdio;
use std::time::Duration;

use meshctl::rollout::state::{Ending, Phase, RolloutState};

use mesh_test_support::meshctl::words;

use crate::rollout_harness::{Backend, Behaviour, Mesh, active, exit_code, wait_exit, weights};

on_both_targets!(
    healthy_canary_promotes,
    ten_percent_failing_canary_rolls_back_within_threshold,
    p99_regression_rolls_back,
    metrics_source_down_rolls_back,
    too_little_traffic_is_inconclusive_not_a_pass,
    manual_promotion_pauses_then_promote_from_another_process,
    no_wait_on_pause_exits_5,
    rollback_from_another_process_stops_the_driver,
    sigterm_mid_rollout_rolls_back,
    sigterm_with_on_interrupt_pause_leaves_paused,
    kill_9_then_rollback_restores_v1,
    json_events_are_one_valid_object_per_line
);

/// The reason of a rollout that ended with v1 back at 100%.
fn rolled_back_reason(mesh: &Mesh) -> String {
    assert_eq!(mesh.weights(), weights(&[("v1", 100), ("v2", 0)]));
    let state = mesh.state().expect("a rollout state");
    state.reason.expect("a reason")
}

/// `kill -TERM` to a driver.
fn sigterm(driver: &std::process::Child) -> std::process::ExitStatus {
    std::process::Command::new("kill")
        .args(["-TERM", &driver.id().to_string()])
        .status()
        .expect("running kill")
}

fn healthy_canary_promotes(b: Backend) {
    let mesh = Mesh::start_on(b, Behaviour::healthy());
    let (out, _) = mesh.rollout(&["--steps", "20,50,100"]).run_code(0);
    assert_eq!(mesh.weights(), weights(&[("v1", 0), ("v2", 100)]));
    let s = mesh.state().expect("state");
    assert_eq!(
        (s.phase, s.ending),
        (Phase::Promoted, Some(Ending::Promoted))
    );
    assert_eq!(
        s.history.len(),
        3,
        "one passing analysis per step: {:?}",
        s.history
    );
    assert!(out.contains("PROMOTED"), "{out}");
    assert!(out.contains("step 3/3: v1=0 v2=100"), "{out}");
    // The final summary table lists every step.
    assert!(out.contains("│ 3    ┆ 100%"), "{out}");
}

fn ten_percent_failing_canary_rolls_back_within_threshold(b: Backend) {
    let mesh = Mesh::start_on(b, Behaviour::healthy().failing("v2", 0.10));
    // `--threshold` failing windows is the window rule's (the sequential
    // rule rolls back at its first rejection).
    mesh.rollout(&words("--steps 20,50,100 --threshold 2 --analysis window"))
        .run_code(3);
    assert_eq!(mesh.weights(), weights(&[("v1", 100), ("v2", 0)]));
    let s = mesh.state().expect("state");
    assert_eq!((s.phase, s.failed_checks), (Phase::RolledBack, 2));
    let analyses: u32 = s.history.iter().map(|h| h.analyses).sum();
    assert_eq!(
        analyses, 2,
        "rolled back after `threshold` failing windows: {:?}",
        s.history
    );
    let reason = s.reason.unwrap();
    assert!(
        reason.starts_with("analysis failed 2 time(s) (threshold 2): v2: success rate"),
        "{reason}"
    );
    let record = s.history[0].records.last().unwrap();
    assert!(record.canary.success_rate.unwrap() < 95.0, "{record:?}");
    assert!(s.verification.is_some_and(|v| v.contains("recovered")));
}

fn p99_regression_rolls_back(b: Backend) {
    let mesh = Mesh::start_on(b, Behaviour::healthy().slow("v2", 400.0));
    mesh.rollout(&words(
        "--steps 50,100 --max-p99 100ms --threshold 1 --analysis window",
    ))
    .run_code(3);
    let reason = rolled_back_reason(&mesh);
    assert!(
        reason.contains("v2: p99 497.5ms, threshold <= 100ms"),
        "{reason}"
    );
}

fn metrics_source_down_rolls_back(b: Backend) {
    let mesh = Mesh::start_on(b, Behaviour::healthy());
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut cmd = mesh.meshctl(&words("rollout start discounts --to v2 --interval 200ms"));
    cmd.args(["--metrics", &url, "--threshold", "2"]);
    cmd.run_code(3);
    let reason = rolled_back_reason(&mesh);
    assert!(
        reason.contains(&format!("metrics source {url} is unreachable")),
        "{reason}"
    );
}

fn too_little_traffic_is_inconclusive_not_a_pass(b: Backend) {
    let mesh = Mesh::start_on(b, Behaviour::healthy().rate(1.0));
    let (out, _) = mesh
        .rollout(&words(
            "--steps 10,100 --min-requests 1000 --timeout 1500ms",
        ))
        .run_code(4);
    assert_eq!(mesh.weights(), weights(&[("v1", 100), ("v2", 0)]));
    let s = mesh.state().unwrap();
    assert_eq!(
        (s.phase, s.ending, s.failed_checks),
        (Phase::RolledBack, Some(Ending::TimedOut), 0)
    );
    let reason = s.reason.unwrap();
    assert!(
        reason.starts_with("inconclusive: ")
            && reason.ends_with(" canary requests < 1000 required"),
        "{reason}"
    );
    assert!(out.contains("[hold]"), "{out}");
    // Held analyses never passed the step.
    assert_eq!(s.history.len(), 1);
}

fn manual_promotion_pauses_then_promote_from_another_process(b: Backend) {
    let mesh = Mesh::start_on(b, Behaviour::healthy());
    let mut driver = mesh.drive(&["--steps", "20,50", "--manual-promotion"]);
    let paused = mesh.wait_for("Paused", |s| s.phase == Phase::Paused);
    assert_eq!(paused.weights_text(), "v1=50 v2=50");
    let (code, out, err) = mesh.meshctl(&["rollout", "status"]).run();
    assert_eq!(code, 5, "status of a paused rollout exits 5\n{out}{err}");
    assert!(
        out.contains("Paused") && out.contains("meshctl promote"),
        "{out}"
    );
    let (out, _) = mesh.meshctl(&["promote", "discounts"]).run_code(0);
    assert!(out.contains("discounts: promoted: v1=0 v2=100"), "{out}");
    assert_eq!(exit_code(&mut driver), Some(0));
    assert_eq!(mesh.weights(), weights(&[("v1", 0), ("v2", 100)]));
}

fn no_wait_on_pause_exits_5(b: Backend) {
    let mesh = Mesh::start_on(b, Behaviour::healthy());
    mesh.rollout(&["--steps", "30", "--manual-promotion", "--no-wait-on-pause"])
        .run_code(5);
    assert_eq!(mesh.weights(), weights(&[("v1", 70), ("v2", 30)]));
}

fn rollback_from_another_process_stops_the_driver(b: Backend) {
    let mesh = Mesh::start_on(b, Behaviour::healthy());
    let mut driver = mesh.drive_slowly(&[]);
    mesh.meshctl(&["rollback"]).run_code(0);
    assert_eq!(exit_code(&mut driver), Some(3));
    assert_eq!(mesh.weights(), weights(&[("v1", 100), ("v2", 0)]));
    let s = mesh.state().unwrap();
    assert!(
        s.reason
            .unwrap()
            .starts_with("rolled back by `meshctl rollback`")
    );
}

fn sigterm_mid_rollout_rolls_back(b: Backend) {
    let mesh = Mesh::start_on(b, Behaviour::healthy());
    let mut driver = mesh.drive_slowly(&[]);
    assert!(sigterm(&driver).success());
    assert_eq!(exit_code(&mut driver), Some(3));
    let reason = rolled_back_reason(&mesh);
    let interrupted = "interrupted (SIGINT/SIGTERM); rolled back";
    assert!(reason.starts_with(interrupted), "{reason}");
}

fn sigterm_with_on_interrupt_pause_leaves_paused(b: Backend) {
    let mesh = Mesh::start_on(b, Behaviour::healthy());
    let mut driver = mesh.drive_slowly(&["--on-interrupt", "pause"]);
    sigterm(&driver);
    assert_eq!(exit_code(&mut driver), Some(5));
    let s = mesh.state().unwrap();
    assert_eq!(s.phase, Phase::Paused);
    assert_eq!(
        mesh.weights(),
        s.weights,
        "the recorded weights are the applied ones"
    );
    mesh.meshctl(&["rollback", "discounts"]).run_code(0);
    assert_eq!(mesh.weights(), weights(&[("v1", 100), ("v2", 0)]));
}

fn kill_9_then_rollback_restores_v1(b: Backend) {
    let mesh = Mesh::start_on(b, Behaviour::healthy());
    let mut driver = mesh.drive_slowly(&[]);
    driver.kill().expect("kill -9");
    let _ = driver.wait();
    let s = mesh.state().unwrap();
    assert!(
        active(&s),
        "a killed driver leaves the rollout recorded as in progress"
    );
    assert_eq!(
        mesh.weights(),
        s.weights,
        "the recorded weights are the applied ones"
    );
    // Status works from the recorded state.
    let (out, _) = mesh
        .meshctl(&words("rollout status discounts -o json"))
        .run_code(0);
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("status JSON");
    assert_eq!(json["state"]["phase"], "Progressing");
    // A new rollout is refused while the lease of the dead driver is live, or the state is active.
    let (_, err) = mesh.rollout(&["--steps", "50"]).run_code(1);
    assert!(err.contains("already"), "{err}");
    mesh.meshctl(&["rollback"]).run_code(0);
    assert_eq!(mesh.weights(), weights(&[("v1", 100), ("v2", 0)]));
    let (code, out, _) = mesh.meshctl(&["rollout", "status"]).run();
    assert_eq!(code, 3, "status of a rolled-back rollout exits 3");
    assert!(out.contains("RolledBack"), "{out}");
}

fn json_events_are_one_valid_object_per_line(b: Backend) {
    let mesh = Mesh::start_on(b, Behaviour::healthy());
    let (out, _) = mesh
        .rollout(&["--steps", "50,100", "-o", "json"])
        .run_code(0);
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"started"));
    assert_eq!(kinds.last(), Some(&"promoted"));
    assert!(
        kinds.contains(&"step_started") && kinds.contains(&"analysis"),
        "{kinds:?}"
    );
    let analysis = events.iter().find(|e| e["event"] == "analysis").unwrap();
    assert_eq!(analysis["record"]["verdict"], "pass");
    assert!(analysis["record"]["canary"]["requests"].as_u64().unwrap() >= 10);
    // The sequential rule's evidence: the running p-value of each test.
    let tests = &analysis["record"]["evidence"]["tests"];
    assert_eq!(tests[0]["test"], "vs-baseline");
    assert!(tests[0]["p_value"].is_number(), "{analysis}");
    assert!(events.iter().all(|e| e["time"].is_string()));
}

#[test]
fn bad_flags_name_the_flag_and_the_fix() {
    let mesh = Mesh::start(Behaviour::healthy());
    let (_, err) = mesh.rollout(&["--steps", "50,20"]).run_code(1);
    assert!(
        err.contains("--steps \"50,20\": steps must increase: 20 comes after 50"),
        "{err}"
    );
    let (_, err) = mesh.rollout(&["--interval", "soon"]).run_code(1);
    assert!(
        err.contains("--interval \"soon\": \"soon\" is not a duration"),
        "{err}"
    );
    let (_, err) = mesh
        .meshctl(&[
            "rollout",
            "start",
            "discounts",
            "--to",
            "v9",
            "--metrics",
            &mesh.metrics_url,
        ])
        .run_code(1);
    assert!(
        err.contains("DestinationRule \"discounts\" has no subset \"v9\""),
        "{err}"
    );
    let (_, err) = mesh.meshctl(&["promote", "nope"]).run_code(1);
    assert!(err.contains("VirtualService \"nope\" not found"), "{err}");
    let (_, err) = mesh
        .meshctl(&words(
            "rollout start discounts --to v2 --metrics localhost:15000",
        ))
        .run_code(1);
    assert!(
        err.contains("--metrics \"localhost:15000\": \"localhost:15000\" is not an http(s) URL"),
        "{err}"
    );
    let mut cmd = crate::util::meshctl();
    cmd.args(["--target", "local:", "rollback"]);
    let (_, err) = cmd.run_code(1);
    assert!(err.contains("--target \"local:\" is not valid"), "{err}");
    let _ = mesh.path();
}

#[test]
fn defaults_come_from_the_spec_file() {
    let mesh = Mesh::start(Behaviour::healthy().failing("v2", 0.5));
    let spec = mesh.path().join("spec").join("meshctl.yaml");
    std::fs::create_dir_all(spec.parent().unwrap()).unwrap();
    std::fs::write(
        &spec,
        format!(
            "service: discounts\nversions: [v1, v2]\nrollout:\n  steps: [40, 100]\n  interval: 200ms\n  threshold: 1\n  minRequests: 5\nmetrics:\n  proxy: {}\n",
            mesh.metrics_url
        ),
    )
    .unwrap();
    let mut cmd = mesh.meshctl(&words("rollout start --to v2 -o json"));
    cmd.current_dir(spec.parent().unwrap());
    let (out, _) = cmd.run_code(3);
    let started: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(started["steps"], serde_json::json!([40, 100]));
    assert_eq!(started["interval_ms"], 200);
    assert_eq!(started["metrics"], mesh.metrics_url);
    let s = mesh.state().unwrap();
    assert_eq!((s.settings.threshold, s.failed_checks), (1, 1));
}

#[test]
fn status_explains_the_decision() {
    let mesh = Mesh::start(Behaviour::healthy().failing("v2", 0.2));
    mesh.rollout(&["--steps", "50,100", "--threshold", "1"])
        .run_code(3);
    let (out, _) = mesh
        .meshctl(&["rollout", "status", "discounts"])
        .run_code(3);
    for needle in [
        "RolledBack",
        "reason: the sequential analysis rejected v2: ",
        "evidence over ",
        "v2 (canary)",
        "v1 (baseline)",
        "vs-baseline",
        "success-rate",
        "max-p99",
        "verification: v1: success rate",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
    let events = std::fs::read_to_string(mesh.path().join(".meshctl/events.jsonl")).unwrap();
    assert!(
        events
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
    assert!(events.contains("\"reason\":\"RolledBack\""), "{events}");
}

/// Routes 50/50 by hand (no rollout), so both versions get traffic.
fn at_half(mesh: &Mesh) {
    std::fs::write(
        mesh.path().join("discounts.yaml"),
        mesh_test_support::discounts_at(50, 50),
    )
    .unwrap();
    assert_eq!(mesh.weights(), weights(&[("v1", 50), ("v2", 50)]));
    mesh.wait_for_requests("v1");
    mesh.wait_for_requests("v2");
}

/// `meshctl analyze discounts --compare v1 v2` on the mesh's metrics with
/// `flags`; it must exit `code`. Stdout.
fn analyze(mesh: &Mesh, flags: &str, code: i32) -> String {
    mesh.meshctl(&words("analyze discounts --compare v1 v2"))
        .args(["--metrics", &mesh.metrics_url])
        .args(words(flags))
        .run_code(code)
        .0
}

#[test]
fn analyze_judges_live_traffic_without_moving_weights() {
    let healthy = Mesh::start(Behaviour::healthy());
    at_half(&healthy);
    let out = analyze(&healthy, "--for 500ms --min-requests 10", 0);
    assert!(
        out.starts_with("discounts: pass: no test rejected: v2 errors 0 of "),
        "{out}"
    );
    assert!(out.contains("vs-baseline"), "{out}");
    assert_eq!(
        healthy.weights(),
        weights(&[("v1", 50), ("v2", 50)]),
        "analyze never moves weights"
    );

    let broken = Mesh::start(Behaviour::healthy().failing("v2", 0.2));
    at_half(&broken);
    let out = analyze(&broken, "--for 500ms --min-requests 10 -o json", 3);
    let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(json["record"]["verdict"], "fail");

    // v2 gets no traffic at v1=100: inconclusive, never a pass.
    let idle = Mesh::start(Behaviour::healthy());
    idle.wait_for_requests("v1");
    let out = analyze(&idle, "--for 300ms", 4);
    assert!(out.contains("inconclusive: 0 canary requests"), "{out}");

    let (_, err) = idle
        .meshctl(&words("analyze discounts --compare v1 V2 --for 1s"))
        .run_code(1);
    assert!(
        err.contains("--compare: \"V2\" is not a valid version name"),
        "{err}"
    );
    let (_, err) = idle
        .meshctl(&words("analyze discounts --compare v1 v2 --for later"))
        .run_code(1);
    assert!(err.contains("--for \"later\" is not a duration"), "{err}");
}

#[test]
fn summary_and_junit_reports_hold_the_numbers() {
    let mesh = Mesh::start(Behaviour::healthy().failing("v2", 0.10));
    let (md, xml) = (
        mesh.path().join("summary.md"),
        mesh.path().join("junit.xml"),
    );
    let mut cmd = mesh.rollout(&[
        "--steps",
        "20,100",
        "--threshold",
        "2",
        "--analysis",
        "window",
    ]);
    cmd.arg("--summary").arg(&md).arg("--junit").arg(&xml);
    cmd.run_code(3);
    let s = mesh.state().unwrap();
    let record = s.history[0].records.last().unwrap();
    let md = std::fs::read_to_string(md).unwrap();
    assert!(
        md.starts_with("## meshctl rollout: discounts v1 → v2\n"),
        "{md}"
    );
    assert!(md.contains("**RolledBack** at v1=100 v2=0"), "{md}");
    let row = format!(
        "| 1 | 20% | 2 | Fail | {} | {:.2}% |",
        record.canary.requests,
        record.canary.success_rate.unwrap()
    );
    assert!(md.contains(&row), "missing {row:?} in\n{md}");
    assert!(md.contains("<svg") && md.contains("<polyline"), "{md}");
    let xml = std::fs::read_to_string(xml).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"meshctl rollout discounts\" tests=\"2\" failures=\"2\" skipped=\"0\""), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 2);
    assert_eq!(
        xml.matches("<failure message=\"analysis").count()
            + xml.matches("<failure message=\"v2: success rate").count(),
        2,
        "{xml}"
    );
    assert_eq!(xml.matches("</testcase>").count(), 2);
    assert!(xml.ends_with("</testsuite>\n"));
    // Well-formed XML, as a CI system's JUnit reader parses it.
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut cases, mut failures) = (0, 0);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)) => {
                match e.name().as_ref() {
                    b"testcase" => cases += 1,
                    b"failure" => failures += 1,
                    _ => {}
                }
            }
            Ok(_) => {}
            Err(e) => panic!("junit.xml is not well-formed XML: {e}\n{xml}"),
        }
    }
    assert_eq!((cases, failures), (2, 2), "{xml}");
}

/// The `started` event's interval of `--interval auto` on a mesh with `behaviour`.
fn auto_interval_ms(behaviour: Behaviour) -> u64 {
    use std::io::{BufRead, BufReader};
    let mesh = Mesh::start(behaviour);
    let mut cmd = mesh.meshctl(&words("rollout start discounts --to v2 --interval auto"));
    cmd.args([
        "--metrics",
        &mesh.metrics_url,
        "--success-rate",
        "90",
        "-o",
        "json",
    ]);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning");
    let line = BufReader::new(child.stdout.take().unwrap()).lines().next();
    let _ = child.kill();
    let _ = child.wait();
    let started: serde_json::Value =
        serde_json::from_str(&line.expect("a line").expect("stdout")).unwrap();
    assert_eq!(started["event"], "started");
    started["interval_ms"].as_u64().unwrap()
}

#[test]
fn interval_auto_bakes_longer_at_lower_traffic() {
    let busy = auto_interval_ms(Behaviour::healthy().rate(20.0));
    let quiet = auto_interval_ms(Behaviour::healthy().rate(1.0));
    assert!(quiet > busy, "quiet {quiet} ms vs busy {busy} ms");
    assert!(busy >= 1000);
}

#[test]
fn interval_auto_without_traffic_asks_for_an_interval() {
    let mesh = Mesh::start(Behaviour::healthy().rate(0.0));
    let mut cmd = mesh.meshctl(&words("rollout start discounts --to v2 --interval auto"));
    cmd.args(["--metrics", &mesh.metrics_url]);
    let (_, err) = cmd.run_code(1);
    assert!(
        err.contains("--interval auto: discounts got no requests in a 3s probe"),
        "{err}"
    );
    assert!(err.contains("give --interval (e.g. 30s)"), "{err}");
    assert_eq!(mesh.weights(), weights(&[("v1", 100)]), "nothing moved");
}

/// The `meshctl-ab` route while an `ab` rollout runs: first, matching only
/// the header, to v2.
fn ab_route(mesh: &Mesh) -> Option<meshproxy::istio::HttpRoute> {
    let vs = crate::rollout_harness::read_local(&mesh.path().join("discounts.yaml"))
        .expect("VirtualService");
    let first = vs.spec.http.first().cloned()?;
    (first.name.as_deref() == Some("meshctl-ab")).then_some(first)
}

/// An `ab` rollout driven in the background (`--match` and the flags in
/// `rest`), returned once it progresses; the driver and the state then.
fn drive_ab(mesh: &Mesh, rest: &str) -> (std::process::Child, RolloutState) {
    let mut flags = words("--strategy ab --match");
    flags.extend(words(rest));
    let driver = mesh.drive(&flags);
    let s = mesh.wait_for("the ab rollout to progress", |s| {
        s.phase == Phase::Progressing
    });
    (driver, s)
}

/// v1 is back at 100% and the rollback removed the match route.
fn rolled_back_without_match_route(mesh: &Mesh) {
    assert_eq!(mesh.weights(), weights(&[("v1", 100), ("v2", 0)]));
    let removed = ab_route(mesh).is_none();
    assert!(removed, "rollback removes the match route");
}

#[test]
fn ab_healthy_promotes_and_removes_the_match_route() {
    let mesh = Mesh::start(Behaviour::healthy());
    let (mut child, s) = drive_ab(&mesh, "header:X-Canary=true --iterations 3");
    assert_eq!(s.weights, weights(&[("v1", 100), ("v2", 0)]));
    let route = ab_route(&mesh).expect("the match route comes first while progressing");
    let m = &route.matches[0].headers["x-canary"];
    assert_eq!(
        *m,
        meshproxy::istio::StringMatch::Exact("true".into()),
        "{route:?}"
    );
    assert_eq!(route.route[0].destination.subset.as_deref(), Some("v2"));
    let status = wait_exit(&mut child, Duration::from_secs(120));
    assert_eq!(status.code(), Some(0));
    let s = mesh.state().expect("state");
    assert_eq!(s.phase, Phase::Promoted);
    assert_eq!(s.history.len(), 3, "one analysis per iteration");
    assert!(s.history.iter().all(|h| h.weight == 0), "{:?}", s.history);
    assert_eq!(mesh.weights(), weights(&[("v1", 0), ("v2", 100)]));
    assert!(
        ab_route(&mesh).is_none(),
        "promotion removes the match route"
    );
}

#[test]
fn ab_failing_v2_rolls_back_and_removes_the_match_route() {
    let mesh = Mesh::start(Behaviour::healthy().failing("v2", 0.30));
    mesh.rollout(&words(
        "--strategy ab --match cookie:group=beta --iterations 3 --threshold 2 --analysis window",
    ))
    .run_code(3);
    let s = mesh.state().expect("state");
    assert_eq!((s.phase, s.failed_checks), (Phase::RolledBack, 2));
    assert!(
        matches!(&s.strategy, meshctl::rollout::strategy::Strategy::Ab { rule, .. } if rule.to_string() == "cookie:group=beta"),
        "{:?}",
        s.strategy
    );
    rolled_back_without_match_route(&mesh);
}

#[test]
fn ab_rollback_from_another_process_removes_the_match_route() {
    let mesh = Mesh::start(Behaviour::healthy());
    let (mut child, _) = drive_ab(&mesh, "header:x-canary=true --iterations 50");
    assert!(ab_route(&mesh).is_some());
    mesh.meshctl(&["rollback", "discounts"]).run_code(0);
    assert_eq!(exit_code(&mut child), Some(3));
    rolled_back_without_match_route(&mesh);
}

#[test]
fn ab_bad_match_names_the_flag_and_the_fix() {
    let mesh = Mesh::start(Behaviour::healthy());
    for (flags, message) in [
        (
            "--strategy ab --match x-canary=true",
            "--match \"x-canary=true\": missing the `header:` or `cookie:` prefix; use `header:NAME=VALUE`",
        ),
        ("--strategy ab", "--strategy ab needs --match"),
    ] {
        let (_, err) = mesh.rollout(&words(flags)).run_code(1);
        assert!(err.contains(message), "{flags}: {err}");
    }
    assert!(ab_route(&mesh).is_none());
}

#[test]
fn mirror_rollback_from_another_process_removes_the_mirror() {
    use meshctl::rollout::strategy::Stage;
    let mesh = Mesh::start(Behaviour::healthy());
    let mut child = mesh.drive(&["--strategy", "mirror", "--iterations", "50"]);
    let s = mesh.wait_for("the mirror stage", |s| s.stage == Stage::Mirror);
    assert_eq!(s.weights, weights(&[("v1", 100), ("v2", 0)]));
    let (out, _) = mesh
        .meshctl(&words("rollout status discounts -o json"))
        .run_code(0);
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("status JSON");
    assert_eq!(json["state"]["stage"], "mirror");
    let text = std::fs::read_to_string(mesh.path().join("discounts.yaml")).unwrap();
    assert!(
        text.contains("mirror:") && text.contains("mirrorPercentage:"),
        "{text}"
    );
    mesh.meshctl(&["rollback", "discounts"]).run_code(0);
    assert_eq!(exit_code(&mut child), Some(3));
    let text = std::fs::read_to_string(mesh.path().join("discounts.yaml")).unwrap();
    assert!(
        !text.contains("mirror:") && !text.contains("mirrorPercentage"),
        "{text}"
    );
    let s = mesh.state().expect("state");
    assert_eq!((s.phase, s.stage), (Phase::RolledBack, Stage::Weighted));
    assert_eq!(mesh.weights(), weights(&[("v1", 100), ("v2", 0)]));
}
