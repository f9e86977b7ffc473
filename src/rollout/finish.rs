//! Ending a rollout now, from any process: `meshctl promote` (the new
//! version takes 100%) and `meshctl rollback` (the stable version takes 100%
//! again) in one compare-and-swap write that also removes a mirror or match
//! route, retried on concurrent writes. A running driver notices the write
//! and exits 0 or 3; after a crash this finishes what it left.

use std::time::SystemTime;

use super::routes::{self, RouteError};
use super::state::{Ending, Phase, RolloutState, StateError};
use super::strategy::Stage;
use super::time::Timestamp;
use crate::target::{EventType, Target, TargetError};

/// Writes tried before giving up on a rollout that keeps changing.
const ATTEMPTS: usize = 10;

/// The rollout could not be ended.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    /// The VirtualService could not be read.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// Its rollout state is missing or unreadable.
    #[error(transparent)]
    State(#[from] StateError),
    /// The routes cannot carry the final weights.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// `promote` after a rollback.
    #[error(
        "the rollout of {service:?} was already rolled back ({reason}); start a new one with `meshctl rollout start {service} --to {to}`"
    )]
    RolledBack {
        /// Service.
        service: String,
        /// The recorded reason.
        reason: String,
        /// The version it rolled out.
        to: String,
    },
    /// The write failed.
    #[error("writing the VirtualService of {service:?}")]
    Write {
        /// Service.
        service: String,
        /// Why.
        #[source]
        source: TargetError,
    },
    /// Every attempt met a concurrent write.
    #[error("the rollout of {service:?} kept changing under `meshctl {verb}`; try again")]
    Contended {
        /// Service.
        service: String,
        /// `promote` or `rollback`.
        verb: &'static str,
    },
}

/// A rollout ended by [`finish_now`].
#[derive(Clone, Debug)]
pub struct Finished {
    /// The state now recorded.
    pub state: RolloutState,
    /// It had already ended this way; nothing was written.
    pub already: bool,
}

/// Ends the rollout of `service` as `ending` (`Promoted` or `RolledBack`),
/// naming `holder` in the recorded reason, retrying on concurrent writes.
pub async fn finish_now<T: Target>(
    target: &T,
    service: &str,
    ending: Ending,
    holder: &str,
) -> Result<Finished, FinishError> {
    let promote = ending == Ending::Promoted;
    let verb = if promote { "promote" } else { "rollback" };
    for _ in 0..ATTEMPTS {
        let mut vs = target.virtual_service(service).await?;
        let mut s = RolloutState::read(&vs)?;
        match (s.phase, ending) {
            (Phase::Promoted, Ending::Promoted) | (Phase::RolledBack, Ending::RolledBack) => {
                return Ok(Finished {
                    state: s,
                    already: true,
                });
            }
            (Phase::RolledBack, Ending::Promoted) => {
                return Err(FinishError::RolledBack {
                    service: service.to_owned(),
                    reason: s
                        .reason
                        .clone()
                        .unwrap_or_else(|| "no reason recorded".to_owned()),
                    to: s.to.clone(),
                });
            }
            _ => {}
        }
        let (win, lose) = if promote {
            (&s.to, &s.from)
        } else {
            (&s.from, &s.to)
        };
        s.weights = [(win.clone(), 100), (lose.clone(), 0)].into();
        s.phase = if promote {
            Phase::Promoted
        } else {
            Phase::RolledBack
        };
        s.ending = Some(ending);
        s.reason = Some(format!(
            "{} by `meshctl {verb}` ({holder}) at {}",
            if promote { "promoted" } else { "rolled back" },
            s.weights_text()
        ));
        s.held = None;
        s.driver = None;
        // The final object carries weights only: no mirror, no match route.
        s.stage = Stage::Weighted;
        s.updated = Timestamp::from_system(SystemTime::now());
        routes::apply_state(&mut vs, &s)?;
        s.write(&mut vs);
        match target.replace_virtual_service(&vs).await {
            Ok(_) => {
                let (kind, reason) = if promote {
                    (EventType::Normal, "Promoted")
                } else {
                    (EventType::Warning, "RolledBack")
                };
                if let Err(e) = target
                    .record_event(service, kind, reason, s.reason.as_deref().unwrap_or(""))
                    .await
                {
                    tracing::warn!("recording event: {e}");
                }
                return Ok(Finished {
                    state: s,
                    already: false,
                });
            }
            Err(TargetError::Conflict { .. }) => continue,
            Err(source) => {
                return Err(FinishError::Write {
                    service: service.to_owned(),
                    source,
                });
            }
        }
    }
    Err(FinishError::Contended {
        service: service.to_owned(),
        verb,
    })
}
