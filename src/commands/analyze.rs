//! `meshctl analyze SERVICE --compare v1 v2 --for 5m`: the rollout's judge
//! on live traffic, with no weight change, as a standalone CI gate. Scrapes
//! the metrics source at the start and end of the window, analyses the
//! counter deltas exactly as a rollout step does, prints the decision record
//! and exits 0 (pass), 3 (fail) or 4 (inconclusive: too few canary requests).

use std::io::Write;
use std::time::{Duration, SystemTime};

use anyhow::Context;

use crate::Outcome;
use crate::cli::{AnalysisArgs, AnalyzeArgs, GlobalArgs};
use crate::context;
use crate::metrics::MetricsSource;
use crate::metrics::any::AnySource;
use crate::output::{Format, table};
use crate::rollout::analysis::{self, DecisionRecord, Verdict, Window};
use crate::rollout::time::Timestamp;
use crate::spec::{self, RolloutDefaults};
use crate::traffic::Version;

/// Runs `meshctl analyze`.
pub async fn run(global: &GlobalArgs, args: AnalyzeArgs) -> anyhow::Result<Outcome> {
    let AnalyzeArgs {
        service,
        compare,
        window: length,
        thresholds,
        metrics,
        prometheus,
    } = args;
    let [baseline, canary] = <[String; 2]>::try_from(compare).map_err(|_| {
        anyhow::anyhow!("--compare takes two versions: BASELINE CANARY (e.g. --compare v1 v2)")
    })?;
    for v in [&baseline, &canary] {
        v.parse::<Version>()
            .map_err(|e| anyhow::anyhow!("--compare: {e}"))?;
    }
    let flags = AnalysisArgs {
        thresholds,
        metrics,
        prometheus,
        ..AnalysisArgs::default()
    };
    let mut d = RolloutDefaults::default();
    d.apply_analysis_flags(&flags)?;
    let thresholds = d.thresholds();
    let source = AnySource::open(
        &spec::metrics_flag(&flags)?.unwrap_or_default(),
        length.clamp(Duration::from_secs(1), Duration::from_secs(10)),
        &thresholds.grpc_error_codes,
    )?;

    let start = Timestamp::from_system(SystemTime::now());
    let first = source.scrape(&service).await;
    tokio::time::sleep(length).await;
    let end = Timestamp::from_system(SystemTime::now());
    let last = source.scrape(&service).await;
    let record = match (first, last) {
        (Ok(a), Ok(b)) => {
            let delta = b.delta(&a);
            let (bc, cc) = (delta.version(&baseline), delta.version(&canary));
            analysis::analyse_once(
                &Window {
                    start,
                    end,
                    baseline_version: &baseline,
                    baseline: &bc,
                    canary_version: &canary,
                    canary: &cc,
                },
                &thresholds,
            )
        }
        (Err(e), _) | (_, Err(e)) => {
            analysis::unreadable(start, end, &baseline, &canary, &e.to_string())
        }
    };
    print(
        &mut std::io::stdout().lock(),
        context::format(global),
        &service,
        &record,
    )
    .context("writing to stdout")?;
    Ok(match record.verdict {
        Verdict::Pass => Outcome::Success,
        Verdict::Fail => Outcome::RolledBack,
        Verdict::Hold => Outcome::TimedOut,
    })
}

fn print(
    out: &mut impl Write,
    format: Format,
    service: &str,
    record: &DecisionRecord,
) -> std::io::Result<()> {
    match format {
        Format::Quiet => Ok(()),
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::json!({ "event": "analysis", "service": service, "record": record })
        ),
        Format::Text => {
            let verdict = match record.verdict {
                Verdict::Pass => "pass".to_owned(),
                Verdict::Fail => "FAIL".to_owned(),
                Verdict::Hold => format!(
                    "inconclusive: {} canary requests < required",
                    record.canary.requests
                ),
            };
            writeln!(out, "{service}: {verdict}: {}", record.reason)?;
            writeln!(out, "{}", table::record(record))
        }
    }
}
