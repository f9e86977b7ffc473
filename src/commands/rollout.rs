//! `meshctl rollout start` and `meshctl rollout status`: the inputs
//! resolved once by [`spec::start`], the rollout run by [`drive`], the
//! result reported.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;

use crate::Outcome;
use crate::cli::{GlobalArgs, OutputFormat, RolloutStartArgs, RolloutStatusArgs};
use crate::context::{self, open_target, resolve_service};
use crate::drive::{auto_pace, drive};
use crate::metrics::any::{AnySource, scrape_timeout};
use crate::output::{Format, report, table};
use crate::rollout::state::{Ending, Phase, RolloutState};
use crate::signal::interrupts;
use crate::spec::start;
use crate::target::Target;

/// `meshctl rollout start`.
pub async fn start(global: &GlobalArgs, args: RolloutStartArgs) -> anyhow::Result<Outcome> {
    let s = start::start(&args, global.kube.namespace.as_deref())?;
    let target = open_target(global, s.istio_api).await?;
    let metrics = AnySource::open(
        &s.metrics,
        scrape_timeout(s.rollout.interval),
        &s.rollout.grpc_error_codes,
    )?;
    let reporter = context::reporter(global);
    let pace = if s.rollout.auto_interval {
        Some(auto_pace(&metrics, &s.service, s.from.as_ref(), &s.rollout).await?)
    } else {
        None
    };
    let service = s.service.clone();
    let (outcome, state) = drive(&target, &metrics, &reporter, s, pace, interrupts()?).await?;
    if context::format(global) == Format::Text {
        reporter.line(&table::summary(&state));
    }
    if let Some(path) = &args.summary {
        std::fs::write(path, report::markdown(&service, &state))
            .with_context(|| format!("--summary: writing {}", path.display()))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit(&service, &state))
            .with_context(|| format!("--junit: writing {}", path.display()))?;
    }
    Ok(outcome)
}

/// `meshctl rollout status`.
pub async fn status(global: &GlobalArgs, args: RolloutStatusArgs) -> anyhow::Result<Outcome> {
    let target = open_target(global, None).await?;
    let service = resolve_service(&target, args.service).await?;
    // `-o json` prints the state even with `-q`, as it always has.
    let format = match global.output {
        OutputFormat::Json => Format::Json,
        _ => context::format(global),
    };
    let mut last: Option<String> = None;
    loop {
        let vs = target.virtual_service(&service).await?;
        let state = RolloutState::read(&vs)?;
        let raw = serde_json::to_string(&state)?;
        if last.as_deref() != Some(raw.as_str()) {
            print(&mut std::io::stdout().lock(), format, &service, &state)
                .context("writing to stdout")?;
            last = Some(raw);
        }
        if !args.watch || state.phase.is_finished() {
            return Ok(match (state.phase, state.ending) {
                (Phase::RolledBack, Some(Ending::TimedOut)) => Outcome::TimedOut,
                (Phase::RolledBack, _) => Outcome::RolledBack,
                (Phase::Paused, _) => Outcome::Paused,
                _ => Outcome::Success,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn print(
    out: &mut impl Write,
    format: Format,
    service: &str,
    state: &RolloutState,
) -> std::io::Result<()> {
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::json!({ "service": service, "state": state })
        ),
        Format::Text => {
            writeln!(out, "{}", table::status(service, state))?;
            if !state.history.is_empty() {
                writeln!(out, "{}", table::summary(state))?;
            }
            Ok(())
        }
        Format::Quiet => Ok(()),
    }
}
