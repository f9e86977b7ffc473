//! `meshctl promote [SERVICE]`: the new version takes 100% now, from any
//! process (a running driver notices and exits 0), or after a crash.

use anyhow::bail;

use crate::Outcome;
use crate::cli::{GlobalArgs, ServiceArg};
use crate::rollout::state::Ending;

use super::rollback::finish_now;
use super::rollout::open_target;

/// `meshctl promote`.
pub async fn run(global: &GlobalArgs, args: ServiceArg) -> anyhow::Result<Outcome> {
    let target = open_target(global, None).await?;
    match finish_now(global, &target, args.service, Ending::Promoted).await? {
        Ending::Promoted => Ok(Outcome::Success),
        other => bail!("unexpected ending {other:?}"),
    }
}
