//! The async driver: executes the [`Machine`]'s actions against any
//! [`Target`] and [`MetricsSource`], holding the rollout lease, watching for
//! interrupts and for changes made by other processes (`meshctl promote` /
//! `rollback`), and reporting [`RolloutEvent`]s to an [`Observer`].
//!
//! Every write puts the weights *and* the state into the VirtualService in
//! one compare-and-swap, so the recorded state never claims weights that are
//! not applied. All time comes from tokio, so tests run on a paused clock.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use super::analysis::{self, DecisionRecord, VersionStats, Window};
use super::machine::{Action, Event, Machine, OnInterrupt, Plan, PlanError};
use super::pace::{self, Pace};
use super::routes;
use super::sequential::{Counts, Evidence};
use super::state::{Ending, Phase, RolloutState, StateError, Timestamp};
use super::strategy::Stage;
use super::webhook::{Hook, Payload, WebhookError, Webhooks};
use crate::metrics::{MetricsError, MetricsSource, Snapshot, Traffic, VersionCounters};
use crate::routing::{self, RouteError};
use crate::target::{EventType, Target, TargetError};
use meshproxy::istio::VirtualService;

/// Something to tell the user or a machine about.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RolloutEvent {
    /// The rollout started.
    Started {
        /// Service.
        service: String,
        /// Stable version.
        from: String,
        /// New version.
        to: String,
        /// Canary weights per step.
        steps: Vec<u8>,
        /// `canary`, `ab`, `mirror` or `bluegreen`.
        strategy: &'static str,
        /// Analysis interval, ms.
        interval_ms: u64,
        /// Where resources live.
        target: String,
        /// Metrics source.
        metrics: String,
    },
    /// New weights were applied.
    StepStarted {
        /// Service.
        service: String,
        /// Step index (0-based).
        step: usize,
        /// Number of steps.
        steps: usize,
        /// Weights.
        weights: std::collections::BTreeMap<String, u8>,
        /// What the route carries besides the weights (`weighted`, `mirror`,
        /// `match`, `switched`).
        stage: Stage,
        /// The weights and the stage in words.
        traffic: String,
    },
    /// A window was analysed.
    Analysis {
        /// Service.
        service: String,
        /// Step index.
        step: usize,
        /// Failed checks so far.
        failed_checks: u32,
        /// Threshold.
        threshold: u32,
        /// The decision record (boxed: it is the largest event by far).
        record: Box<DecisionRecord>,
    },
    /// Paused, waiting for `meshctl promote`.
    Paused {
        /// Service.
        service: String,
        /// Weights.
        weights: std::collections::BTreeMap<String, u8>,
        /// Why.
        reason: String,
    },
    /// The new version takes 100%.
    Promoted {
        /// Service.
        service: String,
        /// Weights.
        weights: std::collections::BTreeMap<String, u8>,
        /// Why.
        reason: String,
        /// Did another process (`meshctl promote`) do it?
        external: bool,
    },
    /// The stable version takes 100% again.
    RolledBack {
        /// Service.
        service: String,
        /// Weights.
        weights: std::collections::BTreeMap<String, u8>,
        /// Why.
        reason: String,
        /// The progress deadline passed (exit 4).
        timed_out: bool,
        /// Did another process (`meshctl rollback`) do it?
        external: bool,
    },
    /// The stable version was watched for one interval after a rollback.
    Verified {
        /// Service.
        service: String,
        /// Stable version numbers over that interval.
        stable: Option<VersionStats>,
        /// Did its success rate meet the threshold?
        recovered: bool,
        /// In words.
        message: String,
    },
    /// A webhook call failed (non-gating hooks) or passed.
    Webhook {
        /// Service.
        service: String,
        /// Hook.
        hook: Hook,
        /// Outcome.
        ok: bool,
        /// Details.
        message: String,
    },
    /// The state was written (for progress displays).
    Waiting {
        /// Service.
        service: String,
        /// Time to the next analysis, ms.
        next_analysis_ms: u64,
    },
    /// `--interval auto` sized the next window from the traffic the new
    /// version gets in this step.
    Bake {
        /// Service.
        service: String,
        /// Step index (0-based).
        step: usize,
        /// What the route carries.
        stage: Stage,
        /// The new version's share of the live requests the sizing used,
        /// percent (mirrored copies for a mirror stage); absent while a
        /// match step's share is being measured.
        #[serde(skip_serializing_if = "Option::is_none")]
        share_percent: Option<f64>,
        /// The share was measured on a match window.
        measured: bool,
        /// Live requests per second.
        rate: f64,
        /// Requests the new version needs in the window.
        requests: u64,
        /// The wait, ms.
        interval_ms: u64,
        /// Cut at the step's progress deadline.
        capped: bool,
        /// In words.
        message: String,
    },
}

/// Receives the driver's events (the reporter, a test's recorder).
pub trait Observer: Send + Sync {
    /// One event.
    fn event(&self, event: &RolloutEvent);
}

/// Errors that stop the driver (exit 1): nothing about the canary's health.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The target failed.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The plan is invalid.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The VirtualService cannot carry the rollout.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// The state annotation is unreadable.
    #[error(transparent)]
    State(#[from] StateError),
    /// A rollout is already in progress.
    #[error(
        "a rollout of {service:?} is already {phase} ({weights}, started {started}); finish it first with `meshctl promote {service}` or `meshctl rollback {service}`"
    )]
    InProgress {
        /// Service.
        service: String,
        /// Phase.
        phase: Phase,
        /// Weights.
        weights: String,
        /// Start time.
        started: Timestamp,
    },
    /// The new version has no subset.
    #[error(
        "DestinationRule {name:?} has no subset {subset:?} (subsets: {known}): add the version to the spec (`--versions`) and run `meshctl apply`"
    )]
    NoSubset {
        /// DestinationRule.
        name: String,
        /// The subset.
        subset: String,
        /// Known subsets.
        known: String,
    },
    /// The pre-rollout webhook refused.
    #[error("the rollout was not started: {0}")]
    PreRollout(#[source] WebhookError),
    /// Reading the VirtualService back after a rollback found other weights
    /// or a mirror / match route still in place.
    #[error(
        "the rollback of {service:?} was written but reading it back shows {found}, not {expected}: another writer changed the VirtualService; run `meshctl rollback {service}` and check who else writes it"
    )]
    RollbackNotApplied {
        /// Service.
        service: String,
        /// What the rollback wrote.
        expected: String,
        /// What the target holds.
        found: String,
    },
}

/// How the driver ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// Promoted, rolled back or timed out.
    Ended(Ending),
    /// Paused and told not to wait (`--no-wait-on-pause`, `--on-interrupt pause`).
    Paused,
}

/// Driver options beyond the plan.
#[derive(Clone, Debug)]
pub struct DriverOptions {
    /// Service (VirtualService and DestinationRule name).
    pub service: String,
    /// Lease holder identity.
    pub holder: String,
    /// What SIGINT/SIGTERM does.
    pub on_interrupt: OnInterrupt,
    /// Return [`Finish::Paused`] instead of waiting for `meshctl promote`.
    pub no_wait_on_pause: bool,
    /// Webhooks.
    pub webhooks: Webhooks,
    /// How often the state is re-read to notice other processes (at most the interval).
    pub poll: Duration,
    /// `--interval auto`: each window sized from the traffic the new
    /// version gets in its step (`None`: every window is `plan.interval`).
    pub pace: Option<Pace>,
}

/// Wall-clock time derived from tokio's clock, so paused-clock tests see time move.
#[derive(Clone, Copy, Debug)]
struct Clock {
    wall: SystemTime,
    start: Instant,
}

impl Clock {
    fn new() -> Self {
        Self {
            wall: SystemTime::now(),
            start: Instant::now(),
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_system(self.wall + self.start.elapsed())
    }
}

/// What happened while waiting.
enum Waited {
    Elapsed,
    /// The bake ended (or a test rejected) at this look's scrape.
    Looked((Timestamp, Result<Snapshot, String>)),
    Interrupted,
    External(Box<RolloutState>),
}

/// Runs one rollout to its end.
pub struct Driver<'a, T: Target, M: MetricsSource> {
    target: &'a T,
    metrics: &'a M,
    observer: &'a dyn Observer,
    options: DriverOptions,
    interrupts: watch::Receiver<u32>,
    clock: Clock,
    vs: VirtualService,
    lease_ttl: Duration,
    last_renew: Instant,
}

fn is_conflict(e: &TargetError) -> bool {
    matches!(e, TargetError::Conflict { .. })
}

// === impl Driver ===

impl<'a, T: Target, M: MetricsSource> Driver<'a, T, M> {
    /// A driver; `interrupts` counts SIGINT/SIGTERM received.
    pub fn new(
        target: &'a T,
        metrics: &'a M,
        observer: &'a dyn Observer,
        options: DriverOptions,
        interrupts: watch::Receiver<u32>,
    ) -> Self {
        Self {
            target,
            metrics,
            observer,
            options,
            interrupts,
            clock: Clock::new(),
            vs: VirtualService::default(),
            lease_ttl: Duration::from_secs(30),
            last_renew: Instant::now(),
        }
    }

    fn service(&self) -> String {
        self.options.service.clone()
    }

    fn emit(&self, e: RolloutEvent) {
        self.observer.event(&e);
    }

    async fn event(&self, kind: EventType, reason: &str, message: &str) {
        if let Err(e) = self
            .target
            .record_event(&self.options.service, kind, reason, message)
            .await
        {
            tracing::warn!("recording event {reason}: {e}");
        }
    }

    /// Drives `plan` from start to end.
    pub async fn run(mut self, plan: Plan) -> Result<(Finish, RolloutState), EngineError> {
        plan.validate()?;
        let service = self.service();
        self.vs = self.target.virtual_service(&service).await?;
        if let Ok(s) = RolloutState::read(&self.vs)
            && !s.phase.is_finished()
        {
            return Err(EngineError::InProgress {
                service,
                phase: s.phase,
                weights: s.weights_text(),
                started: s.started,
            });
        }
        let dr = self.target.destination_rule(&service).await?;
        let known: Vec<&str> = dr.spec.subsets.iter().map(|s| s.name.as_str()).collect();
        for v in [&plan.from, &plan.to] {
            if !known.contains(&v.as_str()) {
                return Err(EngineError::NoSubset {
                    name: dr.metadata.name.clone(),
                    subset: v.to_string(),
                    known: known.join(", "),
                });
            }
        }
        // Fails early, before anything is written, if the route cannot carry the rollout.
        routing::set_weights(
            &mut self.vs.clone(),
            plan.from.as_str(),
            plan.to.as_str(),
            &Default::default(),
        )?;
        if plan.strategy.mirror_percent().is_some() {
            routing::check_mirror(&self.vs, plan.from.as_str(), plan.to.as_str())?;
        }

        self.lease_ttl = (plan.interval * 3).max(Duration::from_secs(15));
        self.target
            .acquire_lease(&service, &self.options.holder, self.lease_ttl)
            .await?;
        self.last_renew = Instant::now();
        let result = self.drive(plan).await;
        if let Err(e) = self
            .target
            .release_lease(&service, &self.options.holder)
            .await
        {
            tracing::warn!("releasing the rollout lease: {e}");
        }
        result
    }

    async fn drive(&mut self, plan: Plan) -> Result<(Finish, RolloutState), EngineError> {
        let service = self.service();
        let (mut machine, mut action) =
            Machine::start(plan, self.options.holder.clone(), self.clock.now())?;
        {
            let s = machine.state();
            let pre = Payload {
                hook: Hook::PreRollout,
                service: &service,
                from: &s.from,
                to: &s.to,
                phase: s.phase.to_string(),
                step: 0,
                weight: 0,
                reason: None,
            };
            match self.options.webhooks.call(&pre).await {
                Ok(called) => {
                    if called > 0 {
                        self.emit(RolloutEvent::Webhook {
                            service: service.clone(),
                            hook: Hook::PreRollout,
                            ok: true,
                            message: "pre-rollout webhook accepted".to_owned(),
                        });
                    }
                }
                Err(e) => return Err(EngineError::PreRollout(e)),
            }
        }
        let plan = machine.plan().clone();
        self.emit(RolloutEvent::Started {
            service: service.clone(),
            from: plan.from.to_string(),
            to: plan.to.to_string(),
            steps: machine.state().steps.clone(),
            strategy: plan.strategy.name(),
            interval_ms: u64::try_from(plan.interval.as_millis()).unwrap_or(u64::MAX),
            target: self.target.describe(),
            metrics: self.metrics.describe(),
        });
        self.event(
            EventType::Normal,
            "RolloutStarted",
            &format!(
                "rolling out {} to {} in steps {:?}",
                plan.from,
                plan.to,
                machine.state().steps
            ),
        )
        .await;

        let mut window_start: Option<(Timestamp, Result<Snapshot, String>)> = None;
        let mut last_end: Option<(Timestamp, Result<Snapshot, String>)> = None;
        let mut last_record: Option<DecisionRecord> = None;
        // The snapshot the sequential evidence has seen up to.
        let mut looked: Option<Snapshot> = None;
        loop {
            match action {
                Action::Step { .. } => {
                    if let Some(ext) = self.persist(&mut machine).await? {
                        return Ok(self.external(*ext));
                    }
                    let s = machine.state();
                    self.emit(RolloutEvent::StepStarted {
                        service: service.clone(),
                        step: s.step,
                        steps: s.steps.len(),
                        weights: s.weights.clone(),
                        stage: s.stage,
                        traffic: s.traffic_text(),
                    });
                    let start = self.scrape().await;
                    // The evidence starts afresh at the new weights.
                    looked = start.1.as_ref().ok().cloned();
                    window_start = Some(start);
                }
                Action::Analyse { extend } => {
                    if let Some(ext) = self.persist(&mut machine).await? {
                        return Ok(self.external(*ext));
                    }
                    if !extend {
                        window_start = last_end.take();
                    }
                }
                Action::Pause => {
                    if let Some(ext) = self.persist(&mut machine).await? {
                        return Ok(self.external(*ext));
                    }
                    let s = machine.state().clone();
                    let reason = s.reason.clone().unwrap_or_default();
                    self.emit(RolloutEvent::Paused {
                        service: service.clone(),
                        weights: s.weights.clone(),
                        reason: reason.clone(),
                    });
                    self.event(EventType::Normal, "RolloutPaused", &reason)
                        .await;
                    let interrupted_pause = s.driver.is_none();
                    if self.options.no_wait_on_pause || interrupted_pause {
                        return Ok((Finish::Paused, s));
                    }
                    match self.wait_paused(&machine).await? {
                        Some(ext) => return Ok(self.external(*ext)),
                        None => {
                            action = machine.on(
                                Event::Interrupted(self.options.on_interrupt),
                                self.clock.now(),
                            );
                            continue;
                        }
                    }
                }
                Action::Finish(ending) => return self.finish(&mut machine, ending).await,
            }
            // Wait one interval (or the bake `--interval auto` sizes), then
            // analyse the window.
            let served = match action {
                Action::Analyse { extend: true } => last_record.as_ref().map(|r| r.canary.requests),
                _ => None,
            };
            let interval = self.bake(&machine, served);
            self.emit(RolloutEvent::Waiting {
                service: service.clone(),
                next_analysis_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            });
            let waited = if machine.state().evidence.is_some() {
                self.look_until(interval, &mut machine, &mut looked).await?
            } else {
                self.wait(interval, &machine).await?
            };
            let end = match waited {
                Waited::Elapsed => self.scrape().await,
                Waited::Looked(end) => end,
                Waited::Interrupted => {
                    action = machine.on(
                        Event::Interrupted(self.options.on_interrupt),
                        self.clock.now(),
                    );
                    continue;
                }
                Waited::External(ext) => return Ok(self.external(*ext)),
            };
            let record = self.analyse(&machine, window_start.as_ref(), &end).await;
            last_end = Some(end);
            if let Some(p) = self.options.pace.as_mut() {
                p.observe(machine.state().stage, &record);
            }
            last_record = Some(record.clone());
            let now = self.clock.now();
            action = machine.on(Event::Analysed(Box::new(record.clone())), now);
            let s = machine.state();
            self.emit(RolloutEvent::Analysis {
                service: service.clone(),
                step: s.history.last().map_or(s.step, |h| h.step),
                failed_checks: s.failed_checks,
                threshold: s.settings.threshold,
                record: Box::new(record),
            });
        }
    }

    /// The next window's length: `plan.interval`, or with `--interval auto`
    /// the bake for the traffic the new version gets in the current step
    /// (`served`: its requests so far in a held window), announced as a
    /// [`RolloutEvent::Bake`].
    fn bake(&self, machine: &Machine, served: Option<u64>) -> Duration {
        let plan = machine.plan();
        let Some(p) = &self.options.pace else {
            return plan.interval;
        };
        let s = machine.state();
        let window = match served {
            Some(served) => pace::Window::Extended { served },
            None => pace::Window::Fresh,
        };
        let b = p.next(plan, s.step, window, self.clock.now().since(s.step_started));
        self.emit(RolloutEvent::Bake {
            service: self.service(),
            step: b.step,
            stage: b.stage,
            share_percent: b.share.map(|sh| sh.canary * 100.0),
            measured: b.measured,
            rate: p.rate(),
            requests: b.requests,
            interval_ms: u64::try_from(b.interval.as_millis()).unwrap_or(u64::MAX),
            capped: b.capped,
            message: p.describe(plan, &b),
        });
        b.interval
    }

    async fn scrape(&self) -> (Timestamp, Result<Snapshot, String>) {
        let r = self.metrics.scrape(&self.options.service).await;
        (self.clock.now(), r.map_err(|e: MetricsError| e.to_string()))
    }

    async fn analyse(
        &self,
        machine: &Machine,
        start: Option<&(Timestamp, Result<Snapshot, String>)>,
        end: &(Timestamp, Result<Snapshot, String>),
    ) -> DecisionRecord {
        let s = machine.state();
        let (from, to) = (s.from.as_str(), s.to.as_str());
        let t0 = start.map_or(end.0, |s| s.0);
        let gate = Payload {
            hook: Hook::Rollout,
            service: &self.options.service,
            from,
            to,
            phase: s.phase.to_string(),
            step: s.step,
            weight: s.weights.get(to).copied().unwrap_or(0),
            reason: None,
        };
        let rejected = s.evidence.as_ref().is_some_and(Evidence::rejected);
        // A rejection rolls back whatever the gate says.
        if !rejected && let Err(e) = self.options.webhooks.call(&gate).await {
            return analysis::unreadable(t0, end.0, from, to, &format!("rollout gate closed: {e}"));
        }
        let (t0, first) = match start {
            Some((t, Ok(snap))) => (*t, snap),
            Some((t, Err(e))) => return analysis::unreadable(*t, end.0, from, to, e),
            None => return analysis::unreadable(end.0, end.0, from, to, "no window start"),
        };
        let last = match &end.1 {
            Ok(snap) => snap,
            Err(e) => return analysis::unreadable(t0, end.0, from, to, e),
        };
        let (b, c) = Self::versions(s, &last.delta(first));
        let window = Window {
            start: t0,
            end: end.0,
            baseline_version: from,
            baseline: &b,
            canary_version: to,
            canary: &c,
        };
        match &s.evidence {
            Some(evidence) => analysis::judge(&window, &machine.plan().thresholds, evidence),
            None => analysis::analyse(&window, &machine.plan().thresholds),
        }
    }

    /// The baseline's and the canary's counters in `delta`. A mirror window
    /// judges the new version's mirrored copies against the stable
    /// version's real traffic (see `crate::metrics`).
    fn versions(s: &RolloutState, delta: &Snapshot) -> (VersionCounters, VersionCounters) {
        let canary_traffic = if s.stage == Stage::Mirror {
            Traffic::Mirrored
        } else {
            Traffic::Real
        };
        (
            delta.select(&s.from, Traffic::Real),
            delta.select(&s.to, canary_traffic),
        )
    }

    /// `--analysis sequential`: waits `bake`, looking at the metrics as
    /// often as the source allows ([`MetricsSource::look_every`]) and
    /// feeding what happened since the last look to the evidence; ends
    /// early when a test rejects. Other processes are watched for at every
    /// poll, as while waiting. A look whose scrape fails is skipped (the
    /// next one covers its requests); the last one is the window's end.
    async fn look_until(
        &mut self,
        bake: Duration,
        machine: &mut Machine,
        looked: &mut Option<Snapshot>,
    ) -> Result<Waited, EngineError> {
        let deadline = Instant::now() + bake;
        let look = self.metrics.look_every().max(Duration::from_millis(10));
        let mut watched = Instant::now();
        loop {
            let nap = deadline.saturating_duration_since(Instant::now()).min(look);
            if Instant::now() + nap >= watched + self.options.poll {
                match self.wait(nap, machine).await? {
                    Waited::Elapsed => watched = Instant::now(),
                    other => return Ok(other),
                }
            } else if self.interrupted_within(nap).await {
                return Ok(Waited::Interrupted);
            }
            let end = self.scrape().await;
            if let Ok(now) = &end.1 {
                if let (Some(before), Some(mut evidence)) =
                    (looked.as_ref(), machine.state().evidence.clone())
                {
                    let (b, c) = Self::versions(machine.state(), &now.delta(before));
                    evidence.observe(&Counts::from_counters(&c), &Counts::from_counters(&b));
                    machine.set_evidence(evidence);
                }
                *looked = Some(now.clone());
            }
            let rejected = machine
                .state()
                .evidence
                .as_ref()
                .is_some_and(Evidence::rejected);
            if rejected || Instant::now() >= deadline {
                return Ok(Waited::Looked(end));
            }
        }
    }

    /// Has another process taken over this rollout?
    fn is_external(ours: &RolloutState, theirs: &RolloutState) -> bool {
        theirs.started != ours.started
            || theirs.phase.is_finished()
            || (theirs.phase != ours.phase && theirs.phase != Phase::Progressing)
            || theirs.driver != ours.driver
    }

    /// Writes weights and state in one CAS. `Some(state)` when another
    /// process changed the rollout (the driver must stop).
    async fn persist(
        &mut self,
        machine: &mut Machine,
    ) -> Result<Option<Box<RolloutState>>, EngineError> {
        let mut attempt = 0;
        loop {
            let state = machine.state();
            let mut vs = self.vs.clone();
            routes::apply_state(&mut vs, state)?;
            state.write(&mut vs);
            match self.target.replace_virtual_service(&vs).await {
                Ok(stored) => {
                    self.vs = stored;
                    return Ok(None);
                }
                Err(e) if is_conflict(&e) && attempt < 5 => {
                    attempt += 1;
                    let fresh = self.target.virtual_service(&self.options.service).await?;
                    if let Some(theirs) = self.changed_by_others(state, &fresh) {
                        return Ok(Some(theirs));
                    }
                    // Someone re-applied the object: put our weights and state on top.
                    self.vs = fresh;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waits `d`, watching for interrupts and other processes.
    async fn wait(&mut self, d: Duration, machine: &Machine) -> Result<Waited, EngineError> {
        let deadline = Instant::now() + d;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(Waited::Elapsed);
            }
            let nap = (deadline - now).min(self.options.poll);
            if self.interrupted_within(nap).await {
                return Ok(Waited::Interrupted);
            }
            if let Some(ext) = self.check_external(machine).await? {
                return Ok(Waited::External(ext));
            }
        }
    }

    /// Sleeps `d`, watching for interrupts only: `true` when one arrived.
    async fn interrupted_within(&mut self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            tokio::select! {
                biased;
                changed = self.interrupts.changed() => {
                    if changed.is_ok() && *self.interrupts.borrow() > 0 {
                        return true;
                    }
                    if changed.is_err() {
                        // No sender left: nothing can interrupt any more.
                        tokio::time::sleep_until(deadline).await;
                    }
                }
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
        false
    }

    /// Waits while paused until another process promotes or rolls back
    /// (`Some(their state)`) or an interrupt arrives (`None`).
    async fn wait_paused(
        &mut self,
        machine: &Machine,
    ) -> Result<Option<Box<RolloutState>>, EngineError> {
        loop {
            match self.wait(Duration::from_secs(3600), machine).await? {
                Waited::Elapsed | Waited::Looked(_) => {}
                Waited::Interrupted => return Ok(None),
                Waited::External(ext) => return Ok(Some(ext)),
            }
        }
    }

    async fn check_external(
        &mut self,
        machine: &Machine,
    ) -> Result<Option<Box<RolloutState>>, EngineError> {
        if self.last_renew.elapsed() >= self.lease_ttl / 3 {
            self.target
                .acquire_lease(&self.options.service, &self.options.holder, self.lease_ttl)
                .await?;
            self.last_renew = Instant::now();
        }
        let fresh = match self.target.virtual_service(&self.options.service).await {
            Ok(vs) => vs,
            Err(e) => {
                tracing::warn!("re-reading the VirtualService: {e}");
                return Ok(None);
            }
        };
        Ok(self.changed_by_others(machine.state(), &fresh))
    }

    /// The state in `fresh` if another process changed the rollout since our
    /// last write (a re-apply that left the annotation alone does not count).
    fn changed_by_others(
        &self,
        ours: &RolloutState,
        fresh: &VirtualService,
    ) -> Option<Box<RolloutState>> {
        let key = crate::target::STATE_ANNOTATION;
        if fresh.metadata.annotations.get(key) == self.vs.metadata.annotations.get(key) {
            return None;
        }
        match RolloutState::read(fresh) {
            Ok(theirs) if Self::is_external(ours, &theirs) => Some(Box::new(theirs)),
            _ => None,
        }
    }

    fn external(&self, theirs: RolloutState) -> (Finish, RolloutState) {
        let service = self.service();
        let reason = theirs.reason.clone().unwrap_or_default();
        let finish = match (theirs.phase, theirs.ending) {
            (Phase::Promoted, _) => {
                self.emit(RolloutEvent::Promoted {
                    service,
                    weights: theirs.weights.clone(),
                    reason,
                    external: true,
                });
                Finish::Ended(Ending::Promoted)
            }
            (Phase::RolledBack, ending) => {
                let timed_out = ending == Some(Ending::TimedOut);
                self.emit(RolloutEvent::RolledBack {
                    service,
                    weights: theirs.weights.clone(),
                    reason,
                    timed_out,
                    external: true,
                });
                Finish::Ended(if timed_out {
                    Ending::TimedOut
                } else {
                    Ending::RolledBack
                })
            }
            _ => {
                self.emit(RolloutEvent::Paused {
                    service,
                    weights: theirs.weights.clone(),
                    reason: format!("taken over by another process: {reason}"),
                });
                Finish::Paused
            }
        };
        (finish, theirs)
    }

    async fn finish(
        &mut self,
        machine: &mut Machine,
        ending: Ending,
    ) -> Result<(Finish, RolloutState), EngineError> {
        let service = self.service();
        if let Some(ext) = self.persist(machine).await? {
            return Ok(self.external(*ext));
        }
        let s = machine.state().clone();
        let reason = s.reason.clone().unwrap_or_default();
        match ending {
            Ending::Promoted => {
                self.emit(RolloutEvent::Promoted {
                    service: service.clone(),
                    weights: s.weights.clone(),
                    reason: reason.clone(),
                    external: false,
                });
                self.event(EventType::Normal, "Promoted", &reason).await;
            }
            Ending::RolledBack | Ending::TimedOut => {
                self.emit(RolloutEvent::RolledBack {
                    service: service.clone(),
                    weights: s.weights.clone(),
                    reason: reason.clone(),
                    timed_out: ending == Ending::TimedOut,
                    external: false,
                });
                self.event(EventType::Warning, "RolledBack", &reason).await;
                self.confirm_rollback(&s).await?;
                self.hook(Hook::Rollback, &s).await;
                self.verify(machine).await?;
            }
        }
        self.hook(Hook::PostRollout, machine.state()).await;
        Ok((Finish::Ended(ending), machine.state().clone()))
    }

    async fn hook(&self, hook: Hook, s: &RolloutState) {
        let payload = Payload {
            hook,
            service: &self.options.service,
            from: &s.from,
            to: &s.to,
            phase: s.phase.to_string(),
            step: s.step,
            weight: s.weights.get(&s.to).copied().unwrap_or(0),
            reason: s.reason.as_deref(),
        };
        match self.options.webhooks.call(&payload).await {
            Ok(0) => {}
            Ok(_) => self.emit(RolloutEvent::Webhook {
                service: self.service(),
                hook,
                ok: true,
                message: format!("{hook:?} webhook accepted"),
            }),
            Err(e) => {
                tracing::warn!("{e}");
                self.emit(RolloutEvent::Webhook {
                    service: self.service(),
                    hook,
                    ok: false,
                    message: e.to_string(),
                });
            }
        }
    }

    /// Reads the VirtualService back after a rollback: the stable version
    /// at 100% and no mirror or match route left, or an error (exit 1).
    async fn confirm_rollback(&self, s: &RolloutState) -> Result<(), EngineError> {
        let stored = self.target.virtual_service(&self.options.service).await?;
        let weights = routing::current_weights(&stored);
        let full = |v: &str| weights.get(v).copied().unwrap_or(0);
        let preview = routing::has_preview(&stored, &s.to);
        if full(&s.from) == 100 && full(&s.to) == 0 && !preview {
            return Ok(());
        }
        let shown: Vec<String> = weights.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Err(EngineError::RollbackNotApplied {
            service: self.service(),
            expected: format!("{}=100 {}=0 without mirror or match route", s.from, s.to),
            found: format!(
                "{}{}",
                shown.join(" "),
                if preview {
                    " with a mirror or match route"
                } else {
                    ""
                }
            ),
        })
    }

    /// After a rollback, watch the stable version for one interval and
    /// record whether its success rate meets the threshold.
    async fn verify(&mut self, machine: &mut Machine) -> Result<(), EngineError> {
        let interval = machine.plan().interval;
        let from = machine.state().from.clone();
        let threshold = machine.plan().thresholds.success_rate;
        let start = self.scrape().await;
        // Interrupts no longer matter: the rollback is done.
        tokio::time::sleep(interval).await;
        let end = self.scrape().await;
        let (stable, message, recovered) = match (&start.1, &end.1) {
            (Ok(a), Ok(b)) => {
                let st = analysis::stats(&from, &b.delta(a).version(&from));
                match st.success_rate {
                    Some(sr) => {
                        let ok = sr >= threshold;
                        let msg = format!(
                            "{from}: success rate {sr:.2}% over {} requests in the interval after the rollback ({})",
                            st.requests,
                            if ok {
                                "recovered"
                            } else {
                                "NOT recovered: the problem may not be the canary"
                            }
                        );
                        (Some(st), msg, ok)
                    }
                    None => (
                        Some(st),
                        format!(
                            "{from}: no requests in the interval after the rollback; recovery unverified"
                        ),
                        false,
                    ),
                }
            }
            (Err(e), _) | (_, Err(e)) => (None, format!("recovery unverified: {e}"), false),
        };
        self.emit(RolloutEvent::Verified {
            service: self.service(),
            stable,
            recovered,
            message: message.clone(),
        });
        let mut s = machine.state().clone();
        s.verification = Some(message);
        machine.set_state(s);
        // Best effort: the rollback itself is already written.
        match self.persist(machine).await {
            Ok(_) => {}
            Err(e) => tracing::warn!("recording the verification: {e}"),
        }
        Ok(())
    }
}
