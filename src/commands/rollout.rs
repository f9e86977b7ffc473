//! `meshctl rollout start` and `meshctl rollout status`: the inputs
//! resolved once by [`crate::spec::start`], the rollout run by [`drive`], the
//! result reported.

use std::time::Duration;

use anyhow::Context;

use crate::Outcome;
use crate::cli::{GlobalArgs, RolloutStartArgs, RolloutStatusArgs};
use crate::context::{self, open_target, resolve_service};
use crate::drive::{auto_pace, drive};
use crate::metrics::any::{AnySource, scrape_timeout};
use crate::output::{self, Format, report, table};
use crate::rollout::state::RolloutState;
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

/// `meshctl rollout status`: the state once, or with `--watch` each time
/// it changes until the rollout has finished.
pub async fn status(global: &GlobalArgs, args: RolloutStatusArgs) -> anyhow::Result<Outcome> {
    let target = open_target(global, None).await?;
    let service = resolve_service(&target, args.service).await?;
    let format = context::state_format(global);
    let mut last: Option<String> = None;
    loop {
        let vs = target.virtual_service(&service).await?;
        let state = RolloutState::read(&vs)?;
        let raw = serde_json::to_string(&state)?;
        if last.as_deref() != Some(raw.as_str()) {
            output::status(&mut std::io::stdout().lock(), format, &service, &state)
                .context("writing to stdout")?;
            last = Some(raw);
        }
        if !args.watch || state.phase.is_finished() {
            return Ok(Outcome::from(&state));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
