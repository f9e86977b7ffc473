//! What a command resolves once from the global flags and the process,
//! shared by every command: the target `--target` names, the output format,
//! this process's identity as a lease holder, and the service a command
//! about "the" rollout acts on.
//!
//! This is the command layer (it returns `anyhow` errors with context);
//! the decisions themselves live in `target`, `output` and `rollout`.

use anyhow::bail;
use meshproxy::istio::{ApiVersion, Resource};

use crate::cli::{GlobalArgs, KubeArgs, OutputFormat, SpecArgs, TargetChoice};
use crate::output::{Format, Reporter, Term};
use crate::render::{self, Overrides, Templates};
use crate::rollout::state::{Phase, RolloutState};
use crate::spec;
use crate::target::Target;
use crate::target::any::AnyTarget;

/// Opens the target `--target` names (`kube`: the kubeconfig's cluster,
/// with `--context`, `-n`, `--kubeconfig`; the Istio API version is
/// discovered, or pinned by `istio_api`).
pub async fn open_target(
    global: &GlobalArgs,
    istio_api: Option<ApiVersion>,
) -> anyhow::Result<AnyTarget> {
    open_target_with(&global.target, &global.kube, istio_api).await
}

/// [`open_target`] with explicit connection options (`apply` and `diff`
/// take the spec's namespace when `-n` is not given).
pub async fn open_target_with(
    target: &TargetChoice,
    kube: &KubeArgs,
    istio_api: Option<ApiVersion>,
) -> anyhow::Result<AnyTarget> {
    Ok(AnyTarget::open(target, kube, istio_api).await?)
}

/// What `apply` and `diff` work on: the spec rendered with its templates,
/// and the target opened for it. The Istio API version is pinned when the
/// user chose one (`--istio-api`, or `istioApi: v1beta1` in the spec),
/// otherwise discovery picks it; like kubectl, a namespace in the spec
/// applies unless `-n` says otherwise.
pub async fn rendered(
    global: &GlobalArgs,
    spec_args: &SpecArgs,
) -> anyhow::Result<(Vec<Resource>, AnyTarget)> {
    let spec = spec::resolve(spec_args, global.kube.namespace.as_deref())?;
    let templates = Templates::load(spec_args.templates.as_deref())?;
    let resources = render::render(&spec, &templates, &Overrides::default())?;
    let pinned = (spec_args.istio_api.is_some() || spec.istio_api != ApiVersion::V1)
        .then_some(spec.istio_api);
    let mut kube = global.kube.clone();
    if kube.namespace.is_none() {
        kube.namespace.clone_from(&spec.namespace);
    }
    let target = open_target_with(&global.target, &kube, pinned).await?;
    Ok((resources, target))
}

/// The reporter format from the global flags (`-q` wins over `-o`).
pub fn format(global: &GlobalArgs) -> Format {
    if global.quiet {
        Format::Quiet
    } else if global.output == OutputFormat::Json {
        Format::Json
    } else {
        Format::Text
    }
}

/// The format of a state report (`rollout status`): as [`format()`], except
/// that `-o json` prints the state even with `-q`, as it always has.
pub fn state_format(global: &GlobalArgs) -> Format {
    match global.output {
        OutputFormat::Json => Format::Json,
        _ => format(global),
    }
}

/// A reporter in the global flags' format for this terminal.
pub fn reporter(global: &GlobalArgs) -> Reporter {
    Reporter::new(format(global), Term::detect())
}

/// This process's identity as lease holder (also named in the reason a
/// `promote` or `rollback` records): `meshctl-PID@HOST`.
pub fn holder() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("meshctl-{}@{host}", std::process::id())
}

/// Picks the service: the argument, else the only active rollout (else the
/// only rollout recorded at all).
pub async fn resolve_service<T: Target>(
    target: &T,
    service: Option<String>,
) -> anyhow::Result<String> {
    if let Some(s) = service {
        return Ok(s);
    }
    let all = target.rollouts().await?;
    let states: Vec<(String, Option<Phase>)> = all
        .iter()
        .map(|vs| {
            (
                vs.metadata.name.clone(),
                RolloutState::read(vs).ok().map(|s| s.phase),
            )
        })
        .collect();
    let active: Vec<&String> = states
        .iter()
        .filter(|(_, p)| p.is_some_and(|p| !p.is_finished()))
        .map(|(n, _)| n)
        .collect();
    match (active.as_slice(), states.as_slice()) {
        ([one], _) => Ok((*one).clone()),
        ([], [(one, _)]) => Ok(one.clone()),
        ([], []) => bail!(
            "no rollouts recorded in {}: give SERVICE",
            target.describe()
        ),
        _ => {
            let names: Vec<&str> = states.iter().map(|(n, _)| n.as_str()).collect();
            bail!(
                "more than one rollout in {}: give SERVICE, one of {}",
                target.describe(),
                names.join(", ")
            )
        }
    }
}
