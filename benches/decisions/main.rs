//! The decision benchmark (issue 14): how often `--analysis window` and
//! `--analysis sequential` roll back healthy canaries, how fast they catch
//! bad ones, and how long a healthy canary takes to promote.
//!
//! Drives the real rollout engine in-process on a paused tokio clock
//! against the local directory target, with a simulated metrics source:
//! Poisson arrivals at `--rate` requests/s, split between the versions by
//! the weights the VirtualService carries, each version failing requests at
//! its own (possibly time-varying) rate and answering from its own latency
//! distribution (Istio's histogram buckets). Each scenario runs `--runs`
//! rollouts per rule with fixed seeds.
//!
//! `benches/decisions/run.sh` runs it in release mode and writes the table
//! into README.md between the `decisions INTERVAL:begin` / `:end` markers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshctl::drive::auto_pace;
use meshctl::metrics::{MetricsError, MetricsSource, Snapshot, VersionCounters};
use meshctl::rollout::analysis::{Analysis, Thresholds};
use meshctl::rollout::engine::{Driver, DriverOptions, Observer, RolloutEvent};
use meshctl::rollout::machine::OnInterrupt;
use meshctl::rollout::machine::Plan;
use meshctl::rollout::pace;
use meshctl::rollout::routes;
use meshctl::rollout::webhook::Webhooks;
use meshctl::spec::RolloutDefaults;
use meshctl::target::Target;
use meshctl::target::local::LocalTarget;
use meshctl::traffic::Weight;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Binomial, Distribution, Poisson};
use tokio::sync::watch;
use tokio::time::Instant;

/// The rendered resources of `discounts` (v1 and v2 subsets).
const RESOURCES: &str = include_str!("../../tests/fixtures/kube/discounts.yaml");

/// Istio's default duration buckets (ms), up to 10 s.
const LES: [f64; 13] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// A healthy request's latency: the share landing in each bucket of [`LES`]
/// (a few ms, a tail to 50 ms).
const FAST: [f64; 13] = [
    0.0, 0.0, 0.30, 0.40, 0.25, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
];

/// The bucket of a slow (2 s) request.
const SLOW_BUCKET: usize = 10;

/// How one version behaves.
#[derive(Clone, Copy, Debug)]
struct Behaviour {
    /// Error rate at time `t` (seconds since the rollout started).
    errors: fn(f64) -> f64,
    /// Share of requests that take 2 s.
    slow: f64,
}

fn zero(_: f64) -> f64 {
    0.0
}
fn p0_1(_: f64) -> f64 {
    0.001
}
fn p0_5(_: f64) -> f64 {
    0.005
}
fn p2(_: f64) -> f64 {
    0.02
}
fn p5(_: f64) -> f64 {
    0.05
}
/// 0% for 5 s, 3% for 5 s, over and over.
fn flapping(t: f64) -> f64 {
    if ((t / 5.0).floor() as u64).is_multiple_of(2) {
        0.0
    } else {
        0.03
    }
}

const fn version(errors: fn(f64) -> f64) -> Behaviour {
    Behaviour { errors, slow: 0.0 }
}

/// What a scenario is judged by.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Truth {
    /// The canary is as good as the baseline: every rollback is false.
    Healthy,
    /// The canary is worse: every promotion is a miss.
    Regressed,
}

struct Scenario {
    name: &'static str,
    canary: Behaviour,
    baseline: Behaviour,
    /// `--success-rate` (None: the default 99).
    success_rate: Option<f64>,
    truth: Truth,
    goal: &'static str,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "identical, 0% errors",
            canary: version(zero),
            baseline: version(zero),
            success_rate: None,
            truth: Truth::Healthy,
            goal: "false rollbacks ≤ 1%",
        },
        Scenario {
            name: "identical, 0.1% errors",
            canary: version(p0_1),
            baseline: version(p0_1),
            success_rate: None,
            truth: Truth::Healthy,
            goal: "false rollbacks ≤ 1%",
        },
        Scenario {
            name: "identical, 0.5% errors",
            canary: version(p0_5),
            baseline: version(p0_5),
            success_rate: None,
            truth: Truth::Healthy,
            goal: "false rollbacks ≤ 1%",
        },
        Scenario {
            name: "identical, 2% errors, --success-rate 95",
            canary: version(p2),
            baseline: version(p2),
            success_rate: Some(95.0),
            truth: Truth::Healthy,
            goal: "false rollbacks ≤ 1%",
        },
        Scenario {
            name: "both flapping 0%↔3%, --success-rate 95",
            canary: version(flapping),
            baseline: version(flapping),
            success_rate: Some(95.0),
            truth: Truth::Healthy,
            goal: "false rollbacks ≤ 1%",
        },
        Scenario {
            name: "5% vs 0.1% errors",
            canary: version(p5),
            baseline: version(p0_1),
            success_rate: None,
            truth: Truth::Regressed,
            goal: "0 promotions; median canary requests to rollback ≤ 60",
        },
        Scenario {
            name: "2% vs 0.1% errors",
            canary: version(p2),
            baseline: version(p0_1),
            success_rate: None,
            truth: Truth::Regressed,
            goal: "rolled back ≥ 99%",
        },
        Scenario {
            name: "5% of canary requests take 2 s",
            canary: Behaviour {
                errors: p0_1,
                slow: 0.05,
            },
            baseline: version(p0_1),
            success_rate: None,
            truth: Truth::Regressed,
            goal: "rolled back ≥ 99%",
        },
    ]
}

/// The simulated cumulative counters, advanced at every scrape.
struct Traffic {
    rng: StdRng,
    started: Instant,
    last: Instant,
    /// The weights in force since the last scrape.
    weights: BTreeMap<String, u8>,
    counts: BTreeMap<String, VersionCounters>,
}

/// A metrics source simulating the service's traffic.
struct Simulated {
    target: LocalTarget,
    rate: f64,
    /// How often the sequential analysis looks (`--look`).
    look: Duration,
    behaviour: BTreeMap<String, Behaviour>,
    traffic: Mutex<Traffic>,
}

fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    Binomial::new(n, p.min(1.0)).map_or(0, |b| b.sample(rng))
}

impl Simulated {
    fn new(target: LocalTarget, args: &Args, scenario: &Scenario, seed: u64) -> Self {
        let now = Instant::now();
        Self {
            target,
            rate: args.rate,
            look: args.look,
            behaviour: [
                ("v1".to_owned(), scenario.baseline),
                ("v2".to_owned(), scenario.canary),
            ]
            .into(),
            traffic: Mutex::new(Traffic {
                rng: StdRng::seed_from_u64(seed),
                started: now,
                last: now,
                weights: [("v1".to_owned(), 100), ("v2".to_owned(), 0)].into(),
                counts: BTreeMap::new(),
            }),
        }
    }

    /// Canary requests served so far.
    fn canary_requests(&self) -> f64 {
        let t = self.traffic.lock().expect("traffic");
        t.counts.get("v2").map_or(0.0, |c| c.requests)
    }

    /// Serves the requests that arrived since the last scrape, split by the
    /// weights in force over that time.
    fn advance(&self, t: &mut Traffic, now: Instant) {
        let dt = now.duration_since(t.last).as_secs_f64();
        let mid = (now.duration_since(t.started).as_secs_f64()) - dt / 2.0;
        t.last = now;
        if dt <= 0.0 {
            return;
        }
        let Traffic {
            rng,
            weights,
            counts,
            ..
        } = t;
        let total = Poisson::new(self.rate * dt).map_or(0.0, |p| p.sample(rng)) as u64;
        let canary_share = f64::from(weights.get("v2").copied().unwrap_or(0)) / 100.0;
        let to_canary = binomial(rng, total, canary_share);
        for (v, n) in [("v1", total - to_canary), ("v2", to_canary)] {
            let b = self.behaviour[v];
            let c = counts
                .entry(v.to_owned())
                .or_insert_with(|| VersionCounters {
                    buckets: LES
                        .iter()
                        .map(|&le| (le, 0.0))
                        .chain(std::iter::once((f64::INFINITY, 0.0)))
                        .collect(),
                    ..VersionCounters::default()
                });
            c.requests += n as f64;
            c.errors += binomial(rng, n, (b.errors)(mid)) as f64;
            let slow = binomial(rng, n, b.slow);
            // A multinomial draw over the buckets, one binomial at a time.
            let mut per_bucket = [0u64; LES.len()];
            let (mut left, mut mass) = (n - slow, 1.0);
            for (i, &p) in FAST.iter().enumerate() {
                if left == 0 || mass <= 0.0 {
                    break;
                }
                let k = if p >= mass {
                    left
                } else {
                    binomial(rng, left, p / mass)
                };
                per_bucket[i] = k;
                left -= k;
                mass -= p;
            }
            per_bucket[SLOW_BUCKET] += slow;
            let mut acc = 0;
            for (i, (_, cum)) in c.buckets.iter_mut().enumerate() {
                // Cumulative: each bucket counts the requests at or below it.
                acc += per_bucket.get(i).copied().unwrap_or(0);
                *cum += if i < LES.len() { acc } else { n } as f64;
            }
        }
    }
}

impl MetricsSource for Simulated {
    fn describe(&self) -> String {
        format!("simulated ({} requests/s)", self.rate)
    }

    async fn scrape(&self, service: &str) -> Result<Snapshot, MetricsError> {
        let vs =
            self.target
                .virtual_service(service)
                .await
                .map_err(|e| MetricsError::Malformed {
                    url: "simulated".to_owned(),
                    message: e.to_string(),
                })?;
        let mut t = self.traffic.lock().expect("traffic");
        self.advance(&mut t, Instant::now());
        t.weights = routes::current_weights(&vs);
        Ok(Snapshot {
            source: t.counts.clone(),
            destination: BTreeMap::new(),
        })
    }

    fn look_every(&self) -> Duration {
        self.look
    }
}

/// How one rollout ended.
#[derive(Clone, Copy, Debug, Default)]
struct Outcome {
    promoted: bool,
    /// Canary requests served when the rollback was written.
    canary_at_rollback: Option<f64>,
    /// Time from the start to the promotion.
    promoted_after: Option<Duration>,
}

/// Notes the end of the rollout as the engine reports it.
struct Watch {
    source: Arc<Simulated>,
    started: Instant,
    outcome: Mutex<Outcome>,
}

impl Observer for Watch {
    fn event(&self, event: &RolloutEvent) {
        let mut o = self.outcome.lock().expect("outcome");
        match event {
            RolloutEvent::Promoted { .. } => {
                o.promoted = true;
                o.promoted_after = Some(self.started.elapsed());
            }
            RolloutEvent::RolledBack { .. } if o.canary_at_rollback.is_none() => {
                o.canary_at_rollback = Some(self.source.canary_requests());
            }
            _ => {}
        }
    }
}

/// The command line: `--runs N --rate R --interval 10s|auto --readme
/// PATH`, and for quick looks `--only TEXT` (scenarios whose name contains
/// it, no README) and `--look 500ms` (how often the sequential analysis
/// looks at the metrics; meshproxy's cadence, [`meshctl::metrics::LOOK`],
/// by default).
struct Args {
    runs: u32,
    rate: f64,
    /// `None`: `--interval auto`, each rule sizing its bakes for its test.
    interval: Option<Duration>,
    only: Option<String>,
    look: Duration,
    /// Write the table into this README, between
    /// `<!-- decisions INTERVAL:begin -->` and `<!-- decisions INTERVAL:end -->`.
    readme: Option<std::path::PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        runs: 500,
        rate: 200.0,
        interval: Some(Duration::from_secs(10)),
        only: None,
        look: meshctl::metrics::LOOK,
        readme: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--runs" => a.runs = value().parse().expect("--runs takes a number"),
            "--rate" => a.rate = value().parse().expect("--rate takes requests/s"),
            "--interval" => {
                let v = value();
                a.interval = (v != "auto").then(|| {
                    humantime::parse_duration(&v).expect("--interval takes e.g. 10s, or auto")
                });
            }
            "--readme" => a.readme = Some(value().into()),
            "--only" => a.only = Some(value()),
            "--look" => {
                a.look = humantime::parse_duration(&value()).expect("--look takes e.g. 250ms");
            }
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    a
}

/// The two rules compared.
#[derive(Clone, Copy, Debug)]
enum Rule {
    Window,
    Sequential,
}

fn thresholds(rule: Rule, scenario: &Scenario) -> Thresholds {
    let mut thresholds = match rule {
        Rule::Window => Thresholds::window(),
        Rule::Sequential => Thresholds::default(),
    };
    if let Some(sr) = scenario.success_rate {
        thresholds.success_rate = sr;
    }
    thresholds
}

/// The plan; `step_timeout` is the progress deadline per step.
fn plan(rule: Rule, scenario: &Scenario, interval: Duration, step_timeout: Duration) -> Plan {
    let thresholds = thresholds(rule, scenario);
    debug_assert!(matches!(
        (rule, thresholds.analysis),
        (Rule::Window, Analysis::Window) | (Rule::Sequential, Analysis::Sequential)
    ));
    Plan {
        from: "v1".parse().expect("version"),
        to: "v2".parse().expect("version"),
        steps: [10u8, 25, 50, 100]
            .iter()
            .map(|&w| Weight::try_from(w).expect("weight"))
            .collect(),
        interval,
        threshold: 2,
        step_timeout,
        manual_promotion: false,
        thresholds,
        metrics: "simulated".to_owned(),
        strategy: Default::default(),
        sticky_cookie: None,
    }
}

/// A scratch directory, in memory when the system has one.
fn scratch() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().expect("a temporary directory")
}

async fn one(rule: Rule, scenario: &Scenario, args: &Args, seed: u64) -> Outcome {
    let dir = scratch();
    std::fs::write(dir.path().join("discounts.yaml"), RESOURCES).expect("writing resources");
    let target = LocalTarget::new(dir.path());
    let source = Arc::new(Simulated::new(target.clone(), args, scenario, seed));
    let started = Instant::now();
    let (plan, pace) = match args.interval {
        Some(interval) => (plan(rule, scenario, interval, interval * 20), None),
        None => {
            // As `rollout start --interval auto`: probe the traffic (its
            // 3 s count toward the time to promote), then size each bake.
            let t = thresholds(rule, scenario);
            let defaults = RolloutDefaults {
                success_rate: t.success_rate,
                analysis: t.analysis,
                confidence: Some(t.confidence),
                ..RolloutDefaults::default()
            };
            let from = "v1".parse().expect("version");
            let pace = auto_pace(source.as_ref(), "discounts", Some(&from), &defaults)
                .await
                .expect("probing the simulated traffic");
            let mut p = plan(rule, scenario, defaults.interval, defaults.timeout);
            p.interval = pace
                .next(&p, 0, pace::Window::Fresh, Duration::ZERO)
                .interval;
            (p, Some(pace))
        }
    };
    let watch = Watch {
        source: source.clone(),
        started,
        outcome: Mutex::default(),
    };
    let (_tx, rx) = watch::channel(0);
    let options = DriverOptions {
        service: "discounts".to_owned(),
        holder: "bench".to_owned(),
        on_interrupt: OnInterrupt::Rollback,
        no_wait_on_pause: true,
        webhooks: Webhooks::default(),
        poll: plan.interval.min(Duration::from_millis(500)),
        pace,
    };
    let driver = Driver::new(&target, source.as_ref(), &watch, options, rx);
    if let Err(e) = driver.run(plan).await {
        panic!("the engine failed: {e}");
    }
    *watch.outcome.lock().expect("outcome")
}

/// The results of one rule on one scenario.
struct Tally {
    runs: u32,
    promoted: u32,
    rolled_back: u32,
    canary_at_rollback: Vec<f64>,
    promote_secs: Vec<f64>,
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn run(rule: Rule, scenario: &Scenario, index: u64, args: &Args) -> Tally {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a paused runtime");
    let mut t = Tally {
        runs: args.runs,
        promoted: 0,
        rolled_back: 0,
        canary_at_rollback: Vec::new(),
        promote_secs: Vec::new(),
    };
    for i in 0..u64::from(args.runs) {
        // The same traffic seeds for both rules.
        let seed = index * 1_000_003 + i;
        let o = rt.block_on(one(rule, scenario, args, seed));
        if o.promoted {
            t.promoted += 1;
            t.promote_secs
                .extend(o.promoted_after.map(|d| d.as_secs_f64()));
        } else {
            t.rolled_back += 1;
            t.canary_at_rollback.extend(o.canary_at_rollback);
        }
    }
    t
}

fn cell(scenario: &Scenario, t: &mut Tally) -> String {
    let pct = |n: u32| 100.0 * f64::from(n) / f64::from(t.runs);
    match scenario.truth {
        Truth::Healthy => {
            let time =
                median(&mut t.promote_secs).map_or_else(|| "-".to_owned(), |s| format!("{s:.1} s"));
            format!(
                "{} of {} rolled back ({:.1}%); promoted in {time} (median)",
                t.rolled_back,
                t.runs,
                pct(t.rolled_back)
            )
        }
        Truth::Regressed => {
            let reqs = median(&mut t.canary_at_rollback)
                .map_or_else(|| "-".to_owned(), |n| format!("{n:.0}"));
            format!(
                "{} of {} rolled back ({:.1}%), {} promoted; median {reqs} canary requests to the rollback",
                t.rolled_back,
                t.runs,
                pct(t.rolled_back),
                t.promoted
            )
        }
    }
}

fn main() {
    let args = args();
    let interval = args.interval.map_or_else(
        || "auto".to_owned(),
        |d| humantime::format_duration(d).to_string(),
    );
    let mut table = format!(
        "| scenario ({} req/s, steps 10,25,50,100, `--interval {interval}`, {} rollouts each) | goal | `--analysis window` | `--analysis sequential` |\n|---|---|---|---|\n",
        args.rate, args.runs
    );
    for (i, s) in scenarios().iter().enumerate() {
        if args
            .only
            .as_ref()
            .is_some_and(|o| !s.name.contains(o.as_str()))
        {
            continue;
        }
        let mut w = run(Rule::Window, s, i as u64, &args);
        let mut q = run(Rule::Sequential, s, i as u64, &args);
        let row = format!(
            "| {} | {} | {} | {} |\n",
            s.name,
            s.goal,
            cell(s, &mut w),
            cell(s, &mut q)
        );
        // Progress: each row as it is measured.
        eprint!("{row}");
        table.push_str(&row);
    }
    println!("{table}");
    if let Some(path) = args.readme.as_ref().filter(|_| args.only.is_none()) {
        let text = std::fs::read_to_string(path).expect("reading the README");
        let begin = format!("<!-- decisions {interval}:begin -->\n");
        let end = format!("<!-- decisions {interval}:end -->");
        let (Some(a), Some(b)) = (text.find(&begin), text.find(&end)) else {
            panic!("{} has no {begin:?} ... {end:?} markers", path.display());
        };
        let updated = format!("{}{table}{}", &text[..a + begin.len()], &text[b..]);
        std::fs::write(path, updated).expect("writing the README");
    }
}
