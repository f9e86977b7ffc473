//! The command line, declared with clap derive. No logic lives here: the
//! flags that describe a service and a rollout are declared beside their
//! rules in `spec::flags`, `demo`'s in `demo::lab` (both re-exported
//! here), typed flag values are parsed by value parsers, and commands hand
//! the rest to `spec` to become validated domain types.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::demo::lab::{Protocol as DemoProtocol, Settings as DemoArgs};
use crate::spec::SpecError;
pub use crate::spec::flags::{
    AnalysisArgs, AnalyzeArgs, OnInterrupt, RolloutStartArgs, SpecArgs, StrategyKind, ThresholdArgs,
};
pub use crate::target::KubeArgs;
pub use crate::target::any::{TargetChoice, TargetChoiceError};

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
    #[arg(
        long,
        global = true,
        env = "MESHCTL_TARGET",
        default_value = "kube",
        value_parser = TargetChoice::from_str
    )]
    pub target: TargetChoice,
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

/// The message of a flag value meshctl's own value parsers rejected
/// (`--target`, `--interval`, `--timeout`, `--max-p99`, `--for`,
/// `--compare`), when `e` is one. Such a value is bad input like any other,
/// so `main` prints it as `error: MESSAGE` and exits 1, as for a bad value
/// in `meshctl.yaml`; clap's own usage errors keep clap's text and exit 2.
pub fn rejected_value(e: &clap::Error) -> Option<String> {
    if e.kind() != clap::error::ErrorKind::ValueValidation {
        return None;
    }
    let source = std::error::Error::source(e)?;
    source
        .downcast_ref::<SpecError>()
        .map(ToString::to_string)
        .or_else(|| {
            source
                .downcast_ref::<TargetChoiceError>()
                .map(ToString::to_string)
        })
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

/// `meshctl rollout status`.
#[derive(Debug, Args)]
pub struct RolloutStatusArgs {
    /// Service name (optional when one rollout is active).
    pub service: Option<String>,
    /// Keep printing as the rollout changes.
    #[arg(long)]
    pub watch: bool,
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
