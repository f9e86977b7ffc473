//! `meshctl promote [SERVICE]`: the new version takes 100% now, from any
//! process (a running driver notices and exits 0), or after a crash.

use crate::Outcome;
use crate::cli::{GlobalArgs, ServiceArg};
use crate::rollout::state::Ending;

/// `meshctl promote`.
pub async fn run(global: &GlobalArgs, args: ServiceArg) -> anyhow::Result<Outcome> {
    super::finish(global, args, Ending::Promoted).await
}
