//! `meshctl analyze SERVICE --compare v1 v2 --for 5m`: the rollout's judge
//! on live traffic, with no weight change, as a standalone CI gate. The
//! inputs are resolved by [`spec::analyze`], the window is judged by
//! [`gate::judge`], the decision record printed by [`output::analysis`];
//! exits 0 (pass), 3 (fail) or 4 (inconclusive: too few canary requests).

use anyhow::Context;

use crate::Outcome;
use crate::cli::{AnalyzeArgs, GlobalArgs};
use crate::context;
use crate::metrics::any::{AnySource, scrape_timeout};
use crate::output;
use crate::rollout::gate;
use crate::spec;

/// Runs `meshctl analyze`.
pub async fn run(global: &GlobalArgs, args: AnalyzeArgs) -> anyhow::Result<Outcome> {
    let s = spec::analyze::analyze(&args)?;
    let source = AnySource::open(
        &s.metrics,
        scrape_timeout(s.length),
        &s.thresholds.grpc_error_codes,
    )?;
    let record = gate::judge(&source, &s.service, &s.comparison, s.length, &s.thresholds).await;
    output::analysis(
        &mut std::io::stdout().lock(),
        context::format(global),
        &s.service,
        &record,
    )
    .context("writing to stdout")?;
    Ok(record.verdict.into())
}
