//! `analyze`'s inputs resolved once into typed [`AnalyzeSettings`]: the two
//! versions of `--compare`, the window `--for`, the thresholds (the rollout
//! defaults with the threshold flags over them; `analyze` reads no
//! `meshctl.yaml`) and the metrics source. Every error names the flag and
//! the fix.

use std::time::Duration;

use super::flags::{AnalysisArgs, AnalyzeArgs};
use super::{RolloutDefaults, SpecError, metrics_flag};
use crate::metrics::any::Endpoint;
use crate::rollout::analysis::Thresholds;
use crate::rollout::gate::Comparison;

/// Everything `meshctl analyze` was asked, validated.
#[derive(Clone, Debug)]
pub struct AnalyzeSettings {
    /// `SERVICE` (`destination_service_name`).
    pub service: String,
    /// `--compare BASELINE CANARY`.
    pub comparison: Comparison,
    /// `--for`: the length of the window.
    pub length: Duration,
    /// `--success-rate`, `--max-p99`, `--min-requests`, `--grpc-error-codes`,
    /// `--analysis`, `--confidence` over the rollout defaults.
    pub thresholds: Thresholds,
    /// `--metrics` / `--prometheus`, else meshproxy's admin endpoint on
    /// loopback.
    pub metrics: Endpoint,
}

/// Resolves `analyze`'s flags. `--compare` given twice (four versions) is
/// an error naming the flag and its form.
pub fn analyze(args: &AnalyzeArgs) -> Result<AnalyzeSettings, SpecError> {
    let [baseline, canary] =
        <[_; 2]>::try_from(args.compare.clone()).map_err(|_| SpecError::Flag {
            flag: "--compare".to_owned(),
            message: "--compare takes two versions: BASELINE CANARY (e.g. --compare v1 v2)"
                .to_owned(),
        })?;
    let flags = AnalysisArgs {
        thresholds: args.thresholds.clone(),
        metrics: args.metrics.clone(),
        prometheus: args.prometheus.clone(),
        ..AnalysisArgs::default()
    };
    let mut defaults = RolloutDefaults::default();
    defaults.apply_analysis_flags(&flags)?;
    Ok(AnalyzeSettings {
        service: args.service.clone(),
        comparison: Comparison { baseline, canary },
        length: args.window,
        thresholds: defaults.thresholds(),
        metrics: metrics_flag(&flags)?.unwrap_or_default(),
    })
}
