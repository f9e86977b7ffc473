//! Reports of a finished rollout for CI: a Markdown summary with an SVG
//! chart (for `$GITHUB_STEP_SUMMARY`) and a JUnit XML file with one test
//! case per analysis.

use std::fmt::Write as _;

use crate::rollout::analysis::Verdict;
use crate::rollout::state::RolloutState;

fn pct(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.2}%"))
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.1} ms"))
}

/// Escapes text for XML attributes and content.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Escapes `|` so text stays inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Canary weight and error rate per analysis, as an SVG line chart.
pub fn chart(s: &RolloutState) -> String {
    let points: Vec<(f64, f64)> = s
        .history
        .iter()
        .flat_map(|h| {
            h.records.iter().map(move |r| {
                let err = r.canary.success_rate.map_or(0.0, |sr| 100.0 - sr);
                (f64::from(h.weight), err)
            })
        })
        .collect();
    let (w, h, pad) = (480.0, 160.0, 20.0);
    let n = points.len().max(2) as f64 - 1.0;
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / n;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v.clamp(0.0, 100.0) / 100.0;
    let line = |f: &dyn Fn(&(f64, f64)) -> f64| {
        points
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(f(p))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\
<rect width=\"{w}\" height=\"{h}\" fill=\"white\" stroke=\"#ccc\"/>\
<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{}\"/>\
<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"{}\"/>\
<text x=\"{pad}\" y=\"14\" font-size=\"12\" fill=\"#1f77b4\">canary weight %</text>\
<text x=\"160\" y=\"14\" font-size=\"12\" fill=\"#d62728\">canary error rate %</text>\
</svg>",
        line(&|p| p.0),
        line(&|p| p.1)
    )
}

/// A Markdown summary of the rollout.
pub fn markdown(service: &str, s: &RolloutState) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## meshctl rollout: {service} {} → {}\n", s.from, s.to);
    let _ = writeln!(
        out,
        "**{}** at {} — {}\n",
        s.phase,
        s.weights_text(),
        s.reason.as_deref().unwrap_or("")
    );
    if let Some(v) = &s.verification {
        let _ = writeln!(out, "Verification: {v}\n");
    }
    let _ = writeln!(
        out,
        "| step | weight | analysis | verdict | {to} requests | {to} success | {to} p99 | {from} requests | {from} success | {from} p99 | reason |",
        to = s.to,
        from = s.from
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
    for h in &s.history {
        let first = h.analyses as usize + 1 - h.records.len().min(h.analyses as usize + 1);
        for (i, r) in h.records.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:?} | {} | {} | {} | {} | {} | {} | {} |",
                h.step + 1,
                h.weight_text(),
                first + i,
                r.verdict,
                r.canary.requests,
                pct(r.canary.success_rate),
                ms(r.canary.p99_ms),
                r.baseline.requests,
                pct(r.baseline.success_rate),
                ms(r.baseline.p99_ms),
                cell(&r.reason)
            );
        }
    }
    let _ = writeln!(out, "\n{}\n", chart(s));
    out
}

/// A JUnit XML report: one test case per analysis (fail → failure, hold → skipped).
pub fn junit(service: &str, s: &RolloutState) -> String {
    let mut cases = String::new();
    let (mut tests, mut failures, mut skipped) = (0, 0, 0);
    for h in &s.history {
        let first = h.analyses as usize + 1 - h.records.len().min(h.analyses as usize + 1);
        for (i, r) in h.records.iter().enumerate() {
            tests += 1;
            let secs = r.window_end.since(r.window_start).as_secs_f64();
            let checks: Vec<String> = r
                .checks
                .iter()
                .map(|c| format!("{} {:?}: {}", c.name, c.status, c.detail))
                .collect();
            let _ = write!(
                cases,
                "  <testcase classname=\"meshctl.rollout.{}\" name=\"step {} ({}) analysis {}\" time=\"{secs:.3}\">",
                xml(service),
                h.step + 1,
                h.weight_text(),
                first + i
            );
            match r.verdict {
                Verdict::Pass => {}
                Verdict::Fail => {
                    failures += 1;
                    let _ = write!(cases, "<failure message=\"{}\"/>", xml(&r.reason));
                }
                Verdict::Hold => {
                    skipped += 1;
                    let _ = write!(cases, "<skipped message=\"{}\"/>", xml(&r.reason));
                }
            }
            let _ = writeln!(
                cases,
                "<system-out>{}</system-out></testcase>",
                xml(&checks.join("\n"))
            );
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"meshctl rollout {}\" tests=\"{tests}\" failures=\"{failures}\" skipped=\"{skipped}\" errors=\"0\">\n{cases}</testsuite>\n",
        xml(service)
    )
}
