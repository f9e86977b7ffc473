//! How meshctl talks to people and machines: a [`Reporter`] turns rollout
//! events into plain log lines (text), one JSON object per line (`-o json`)
//! or nothing (`-q`), with an indicatif progress line on a terminal only.
//! `NO_COLOR` disables colour; `CI` disables progress bars and colour.

pub mod report;
pub mod table;

use std::io::{IsTerminal, Write};
use std::time::SystemTime;

use indicatif::{ProgressBar, ProgressStyle};

use crate::rollout::analysis::{DecisionRecord, Verdict, VersionStats};
use crate::rollout::engine::{Observer, RolloutEvent};
use crate::rollout::finish::Finished;
use crate::rollout::state::{Phase, RolloutState};

/// The output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Log lines for people.
    Text,
    /// One JSON event per line.
    Json,
    /// Errors only.
    Quiet,
}

/// Terminal capabilities, decided once from the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Term {
    /// Use ANSI colours on stdout.
    pub color: bool,
    /// Show a progress line on stderr.
    pub progress: bool,
}

// === impl Term ===

impl Term {
    /// From the process environment: colour and progress only on a
    /// terminal, never with `NO_COLOR` (colour) or `CI` (both).
    pub fn detect() -> Self {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            color: std::io::stdout().is_terminal() && !no_color && !ci,
            progress: std::io::stderr().is_terminal() && !ci,
        }
    }
}

/// Prints rollout events.
pub struct Reporter {
    format: Format,
    term: Term,
    bar: Option<ProgressBar>,
}

fn paint(on: bool, code: &str, s: &str) -> String {
    if on {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_owned()
    }
}

/// What `promote` and `rollback` print: `discounts: promoted: v1 0%, v2
/// 100%` (`already promoted` when nothing was written), or one JSON object.
pub fn finished(
    out: &mut impl Write,
    format: Format,
    service: &str,
    done: &Finished,
) -> std::io::Result<()> {
    let s = &done.state;
    let promoted = s.phase == Phase::Promoted;
    match format {
        Format::Quiet => Ok(()),
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::json!({
                "event": if promoted { "promoted" } else { "rolled_back" },
                "service": service,
                "weights": s.weights,
                "reason": s.reason,
                "already": done.already,
            })
        ),
        Format::Text => {
            let what = if promoted { "promoted" } else { "rolled back" };
            let already = if done.already { "already " } else { "" };
            writeln!(out, "{service}: {already}{what}: {}", s.weights_text())
        }
    }
}

/// What `rollout status` prints for one state: the status table, and the
/// summary once there is history; or one JSON object.
pub fn status(
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

/// What `analyze` prints: `discounts: pass: REASON` and the record's table
/// (`inconclusive: N canary requests < required` on a hold), or one JSON
/// object (`"event": "analysis"`).
pub fn analysis(
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

/// `v2 120 req 99.17% ok p50 1.2ms p99 4.9ms`.
pub fn version_line(v: &VersionStats) -> String {
    let sr = v
        .success_rate
        .map_or("-".to_owned(), |s| format!("{s:.2}%"));
    let q = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{x:.1}ms"));
    format!(
        "{} {} req {sr} ok p50 {} p99 {}",
        v.version,
        v.requests,
        q(v.p50_ms),
        q(v.p99_ms)
    )
}

// === impl Reporter ===

impl Reporter {
    /// A reporter writing to stdout (and a progress line on stderr).
    pub fn new(format: Format, term: Term) -> Self {
        let bar = (format == Format::Text && term.progress).then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        Self { format, term, bar }
    }

    /// Writes one line to stdout in text mode (through the progress bar when shown).
    pub fn line(&self, s: &str) {
        // JSON output is one event per line: free text would break it.
        if self.format != Format::Text {
            return;
        }
        match &self.bar {
            Some(b) => b.println(s),
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{s}");
                let _ = out.flush();
            }
        }
    }

    /// A warning: a line of text output, on stderr for JSON output (one
    /// event per line on stdout) and even when quiet.
    pub fn warn(&self, s: &str) {
        if self.format == Format::Text {
            self.line(s);
        } else {
            #[allow(
                clippy::print_stderr,
                reason = "the reporter: warnings go to stderr beside JSON events on stdout"
            )]
            {
                eprintln!("{s}");
            }
        }
    }

    fn json(&self, e: &RolloutEvent) {
        let mut v = serde_json::to_value(e).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "time".to_owned(),
                humantime::format_rfc3339_millis(SystemTime::now())
                    .to_string()
                    .into(),
            );
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    }

    fn text(&self, e: &RolloutEvent) {
        let c = self.term.color;
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let time = now.get(11..19).unwrap_or(&now).to_owned();
        match e {
            RolloutEvent::Started { service, from, to, steps, strategy, interval_ms, target, metrics } => self.line(&format!(
                "{time} {service}: rolling out {from} -> {to} ({strategy}), steps {steps:?}, every {}, target {target}, metrics {metrics}",
                humantime::format_duration(std::time::Duration::from_millis(*interval_ms))
            )),
            RolloutEvent::StepStarted { service, step, steps, traffic, .. } => {
                self.line(&format!("{time} {service}: step {}/{steps}: {traffic}", step + 1));
                if let Some(b) = &self.bar {
                    b.set_message(format!("{service} step {}/{steps} {traffic}", step + 1));
                }
            }
            RolloutEvent::Analysis { service, step, failed_checks, threshold, record } => {
                let verdict = match record.verdict {
                    Verdict::Pass => paint(c, "32", "pass"),
                    Verdict::Fail => paint(c, "31", "FAIL"),
                    Verdict::Hold => paint(c, "33", "hold"),
                };
                let cmp = record
                    .comparison
                    .as_ref()
                    .map(|k| format!(" | z={:.2} p={:.3}", k.z, k.p_value))
                    .unwrap_or_default();
                self.line(&format!(
                    "{time} {service}: analysis [{verdict}] {} | {}{cmp} | failed {failed_checks}/{threshold}: {}",
                    version_line(&record.canary),
                    version_line(&record.baseline),
                    record.reason
                ));
                if let Some(b) = &self.bar {
                    b.set_message(format!("{service} step {}: {} | {}", step + 1, version_line(&record.canary), version_line(&record.baseline)));
                }
            }
            RolloutEvent::Paused { service, reason, .. } => {
                self.line(&format!("{time} {service}: {} {reason}", paint(c, "33", "PAUSED")));
            }
            RolloutEvent::Promoted { service, weights, reason, external } => {
                let w: Vec<String> = weights.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let by = if *external { " (by another process)" } else { "" };
                self.line(&format!("{time} {service}: {}{by} {}: {reason}", paint(c, "32", "PROMOTED"), w.join(" ")));
            }
            RolloutEvent::RolledBack { service, weights, reason, timed_out, external } => {
                let w: Vec<String> = weights.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let what = if *timed_out { "ROLLED BACK (timed out)" } else { "ROLLED BACK" };
                let by = if *external { " (by another process)" } else { "" };
                self.line(&format!("{time} {service}: {}{by} {}: {reason}", paint(c, "31", what), w.join(" ")));
            }
            RolloutEvent::Verified { service, message, .. } => {
                self.line(&format!("{time} {service}: verification: {message}"));
            }
            RolloutEvent::Webhook { service, message, .. } => {
                self.line(&format!("{time} {service}: webhook: {message}"));
            }
            RolloutEvent::Bake { service, message, .. } => {
                self.line(&format!("{time} {service}: --interval auto: {message}"));
            }
            RolloutEvent::Waiting { next_analysis_ms, .. } => {
                if let Some(b) = &self.bar {
                    let msg = b.message();
                    let base = msg.split(" (next analysis").next().unwrap_or(&msg).to_owned();
                    b.set_message(format!(
                        "{base} (next analysis in {})",
                        humantime::format_duration(std::time::Duration::from_millis(*next_analysis_ms))
                    ));
                }
            }
        }
    }

    /// Clears the progress line.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Observer for Reporter {
    fn event(&self, e: &RolloutEvent) {
        match self.format {
            Format::Quiet => {}
            Format::Json => {
                if !matches!(e, RolloutEvent::Waiting { .. }) {
                    self.json(e);
                }
            }
            Format::Text => self.text(e),
        }
    }
}
