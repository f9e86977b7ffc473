//! The command line, declared with clap derive. No logic lives here: commands
//! turn these raw values into validated domain types (`spec`, `rollout`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Progressive delivery for Istio-style service meshes: render and apply
/// Gateway / VirtualService / DestinationRule, and drive canary rollouts.
#[derive(Debug, Parser)]
#[command(name = "meshctl", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where resources and rollout state live: `kube` (the current cluster) or
    /// `local:DIR` (a directory watched by meshproxy).
    #[arg(long, global = true, env = "MESHCTL_TARGET", default_value = "kube")]
    pub target: String,
    /// Kubernetes connection options.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Kubernetes connection options (standard kubeconfig inference otherwise).
#[derive(Debug, Args, Clone, Default)]
pub struct KubeArgs {
    /// Kubeconfig context to use (default: the current context).
    #[arg(long, global = true, env = "MESHCTL_CONTEXT")]
    pub context: Option<String>,
    /// Namespace (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true, env = "MESHCTL_NAMESPACE")]
    pub namespace: Option<String>,
    /// Path to a kubeconfig file (default: `KUBECONFIG`, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// Human-readable text; YAML for `render`.
    #[default]
    Text,
    /// YAML (for `render`; same as text there).
    Yaml,
    /// JSON: a list for `render`, one event per line for `rollout`.
    Json,
}

/// meshctl's subcommands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
pub enum Command {
    /// Print the Gateway, VirtualService and DestinationRule for a service.
    Render(RenderArgs),
    /// Apply the rendered resources to the target (server-side apply).
    Apply(ApplyArgs),
    /// Start or inspect a canary rollout.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Finish a rollout now: send 100% to the new version.
    Promote(ServiceArg),
    /// Abort a rollout now: send 100% back to the stable version.
    Rollback(ServiceArg),
    /// Judge live traffic: compare two versions over one window without moving
    /// weights (exit 0 pass, 3 fail, 4 inconclusive).
    Analyze(AnalyzeArgs),
    /// Run everything locally (meshproxy, v1/v2 upstreams, load, a rollout); no cluster needed.
    Demo(DemoArgs),
    /// Create a development CA and workload certificates for mTLS.
    Certs(CertsArgs),
    /// Show what `apply` would change, as a unified YAML diff against the live objects.
    Diff(DiffArgs),
    /// Preflight checks before moving traffic (subsets, endpoints, routes, metrics, mTLS).
    Doctor(DoctorArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the man page (roff).
    #[command(hide = true)]
    Man,
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

/// `meshctl render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// What to render.
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Render the state after promotion: the canary (the last version) at
    /// 100%, every version still a subset. Commit it so git matches the cluster.
    #[arg(long, conflicts_with = "weights")]
    pub promoted: bool,
}

/// `meshctl apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// What to apply.
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Ask the server to validate without persisting (server-side dry run).
    #[arg(long)]
    pub dry_run: bool,
    /// Take ownership of fields another field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,
}

/// `meshctl diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// What `apply` would apply.
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Exit 1 when there are changes, 0 when there are none (like `git diff
    /// --exit-code`); errors also exit 1 but print `error:` on stderr.
    #[arg(long)]
    pub exit_code: bool,
    /// Keep meshctl's rollout-state annotation (`meshctl.io/rollout`) in the
    /// live objects instead of stripping it.
    #[arg(long)]
    pub show_rollout_state: bool,
}

/// `meshctl doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Service to check (default: the spec file's `service`).
    pub service: Option<String>,
    /// Spec file to read the service and metrics source from (default: ./meshctl.yaml when present).
    #[arg(short = 'f', long = "file", env = "MESHCTL_FILE")]
    pub file: Option<PathBuf>,
    /// The new version (default: the DestinationRule's last subset other than --from).
    #[arg(long)]
    pub to: Option<String>,
    /// The stable version (default: the one taking traffic now).
    #[arg(long)]
    pub from: Option<String>,
    /// meshproxy metrics endpoint (default: the spec's, else `http://127.0.0.1:15000/metrics`).
    #[arg(long, conflicts_with = "prometheus")]
    pub metrics: Option<String>,
    /// Prometheus server URL, queried with PromQL over Istio metrics.
    #[arg(long)]
    pub prometheus: Option<String>,
}

/// A service name, optional when exactly one rollout is active.
#[derive(Debug, Args)]
pub struct ServiceArg {
    /// Service name.
    pub service: Option<String>,
}

/// `meshctl rollout ...`.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
pub enum RolloutCommand {
    /// Start a canary rollout and drive it to the end.
    ///
    /// Strategies (`--strategy`): `canary` moves weights step by step; `ab`
    /// sends only `--match`ing requests to v2 for `--iterations` analyses;
    /// `mirror` mirrors `--mirror-percent` of live traffic to v2 (clients are
    /// served by v1 only), analyses v2's mirrored copies for `--iterations`
    /// intervals, then removes the mirror and runs `--steps`; `bluegreen`
    /// previews v2 on mirrored copies (or `--match`ed requests), switches
    /// 100% in one write, analyses one more interval and rolls back in one
    /// verified write if that fails (at once, whatever `--threshold`); with
    /// `--manual-promotion` it pauses before the switch. The mirror or match
    /// route is always removed in the same write that promotes or rolls back.
    ///
    /// Each request is counted once: a version's `reporter="source"` series
    /// (else `reporter="destination"`) are its real traffic; a mirror window
    /// judges v2's `reporter="destination"` series (its mirrored copies).
    ///
    /// `--interval auto` measures the request rate over 3 s and sizes each
    /// window from the share of it v2 gets in that step: the step weight;
    /// `--mirror-percent` (as copies) in a mirror stage; all of it after a
    /// bluegreen switch; for a `--match` stage the first window probes the
    /// matched share (v2's requests against all) and the next windows are
    /// sized from it, holding (and saying so) while nothing matches. No
    /// window outlasts `--timeout`; steps that cannot reach significance
    /// within it are named at start.
    Start(RolloutStartArgs),
    /// Show the state of a rollout.
    Status(RolloutStatusArgs),
}

/// What to do when the driver is interrupted (SIGINT/SIGTERM).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum OnInterrupt {
    /// Send 100% back to the stable version (default).
    #[default]
    Rollback,
    /// Leave the weights where they are, phase Paused.
    Pause,
}

/// The thresholds a canary is judged by, declared once for `rollout start`
/// and `analyze`.
#[derive(Debug, Args, Clone, Default)]
pub struct ThresholdArgs {
    /// Minimum canary success rate, percent of non-5xx answers (default 99).
    #[arg(long)]
    pub success_rate: Option<f64>,
    /// Maximum canary p99 latency (default `500ms`).
    #[arg(long)]
    pub max_p99: Option<String>,
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
}

/// Analysis thresholds.
#[derive(Debug, Args, Clone, Default)]
pub struct AnalysisArgs {
    /// Time between steps / analysis windows (e.g. `30s`).
    ///
    /// `rollout start` also takes `auto`: each step bakes until v2 has served
    /// the requests the analysis needs, at the share of the traffic it gets
    /// in that step (see `rollout start --help`).
    #[arg(long)]
    pub interval: Option<String>,
    /// Failed checks tolerated before rolling back.
    #[arg(long)]
    pub threshold: Option<u32>,
    /// `--success-rate`, `--max-p99`, `--min-requests`, `--grpc-error-codes`.
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
    #[arg(long)]
    pub timeout: Option<String>,
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

/// `meshctl rollout status`.
#[derive(Debug, Args)]
pub struct RolloutStatusArgs {
    /// Service name (optional when one rollout is active).
    pub service: Option<String>,
    /// Keep printing as the rollout changes.
    #[arg(long)]
    pub watch: bool,
}

/// `meshctl analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Service name (`destination_service_name`).
    pub service: String,
    /// Baseline and canary versions, e.g. `--compare v1 v2`.
    #[arg(long, num_args = 2, value_names = ["BASELINE", "CANARY"], required = true)]
    pub compare: Vec<String>,
    /// Length of the analysis window (e.g. `5m`).
    #[arg(long = "for", default_value = "5m")]
    pub window: String,
    /// `--success-rate`, `--max-p99`, `--min-requests`, `--grpc-error-codes`.
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
    /// meshproxy metrics endpoint (default `http://127.0.0.1:15000/metrics`).
    #[arg(long, conflicts_with = "prometheus")]
    pub metrics: Option<String>,
    /// Prometheus server URL, queried with PromQL over Istio metrics.
    #[arg(long)]
    pub prometheus: Option<String>,
}

/// `meshctl demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Make v2 fail (fault injection) so the rollout rolls back.
    #[arg(long)]
    pub bad_canary: bool,
    /// Analysis interval.
    #[arg(long, default_value = "2s")]
    pub interval: String,
    /// Encrypt proxy traffic with mTLS (certificates from `meshctl certs`).
    #[arg(long)]
    pub mtls: bool,
    /// Keep the demo's files here instead of a temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// How v2 gets traffic: `canary` steps; `ab` (every 4th request carries
    /// `x-canary: true`, only those reach v2); `mirror` (v2 judged on copies
    /// of every request first, clients see v1, then the steps); `bluegreen`
    /// (mirror preview, then 100% in one write).
    #[arg(long, value_enum, default_value_t = StrategyKind::Canary)]
    pub strategy: StrategyKind,
}

/// `meshctl certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Workload name to issue a certificate for (repeatable).
    #[arg(long = "name")]
    pub names: Vec<String>,
    /// Namespace in the SPIFFE identity.
    #[arg(long = "identity-namespace", default_value = "default")]
    pub identity_namespace: String,
}

/// `meshctl completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
