//! comfy-table views of a rollout: the status table and the per-step summary.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};

use crate::rollout::analysis::{DecisionRecord, VersionStats};
use crate::rollout::state::RolloutState;

fn table() -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if std::env::var_os("COLUMNS").is_none() {
        t.set_width(120);
    }
    t
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.2}%"))
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.1}ms"))
}

fn stats_row(role: &str, v: &VersionStats) -> Vec<String> {
    vec![
        format!("{} ({role})", v.version),
        v.requests.to_string(),
        v.errors.to_string(),
        pct(v.success_rate),
        ms(v.p50_ms),
        ms(v.p99_ms),
    ]
}

/// The status of one rollout: overview, last analysis per version, checks.
pub fn status(service: &str, s: &RolloutState) -> String {
    let mut t = table();
    t.set_header(vec![
        "service",
        "phase",
        "step",
        "weights",
        "failed checks",
        "updated",
    ]);
    let step = if s.phase.is_finished() {
        "-".to_owned()
    } else {
        format!(
            "{}/{} ({}%)",
            s.step + 1,
            s.steps.len(),
            s.steps.get(s.step).copied().unwrap_or(0)
        )
    };
    t.add_row(vec![
        service.to_owned(),
        s.ending.map_or(s.phase.to_string(), |e| match e {
            crate::rollout::state::Ending::TimedOut => format!("{} (timed out)", s.phase),
            _ => s.phase.to_string(),
        }),
        step,
        s.traffic_text(),
        format!("{}/{}", s.failed_checks, s.settings.threshold),
        s.updated.to_string(),
    ]);
    let mut out = t.to_string();
    if let Some(h) = &s.held {
        out.push_str(&format!(
            "\nheld since {}: {} canary requests < {} required (window extended)",
            h.since, h.canary_requests, h.required
        ));
    }
    if let Some(r) = &s.reason {
        out.push_str(&format!("\nreason: {r}"));
    }
    if let Some(v) = &s.verification {
        out.push_str(&format!("\nverification: {v}"));
    }
    if let Some(e) = &s.evidence {
        out.push_str(&format!(
            "\nevidence over {} windows (--analysis sequential, {} confidence):",
            e.windows,
            crate::rollout::sequential::percent(1.0 - e.alpha)
        ));
        for o in e.outcomes(&s.to, &s.from) {
            out.push_str(&format!("\n  {}: {}", o.test.as_str(), o.detail));
        }
    }
    if let Some(rec) = s.last_record() {
        out.push_str(&format!(
            "\n\nlast analysis {} .. {}: {:?}: {}\n{}",
            rec.window_start,
            rec.window_end,
            rec.verdict,
            rec.reason,
            record(rec)
        ));
    }
    out
}

/// A decision record: numbers per version, then every check.
pub fn record(rec: &DecisionRecord) -> String {
    let mut t = table();
    t.set_header(vec![
        "version",
        "requests",
        "5xx",
        "success rate",
        "p50",
        "p99",
    ]);
    t.add_row(stats_row("canary", &rec.canary));
    t.add_row(stats_row("baseline", &rec.baseline));
    let mut c = table();
    c.set_header(vec!["check", "result", "detail"]);
    for k in &rec.checks {
        c.add_row(vec![
            k.name.clone(),
            format!("{:?}", k.status).to_lowercase(),
            k.detail.clone(),
        ]);
    }
    format!("{t}\n{c}")
}

/// One row per step: weight, analyses, last verdict and numbers.
pub fn summary(s: &RolloutState) -> String {
    let mut t = table();
    t.set_header(vec![
        "step", "weight", "analyses", "verdict", "canary", "success", "p99", "reason",
    ]);
    for h in &s.history {
        let last = h.records.last();
        t.add_row(vec![
            (h.step + 1).to_string(),
            h.weight_text(),
            h.analyses.to_string(),
            last.map_or("-".to_owned(), |r| {
                format!("{:?}", r.verdict).to_lowercase()
            }),
            last.map_or("-".to_owned(), |r| r.canary.requests.to_string()),
            last.map_or("-".to_owned(), |r| pct(r.canary.success_rate)),
            last.map_or("-".to_owned(), |r| ms(r.canary.p99_ms)),
            last.map_or(String::new(), |r| r.reason.clone()),
        ]);
    }
    t.to_string()
}
