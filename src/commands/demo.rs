//! `meshctl demo`: the whole product on one machine, no cluster. Starts
//! meshproxy in-process on loopback, two small upstreams (v1, v2), writes
//! the rendered resources and `endpoints.yaml` to a local directory target,
//! drives a bounded load through the proxy, and runs a real rollout through
//! the same code path as `meshctl rollout start` ([`drive`]).
//! `--bad-canary` makes v2 answer 20% of requests with a 500, so the
//! rollout rolls back (exit 3). `--protocol grpc` does the same with gRPC
//! upstreams and unary calls: the port is declared `grpc`, so meshproxy
//! speaks HTTP/2 to them, and the bad canary's calls fail with `INTERNAL`.
//! Everything started is stopped before returning, also on Ctrl-C.
//! The lab (what is started, and how it is wired) is [`crate::demo::lab`];
//! this file starts it with the flags, runs the rollout in it and reports.

use crate::Outcome;
use crate::cli::{DemoArgs, GlobalArgs};
use crate::context;
use crate::demo::lab::Lab;
use crate::drive::drive;
use crate::output::{Format, table};
use crate::signal::interrupts;

/// `meshctl demo`.
pub async fn run(global: &GlobalArgs, args: DemoArgs) -> anyhow::Result<Outcome> {
    let lab = Lab::start(args).await?;
    let signals = interrupts()?;
    let reporter = &context::reporter(global);
    let text = context::format(global) == Format::Text;
    if text {
        for line in lab.describe() {
            reporter.line(&line);
        }
    }
    let (outcome, load) = lab
        .run(signals.clone(), async move |lab: &Lab| {
            let (outcome, state) = drive(
                lab.target(),
                lab.metrics(),
                reporter,
                lab.rollout(),
                None,
                signals,
            )
            .await?;
            if text {
                reporter.line(&table::summary(&state));
            }
            anyhow::Ok(outcome)
        })
        .await;
    if text {
        reporter.line(&format!("demo: load generator: {}", load.summary()));
    }
    outcome
}
