//! `--interval auto`: how long each step bakes, sized from the traffic the
//! new version actually gets in that step. Pure: no IO and no clock; the
//! driver passes in what it observed.
//!
//! A window must last until the new version has served the requests the
//! analysis needs to tell a version failing at the success-rate threshold
//! (or at twice the baseline's error rate, when higher) from the baseline
//! with 80% power, at least `--min-requests` ([`Demand::requests`]):
//!
//! - `--analysis sequential` (the default): the requests the sequential
//!   comparison with the baseline needs to reject that canary at the step's
//!   share, at `--confidence` ([`sequential::requests_to_reject`], computed
//!   exactly for a step at a constant share). Each step is sized on its own,
//!   although the evidence of the earlier steps carries over, so a step is
//!   never shorter than the test needs by itself;
//! - `--analysis window`: the requests the z-test of one window needs
//!   ([`analysis::required_canary_requests`]).
//!
//! With no baseline traffic (a 100% step, after a `bluegreen` switch) both
//! use the one-sample planning number against the baseline's error rate
//! measured before the rollout ([`one_sample`]). How fast those requests
//! come depends on the stage ([`share_at`]):
//!
//! - a weighted step at `w`%: `w`% of the live requests (the baseline keeps
//!   the rest);
//! - a mirror stage (`mirror`, `bluegreen` previewing on copies): the
//!   `--mirror-percent` of the stable version's requests, as copies; the
//!   baseline keeps all the real traffic;
//! - `bluegreen` after the switch: all requests, with no baseline traffic
//!   left, so a one-sample test against the baseline's error rate measured
//!   before the rollout;
//! - a match stage (`ab`, `bluegreen --match`): unknown up front. The first
//!   window is a probe as long as the shortest possible bake (every request
//!   matching) and at least [`PROBE`]; the matched share measured on it
//!   (the new version's requests against all requests, [`Pace::observe`])
//!   sizes the following windows. When nothing matched the step holds at the
//!   probe length, and says so, until requests match or the progress
//!   deadline ends it inconclusive.
//!
//! Every analysed window also refreshes the request rate (the real
//! requests of both versions it counted), so later steps follow the traffic
//! as it changes. A held window is extended by the time its missing
//! requests take. No window runs past the step's progress deadline
//! (`--timeout`): a longer bake is cut at the deadline, where the step is
//! judged on the requests it has, and [`Pace::warnings`] names such steps
//! when the rollout starts.

use std::fmt::Write as _;
use std::time::Duration;

use super::analysis::{self, Analysis, DecisionRecord, Thresholds};
use super::machine::Plan;
use super::sequential;
use super::strategy::Stage;

/// How long the request rate is measured before the rollout starts, and
/// the shortest probe window of a match stage.
pub const PROBE: Duration = Duration::from_secs(3);

/// The shortest bake.
pub const MIN_BAKE: Duration = Duration::from_secs(1);

/// The longest bake (a day).
pub const MAX_BAKE: Duration = Duration::from_secs(86_400);

/// Statistical power the sizing aims for.
pub const POWER: f64 = 0.8;

/// Fractions of the live request rate each version serves in a stage (the
/// new version's may be mirrored copies).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Share {
    /// The new version, 0..=1.
    pub canary: f64,
    /// The stable version (the baseline), 0..=1.
    pub baseline: f64,
}

/// What the analysis must be able to detect.
#[derive(Clone, Debug, PartialEq)]
pub struct Demand {
    /// The stable version's error share (at least 0.1%).
    pub base_err: f64,
    /// The error share the new version must be caught at: the success-rate
    /// threshold, or twice the baseline's when that is higher.
    pub target_err: f64,
    /// Confidence of the comparison (`--confidence`: 0.99 sequential, 0.95
    /// window).
    pub confidence: f64,
    /// Power (0.8).
    pub power: f64,
    /// `--min-requests`.
    pub min_requests: u64,
    /// The rule whose test the bakes are sized for.
    pub analysis: Analysis,
}

/// How the next window is sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// A fresh window (a new step, or a new window after a failed check).
    Fresh,
    /// The held window goes on; the new version served this many requests
    /// in it so far.
    Extended {
        /// Requests the new version served in the window so far.
        served: u64,
    },
}

/// How long one window bakes, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Bake {
    /// Step index (0-based).
    pub step: usize,
    /// What the route carries.
    pub stage: Stage,
    /// The share the sizing used; `None` for a match step not measured yet
    /// (the window is the probe).
    pub share: Option<Share>,
    /// The share was measured on a match window.
    pub measured: bool,
    /// Requests the new version needs in the window.
    pub requests: u64,
    /// Requests still missing (`requests` for a fresh window).
    pub missing: u64,
    /// The wait.
    pub interval: Duration,
    /// The bake was cut at the step's progress deadline.
    pub capped: bool,
}

/// The sizing state the driver keeps: the observed rate, what the test
/// needs, and the matched share once measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Pace {
    rate: f64,
    demand: Demand,
    matched: Option<f64>,
}

// === impl Share ===

impl Share {
    /// The new version at `canary` of the traffic, the baseline the rest.
    pub fn split(canary: f64) -> Self {
        Self {
            canary,
            baseline: 1.0 - canary,
        }
    }
}

/// The new version's share at step `i` of `plan`; `None` for a match step,
/// whose share is only known once measured.
pub fn share_at(plan: &Plan, i: usize) -> Option<Share> {
    match plan.stage_at(i) {
        Stage::Weighted => Some(Share::split(f64::from(plan.weight_at(i).get()) / 100.0)),
        Stage::Mirror => Some(Share {
            canary: f64::from(plan.strategy.mirror_percent().unwrap_or(100)) / 100.0,
            baseline: 1.0,
        }),
        Stage::Switched => Some(Share {
            canary: 1.0,
            baseline: 0.0,
        }),
        Stage::Match => None,
    }
}

// === impl Demand ===

impl Demand {
    /// What the rollout's `thresholds` (rule, success rate, confidence,
    /// `--min-requests`) need, given the stable version's `(requests,
    /// errors)` over the rate probe.
    pub fn for_thresholds(thresholds: &Thresholds, baseline: (f64, f64)) -> Self {
        Self {
            analysis: thresholds.analysis,
            ..Self::new(
                thresholds.success_rate,
                baseline,
                thresholds.confidence,
                thresholds.min_requests,
            )
        }
    }

    /// For the window rule's z-test, from the success-rate threshold
    /// (percent) and the stable version's `(requests, errors)` over the
    /// rate probe.
    pub fn new(
        success_rate: f64,
        baseline: (f64, f64),
        confidence: f64,
        min_requests: u64,
    ) -> Self {
        let (requests, errors) = baseline;
        let base_err = if requests > 0.0 {
            (errors / requests).max(0.001)
        } else {
            0.001
        };
        let target_err = ((100.0 - success_rate) / 100.0)
            .max(base_err * 2.0)
            .min(0.999);
        Self {
            base_err,
            target_err,
            confidence,
            power: POWER,
            min_requests,
            analysis: Analysis::Window,
        }
    }

    /// Requests the new version must serve in one window at `share` (at
    /// least `--min-requests`): what the sequential comparison needs to
    /// reject the target over the step, or the window rule's z-test over one
    /// window. With no baseline traffic (after a `bluegreen` switch, a 100%
    /// step), a one-sample test against the baseline's error rate.
    pub fn requests(&self, share: Share) -> u64 {
        let n = if share.baseline <= 0.0 || share.canary <= 0.0 {
            one_sample(self.base_err, self.target_err, self.confidence, self.power)
        } else if self.analysis == Analysis::Sequential {
            sequential::requests_to_reject(
                self.base_err,
                self.target_err,
                share.canary / (share.canary + share.baseline),
                1.0 - self.confidence,
                self.power,
            )
        } else {
            analysis::required_canary_requests(
                self.base_err,
                self.target_err,
                share.baseline / share.canary,
                self.confidence,
                self.power,
            )
        };
        n.max(self.min_requests)
    }
}

/// Requests a one-sided one-sample test needs to tell an error share of
/// `p1` from a known `p0`.
pub fn one_sample(p0: f64, p1: f64, confidence: f64, power: f64) -> u64 {
    let (za, zb) = (
        analysis::normal_quantile(confidence),
        analysis::normal_quantile(power),
    );
    let n = ((za * (p0 * (1.0 - p0)).sqrt() + zb * (p1 * (1.0 - p1)).sqrt()) / (p1 - p0)).powi(2);
    // A planning number: round up to whole requests.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = n.ceil() as u64;
    whole
}

/// `requests` at `rate` per second, whole seconds within [`MIN_BAKE`],
/// [`MAX_BAKE`].
fn seconds_for(requests: u64, rate: f64) -> Duration {
    if rate <= 0.0 || !rate.is_finite() {
        return MAX_BAKE;
    }
    let secs = (requests as f64 / rate)
        .ceil()
        .clamp(MIN_BAKE.as_secs_f64(), MAX_BAKE.as_secs_f64());
    Duration::from_secs_f64(secs)
}

fn percent(f: f64) -> String {
    let p = f * 100.0;
    if (p - p.round()).abs() < 0.05 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

fn human(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

// === impl Pace ===

impl Pace {
    /// `rate`: live requests per second to the service (all versions);
    /// `demand`: what the test must detect.
    pub fn new(rate: f64, demand: Demand) -> Self {
        Self {
            rate,
            demand,
            matched: None,
        }
    }

    /// Live requests per second (the probe's, or the last match window's).
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// What the test must detect.
    pub fn demand(&self) -> &Demand {
        &self.demand
    }

    /// The matched share measured on a match window, if any.
    pub fn matched(&self) -> Option<f64> {
        self.matched
    }

    /// The shortest a match window can be: every request matching, and at
    /// least [`PROBE`].
    pub fn probe(&self) -> Duration {
        let all = self.demand.requests(Share {
            canary: 1.0,
            baseline: 0.0,
        });
        seconds_for(all, self.rate).max(PROBE)
    }

    /// Records what an analysed window of a `stage` step saw, so the
    /// following windows follow the traffic: the live request rate (real
    /// requests of both versions; a mirror window's copies are not live
    /// traffic) and, for a match window, the matched share (the new
    /// version's real requests against all real requests). Returns the
    /// matched share (`Some(0.0)` when nothing matched); `None` for other
    /// stages, or when the window saw no traffic at all (the estimates are
    /// kept: an unreadable or empty window says nothing about the rate).
    pub fn observe(&mut self, stage: Stage, record: &DecisionRecord) -> Option<f64> {
        let (c, b) = (record.canary.requests, record.baseline.requests);
        let live = if stage == Stage::Mirror { b } else { c + b };
        let secs = record.window_end.since(record.window_start).as_secs_f64();
        if live > 0 && secs > 0.0 {
            self.rate = live as f64 / secs;
        }
        if stage != Stage::Match || c + b == 0 {
            return None;
        }
        let share = c as f64 / (c + b) as f64;
        self.matched = Some(share);
        Some(share)
    }

    /// Sizes the next window of step `i`; `elapsed` is the time since the
    /// step started (no window runs past `plan.step_timeout`).
    pub fn next(&self, plan: &Plan, i: usize, window: Window, elapsed: Duration) -> Bake {
        let stage = plan.stage_at(i);
        let (share, measured) = match share_at(plan, i) {
            Some(s) => (Some(s), false),
            None => (self.matched.map(Share::split), true),
        };
        let requests = match share {
            Some(s) if s.canary > 0.0 => self.demand.requests(s),
            _ => self.demand.requests(Share {
                canary: 1.0,
                baseline: 0.0,
            }),
        };
        let served = match window {
            Window::Fresh => 0,
            Window::Extended { served } => served,
        };
        let missing = requests.saturating_sub(served).max(1);
        let wanted = match share {
            Some(s) if s.canary > 0.0 => seconds_for(missing, self.rate * s.canary),
            // Not measured yet, or nothing matched: probe (again).
            _ => self.probe(),
        };
        let left = plan.step_timeout.saturating_sub(elapsed).max(MIN_BAKE);
        Bake {
            step: i,
            stage,
            share,
            measured,
            requests,
            missing,
            interval: wanted.min(left),
            capped: wanted > left,
        }
    }

    /// The bake of each step's first window, as known at the start.
    pub fn schedule(&self, plan: &Plan) -> Vec<Bake> {
        (0..plan.step_count())
            .map(|i| self.next(plan, i, Window::Fresh, Duration::ZERO))
            .collect()
    }

    /// One line per step whose first window cannot gather the requests the
    /// test needs within the progress deadline, with what happens instead.
    pub fn warnings(&self, plan: &Plan) -> Vec<String> {
        let deadline = plan.step_timeout;
        let mut out = Vec::new();
        for b in self.schedule(plan).iter().filter(|b| b.capped) {
            let at_deadline =
                b.share.map_or(self.rate, |s| self.rate * s.canary) * deadline.as_secs_f64();
            let what = if b.share.is_none() {
                "even if every request matched".to_owned()
            } else {
                format!(
                    "at {:.1} requests/s for {}",
                    b.share.map_or(self.rate, |s| self.rate * s.canary),
                    plan.to
                )
            };
            let end = if at_deadline < self.demand.min_requests as f64 {
                format!(
                    "it will end inconclusive (about {at_deadline:.0} requests < --min-requests {})",
                    self.demand.min_requests
                )
            } else {
                format!(
                    "it will be judged at the deadline on about {at_deadline:.0} requests, too few to detect {} errors reliably",
                    percent(self.demand.target_err)
                )
            };
            out.push(format!(
                "warning: --interval auto: step {}/{} ({}) needs {} requests ({what}) and cannot reach significance within the progress deadline (--timeout {}): {end}; raise --timeout{}, or the traffic",
                b.step + 1,
                plan.step_count(),
                self.stage_text(plan, b),
                b.requests,
                human(deadline),
                match b.stage {
                    Stage::Mirror => ", --mirror-percent",
                    Stage::Weighted => ", the step weights",
                    _ => "",
                },
            ));
        }
        out
    }

    fn stage_text(&self, plan: &Plan, b: &Bake) -> String {
        match (b.stage, b.share) {
            (Stage::Weighted, Some(s)) => format!("{} at {}", plan.to, percent(s.canary)),
            (Stage::Mirror, Some(s)) => {
                format!(
                    "mirroring {} of {} to {}",
                    percent(s.canary),
                    plan.from,
                    plan.to
                )
            }
            (Stage::Switched, _) => format!("switched, {} at 100%", plan.to),
            (Stage::Match, Some(s)) if s.canary > 0.0 => {
                format!("match, {} of requests matched", percent(s.canary))
            }
            (Stage::Match, Some(_)) => "match, nothing matched".to_owned(),
            (_, None) => "match, share unknown".to_owned(),
        }
    }

    /// The bake in words: the stage, the share and where it comes from, the
    /// requests needed and the wait.
    pub fn describe(&self, plan: &Plan, b: &Bake) -> String {
        let mut s = format!(
            "step {}/{} ({}): ",
            b.step + 1,
            plan.step_count(),
            self.stage_text(plan, b)
        );
        match b.share {
            None => {
                let _ = write!(
                    s,
                    "probing {} to measure the share of requests that match",
                    human(b.interval)
                );
            }
            Some(sh) if sh.canary <= 0.0 => {
                let _ = write!(
                    s,
                    "no request matched so far ({:.1} requests/s all went to {}); holding and measuring again for {}; the step ends inconclusive at the progress deadline unless requests match",
                    self.rate,
                    plan.from,
                    human(b.interval)
                );
            }
            Some(sh) => {
                let copies = if b.stage == Stage::Mirror {
                    " as mirrored copies"
                } else {
                    ""
                };
                let source = if b.measured { " (measured)" } else { "" };
                let _ = write!(
                    s,
                    "{:.1} requests/s × {}{source}{copies} = {:.1}/s for {}; ",
                    self.rate,
                    percent(sh.canary),
                    self.rate * sh.canary,
                    plan.to
                );
                if b.missing < b.requests {
                    let _ = write!(s, "{} more of ", b.missing);
                }
                let _ = write!(
                    s,
                    "{} requests to detect {} errors against {} at {} confidence: bake {}",
                    b.requests,
                    percent(self.demand.target_err),
                    percent(self.demand.base_err),
                    percent(self.demand.confidence),
                    human(b.interval)
                );
            }
        }
        if b.capped {
            let _ = write!(
                s,
                " (cut at the progress deadline, --timeout {}: judged on fewer requests)",
                human(plan.step_timeout)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::analysis::{Verdict, VersionStats};
    use crate::rollout::state::Timestamp;
    use crate::rollout::strategy::{Match, Preview, Strategy};

    fn plan(strategy: Strategy, steps: &[u8]) -> Plan {
        Plan {
            step_timeout: Duration::from_secs(600),
            strategy,
            ..crate::rollout::machine::tests::plan(steps)
        }
    }

    fn demand() -> Demand {
        // Default thresholds: 99% success rate, a clean baseline.
        Demand::new(99.0, (1000.0, 0.0), 0.95, 20)
    }

    fn mirror(percent: u8) -> Strategy {
        Strategy::Mirror {
            percent,
            iterations: 2,
        }
    }

    fn rule() -> Match {
        "header:x-canary=true".parse().unwrap()
    }

    /// A/B on `rule()` for `iterations` windows.
    fn ab(iterations: u32) -> Strategy {
        Strategy::Ab {
            rule: rule(),
            iterations,
        }
    }

    fn record(canary: u64, baseline: u64, secs: u64) -> DecisionRecord {
        let v = |version: &str, requests| VersionStats {
            version: version.to_owned(),
            requests,
            errors: 0,
            failures: Default::default(),
            success_rate: None,
            p50_ms: None,
            p99_ms: None,
        };
        DecisionRecord {
            window_start: Timestamp::from_millis(0),
            window_end: Timestamp::from_millis(secs * 1000),
            baseline: v("v1", baseline),
            canary: v("v2", canary),
            comparison: None,
            checks: Vec::new(),
            verdict: Verdict::Hold,
            reason: String::new(),
            evidence: None,
        }
    }

    #[test]
    fn sequential_bakes_each_step_from_the_sequential_test() {
        // The defaults: --analysis sequential at 99%, a clean baseline.
        let d = Demand::for_thresholds(&Thresholds::default(), (1000.0, 0.0));
        assert_eq!(d.analysis, Analysis::Sequential);
        assert_eq!(
            (d.base_err, d.target_err, d.confidence),
            (0.001, 0.01, 0.99)
        );
        let p = plan(Strategy::Canary, &[10, 25, 50, 100]);
        let pace = Pace::new(200.0, d.clone());
        let s = pace.schedule(&p);
        for (b, share) in s.iter().zip([0.1, 0.25, 0.5]) {
            let n = sequential::requests_to_reject(0.001, 0.01, share, 0.01, POWER);
            assert_eq!(b.requests, n.max(20), "{b:?}");
            assert_eq!(b.interval, seconds_for(n, 200.0 * share), "{b:?}");
        }
        // It needs more than one window of the window rule's z-test at 95%.
        let w = Demand::for_thresholds(&Thresholds::window(), (1000.0, 0.0));
        assert_eq!(w.analysis, Analysis::Window);
        assert!(s[0].requests > w.requests(Share::split(0.1)), "{s:?}");
        // The 100% step has no baseline: the one-sample planning number.
        assert_eq!(
            s[3].requests,
            one_sample(0.001, 0.01, 0.99, POWER).max(20),
            "{s:?}"
        );
        let text = pace.describe(&p, &s[0]);
        assert!(
            text.contains(&format!(
                "{} requests to detect 1% errors against 0.1% at 99% confidence",
                s[0].requests
            )),
            "{text}"
        );
    }

    #[test]
    fn demand_follows_the_threshold_and_the_baseline() {
        let d = demand();
        assert_eq!((d.base_err, d.target_err), (0.001, 0.01));
        // A noisy baseline raises the bar to twice its error share.
        let noisy = Demand::new(99.0, (1000.0, 20.0), 0.95, 20);
        assert!((noisy.target_err - 0.04).abs() < 1e-12);
        // Without baseline traffic: the 0.1% floor.
        assert_eq!(Demand::new(90.0, (0.0, 0.0), 0.95, 20).base_err, 0.001);
    }

    #[test]
    fn one_sample_needs_fewer_requests_than_any_split() {
        let d = demand();
        let alone = d.requests(Share {
            canary: 1.0,
            baseline: 0.0,
        });
        assert_eq!(alone, one_sample(0.001, 0.01, 0.95, 0.8).max(20));
        for w in [0.01, 0.1, 0.5, 0.9, 0.99] {
            assert!(d.requests(Share::split(w)) > alone, "w = {w}");
        }
        // --min-requests is the floor.
        let strict = Demand {
            min_requests: 100_000,
            ..d
        };
        assert_eq!(strict.requests(Share::split(0.5)), 100_000);
    }

    #[test]
    fn canary_bakes_each_step_from_its_weight() {
        let p = plan(Strategy::Canary, &[10, 25, 50, 100]);
        let pace = Pace::new(20.0, demand());
        let s = pace.schedule(&p);
        assert_eq!(s.len(), 4);
        // Smaller steps bake longer: v2 gets fewer requests per second (it
        // needs somewhat fewer of them against a larger baseline, not
        // proportionally fewer).
        assert!(s[0].interval > s[1].interval, "{s:?}");
        assert!(s[1].interval > s[2].interval, "{s:?}");
        assert_eq!(s[0].share, Some(Share::split(0.1)));
        // Whole seconds: requests / (rate × share), rounded up.
        let want = (s[0].requests as f64 / 2.0).ceil();
        assert_eq!(s[0].interval, Duration::from_secs_f64(want));
        // The 100% step has no baseline: the one-sample size.
        assert_eq!(s[3].share.map(|s| s.baseline), Some(0.0));
        assert!(s.iter().all(|b| !b.capped && !b.measured));
    }

    #[test]
    fn lower_traffic_bakes_longer() {
        let p = plan(Strategy::Canary, &[10, 50, 100]);
        let busy = Pace::new(50.0, demand()).next(&p, 0, Window::Fresh, Duration::ZERO);
        let quiet = Pace::new(5.0, demand()).next(&p, 0, Window::Fresh, Duration::ZERO);
        assert_eq!(busy.requests, quiet.requests);
        assert!(quiet.interval > busy.interval * 5, "{quiet:?} vs {busy:?}");
    }

    #[test]
    fn mirror_bakes_from_the_mirror_percent() {
        let pace = Pace::new(20.0, demand());
        let full = pace.next(
            &plan(mirror(100), &[50, 100]),
            0,
            Window::Fresh,
            Duration::ZERO,
        );
        let tenth = pace.next(
            &plan(mirror(10), &[50, 100]),
            0,
            Window::Fresh,
            Duration::ZERO,
        );
        assert_eq!(full.stage, Stage::Mirror);
        // The baseline keeps all the real traffic; v2 gets copies of the share.
        assert_eq!(
            tenth.share,
            Some(Share {
                canary: 0.1,
                baseline: 1.0
            })
        );
        assert_eq!(full.share.map(|s| s.canary), Some(1.0));
        // Fewer copies needed against a baseline ten times larger, but they
        // come ten times slower.
        assert!(tenth.requests < full.requests, "{tenth:?} vs {full:?}");
        assert!(tenth.interval > full.interval * 3, "{tenth:?} vs {full:?}");
        // After the mirror iterations the steps bake from their weights.
        let p = plan(mirror(10), &[50, 100]);
        let s = pace.schedule(&p);
        assert_eq!(
            s.iter().map(|b| b.stage).collect::<Vec<_>>(),
            [
                Stage::Mirror,
                Stage::Mirror,
                Stage::Weighted,
                Stage::Weighted
            ]
        );
        assert_eq!(s[2].share, Some(Share::split(0.5)));
        assert!(s[0].interval > s[2].interval, "{s:?}");
    }

    #[test]
    fn bluegreen_mirror_preview_then_the_switch() {
        let p = plan(
            Strategy::BlueGreen {
                preview: Preview::Mirror { percent: 25 },
                iterations: 2,
            },
            &[10, 100],
        );
        let s = Pace::new(20.0, demand()).schedule(&p);
        assert_eq!(
            s.iter().map(|b| b.stage).collect::<Vec<_>>(),
            [Stage::Mirror, Stage::Mirror, Stage::Switched]
        );
        assert_eq!(s[0].share.map(|s| s.canary), Some(0.25));
        assert_eq!(
            s[2].share,
            Some(Share {
                canary: 1.0,
                baseline: 0.0
            })
        );
        assert!(s[2].interval < s[0].interval, "{s:?}");
    }

    #[test]
    fn match_probes_then_sizes_from_the_measured_share() {
        for strategy in [
            ab(3),
            Strategy::BlueGreen {
                preview: Preview::Match(rule()),
                iterations: 3,
            },
        ] {
            let p = plan(strategy, &[10]);
            let mut pace = Pace::new(40.0, demand());
            let probe = pace.next(&p, 0, Window::Fresh, Duration::ZERO);
            assert_eq!((probe.stage, probe.share), (Stage::Match, None));
            assert_eq!(probe.interval, pace.probe());
            assert!(probe.interval >= PROBE);
            assert!(pace.describe(&p, &probe).contains("probing"));
            // 20% of 40 requests/s matched over 5 s.
            assert_eq!(pace.observe(Stage::Match, &record(40, 160, 5)), Some(0.2));
            assert_eq!(pace.rate(), 40.0);
            let held = pace.next(
                &p,
                0,
                Window::Extended { served: 40 },
                Duration::from_secs(5),
            );
            assert!(held.measured);
            assert_eq!(held.share, Some(Share::split(0.2)));
            assert_eq!(held.missing, held.requests - 40);
            assert_eq!(
                held.interval,
                Duration::from_secs_f64((held.missing as f64 / 8.0).ceil())
            );
            // The next iteration is a fresh window at the measured share.
            let next = pace.next(&p, 1, Window::Fresh, Duration::ZERO);
            assert_eq!(next.missing, next.requests);
            assert!(next.interval > held.interval);
            let text = pace.describe(&p, &next);
            assert!(text.contains("20% of requests matched"), "{text}");
            assert!(text.contains("(measured)"), "{text}");
        }
    }

    #[test]
    fn a_lower_matched_share_bakes_longer() {
        let p = plan(ab(2), &[10]);
        let mut pace = Pace::new(40.0, demand());
        pace.observe(Stage::Match, &record(100, 100, 5));
        let half = pace.next(&p, 1, Window::Fresh, Duration::ZERO);
        pace.observe(Stage::Match, &record(4, 196, 5));
        let fiftieth = pace.next(&p, 1, Window::Fresh, Duration::ZERO);
        assert!(
            fiftieth.interval > half.interval * 5,
            "{fiftieth:?} vs {half:?}"
        );
    }

    #[test]
    fn nothing_matched_holds_at_the_probe_and_says_so() {
        let p = plan(ab(2), &[10]);
        let mut pace = Pace::new(40.0, demand());
        assert_eq!(pace.observe(Stage::Match, &record(0, 200, 5)), Some(0.0));
        let b = pace.next(
            &p,
            0,
            Window::Extended { served: 0 },
            Duration::from_secs(5),
        );
        assert_eq!(b.interval, pace.probe());
        let text = pace.describe(&p, &b);
        assert!(text.contains("match, nothing matched"), "{text}");
        assert!(text.contains("no request matched so far"), "{text}");
        assert!(
            text.contains("ends inconclusive at the progress deadline"),
            "{text}"
        );
        // A window without any traffic keeps the estimate.
        assert_eq!(pace.observe(Stage::Match, &record(0, 0, 5)), None);
        assert_eq!(pace.matched(), Some(0.0));
    }

    #[test]
    fn every_window_updates_the_rate_the_next_ones_are_sized_from() {
        let p = plan(mirror(10), &[50, 100]);
        let mut pace = Pace::new(20.0, demand());
        let before = pace.next(&p, 2, Window::Fresh, Duration::ZERO);
        // A mirror window: v1's real requests are the live traffic; v2's
        // copies are not counted again. 50 requests/s now.
        assert_eq!(pace.observe(Stage::Mirror, &record(25, 250, 5)), None);
        assert_eq!(pace.rate(), 50.0);
        let after = pace.next(&p, 2, Window::Fresh, Duration::ZERO);
        assert!(after.interval < before.interval, "{after:?} vs {before:?}");
        // A weighted window counts both versions; the switched one only v2.
        pace.observe(Stage::Weighted, &record(10, 10, 2));
        assert_eq!(pace.rate(), 10.0);
        pace.observe(Stage::Switched, &record(60, 0, 3));
        assert_eq!(pace.rate(), 20.0);
        // An empty (or unreadable) window keeps the estimate.
        pace.observe(Stage::Weighted, &record(0, 0, 5));
        assert_eq!((pace.rate(), pace.matched()), (20.0, None));
    }

    #[test]
    fn no_window_runs_past_the_deadline() {
        let mut p = plan(mirror(1), &[50, 100]);
        p.step_timeout = Duration::from_secs(60);
        let pace = Pace::new(2.0, demand());
        let b = pace.next(&p, 0, Window::Fresh, Duration::ZERO);
        assert!(b.capped);
        assert_eq!(b.interval, Duration::from_secs(60));
        let late = pace.next(
            &p,
            0,
            Window::Extended { served: 1 },
            Duration::from_secs(45),
        );
        assert_eq!(late.interval, Duration::from_secs(15));
        assert!(
            pace.describe(&p, &b)
                .contains("cut at the progress deadline")
        );
    }

    #[test]
    fn warnings_name_the_steps_that_cannot_reach_significance() {
        // --success-rate 90: 60 requests at a 50/50 split, 20 (the
        // --min-requests floor) against a large baseline or alone.
        let demand = || Demand::new(90.0, (1000.0, 0.0), 0.95, 20);
        let mut p = plan(mirror(5), &[50, 100]);
        p.step_timeout = Duration::from_secs(60);
        // 2 requests/s: 5% copies give 6 requests in a minute, under
        // --min-requests; the 50% (60 s) and 100% steps make it.
        let w = Pace::new(2.0, demand()).warnings(&p);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("warning: --interval auto: step 1/4 (mirroring 5% of v1 to v2)"),
            "{}",
            w[0]
        );
        for part in [
            "within the progress deadline (--timeout 1m)",
            "end inconclusive (about 6 requests < --min-requests 20)",
            "raise --timeout, --mirror-percent, or the traffic",
        ] {
            assert!(w[0].contains(part), "{}", w[0]);
        }
        assert!(w[1].contains("step 2/4"), "{}", w[1]);
        // The same traffic at 100% mirrored is fine.
        assert!(
            Pace::new(2.0, demand())
                .warnings(&plan(mirror(100), &[50, 100]))
                .is_empty()
        );
        // Match steps warn only when even full traffic would not do.
        let ab = |timeout| {
            let mut p = plan(ab(1), &[10]);
            p.step_timeout = timeout;
            Pace::new(2.0, demand()).warnings(&p)
        };
        assert!(ab(Duration::from_secs(600)).is_empty());
        let w = ab(Duration::from_secs(5));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("(match, share unknown)"), "{}", w[0]);
        assert!(w[0].contains("even if every request matched"), "{}", w[0]);
        // Canary: the small first step is the one that cannot make it.
        let mut c = plan(Strategy::Canary, &[1, 50, 100]);
        c.step_timeout = Duration::from_secs(120);
        let w = Pace::new(5.0, demand()).warnings(&c);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("step 1/3 (v2 at 1%)"), "{}", w[0]);
        assert!(w[0].contains("the step weights"), "{}", w[0]);
    }
}
