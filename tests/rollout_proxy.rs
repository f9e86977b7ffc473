//! The `ab`, `mirror` and `bluegreen` strategies end to end through a real
//! meshproxy (in process, watching a local directory target), real v1/v2
//! upstreams on 127.0.0.1:0 that log every request they get, a bounded
//! load generator that records every response, and the real `meshctl`
//! binary driving the rollout with meshproxy's own `/metrics` as the source.
//!
//! Every request carries `x-seq: N`; the upstreams log the sequence number
//! and whether the request was a mirrored copy (`Host: discounts-shadow`),
//! so the tests can tell which client response belonged to a mirrored
//! request without timing assumptions.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use meshctl::rollout::state::{Phase, RolloutState};
use meshctl::rollout::strategy::{AB_ROUTE, Stage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use mesh_test_support::meshctl::words;

use crate::rollout_harness::{
    Backend, Protocol, Proxied, has_ab_route, read_local as read_vs, runtime, wait_exit,
};

/// How an upstream answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// 200 to everything.
    Ok,
    /// 500 to everything.
    Fail,
    /// 500 to real requests, 200 to mirrored copies: healthy in a mirror
    /// preview, broken once it serves clients.
    FailReal,
    /// 200 to everything, mirrored copies after 2 s.
    SlowShadow,
}

/// One request an upstream received.
#[derive(Clone, Debug)]
struct Seen {
    seq: Option<u64>,
    shadow: bool,
    canary_header: bool,
}

/// One response the load generator got.
#[derive(Clone, Debug)]
pub(crate) struct Got {
    pub(crate) seq: u64,
    pub(crate) status: u16,
    pub(crate) served_by: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// An upstream answering with `x-served-by: VERSION` and body `VERSION`.
async fn upstream(version: &'static str, answer: Answer, log: Log) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 2048];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf)).await {
                        Ok(Ok(0) | Err(_)) | Err(_) => return,
                        Ok(Ok(n)) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let header = |name: &str| {
                    text.lines().find_map(|l| {
                        l.strip_prefix(&format!("{name}:"))
                            .map(|v| v.trim().to_owned())
                    })
                };
                let shadow = header("host").is_some_and(|h| h.starts_with("discounts-shadow"));
                log.lock().expect("log").push(Seen {
                    seq: header("x-seq").and_then(|s| s.parse().ok()),
                    shadow,
                    canary_header: header("x-canary").as_deref() == Some("true"),
                });
                if answer == Answer::SlowShadow && shadow {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                let status = match (answer, shadow) {
                    (Answer::Ok | Answer::SlowShadow, _) | (Answer::FailReal, true) => "200 OK",
                    (Answer::Fail, _) | (Answer::FailReal, false) => "500 Internal Server Error",
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\nx-served-by: {version}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{version}",
                    version.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    addr
}

/// `GET /` through the proxy with `Host: discounts`; `None` on a transport error.
fn get(proxy: SocketAddr, seq: u64, canary: bool) -> Option<Got> {
    let mut conn = TcpStream::connect_timeout(&proxy, Duration::from_secs(5)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    conn.set_write_timeout(Some(Duration::from_secs(10))).ok()?;
    let extra = if canary { "x-canary: true\r\n" } else { "" };
    write!(
        conn,
        "GET / HTTP/1.1\r\nhost: discounts\r\nx-seq: {seq}\r\n{extra}connection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    let status = text.get(9..12)?.parse().ok()?;
    let served_by = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-served-by:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    Some(Got {
        seq,
        status,
        served_by,
    })
}

/// A bounded load generator: sequential requests until stopped (at most
/// 3 minutes / 40 000 requests); every `canary_every`-th carries `x-canary: true`.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<Got>>,
}

impl Load {
    pub(crate) fn start(proxy: SocketAddr, canary_every: Option<u64>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let deadline = std::time::SystemTime::now() + Duration::from_secs(180);
            let mut got = Vec::new();
            for seq in 0..40_000u64 {
                if flag.load(Ordering::SeqCst) || std::time::SystemTime::now() > deadline {
                    break;
                }
                let canary = canary_every.is_some_and(|n| seq % n == 0);
                if let Some(g) = get(proxy, seq, canary) {
                    got.push(g);
                }
                std::thread::sleep(Duration::from_millis(4));
            }
            got
        });
        Self { stop, handle }
    }

    pub(crate) fn stop(self) -> Vec<Got> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("load generator")
    }
}

/// meshproxy and the logging upstreams on the local target directory.
pub(crate) struct ProxyMesh {
    mesh: Proxied,
    v1: Log,
    v2: Log,
}

impl ProxyMesh {
    pub(crate) fn start(v2: Answer) -> Self {
        let rt = runtime();
        let (v1_log, v2_log): (Log, Log) = (Arc::default(), Arc::default());
        let (a1, a2) = rt.block_on(async {
            (
                upstream("v1", Answer::Ok, v1_log.clone()).await,
                upstream("v2", v2, v2_log.clone()).await,
            )
        });
        Self {
            mesh: Proxied::start(
                rt,
                Backend::Local,
                Protocol::Http,
                &[("v1", a1), ("v2", a2)],
            ),
            v1: v1_log,
            v2: v2_log,
        }
    }

    fn seen(&self, log: &Log) -> Vec<Seen> {
        log.lock().expect("log").clone()
    }
}

impl std::ops::Deref for ProxyMesh {
    type Target = Proxied;

    fn deref(&self) -> &Proxied {
        &self.mesh
    }
}

/// What the target file shows: weights, a mirror on any route, a match route.
type Shown = (BTreeMap<String, u8>, bool, bool);

/// Records every distinct (weights, mirror?, match route?) the target file
/// shows, polling every 5 ms until stopped (bounded: 3 minutes).
struct Watch {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<Shown>>,
}

impl Watch {
    fn start(path: &Path) -> Self {
        let path = path.join("discounts.yaml");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut seen: Vec<Shown> = Vec::new();
            for _ in 0..36_000 {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Some(mut vs) = read_vs(&path) {
                    let mirror = vs.spec.http.iter().any(|r| r.mirror.is_some());
                    let ab = has_ab_route(&vs);
                    // The weights of the weighted route, behind a match route.
                    vs.spec.http.retain(|r| r.name.as_deref() != Some(AB_ROUTE));
                    let weights = meshctl::rollout::routes::current_weights(&vs);
                    let now = (weights, mirror, ab);
                    if seen.last() != Some(&now) {
                        seen.push(now);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            seen
        });
        Self { stop, handle }
    }

    /// Stops; what the file showed after the initial `v1: 100` route (the
    /// watcher may start after meshctl's first write on a loaded machine).
    fn stop(self) -> Vec<Shown> {
        self.stop.store(true, Ordering::SeqCst);
        let initial: Shown = (w(&[("v1", 100)]), false, false);
        self.handle
            .join()
            .expect("watcher")
            .into_iter()
            .skip_while(|s| *s == initial)
            .collect()
    }
}

fn w(pairs: &[(&str, u8)]) -> BTreeMap<String, u8> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// What one rollout through the mesh showed.
struct Run {
    /// What the target file showed after the initial route.
    seen: Vec<Shown>,
    /// What the clients got.
    got: Vec<Got>,
    /// The final rollout state.
    state: RolloutState,
}

/// Starts the mesh with v2 answering as `v2`, the load (every
/// `canary_every`-th request with `x-canary: true`) and a watch on the
/// target; runs `rollout start` with `flags`, which must exit `code`.
fn run(v2: Answer, canary_every: Option<u64>, flags: &str, code: i32) -> (ProxyMesh, Run) {
    let mesh = ProxyMesh::start(v2);
    let load = Load::start(mesh.proxy, canary_every);
    let watch = Watch::start(mesh.path());
    let (actual, out, err) = mesh.rollout(&words(flags)).run();
    let seen = watch.stop();
    let got = load.stop();
    assert_eq!(actual, code, "stdout:\n{out}\nstderr:\n{err}");
    let state = mesh.state();
    let run = Run { seen, got, state };
    (mesh, run)
}

/// Asserts the VirtualService routes `weights` with no mirror (nor mirror
/// percentage) left on any route.
fn unmirrored_at(mesh: &ProxyMesh, weights: &[(&str, u8)]) {
    let vs = mesh.virtual_service();
    let no_mirror =
        |r: &meshproxy::istio::HttpRoute| r.mirror.is_none() && r.mirror_percentage.is_none();
    assert!(vs.spec.http.iter().all(no_mirror), "{vs:?}");
    assert_eq!(meshctl::rollout::routes::current_weights(&vs), w(weights));
}

/// The sequence numbers of requests v2 received as mirrored copies.
fn shadowed(seen: &[Seen]) -> BTreeSet<u64> {
    seen.iter()
        .filter(|s| s.shadow)
        .filter_map(|s| s.seq)
        .collect()
}

#[test]
fn mirror_healthy_v2_analyses_copies_then_steps_and_promotes() {
    let mesh = ProxyMesh::start(Answer::Ok);
    let load = Load::start(mesh.proxy, None);
    let md = mesh.path().join(".summary.md");
    let mut cmd = mesh.rollout(&words("--strategy mirror --iterations 2 --steps 50,100"));
    cmd.arg("--summary").arg(&md);
    let (code, out, err) = cmd.run();
    let got = load.stop();
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let md = std::fs::read_to_string(md).expect("summary");
    assert!(md.contains("| 1 | 0% mirror | 1 | Pass |"), "{md}");
    assert!(md.contains("| 3 | 50% | 1 | Pass |"), "{md}");
    for line in [
        "rolling out v1 -> v2 (mirror), steps [0, 0, 50, 100]",
        "step 1/4: v1=100 v2=0, mirroring 100% to v2",
        "step 3/4: v1=50 v2=50",
    ] {
        assert!(out.contains(line), "{out}");
    }

    let s = mesh.state();
    assert_eq!((s.phase, s.stage), (Phase::Promoted, Stage::Weighted));
    assert_eq!(s.steps, vec![0, 0, 50, 100]);
    // The mirror windows judged v2's mirrored copies against v1's real
    // traffic; the canary steps then counted v1's and v2's real requests
    // although v2's mirrored series were still exported.
    for h in &s.history {
        let r = h.records.last().expect("a record");
        assert!(r.baseline.requests > 0 || h.weight == 100, "{h:?}");
        assert!(r.canary.requests >= 10, "{h:?}");
    }
    unmirrored_at(&mesh, &[("v1", 0), ("v2", 100)]);

    // Every request mirrored to v2 was answered to its client by v1.
    let v2 = mesh.seen(&mesh.v2);
    let copies = shadowed(&v2);
    assert!(
        copies.len() >= 10,
        "v2 got {} mirrored copies",
        copies.len()
    );
    let by_seq: BTreeMap<u64, &Got> = got.iter().map(|g| (g.seq, g)).collect();
    for seq in &copies {
        if let Some(g) = by_seq.get(seq) {
            assert_eq!(
                (g.status, g.served_by.as_str()),
                (200, "v1"),
                "request {seq}"
            );
        }
    }
    assert!(
        v2.iter().any(|s| !s.shadow),
        "the canary steps served real v2 traffic"
    );

    // The promoted state to commit carries no mirror either.
    let (rendered, _) = mesh
        .meshctl(&words("render discounts --versions v1,v2 --promoted"))
        .run_code(0);
    assert!(!rendered.contains("mirror"), "{rendered}");
}

#[test]
fn mirror_failing_v2_rolls_back_while_clients_only_see_v1() {
    let flags = "--strategy mirror --mirror-percent 100 --iterations 3 --threshold 2";
    let (
        mesh,
        Run {
            seen,
            got,
            state: s,
            ..
        },
    ) = run(Answer::Fail, None, flags, 3);
    // The sequential rule rolls back at its first rejection.
    assert_eq!((s.phase, s.failed_checks), (Phase::RolledBack, 1));
    assert!(
        s.history.iter().all(|h| h.weight == 0),
        "rolled back within the mirror phase: {:?}",
        s.history
    );
    let record = s.last_record().expect("a record");
    assert!(record.canary.requests >= 10, "{record:?}");
    assert_eq!(record.canary.success_rate, Some(0.0), "{record:?}");
    assert!(
        record.baseline.requests > 0,
        "v1's real traffic counted: {record:?}"
    );
    // One write removed the mirror (weights untouched) and it was read back.
    assert_eq!(
        seen,
        vec![
            (w(&[("v1", 100), ("v2", 0)]), true, false),
            (w(&[("v1", 100), ("v2", 0)]), false, false),
        ]
    );
    unmirrored_at(&mesh, &[("v1", 100), ("v2", 0)]);
    assert!(
        s.verification
            .as_deref()
            .is_some_and(|v| v.contains("(recovered)")),
        "{:?}",
        s.verification
    );

    // Clients only ever saw v1, and v2 only ever got mirrored copies.
    assert!(got.len() >= 50, "{} responses", got.len());
    let bad: Vec<&Got> = got
        .iter()
        .filter(|g| g.status != 200 || g.served_by != "v1")
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} client responses not from v1: {:?}",
        bad.len(),
        got.len(),
        &bad[..bad.len().min(5)]
    );
    let v2 = mesh.seen(&mesh.v2);
    assert!(v2.len() >= 10 && v2.iter().all(|s| s.shadow), "{v2:?}");
}

#[test]
fn slow_mirror_fails_the_p99_check_without_slowing_clients() {
    let flags = "--strategy mirror --iterations 5 --threshold 1 --max-p99 500ms";
    let (_mesh, Run { got, state, .. }) = run(Answer::SlowShadow, None, flags, 3);
    let record = state.last_record().expect("a record");
    assert!(
        record.reason.contains("p99") && record.canary.p99_ms.is_some_and(|p| p >= 1000.0),
        "{record:?}"
    );
    // The copies took 2 s each; the client path did not wait for them: the
    // sequential load got far more answers than 2 s each would allow, all
    // from v1, and v1's own p99 stayed under the copies' delay.
    assert!(
        record.baseline.p99_ms.is_some_and(|p| p < 1000.0),
        "{record:?}"
    );
    assert!(got.len() >= 50, "{} responses", got.len());
    assert!(got.iter().all(|g| g.status == 200 && g.served_by == "v1"));
}

#[test]
fn bluegreen_healthy_switches_in_one_write() {
    let flags = "--strategy bluegreen --iterations 2";
    let (
        _mesh,
        Run {
            seen,
            got,
            state: s,
            ..
        },
    ) = run(Answer::Ok, None, flags, 0);
    assert_eq!(s.phase, Phase::Promoted);
    assert_eq!(s.steps, vec![0, 0, 100]);
    assert!(
        s.history.iter().all(|h| h.weight == 0 || h.weight == 100),
        "{:?}",
        s.history
    );
    // After the initial route, the target only ever showed v1 at 100% with
    // the mirror, then v2 at 100% without it: one switch write.
    let expected = vec![
        (w(&[("v1", 100), ("v2", 0)]), true, false),
        (w(&[("v1", 0), ("v2", 100)]), false, false),
    ];
    assert_eq!(seen, expected);
    assert!(got.iter().all(|g| g.status == 200));
    assert!(got.iter().any(|g| g.served_by == "v2"));
}

#[test]
fn bluegreen_with_match_previews_on_matched_requests_then_switches() {
    let flags = "--strategy bluegreen --match header:x-canary=true --iterations 2";
    let (mesh, Run { seen, state: s, .. }) = run(Answer::Ok, Some(3), flags, 0);
    assert_eq!(
        (s.phase, s.steps.clone()),
        (Phase::Promoted, vec![0, 0, 100])
    );
    // Preview: the match route with v1 at 100%; then one write: v2 at 100%
    // and the match route gone.
    assert_eq!(
        seen,
        vec![
            (w(&[("v1", 100), ("v2", 0)]), false, true),
            (w(&[("v1", 0), ("v2", 100)]), false, false),
        ]
    );
    // Before the switch v2 only got matched requests: the preview windows
    // counted at least `--min-requests` of them.
    for h in &s.history[..2] {
        assert_eq!(h.stage, Stage::Match);
        assert!(h.records.iter().any(|r| r.canary.requests >= 10), "{h:?}");
    }
    assert!(mesh.seen(&mesh.v2).iter().all(|r| !r.shadow));
}

#[test]
fn bluegreen_failure_after_the_switch_rolls_back_in_one_verified_write() {
    let flags = "--strategy bluegreen --iterations 1 --threshold 3";
    let (_mesh, Run { seen, state: s, .. }) = run(Answer::FailReal, None, flags, 3);
    assert_eq!((s.phase, s.failed_checks), (Phase::RolledBack, 1));
    let reason = s.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("post-switch analysis failed: v2 "),
        "{reason}"
    );
    assert_eq!(
        s.history.len(),
        2,
        "the preview passed, the post-switch analysis failed"
    );
    assert!(
        s.verification
            .as_deref()
            .is_some_and(|v| v.contains("recovered")),
        "{s:?}"
    );
    let expected = vec![
        (w(&[("v1", 100), ("v2", 0)]), true, false),
        (w(&[("v1", 0), ("v2", 100)]), false, false),
        (w(&[("v1", 100), ("v2", 0)]), false, false),
    ];
    assert_eq!(seen, expected, "switch and rollback are one write each");
}

#[test]
fn ab_only_matching_requests_reach_v2() {
    // Paused for promotion: exit 5.
    let flags = "--strategy ab --match header:x-canary=true --iterations 2 --manual-promotion --no-wait-on-pause";
    let (mesh, Run { got, state: s, .. }) = run(Answer::Ok, Some(4), flags, 5);
    assert_eq!((s.phase, s.stage), (Phase::Paused, Stage::Match));
    // Counted at the upstreams: v2 got only requests with the header.
    let v2 = mesh.seen(&mesh.v2);
    assert!(v2.len() >= 10, "v2 got {} requests", v2.len());
    assert!(v2.iter().all(|r| r.canary_header && !r.shadow), "{v2:?}");
    let v1 = mesh.seen(&mesh.v1);
    assert!(v1.iter().filter(|r| !r.canary_header).count() >= 30);
    let matched = got
        .iter()
        .filter(|g| g.seq % 4 == 0 && g.served_by == "v2")
        .count();
    assert!(matched >= 10, "{matched} matched requests served by v2");
    assert!(
        got.iter()
            .filter(|g| g.seq % 4 != 0)
            .all(|g| g.served_by == "v1")
    );

    mesh.meshctl(&["promote", "discounts"]).run_code(0);
    let vs = mesh.virtual_service();
    assert!(!has_ab_route(&vs), "{vs:?}");
    assert_eq!(
        meshctl::rollout::routes::current_weights(&vs),
        w(&[("v1", 0), ("v2", 100)])
    );
}

#[test]
fn mirror_promote_from_another_process_removes_the_mirror() {
    let mesh = ProxyMesh::start(Answer::Ok);
    let load = Load::start(mesh.proxy, None);
    let mut driver = mesh
        .rollout(&words(
            "--strategy mirror --iterations 50 --mirror-percent 50",
        ))
        .spawn_quiet();
    for _ in 0..600 {
        if read_vs(&mesh.path().join("discounts.yaml"))
            .is_some_and(|vs| vs.spec.http.iter().any(|r| r.mirror.is_some()))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let vs = mesh.virtual_service();
    assert_eq!(
        vs.spec.http[0].mirror_percentage.map(|p| p.value),
        Some(50.0),
        "{vs:?}"
    );
    let (out, _) = mesh
        .meshctl(&words("rollout status discounts -o json"))
        .run_code(0);
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("status JSON");
    assert_eq!(json["state"]["stage"], "mirror", "{json}");
    assert_eq!(
        json["state"]["strategy"],
        serde_json::json!({"kind": "mirror", "mirrorPercent": 50, "iterations": 50})
    );
    mesh.meshctl(&["promote", "discounts"]).run_code(0);
    let status = wait_exit(&mut driver, Duration::from_secs(60));
    load.stop();
    assert_eq!(status.code(), Some(0));
    unmirrored_at(&mesh, &[("v1", 0), ("v2", 100)]);
}

#[test]
fn strategy_flags_name_the_flag_and_the_fix() {
    let mesh = ProxyMesh::start(Answer::Ok);
    for (args, needle) in [
        (
            &["--strategy", "mirror", "--mirror-percent", "0"][..],
            "--mirror-percent 0 is out of range: use a whole percentage from 1 to 100",
        ),
        (
            &["--strategy", "mirror", "--mirror-percent", "150"][..],
            "--mirror-percent 150 is out of range",
        ),
        (
            &["--mirror-percent", "50"][..],
            "--mirror-percent only applies to --strategy mirror or bluegreen",
        ),
        (
            &["--strategy", "mirror", "--match", "header:a=b"][..],
            "--match only applies to --strategy ab or bluegreen",
        ),
        (
            &["--strategy", "bluegreen", "--steps", "50,100"][..],
            "--steps does not apply to --strategy bluegreen",
        ),
        (
            &[
                "--strategy",
                "bluegreen",
                "--match",
                "header:a=b",
                "--mirror-percent",
                "5",
            ][..],
            "--mirror-percent and --match both choose the bluegreen preview",
        ),
        (
            &["--strategy", "mirror", "--iterations", "0"][..],
            "--iterations must be at least 1 for --strategy mirror",
        ),
    ] {
        let (code, _, err) = mesh.rollout(args).run();
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // A mirror the user configured is not silently replaced.
    let text = std::fs::read_to_string(mesh.path().join("discounts.yaml")).unwrap();
    let with_mirror = text.replace(
        "      weight: 100\n",
        "      weight: 100\n    mirror: {host: audit}\n",
    );
    std::fs::write(mesh.path().join("discounts.yaml"), with_mirror).unwrap();
    let (_, err) = mesh.rollout(&["--strategy", "mirror"]).run_code(1);
    assert!(err.contains("already mirrors to audit"), "{err}");
    assert!(
        RolloutState::read(&mesh.virtual_service()).is_err(),
        "nothing written"
    );
}
