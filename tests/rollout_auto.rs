//! `rollout start --interval auto` per strategy, through the real binary on
//! the local directory target with the traffic simulator (issue 7,
//! traffic-aware steps): a mirror stage bakes from `--mirror-percent`, a
//! match stage from the share measured on its first window, and a match
//! stage nothing matches holds, says so, and ends inconclusive. One test
//! runs a `bluegreen` mirror preview through a real meshproxy under load
//! (the `rollout_proxy` harness).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use mesh_test_support::meshctl::words;

use crate::rollout_harness::{Behaviour, Mesh, wait_exit};

/// A running `rollout start -o json`, its events read line by line.
struct Events {
    child: Child,
    lines: mpsc::Receiver<Value>,
    stderr: std::thread::JoinHandle<String>,
}

impl Events {
    fn spawn(mesh: &Mesh, extra: &[&str]) -> Self {
        let mut cmd = mesh.rollout(&words("--interval auto --success-rate 90 -o json"));
        cmd.args(extra);
        Self::command(cmd)
    }

    fn command(mut cmd: crate::util::Meshctl) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning meshctl");
        let out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not one JSON event per line ({e}): {line}"));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Self {
            child,
            lines,
            stderr,
        }
    }

    /// The next event satisfying `pred` (bounded: 60 s).
    fn until(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        // Bounded: at most 60 one-second waits, and no more than 10,000 events.
        let (mut idle, mut seen) = (0, 0);
        while idle < 60 && seen < 10_000 {
            match self.lines.recv_timeout(Duration::from_secs(1)) {
                Ok(v) if pred(&v) => return v,
                Ok(_) => seen += 1,
                Err(mpsc::RecvTimeoutError::Timeout) => idle += 1,
                Err(e) => panic!("no {what} event: meshctl stopped ({e})"),
            }
        }
        panic!("no {what} event within 60 s")
    }

    /// Stops the rollout (SIGKILL) and returns its stderr.
    fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr.join().unwrap_or_default()
    }

    /// Waits for the exit (bounded) and returns the code and every remaining event.
    fn finish(mut self) -> (i32, Vec<Value>, String) {
        let status = wait_exit(&mut self.child, Duration::from_secs(90));
        let rest: Vec<Value> = self.lines.iter().collect();
        (
            status.code().unwrap_or(-1),
            rest,
            self.stderr.join().unwrap_or_default(),
        )
    }
}

fn is_bake(v: &Value, step: u64) -> bool {
    v["event"] == "bake" && v["step"] == step
}

/// The first mirror window's bake at `percent`, and stderr.
fn mirror_bake(percent: &str) -> (Value, String) {
    let mesh = Mesh::start(Behaviour::healthy().rate(0.2));
    let run = Events::spawn(
        &mesh,
        &[
            "--strategy",
            "mirror",
            "--mirror-percent",
            percent,
            "--iterations",
            "1",
            "--timeout",
            "20s",
        ],
    );
    let bake = run.until("bake", |v| is_bake(v, 0));
    (bake, run.kill())
}

#[test]
fn interval_auto_bakes_longer_at_a_lower_mirror_percent() {
    // 0.2 requests per 20 ms tick: about 10 requests/s to the service.
    let (full, full_err) = mirror_bake("100");
    let (small, small_err) = mirror_bake("5");
    for (b, share) in [(&full, 100.0), (&small, 5.0)] {
        assert_eq!(b["stage"], "mirror", "{b}");
        assert_eq!(b["share_percent"].as_f64(), Some(share), "{b}");
        assert_eq!(b["measured"], false, "{b}");
        let rate = b["rate"].as_f64().unwrap();
        assert!((3.0..=30.0).contains(&rate), "{b}");
    }
    let ms = |b: &Value| b["interval_ms"].as_u64().unwrap();
    // A twentieth of the copies (somewhat fewer needed against a baseline
    // twenty times larger): a longer bake for the same traffic (about 7 s
    // against 40 s, cut at 20 s).
    assert!(ms(&small) > ms(&full), "5%: {small}\n100%: {full}");
    assert!(
        small["message"]
            .as_str()
            .unwrap()
            .contains("step 1/5 (mirroring 5% of v1 to v2)"),
        "{small}"
    );
    // The 5% mirror window cannot gather its copies within --timeout 20s:
    // cut at the deadline, and the start-time warning names the step.
    assert_eq!(
        (small["capped"].as_bool(), full["capped"].as_bool()),
        (Some(true), Some(false))
    );
    assert!(
        small_err.contains("warning: --interval auto: step 1/5 (mirroring 5% of v1 to v2)"),
        "{small_err}"
    );
    assert!(
        small_err.contains("raise --timeout, --mirror-percent, or the traffic"),
        "{small_err}"
    );
    assert!(!full_err.contains("step 1/5 (mirroring"), "{full_err}");
}

#[test]
fn interval_auto_sizes_ab_windows_from_the_measured_match_share() {
    // 1 request per tick (about 50/s), 20% of them carry the match.
    let mesh = Mesh::start(Behaviour::healthy().rate(1.0));
    let run = Events::spawn(
        &mesh,
        &words("--strategy ab --match header:x-canary=true --iterations 2"),
    );
    let probe = run.until("bake", |v| is_bake(v, 0));
    assert_eq!(probe["stage"], "match", "{probe}");
    assert!(probe.get("share_percent").is_none(), "{probe}");
    assert!(probe["interval_ms"].as_u64().unwrap() >= 3000, "{probe}");
    assert!(
        probe["message"].as_str().unwrap().contains("probing"),
        "{probe}"
    );
    let (code, rest, err) = run.finish();
    assert_eq!(code, 0, "{rest:?}\n{err}");
    let sized = rest
        .iter()
        .find(|v| is_bake(v, 1))
        .unwrap_or_else(|| panic!("no bake for the second match window: {rest:?}"));
    assert_eq!(sized["measured"], true, "{sized}");
    let share = sized["share_percent"].as_f64().unwrap();
    assert!((12.0..=28.0).contains(&share), "measured {share}%: {sized}");
    let text = sized["message"].as_str().unwrap();
    assert!(text.contains("of requests matched"), "{text}");
    assert!(text.contains("(measured)"), "{text}");
    assert_eq!(mesh.weights().get("v2"), Some(&100));
}

#[test]
fn interval_auto_holds_when_nothing_matches_and_ends_inconclusive() {
    let mesh = Mesh::start(Behaviour::healthy().rate(1.0).matching(0));
    let run = Events::spawn(
        &mesh,
        &words("--strategy ab --match header:x-canary=true --iterations 1 --timeout 8s"),
    );
    let (code, rest, err) = run.finish();
    assert_eq!(code, 4, "timed out, inconclusive: {rest:?}\n{err}");
    let held = rest
        .iter()
        .find(|v| v["event"] == "bake" && v["share_percent"].as_f64() == Some(0.0))
        .unwrap_or_else(|| panic!("no bake after an empty match window: {rest:?}"));
    let text = held["message"].as_str().unwrap();
    assert!(text.contains("(match, nothing matched)"), "{text}");
    assert!(text.contains("no request matched so far"), "{text}");
    assert!(
        text.contains("ends inconclusive at the progress deadline"),
        "{text}"
    );
    // Nothing ran past the deadline: every window fits in 8 s from the step start.
    let rolled = rest
        .iter()
        .find(|v| v["event"] == "rolled_back")
        .expect("rolled_back event");
    assert_eq!(rolled["timed_out"], true, "{rolled}");
    assert_eq!(mesh.weights().get("v1"), Some(&100));
}

/// The mirror window's bake and the run's events, through a real meshproxy
/// under load (`--strategy bluegreen`, mirror preview at `percent`); with
/// `to_the_end` the exit code, else meshctl is stopped once the first window
/// is sized.
fn bluegreen_through_meshproxy(percent: &str, to_the_end: bool) -> (Value, Vec<Value>, i32) {
    use crate::rollout_proxy::{Answer, Load, ProxyMesh};
    let mesh = ProxyMesh::start(Answer::Ok);
    let load = Load::start(mesh.proxy, None);
    let cmd = mesh.meshctl(&[
        "rollout",
        "start",
        "discounts",
        "--to",
        "v2",
        "--metrics",
        &mesh.metrics_url,
        "--strategy",
        "bluegreen",
        "--mirror-percent",
        percent,
        "--iterations",
        "1",
        "--interval",
        "auto",
        "--success-rate",
        "90",
        "--min-requests",
        "10",
        "-o",
        "json",
    ]);
    let run = Events::command(cmd);
    let (bake, events, code) = if to_the_end {
        let (code, events, err) = run.finish();
        let bake = events
            .iter()
            .find(|v| is_bake(v, 0))
            .cloned()
            .unwrap_or_else(|| panic!("no bake for the mirror window: {events:?}\n{err}"));
        (bake, events, code)
    } else {
        let bake = run.until("bake", |v| is_bake(v, 0));
        run.kill();
        (bake, Vec::new(), -1)
    };
    load.stop();
    (bake, events, code)
}

#[test]
fn interval_auto_through_meshproxy_bakes_a_small_mirror_longer() {
    let (full, _, _) = bluegreen_through_meshproxy("100", false);
    let (small, events, code) = bluegreen_through_meshproxy("1", true);
    assert_eq!(code, 0, "{events:?}");
    for (b, share) in [(&full, 100.0), (&small, 1.0)] {
        assert_eq!(b["stage"], "mirror", "{b}");
        assert_eq!(b["share_percent"].as_f64(), Some(share), "{b}");
    }
    let ms = |b: &Value| b["interval_ms"].as_u64().unwrap();
    println!("100%: {}\n1%: {}", full["message"], small["message"]);
    assert!(ms(&small) > ms(&full), "1%: {small}\n100%: {full}");
    // The 1% mirror preview passed on the copies it was sized for, and the
    // switched step was sized for all of the traffic with no baseline left.
    let mirror = events
        .iter()
        .rfind(|v| v["event"] == "analysis" && v["step"] == 0)
        .expect("the mirror window's analysis");
    assert_eq!(mirror["record"]["verdict"], "pass", "{mirror}");
    let copies = mirror["record"]["canary"]["requests"].as_u64().unwrap();
    assert!(copies >= 10, "{mirror}");
    let switched = events
        .iter()
        .find(|v| is_bake(v, 1))
        .expect("the switched window's bake");
    assert_eq!(switched["stage"], "switched", "{switched}");
    assert_eq!(
        switched["share_percent"].as_f64(),
        Some(100.0),
        "{switched}"
    );
    assert!(
        events.iter().any(|v| v["event"] == "promoted"),
        "{events:?}"
    );
}

/// `rollout.interval: auto` in meshctl.yaml sizes the windows like the flag;
/// a fixed `--interval` overrides it.
#[test]
fn interval_auto_from_the_spec_file_and_a_flag_overrides_it() {
    let mesh = Mesh::start(Behaviour::healthy().rate(1.0));
    let spec = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::fs::write(
        spec.path(),
        "service: discounts\nversions: [v1, v2]\nrollout:\n  interval: auto\n",
    )
    .unwrap();
    let start = |mesh: &Mesh, extra: &[&str]| {
        let mut cmd = mesh.meshctl(&words("rollout start discounts --to v2"));
        cmd.arg("-f").arg(spec.path());
        cmd.args(["--metrics", &mesh.metrics_url, "--min-requests", "10"]);
        cmd.args(["--success-rate", "90", "--timeout", "20s", "-o", "json"]);
        cmd.args(extra);
        Events::command(cmd)
    };
    let run = start(&mesh, &[]);
    let bake = run.until("bake", |v| is_bake(v, 0));
    assert_eq!(bake["share_percent"].as_f64(), Some(10.0), "{bake}");
    run.kill();

    // --interval 300ms wins over the file: fixed windows, no bake events
    // (a fresh mesh: the killed rollout above is still in progress there).
    let mesh = Mesh::start(Behaviour::healthy().rate(1.0));
    let run = start(&mesh, &["--interval", "300ms"]);
    let started = run.until("started", |v| v["event"] == "started");
    assert_eq!(started["interval_ms"].as_u64(), Some(300), "{started}");
    let (code, rest, err) = run.finish();
    assert_eq!(code, 0, "{err}");
    assert!(
        !rest.iter().any(|v| v["event"] == "bake"),
        "no bake events with a fixed --interval"
    );
}
