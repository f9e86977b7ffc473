//! One analysis window → a [`DecisionRecord`] with a [`Verdict`].
//!
//! Pure functions over counter deltas: no IO, no clock. Two rules
//! ([`Analysis`]):
//!
//! - **`sequential`** (the default): the window's looks feed the
//!   anytime-valid [`Evidence`] of the whole rollout (see
//!   [`super::sequential`]); [`judge`] fails the window only when a test has
//!   rejected at level α = 1 − confidence (99% by default), passes it when
//!   it saw `min_requests` canary requests, and holds it otherwise.
//! - **`window`** (Flagger-like, as meshctl judged before): each window on
//!   its own ([`analyse`]), with point estimates against the thresholds.
//!
//! The `window` rule's checks, in order:
//!
//! 1. **enough canary traffic**: fewer than `min_requests` canary requests
//!    *holds* the step (the window is extended); nothing is judged on too
//!    little data, so it neither passes nor fails;
//! 2. **success rate**: the canary's share of requests that did not fail ≥
//!    the threshold (failed: a 5xx, or a gRPC status in the failing set;
//!    see [`crate::metrics::grpc`]), with the failing codes named;
//! 3. **p99 latency**: interpolated from histogram buckets exactly as
//!    Prometheus' `histogram_quantile` does, ≤ the threshold;
//! 4. **not significantly worse than the baseline**: a one-sided
//!    two-proportion z-test on the error rates of canary and baseline over
//!    the same window, at the stated confidence (default 95%). A noisy
//!    baseline raises the bar the canary is compared against, so it does not
//!    doom the canary; a small but real regression is still caught once there
//!    are enough requests.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::sequential::{Counts, Evidence, Levels, Summary, TestName, whole};
use super::time::Timestamp;
use crate::metrics::{GrpcCodes, VersionCounters};

/// How windows are judged (`--analysis`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Analysis {
    /// Anytime-valid tests over every window of the rollout: roll back
    /// when the evidence says so, at level 1 − confidence.
    #[default]
    Sequential,
    /// Each window on its own, point estimates against the thresholds
    /// (Flagger-like).
    Window,
}

/// The thresholds of one rollout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Minimum canary success rate, percent.
    pub success_rate: f64,
    /// Maximum canary p99 latency.
    #[serde(with = "humantime_serde_ms")]
    pub max_p99: Duration,
    /// Minimum canary requests per window (per step with `sequential`);
    /// fewer holds the step.
    pub min_requests: u64,
    /// Confidence of the tests (0.99 = 99%; α = 1 − confidence).
    pub confidence: f64,
    /// gRPC statuses that count as failed requests (besides 5xx); kept in
    /// the rollout state so every process judges alike.
    #[serde(default)]
    pub grpc_error_codes: GrpcCodes,
    /// The rule (absent in states written before it existed: `window`).
    #[serde(default = "Analysis::window")]
    pub analysis: Analysis,
}

mod humantime_serde_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

/// The outcome of one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every check passed: go to the next step.
    Pass,
    /// A check failed (or the metrics could not be read): counts toward the threshold.
    Fail,
    /// Too little canary traffic to judge: extend the window.
    Hold,
}

/// What one version did in the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionStats {
    /// The version.
    pub version: String,
    /// Requests in the window.
    pub requests: u64,
    /// Failed requests in the window (5xx, or a failing gRPC status).
    pub errors: u64,
    /// Failed requests per cause (`INTERNAL`, `HTTP 503`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failures: BTreeMap<String, u64>,
    /// Share of requests that did not fail, percent (absent without requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    /// Median latency, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
}

/// The statistical comparison of canary and baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The test used.
    pub test: String,
    /// The z statistic (positive: canary worse).
    pub z: f64,
    /// One-sided p-value of "canary's error rate > baseline's".
    pub p_value: f64,
    /// The confidence level.
    pub confidence: f64,
    /// Is the canary significantly worse?
    pub significantly_worse: bool,
}

/// The state of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The check passed.
    Pass,
    /// The check failed.
    Fail,
    /// Not judged (too little data, or not applicable).
    Skipped,
}

/// One check with its threshold and observed value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// `min-requests`, `success-rate`, `max-p99`, `vs-baseline`, `metrics`.
    pub name: String,
    /// Result.
    pub status: CheckStatus,
    /// Observed value against the threshold, in words.
    pub detail: String,
}

/// Why a step passed, failed or was held: everything behind the verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Window start.
    pub window_start: Timestamp,
    /// Window end.
    pub window_end: Timestamp,
    /// Baseline (stable version) numbers.
    pub baseline: VersionStats,
    /// Canary numbers.
    pub canary: VersionStats,
    /// The statistical comparison, when both versions had traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// Every check.
    pub checks: Vec<Check>,
    /// The verdict.
    pub verdict: Verdict,
    /// The reason, in one line.
    pub reason: String,
    /// The evidence accumulated over the rollout (`--analysis sequential`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Box<Summary>>,
}

// === impl DecisionRecord ===

impl DecisionRecord {
    /// Did a sequential test reject (a statistical failure, which rolls
    /// back at once rather than counting toward `--threshold`)?
    pub fn rejected_by_evidence(&self) -> bool {
        self.evidence.as_ref().is_some_and(|e| e.rejected)
    }
}

/// The counters of one window, per version.
#[derive(Clone, Debug)]
pub struct Window<'a> {
    /// Start.
    pub start: Timestamp,
    /// End.
    pub end: Timestamp,
    /// Stable version name.
    pub baseline_version: &'a str,
    /// Stable version deltas.
    pub baseline: &'a VersionCounters,
    /// Canary version name.
    pub canary_version: &'a str,
    /// Canary deltas.
    pub canary: &'a VersionCounters,
}

// === impl Thresholds ===

impl Default for Thresholds {
    /// The `sequential` rule at 99% confidence.
    fn default() -> Self {
        Self {
            success_rate: 99.0,
            max_p99: Duration::from_millis(500),
            min_requests: 20,
            grpc_error_codes: GrpcCodes::default(),
            confidence: Analysis::Sequential.default_confidence(),
            analysis: Analysis::Sequential,
        }
    }
}

impl Thresholds {
    /// The `window` rule with its defaults (95% confidence).
    pub fn window() -> Self {
        Self {
            confidence: Analysis::Window.default_confidence(),
            analysis: Analysis::Window,
            ..Self::default()
        }
    }

    /// What the sequential tests are configured with.
    pub fn levels(&self) -> Levels {
        Levels {
            alpha: (1.0 - self.confidence).clamp(1e-9, 1.0),
            max_error_rate: 1.0 - self.success_rate / 100.0,
            max_p99_ms: self.max_p99.as_secs_f64() * 1000.0,
        }
    }
}

// === impl Analysis ===

impl Analysis {
    /// `window`, for states recorded before the rule was chosen.
    pub fn window() -> Self {
        Self::Window
    }

    /// The confidence a rule uses unless `--confidence` says otherwise:
    /// 99% for `sequential`, 95% (as before) for `window`.
    pub fn default_confidence(self) -> f64 {
        match self {
            Self::Sequential => 0.99,
            Self::Window => 0.95,
        }
    }

    /// `sequential` or `window`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sequential => "sequential",
            Self::Window => "window",
        }
    }
}

/// Per-version numbers of a window.
pub fn stats(version: &str, c: &VersionCounters) -> VersionStats {
    let requests = whole(c.requests);
    let errors = whole(c.errors).min(requests);
    let success_rate = (requests > 0).then(|| 100.0 * (requests - errors) as f64 / requests as f64);
    let failures = c
        .failures
        .iter()
        .map(|(k, &n)| (k.clone(), whole(n)))
        .filter(|&(_, n)| n > 0)
        .collect();
    VersionStats {
        version: version.to_owned(),
        requests,
        errors,
        failures,
        success_rate,
        p50_ms: histogram_quantile(0.5, &c.buckets),
        p99_ms: histogram_quantile(0.99, &c.buckets),
    }
}

/// The failed requests by cause, most first: `INTERNAL ×10, UNAVAILABLE ×2`
/// (empty without failures).
pub fn failure_causes(v: &VersionStats) -> String {
    let mut causes: Vec<(&String, &u64)> = v.failures.iter().collect();
    causes.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    causes
        .iter()
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `12 of 100 failed: INTERNAL ×10, UNAVAILABLE ×2` (the causes only when known).
fn failed_text(v: &VersionStats) -> String {
    let causes = failure_causes(v);
    if causes.is_empty() {
        format!("{} of {} failed", v.errors, v.requests)
    } else {
        format!("{} of {} failed: {causes}", v.errors, v.requests)
    }
}

/// The `q` quantile of a cumulative histogram, as Prometheus'
/// `histogram_quantile` computes it: find the bucket holding rank `q * total`
/// and interpolate linearly inside it (the first bucket's lower bound is 0;
/// a rank in the `+Inf` bucket returns the largest finite bound). `None`
/// without a `+Inf` bucket or without observations.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let (last_le, total) = *buckets.last()?;
    if last_le != f64::INFINITY || total <= 0.0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    if buckets.len() < 2 {
        return None;
    }
    let rank = q * total;
    let i = buckets.iter().position(|&(_, c)| c >= rank)?;
    if i == buckets.len() - 1 {
        return Some(buckets[buckets.len() - 2].0);
    }
    let (upper, count_upper) = buckets[i];
    let (lower, count_lower) = if i == 0 {
        if upper <= 0.0 {
            return Some(upper);
        }
        (0.0, 0.0)
    } else {
        buckets[i - 1]
    };
    let in_bucket = count_upper - count_lower;
    if in_bucket <= 0.0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * ((rank - count_lower) / in_bucket))
}

/// The standard normal upper tail, `P(Z > z)`.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' Chebyshev fit,
/// relative error < 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// One-sided two-proportion z-test: is the canary's error rate greater than
/// the baseline's? `None` when either version had no requests.
pub fn compare(
    baseline: &VersionStats,
    canary: &VersionStats,
    confidence: f64,
) -> Option<Comparison> {
    if baseline.requests == 0 || canary.requests == 0 {
        return None;
    }
    let (nb, nc) = (baseline.requests as f64, canary.requests as f64);
    let (pb, pc) = (baseline.errors as f64 / nb, canary.errors as f64 / nc);
    let pooled = (baseline.errors + canary.errors) as f64 / (nb + nc);
    let se = (pooled * (1.0 - pooled) * (1.0 / nb + 1.0 / nc)).sqrt();
    let z = if se > 0.0 { (pc - pb) / se } else { 0.0 };
    let p_value = normal_sf(z);
    Some(Comparison {
        test: "two-proportion z-test (one-sided) on failure rates".to_owned(),
        z,
        p_value,
        confidence,
        significantly_worse: pc > pb && p_value < 1.0 - confidence,
    })
}

/// The standard normal quantile (inverse CDF) by bisection on [`normal_sf`];
/// accurate to ~1e-9, plenty for sample-size planning.
pub fn normal_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (-10.0_f64, 10.0_f64);
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if 1.0 - normal_sf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// Canary requests per window needed for the one-sided two-proportion
/// z-test at `confidence` to detect a canary error rate `p_canary` against
/// a baseline at `p_base` with probability `power`, when the baseline gets
/// `ratio` times the canary's traffic (9 at a 10% step). Normal
/// approximation (Fleiss); `benches/` verifies it by simulation.
pub fn required_canary_requests(
    p_base: f64,
    p_canary: f64,
    ratio: f64,
    confidence: f64,
    power: f64,
) -> u64 {
    let (za, zb) = (normal_quantile(confidence), normal_quantile(power));
    let pooled = (p_canary + ratio * p_base) / (1.0 + ratio);
    let a = za * (pooled * (1.0 - pooled) * (1.0 + 1.0 / ratio)).sqrt();
    let b = zb * (p_canary * (1.0 - p_canary) + p_base * (1.0 - p_base) / ratio).sqrt();
    let n = ((a + b) / (p_canary - p_base)).powi(2);
    // A planning number: round up to whole requests.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = n.ceil() as u64;
    whole
}

fn check(name: &str, status: CheckStatus, detail: String) -> Check {
    Check {
        name: name.to_owned(),
        status,
        detail,
    }
}

/// Are there enough canary requests to judge, with the check saying so?
fn min_requests(canary: &VersionStats, t: &Thresholds) -> (bool, Check) {
    let enough = canary.requests >= t.min_requests;
    let status = if enough {
        CheckStatus::Pass
    } else {
        CheckStatus::Skipped
    };
    let detail = format!(
        "{} canary requests, {} required",
        canary.requests, t.min_requests
    );
    (enough, check("min-requests", status, detail))
}

/// The reason of a window held for lack of canary traffic.
fn held(canary: &VersionStats, t: &Thresholds) -> String {
    format!(
        "held: {} canary requests < {} required; extending the window",
        canary.requests, t.min_requests
    )
}

/// Analyses one window.
pub fn analyse(w: &Window<'_>, t: &Thresholds) -> DecisionRecord {
    let baseline = stats(w.baseline_version, w.baseline);
    let canary = stats(w.canary_version, w.canary);
    let comparison = compare(&baseline, &canary, t.confidence);
    let (enough, first) = min_requests(&canary, t);
    let mut checks = vec![first];
    if !enough {
        return DecisionRecord {
            window_start: w.start,
            window_end: w.end,
            reason: held(&canary, t),
            baseline,
            canary,
            comparison,
            checks,
            verdict: Verdict::Hold,
            evidence: None,
        };
    }
    let sr = canary.success_rate.unwrap_or(0.0);
    checks.push(check(
        "success-rate",
        if sr >= t.success_rate {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        },
        format!(
            "{}: success rate {sr:.2}% ({}), threshold >= {}%",
            canary.version,
            failed_text(&canary),
            t.success_rate
        ),
    ));
    let max_ms = t.max_p99.as_secs_f64() * 1000.0;
    checks.push(match canary.p99_ms {
        Some(p99) => check(
            "max-p99",
            if p99 <= max_ms { CheckStatus::Pass } else { CheckStatus::Fail },
            format!("{}: p99 {p99:.1}ms, threshold <= {max_ms}ms", canary.version),
        ),
        None => check(
            "max-p99",
            CheckStatus::Fail,
            format!(
                "{}: no latency histogram (istio_request_duration_milliseconds_bucket) for {} requests",
                canary.version, canary.requests
            ),
        ),
    });
    checks.push(match &comparison {
        Some(c) => check(
            "vs-baseline",
            if c.significantly_worse { CheckStatus::Fail } else { CheckStatus::Pass },
            format!(
                "{} error rate {:.2}% vs {} {:.2}%: z={:.2}, p={:.4} ({}significantly worse at {}% confidence)",
                canary.version,
                100.0 - canary.success_rate.unwrap_or(100.0),
                baseline.version,
                100.0 - baseline.success_rate.unwrap_or(100.0),
                c.z,
                c.p_value,
                if c.significantly_worse { "" } else { "not " },
                c.confidence * 100.0
            ),
        ),
        None => check(
            "vs-baseline",
            CheckStatus::Skipped,
            format!("{} had no requests in the window; nothing to compare", baseline.version),
        ),
    });
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .map(|c| c.detail.as_str())
        .collect();
    let (verdict, reason) = if failed.is_empty() {
        (Verdict::Pass, "all checks passed".to_owned())
    } else {
        (Verdict::Fail, failed.join("; "))
    };
    DecisionRecord {
        window_start: w.start,
        window_end: w.end,
        baseline,
        canary,
        comparison,
        checks,
        verdict,
        reason,
        evidence: None,
    }
}

/// The record of a window whose metrics could not be read: a failed check.
pub fn unreadable(
    start: Timestamp,
    end: Timestamp,
    baseline: &str,
    canary: &str,
    error: &str,
) -> DecisionRecord {
    DecisionRecord {
        window_start: start,
        window_end: end,
        baseline: VersionStats {
            version: baseline.to_owned(),
            ..VersionStats::default()
        },
        canary: VersionStats {
            version: canary.to_owned(),
            ..VersionStats::default()
        },
        comparison: None,
        checks: vec![check("metrics", CheckStatus::Fail, error.to_owned())],
        verdict: Verdict::Fail,
        reason: error.to_owned(),
        evidence: None,
    }
}

/// Judges a window of a `sequential` rollout whose looks have already fed
/// `evidence`: fails when a test rejected (the record's evidence says so),
/// else passes with at least `min_requests` canary requests in the window
/// (the whole step, when held windows were extended), else holds.
pub fn judge(w: &Window<'_>, t: &Thresholds, evidence: &Evidence) -> DecisionRecord {
    let baseline = stats(w.baseline_version, w.baseline);
    let canary = stats(w.canary_version, w.canary);
    let summary = evidence.summary(w.canary_version, w.baseline_version);
    let (enough, first) = min_requests(&canary, t);
    let mut checks = vec![first];
    for o in &summary.tests {
        // A latency test without the buckets it needs has judged nothing.
        let unjudged = match o.test {
            TestName::MaxP99 => evidence.latency_floor.le_ms.is_none(),
            TestName::LatencyVsBaseline => evidence.latency.tests.is_empty(),
            TestName::VsBaseline | TestName::SuccessRate => false,
        };
        let status = if o.rejected {
            CheckStatus::Fail
        } else if unjudged {
            CheckStatus::Skipped
        } else {
            CheckStatus::Pass
        };
        checks.push(check(o.test.as_str(), status, o.detail.clone()));
    }
    // A canary with traffic but no latency histogram cannot be judged on
    // latency: a failed check, as with the `window` rule.
    let no_histogram = canary.requests > 0 && canary.p99_ms.is_none();
    if no_histogram
        && let Some(c) = checks
            .iter_mut()
            .find(|c| c.name == TestName::MaxP99.as_str())
    {
        c.status = CheckStatus::Fail;
        c.detail = format!(
            "{}: no latency histogram (istio_request_duration_milliseconds_bucket) for {} requests",
            canary.version, canary.requests
        );
    }
    let (verdict, reason) = if summary.rejected {
        // The evidence, and what failed in this window by cause.
        let causes = failure_causes(&canary);
        let reason = if causes.is_empty() {
            summary.sentence.clone()
        } else {
            format!(
                "{}; {} in this window: {}",
                summary.sentence,
                canary.version,
                failed_text(&canary)
            )
        };
        (Verdict::Fail, reason)
    } else if !enough {
        // Too little traffic holds, as with the window rule, before any
        // other check can fail.
        (Verdict::Hold, held(&canary, t))
    } else if no_histogram {
        let detail = checks
            .iter()
            .find(|c| c.status == CheckStatus::Fail)
            .map(|c| c.detail.clone())
            .unwrap_or_default();
        (Verdict::Fail, detail)
    } else {
        (
            Verdict::Pass,
            format!("no test rejected: {}", summary.sentence),
        )
    };
    DecisionRecord {
        window_start: w.start,
        window_end: w.end,
        baseline,
        canary,
        comparison: None,
        checks,
        verdict,
        reason,
        evidence: Some(Box::new(summary)),
    }
}

/// Analyses one window on its own with the rollout's rule: `window` as
/// [`analyse`], `sequential` as a rollout whose only window this is
/// (`meshctl analyze`).
pub fn analyse_once(w: &Window<'_>, t: &Thresholds) -> DecisionRecord {
    match t.analysis {
        Analysis::Window => analyse(w, t),
        Analysis::Sequential => {
            let mut evidence = Evidence::new(t.levels());
            evidence.observe(
                &Counts::from_counters(w.canary),
                &Counts::from_counters(w.baseline),
            );
            judge(w, t, &evidence)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LES: [f64; 6] = [1.0, 5.0, 10.0, 25.0, 50.0, 100.0];

    /// A histogram where `per_bucket[i]` requests fell in bucket `LES[i]`.
    fn counters(requests: f64, errors: f64, per_bucket: &[f64]) -> VersionCounters {
        let mut acc = 0.0;
        let mut buckets = Vec::new();
        for (i, n) in per_bucket.iter().enumerate() {
            acc += n;
            buckets.push((LES[i], acc));
        }
        buckets.push((f64::INFINITY, acc));
        VersionCounters {
            requests,
            errors,
            buckets,
            ..VersionCounters::default()
        }
    }

    fn window<'a>(b: &'a VersionCounters, c: &'a VersionCounters) -> Window<'a> {
        Window {
            start: Timestamp::from_millis(0),
            end: Timestamp::from_millis(1000),
            baseline_version: "v1",
            baseline: b,
            canary_version: "v2",
            canary: c,
        }
    }

    #[test]
    fn quantile_interpolates_like_prometheus() {
        // 100 observations: 50 in (0,1], 40 in (1,5], 10 in (5,10].
        let b = [
            (1.0, 50.0),
            (5.0, 90.0),
            (10.0, 100.0),
            (f64::INFINITY, 100.0),
        ];
        assert_eq!(histogram_quantile(0.5, &b), Some(1.0));
        // rank 99 is 9/10 into (5,10].
        assert!((histogram_quantile(0.99, &b).unwrap() - 9.5).abs() < 1e-9);
        // rank 25 is halfway into (0,1].
        assert!((histogram_quantile(0.25, &b).unwrap() - 0.5).abs() < 1e-9);
        // Rank in +Inf: the largest finite bound.
        let b = [(1.0, 1.0), (f64::INFINITY, 10.0)];
        assert_eq!(histogram_quantile(0.99, &b), Some(1.0));
        // No +Inf bucket, no observations: no answer.
        assert_eq!(histogram_quantile(0.5, &[(1.0, 1.0)]), None);
        assert_eq!(
            histogram_quantile(0.5, &[(1.0, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
    }

    #[test]
    fn normal_tail_is_accurate() {
        assert!((normal_sf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_sf(1.644_853_6) - 0.05).abs() < 1e-6);
        assert!((normal_sf(-1.959_964) - 0.975).abs() < 1e-6);
    }

    /// A small deterministic PRNG (xorshift64*) for the power simulation.
    struct Rng(u64);

    impl Rng {
        fn unit(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
            (x >> 11) as f64 / (1u64 << 53) as f64
        }

        fn failures(&mut self, n: u64, p: f64) -> f64 {
            (0..n).filter(|_| self.unit() < p).count() as f64
        }
    }

    /// Share of simulated windows where the z-test alone flags the canary.
    fn detection_rate(n: u64, ratio: u64, p_base: f64, p_canary: f64, trials: u32) -> f64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut hits = 0;
        for _ in 0..trials {
            let mut draw = |version, requests: u64, p| {
                let errors = rng.failures(requests, p);
                stats(
                    version,
                    &VersionCounters {
                        requests: requests as f64,
                        errors,
                        ..VersionCounters::default()
                    },
                )
            };
            let b = draw("v1", n * ratio, p_base);
            let c = draw("v2", n, p_canary);
            if compare(&b, &c, 0.95).is_some_and(|k| k.significantly_worse) {
                hits += 1;
            }
        }
        f64::from(hits) / f64::from(trials)
    }

    #[test]
    fn sample_size_for_5_percent_vs_0_1_percent_is_verified_by_simulation() {
        assert!((normal_quantile(0.95) - 1.644_853_6).abs() < 1e-6);
        // Canary at 10% of traffic: baseline gets 9x the requests.
        let n = required_canary_requests(0.001, 0.05, 9.0, 0.95, 0.8);
        assert!((35..=50).contains(&n), "n = {n}");
        let rate = detection_rate(n, 9, 0.001, 0.05, 2000);
        println!(
            "z-test: {n} canary requests detect 5% vs 0.1% errors at 95% confidence in {:.1}% of simulated windows",
            rate * 100.0
        );
        assert!(rate >= 0.75, "simulated power {rate} at n = {n}");
        // With far fewer requests the test rarely fires: holding is right.
        assert!(detection_rate(5, 9, 0.001, 0.05, 2000) < 0.3);
    }

    #[test]
    fn healthy_canary_passes() {
        let r = by_the_window_rule(
            &counters(900.0, 1.0, &[800.0, 100.0]),
            &counters(100.0, 0.0, &[90.0, 10.0]),
        );
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
        assert_eq!(r.reason, "all checks passed");
        assert_eq!(r.canary.success_rate, Some(100.0));
        assert!(r.comparison.is_some());
    }

    #[test]
    fn ten_percent_errors_fail_with_numbers() {
        let r = by_the_window_rule(
            &counters(900.0, 0.0, &[900.0]),
            &counters(100.0, 10.0, &[100.0]),
        );
        assert_eq!(r.verdict, Verdict::Fail);
        assert_reason_has(
            &r,
            "success rate 90.00% (10 of 100 failed), threshold >= 99%",
        );
        assert!(r.comparison.as_ref().unwrap().significantly_worse);
        assert_reason_has(&r, "significantly worse at 95% confidence");
    }

    #[test]
    fn grpc_failures_are_named_in_the_reason() {
        let b = counters(900.0, 0.0, &[900.0]);
        let mut c = counters(100.0, 12.0, &[100.0]);
        c.failures = BTreeMap::from([
            ("UNAVAILABLE".to_owned(), 2.0),
            ("INTERNAL".to_owned(), 10.0),
        ]);
        let r = analyse(&window(&b, &c), &Thresholds::default());
        assert_eq!(r.verdict, Verdict::Fail);
        assert_reason_has(
            &r,
            "v2: success rate 88.00% (12 of 100 failed: INTERNAL ×10, UNAVAILABLE ×2)",
        );
        assert_eq!(r.canary.failures["INTERNAL"], 10);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["canary"]["failures"]["UNAVAILABLE"], 2);
        assert!(json["baseline"].get("failures").is_none());
    }

    #[test]
    fn thresholds_without_grpc_codes_read_the_default() {
        // State written before gRPC codes existed still loads.
        let t: Thresholds = serde_json::from_str(
            r#"{"success_rate":99.0,"max_p99":"500ms","min_requests":20,"confidence":0.95}"#,
        )
        .unwrap();
        assert_eq!(t.grpc_error_codes, GrpcCodes::default());
        let t = Thresholds {
            grpc_error_codes: "INTERNAL".parse().unwrap(),
            ..Thresholds::default()
        };
        let back: Thresholds = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn slow_canary_fails_p99() {
        let b = counters(100.0, 0.0, &[100.0]);
        // All canary requests in (50, 100]ms.
        let c = counters(100.0, 0.0, &[0.0, 0.0, 0.0, 0.0, 0.0, 100.0]);
        let t = Thresholds {
            max_p99: Duration::from_millis(50),
            ..Thresholds::window()
        };
        let r = analyse(&window(&b, &c), &t);
        assert_eq!(r.verdict, Verdict::Fail);
        assert_reason_has(&r, "p99 99.5ms, threshold <= 50ms");
    }

    #[test]
    fn too_few_requests_hold_even_when_failing() {
        let r = by_the_window_rule(&counters(900.0, 0.0, &[900.0]), &counters(5.0, 5.0, &[5.0]));
        assert_eq!(r.verdict, Verdict::Hold);
        assert_eq!(
            r.reason,
            "held: 5 canary requests < 20 required; extending the window"
        );
    }

    /// `analyse` of baseline `b` and canary `c` under the window rule.
    fn by_the_window_rule(b: &VersionCounters, c: &VersionCounters) -> DecisionRecord {
        analyse(&window(b, c), &Thresholds::window())
    }

    /// Asserts `r`'s reason contains `part`.
    fn assert_reason_has(r: &DecisionRecord, part: &str) {
        assert!(r.reason.contains(part), "{}", r.reason);
    }

    /// The window rule with an absolute threshold of 95% success.
    fn at_95_percent() -> Thresholds {
        Thresholds {
            success_rate: 95.0,
            ..Thresholds::window()
        }
    }

    #[test]
    fn noisy_baseline_does_not_doom_the_canary() {
        // Both versions at ~1.5% errors: the canary misses the absolute 99%
        // threshold only if it really is below it; the comparison says "not worse".
        let b = counters(1000.0, 15.0, &[1000.0]);
        let c = counters(200.0, 3.0, &[200.0]);
        let r = analyse(&window(&b, &c), &at_95_percent());
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
        assert!(!r.comparison.unwrap().significantly_worse);
    }

    #[test]
    fn small_regression_is_caught_by_the_comparison() {
        // 0.1% vs 2%: above an absolute 95% threshold but significantly worse.
        let b = counters(10_000.0, 10.0, &[10_000.0]);
        let c = counters(1_000.0, 20.0, &[1_000.0]);
        let r = analyse(&window(&b, &c), &at_95_percent());
        assert_eq!(r.verdict, Verdict::Fail);
        let failed: Vec<_> = r
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].name, "vs-baseline");
    }

    #[test]
    fn missing_histogram_fails() {
        let b = counters(100.0, 0.0, &[100.0]);
        let c = VersionCounters {
            requests: 100.0,
            ..VersionCounters::default()
        };
        let r = analyse(&window(&b, &c), &Thresholds::window());
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.reason.contains("no latency histogram"), "{}", r.reason);
    }

    #[test]
    fn analyse_once_runs_the_sequential_tests_over_one_window() {
        let t = Thresholds::default();
        // Healthy: passes, the evidence bounds the error rate.
        let b = counters(900.0, 1.0, &[800.0, 100.0]);
        let c = counters(100.0, 0.0, &[90.0, 10.0]);
        let r = analyse_once(&window(&b, &c), &t);
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
        assert!(r.reason.starts_with("no test rejected: v2 errors 0 of 100 vs v1 1 of 900; p = 1 ≥ 0.01 after 1 window; v2 error rate ≤ "), "{}", r.reason);
        assert!(!r.rejected_by_evidence());
        // The p99 floor needs a bucket at or above 500 ms: not judged here.
        let p99 = r.checks.iter().find(|k| k.name == "max-p99").unwrap();
        assert_eq!(p99.status, CheckStatus::Skipped, "{p99:?}");
        // 10 of 100 failed against 0 of 900: rejected, a statistical failure.
        let b = counters(900.0, 0.0, &[900.0]);
        let c = counters(100.0, 10.0, &[100.0]);
        let r = analyse_once(&window(&b, &c), &t);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.rejected_by_evidence());
        assert!(
            r.reason
                .starts_with("v2 errors 10 of 100 vs v1 0 of 900; p = "),
            "{}",
            r.reason
        );
        let failed: Vec<&str> = r
            .checks
            .iter()
            .filter(|k| k.status == CheckStatus::Fail)
            .map(|k| k.name.as_str())
            .collect();
        assert_eq!(failed, ["vs-baseline", "success-rate"]);
        // Too little traffic holds; no histogram fails without a rejection.
        let c = counters(5.0, 0.0, &[5.0]);
        assert_eq!(analyse_once(&window(&b, &c), &t).verdict, Verdict::Hold);
        let c = VersionCounters {
            requests: 100.0,
            ..VersionCounters::default()
        };
        let r = analyse_once(&window(&b, &c), &t);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(!r.rejected_by_evidence());
        assert!(r.reason.contains("no latency histogram"), "{}", r.reason);
        // The window rule is still the window rule.
        let w = analyse_once(
            &window(&b, &counters(100.0, 0.0, &[100.0])),
            &Thresholds::window(),
        );
        assert_eq!((w.verdict, w.evidence.is_none()), (Verdict::Pass, true));
    }

    #[test]
    fn unreadable_metrics_fail() {
        let r = unreadable(
            Timestamp::from_millis(0),
            Timestamp::from_millis(1),
            "v1",
            "v2",
            "metrics source http://x is unreachable",
        );
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.checks[0].name, "metrics");
    }
}
