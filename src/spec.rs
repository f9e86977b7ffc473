//! The spec language: `meshctl.yaml` plus flags become one validated
//! [`ServiceSpec`].
//!
//! Two stages, as in ripgrep's low/high-level arguments. First the file is
//! read into raw serde structs that reject unknown fields (a typo such as
//! `wieght` is an error naming its line, column and the valid field names)
//! and whose leaf types validate themselves while parsing (hosts, ports,
//! version names, weights, durations, URLs), so most mistakes carry a
//! position. Then flags replace file values and the cross-field rules are
//! checked (weights name known versions, a gateway needs hosts, ...). The rest
//! of meshctl accepts only the validated types defined here.
//!
//! Every error names where the value came from (the file with line and
//! column, or the flag), the field, and what to write instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use meshproxy::istio::ApiVersion;
use meshproxy::istio::validate::{is_dns1123_label, is_dns1123_subdomain, is_valid_host};
use meshproxy::istio::yaml::{self, YamlError};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::cli::{AnalysisArgs, OnInterrupt, RolloutStartArgs, SpecArgs, ThresholdArgs};
use crate::metrics::GrpcCodes;
use crate::rollout::analysis::Thresholds;
use crate::rollout::sticky::CookieName;
use crate::traffic::{Split, TrafficError, Version, Weight};

/// The spec file used when `-f` is not given and the file exists.
pub const DEFAULT_FILE: &str = "meshctl.yaml";

/// A spec that could not be read or is invalid.
///
/// The `Display` form is the whole message for `Invalid`; for `Read` and
/// `Parse` it names the file and the cause follows through `source()`
/// (printed by `main` as `file: cause`).
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The spec file could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The spec file is not valid YAML, has an unknown field, or a value of
    /// the wrong type or out of range (the cause carries line, column and field).
    #[error("{}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said, with position and field path.
        #[source]
        source: Box<YamlError>,
    },
    /// A value is invalid in context (from the file or from a flag).
    #[error("{at}: {message}")]
    Invalid {
        /// Where: `meshctl.yaml: line 12 column 3 at field `weights.v3`` or `--weight`.
        at: String,
        /// The field (`weights.v3`), or the flag (`--weight`).
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// The fully validated description of one service: what `render` turns into
/// Istio resources and what a rollout starts from.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceSpec {
    /// Service name (a DNS-1123 label): the Kubernetes Service, the
    /// DestinationRule host and the name of the rendered objects.
    pub service: String,
    /// Namespace for the rendered objects; `None` leaves it to the target.
    pub namespace: Option<String>,
    /// External hosts routed to the service through the gateway (may be empty).
    pub hosts: Vec<String>,
    /// The ingress gateway; present exactly when `hosts` is not empty.
    pub gateway: Option<GatewaySpec>,
    /// Service port; when set, route destinations name it.
    pub port: Option<NonZeroU16>,
    /// Versions (DestinationRule subsets), never empty; the first is stable.
    pub versions: Vec<VersionSpec>,
    /// Traffic split rendered when nothing overrides it (default: the
    /// stable version at 100). Only names versions in `versions`.
    pub weights: Split,
    /// Istio API version to emit.
    pub istio_api: ApiVersion,
    /// Rollout defaults (flags of `rollout start` override them).
    pub rollout: RolloutDefaults,
    /// Where rollout analysis reads metrics, when configured.
    pub metrics: Option<MetricsSource>,
    /// Webhooks called around a rollout, in file order.
    pub webhooks: Vec<Webhook>,
    /// The spec file this came from, if any.
    pub source: Option<PathBuf>,
    /// Sticky sessions (`stickyCookie`, `--sticky-cookie`): the cookie whose
    /// routes the VirtualService carries (see [`crate::rollout::sticky`]).
    pub sticky_cookie: Option<CookieName>,
}

/// One version of the service: a DestinationRule subset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionSpec {
    /// Subset name (`v1`).
    pub name: Version,
    /// Pod labels selecting the version's endpoints (default `version: NAME`).
    pub labels: BTreeMap<String, String>,
}

/// The ingress gateway exposing `hosts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewaySpec {
    /// Gateway object name (default `<service>-gateway`).
    pub name: String,
    /// Listener port (default 443 with TLS, else 80).
    pub port: NonZeroU16,
    /// TLS termination; `None` is plain HTTP.
    pub tls: Option<GatewayTls>,
    /// Labels of the gateway pods (default `istio: ingressgateway`).
    pub selector: BTreeMap<String, String>,
}

/// TLS settings of the gateway listener (mode `SIMPLE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayTls {
    /// Kubernetes secret holding the certificate and key.
    pub credential_name: String,
}

/// Defaults for `meshctl rollout start`, every value already parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutDefaults {
    /// Canary weight of each step, strictly increasing, each 1..=100
    /// (default `10, 25, 50, 100`). `stepWeight`/`maxWeight` in the file
    /// expand into this list: `stepWeight, 2×stepWeight, …` up to `maxWeight`.
    pub steps: Vec<Weight>,
    /// Time between steps, the analysis window (default 30s, never zero).
    pub interval: Duration,
    /// `interval: auto` in the file: size each window from the traffic, as
    /// `--interval auto` does (an `--interval` flag overrides it).
    pub auto_interval: bool,
    /// Failed or inconclusive checks tolerated before rolling back (default 2).
    pub threshold: u32,
    /// Minimum canary success rate in percent, 0..=100 (default 99).
    pub success_rate: f64,
    /// Maximum canary p99 latency (default 500ms).
    pub max_p99: Duration,
    /// Minimum canary requests per window; fewer is inconclusive (default 20).
    pub min_requests: u64,
    /// Progress deadline of one step (default 10m, never zero).
    pub timeout: Duration,
    /// Pause at the last step until `meshctl promote` (default false).
    pub manual_promotion: bool,
    /// What SIGINT/SIGTERM does to a running rollout (default rollback).
    pub on_interrupt: OnInterrupt,
    /// gRPC statuses counted as failed requests besides 5xx (default: the
    /// server faults, see [`GrpcCodes`]).
    pub grpc_error_codes: GrpcCodes,
}

/// Where rollout analysis reads metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricsSource {
    /// A meshproxy admin `/metrics` endpoint (Prometheus text).
    Proxy(reqwest::Url),
    /// A Prometheus server, queried with PromQL over Istio's metrics.
    Prometheus(reqwest::Url),
}

/// When a webhook is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookType {
    /// Before the first step; a failure aborts the rollout before traffic moves.
    PreRollout,
    /// Before each step; a failure counts as a failed check.
    Rollout,
    /// After promotion.
    PostRollout,
    /// After a rollback.
    Rollback,
}

/// A webhook called around a rollout (HTTP POST with a JSON body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    /// Name (a DNS-1123 label, unique), used in events and errors.
    pub name: String,
    /// When it is called.
    pub kind: WebhookType,
    /// Where (http or https).
    pub url: reqwest::Url,
    /// How long to wait for the answer (default 10s).
    pub timeout: Duration,
}

// === impl ServiceSpec ===

impl ServiceSpec {
    /// The stable (first) version.
    pub fn stable(&self) -> &Version {
        &self.versions[0].name
    }

    /// The canary: the last version (the stable one when there is only one).
    pub fn canary(&self) -> &Version {
        &self.versions[self.versions.len() - 1].name
    }

    /// The version named `name`, if the spec has it.
    pub fn version(&self, name: &Version) -> Option<&VersionSpec> {
        self.versions.iter().find(|v| &v.name == name)
    }

    /// Parses and validates a spec from text alone (no flags); `origin` names
    /// the text in errors. Useful for tests and for specs held in memory.
    pub fn from_yaml(text: &str, origin: &Path) -> Result<Self, SpecError> {
        let raw = parse_raw(text, origin)?;
        build(
            raw,
            FileCtx {
                path: Some(origin),
                text,
            },
            &SpecArgs::default(),
            None,
        )
    }
}

// === impl RolloutDefaults ===

impl RolloutDefaults {
    /// Replaces defaults with the flags of `meshctl rollout start` that are
    /// given (`--steps` or `--step-weight`/`--max-weight`, `--interval`,
    /// `--threshold`, `--success-rate`, `--max-p99`, `--min-requests`,
    /// `--timeout`, `--manual-promotion`, `--on-interrupt`). Errors name the flag.
    pub fn apply_flags(&mut self, args: &RolloutStartArgs) -> Result<(), SpecError> {
        let RolloutStartArgs {
            steps,
            step_weight,
            max_weight,
            analysis,
            manual_promotion,
            on_interrupt,
            timeout,
            ..
        } = args;
        self.apply_analysis_flags(analysis)?;
        let weight = |flag: &str, w: u8| {
            Weight::try_from(w).map_err(|e| flag_error(flag, &w.to_string(), e))
        };
        if !steps.is_empty() {
            let joined = steps
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let parsed = steps
                .iter()
                .map(|w| weight("--steps", *w))
                .collect::<Result<Vec<_>, _>>()?;
            check_steps(&parsed).map_err(|m| flag_error("--steps", &joined, m))?;
            self.steps = parsed;
        } else if let Some(step) = step_weight {
            let step = weight("--step-weight", *step)?;
            let max = max_weight.map_or(Ok(Weight::FULL), |m| weight("--max-weight", m))?;
            self.steps = step_weights(step, max)
                .map_err(|m| flag_error("--step-weight", &step.to_string(), m))?;
        } else if let Some(max) = max_weight {
            return Err(flag_error(
                "--max-weight",
                &max.to_string(),
                "--max-weight needs --step-weight (e.g. --step-weight 10 --max-weight 50)",
            ));
        }
        if let Some(v) = timeout {
            self.timeout = flag_duration("--timeout", v)?;
        }
        if *manual_promotion {
            self.manual_promotion = true;
        }
        if let Some(o) = on_interrupt {
            self.on_interrupt = *o;
        }
        Ok(())
    }

    /// Lets the analysis flags (`--interval`, `--threshold`, `--success-rate`,
    /// `--max-p99`, `--min-requests`) replace these defaults; shared by
    /// `rollout start` and `analyze` so both accept and reject the same values.
    pub fn apply_analysis_flags(&mut self, analysis: &AnalysisArgs) -> Result<(), SpecError> {
        let AnalysisArgs {
            interval,
            threshold,
            thresholds:
                ThresholdArgs {
                    success_rate,
                    max_p99,
                    min_requests,
                    grpc_error_codes,
                },
            metrics: _,
            prometheus: _,
        } = analysis;
        if let Some(v) = interval {
            self.interval = flag_duration("--interval", v)?;
        }
        if let Some(v) = max_p99 {
            self.max_p99 = flag_duration("--max-p99", v)?;
        }
        if let Some(t) = threshold {
            self.threshold = *t;
        }
        if let Some(r) = success_rate {
            if !(0.0..=100.0).contains(r) {
                return Err(flag_error(
                    "--success-rate",
                    &r.to_string(),
                    "out of range: use a percentage from 0 to 100 (e.g. 99.5)",
                ));
            }
            self.success_rate = *r;
        }
        if let Some(n) = min_requests {
            self.min_requests = *n;
        }
        if let Some(v) = grpc_error_codes {
            self.grpc_error_codes = v
                .parse()
                .map_err(|e| flag_error("--grpc-error-codes", v, e))?;
        }
        Ok(())
    }

    /// The analysis thresholds these defaults describe.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            success_rate: self.success_rate,
            max_p99: self.max_p99,
            min_requests: self.min_requests,
            grpc_error_codes: self.grpc_error_codes.clone(),
            ..Thresholds::default()
        }
    }
}

/// A duration flag's value, longer than zero.
fn flag_duration(flag: &str, v: &str) -> Result<Duration, SpecError> {
    let d = v
        .parse::<DurationValue>()
        .map_err(|m| flag_error(flag, v, m))?
        .0;
    if d.is_zero() {
        return Err(flag_error(flag, v, "must be longer than zero (e.g. 30s)"));
    }
    Ok(d)
}

/// The metrics source from `--metrics URL` / `--prometheus URL`, when given
/// (they replace the file's `metrics`).
pub fn metrics_flag(args: &AnalysisArgs) -> Result<Option<MetricsSource>, SpecError> {
    let parse = |flag: &str, v: &str| {
        v.parse::<HttpUrl>()
            .map(|u| u.0)
            .map_err(|m| flag_error(flag, v, m))
    };
    Ok(match (&args.metrics, &args.prometheus) {
        (Some(u), _) => Some(MetricsSource::Proxy(parse("--metrics", u)?)),
        (None, Some(u)) => Some(MetricsSource::Prometheus(parse("--prometheus", u)?)),
        (None, None) => None,
    })
}

impl Default for RolloutDefaults {
    fn default() -> Self {
        Self {
            steps: [10u8, 25, 50, 100]
                .into_iter()
                .map(|w| Weight::try_from(w).expect("constant weights are in range"))
                .collect(),
            interval: Duration::from_secs(30),
            auto_interval: false,
            threshold: 2,
            success_rate: 99.0,
            max_p99: Duration::from_millis(500),
            min_requests: 20,
            timeout: Duration::from_secs(600),
            manual_promotion: false,
            on_interrupt: OnInterrupt::Rollback,
            grpc_error_codes: GrpcCodes::default(),
        }
    }
}

// === impl MetricsSource ===

impl MetricsSource {
    /// The URL, whichever kind of source.
    pub fn url(&self) -> &reqwest::Url {
        match self {
            Self::Proxy(u) | Self::Prometheus(u) => u,
        }
    }
}

/// Reads the spec from the file and flags, and validates it.
///
/// The file is `-f FILE` when given, else `./meshctl.yaml` when it exists,
/// else none (flags alone). Flags replace file values: `SERVICE`, `--host`
/// (all hosts), `--gateway`, `--port`, `--versions` (all versions; a version
/// also in the file keeps its labels), `--weight` (all weights),
/// `--istio-api`. `namespace` is the global `-n/--namespace`, which replaces
/// the file's `namespace`.
pub fn resolve(args: &SpecArgs, namespace: Option<&str>) -> Result<ServiceSpec, SpecError> {
    let path = match &args.file {
        Some(p) => Some(p.clone()),
        None => {
            let default = PathBuf::from(DEFAULT_FILE);
            default.is_file().then_some(default)
        }
    };
    let Some(path) = path else {
        return build(
            RawSpec::default(),
            FileCtx {
                path: None,
                text: "",
            },
            args,
            namespace,
        );
    };
    let text = std::fs::read_to_string(&path).map_err(|source| SpecError::Read {
        path: path.clone(),
        source,
    })?;
    let raw = parse_raw(&text, &path)?;
    build(
        raw,
        FileCtx {
            path: Some(&path),
            text: &text,
        },
        args,
        namespace,
    )
}

fn parse_raw(text: &str, path: &Path) -> Result<RawSpec, SpecError> {
    let blank = text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    if blank {
        return Ok(RawSpec::default());
    }
    yaml::from_str(text).map_err(|source| SpecError::Parse {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

/// The file a spec came from, for positions of cross-field errors.
#[derive(Clone, Copy)]
struct FileCtx<'a> {
    path: Option<&'a Path>,
    text: &'a str,
}

impl FileCtx<'_> {
    /// An error about the file field at `keys` (`["weights", "v3"]`).
    fn invalid(&self, keys: &[&str], message: impl Into<String>) -> SpecError {
        let field = keys.join(".");
        let file = self
            .path
            .map_or_else(|| DEFAULT_FILE.to_owned(), |p| p.display().to_string());
        let at = match locate(self.text, keys) {
            Some((line, column)) => {
                format!("{file}: line {line} column {column} at field `{field}`")
            }
            None if field.is_empty() => file,
            None => format!("{file}: field `{field}`"),
        };
        SpecError::Invalid {
            at,
            field,
            message: message.into(),
        }
    }
}

fn flag_error(flag: &str, value: &str, message: impl fmt::Display) -> SpecError {
    SpecError::Invalid {
        at: if value.is_empty() {
            flag.to_owned()
        } else {
            format!("{flag} {value:?}")
        },
        field: flag.to_owned(),
        message: message.to_string(),
    }
}

/// Finds the line and column of a key path in block-style YAML, such as
/// `["weights", "v3"]`. Flow style (`{v3: 10}`) is not searched; the error
/// then names the field without a position.
fn locate(text: &str, keys: &[&str]) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let content = |l: &str| {
        let t = l.trim_start();
        !t.is_empty() && !t.starts_with('#') && t != "---"
    };
    let indent = |l: &str| l.len() - l.trim_start().len();
    let (mut start, mut end) = (0, lines.len());
    let mut found = None;
    for key in keys {
        let child = (start..end).find(|&i| content(lines[i]))?;
        let level = indent(lines[child]);
        let hit = (child..end).find(|&i| {
            let l = lines[i];
            if !content(l) || indent(l) != level {
                return false;
            }
            let t = l.trim_start();
            let t = t
                .strip_prefix('"')
                .and_then(|r| r.strip_prefix(*key))
                .and_then(|r| r.strip_prefix('"'))
                .or_else(|| t.strip_prefix(*key));
            t.is_some_and(|r| r.trim_start().starts_with(':'))
        })?;
        found = Some((hit + 1, level + 1));
        start = hit + 1;
        end = (start..end)
            .find(|&i| content(lines[i]) && indent(lines[i]) <= level)
            .unwrap_or(end);
    }
    found
}

// === stage one: the file as written ===

/// `meshctl.yaml` as written. Unknown fields are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSpec {
    service: Option<Label>,
    namespace: Option<Label>,
    #[serde(default)]
    hosts: Vec<Host>,
    gateway: Option<RawGateway>,
    port: Option<Port>,
    versions: Option<RawVersions>,
    weights: Option<RawWeights>,
    istio_api: Option<IstioApi>,
    rollout: Option<RawRollout>,
    metrics: Option<RawMetrics>,
    #[serde(default)]
    webhooks: Vec<RawWebhook>,
    sticky_cookie: Option<CookieValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawGateway {
    name: Option<Subdomain>,
    port: Option<Port>,
    tls: Option<RawTls>,
    selector: Option<Labels>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTls {
    credential_name: Subdomain,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRollout {
    steps: Option<Vec<WeightValue>>,
    step_weight: Option<WeightValue>,
    max_weight: Option<WeightValue>,
    interval: Option<IntervalValue>,
    threshold: Option<u32>,
    success_rate: Option<Percent>,
    max_p99: Option<DurationValue>,
    min_requests: Option<u64>,
    timeout: Option<DurationValue>,
    manual_promotion: Option<bool>,
    on_interrupt: Option<OnInterrupt>,
    grpc_error_codes: Option<GrpcCodesValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    proxy: Option<HttpUrl>,
    prometheus: Option<HttpUrl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    name: Label,
    #[serde(rename = "type")]
    kind: WebhookType,
    url: HttpUrl,
    timeout: Option<DurationValue>,
}

/// `istioApi`: which `networking.istio.io` version to emit.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum IstioApi {
    V1,
    V1beta1,
}

impl From<IstioApi> for ApiVersion {
    fn from(v: IstioApi) -> Self {
        match v {
            IstioApi::V1 => ApiVersion::V1,
            IstioApi::V1beta1 => ApiVersion::V1beta1,
        }
    }
}

fn parse_istio_api(s: &str) -> Result<ApiVersion, String> {
    match s.strip_prefix("networking.istio.io/").unwrap_or(s) {
        "v1" => Ok(ApiVersion::V1),
        "v1beta1" => Ok(ApiVersion::V1beta1),
        _ => Err("unsupported Istio API version: use v1 (Istio 1.22 and later) or v1beta1".into()),
    }
}

/// Deserializes a string scalar through `FromStr`. The parse runs inside
/// the visitor, so the YAML parser reports the scalar's own line and column.
fn parse_str<'de, D, T>(d: D, expecting: &'static str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    struct V<T>(&'static str, std::marker::PhantomData<T>);
    impl<T: FromStr> Visitor<'_> for V<T>
    where
        T::Err: fmt::Display,
    {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            s.parse().map_err(E::custom)
        }
    }
    d.deserialize_str(V(expecting, std::marker::PhantomData))
}

/// Deserializes an integer scalar through `check`, inside the visitor (see
/// [`parse_str`]).
fn parse_int<'de, D, T>(
    d: D,
    expecting: &'static str,
    check: fn(i128) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T>(&'static str, fn(i128) -> Result<T, String>);
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            (self.1)(i128::from(v)).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            (self.1)(i128::from(v)).map_err(E::custom)
        }
    }
    d.deserialize_i64(V(expecting, check))
}

/// A version name, checked where it is written.
#[derive(Debug)]
struct VersionName(Version);

impl<'de> Deserialize<'de> for VersionName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "a version name such as v1").map(Self)
    }
}

/// A cookie name, checked where it is written.
#[derive(Debug)]
struct CookieValue(CookieName);

impl<'de> Deserialize<'de> for CookieValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "a cookie name such as meshctl-version").map(Self)
    }
}

/// A weight 0..=100, checked where it is written.
#[derive(Debug)]
struct WeightValue(Weight);

impl<'de> Deserialize<'de> for WeightValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_int(d, "a whole percentage from 0 to 100", |n| {
            u64::try_from(n)
                .ok()
                .and_then(|v| Weight::try_from(v).ok())
                .map(Self)
                .ok_or_else(|| format!("weight {n} is out of range: use 0 to 100"))
        })
    }
}

/// Leaf values that validate themselves while parsing, so the YAML parser
/// reports the position; `FromStr` gives flags the same rules and messages.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        struct $name(String);

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(s).map(|()| Self(s.to_owned()))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                parse_str(d, "a string")
            }
        }
    };
}

checked_string!(
    /// A DNS-1123 label: service, namespace and webhook names.
    Label,
    |s| {
        if is_dns1123_label(s) {
            Ok(())
        } else {
            Err(format!(
                "{s:?} is not a valid name: use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (e.g. discounts)"
            ))
        }
    }
);

checked_string!(
    /// A DNS-1123 subdomain: gateway and secret names.
    Subdomain,
    |s| {
        if is_dns1123_subdomain(s) {
            Ok(())
        } else {
            Err(format!(
                "{s:?} is not a valid Kubernetes name: use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit (e.g. discounts-gateway)"
            ))
        }
    }
);

checked_string!(
    /// An external host name (`*.example.com` allowed).
    Host,
    |s| {
        if is_valid_host(s) && s != "*" {
            Ok(())
        } else {
            Err(format!(
                "{s:?} is not a valid host name: use a DNS name such as discounts.example.com or *.example.com"
            ))
        }
    }
);

/// A port number 1..=65535.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Port(NonZeroU16);

fn port_from_u64(n: u64) -> Result<Port, String> {
    u16::try_from(n)
        .ok()
        .and_then(NonZeroU16::new)
        .map(Port)
        .ok_or_else(|| format!("port {n} is out of range: use 1 to 65535"))
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_int(d, "a port number from 1 to 65535", |n| {
            u64::try_from(n)
                .map_err(|_| format!("port {n} is out of range: use 1 to 65535"))
                .and_then(port_from_u64)
        })
    }
}

/// `rollout.grpcErrorCodes`: a list of gRPC status names or numbers
/// (`[INTERNAL, 14]`), or one comma-separated string.
#[derive(Clone, Debug)]
struct GrpcCodesValue(GrpcCodes);

impl<'de> Deserialize<'de> for GrpcCodesValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Item {
            Number(u64),
            Name(String),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            List(Vec<Item>),
            Text(String),
        }
        let raw = Raw::deserialize(d).map_err(|_| {
            de::Error::custom(format!(
                "expected a list of gRPC status codes (e.g. [INTERNAL, UNAVAILABLE]); valid names: {}",
                crate::metrics::grpc::GrpcCode::names()
            ))
        })?;
        let parsed = match raw {
            Raw::Text(t) => t.parse(),
            Raw::List(items) => {
                let items: Vec<String> = items
                    .into_iter()
                    .map(|i| match i {
                        Item::Number(n) => n.to_string(),
                        Item::Name(s) => s,
                    })
                    .collect();
                GrpcCodes::parse_items(items.iter().map(String::as_str))
            }
        };
        parsed.map(GrpcCodesValue).map_err(de::Error::custom)
    }
}

/// A percentage 0..=100 (fractions allowed).
#[derive(Clone, Copy, Debug)]
struct Percent(f64);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Percent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a percentage from 0 to 100")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Percent, E> {
                if (0.0..=100.0).contains(&v) {
                    Ok(Percent(v))
                } else {
                    Err(E::custom(format!(
                        "{v} is out of range: use a percentage from 0 to 100 (e.g. 99.5)"
                    )))
                }
            }
            #[allow(clippy::cast_precision_loss, reason = "checked against 0..=100 next")]
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Percent, E> {
                self.visit_f64(v as f64)
            }
            #[allow(clippy::cast_precision_loss, reason = "checked against 0..=100 next")]
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Percent, E> {
                self.visit_f64(v as f64)
            }
        }
        d.deserialize_f64(V)
    }
}

/// A duration such as `30s`, `500ms`, `5m`.
#[derive(Clone, Copy, Debug)]
struct DurationValue(Duration);

impl FromStr for DurationValue {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        meshproxy::istio::validate::parse_duration(s)
            .map(Self)
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a duration: use a number with a unit, e.g. \"30s\", \"500ms\" or \"5m\""
                )
            })
    }
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(
            d,
            "a duration with a unit, e.g. \"30s\", \"500ms\" or \"5m\"",
        )
    }
}

/// `rollout.interval`: a duration, or `auto`.
#[derive(Clone, Copy, Debug)]
enum IntervalValue {
    /// Sized from the traffic (`--interval auto`).
    Auto,
    /// A fixed window.
    Every(DurationValue),
}

impl FromStr for IntervalValue {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(Self::Auto);
        }
        s.parse().map(Self::Every).map_err(|_| {
            format!(
                "{s:?} is neither a duration nor `auto`: use a number with a unit, e.g. \"30s\", \"500ms\" or \"5m\", or `auto` to size each window from the traffic"
            )
        })
    }
}

impl<'de> Deserialize<'de> for IntervalValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(
            d,
            "a duration with a unit, e.g. \"30s\", \"500ms\" or \"5m\", or `auto`",
        )
    }
}

/// An absolute `http` or `https` URL.
#[derive(Clone, Debug)]
struct HttpUrl(reqwest::Url);

impl FromStr for HttpUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let fix = "use an absolute http(s) URL, e.g. http://127.0.0.1:15000/metrics";
        let url = reqwest::Url::parse(s).map_err(|e| format!("{s:?} is not a URL ({e}): {fix}"))?;
        if matches!(url.scheme(), "http" | "https") && url.has_host() {
            Ok(Self(url))
        } else {
            Err(format!("{s:?} is not an http(s) URL: {fix}"))
        }
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "an http(s) URL")
    }
}

/// Kubernetes labels (`key: value`), keys and values checked.
#[derive(Clone, Debug, Default)]
struct Labels(BTreeMap<String, String>);

fn check_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// A label key: an optional DNS prefix and `/`, then a name.
struct LabelKey(String);

impl FromStr for LabelKey {
    type Err = String;
    fn from_str(key: &str) -> Result<Self, String> {
        let name = match key.split_once('/') {
            Some((prefix, name)) if is_dns1123_subdomain(prefix) => name,
            Some(_) => "",
            None => key,
        };
        if check_label_name(name) {
            Ok(Self(key.to_owned()))
        } else {
            Err(format!(
                "{key:?} is not a valid label key: use an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' or '.' (e.g. version or app.kubernetes.io/version)"
            ))
        }
    }
}

impl<'de> Deserialize<'de> for LabelKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "a label key")
    }
}

/// A label value: empty, or a name.
struct LabelValue(String);

impl FromStr for LabelValue {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, String> {
        if value.is_empty() || check_label_name(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(format!(
                "{value:?} is not a valid label value: use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
            ))
        }
    }
}

impl<'de> Deserialize<'de> for LabelValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "a label value")
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of label keys to values (e.g. {version: v1})")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(LabelKey(k)) = map.next_key()? {
                    let LabelValue(v) = map.next_value()?;
                    out.insert(k, v);
                }
                Ok(Labels(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// `versions`: a list of names (`[v1, v2]`, labels `version: NAME`) or a map
/// of name to pod labels, in order; names unique.
#[derive(Debug, Default)]
struct RawVersions(Vec<(Version, Option<Labels>)>);

impl<'de> Deserialize<'de> for RawVersions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn push<E: de::Error>(
            out: &mut Vec<(Version, Option<Labels>)>,
            v: Version,
            labels: Option<Labels>,
        ) -> Result<(), E> {
            if out.iter().any(|(seen, _)| *seen == v) {
                return Err(E::custom(format!(
                    "version {:?} is given twice: each version needs its own name",
                    v.as_str()
                )));
            }
            out.push((v, labels));
            Ok(())
        }
        impl<'de> Visitor<'de> for V {
            type Value = RawVersions;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a list of version names (e.g. [v1, v2]) or a map of version name to pod labels",
                )
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawVersions, A::Error> {
                let mut out = Vec::new();
                while let Some(VersionName(v)) = seq.next_element()? {
                    push(&mut out, v, None)?;
                }
                Ok(RawVersions(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawVersions, A::Error> {
                let mut out = Vec::new();
                while let Some(VersionName(v)) = map.next_key()? {
                    let labels = map.next_value::<Option<Labels>>()?;
                    push(&mut out, v, labels)?;
                }
                Ok(RawVersions(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `weights`: a map of version to percent, in order, summing to 100.
#[derive(Debug)]
struct RawWeights(Split);

impl<'de> Deserialize<'de> for RawWeights {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawWeights;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of version to percent (e.g. {v1: 90, v2: 10})")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawWeights, A::Error> {
                let mut pairs = Vec::new();
                while let Some(VersionName(v)) = map.next_key()? {
                    let WeightValue(w) = map.next_value()?;
                    pairs.push((v, w));
                }
                Split::new(pairs)
                    .map(RawWeights)
                    .map_err(|e| de::Error::custom(split_fix(&e)))
            }
        }
        d.deserialize_map(V)
    }
}

fn split_fix(e: &TrafficError) -> String {
    match e {
        TrafficError::Sum { .. } => format!("{e}: make the weights add up to 100"),
        TrafficError::Duplicate(_) => format!("{e}: give each version one weight"),
        TrafficError::Empty => "no weights given: list at least one version (e.g. v1=100)".into(),
        _ => e.to_string(),
    }
}

// === stage two: flags over the file, cross-field rules ===

fn build(
    raw: RawSpec,
    file: FileCtx<'_>,
    args: &SpecArgs,
    namespace_flag: Option<&str>,
) -> Result<ServiceSpec, SpecError> {
    let SpecArgs {
        service: service_flag,
        file: _,
        hosts: host_flags,
        gateway: gateway_flag,
        port: port_flag,
        versions: version_flags,
        weights: weight_flags,
        templates: _,
        istio_api: istio_api_flag,
        sticky_cookie: sticky_cookie_flag,
    } = args;
    let RawSpec {
        service,
        namespace,
        hosts,
        gateway,
        port,
        versions,
        weights,
        istio_api,
        rollout,
        metrics,
        webhooks,
        sticky_cookie,
    } = raw;
    let in_file = file.path.is_some();

    let service = match service_flag {
        Some(s) => {
            s.parse::<Label>()
                .map_err(|m| flag_error("SERVICE", s, m))?
                .0
        }
        None => match service {
            Some(s) => s.0,
            None if in_file => {
                return Err(file.invalid(
                    &[],
                    "no service name: add `service: NAME` to the file or pass SERVICE (e.g. `meshctl render discounts`)",
                ));
            }
            None => {
                return Err(flag_error(
                    "SERVICE",
                    "",
                    "no service name: pass SERVICE (e.g. `meshctl render discounts --versions v1,v2`) or write it in meshctl.yaml (`-f FILE`)",
                ));
            }
        },
    };

    let namespace = match namespace_flag {
        Some(ns) => Some(
            ns.parse::<Label>()
                .map_err(|m| flag_error("--namespace", ns, m))?
                .0,
        ),
        None => namespace.map(|n| n.0),
    };

    let hosts: Vec<String> = if host_flags.is_empty() {
        hosts.into_iter().map(|h| h.0).collect()
    } else {
        let mut out = Vec::new();
        for h in host_flags {
            let h = h.parse::<Host>().map_err(|m| flag_error("--host", h, m))?.0;
            if !out.contains(&h) {
                out.push(h);
            }
        }
        out
    };
    let mut seen_hosts = BTreeSet::new();
    for h in &hosts {
        if !seen_hosts.insert(h.to_ascii_lowercase()) {
            return Err(file.invalid(
                &["hosts"],
                format!("host {h:?} is listed twice: list each host once"),
            ));
        }
    }

    let gateway = build_gateway(&service, &hosts, gateway, gateway_flag.as_deref(), file)?;

    let port = match port_flag {
        Some(p) => Some(
            port_from_u64(u64::from(*p))
                .map_err(|m| flag_error("--port", &p.to_string(), m))?
                .0,
        ),
        None => port.map(|p| p.0),
    };

    let file_versions = versions.map(|v| v.0).unwrap_or_default();
    let versions: Vec<VersionSpec> = if version_flags.is_empty() {
        file_versions
            .into_iter()
            .map(|(name, labels)| version_spec(name, labels))
            .collect()
    } else {
        let mut out: Vec<VersionSpec> = Vec::new();
        for v in version_flags {
            let name: Version = v
                .trim()
                .parse()
                .map_err(|e| flag_error("--versions", v, e))?;
            if out.iter().any(|s| s.name == name) {
                return Err(flag_error(
                    "--versions",
                    v,
                    format!(
                        "version {:?} is given twice: each version needs its own name",
                        name.as_str()
                    ),
                ));
            }
            // A version the file also lists keeps the file's labels.
            let labels = file_versions
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, l)| l.clone());
            out.push(version_spec(name, labels));
        }
        out
    };
    if versions.is_empty() {
        let message = "no versions: list them, stable first, with `versions: [v1, v2]` in meshctl.yaml or `--versions v1,v2`";
        return Err(if in_file {
            file.invalid(&[], message)
        } else {
            flag_error("--versions", "", message)
        });
    }
    let known = || {
        versions
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };

    let weights = if weight_flags.is_empty() {
        match weights {
            Some(RawWeights(split)) => {
                for (v, _) in split.pairs() {
                    if !versions.iter().any(|s| &s.name == v) {
                        return Err(file.invalid(
                            &["weights", v.as_str()],
                            format!(
                                "version {:?} is not one of the versions ({}): add it to `versions` or remove its weight",
                                v.as_str(),
                                known()
                            ),
                        ));
                    }
                }
                split
            }
            None => Split::all_to(versions[0].name.clone()),
        }
    } else {
        let split = Split::parse_pairs(weight_flags)
            .map_err(|e| flag_error("--weight", &weight_flags.join(" "), split_fix(&e)))?;
        for (v, _) in split.pairs() {
            if !versions.iter().any(|s| &s.name == v) {
                return Err(flag_error(
                    "--weight",
                    &weight_flags.join(" "),
                    format!(
                        "version {:?} is not one of the versions ({}): add it to the versions or remove its weight",
                        v.as_str(),
                        known()
                    ),
                ));
            }
        }
        split
    };

    let istio_api = match istio_api_flag {
        Some(s) => parse_istio_api(s).map_err(|m| flag_error("--istio-api", s, m))?,
        None => istio_api.map_or(ApiVersion::V1, ApiVersion::from),
    };

    let rollout = build_rollout(rollout.unwrap_or_default(), file)?;

    let metrics = match metrics {
        None => None,
        Some(RawMetrics {
            proxy: Some(_),
            prometheus: Some(_),
        }) => {
            return Err(file.invalid(
                &["metrics"],
                "both `proxy` and `prometheus` are set: choose one metrics source",
            ));
        }
        Some(RawMetrics {
            proxy: Some(u),
            prometheus: None,
        }) => Some(MetricsSource::Proxy(u.0)),
        Some(RawMetrics {
            proxy: None,
            prometheus: Some(u),
        }) => Some(MetricsSource::Prometheus(u.0)),
        Some(RawMetrics {
            proxy: None,
            prometheus: None,
        }) => {
            return Err(file.invalid(
                &["metrics"],
                "no metrics source: set `proxy: URL` (meshproxy's /metrics) or `prometheus: URL`",
            ));
        }
    };

    let mut names = BTreeSet::new();
    let mut hooks = Vec::new();
    for w in webhooks {
        if !names.insert(w.name.0.clone()) {
            return Err(file.invalid(
                &["webhooks"],
                format!(
                    "webhook name {:?} is used twice: give each webhook its own name",
                    w.name.0
                ),
            ));
        }
        hooks.push(Webhook {
            name: w.name.0,
            kind: w.kind,
            url: w.url.0,
            timeout: w.timeout.map_or(Duration::from_secs(10), |d| d.0),
        });
    }

    Ok(ServiceSpec {
        service,
        namespace,
        hosts,
        gateway,
        port,
        versions,
        weights,
        istio_api,
        rollout,
        metrics,
        webhooks: hooks,
        source: file.path.map(Path::to_owned),
        sticky_cookie: match sticky_cookie_flag {
            Some(_) => sticky_flag(args)?,
            None => sticky_cookie.map(|c| c.0),
        },
    })
}

/// `--sticky-cookie NAME`, validated as a cookie name.
pub fn sticky_flag(args: &SpecArgs) -> Result<Option<CookieName>, SpecError> {
    args.sticky_cookie
        .as_deref()
        .map(|v| {
            v.parse::<CookieName>()
                .map_err(|e| flag_error("--sticky-cookie", v, e))
        })
        .transpose()
}

fn version_spec(name: Version, labels: Option<Labels>) -> VersionSpec {
    let labels = match labels {
        Some(l) if !l.0.is_empty() => l.0,
        _ => BTreeMap::from([("version".to_owned(), name.as_str().to_owned())]),
    };
    VersionSpec { name, labels }
}

fn build_gateway(
    service: &str,
    hosts: &[String],
    raw: Option<RawGateway>,
    name_flag: Option<&str>,
    file: FileCtx<'_>,
) -> Result<Option<GatewaySpec>, SpecError> {
    if hosts.is_empty() {
        if let Some(n) = name_flag {
            return Err(flag_error(
                "--gateway",
                n,
                "a gateway needs external hosts: add --host (e.g. --host discounts.example.com)",
            ));
        }
        if raw.is_some() {
            return Err(file.invalid(
                &["gateway"],
                "a gateway needs external hosts: add `hosts: [discounts.example.com]` or remove `gateway`",
            ));
        }
        return Ok(None);
    }
    let RawGateway {
        name,
        port,
        tls,
        selector,
    } = raw.unwrap_or_default();
    let name = match name_flag {
        Some(n) => {
            n.parse::<Subdomain>()
                .map_err(|m| flag_error("--gateway", n, m))?
                .0
        }
        None => name.map_or_else(|| format!("{service}-gateway"), |n| n.0),
    };
    let tls = tls.map(|t| GatewayTls {
        credential_name: t.credential_name.0,
    });
    let default_port = if tls.is_some() { 443 } else { 80 };
    let port = port.map_or(
        NonZeroU16::new(default_port).expect("non-zero constant"),
        |p| p.0,
    );
    let selector = match selector {
        Some(s) if !s.0.is_empty() => s.0,
        Some(_) => {
            return Err(file.invalid(
                &["gateway", "selector"],
                "an empty selector matches no gateway pods: give labels (e.g. {istio: ingressgateway}) or remove `selector`",
            ));
        }
        None => BTreeMap::from([("istio".to_owned(), "ingressgateway".to_owned())]),
    };
    Ok(Some(GatewaySpec {
        name,
        port,
        tls,
        selector,
    }))
}

fn build_rollout(raw: RawRollout, file: FileCtx<'_>) -> Result<RolloutDefaults, SpecError> {
    let RawRollout {
        steps,
        step_weight,
        max_weight,
        interval,
        threshold,
        success_rate,
        max_p99,
        min_requests,
        timeout,
        manual_promotion,
        on_interrupt,
        grpc_error_codes,
    } = raw;
    let d = RolloutDefaults::default();
    let steps = match (steps, step_weight, max_weight) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(file.invalid(
                &["rollout", "steps"],
                "`steps` and `stepWeight`/`maxWeight` both describe the steps: keep one",
            ));
        }
        (Some(steps), None, None) => {
            let steps: Vec<Weight> = steps.into_iter().map(|w| w.0).collect();
            check_steps(&steps).map_err(|m| file.invalid(&["rollout", "steps"], m))?;
            steps
        }
        (None, Some(WeightValue(step)), max) => {
            let max = max.map_or(Weight::FULL, |w| w.0);
            step_weights(step, max).map_err(|m| file.invalid(&["rollout", "stepWeight"], m))?
        }
        (None, None, Some(_)) => {
            return Err(file.invalid(
                &["rollout", "maxWeight"],
                "`maxWeight` needs `stepWeight` (e.g. stepWeight: 10, maxWeight: 50)",
            ));
        }
        (None, None, None) => d.steps,
    };
    let positive = |v: Option<DurationValue>, key: &str, default: Duration| match v {
        Some(DurationValue(d)) if d.is_zero() => Err(file.invalid(
            &["rollout", key],
            format!("`{key}` must be longer than zero (e.g. \"30s\")"),
        )),
        Some(DurationValue(d)) => Ok(d),
        None => Ok(default),
    };
    let (interval, auto_interval) = match interval {
        Some(IntervalValue::Auto) => (None, true),
        Some(IntervalValue::Every(v)) => (Some(v), false),
        None => (None, d.auto_interval),
    };
    Ok(RolloutDefaults {
        steps,
        interval: positive(interval, "interval", d.interval)?,
        auto_interval,
        threshold: threshold.unwrap_or(d.threshold),
        success_rate: success_rate.map_or(d.success_rate, |p| p.0),
        max_p99: positive(max_p99, "maxP99", d.max_p99)?,
        min_requests: min_requests.unwrap_or(d.min_requests),
        timeout: positive(timeout, "timeout", d.timeout)?,
        manual_promotion: manual_promotion.unwrap_or(d.manual_promotion),
        on_interrupt: on_interrupt.unwrap_or(d.on_interrupt),
        grpc_error_codes: grpc_error_codes.map_or(d.grpc_error_codes, |c| c.0),
    })
}

/// Checks canary step weights: not empty, each 1..=100, strictly increasing.
pub fn check_steps(steps: &[Weight]) -> Result<(), String> {
    if steps.is_empty() {
        return Err("no steps: list canary weights, e.g. [10, 25, 50, 100]".into());
    }
    if steps.contains(&Weight::ZERO) {
        return Err("a step of 0 sends no traffic to the canary: use weights from 1 to 100".into());
    }
    if let Some(w) = steps.windows(2).find(|w| w[1] <= w[0]) {
        return Err(format!(
            "steps must increase: {} comes after {} (e.g. [10, 25, 50, 100])",
            w[1], w[0]
        ));
    }
    Ok(())
}

/// Expands `stepWeight`/`maxWeight` into the step list: `step, 2×step, …`
/// while at most `max`.
pub fn step_weights(step: Weight, max: Weight) -> Result<Vec<Weight>, String> {
    if step == Weight::ZERO {
        return Err("`stepWeight` must be from 1 to 100".into());
    }
    if step > max {
        return Err(format!(
            "`stepWeight` {step} is above `maxWeight` {max}: the first step would pass the last"
        ));
    }
    Ok((1..)
        .map(|i| u32::from(step.get()) * i)
        .take_while(|w| *w <= u32::from(max.get()))
        .map(|w| Weight::try_from(w).expect("at most max, so at most 100"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Result<ServiceSpec, String> {
        ServiceSpec::from_yaml(text, Path::new("meshctl.yaml")).map_err(|e| {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            msg
        })
    }

    #[test]
    fn minimal_spec_gets_defaults() {
        let s = spec("service: discounts\nversions: [v1, v2]\n").unwrap();
        assert_eq!(s.stable().as_str(), "v1");
        assert_eq!(s.weights.to_string(), "v1=100");
        assert_eq!(s.versions[1].labels["version"], "v2");
        assert_eq!(s.gateway, None);
        assert_eq!(s.istio_api, ApiVersion::V1);
        assert_eq!(s.rollout, RolloutDefaults::default());
    }

    #[test]
    fn map_form_keeps_order_and_labels() {
        let s = spec(
            "service: discounts\nversions:\n  v2: {track: canary}\n  v1:\nweights: {v2: 10, v1: 90}\n",
        )
        .unwrap();
        assert_eq!(s.stable().as_str(), "v2");
        assert_eq!(s.versions[0].labels["track"], "canary");
        assert_eq!(s.versions[1].labels["version"], "v1");
        assert_eq!(s.weights.to_string(), "v2=10 v1=90");
    }

    #[test]
    fn interval_auto_in_the_file() {
        let s = spec("service: d\nversions: [v1]\nrollout:\n  interval: auto\n").unwrap();
        assert!(s.rollout.auto_interval);
        assert_eq!(s.rollout.interval, RolloutDefaults::default().interval);
        let s = spec("service: d\nversions: [v1]\nrollout:\n  interval: 45s\n").unwrap();
        assert!(!s.rollout.auto_interval);
        assert_eq!(s.rollout.interval, Duration::from_secs(45));
        let err = spec("service: d\nversions: [v1]\nrollout:\n  interval: soon\n").unwrap_err();
        assert!(err.contains("`rollout.interval`"), "{err}");
        assert!(err.contains("neither a duration nor `auto`"), "{err}");
        assert!(err.contains("e.g. \"30s\""), "{err}");
    }

    #[test]
    fn gateway_defaults_follow_tls() {
        let s = spec(
            "service: discounts\nhosts: [discounts.example.com]\ngateway:\n  tls: {credentialName: discounts-cert}\nversions: [v1]\n",
        )
        .unwrap();
        let gw = s.gateway.unwrap();
        assert_eq!(gw.name, "discounts-gateway");
        assert_eq!(gw.port.get(), 443);
        assert_eq!(gw.selector["istio"], "ingressgateway");
    }

    #[test]
    fn rollout_values_are_parsed_once() {
        let s = spec(
            "service: d\nversions: [v1]\nrollout:\n  stepWeight: 20\n  maxWeight: 50\n  interval: 1m\n  maxP99: 250ms\n  onInterrupt: pause\n",
        )
        .unwrap();
        let steps: Vec<u8> = s.rollout.steps.iter().map(|w| w.get()).collect();
        assert_eq!(steps, [20, 40]);
        assert_eq!(s.rollout.interval, Duration::from_secs(60));
        assert_eq!(s.rollout.max_p99, Duration::from_millis(250));
        assert_eq!(s.rollout.on_interrupt, OnInterrupt::Pause);
    }

    #[test]
    fn grpc_error_codes_from_the_file() {
        let s = spec(
            "service: d\nversions: [v1]\nrollout:\n  grpcErrorCodes: [internal, 14, DATA_LOSS]\n",
        )
        .unwrap();
        assert_eq!(
            s.rollout.grpc_error_codes.to_string(),
            "INTERNAL,UNAVAILABLE,DATA_LOSS"
        );
        assert_eq!(
            s.rollout.thresholds().grpc_error_codes,
            s.rollout.grpc_error_codes
        );
        let s = spec("service: d\nversions: [v1]\nrollout:\n  grpcErrorCodes: \"UNAVAILABLE,4\"\n")
            .unwrap();
        assert_eq!(
            s.rollout.grpc_error_codes.to_string(),
            "DEADLINE_EXCEEDED,UNAVAILABLE"
        );
        let s = spec("service: d\nversions: [v1]\n").unwrap();
        assert_eq!(s.rollout.grpc_error_codes, GrpcCodes::default());
        let err =
            spec("service: d\nversions: [v1]\nrollout:\n  grpcErrorCodes: [INTERNAL, BROKEN]\n")
                .unwrap_err();
        assert!(
            err.starts_with("meshctl.yaml: line 4 column")
                && err.contains("rollout.grpcErrorCodes")
                && err.contains("\"BROKEN\" is not a gRPC status code")
                && err.contains("valid names: OK, CANCELLED"),
            "{err}"
        );
    }

    #[test]
    fn typo_names_line_column_and_valid_fields() {
        let err = spec("service: d\nversions: [v1]\nrollout:\n  intervall: 1m\n").unwrap_err();
        assert!(
            err.starts_with("meshctl.yaml: line 4 column 3 at field `rollout.intervall`: unknown field `intervall`, expected one of `steps`"),
            "{err}"
        );
    }

    #[test]
    fn cross_field_errors_are_located() {
        let err =
            spec("service: d\nversions: [v1, v2]\nweights:\n  v1: 90\n  v3: 10\n").unwrap_err();
        assert_eq!(
            err,
            "meshctl.yaml: line 5 column 3 at field `weights.v3`: version \"v3\" is not one of the versions (v1, v2): add it to `versions` or remove its weight"
        );
    }

    #[test]
    fn steps_rules() {
        let w = |v: &[u8]| {
            v.iter()
                .map(|x| Weight::try_from(*x).unwrap())
                .collect::<Vec<_>>()
        };
        assert!(check_steps(&w(&[10, 50, 100])).is_ok());
        assert_eq!(
            check_steps(&w(&[10, 10])).unwrap_err(),
            "steps must increase: 10 comes after 10 (e.g. [10, 25, 50, 100])"
        );
        assert_eq!(
            step_weights(w(&[25])[0], Weight::FULL).unwrap(),
            w(&[25, 50, 75, 100])
        );
    }

    #[test]
    fn rollout_flags_replace_file_values() {
        use clap::Parser;
        let mut d = RolloutDefaults::default();
        let cli = crate::cli::Cli::try_parse_from([
            "meshctl",
            "rollout",
            "start",
            "d",
            "--to",
            "v2",
            "--step-weight",
            "30",
            "--interval",
            "2s",
            "--success-rate",
            "95",
            "--on-interrupt",
            "pause",
        ])
        .unwrap();
        let crate::cli::Command::Rollout(crate::cli::RolloutCommand::Start(args)) = cli.command
        else {
            panic!("parsed another command")
        };
        d.apply_flags(&args).unwrap();
        let steps: Vec<u8> = d.steps.iter().map(|w| w.get()).collect();
        assert_eq!(steps, [30, 60, 90]);
        assert_eq!(d.interval, Duration::from_secs(2));
        assert_eq!(d.success_rate, 95.0);
        assert_eq!(d.on_interrupt, OnInterrupt::Pause);
        assert_eq!(d.threshold, 2, "untouched");

        let mut bad = args;
        bad.analysis.interval = Some("2 sec".into());
        let err = d.apply_flags(&bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--interval \"2 sec\": \"2 sec\" is not a duration: use a number with a unit, e.g. \"30s\", \"500ms\" or \"5m\""
        );
        bad.analysis.interval = None;
        bad.step_weight = None;
        bad.steps = vec![50, 20];
        assert_eq!(
            d.apply_flags(&bad).unwrap_err().to_string(),
            "--steps \"50,20\": steps must increase: 20 comes after 50 (e.g. [10, 25, 50, 100])"
        );
        bad.analysis.prometheus = Some("prometheus:9090".into());
        assert_eq!(
            metrics_flag(&bad.analysis).unwrap_err().to_string(),
            "--prometheus \"prometheus:9090\": \"prometheus:9090\" is not an http(s) URL: use an absolute http(s) URL, e.g. http://127.0.0.1:15000/metrics"
        );
    }

    #[test]
    fn labels_are_checked_where_written() {
        assert_eq!(
            spec("service: d\nversions:\n  v1:\n    version: v1\n    track: \"not ok\"\n")
                .unwrap_err(),
            "meshctl.yaml: line 5 column 12 at field `versions.v1.track`: \"not ok\" is not a valid label value: use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        );
        assert_eq!(
            spec("service: d\nversions: [v1]\nhosts: [a.example.com]\ngateway:\n  selector: {\"istio/\": x}\n").unwrap_err(),
            "meshctl.yaml: line 5 column 14 at field `gateway.selector.istio/`: \"istio/\" is not a valid label key: use an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' or '.' (e.g. version or app.kubernetes.io/version)"
        );
    }

    #[test]
    fn locate_finds_nested_block_keys() {
        let text = "a: 1\nweights:\n  # comment\n  v1: 90\n  \"v2\": 10\nrollout:\n  steps: [1]\n";
        assert_eq!(locate(text, &["weights", "v2"]), Some((5, 3)));
        assert_eq!(locate(text, &["rollout", "steps"]), Some((7, 3)));
        assert_eq!(locate(text, &["rollout", "v1"]), None);
    }
}
