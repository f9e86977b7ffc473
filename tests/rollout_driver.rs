//! The rollout driver in-process: generic over `Target` and `MetricsSource`,
//! here the local directory target with a synthetic metrics source whose
//! traffic follows the applied weights. Interval logic runs on a paused
//! clock; webhooks are exercised against real loopback servers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshctl::metrics::{MetricsError, MetricsSource, Snapshot, VersionCounters};
use meshctl::rollout::analysis::Thresholds;
use meshctl::rollout::engine::{
    Driver, DriverOptions, EngineError, Finish, Observer, RolloutEvent,
};
use meshctl::rollout::machine::OnInterrupt;
use meshctl::rollout::machine::Plan;
use meshctl::rollout::state::{Ending, Phase, RolloutState};
use meshctl::rollout::webhook::{Hook, WebhookConfig, Webhooks};
use meshctl::routing as routes;
use meshctl::target::Target;
use meshctl::target::local::LocalTarget;
use meshctl::traffic::Weight;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::rollout_harness::RESOURCES;

/// Per scrape, 100 requests split by the weights applied now.
struct Synthetic {
    target: LocalTarget,
    canary_errors: f64,
    per_scrape: f64,
    counts: Mutex<BTreeMap<String, VersionCounters>>,
}

impl MetricsSource for Synthetic {
    fn describe(&self) -> String {
        "synthetic".to_owned()
    }

    async fn scrape(&self, service: &str) -> Result<Snapshot, MetricsError> {
        let vs = self
            .target
            .virtual_service(service)
            .await
            .expect("reading the VirtualService");
        let weights = routes::current_weights(&vs);
        let mut counts = self.counts.lock().expect("counts");
        for (v, w) in weights {
            let c = counts.entry(v.clone()).or_default();
            let n = (self.per_scrape * f64::from(w) / 100.0).floor();
            c.requests += n;
            if v == "v2" {
                c.errors += (n * self.canary_errors).floor();
            }
            c.buckets = vec![(5.0, c.requests), (f64::INFINITY, c.requests)];
        }
        Ok(Snapshot {
            source: counts.clone(),
            destination: Default::default(),
        })
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<RolloutEvent>>);

impl Observer for Recorder {
    fn event(&self, e: &RolloutEvent) {
        self.0.lock().expect("events").push(e.clone());
    }
}

fn fixture() -> (tempfile::TempDir, LocalTarget) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("discounts.yaml"), RESOURCES).expect("writing");
    let target = LocalTarget::new(dir.path());
    (dir, target)
}

fn plan(steps: &[u8]) -> Plan {
    Plan {
        from: "v1".parse().unwrap(),
        to: "v2".parse().unwrap(),
        steps: steps
            .iter()
            .map(|s| Weight::try_from(*s).unwrap())
            .collect(),
        interval: Duration::from_secs(30),
        threshold: 2,
        step_timeout: Duration::from_secs(300),
        manual_promotion: false,
        // The window rule: these tests count scrapes (the synthetic source
        // adds requests per scrape), and the sequential rule scrapes every poll.
        thresholds: Thresholds::window(),
        metrics: "synthetic".into(),
        strategy: Default::default(),
        sticky_cookie: None,
    }
}

fn options(webhooks: Webhooks) -> DriverOptions {
    DriverOptions {
        service: "discounts".into(),
        holder: "test-driver".into(),
        on_interrupt: OnInterrupt::Rollback,
        no_wait_on_pause: false,
        webhooks,
        poll: Duration::from_secs(1),
        pace: None,
    }
}

fn synthetic(target: &LocalTarget, canary_errors: f64, per_scrape: f64) -> Synthetic {
    Synthetic {
        target: target.clone(),
        canary_errors,
        per_scrape,
        counts: Mutex::default(),
    }
}

/// The outcome of one driver run and the events it reported.
type Outcome = (
    Result<(Finish, RolloutState), EngineError>,
    Vec<RolloutEvent>,
);

/// Runs the driver over `target` and `metrics` with `o` and `p`, never
/// interrupted; its outcome and the events it reported.
async fn drive<T: Target, M: MetricsSource>(
    target: &T,
    metrics: &M,
    o: DriverOptions,
    p: Plan,
) -> Outcome {
    let rec = Recorder::default();
    let (_tx, rx) = watch::channel(0);
    let result = Driver::new(target, metrics, &rec, o, rx).run(p).await;
    (result, rec.0.into_inner().expect("events"))
}

/// A healthy fast rollout over 50, 100% with the webhook receiver answering
/// `status` per hook (200 otherwise); the target directory, the receiver and
/// the outcome.
async fn drive_with_hooks(
    status: BTreeMap<&'static str, u16>,
) -> (tempfile::TempDir, Hooks, Outcome) {
    let (dir, target) = fixture();
    let metrics = synthetic(&target, 0.0, 1000.0);
    let hooks = hook_server(status).await;
    let o = options(webhooks(&hooks));
    let outcome = drive(&target, &metrics, o, fast(plan(&[50, 100]))).await;
    (dir, hooks, outcome)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn paused_clock_healthy_rollout_promotes() {
    let (_dir, target) = fixture();
    let metrics = synthetic(&target, 0.0, 1000.0);
    let o = options(Webhooks::default());
    let (result, events) = drive(&target, &metrics, o, plan(&[10, 50, 100])).await;
    let (finish, state) = result.expect("driver");
    assert_eq!(finish, Finish::Ended(Ending::Promoted));
    assert_eq!(state.weights_text(), "v1=0 v2=100");
    let vs = target.virtual_service("discounts").await.unwrap();
    assert_eq!(
        RolloutState::read(&vs).unwrap(),
        state,
        "the recorded state is the final one"
    );
    let analyses = events
        .iter()
        .filter(|e| matches!(e, RolloutEvent::Analysis { .. }))
        .count();
    assert_eq!(analyses, 3);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn paused_clock_hold_then_progress_deadline_times_out() {
    let (_dir, target) = fixture();
    // 10 requests per scrape at 10%: 1 canary request per window, never 20.
    let metrics = synthetic(&target, 0.0, 10.0);
    let mut p = plan(&[10, 100]);
    p.step_timeout = Duration::from_secs(120);
    let (result, _) = drive(&target, &metrics, options(Webhooks::default()), p).await;
    let (finish, state) = result.expect("driver");
    assert_eq!(finish, Finish::Ended(Ending::TimedOut));
    assert_eq!(state.failed_checks, 0);
    // The window was extended: the last record spans all held intervals.
    let last = state.last_record().unwrap();
    assert!(last.canary.requests >= 4, "{last:?}");
    assert_eq!(
        state.reason.as_deref(),
        Some(
            format!(
                "inconclusive: {} canary requests < 20 required",
                last.canary.requests
            )
            .as_str()
        )
    );
    assert_eq!(state.weights_text(), "v1=100 v2=0");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn paused_clock_interrupt_rolls_back() {
    let (_dir, target) = fixture();
    let metrics = synthetic(&target, 0.0, 1000.0);
    let rec = Recorder::default();
    let (tx, rx) = watch::channel(0);
    let driver = Driver::new(&target, &metrics, &rec, options(Webhooks::default()), rx);
    let fut = driver.run(plan(&[10, 50, 100]));
    tokio::pin!(fut);
    // Let one step start, then signal.
    tokio::select! {
        _ = &mut fut => panic!("finished before the interrupt"),
        () = tokio::time::sleep(Duration::from_secs(40)) => {}
    }
    tx.send(1).unwrap();
    let (finish, state) = fut.await.expect("driver");
    assert_eq!(finish, Finish::Ended(Ending::RolledBack));
    assert_eq!(state.phase, Phase::RolledBack);
    assert!(state.reason.unwrap().starts_with("interrupted"));
}

/// A webhook receiver on 127.0.0.1:0 answering `status` to every POST.
struct Hooks {
    url: String,
    calls: Arc<Mutex<Vec<serde_json::Value>>>,
}

async fn hook_server(status: BTreeMap<&'static str, u16>) -> Hooks {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(Mutex::new(Vec::new()));
    let recorded = calls.clone();
    tokio::spawn(async move {
        // Bounded: a test makes far fewer calls.
        for _ in 0..1000 {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let Ok(n) = conn.read(&mut chunk).await else {
                    break None;
                };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break Some((head.to_owned(), body.to_owned()));
                    }
                }
            };
            let Some((head, body)) = body else { continue };
            let path = head
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_owned();
            let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            recorded.lock().unwrap().push(value);
            let code = status.get(path.as_str()).copied().unwrap_or(200);
            let reply = format!(
                "HTTP/1.1 {code} X\r\ncontent-length: 7\r\nconnection: close\r\n\r\nnot yet"
            );
            let _ = conn.write_all(reply.as_bytes()).await;
        }
    });
    Hooks { url, calls }
}

fn webhooks(h: &Hooks) -> Webhooks {
    let hook = |name: &str, hook: Hook| WebhookConfig {
        name: name.to_owned(),
        hook,
        url: format!("{}/{name}", h.url),
        timeout: Duration::from_secs(5),
    };
    Webhooks {
        hooks: vec![
            hook("pre-rollout", Hook::PreRollout),
            hook("rollout", Hook::Rollout),
            hook("post-rollout", Hook::PostRollout),
            hook("rollback", Hook::Rollback),
        ],
    }
}

fn fast(mut p: Plan) -> Plan {
    p.interval = Duration::from_millis(100);
    p
}

#[tokio::test]
async fn webhooks_are_called_around_a_promotion() {
    let (_dir, hooks, (result, _)) = drive_with_hooks(BTreeMap::new()).await;
    let (finish, _) = result.expect("driver");
    assert_eq!(finish, Finish::Ended(Ending::Promoted));
    let calls = hooks.calls.lock().unwrap().clone();
    let kinds: Vec<&str> = calls
        .iter()
        .map(|c| c["hook"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(kinds, ["pre-rollout", "rollout", "rollout", "post-rollout"]);
    assert_eq!(calls[0]["service"], "discounts");
    assert_eq!(calls[3]["phase"], "Promoted");
    assert_eq!(calls[1]["weight"], 50);
}

#[tokio::test]
async fn a_closed_rollout_gate_fails_checks_and_rolls_back() {
    let (_dir, hooks, (result, _)) = drive_with_hooks([("rollout", 503)].into()).await;
    let (finish, state) = result.expect("driver");
    assert_eq!(finish, Finish::Ended(Ending::RolledBack));
    let reason = state.reason.unwrap();
    assert!(
        reason.contains("rollout gate closed") && reason.contains("answered HTTP 503: not yet"),
        "{reason}"
    );
    let kinds: Vec<String> = hooks
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c["hook"].as_str().unwrap_or("?").to_owned())
        .collect();
    assert!(kinds.contains(&"rollback".to_owned()), "{kinds:?}");
}

#[tokio::test]
async fn a_rejected_pre_rollout_hook_changes_nothing() {
    let (dir, _hooks, (result, _)) = drive_with_hooks([("pre-rollout", 500)].into()).await;
    let e = result.unwrap_err();
    assert!(matches!(e, EngineError::PreRollout(_)), "{e}");
    assert!(
        e.to_string()
            .starts_with("the rollout was not started: PreRollout webhook \"pre-rollout\""),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("discounts.yaml")).unwrap(),
        RESOURCES
    );
}

/// The local target with another writer that puts 50/50 weights back right
/// after a rollback is written (as a GitOps controller re-applying an old
/// manifest would).
struct RacingWriter {
    inner: LocalTarget,
}

impl Target for RacingWriter {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn apply(
        &self,
        resources: &[meshproxy::istio::Resource],
        options: meshctl::target::ApplyOptions,
    ) -> Result<Vec<meshctl::target::Applied>, meshctl::target::TargetError> {
        self.inner.apply(resources, options).await
    }

    async fn virtual_service(
        &self,
        name: &str,
    ) -> Result<meshproxy::istio::VirtualService, meshctl::target::TargetError> {
        self.inner.virtual_service(name).await
    }

    async fn destination_rule(
        &self,
        name: &str,
    ) -> Result<meshproxy::istio::DestinationRule, meshctl::target::TargetError> {
        self.inner.destination_rule(name).await
    }

    async fn replace_virtual_service(
        &self,
        vs: &meshproxy::istio::VirtualService,
    ) -> Result<meshproxy::istio::VirtualService, meshctl::target::TargetError> {
        let stored = self.inner.replace_virtual_service(vs).await?;
        if RolloutState::read(vs).is_ok_and(|s| s.phase == Phase::RolledBack) {
            let mut theirs = stored.clone();
            let half: BTreeMap<String, u8> = [("v1".to_owned(), 50), ("v2".to_owned(), 50)].into();
            routes::set_weights(&mut theirs, "v1", "v2", &half).expect("weights");
            self.inner.replace_virtual_service(&theirs).await?;
        }
        Ok(stored)
    }

    async fn rollouts(
        &self,
    ) -> Result<Vec<meshproxy::istio::VirtualService>, meshctl::target::TargetError> {
        self.inner.rollouts().await
    }

    async fn acquire_lease(
        &self,
        service: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<(), meshctl::target::TargetError> {
        self.inner.acquire_lease(service, holder, ttl).await
    }

    async fn release_lease(
        &self,
        service: &str,
        holder: &str,
    ) -> Result<(), meshctl::target::TargetError> {
        self.inner.release_lease(service, holder).await
    }

    async fn record_event(
        &self,
        service: &str,
        kind: meshctl::target::EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), meshctl::target::TargetError> {
        self.inner
            .record_event(service, kind, reason, message)
            .await
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_rollback_overwritten_by_another_writer_is_reported_not_trusted() {
    let (_dir, inner) = fixture();
    let metrics = synthetic(&inner, 0.5, 1000.0);
    let target = RacingWriter { inner };
    let mut p = plan(&[50, 100]);
    p.threshold = 1;
    let (result, _) = drive(&target, &metrics, options(Webhooks::default()), p).await;
    let err = result.expect_err("the read-back finds 50/50");
    assert!(
        matches!(err, EngineError::RollbackNotApplied { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the rollback of \"discounts\" was written but reading it back shows v1=50 v2=50, not v1=100 v2=0 without mirror or match route: another writer changed the VirtualService; run `meshctl rollback discounts` and check who else writes it"
    );
}

/// `(bake interval, analysed window)` pairs of an `--interval auto` run, in ms.
fn bakes_and_windows(events: &[RolloutEvent]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut bake = None;
    for e in events {
        match e {
            RolloutEvent::Bake { interval_ms, .. } => bake = Some(*interval_ms),
            RolloutEvent::Analysis { record, .. } => {
                let window = record.window_end.since(record.window_start);
                let ms = u64::try_from(window.as_millis()).unwrap();
                out.push((bake.take().expect("a bake before each analysis"), ms));
            }
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn paused_clock_interval_auto_bakes_each_step_from_its_weight() {
    use meshctl::rollout::pace::{Demand, Pace};
    let (_dir, target) = fixture();
    let metrics = synthetic(&target, 0.0, 1000.0);
    let mut o = options(Webhooks::default());
    // 10 requests/s, --success-rate 90.
    o.pace = Some(Pace::new(10.0, Demand::new(90.0, (1000.0, 0.0), 0.95, 20)));
    let (result, events) = drive(&target, &metrics, o, plan(&[10, 50, 100])).await;
    let (finish, _) = result.expect("driver");
    assert_eq!(finish, Finish::Ended(Ending::Promoted));
    let pairs = bakes_and_windows(&events);
    assert_eq!(pairs.len(), 3, "{pairs:?}");
    // Each window lasted its step's bake, and smaller steps baked longer.
    for (bake, window) in &pairs {
        assert_eq!(bake, window, "{pairs:?}");
    }
    assert!(
        pairs[0].0 > pairs[1].0 && pairs[1].0 > pairs[2].0,
        "{pairs:?}"
    );
}

/// Traffic no request of which matches: v1 serves 100 requests per scrape.
#[derive(Default)]
struct Unmatched(Mutex<f64>);

impl MetricsSource for Unmatched {
    fn describe(&self) -> String {
        "unmatched".to_owned()
    }

    async fn scrape(&self, _service: &str) -> Result<Snapshot, MetricsError> {
        let mut n = self.0.lock().expect("count");
        *n += 100.0;
        let v1 = VersionCounters {
            requests: *n,
            errors: 0.0,
            buckets: vec![(5.0, *n), (f64::INFINITY, *n)],
            ..VersionCounters::default()
        };
        Ok(Snapshot {
            source: [("v1".to_owned(), v1)].into(),
            destination: Default::default(),
        })
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn paused_clock_interval_auto_holds_an_unmatched_ab_step_until_the_deadline() {
    use meshctl::rollout::pace::{Demand, PROBE, Pace};
    use meshctl::rollout::strategy::{Stage, Strategy};
    let (_dir, target) = fixture();
    let metrics = Unmatched::default();
    let mut o = options(Webhooks::default());
    o.pace = Some(Pace::new(10.0, Demand::new(90.0, (1000.0, 0.0), 0.95, 20)));
    let mut p = plan(&[100]);
    p.strategy = Strategy::Ab {
        rule: "header:x-canary=true".parse().unwrap(),
        iterations: 1,
    };
    p.step_timeout = Duration::from_secs(10);
    let (result, events) = drive(&target, &metrics, o, p).await;
    let (finish, state) = result.expect("driver");
    assert_eq!(finish, Finish::Ended(Ending::TimedOut));
    let bakes: Vec<(Option<f64>, u64, bool, String)> = events
        .iter()
        .filter_map(|e| match e {
            RolloutEvent::Bake {
                stage,
                share_percent,
                interval_ms,
                capped,
                message,
                ..
            } => {
                assert_eq!(*stage, Stage::Match);
                Some((*share_percent, *interval_ms, *capped, message.clone()))
            }
            _ => None,
        })
        .collect();
    // The probe, then holding at the probe length, the last window cut at
    // the deadline: 3 s + 3 s + 3 s + 1 s = the 10 s progress deadline.
    let probe = u64::try_from(PROBE.as_millis()).unwrap();
    let lengths: Vec<u64> = bakes.iter().map(|b| b.1).collect();
    assert_eq!(lengths, [probe, probe, probe, 1000], "{bakes:?}");
    assert_eq!(bakes[0].0, None, "{bakes:?}");
    assert!(bakes[1..].iter().all(|b| b.0 == Some(0.0)), "{bakes:?}");
    assert!(
        bakes[1].3.contains("no request matched so far"),
        "{}",
        bakes[1].3
    );
    assert_eq!(bakes.last().map(|b| b.2), Some(true), "{bakes:?}");
    // The held window spans the whole step: no window ran past the deadline.
    let last = state.last_record().unwrap();
    assert_eq!(
        last.window_end.since(last.window_start),
        Duration::from_secs(10)
    );
}
