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
//!
//! The parts: [`flags`] (the flags, declared for clap, and the value parsers
//! of the typed ones), `values` (the self-validating leaf types), `file`
//! (stage one), `build` (stage two and the flag overlays), [`start`]
//! (every `rollout start` input resolved once into [`start::StartSettings`])
//! and [`analyze`] (every `analyze` input, into
//! [`analyze::AnalyzeSettings`]).

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

use crate::metrics::GrpcCodes;
use crate::metrics::any::Endpoint;
use crate::rollout::analysis::{Analysis, Thresholds};
use crate::rollout::machine::OnInterrupt;
use crate::routing::sticky::CookieName;
use crate::traffic::{Split, TrafficError, Version, Weight};

pub mod analyze;
mod build;
mod file;
pub mod flags;
pub mod start;
mod values;

use self::build::*;
pub use self::build::{check_steps, metrics_flag, step_weights, sticky_flag};
use self::file::*;
use self::flags::{AnalysisArgs, RolloutStartArgs, SpecArgs, ThresholdArgs};
use self::values::*;

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
    /// A flag is missing, does not fit with another, or its value is not
    /// valid; the message names the flag and the fix.
    #[error("{message}")]
    Flag {
        /// The flag (`--match`, `--target`), or `SERVICE`.
        flag: String,
        /// What is wrong and how to fix it.
        message: String,
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
    pub metrics: Option<Endpoint>,
    /// Webhooks called around a rollout, in file order.
    pub webhooks: Vec<Webhook>,
    /// The spec file this came from, if any.
    pub source: Option<PathBuf>,
    /// Sticky sessions (`stickyCookie`, `--sticky-cookie`): the cookie whose
    /// routes the VirtualService carries (see [`crate::routing::sticky`]).
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
    /// How windows are judged (default `sequential`).
    pub analysis: Analysis,
    /// Confidence of the tests as a fraction (default: the rule's, 0.99
    /// for `sequential`, 0.95 for `window`).
    pub confidence: Option<f64>,
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

impl RolloutDefaults {
    /// The analysis thresholds these defaults set (the confidence, unless
    /// given, is the rule's default).
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            success_rate: self.success_rate,
            max_p99: self.max_p99,
            min_requests: self.min_requests,
            confidence: self
                .confidence
                .unwrap_or_else(|| self.analysis.default_confidence()),
            grpc_error_codes: self.grpc_error_codes.clone(),
            analysis: self.analysis,
        }
    }
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
            analysis: Analysis::Sequential,
            confidence: None,
            timeout: Duration::from_secs(600),
            manual_promotion: false,
            on_interrupt: OnInterrupt::Rollback,
            grpc_error_codes: GrpcCodes::default(),
        }
    }
}

/// Is a spec file in play: `-f FILE`, or `./meshctl.yaml` present?
pub fn has_file(file: Option<&Path>) -> bool {
    file.is_some() || Path::new(DEFAULT_FILE).is_file()
}

/// The service and metrics source of a command that reads only those
/// (`doctor`): `SERVICE` or the spec file's `service`, and `--metrics` /
/// `--prometheus` over the file's `metrics`, else meshproxy's admin
/// endpoint. `usage` is the error when there is neither `SERVICE` nor a file.
pub fn service_and_metrics(
    service: Option<&str>,
    file: Option<&Path>,
    flags: &AnalysisArgs,
    namespace: Option<&str>,
    usage: &str,
) -> Result<(String, Endpoint), SpecError> {
    let (service, metrics) = if has_file(file) {
        let args = SpecArgs {
            service: service.map(str::to_owned),
            file: file.map(Path::to_owned),
            ..SpecArgs::default()
        };
        let s = resolve(&args, namespace)?;
        (s.service, s.metrics)
    } else {
        let service = service.ok_or_else(|| SpecError::Flag {
            flag: "SERVICE".to_owned(),
            message: usage.to_owned(),
        })?;
        (service.to_owned(), None)
    };
    Ok((
        service,
        metrics_flag(flags)?.or(metrics).unwrap_or_default(),
    ))
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
        for part in ["`rollout.interval`", "neither a duration nor `auto`"] {
            assert!(err.contains(part), "{err}");
        }
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
    fn analysis_rule_and_confidence_from_the_file_and_flags() {
        // The default: sequential at 99%.
        let t = RolloutDefaults::default().thresholds();
        assert_eq!((t.analysis, t.confidence), (Analysis::Sequential, 0.99));
        // `window` keeps its own default confidence, 95%.
        let s = spec("service: d\nversions: [v1]\nrollout:\n  analysis: window\n").unwrap();
        let t = s.rollout.thresholds();
        assert_eq!((t.analysis, t.confidence), (Analysis::Window, 0.95));
        let s = spec("service: d\nversions: [v1]\nrollout:\n  confidence: 99.9\n").unwrap();
        assert!((s.rollout.thresholds().confidence - 0.999).abs() < 1e-12);
        let err = spec("service: d\nversions: [v1]\nrollout:\n  confidence: 100\n").unwrap_err();
        for part in ["`rollout.confidence`", "between 0 and 100 (e.g. 99)"] {
            assert!(err.contains(part), "{err}");
        }
        let err = spec("service: d\nversions: [v1]\nrollout:\n  analysis: bayes\n").unwrap_err();
        assert!(err.contains("`rollout.analysis`"), "{err}");
        // Flags override the file.
        let mut d = s.rollout.clone();
        let flags = AnalysisArgs {
            thresholds: ThresholdArgs {
                analysis: Some(flags::AnalysisRule::Window),
                confidence: Some(90.0),
                ..ThresholdArgs::default()
            },
            ..AnalysisArgs::default()
        };
        d.apply_analysis_flags(&flags).unwrap();
        let t = d.thresholds();
        assert_eq!((t.analysis, t.confidence), (Analysis::Window, 0.9));
        let bad = AnalysisArgs {
            thresholds: ThresholdArgs {
                confidence: Some(0.0),
                ..ThresholdArgs::default()
            },
            ..AnalysisArgs::default()
        };
        let err = d.apply_analysis_flags(&bad).unwrap_err().to_string();
        for part in ["--confidence", "between 0 and 100"] {
            assert!(err.contains(part), "{err}");
        }
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
        let err = flags::interval_flag("2 sec").unwrap_err();
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
