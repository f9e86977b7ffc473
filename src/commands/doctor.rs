//! `meshctl doctor SERVICE`: run the preflight checks of [`crate::doctor`]
//! on the chosen target and metrics source, print one PASS/FAIL line per
//! check (with the fix under a failure) or, with `-o json`, the report as
//! one JSON object. Exit 0 when every check passes, 1 otherwise (an error
//! before the checks could run also exits 1, with `error:` on stderr).

use std::io::Write;
use std::time::Duration;

use anyhow::Context;

use crate::Outcome;
use crate::cli::{AnalysisArgs, DoctorArgs, GlobalArgs, OutputFormat};
use crate::context::open_target;
use crate::doctor::{self, Report, Request};
use crate::metrics::any::AnySource;
use crate::spec;

/// How long the metrics source may take to answer.
const METRICS_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `meshctl doctor`.
pub async fn run(global: &GlobalArgs, args: &DoctorArgs) -> anyhow::Result<Outcome> {
    let DoctorArgs {
        service,
        file,
        to,
        from,
        metrics,
        prometheus,
    } = args;
    let flags = AnalysisArgs {
        metrics: metrics.clone(),
        prometheus: prometheus.clone(),
        ..AnalysisArgs::default()
    };
    let (service, endpoint) = spec::service_and_metrics(
        service.as_deref(),
        file.as_deref(),
        &flags,
        global.kube.namespace.as_deref(),
        "doctor needs a SERVICE: `meshctl doctor SERVICE` (or a meshctl.yaml)",
    )?;
    let series = doctor::series_labels(&endpoint, &service, METRICS_TIMEOUT).await;
    let metrics = AnySource::open(
        &endpoint,
        METRICS_TIMEOUT,
        &crate::metrics::GrpcCodes::default(),
    )?;
    let req = Request {
        service,
        from: from.clone(),
        to: to.clone(),
        series,
    };
    let target = open_target(global, None).await?;
    let report = doctor::diagnose(&target, &metrics, &req).await;
    if !global.quiet {
        let mut out = std::io::stdout().lock();
        print(&mut out, global.output, &report).context("writing to stdout")?;
    }
    Ok(if report.passed {
        Outcome::Success
    } else {
        Outcome::Findings
    })
}

fn print(out: &mut impl Write, format: OutputFormat, report: &Report) -> std::io::Result<()> {
    if format == OutputFormat::Json {
        let json = serde_json::to_string(report).map_err(std::io::Error::other)?;
        writeln!(out, "{json}")?;
        return out.flush();
    }
    let versions = match (&report.from, &report.to) {
        (Some(f), Some(t)) => format!(" ({f} -> {t})"),
        _ => String::new(),
    };
    writeln!(
        out,
        "doctor {}{versions} on {}, metrics from {}",
        report.service, report.target, report.metrics
    )?;
    let width = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    for c in &report.checks {
        let verdict = match (c.passed, c.warning) {
            (true, false) => "PASS",
            (true, true) => "WARN",
            (false, _) => "FAIL",
        };
        writeln!(out, "{verdict}  {:width$}  {}", c.name, c.message)?;
        if let Some(fix) = &c.fix {
            writeln!(out, "      {:width$}  fix: {fix}", "")?;
        }
    }
    let passed = report.checks.iter().filter(|c| c.passed).count();
    writeln!(out, "{passed} of {} checks passed", report.checks.len())?;
    out.flush()
}
