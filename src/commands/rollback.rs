//! `meshctl rollback [SERVICE]`: the stable version takes 100% again in one
//! write, from any process (a running driver notices and exits 3), or after
//! the driver was killed. The same write removes a mirror or match route
//! of a `mirror`, `ab` or `bluegreen` rollout (also for `meshctl promote`).

use std::time::SystemTime;

use anyhow::{Context, bail};

use crate::Outcome;
use crate::cli::{GlobalArgs, OutputFormat, ServiceArg};
use crate::rollout::routes;
use crate::rollout::state::{Ending, Phase, RolloutState, Timestamp};
use crate::target::{EventType, Target, TargetError};

use super::rollout::{open_target, resolve_service};

/// Ends the rollout of `service` as `ending` (Promoted or RolledBack),
/// retrying on concurrent writes. Returns the ending now recorded.
pub async fn finish_now<T: Target>(
    global: &GlobalArgs,
    target: &T,
    service: Option<String>,
    ending: Ending,
) -> anyhow::Result<Ending> {
    let service = resolve_service(target, service).await?;
    let verb = if ending == Ending::Promoted {
        "promote"
    } else {
        "rollback"
    };
    for _ in 0..10 {
        let mut vs = target.virtual_service(&service).await?;
        let mut s = RolloutState::read(&vs)?;
        match (s.phase, ending) {
            (Phase::Promoted, Ending::Promoted) | (Phase::RolledBack, Ending::RolledBack) => {
                report(global, &service, &s, "already");
                return Ok(ending);
            }
            (Phase::RolledBack, Ending::Promoted) => bail!(
                "the rollout of {service:?} was already rolled back ({}); start a new one with `meshctl rollout start {service} --to {}`",
                s.reason.as_deref().unwrap_or("no reason recorded"),
                s.to
            ),
            _ => {}
        }
        let (win, lose) = if ending == Ending::Promoted {
            (&s.to, &s.from)
        } else {
            (&s.from, &s.to)
        };
        s.weights = [(win.clone(), 100), (lose.clone(), 0)].into();
        s.phase = if ending == Ending::Promoted {
            Phase::Promoted
        } else {
            Phase::RolledBack
        };
        s.ending = Some(ending);
        s.reason = Some(format!(
            "{} by `meshctl {verb}` ({}) at {}",
            if ending == Ending::Promoted {
                "promoted"
            } else {
                "rolled back"
            },
            super::rollout::holder(),
            s.weights_text()
        ));
        s.held = None;
        s.driver = None;
        // The final object carries weights only: no mirror, no match route.
        s.stage = crate::rollout::strategy::Stage::Weighted;
        s.updated = Timestamp::from_system(SystemTime::now());
        routes::apply_state(&mut vs, &s)?;
        s.write(&mut vs);
        match target.replace_virtual_service(&vs).await {
            Ok(_) => {
                let kind = if ending == Ending::Promoted {
                    EventType::Normal
                } else {
                    EventType::Warning
                };
                let reason = if ending == Ending::Promoted {
                    "Promoted"
                } else {
                    "RolledBack"
                };
                if let Err(e) = target
                    .record_event(&service, kind, reason, s.reason.as_deref().unwrap_or(""))
                    .await
                {
                    tracing::warn!("recording event: {e}");
                }
                report(global, &service, &s, "");
                return Ok(ending);
            }
            Err(TargetError::Conflict { .. }) => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("writing the VirtualService of {service:?}"));
            }
        }
    }
    bail!("the rollout of {service:?} kept changing under `meshctl {verb}`; try again")
}

fn report(global: &GlobalArgs, service: &str, s: &RolloutState, already: &str) {
    if global.quiet {
        return;
    }
    if global.output == OutputFormat::Json {
        println!(
            "{}",
            serde_json::json!({
                "event": if s.phase == Phase::Promoted { "promoted" } else { "rolled_back" },
                "service": service,
                "weights": s.weights,
                "reason": s.reason,
                "already": !already.is_empty(),
            })
        );
    } else {
        let what = if s.phase == Phase::Promoted {
            "promoted"
        } else {
            "rolled back"
        };
        let sep = if already.is_empty() { "" } else { " " };
        println!("{service}: {already}{sep}{what}: {}", s.weights_text());
    }
}

/// `meshctl rollback`.
pub async fn run(global: &GlobalArgs, args: ServiceArg) -> anyhow::Result<Outcome> {
    let target = open_target(global, None).await?;
    finish_now(global, &target, args.service, Ending::RolledBack).await?;
    Ok(Outcome::Success)
}
