//! `meshctl rollout start` and `meshctl rollout status`: flags → a validated
//! [`Plan`], then the driver on the chosen target and metrics source.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::watch;

use crate::Outcome;
use crate::cli::{
    GlobalArgs, OnInterrupt, OutputFormat, RolloutStartArgs, RolloutStatusArgs, StrategyKind,
};
use crate::metrics::prometheus::Prometheus;
use crate::metrics::proxy::ProxyMetrics;
use crate::metrics::{GrpcCodes, MetricsError, MetricsSource, Snapshot};
use crate::output::{Format, Reporter, Term, report, table};
use crate::rollout::analysis::Thresholds;
use crate::rollout::engine::{Driver, DriverOptions, Finish};
use crate::rollout::machine::Plan;
use crate::rollout::pace::{self, Pace};
use crate::rollout::routes;
use crate::rollout::state::{Ending, Phase, RolloutState};
use crate::rollout::sticky::{self, CookieName};
use crate::rollout::strategy::{Match, Preview, Strategy};
use crate::rollout::webhook::{Hook, WebhookConfig, Webhooks};
use crate::spec::{self, RolloutDefaults};
use crate::target::Target;
use crate::target::any::AnyTarget;
use crate::target::kube::KubeTarget;
use crate::target::local::LocalTarget;
use crate::traffic::{Version, Weight};

/// meshproxy's default admin metrics endpoint.
pub const DEFAULT_METRICS_URL: &str = "http://127.0.0.1:15000/metrics";

/// Where `--target` points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetChoice {
    /// `local:DIR`.
    Local(PathBuf),
    /// `kube`.
    Kube,
}

/// Parses `--target`.
pub fn parse_target(s: &str) -> anyhow::Result<TargetChoice> {
    if s == "kube" {
        return Ok(TargetChoice::Kube);
    }
    match s.strip_prefix("local:") {
        Some(dir) if !dir.is_empty() => Ok(TargetChoice::Local(PathBuf::from(dir))),
        _ => bail!("--target {s:?} is not valid: use `kube` or `local:DIR` (e.g. local:./mesh)"),
    }
}

/// Opens the target `--target` names (`kube`: the kubeconfig's cluster,
/// with `--context`, `-n`, `--kubeconfig`; the Istio API version is
/// discovered, or pinned by `istio_api`).
pub async fn open_target(
    global: &GlobalArgs,
    istio_api: Option<meshproxy::istio::ApiVersion>,
) -> anyhow::Result<AnyTarget> {
    open_target_with(&global.target, &global.kube, istio_api).await
}

/// [`open_target`] with explicit `--target` and connection options.
pub async fn open_target_with(
    target: &str,
    kube: &crate::cli::KubeArgs,
    istio_api: Option<meshproxy::istio::ApiVersion>,
) -> anyhow::Result<AnyTarget> {
    Ok(match parse_target(target)? {
        TargetChoice::Local(dir) => AnyTarget::Local(LocalTarget::new(dir)),
        TargetChoice::Kube => {
            AnyTarget::Kube(Box::new(KubeTarget::connect(kube, istio_api).await?))
        }
    })
}

/// The reporter format from the global flags.
pub fn format(global: &GlobalArgs) -> Format {
    if global.quiet {
        Format::Quiet
    } else if global.output == OutputFormat::Json {
        Format::Json
    } else {
        Format::Text
    }
}

/// Either metrics source, chosen at run time.
#[derive(Clone, Debug)]
pub enum AnySource {
    /// A `/metrics` endpoint.
    Proxy(ProxyMetrics),
    /// A Prometheus server.
    Prometheus(Prometheus),
}

impl MetricsSource for AnySource {
    fn describe(&self) -> String {
        match self {
            Self::Proxy(p) => p.describe(),
            Self::Prometheus(p) => format!("prometheus {}", p.describe()),
        }
    }

    async fn scrape(&self, service: &str) -> Result<Snapshot, MetricsError> {
        match self {
            Self::Proxy(p) => p.scrape(service).await,
            Self::Prometheus(p) => p.scrape(service).await,
        }
    }
}

/// This process's identity as lease holder.
pub fn holder() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("meshctl-{}@{host}", std::process::id())
}

/// Counts SIGINT/SIGTERM; a second signal exits at once (130).
pub fn interrupts() -> anyhow::Result<watch::Receiver<u32>> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = watch::channel(0u32);
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            n += 1;
            if n > 1 {
                eprintln!("second signal: exiting now");
                std::process::exit(130);
            }
            let _ = tx.send(n);
        }
    });
    Ok(rx)
}

/// The exit code of a finished driver.
pub fn outcome(f: Finish) -> Outcome {
    match f {
        Finish::Ended(Ending::Promoted) => Outcome::Success,
        Finish::Ended(Ending::RolledBack) => Outcome::RolledBack,
        Finish::Ended(Ending::TimedOut) => Outcome::TimedOut,
        Finish::Paused => Outcome::Paused,
    }
}

/// Everything `rollout start` needs besides the target.
pub struct StartRequest {
    /// Service.
    pub service: String,
    /// New version.
    pub to: Version,
    /// Stable version (default: the one taking most traffic).
    pub from: Option<Version>,
    /// Plan without from/to.
    pub steps: Vec<Weight>,
    /// Interval.
    pub interval: Duration,
    /// Threshold.
    pub threshold: u32,
    /// Step timeout.
    pub step_timeout: Duration,
    /// Manual promotion.
    pub manual_promotion: bool,
    /// Thresholds.
    pub thresholds: Thresholds,
    /// Interrupt behaviour.
    pub on_interrupt: OnInterrupt,
    /// Exit 5 when paused.
    pub no_wait_on_pause: bool,
    /// Webhooks.
    pub webhooks: Webhooks,
    /// Canary (default) or `ab`.
    pub strategy: Strategy,
    /// `--interval auto`: each window sized from the traffic the new
    /// version gets in its step (`interval` is then the first window's).
    pub pace: Option<Pace>,
    /// Sticky sessions (`--sticky-cookie` or `stickyCookie`); `None` keeps
    /// the cookie of sticky routes already on the VirtualService, if any.
    pub sticky_cookie: Option<CookieName>,
}

/// Runs a rollout on any target with any metrics source, reporting to `reporter`.
pub async fn drive<T: Target, M: MetricsSource>(
    target: &T,
    metrics: &M,
    reporter: &Reporter,
    req: StartRequest,
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
            let s = routes::stable_subset(&vs).with_context(|| {
                format!(
                    "VirtualService {:?} routes to no subset: pass --from VERSION",
                    req.service
                )
            })?;
            s.parse()
                .with_context(|| format!("subset {s:?} of VirtualService {:?}", req.service))?
        }
    };
    let mut plan = Plan {
        from,
        to: req.to,
        steps: req.steps,
        interval: req.interval,
        threshold: req.threshold,
        step_timeout: req.step_timeout,
        manual_promotion: req.manual_promotion,
        thresholds: req.thresholds,
        metrics: metrics.describe(),
        strategy: req.strategy,
        sticky_cookie: req.sticky_cookie.or_else(|| sticky::cookie_of(&vs)),
    };
    if let Some(p) = &req.pace {
        plan.interval = p
            .next(&plan, 0, pace::Window::Fresh, Duration::ZERO)
            .interval;
        announce_pace(p, &plan, reporter);
    }
    let options = DriverOptions {
        service: req.service.clone(),
        holder: holder(),
        on_interrupt: req.on_interrupt,
        no_wait_on_pause: req.no_wait_on_pause,
        webhooks: req.webhooks,
        poll: plan.interval.min(Duration::from_millis(500)),
        pace: req.pace,
    };
    let driver = Driver::new(target, metrics, reporter, options, interrupts);
    let (finish, state) = driver.run(plan).await?;
    reporter.finish();
    Ok((outcome(finish), state))
}

/// Rollout settings: `meshctl.yaml` (when given with `-f` or present in
/// the working directory) overridden by flags.
pub fn settings(
    global: &GlobalArgs,
    args: &RolloutStartArgs,
) -> anyhow::Result<(
    String,
    RolloutDefaults,
    Option<spec::MetricsSource>,
    Webhooks,
)> {
    let has_file = args.spec.file.is_some() || std::path::Path::new(spec::DEFAULT_FILE).is_file();
    let (service, mut defaults, metrics, hooks) = if has_file {
        let s = spec::resolve(&args.spec, global.kube.namespace.as_deref())?;
        (Some(s.service), s.rollout, s.metrics, s.webhooks)
    } else {
        (
            args.spec.service.clone(),
            RolloutDefaults::default(),
            None,
            Vec::new(),
        )
    };
    defaults.apply_flags(args)?;
    let metrics = spec::metrics_flag(&args.analysis)?.or(metrics);
    let service = service
        .context("rollout start needs a SERVICE: `meshctl rollout start SERVICE --to v2`")?;
    let webhooks = Webhooks {
        hooks: hooks
            .into_iter()
            .map(|h| WebhookConfig {
                name: h.name,
                hook: match h.kind {
                    spec::WebhookType::PreRollout => Hook::PreRollout,
                    spec::WebhookType::Rollout => Hook::Rollout,
                    spec::WebhookType::PostRollout => Hook::PostRollout,
                    spec::WebhookType::Rollback => Hook::Rollback,
                },
                url: h.url.to_string(),
                timeout: h.timeout,
            })
            .collect(),
    };
    Ok((service, defaults, metrics, webhooks))
}

/// The metrics source (default: meshproxy's admin endpoint on loopback),
/// counting a request as failed on 5xx or one of the gRPC statuses `codes`.
pub fn source(
    m: Option<&spec::MetricsSource>,
    timeout: Duration,
    codes: &GrpcCodes,
) -> anyhow::Result<AnySource> {
    let proxy = |url: &str| -> anyhow::Result<AnySource> {
        Ok(AnySource::Proxy(
            ProxyMetrics::new(url, timeout)?.with_grpc_codes(codes.clone()),
        ))
    };
    match m {
        Some(spec::MetricsSource::Prometheus(u)) => Ok(AnySource::Prometheus(
            Prometheus::new(u.as_str(), timeout)?.with_grpc_codes(codes.clone()),
        )),
        Some(spec::MetricsSource::Proxy(u)) => proxy(u.as_str()),
        None => proxy(DEFAULT_METRICS_URL),
    }
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
    let demand = pace::Demand::new(
        d.success_rate,
        (base.requests, base.errors),
        Thresholds::default().confidence,
        d.min_requests,
    );
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

/// The strategy from `--strategy`, `--match`, `--iterations` and
/// `--mirror-percent`.
fn strategy(args: &RolloutStartArgs) -> anyhow::Result<Strategy> {
    let kind = args.strategy;
    let name = match kind {
        StrategyKind::Canary => "canary",
        StrategyKind::Ab => "ab",
        StrategyKind::Mirror => "mirror",
        StrategyKind::Bluegreen => "bluegreen",
    };
    let rule = args
        .match_rule
        .as_deref()
        .map(str::parse::<Match>)
        .transpose()?;
    let percent = args
        .mirror_percent
        .as_deref()
        .map(crate::rollout::strategy::mirror_percent)
        .transpose()?;
    if rule.is_some() && matches!(kind, StrategyKind::Canary | StrategyKind::Mirror) {
        bail!(
            "--match only applies to --strategy ab or bluegreen: add `--strategy ab` (or `--strategy bluegreen`) or drop --match"
        );
    }
    if percent.is_some() && !matches!(kind, StrategyKind::Mirror | StrategyKind::Bluegreen) {
        bail!(
            "--mirror-percent only applies to --strategy mirror or bluegreen: add `--strategy mirror` or drop --mirror-percent"
        );
    }
    if percent.is_some() && rule.is_some() {
        bail!(
            "--mirror-percent and --match both choose the bluegreen preview: keep --match to preview on matched requests, or --mirror-percent to preview on mirrored copies"
        );
    }
    if kind == StrategyKind::Bluegreen && !args.steps.is_empty() {
        bail!(
            "--steps does not apply to --strategy bluegreen (it switches 100% in one write): drop --steps, or use --strategy mirror for mirrored copies followed by weighted steps"
        );
    }
    if kind != StrategyKind::Canary && args.iterations == 0 {
        bail!(
            "--iterations must be at least 1 for --strategy {name} (analyses before the weights move)"
        );
    }
    let iterations = args.iterations;
    let percent = percent.unwrap_or(100);
    Ok(match (kind, rule) {
        (StrategyKind::Canary, _) => Strategy::Canary,
        (StrategyKind::Ab, None) => bail!(
            "--strategy ab needs --match: e.g. `--match header:x-canary=true` or `--match cookie:group=beta`"
        ),
        (StrategyKind::Ab, Some(rule)) => Strategy::Ab { rule, iterations },
        (StrategyKind::Mirror, _) => Strategy::Mirror {
            percent,
            iterations,
        },
        (StrategyKind::Bluegreen, Some(rule)) => Strategy::BlueGreen {
            preview: Preview::Match(rule),
            iterations,
        },
        (StrategyKind::Bluegreen, None) => Strategy::BlueGreen {
            preview: Preview::Mirror { percent },
            iterations,
        },
    })
}

/// `meshctl rollout start`.
pub async fn start(global: &GlobalArgs, mut args: RolloutStartArgs) -> anyhow::Result<Outcome> {
    let strategy = strategy(&args)?;
    let sticky_cookie = sticky_cookie(global, &args.spec)?;
    let auto_flag = args.analysis.interval.as_deref() == Some("auto");
    // A fixed --interval overrides `interval: auto` in meshctl.yaml.
    let fixed_flag = args.analysis.interval.is_some() && !auto_flag;
    if auto_flag {
        args.analysis.interval = None;
    }
    let istio_api = args
        .spec
        .istio_api
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--istio-api: {e}"))?;
    let target = open_target(global, istio_api).await?;
    let (service, d, metrics, webhooks) = settings(global, &args)?;
    let to: Version = args.to.parse().map_err(|e| anyhow::anyhow!("--to: {e}"))?;
    let from = args
        .from
        .as_deref()
        .map(|f| {
            f.parse::<Version>()
                .map_err(|e| anyhow::anyhow!("--from: {e}"))
        })
        .transpose()?;
    let metrics = source(
        metrics.as_ref(),
        d.interval
            .clamp(Duration::from_secs(1), Duration::from_secs(10)),
        &d.grpc_error_codes,
    )?;
    let reporter = Reporter::new(format(global), Term::detect());
    let auto = auto_flag || (!fixed_flag && d.auto_interval);
    let pace = if auto {
        Some(auto_pace(&metrics, &service, from.as_ref(), &d).await?)
    } else {
        None
    };
    let req = StartRequest {
        thresholds: d.thresholds(),
        service,
        to,
        from,
        steps: d.steps,
        interval: d.interval,
        threshold: d.threshold,
        step_timeout: d.timeout,
        manual_promotion: d.manual_promotion,
        on_interrupt: d.on_interrupt,
        no_wait_on_pause: args.no_wait_on_pause,
        webhooks,
        strategy,
        pace,
        sticky_cookie,
    };
    let service = req.service.clone();
    let (outcome, state) = drive(&target, &metrics, &reporter, req, interrupts()?).await?;
    if format(global) == Format::Text {
        reporter.line(&table::summary(&state));
    }
    if let Some(path) = &args.summary {
        std::fs::write(path, report::markdown(&service, &state))
            .with_context(|| format!("--summary: writing {}", path.display()))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit(&service, &state))
            .with_context(|| format!("--junit: writing {}", path.display()))?;
    }
    Ok(outcome)
}

/// Picks the service: the argument, else the only active rollout.
pub async fn resolve_service<T: Target>(
    target: &T,
    service: Option<String>,
) -> anyhow::Result<String> {
    if let Some(s) = service {
        return Ok(s);
    }
    let all = target.rollouts().await?;
    let states: Vec<(String, Option<Phase>)> = all
        .iter()
        .map(|vs| {
            (
                vs.metadata.name.clone(),
                RolloutState::read(vs).ok().map(|s| s.phase),
            )
        })
        .collect();
    let active: Vec<&String> = states
        .iter()
        .filter(|(_, p)| p.is_some_and(|p| !p.is_finished()))
        .map(|(n, _)| n)
        .collect();
    match (active.as_slice(), states.as_slice()) {
        ([one], _) => Ok((*one).clone()),
        ([], [(one, _)]) => Ok(one.clone()),
        ([], []) => bail!(
            "no rollouts recorded in {}: give SERVICE",
            target.describe()
        ),
        _ => {
            let names: Vec<&str> = states.iter().map(|(n, _)| n.as_str()).collect();
            bail!(
                "more than one rollout in {}: give SERVICE, one of {}",
                target.describe(),
                names.join(", ")
            )
        }
    }
}

/// `meshctl rollout status`.
pub async fn status(global: &GlobalArgs, args: RolloutStatusArgs) -> anyhow::Result<Outcome> {
    let target = open_target(global, None).await?;
    let service = resolve_service(&target, args.service).await?;
    let json = global.output == OutputFormat::Json;
    let mut last: Option<String> = None;
    loop {
        let vs = target.virtual_service(&service).await?;
        let state = RolloutState::read(&vs)?;
        let raw = serde_json::to_string(&state)?;
        if last.as_deref() != Some(raw.as_str()) {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "service": service, "state": state })
                );
            } else if !global.quiet {
                println!("{}", table::status(&service, &state));
                if !state.history.is_empty() {
                    println!("{}", table::summary(&state));
                }
            }
            last = Some(raw);
        }
        if !args.watch || state.phase.is_finished() {
            return Ok(match (state.phase, state.ending) {
                (Phase::RolledBack, Some(Ending::TimedOut)) => Outcome::TimedOut,
                (Phase::RolledBack, _) => Outcome::RolledBack,
                (Phase::Paused, _) => Outcome::Paused,
                _ => Outcome::Success,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The sticky cookie of `rollout start`: `--sticky-cookie`, else the spec
/// file's `stickyCookie` when there is a spec file.
fn sticky_cookie(
    global: &GlobalArgs,
    args: &crate::cli::SpecArgs,
) -> anyhow::Result<Option<CookieName>> {
    let has_file = args.file.is_some() || std::path::Path::new(spec::DEFAULT_FILE).is_file();
    if has_file {
        return Ok(spec::resolve(args, global.kube.namespace.as_deref())?.sticky_cookie);
    }
    Ok(spec::sticky_flag(args)?)
}
