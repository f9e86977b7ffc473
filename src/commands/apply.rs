//! `meshctl apply`: render the service's resources and server-side apply
//! them to the target, printing what happened to each object like kubectl.

use std::io::Write;

use anyhow::Context;
use meshproxy::istio::{GROUP, Resource};

use crate::Outcome;
use crate::cli::{ApplyArgs, GlobalArgs, OutputFormat};
use crate::context;
use crate::target::{Applied, ApplyAction, ApplyOptions, Target};

/// Runs `meshctl apply`: the same inputs as `render`, then server-side apply.
pub async fn run(global: &GlobalArgs, args: ApplyArgs) -> anyhow::Result<Outcome> {
    let ApplyArgs {
        spec: spec_args,
        dry_run,
        force_conflicts,
    } = args;
    let (resources, target) = context::rendered(global, &spec_args).await?;
    let options = ApplyOptions {
        dry_run,
        force_conflicts,
    };
    let mut out = std::io::stdout().lock();
    apply_resources(
        &target,
        &resources,
        options,
        global.output,
        global.quiet,
        &mut out,
    )
    .await
}

/// One line per object, as kubectl prints it:
/// `virtualservice.networking.istio.io/discounts configured`.
pub fn line(applied: &Applied, dry_run: bool) -> String {
    let action = match applied.action {
        ApplyAction::Created => "created",
        ApplyAction::Configured => "configured",
        ApplyAction::Unchanged => "unchanged",
    };
    let suffix = if dry_run { " (server dry run)" } else { "" };
    format!(
        "{}.{GROUP}/{} {action}{suffix}",
        applied.kind.to_lowercase(),
        applied.name
    )
}

/// Applies `resources` to `target` and reports each object on `out`
/// (text lines, or one JSON list with `-o json`; nothing with `quiet`).
pub async fn apply_resources<T: Target>(
    target: &T,
    resources: &[Resource],
    options: ApplyOptions,
    format: OutputFormat,
    quiet: bool,
    out: &mut impl Write,
) -> anyhow::Result<Outcome> {
    let applied = target
        .apply(resources, options)
        .await
        .with_context(|| format!("applying to {}", target.describe()))?;
    if quiet {
        return Ok(Outcome::Success);
    }
    match format {
        OutputFormat::Json => {
            let report = serde_json::json!({
                "target": target.describe(),
                "dryRun": options.dry_run,
                "objects": applied,
            });
            writeln!(out, "{report}").context("writing the report")?;
        }
        OutputFormat::Text | OutputFormat::Yaml => {
            for a in &applied {
                writeln!(out, "{}", line(a, options.dry_run)).context("writing the report")?;
            }
        }
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_like_kubectl() {
        let a = Applied {
            kind: "VirtualService".into(),
            name: "discounts".into(),
            action: ApplyAction::Configured,
        };
        assert_eq!(
            line(&a, false),
            "virtualservice.networking.istio.io/discounts configured"
        );
        assert_eq!(
            line(&a, true),
            "virtualservice.networking.istio.io/discounts configured (server dry run)"
        );
    }
}
