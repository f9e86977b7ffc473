//! `meshctl diff`: render like `apply`, read the live objects from the
//! target, and print one unified YAML diff per object that `apply` would
//! create or change.
//!
//! Exit codes follow `git diff`: 0 whatever the diff without `--exit-code`;
//! with it, 0 when nothing would change and 1 when something would. An
//! error also exits 1 (the CI contract), but prints `error: ...` on stderr
//! and no diff, so a script tells them apart by stderr (or by `-o json`,
//! whose report is only printed on success).

use std::io::Write;

use anyhow::Context;
use meshproxy::istio::Resource;

use crate::Outcome;
use crate::cli::{DiffArgs, GlobalArgs, OutputFormat};
use crate::context;
use crate::diff::{self, DiffOptions, ObjectDiff};
use crate::target::{ApplyAction, Target};

/// Reads the live counterpart of each resource.
async fn live<T: Target>(
    target: &T,
    resources: &[Resource],
) -> anyhow::Result<Vec<Option<Resource>>> {
    let mut out = Vec::with_capacity(resources.len());
    for r in resources {
        let name = &r.metadata().name;
        out.push(target.get(r.kind(), name).await.with_context(|| {
            format!("reading {} {name:?} from {}", r.kind(), target.describe())
        })?);
    }
    Ok(out)
}

/// Runs `meshctl diff`.
pub async fn run(global: &GlobalArgs, args: &DiffArgs) -> anyhow::Result<Outcome> {
    let DiffArgs {
        spec: spec_args,
        exit_code,
        show_rollout_state,
    } = args;
    // Opened as `apply` opens it: the same pinned Istio API version and namespace.
    let (resources, target) = context::rendered(global, spec_args).await?;
    let options = DiffOptions {
        show_rollout_state: *show_rollout_state,
        api_version: target.written_api_version().await?,
    };
    let described = target.describe();
    let live = live(&target, &resources).await?;
    let diffs = diff::diff(&resources, &live, options)?;
    let changed = diffs.iter().any(|d| d.action != ApplyAction::Unchanged);
    if !global.quiet {
        let mut out = std::io::stdout().lock();
        print(&mut out, global.output, &described, changed, &diffs).context("writing to stdout")?;
    }
    Ok(if changed && *exit_code {
        Outcome::Findings
    } else {
        Outcome::Success
    })
}

fn print(
    out: &mut impl Write,
    format: OutputFormat,
    target: &str,
    changed: bool,
    diffs: &[ObjectDiff],
) -> std::io::Result<()> {
    match format {
        OutputFormat::Json => {
            let report = serde_json::json!({
                "target": target,
                "changed": changed,
                "objects": diffs,
            });
            writeln!(out, "{report}")?;
        }
        OutputFormat::Text | OutputFormat::Yaml => {
            for d in diffs {
                out.write_all(d.diff.as_bytes())?;
            }
        }
    }
    out.flush()
}
