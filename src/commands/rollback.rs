//! `meshctl rollback [SERVICE]`: the stable version takes 100% again in one
//! write, from any process (a running driver notices and exits 3), or after
//! the driver was killed. The same write removes a mirror or match route
//! of a `mirror`, `ab` or `bluegreen` rollout (see [`crate::rollout::finish`]).

use crate::Outcome;
use crate::cli::{GlobalArgs, ServiceArg};
use crate::rollout::state::Ending;

/// `meshctl rollback`.
pub async fn run(global: &GlobalArgs, args: ServiceArg) -> anyhow::Result<Outcome> {
    super::finish(global, args, Ending::RolledBack).await
}
