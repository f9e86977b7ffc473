//! meshctl: the control plane of a service mesh as a command line.
//!
//! `run` is the whole program; `main` only parses arguments and maps the
//! returned [`Outcome`] to the exit-code contract in DESIGN.md, so tests drive
//! `run` in-process as well as through the binary. ARCHITECTURE.md draws the
//! modules and which way they point.
//!
//! Library code never prints (`print_stdout` / `print_stderr` are denied
//! below): output goes through the reporter (`output`) or a writer a
//! command is handed; `main` prints the final `error:` line.

#![deny(missing_docs)]
// Unit tests may print what they measured (`cargo test -- --nocapture`).
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

pub mod certs;
pub mod cli;
pub mod commands;
pub mod context;
pub mod demo;
pub mod diff;
pub mod doctor;
pub mod drive;
pub mod logging;
pub mod metrics;
pub mod output;
pub mod render;
pub mod rollout;
pub mod routing;
pub mod signal;
pub mod spec;
pub mod target;
#[cfg(test)]
mod testing;
pub mod traffic;

use cli::Cli;

/// How a command ended, as the CI exit-code contract sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 0: rendered, applied, promoted.
    Success,
    /// 1: bad input, cluster unreachable, metrics misconfigured, ...
    Error,
    /// 3: the rollout was rolled back.
    RolledBack,
    /// 4: the progress deadline passed; rolled back.
    TimedOut,
    /// 5: paused, waiting for `meshctl promote` (with `--no-wait-on-pause`).
    Paused,
    /// 1: a check answered "no": `diff --exit-code` found changes, `doctor`
    /// found a failing check. Unlike [`Outcome::Error`] the report on stdout
    /// is complete and nothing starting with `error:` is printed on stderr.
    Findings,
}

// === impl Outcome ===

impl Outcome {
    /// The process exit code (2 is clap's usage error and never returned here).
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Error => 1,
            Self::RolledBack => 3,
            Self::TimedOut => 4,
            Self::Paused => 5,
            Self::Findings => 1,
        }
    }
}

impl From<rollout::analysis::Verdict> for Outcome {
    /// `analyze`'s exit code for its window: pass 0, fail 3, inconclusive
    /// (too few canary requests) 4.
    fn from(v: rollout::analysis::Verdict) -> Self {
        use rollout::analysis::Verdict;
        match v {
            Verdict::Pass => Self::Success,
            Verdict::Fail => Self::RolledBack,
            Verdict::Hold => Self::TimedOut,
        }
    }
}

impl From<&rollout::state::RolloutState> for Outcome {
    /// `rollout status`'s exit code for a recorded state: rolled back 3 (4
    /// when the progress deadline passed), paused 5, anything else 0.
    fn from(s: &rollout::state::RolloutState) -> Self {
        use rollout::state::{Ending, Phase};
        match (s.phase, s.ending) {
            (Phase::RolledBack, Some(Ending::TimedOut)) => Self::TimedOut,
            (Phase::RolledBack, _) => Self::RolledBack,
            (Phase::Paused, _) => Self::Paused,
            _ => Self::Success,
        }
    }
}

/// Runs one meshctl command.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    commands::run(cli).await
}

/// Was this error caused by writing to a closed pipe (`meshctl render | head`)?
/// Such a run counts as success, as in ripgrep.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
