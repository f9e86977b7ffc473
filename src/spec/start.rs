//! `rollout start`'s inputs resolved once into typed [`StartSettings`]:
//! the spec (file and flags, when there is a file), the flag overlays on
//! the rollout defaults, the strategy with `--match` / `--mirror-percent` /
//! `--iterations`, the versions `--to` / `--from`, `--interval` (including
//! `auto`), the sticky cookie, the metrics source and the webhooks. Every
//! error names the flag or field and the fix.

use meshproxy::istio::ApiVersion;

use super::flags::{RolloutStartArgs, StrategyKind};
use super::{
    RolloutDefaults, SpecError, WebhookType, flag_error, has_file, metrics_flag, resolve,
    sticky_flag,
};
use crate::metrics::any::Endpoint;
use crate::rollout::strategy::{self, Match, Preview, Strategy};
use crate::rollout::webhook::{Hook, WebhookConfig, Webhooks};
use crate::routing::sticky::CookieName;
use crate::traffic::Version;

/// Everything `meshctl rollout start` was asked, validated.
#[derive(Clone, Debug)]
pub struct StartSettings {
    /// The service (`SERVICE` or the file's `service`).
    pub service: String,
    /// `--to`.
    pub to: Version,
    /// `--from` (default: the version taking most traffic, read later from
    /// the VirtualService).
    pub from: Option<Version>,
    /// Steps, interval, threshold, deadline, thresholds, interrupt
    /// behaviour: the file's `rollout` with the flags over it.
    /// `auto_interval` says whether windows are sized from the traffic.
    pub rollout: RolloutDefaults,
    /// `--strategy` with its `--match`, `--mirror-percent`, `--iterations`.
    pub strategy: Strategy,
    /// `--sticky-cookie`, else the file's `stickyCookie`.
    pub sticky_cookie: Option<CookieName>,
    /// `--metrics` / `--prometheus`, else the file's `metrics`, else
    /// meshproxy's admin endpoint on loopback.
    pub metrics: Endpoint,
    /// The file's webhooks.
    pub webhooks: Webhooks,
    /// `--istio-api`, when given: pins the Istio API version of the target.
    pub istio_api: Option<ApiVersion>,
    /// `--no-wait-on-pause`: exit 5 when paused instead of waiting.
    pub no_wait_on_pause: bool,
}

/// Resolves `rollout start`'s flags, and `meshctl.yaml` when given with
/// `-f` or present in the working directory (read once); `namespace` is the
/// global `-n`.
pub fn start(args: &RolloutStartArgs, namespace: Option<&str>) -> Result<StartSettings, SpecError> {
    let strategy = strategy(args)?;
    let (service, mut rollout, metrics, hooks, sticky_cookie) =
        if has_file(args.spec.file.as_deref()) {
            let s = resolve(&args.spec, namespace)?;
            (
                Some(s.service),
                s.rollout,
                s.metrics,
                s.webhooks,
                s.sticky_cookie,
            )
        } else {
            (
                args.spec.service.clone(),
                RolloutDefaults::default(),
                None,
                Vec::new(),
                sticky_flag(&args.spec)?,
            )
        };
    let istio_api = args
        .spec
        .istio_api
        .as_deref()
        .map(|v| {
            v.parse::<ApiVersion>()
                .map_err(|e| flag_error("--istio-api", "", e))
        })
        .transpose()?;
    rollout.apply_flags(args)?;
    let metrics = metrics_flag(&args.analysis)?
        .or(metrics)
        .unwrap_or_default();
    let service = service.ok_or_else(|| SpecError::Flag {
        flag: "SERVICE".to_owned(),
        message: "rollout start needs a SERVICE: `meshctl rollout start SERVICE --to v2`"
            .to_owned(),
    })?;
    let version = |flag: &str, v: &str| v.parse::<Version>().map_err(|e| flag_error(flag, "", e));
    let to = version("--to", &args.to)?;
    let from = args
        .from
        .as_deref()
        .map(|f| version("--from", f))
        .transpose()?;
    let webhooks = Webhooks {
        hooks: hooks
            .into_iter()
            .map(|h| WebhookConfig {
                name: h.name,
                hook: match h.kind {
                    WebhookType::PreRollout => Hook::PreRollout,
                    WebhookType::Rollout => Hook::Rollout,
                    WebhookType::PostRollout => Hook::PostRollout,
                    WebhookType::Rollback => Hook::Rollback,
                },
                url: h.url.to_string(),
                timeout: h.timeout,
            })
            .collect(),
    };
    Ok(StartSettings {
        service,
        to,
        from,
        rollout,
        strategy,
        sticky_cookie,
        metrics,
        webhooks,
        istio_api,
        no_wait_on_pause: args.no_wait_on_pause,
    })
}

/// A rule between flags, broken.
fn conflict(flag: &str, message: &str) -> SpecError {
    SpecError::Flag {
        flag: flag.to_owned(),
        message: message.to_owned(),
    }
}

/// The strategy from `--strategy`, `--match`, `--iterations` and
/// `--mirror-percent`.
fn strategy(args: &RolloutStartArgs) -> Result<Strategy, SpecError> {
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
        .map(|m| {
            m.parse::<Match>().map_err(|e| SpecError::Flag {
                flag: "--match".to_owned(),
                message: e.to_string(),
            })
        })
        .transpose()?;
    let percent = args
        .mirror_percent
        .as_deref()
        .map(|p| {
            strategy::mirror_percent(p).map_err(|e| SpecError::Flag {
                flag: "--mirror-percent".to_owned(),
                message: e.to_string(),
            })
        })
        .transpose()?;
    if rule.is_some() && matches!(kind, StrategyKind::Canary | StrategyKind::Mirror) {
        return Err(conflict(
            "--match",
            "--match only applies to --strategy ab or bluegreen: add `--strategy ab` (or `--strategy bluegreen`) or drop --match",
        ));
    }
    if percent.is_some() && !matches!(kind, StrategyKind::Mirror | StrategyKind::Bluegreen) {
        return Err(conflict(
            "--mirror-percent",
            "--mirror-percent only applies to --strategy mirror or bluegreen: add `--strategy mirror` or drop --mirror-percent",
        ));
    }
    if percent.is_some() && rule.is_some() {
        return Err(conflict(
            "--mirror-percent",
            "--mirror-percent and --match both choose the bluegreen preview: keep --match to preview on matched requests, or --mirror-percent to preview on mirrored copies",
        ));
    }
    if kind == StrategyKind::Bluegreen && !args.steps.is_empty() {
        return Err(conflict(
            "--steps",
            "--steps does not apply to --strategy bluegreen (it switches 100% in one write): drop --steps, or use --strategy mirror for mirrored copies followed by weighted steps",
        ));
    }
    if kind != StrategyKind::Canary && args.iterations == 0 {
        return Err(conflict(
            "--iterations",
            &format!(
                "--iterations must be at least 1 for --strategy {name} (analyses before the weights move)"
            ),
        ));
    }
    let iterations = args.iterations;
    let percent = percent.unwrap_or(100);
    Ok(match (kind, rule) {
        (StrategyKind::Canary, _) => Strategy::Canary,
        (StrategyKind::Ab, None) => {
            return Err(conflict(
                "--match",
                "--strategy ab needs --match: e.g. `--match header:x-canary=true` or `--match cookie:group=beta`",
            ));
        }
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
