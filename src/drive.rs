//! One rollout from resolved [`StartSettings`] to its exit code: read the
//! VirtualService, fill in the stable version and the sticky cookie it
//! already carries, size the first window for `--interval auto`, and run the
//! [`Driver`] against the target and metrics source, reporting as it goes.
//! Shared by `rollout start` and `demo`, so both run the same code path.
//!
//! This is the command layer (it returns `anyhow` errors with context);
//! the rollout's decisions live in [`crate::rollout`].

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::watch;

use crate::Outcome;
use crate::context;
use crate::metrics::MetricsSource;
use crate::output::Reporter;
use crate::rollout::engine::{Driver, DriverOptions, Finish};
use crate::rollout::machine::Plan;
use crate::rollout::pace::{self, Pace};
use crate::rollout::state::{Ending, RolloutState};
use crate::routing;
use crate::spec::RolloutDefaults;
use crate::spec::start::StartSettings;
use crate::target::Target;
use crate::traffic::Version;

/// The exit code of a finished driver.
pub fn outcome(f: Finish) -> Outcome {
    match f {
        Finish::Ended(Ending::Promoted) => Outcome::Success,
        Finish::Ended(Ending::RolledBack) => Outcome::RolledBack,
        Finish::Ended(Ending::TimedOut) => Outcome::TimedOut,
        Finish::Paused => Outcome::Paused,
    }
}

/// Runs a rollout on any target with any metrics source, reporting to
/// `reporter` (`req.metrics` and `req.istio_api` were used to open them).
/// With `pace` (`--interval auto`) each window is sized from the traffic the
/// new version gets in its step, the first one included.
pub async fn drive<T: Target, M: MetricsSource>(
    target: &T,
    metrics: &M,
    reporter: &Reporter,
    req: StartSettings,
    pace: Option<Pace>,
    interrupts: watch::Receiver<u32>,
) -> anyhow::Result<(Outcome, RolloutState)> {
    let vs = target
        .virtual_service(&req.service)
        .await
        .with_context(|| {
            format!(
                "reading the VirtualService of {:?} from {}",
                req.service,
                target.describe()
            )
        })?;
    let from = match req.from {
        Some(f) => f,
        None => {
            let s = routing::stable_subset(&vs).with_context(|| {
                format!(
                    "VirtualService {:?} routes to no subset: pass --from VERSION",
                    req.service
                )
            })?;
            s.parse()
                .with_context(|| format!("subset {s:?} of VirtualService {:?}", req.service))?
        }
    };
    let d = req.rollout;
    let mut plan = Plan {
        from,
        to: req.to,
        steps: d.steps.clone(),
        interval: d.interval,
        threshold: d.threshold,
        step_timeout: d.timeout,
        manual_promotion: d.manual_promotion,
        thresholds: d.thresholds(),
        metrics: metrics.describe(),
        strategy: req.strategy,
        sticky_cookie: req
            .sticky_cookie
            .or_else(|| routing::sticky::cookie_of(&vs)),
    };
    if let Some(p) = &pace {
        plan.interval = p
            .next(&plan, 0, pace::Window::Fresh, Duration::ZERO)
            .interval;
        announce_pace(p, &plan, reporter);
    }
    let options = DriverOptions {
        service: req.service.clone(),
        holder: context::holder(),
        on_interrupt: d.on_interrupt,
        no_wait_on_pause: req.no_wait_on_pause,
        webhooks: req.webhooks,
        poll: plan.interval.min(Duration::from_millis(500)),
        pace,
    };
    let driver = Driver::new(target, metrics, reporter, options, interrupts);
    let (finish, state) = driver.run(plan).await?;
    reporter.finish();
    Ok((outcome(finish), state))
}

/// `--interval auto`: measures the request rate to `service` and the
/// stable version's error share over a [`pace::PROBE`], for [`Pace`] to size
/// each step's bake from the share of that traffic the new version gets
/// in the step (see [`crate::rollout::pace`]).
pub async fn auto_pace<M: MetricsSource>(
    metrics: &M,
    service: &str,
    from: Option<&Version>,
    d: &RolloutDefaults,
) -> anyhow::Result<Pace> {
    let first = metrics
        .scrape(service)
        .await
        .context("--interval auto: probing the request rate")?;
    tokio::time::sleep(pace::PROBE).await;
    let last = metrics
        .scrape(service)
        .await
        .context("--interval auto: probing the request rate")?;
    let delta = last.delta(&first);
    let real = delta.versions();
    let total: f64 = real.values().map(|c| c.requests).sum();
    let rate = total / pace::PROBE.as_secs_f64();
    if rate <= 0.0 {
        bail!(
            "--interval auto: {service} got no requests in a {:?} probe of {}; give --interval (e.g. 30s)",
            pace::PROBE,
            metrics.describe()
        );
    }
    let stable = from.map(ToString::to_string).or_else(|| {
        real.iter()
            .max_by(|a, b| a.1.requests.total_cmp(&b.1.requests))
            .map(|(v, _)| v.clone())
    });
    let base = stable.map(|v| delta.version(&v)).unwrap_or_default();
    // Bakes are sized for the rule's own test at its confidence.
    let demand = pace::Demand::for_thresholds(&d.thresholds(), (base.requests, base.errors));
    Ok(Pace::new(rate, demand))
}

/// Prints the `--interval auto` plan: the rate and what the test needs,
/// each step's first bake, and a warning per step that cannot reach
/// significance within the progress deadline.
fn announce_pace(pace: &Pace, plan: &Plan, reporter: &Reporter) {
    let d = pace.demand();
    reporter.line(&format!(
        "--interval auto: {:.1} requests/s over {}; {} needs enough requests per window to detect {:.2}% errors against {:.2}% at {}% confidence ({}% power, at least --min-requests {})",
        pace.rate(),
        humantime::format_duration(pace::PROBE),
        plan.to,
        d.target_err * 100.0,
        d.base_err * 100.0,
        d.confidence * 100.0,
        d.power * 100.0,
        d.min_requests
    ));
    let mut probed = false;
    for b in pace.schedule(plan) {
        if b.share.is_none() && std::mem::replace(&mut probed, true) {
            reporter.line(&format!(
                "--interval auto: step {}/{} (match): sized from the share measured on the match windows before it",
                b.step + 1,
                plan.step_count()
            ));
        } else {
            reporter.line(&format!("--interval auto: {}", pace.describe(plan, &b)));
        }
    }
    for w in pace.warnings(plan) {
        reporter.warn(&w);
    }
}
