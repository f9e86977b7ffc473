//! The flags that describe a service and a rollout, declared with clap
//! derive for `crate::cli` (which re-exports them) beside the rules that
//! check them: a typed flag (`--interval`, `--timeout`, `--max-p99`,
//! `analyze --for` and `--compare`) is parsed by the value parsers below
//! with the same rules and messages as the file's field, and stage two
//! (`super::build`) lays the rest over the file.
//! A value a parser here rejects is an input error (exit 1, `error: ...`),
//! not a usage error: see [`crate::cli::rejected_value`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{DurationValue, SpecError, flag_error};
use crate::traffic::Version;

/// `--interval`: a fixed window, or `auto` (`rollout start` only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    /// Size each window from the traffic.
    Auto,
    /// A fixed window, longer than zero.
    Every(Duration),
}

/// A duration flag's value, longer than zero.
pub(super) fn flag_duration(flag: &str, v: &str) -> Result<Duration, SpecError> {
    let d = v
        .parse::<DurationValue>()
        .map_err(|m| flag_error(flag, v, m))?
        .0;
    if d.is_zero() {
        return Err(flag_error(flag, v, "must be longer than zero (e.g. 30s)"));
    }
    Ok(d)
}

/// Parses `--interval`: `auto`, or a duration longer than zero.
pub fn interval_flag(v: &str) -> Result<Interval, SpecError> {
    if v == "auto" {
        return Ok(Interval::Auto);
    }
    flag_duration("--interval", v).map(Interval::Every)
}

/// Parses `--timeout`, a duration longer than zero.
pub fn timeout_flag(v: &str) -> Result<Duration, SpecError> {
    flag_duration("--timeout", v)
}

/// Parses `--max-p99`, a duration longer than zero.
pub fn max_p99_flag(v: &str) -> Result<Duration, SpecError> {
    flag_duration("--max-p99", v)
}

/// A duration longer than zero in humantime's syntax (`5m`, `2s 500ms`),
/// else an error naming `flag` and an `example` (`analyze --for`, `demo
/// --interval`).
pub fn humantime_flag(flag: &str, v: &str, example: &str) -> Result<Duration, SpecError> {
    humantime::parse_duration(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| SpecError::Flag {
            flag: flag.to_owned(),
            message: format!("{flag} {v:?} is not a duration: use e.g. {example}"),
        })
}

/// Parses `analyze --for`.
fn window_flag(v: &str) -> Result<Duration, SpecError> {
    humantime_flag("--for", v, "5m or 30s")
}

/// Parses one version of `analyze --compare`.
fn compare_flag(v: &str) -> Result<Version, SpecError> {
    v.parse().map_err(|e| SpecError::Flag {
        flag: "--compare".to_owned(),
        message: format!("--compare: {e}"),
    })
}

/// Inputs that describe a service: a spec file and/or flags.
#[derive(Debug, Args, Clone, Default)]
pub struct SpecArgs {
    /// Service name (default: the spec file's `service`).
    pub service: Option<String>,
    /// Spec file (default: ./meshctl.yaml when present).
    #[arg(short = 'f', long = "file", env = "MESHCTL_FILE")]
    pub file: Option<PathBuf>,
    /// External host routed to the service (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Gateway name (default: `<service>-gateway` when hosts are given).
    #[arg(long)]
    pub gateway: Option<String>,
    /// Service port.
    #[arg(long)]
    pub port: Option<u16>,
    /// Versions (subsets), comma-separated, stable first (e.g. `v1,v2`).
    #[arg(long, value_delimiter = ',')]
    pub versions: Vec<String>,
    /// Weight per version, `VERSION=PERCENT` (repeatable; must sum to 100).
    #[arg(long = "weight")]
    pub weights: Vec<String>,
    /// Directory of templates overriding the embedded ones.
    #[arg(long, env = "MESHCTL_TEMPLATES")]
    pub templates: Option<PathBuf>,
    /// Istio API version to emit: v1 (default), v1beta1.
    #[arg(long)]
    pub istio_api: Option<String>,
    /// Sticky sessions: pin each client to the version it first got with
    /// this cookie, rendered as VirtualService routes (default: the spec
    /// file's `stickyCookie`; `rollout start` also keeps the cookie of
    /// sticky routes already applied).
    #[arg(long, value_name = "NAME", value_hint = clap::ValueHint::Other)]
    pub sticky_cookie: Option<String>,
}

/// The thresholds a canary is judged by, declared once for `rollout start`
/// and `analyze`.
#[derive(Debug, Args, Clone, Default)]
pub struct ThresholdArgs {
    /// Minimum canary success rate, percent of requests that did not fail
    /// (5xx, or a gRPC status of `--grpc-error-codes`) (default 99).
    #[arg(long)]
    pub success_rate: Option<f64>,
    /// Maximum canary p99 latency (default `500ms`).
    #[arg(long, value_parser = max_p99_flag)]
    pub max_p99: Option<Duration>,
    /// Minimum canary requests per analysis window (default 20); with
    /// fewer the window is inconclusive (a rollout holds its step).
    #[arg(long)]
    pub min_requests: Option<u64>,
    /// gRPC statuses that count as failed requests besides HTTP 5xx:
    /// names (case-insensitive) or numbers, comma-separated, `none` for 5xx
    /// only (default
    /// `UNKNOWN,DEADLINE_EXCEEDED,UNIMPLEMENTED,INTERNAL,UNAVAILABLE,DATA_LOSS`).
    #[arg(long, value_name = "CODES")]
    pub grpc_error_codes: Option<String>,
    /// How windows are judged: `sequential` (default) accumulates
    /// anytime-valid evidence over every window and rolls back when a test
    /// rejects at the `--confidence` level; `window` judges each window on
    /// its own with point estimates (Flagger-like, meshctl's earlier rule).
    #[arg(long, value_enum)]
    pub analysis: Option<AnalysisRule>,
    /// Confidence of the statistical tests, percent (default 99 with
    /// `--analysis sequential`, 95 with `window`): a healthy canary is
    /// rolled back with probability at most 100 − confidence per test.
    #[arg(long)]
    pub confidence: Option<f64>,
}

/// `--analysis`; becomes [`crate::rollout::analysis::Analysis`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnalysisRule {
    /// Anytime-valid evidence over the whole rollout (default).
    Sequential,
    /// Each window on its own (Flagger-like).
    Window,
}

impl From<AnalysisRule> for crate::rollout::analysis::Analysis {
    fn from(r: AnalysisRule) -> Self {
        match r {
            AnalysisRule::Sequential => Self::Sequential,
            AnalysisRule::Window => Self::Window,
        }
    }
}

/// Analysis thresholds.
#[derive(Debug, Args, Clone, Default)]
pub struct AnalysisArgs {
    /// Time between steps / analysis windows (e.g. `30s`).
    ///
    /// `rollout start` also takes `auto`: each step bakes until v2 has served
    /// the requests the analysis needs, at the share of the traffic it gets
    /// in that step (see `rollout start --help`).
    #[arg(long, value_parser = interval_flag)]
    pub interval: Option<Interval>,
    /// Failed checks tolerated before rolling back.
    #[arg(long)]
    pub threshold: Option<u32>,
    /// `--success-rate`, `--max-p99`, `--min-requests`, `--analysis`,
    /// `--confidence`.
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
    /// meshproxy metrics endpoint (e.g. `http://127.0.0.1:15000/metrics`).
    #[arg(long, conflicts_with = "prometheus")]
    pub metrics: Option<String>,
    /// Prometheus server URL, queried with PromQL over Istio metrics.
    #[arg(long)]
    pub prometheus: Option<String>,
}

/// `meshctl rollout start`.
#[derive(Debug, Args)]
pub struct RolloutStartArgs {
    /// What to roll out.
    #[command(flatten)]
    pub spec: SpecArgs,
    /// The new version.
    #[arg(long)]
    pub to: String,
    /// The stable version (default: the one taking traffic now).
    #[arg(long)]
    pub from: Option<String>,
    /// Canary weights per step, comma-separated (e.g. `10,25,50,100`).
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["step_weight", "max_weight"])]
    pub steps: Vec<u8>,
    /// Weight added per step (with --max-weight).
    #[arg(long)]
    pub step_weight: Option<u8>,
    /// Last canary weight before promotion (with --step-weight).
    #[arg(long)]
    pub max_weight: Option<u8>,
    /// Analysis thresholds and metrics source.
    #[command(flatten)]
    pub analysis: AnalysisArgs,
    /// Hold at the last step (Paused) until `meshctl promote`.
    #[arg(long)]
    pub manual_promotion: bool,
    /// Exit 5 when paused instead of waiting for `meshctl promote`.
    #[arg(long)]
    pub no_wait_on_pause: bool,
    /// On SIGINT/SIGTERM: roll back (default) or pause.
    #[arg(long, value_enum)]
    pub on_interrupt: Option<OnInterrupt>,
    /// Progress deadline per step (e.g. `10m`); passing it while held rolls back (exit 4).
    #[arg(long, value_parser = timeout_flag)]
    pub timeout: Option<Duration>,
    /// Write a Markdown summary (steps, numbers, verdicts, an SVG chart) here,
    /// e.g. `$GITHUB_STEP_SUMMARY`.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Write a JUnit XML report here: one test case per analysis.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// How v2 receives traffic: weighted steps (`canary`), only requests
    /// matching `--match` (`ab`), mirrored copies first then the steps
    /// (`mirror`), or a preview then 100% at once (`bluegreen`).
    #[arg(long, value_enum, default_value_t = StrategyKind::Canary)]
    pub strategy: StrategyKind,
    /// With `--strategy ab` (or `bluegreen`, to preview on matched requests
    /// instead of mirrored ones): the requests sent to v2,
    /// `header:NAME=VALUE` or `cookie:NAME=VALUE`.
    #[arg(long = "match", value_name = "header:NAME=VALUE|cookie:NAME=VALUE")]
    pub match_rule: Option<String>,
    /// With `--strategy ab`, `mirror` or `bluegreen`: analysis intervals of
    /// the match / mirror / preview phase.
    #[arg(long, default_value_t = 3)]
    pub iterations: u32,
    /// With `--strategy mirror` or `bluegreen`: share of live requests
    /// mirrored to v2, 1 to 100 (default 100).
    #[arg(long, value_name = "PERCENT")]
    pub mirror_percent: Option<String>,
}

/// `meshctl analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Service name (`destination_service_name`).
    pub service: String,
    /// Baseline and canary versions, e.g. `--compare v1 v2`.
    #[arg(
        long,
        num_args = 2,
        value_names = ["BASELINE", "CANARY"],
        required = true,
        value_parser = compare_flag
    )]
    pub compare: Vec<Version>,
    /// Length of the analysis window (e.g. `5m`).
    #[arg(long = "for", default_value = "5m", value_parser = window_flag)]
    pub window: Duration,
    /// `--success-rate`, `--max-p99`, `--min-requests`.
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
    /// meshproxy metrics endpoint (default `http://127.0.0.1:15000/metrics`).
    #[arg(long, conflicts_with = "prometheus")]
    pub metrics: Option<String>,
    /// Prometheus server URL, queried with PromQL over Istio metrics.
    #[arg(long)]
    pub prometheus: Option<String>,
}

/// `meshctl rollout start --strategy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StrategyKind {
    /// Weighted canary steps.
    Canary,
    /// Header/cookie-matched requests go to v2.
    Ab,
    /// v2 analysed on mirrored copies of live traffic (clients see v1), then the canary steps.
    Mirror,
    /// v2 analysed on mirrored (or `--match`ed) traffic, then 100% in one
    /// write, then one post-switch analysis; a failure rolls back in one write.
    Bluegreen,
}

/// `--on-interrupt`: what to do when the driver is interrupted
/// (SIGINT/SIGTERM); becomes [`crate::rollout::machine::OnInterrupt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OnInterrupt {
    /// Send 100% back to the stable version (default).
    #[default]
    Rollback,
    /// Leave the weights where they are, phase Paused.
    Pause,
}

impl From<OnInterrupt> for crate::rollout::machine::OnInterrupt {
    fn from(o: OnInterrupt) -> Self {
        match o {
            OnInterrupt::Rollback => Self::Rollback,
            OnInterrupt::Pause => Self::Pause,
        }
    }
}
