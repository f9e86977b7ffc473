//! The rollout state stored as JSON in the VirtualService annotation
//! `meshctl.io/rollout`, so weights and the state describing them change in
//! one write. Any process can read it: `status`, `promote` and `rollback`
//! work from another terminal or CI job, and after the driver crashed.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::analysis::{DecisionRecord, Thresholds};
use super::strategy::{Stage, Strategy};
pub use super::time::Timestamp;
use crate::target::STATE_ANNOTATION;
use meshproxy::istio::VirtualService;

/// Decision records kept per step (the newest; older ones are counted).
pub const RECORDS_PER_STEP: usize = 5;

/// Where the rollout is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Stepping traffic and analysing.
    Progressing,
    /// Waiting for `meshctl promote` (manual promotion, or interrupted with `--on-interrupt pause`).
    Paused,
    /// The new version takes 100%.
    Promoted,
    /// The stable version takes 100% again.
    RolledBack,
}

/// How a finished rollout ended (the exit code follows from it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ending {
    /// Promoted (exit 0).
    Promoted,
    /// Rolled back: analysis failed, interrupted, or `meshctl rollback` (exit 3).
    RolledBack,
    /// Rolled back because the progress deadline passed (exit 4).
    TimedOut,
}

/// A step held for lack of canary traffic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    /// When holding began.
    pub since: Timestamp,
    /// Canary requests in the (extended) window.
    pub canary_requests: u64,
    /// Required canary requests.
    pub required: u64,
}

/// The decision records of one step (bounded).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepHistory {
    /// Step index (0-based).
    pub step: usize,
    /// Canary weight of the step.
    pub weight: u8,
    /// What the route carried besides the weights (absent: weights only).
    #[serde(default, skip_serializing_if = "Stage::is_weighted")]
    pub stage: Stage,
    /// How many analyses ran in this step (older records are dropped).
    pub analyses: u32,
    /// The newest records, oldest first.
    pub records: Vec<DecisionRecord>,
}

/// The settings the rollout runs with, recorded for `status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Analysis interval, ms.
    pub interval_ms: u64,
    /// Failed checks before rolling back.
    pub threshold: u32,
    /// Progress deadline per step, ms.
    pub step_timeout_ms: u64,
    /// Hold at the last step until `meshctl promote`.
    pub manual_promotion: bool,
    /// Thresholds.
    pub thresholds: Thresholds,
    /// The metrics source.
    pub metrics: String,
}

/// The rollout state (annotation `meshctl.io/rollout`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutState {
    /// Phase.
    pub phase: Phase,
    /// How it ended, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending: Option<Ending>,
    /// Stable version.
    pub from: String,
    /// New version.
    pub to: String,
    /// Canary weight per step.
    pub steps: Vec<u8>,
    /// Current step index (0-based).
    pub step: usize,
    /// The weights this write applies.
    pub weights: BTreeMap<String, u8>,
    /// When the rollout started.
    pub started: Timestamp,
    /// When the state last changed.
    pub updated: Timestamp,
    /// When the current step started (weights applied).
    pub step_started: Timestamp,
    /// Failed checks so far.
    pub failed_checks: u32,
    /// Set while the current step is held for lack of traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
    /// Decision records per step.
    #[serde(default)]
    pub history: Vec<StepHistory>,
    /// Why the rollout is where it is (set when paused or finished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who drives the rollout (lease holder), while progressing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// After a rollback: did the stable version's error rate recover?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<String>,
    /// How the new version receives traffic (absent: canary).
    #[serde(default, skip_serializing_if = "Strategy::is_canary")]
    pub strategy: Strategy,
    /// What the route carries in the current step: a match route, a mirror,
    /// the switched bluegreen (absent: weights only). Finished rollouts carry
    /// weights only.
    #[serde(default, skip_serializing_if = "Stage::is_weighted")]
    pub stage: Stage,
    /// Sticky sessions: the cookie whose routes follow the weights
    /// (`rollout start --sticky-cookie`; absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky_cookie: Option<crate::routing::sticky::CookieName>,
    /// Settings.
    pub settings: Settings,
}

/// The state annotation is missing or unreadable.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No rollout recorded on this VirtualService.
    #[error(
        "VirtualService {0:?} has no rollout recorded (annotation meshctl.io/rollout): start one with `meshctl rollout start {0} --to VERSION`"
    )]
    Missing(String),
    /// The annotation is not valid JSON for this version of meshctl.
    #[error(
        "VirtualService {name:?}: annotation meshctl.io/rollout is not a valid rollout state ({source}); fix or remove the annotation"
    )]
    Invalid {
        /// VirtualService name.
        name: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

// === impl StepHistory ===

impl StepHistory {
    /// The step's canary weight, with its stage when not weights only:
    /// `20%`, `0% mirror`, `100% switched`.
    pub fn weight_text(&self) -> String {
        if self.stage.is_weighted() {
            format!("{}%", self.weight)
        } else {
            format!("{}% {}", self.weight, self.stage)
        }
    }
}

// === impl Phase ===

impl Phase {
    /// Promoted or RolledBack.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Promoted | Self::RolledBack)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Progressing => "Progressing",
            Self::Paused => "Paused",
            Self::Promoted => "Promoted",
            Self::RolledBack => "RolledBack",
        })
    }
}

// === impl RolloutState ===

impl RolloutState {
    /// Reads the state from a VirtualService's annotation.
    pub fn read(vs: &VirtualService) -> Result<Self, StateError> {
        let name = &vs.metadata.name;
        let raw = vs
            .metadata
            .annotations
            .get(STATE_ANNOTATION)
            .ok_or_else(|| StateError::Missing(name.clone()))?;
        serde_json::from_str(raw).map_err(|source| StateError::Invalid {
            name: name.clone(),
            source,
        })
    }

    /// Writes the state into a VirtualService's annotation.
    pub fn write(&self, vs: &mut VirtualService) {
        let json = serde_json::to_string(self).unwrap_or_default();
        vs.metadata
            .annotations
            .insert(STATE_ANNOTATION.to_owned(), json);
    }

    /// Appends a decision record to the current step's history (bounded).
    pub fn push_record(&mut self, record: DecisionRecord) {
        let weight = self.steps.get(self.step).copied().unwrap_or(100);
        if self.history.last().is_none_or(|h| h.step != self.step) {
            self.history.push(StepHistory {
                step: self.step,
                weight,
                stage: self.stage,
                analyses: 0,
                records: Vec::new(),
            });
        }
        if let Some(h) = self.history.last_mut() {
            h.analyses += 1;
            h.records.push(record);
            if h.records.len() > RECORDS_PER_STEP {
                h.records.remove(0);
            }
        }
    }

    /// The newest decision record.
    pub fn last_record(&self) -> Option<&DecisionRecord> {
        self.history.iter().rev().find_map(|h| h.records.last())
    }

    /// What the route carries, in words: `v1=100 v2=0, mirroring 50% to v2`.
    pub fn traffic_text(&self) -> String {
        let w = self.weights_text();
        if self.phase.is_finished() {
            return w;
        }
        match self.stage {
            Stage::Weighted => w,
            Stage::Mirror => format!(
                "{w}, mirroring {}% to {}",
                self.strategy.mirror_percent().unwrap_or(100),
                self.to
            ),
            Stage::Match => match self.strategy.match_rule() {
                Some(rule) => format!("{w}, {rule} to {}", self.to),
                None => w,
            },
            Stage::Switched => format!("{w}, switched (post-switch analysis)"),
        }
    }

    /// The weights as `v1=90 v2=10`.
    pub fn weights_text(&self) -> String {
        let mut pairs: Vec<String> = Vec::new();
        for v in [&self.from, &self.to] {
            pairs.push(format!("{v}={}", self.weights.get(v).copied().unwrap_or(0)));
        }
        pairs.join(" ")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rollout::analysis::{Verdict, unreadable};

    pub(crate) fn sample() -> RolloutState {
        RolloutState {
            phase: Phase::Progressing,
            ending: None,
            from: "v1".into(),
            to: "v2".into(),
            steps: vec![10, 50, 100],
            step: 0,
            weights: [("v1".to_owned(), 90), ("v2".to_owned(), 10)].into(),
            started: Timestamp::from_millis(1_700_000_000_000),
            updated: Timestamp::from_millis(1_700_000_000_000),
            step_started: Timestamp::from_millis(1_700_000_000_000),
            failed_checks: 0,
            held: None,
            history: vec![],
            reason: None,
            driver: None,
            verification: None,
            settings: Settings {
                interval_ms: 1000,
                threshold: 2,
                step_timeout_ms: 600_000,
                manual_promotion: false,
                thresholds: Thresholds::default(),
                metrics: "http://127.0.0.1:15000/metrics".into(),
            },
            strategy: Strategy::default(),
            stage: Stage::default(),
            sticky_cookie: None,
        }
    }

    #[test]
    fn round_trips_through_the_annotation() {
        let mut s = sample();
        s.push_record(unreadable(s.started, s.updated, "v1", "v2", "down"));
        let mut vs = VirtualService::default();
        vs.metadata.name = "discounts".into();
        s.write(&mut vs);
        let raw = &vs.metadata.annotations[STATE_ANNOTATION];
        assert!(
            raw.contains("\"started\":\"2023-11-14T22:13:20.000Z\""),
            "{raw}"
        );
        assert_eq!(RolloutState::read(&vs).unwrap(), s);
    }

    #[test]
    fn history_is_bounded_per_step() {
        let mut s = sample();
        for _ in 0..(RECORDS_PER_STEP + 3) {
            s.push_record(unreadable(s.started, s.updated, "v1", "v2", "down"));
        }
        assert_eq!(s.history.len(), 1);
        assert_eq!(s.history[0].records.len(), RECORDS_PER_STEP);
        assert_eq!(s.history[0].analyses as usize, RECORDS_PER_STEP + 3);
        assert_eq!(s.last_record().unwrap().verdict, Verdict::Fail);
    }

    #[test]
    fn missing_and_invalid_annotations_explain_the_fix() {
        let mut vs = VirtualService::default();
        vs.metadata.name = "discounts".into();
        let e = RolloutState::read(&vs).unwrap_err().to_string();
        assert!(
            e.contains("meshctl rollout start discounts --to VERSION"),
            "{e}"
        );
        vs.metadata
            .annotations
            .insert(STATE_ANNOTATION.into(), "{".into());
        let e = RolloutState::read(&vs).unwrap_err().to_string();
        assert!(e.contains("fix or remove the annotation"), "{e}");
    }
}
