//! The rollout as a pure state machine: [`Event`]s in, [`Action`]s out. No
//! IO and no clock: the driver passes the time in with each event, executes
//! the returned action against the target, and persists [`Machine::state`].
//!
//! ```text
//! start ──► Step(0) ──analysed──► pass ──► Step(i+1) … last ──► Promoted | Paused
//!                      │           hold ──► Analyse (window extended) ──deadline──► TimedOut
//!                      │           fail ──► Analyse … × threshold ──► RolledBack
//!  interrupt ──► RolledBack (or Paused)     gate closed ──► counts as a failed check
//! ```
//!
//! Strategies only change what each step is (see [`Plan::stage_at`]): `ab`
//! has `iterations` match steps; `mirror` has `iterations` mirror steps,
//! then the canary steps; `bluegreen` has `iterations` preview steps, then
//! one switched step at 100% whose failing analysis rolls back at once
//! (whatever the threshold), as Argo Rollouts' post-promotion analysis does.
//! With manual promotion, `bluegreen` pauses *before* the switch.

use std::collections::BTreeMap;
use std::time::Duration;

use super::analysis::{Analysis, DecisionRecord, Thresholds, Verdict};
use super::sequential::{Evidence, TestName};
use super::state::{Ending, Held, Phase, RolloutState, Settings, Timestamp};
use super::strategy::{Stage, Strategy};
use crate::traffic::{Version, Weight};

/// A validated rollout plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Stable version.
    pub from: Version,
    /// New version.
    pub to: Version,
    /// Canary weight per step, strictly increasing, each 1..=100.
    pub steps: Vec<Weight>,
    /// Analysis interval.
    pub interval: Duration,
    /// Failed checks before rolling back.
    pub threshold: u32,
    /// Progress deadline per step.
    pub step_timeout: Duration,
    /// Hold at the last step until `meshctl promote`.
    pub manual_promotion: bool,
    /// Analysis thresholds.
    pub thresholds: Thresholds,
    /// Metrics source description (for the record).
    pub metrics: String,
    /// Canary steps, `ab` or `bluegreen` (then `steps` is ignored), or
    /// `mirror` (mirror iterations, then `steps`).
    pub strategy: Strategy,
    /// Sticky sessions: the cookie whose routes follow the weights.
    pub sticky_cookie: Option<crate::routing::sticky::CookieName>,
}

/// A plan that breaks the rules.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// No steps.
    #[error("--steps is empty: give canary weights such as 10,25,50,100")]
    NoSteps,
    /// A step of 0 or not increasing.
    #[error("--steps must be increasing weights from 1 to 100 (got {0}): e.g. 10,25,50,100")]
    Steps(String),
    /// from == to.
    #[error("--from and --to are both {0:?}: roll out to a different version")]
    SameVersion(String),
    /// threshold of 0.
    #[error("--threshold must be at least 1 (failed checks before rolling back)")]
    Threshold,
    /// interval of 0.
    #[error("--interval must be longer than 0 (e.g. 30s)")]
    Interval,
    /// `ab`, `mirror` or `bluegreen` without iterations.
    #[error(
        "--iterations must be at least 1 for --strategy {0} (analyses before the weights move)"
    )]
    Iterations(&'static str),
    /// Bad success rate.
    #[error("--success-rate {0} is not a percentage: use a number from 0 to 100 (e.g. 99)")]
    SuccessRate(String),
}

/// What to do when the driver is interrupted (SIGINT/SIGTERM): the domain
/// value of `--on-interrupt` and `rollout.onInterrupt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnInterrupt {
    /// Send 100% back to the stable version (default).
    #[default]
    Rollback,
    /// Leave the weights where they are, phase Paused.
    Pause,
}

/// Something that happened.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A window was analysed.
    Analysed(Box<DecisionRecord>),
    /// SIGINT / SIGTERM.
    Interrupted(OnInterrupt),
}

/// What the driver must do next.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Apply these weights (with the state), start a fresh window, wait an interval, analyse.
    Step {
        /// Canary weight.
        weight: Weight,
    },
    /// Persist the state, wait an interval, analyse again. `extend` keeps the
    /// window's start (the step is held for lack of traffic).
    Analyse {
        /// Keep the window start.
        extend: bool,
    },
    /// Persist the state (phase Paused) and wait for `meshctl promote` / `rollback`.
    Pause,
    /// Apply the final weights with the state and stop.
    Finish(Ending),
}

/// The state machine.
#[derive(Clone, Debug)]
pub struct Machine {
    plan: Plan,
    state: RolloutState,
}

// === impl Plan ===

impl Plan {
    /// Checks the plan's invariants.
    pub fn validate(&self) -> Result<(), PlanError> {
        let uses_steps = matches!(self.strategy, Strategy::Canary | Strategy::Mirror { .. });
        if !self.strategy.is_canary() && self.strategy.iterations() == 0 {
            return Err(PlanError::Iterations(self.strategy.name()));
        }
        if uses_steps {
            if self.steps.is_empty() {
                return Err(PlanError::NoSteps);
            }
            let ok = self.steps.windows(2).all(|w| w[0] < w[1]) && self.steps[0] > Weight::ZERO;
            if !ok {
                let list: Vec<String> = self.steps.iter().map(ToString::to_string).collect();
                return Err(PlanError::Steps(list.join(",")));
            }
        }
        if self.from == self.to {
            return Err(PlanError::SameVersion(self.to.to_string()));
        }
        if self.threshold == 0 {
            return Err(PlanError::Threshold);
        }
        if self.interval.is_zero() {
            return Err(PlanError::Interval);
        }
        let sr = self.thresholds.success_rate;
        if !(0.0..=100.0).contains(&sr) {
            return Err(PlanError::SuccessRate(sr.to_string()));
        }
        Ok(())
    }

    fn preview_steps(&self) -> usize {
        usize::try_from(self.strategy.iterations()).unwrap_or(usize::MAX)
    }

    /// How many steps (analysed intervals) the rollout has.
    pub fn step_count(&self) -> usize {
        let n = self.preview_steps();
        match self.strategy {
            Strategy::Canary => self.steps.len(),
            Strategy::Ab { .. } => n,
            Strategy::Mirror { .. } => n.saturating_add(self.steps.len()),
            Strategy::BlueGreen { .. } => n.saturating_add(1),
        }
    }

    /// What the route carries at step `i`.
    pub fn stage_at(&self, i: usize) -> Stage {
        match self.strategy {
            Strategy::Canary => Stage::Weighted,
            _ if i < self.preview_steps() => self.strategy.preview_stage(),
            Strategy::BlueGreen { .. } => Stage::Switched,
            _ => Stage::Weighted,
        }
    }

    /// The weighted route's canary weight at step `i` (0 during a match or
    /// mirror preview: only matching requests, or copies, reach the new
    /// version; 100 once `bluegreen` switched).
    pub fn weight_at(&self, i: usize) -> Weight {
        match self.stage_at(i) {
            Stage::Match | Stage::Mirror => Weight::ZERO,
            Stage::Switched => Weight::FULL,
            Stage::Weighted => {
                let j = i.saturating_sub(match self.strategy {
                    Strategy::Mirror { .. } => self.preview_steps(),
                    _ => 0,
                });
                self.steps[j.min(self.steps.len() - 1)]
            }
        }
    }
}

fn weights(from: &Version, to: &Version, canary: Weight) -> BTreeMap<String, u8> {
    [
        (from.to_string(), canary.complement().get()),
        (to.to_string(), canary.get()),
    ]
    .into()
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

// === impl Machine ===

impl Machine {
    /// Starts a rollout at `now`: the first action applies step 0.
    pub fn start(plan: Plan, driver: String, now: Timestamp) -> Result<(Self, Action), PlanError> {
        plan.validate()?;
        let first = plan.weight_at(0);
        let state = RolloutState {
            phase: Phase::Progressing,
            ending: None,
            from: plan.from.to_string(),
            to: plan.to.to_string(),
            steps: (0..plan.step_count())
                .map(|i| plan.weight_at(i).get())
                .collect(),
            step: 0,
            weights: weights(&plan.from, &plan.to, first),
            started: now,
            updated: now,
            step_started: now,
            failed_checks: 0,
            held: None,
            history: Vec::new(),
            reason: None,
            driver: Some(driver),
            verification: None,
            settings: Settings {
                interval_ms: ms(plan.interval),
                threshold: plan.threshold,
                step_timeout_ms: ms(plan.step_timeout),
                manual_promotion: plan.manual_promotion,
                thresholds: plan.thresholds.clone(),
                metrics: plan.metrics.clone(),
            },
            strategy: plan.strategy.clone(),
            stage: plan.stage_at(0),
            sticky_cookie: plan.sticky_cookie.clone(),
            evidence: (plan.thresholds.analysis == Analysis::Sequential)
                .then(|| Evidence::new(plan.thresholds.levels())),
        };
        Ok((Self { plan, state }, Action::Step { weight: first }))
    }

    /// The state to persist.
    pub fn state(&self) -> &RolloutState {
        &self.state
    }

    /// Replaces the state (after another process changed it).
    pub fn set_state(&mut self, state: RolloutState) {
        self.state = state;
    }

    /// Replaces the sequential evidence (the driver feeds it each look).
    pub fn set_evidence(&mut self, evidence: Evidence) {
        self.state.evidence = Some(evidence);
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The canary weight of the current step.
    pub fn current_weight(&self) -> Weight {
        self.plan.weight_at(self.state.step)
    }

    fn finish(&mut self, ending: Ending, reason: String, now: Timestamp) -> Action {
        let canary = if ending == Ending::Promoted {
            Weight::FULL
        } else {
            Weight::ZERO
        };
        self.state.weights = weights(&self.plan.from, &self.plan.to, canary);
        self.state.phase = if ending == Ending::Promoted {
            Phase::Promoted
        } else {
            Phase::RolledBack
        };
        self.state.ending = Some(ending);
        self.state.stage = Stage::Weighted;
        self.state.reason = Some(reason);
        self.state.held = None;
        self.state.driver = None;
        self.state.updated = now;
        Action::Finish(ending)
    }

    /// Feeds one event; returns what to do next.
    pub fn on(&mut self, event: Event, now: Timestamp) -> Action {
        self.state.updated = now;
        match event {
            Event::Interrupted(OnInterrupt::Rollback) => self.finish(
                Ending::RolledBack,
                "interrupted (SIGINT/SIGTERM); rolled back (--on-interrupt rollback)".to_owned(),
                now,
            ),
            Event::Interrupted(OnInterrupt::Pause) => {
                self.state.phase = Phase::Paused;
                self.state.driver = None;
                self.state.reason = Some(format!(
                    "interrupted (SIGINT/SIGTERM) at {}; paused (--on-interrupt pause): run `meshctl promote` or `meshctl rollback`",
                    self.state.weights_text()
                ));
                Action::Pause
            }
            Event::Analysed(record) => self.on_record(*record, now),
        }
    }

    fn on_record(&mut self, record: DecisionRecord, now: Timestamp) -> Action {
        let (verdict, rejected) = (record.verdict, record.rejected_by_evidence());
        let (canary_requests, reason) = (record.canary.requests, record.reason.clone());
        self.state.push_record(record);
        match verdict {
            Verdict::Pass => {
                self.state.held = None;
                let next = self.state.step + 1;
                let before_switch = self.plan.manual_promotion
                    && next < self.plan.step_count()
                    && self.plan.stage_at(next) == Stage::Switched;
                if next < self.plan.step_count() && !before_switch {
                    self.state.step = next;
                    self.state.step_started = now;
                    self.state.stage = self.plan.stage_at(next);
                    let w = self.plan.weight_at(next);
                    self.state.weights = weights(&self.plan.from, &self.plan.to, w);
                    Action::Step { weight: w }
                } else if self.plan.manual_promotion {
                    self.state.phase = Phase::Paused;
                    self.state.reason = Some(format!(
                        "every step passed; paused at {} for manual promotion: run `meshctl promote`",
                        self.state.traffic_text()
                    ));
                    Action::Pause
                } else {
                    let n = self.plan.step_count();
                    // With the sequential rule, how tight the bounds were.
                    let bounds: String = self
                        .state
                        .evidence
                        .as_ref()
                        .map(|e| {
                            let to = self.plan.to.as_str();
                            e.outcomes(to, self.plan.from.as_str())
                                .into_iter()
                                .filter(|o| {
                                    matches!(o.test, TestName::SuccessRate | TestName::MaxP99)
                                })
                                .map(|o| format!("; {}", o.detail))
                                .collect()
                        })
                        .unwrap_or_default();
                    self.finish(
                        Ending::Promoted,
                        format!(
                            "all {n} steps passed analysis; {} takes 100%{bounds}",
                            self.plan.to
                        ),
                        now,
                    )
                }
            }
            Verdict::Hold => {
                let required = self.plan.thresholds.min_requests;
                let since = self.state.held.as_ref().map_or(now, |h| h.since);
                self.state.held = Some(Held {
                    since,
                    canary_requests,
                    required,
                });
                if now.since(self.state.step_started) >= self.plan.step_timeout {
                    self.finish(
                        Ending::TimedOut,
                        format!(
                            "inconclusive: {canary_requests} canary requests < {required} required"
                        ),
                        now,
                    )
                } else {
                    Action::Analyse { extend: true }
                }
            }
            Verdict::Fail => {
                self.state.held = None;
                self.state.failed_checks += 1;
                if self.state.stage == Stage::Switched {
                    self.finish(
                        Ending::RolledBack,
                        format!(
                            "post-switch analysis failed: {reason}; {} takes 100% again",
                            self.plan.from
                        ),
                        now,
                    )
                } else if rejected {
                    // A statistical failure: the evidence already bounds the
                    // false-rollback probability, so it is not retried.
                    self.finish(
                        Ending::RolledBack,
                        format!(
                            "the sequential analysis rejected {}: {reason}",
                            self.plan.to
                        ),
                        now,
                    )
                } else if self.state.failed_checks >= self.plan.threshold {
                    self.finish(
                        Ending::RolledBack,
                        format!(
                            "analysis failed {} time(s) (threshold {}): {reason}",
                            self.state.failed_checks, self.plan.threshold
                        ),
                        now,
                    )
                } else {
                    Action::Analyse { extend: false }
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::metrics::VersionCounters;
    use crate::rollout::analysis::{Window, analyse, unreadable};

    /// A canary plan v1 -> v2 with these steps, 1s windows, a 10s deadline.
    pub(crate) fn plan(steps: &[u8]) -> Plan {
        Plan {
            from: "v1".parse().unwrap(),
            to: "v2".parse().unwrap(),
            steps: steps
                .iter()
                .map(|s| Weight::try_from(*s).unwrap())
                .collect(),
            interval: Duration::from_secs(1),
            threshold: 2,
            step_timeout: Duration::from_secs(10),
            manual_promotion: false,
            thresholds: Thresholds::window(),
            metrics: "test".into(),
            strategy: Strategy::Canary,
            sticky_cookie: None,
        }
    }

    fn t(s: u64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    fn record(canary_requests: f64, canary_errors: f64) -> DecisionRecord {
        let b = VersionCounters {
            requests: 1000.0,
            errors: 0.0,
            buckets: vec![(1.0, 1000.0), (f64::INFINITY, 1000.0)],
            ..VersionCounters::default()
        };
        let c = VersionCounters {
            requests: canary_requests,
            errors: canary_errors,
            buckets: vec![(1.0, canary_requests), (f64::INFINITY, canary_requests)],
            ..VersionCounters::default()
        };
        analyse(
            &Window {
                start: t(0),
                end: t(1),
                baseline_version: "v1",
                baseline: &b,
                canary_version: "v2",
                canary: &c,
            },
            &Thresholds::window(),
        )
    }

    /// Feeds one window of `(requests, errors)` per version to the
    /// machine's evidence and judges it, as the driver does.
    fn sequential_window(m: &mut Machine, canary: (f64, f64), at: u64) -> Action {
        let counters = |(requests, errors): (f64, f64)| VersionCounters {
            requests,
            errors,
            buckets: vec![
                (100.0, requests),
                (1000.0, requests),
                (f64::INFINITY, requests),
            ],
            ..VersionCounters::default()
        };
        let (b, c) = (counters((900.0, 1.0)), counters(canary));
        let mut evidence = m.state().evidence.clone().expect("sequential evidence");
        evidence.observe(
            &crate::rollout::sequential::Counts::from_counters(&c),
            &crate::rollout::sequential::Counts::from_counters(&b),
        );
        m.set_evidence(evidence);
        let w = Window {
            start: t(at - 1),
            end: t(at),
            baseline_version: "v1",
            baseline: &b,
            canary_version: "v2",
            canary: &c,
        };
        let record = crate::rollout::analysis::judge(
            &w,
            &m.plan().thresholds,
            m.state().evidence.as_ref().unwrap(),
        );
        m.on(Event::Analysed(Box::new(record)), t(at))
    }

    #[test]
    fn sequential_rejection_rolls_back_at_once_whatever_the_threshold() {
        let p = Plan {
            threshold: 5,
            thresholds: Thresholds::default(),
            ..plan(&[10, 50, 100])
        };
        let (mut m, _) = Machine::start(p, "me".into(), t(0)).unwrap();
        assert!(m.state().evidence.is_some());
        // 100 canary requests, 8 failed, against 1 of 900: rejected at once.
        let a = sequential_window(&mut m, (100.0, 8.0), 1);
        assert_eq!(a, Action::Finish(Ending::RolledBack));
        let s = m.state();
        assert_eq!(s.failed_checks, 1);
        let reason = s.reason.as_deref().unwrap();
        assert!(
            reason.starts_with(
                "the sequential analysis rejected v2: v2 errors 8 of 100 vs v1 1 of 900; p = "
            ),
            "{reason}"
        );
        assert!(reason.contains(" < 0.01 after 1 window"), "{reason}");
    }

    #[test]
    fn sequential_promotion_states_the_bounds() {
        let (mut m, _) = Machine::start(sequential(), "me".into(), t(0)).unwrap();
        assert!(matches!(
            sequential_window(&mut m, (1000.0, 0.0), 1),
            Action::Step { .. }
        ));
        let a = sequential_window(&mut m, (2000.0, 1.0), 2);
        assert_eq!(a, Action::Finish(Ending::Promoted));
        let reason = m.state().reason.clone().unwrap();
        assert!(
            reason.starts_with("all 2 steps passed analysis; v2 takes 100%; v2 error rate ≤ 0."),
            "{reason}"
        );
        assert!(
            reason.contains("with 99% confidence (1 of 3000 failed), floor 1%"),
            "{reason}"
        );
        assert!(
            reason.contains("v2 requests slower than 1000ms (bucket le=1000 at or above 500ms): 0 of 3000, share ≤ "),
            "{reason}"
        );
        // The evidence is part of the persisted state.
        let e = m.state().evidence.as_ref().unwrap();
        assert_eq!(e.windows, 2);
        assert_eq!(e.errors.canary.requests, 3000);
    }

    #[test]
    fn sequential_holds_until_min_requests_in_the_step() {
        let (mut m, _) = Machine::start(sequential(), "me".into(), t(0)).unwrap();
        assert_eq!(
            sequential_window(&mut m, (5.0, 0.0), 1),
            Action::Analyse { extend: true }
        );
        assert_eq!(m.state().held.as_ref().unwrap().required, 20);
    }

    #[test]
    fn healthy_rollout_steps_then_promotes() {
        let (mut m, a) = Machine::start(plan(&[10, 50, 100]), "me".into(), t(0)).unwrap();
        assert_eq!(
            a,
            Action::Step {
                weight: Weight::try_from(10u8).unwrap()
            }
        );
        assert_eq!(m.state().weights_text(), "v1=90 v2=10");
        let a = m.on(Event::Analysed(Box::new(record(100.0, 0.0))), t(1));
        assert_eq!(
            a,
            Action::Step {
                weight: Weight::try_from(50u8).unwrap()
            }
        );
        assert_eq!(m.state().step, 1);
        let a = m.on(Event::Analysed(Box::new(record(100.0, 0.0))), t(2));
        assert_eq!(
            a,
            Action::Step {
                weight: Weight::FULL
            }
        );
        let a = m.on(Event::Analysed(Box::new(record(100.0, 0.0))), t(3));
        assert_eq!(a, Action::Finish(Ending::Promoted));
        let s = m.state();
        assert_eq!(
            (s.phase, s.weights_text().as_str()),
            (Phase::Promoted, "v1=0 v2=100")
        );
        assert_eq!(
            s.reason.as_deref(),
            Some("all 3 steps passed analysis; v2 takes 100%")
        );
        assert_eq!(s.history.len(), 3);
        assert!(s.driver.is_none());
    }

    #[test]
    fn failures_roll_back_at_the_threshold() {
        let (mut m, _) = Machine::start(plan(&[10, 100]), "me".into(), t(0)).unwrap();
        let a = m.on(Event::Analysed(Box::new(record(100.0, 10.0))), t(1));
        assert_eq!(a, Action::Analyse { extend: false });
        assert_eq!(m.state().failed_checks, 1);
        let a = m.on(Event::Analysed(Box::new(record(100.0, 10.0))), t(2));
        assert_eq!(a, Action::Finish(Ending::RolledBack));
        assert_rolled_back(
            &m,
            "analysis failed 2 time(s) (threshold 2): v2: success rate 90.00%",
        );
    }

    #[test]
    fn unreadable_metrics_count_as_failures() {
        let (mut m, _) = Machine::start(plan(&[10, 100]), "me".into(), t(0)).unwrap();
        let down = || {
            Event::Analysed(Box::new(unreadable(
                t(0),
                t(1),
                "v1",
                "v2",
                "metrics source x is unreachable",
            )))
        };
        assert_eq!(m.on(down(), t(1)), Action::Analyse { extend: false });
        assert_eq!(m.on(down(), t(2)), Action::Finish(Ending::RolledBack));
    }

    #[test]
    fn too_little_traffic_holds_then_times_out_inconclusive() {
        let (mut m, _) = Machine::start(plan(&[10, 100]), "me".into(), t(0)).unwrap();
        for s in 1..10 {
            assert_eq!(
                m.on(Event::Analysed(Box::new(record(3.0, 3.0))), t(s)),
                Action::Analyse { extend: true }
            );
            let held = m.state().held.clone().unwrap();
            assert_eq!(
                (held.since, held.canary_requests, held.required),
                (t(1), 3, 20)
            );
            assert_eq!(
                m.state().failed_checks,
                0,
                "holding never counts as failing"
            );
        }
        let a = m.on(Event::Analysed(Box::new(record(3.0, 0.0))), t(10));
        assert_eq!(a, Action::Finish(Ending::TimedOut));
        assert_eq!(
            m.state().reason.as_deref(),
            Some("inconclusive: 3 canary requests < 20 required")
        );
        assert_eq!(m.state().weights_text(), "v1=100 v2=0");
    }

    #[test]
    fn hold_then_enough_traffic_passes() {
        let (mut m, _) = Machine::start(plan(&[10, 100]), "me".into(), t(0)).unwrap();
        assert_eq!(
            m.on(Event::Analysed(Box::new(record(3.0, 0.0))), t(1)),
            Action::Analyse { extend: true }
        );
        assert!(matches!(
            m.on(Event::Analysed(Box::new(record(30.0, 0.0))), t(2)),
            Action::Step { .. }
        ));
        assert!(m.state().held.is_none());
    }

    #[test]
    fn manual_promotion_pauses_at_the_last_step() {
        let mut p = plan(&[10, 50]);
        p.manual_promotion = true;
        let (mut m, _) = Machine::start(p, "me".into(), t(0)).unwrap();
        m.on(Event::Analysed(Box::new(record(100.0, 0.0))), t(1));
        assert_eq!(
            m.on(Event::Analysed(Box::new(record(100.0, 0.0))), t(2)),
            Action::Pause
        );
        assert_eq!(m.state().phase, Phase::Paused);
        assert_eq!(m.state().weights_text(), "v1=50 v2=50");
    }

    #[test]
    fn interrupts_roll_back_or_pause() {
        let (mut m, _) = Machine::start(plan(&[10, 100]), "me".into(), t(0)).unwrap();
        assert_eq!(
            m.on(Event::Interrupted(OnInterrupt::Rollback), t(1)),
            Action::Finish(Ending::RolledBack)
        );
        assert_eq!(m.state().weights_text(), "v1=100 v2=0");
        let (mut m, _) = Machine::start(plan(&[10, 100]), "me".into(), t(0)).unwrap();
        assert_eq!(
            m.on(Event::Interrupted(OnInterrupt::Pause), t(1)),
            Action::Pause
        );
        assert_eq!(m.state().weights_text(), "v1=90 v2=10");
    }

    fn pass() -> Event {
        Event::Analysed(Box::new(record(100.0, 0.0)))
    }

    fn fail() -> Event {
        Event::Analysed(Box::new(record(100.0, 50.0)))
    }

    #[test]
    fn mirror_analyses_copies_then_runs_the_canary_steps() {
        let (mut m, a) = Machine::start(mirror(100, 2), "me".into(), t(0)).unwrap();
        assert_eq!(
            a,
            Action::Step {
                weight: Weight::ZERO
            }
        );
        assert_eq!(m.state().steps, vec![0, 0, 50, 100]);
        assert_eq!(
            (m.state().stage, m.state().traffic_text().as_str()),
            (Stage::Mirror, "v1=100 v2=0, mirroring 100% to v2")
        );
        assert_eq!(
            m.on(pass(), t(1)),
            Action::Step {
                weight: Weight::ZERO
            }
        );
        assert_eq!(m.state().stage, Stage::Mirror);
        let a = m.on(pass(), t(2));
        assert_eq!(
            (a, m.state().stage, m.state().weights_text()),
            (
                Action::Step {
                    weight: Weight::try_from(50u8).unwrap()
                },
                Stage::Weighted,
                "v1=50 v2=50".to_owned()
            )
        );
        m.on(pass(), t(3));
        assert_eq!(m.on(pass(), t(4)), Action::Finish(Ending::Promoted));
        assert_eq!(m.state().stage, Stage::Weighted);
    }

    #[test]
    fn mirror_failure_rolls_back_at_the_threshold() {
        let (mut m, _) = Machine::start(mirror(10, 3), "me".into(), t(0)).unwrap();
        assert_eq!(m.on(fail(), t(1)), Action::Analyse { extend: false });
        assert_eq!(m.state().stage, Stage::Mirror);
        assert_eq!(m.on(fail(), t(2)), Action::Finish(Ending::RolledBack));
        let s = m.state();
        assert_eq!(
            (s.stage, s.weights_text().as_str()),
            (Stage::Weighted, "v1=100 v2=0")
        );
    }

    /// Asserts `m` is back at v1 with a reason starting with `prefix`.
    fn assert_rolled_back(m: &Machine, prefix: &str) {
        let s = m.state();
        assert_eq!(s.weights_text(), "v1=100 v2=0");
        let reason = s.reason.as_deref().unwrap();
        assert!(reason.starts_with(prefix), "{reason:?}");
    }

    /// Steps 50 and 100 judged by the sequential analysis (the default thresholds).
    fn sequential() -> Plan {
        Plan {
            thresholds: Thresholds::default(),
            ..plan(&[50, 100])
        }
    }

    /// Mirroring `percent` for `iterations` windows, then steps 50 and 100.
    fn mirror(percent: u8, iterations: u32) -> Plan {
        let mut p = plan(&[50, 100]);
        p.strategy = Strategy::Mirror {
            percent,
            iterations,
        };
        p
    }

    fn bluegreen(iterations: u32) -> Plan {
        let mut p = plan(&[10]);
        p.strategy = Strategy::BlueGreen {
            preview: crate::rollout::strategy::Preview::Mirror { percent: 100 },
            iterations,
        };
        p
    }

    #[test]
    fn bluegreen_switches_in_one_step_then_analyses_once_more() {
        let (mut m, a) = Machine::start(bluegreen(2), "me".into(), t(0)).unwrap();
        assert_eq!(
            a,
            Action::Step {
                weight: Weight::ZERO
            }
        );
        assert_eq!(
            m.state().steps,
            vec![0, 0, 100],
            "never an intermediate weight"
        );
        m.on(pass(), t(1));
        assert_eq!(
            m.on(pass(), t(2)),
            Action::Step {
                weight: Weight::FULL
            }
        );
        assert_eq!(
            (m.state().stage, m.state().weights_text().as_str()),
            (Stage::Switched, "v1=0 v2=100")
        );
        assert_eq!(m.on(pass(), t(3)), Action::Finish(Ending::Promoted));
    }

    #[test]
    fn bluegreen_post_switch_failure_rolls_back_at_once() {
        let mut p = bluegreen(1);
        p.threshold = 5;
        let (mut m, _) = Machine::start(p, "me".into(), t(0)).unwrap();
        assert_eq!(
            m.on(pass(), t(1)),
            Action::Step {
                weight: Weight::FULL
            }
        );
        assert_eq!(m.on(fail(), t(2)), Action::Finish(Ending::RolledBack));
        assert_rolled_back(&m, "post-switch analysis failed: v2: success rate");
    }

    #[test]
    fn bluegreen_manual_promotion_pauses_before_the_switch() {
        let mut p = bluegreen(1);
        p.manual_promotion = true;
        let (mut m, _) = Machine::start(p, "me".into(), t(0)).unwrap();
        assert_eq!(m.on(pass(), t(1)), Action::Pause);
        let s = m.state();
        assert_eq!((s.phase, s.stage), (Phase::Paused, Stage::Mirror));
        assert!(
            s.reason
                .as_deref()
                .unwrap()
                .contains("paused at v1=100 v2=0, mirroring 100% to v2"),
            "{:?}",
            s.reason
        );
    }

    #[test]
    fn strategies_without_iterations_are_rejected() {
        let e = Machine::start(bluegreen(0), "me".into(), t(0)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--iterations must be at least 1 for --strategy bluegreen (analyses before the weights move)"
        );
    }

    #[test]
    fn bad_plans_are_rejected_with_the_fix() {
        let e = Machine::start(plan(&[50, 10]), "me".into(), t(0)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--steps must be increasing weights from 1 to 100 (got 50,10): e.g. 10,25,50,100"
        );
        let e = Machine::start(plan(&[]), "me".into(), t(0)).unwrap_err();
        assert_eq!(e, PlanError::NoSteps);
        let mut p = plan(&[10]);
        p.to = "v1".parse().unwrap();
        assert_eq!(
            Machine::start(p, "me".into(), t(0)).unwrap_err(),
            PlanError::SameVersion("v1".into())
        );
    }
}
