//! `meshctl promote [SERVICE]`: the new version takes 100% now, from any
//! process (a running driver notices and exits 0), or after a crash.

use crate::Outcome;
use crate::cli::{GlobalArgs, ServiceArg};
use crate::context::{self, open_target, resolve_service};
use crate::output;
use crate::rollout::finish::finish_now;
use crate::rollout::state::Ending;

/// `meshctl promote`.
pub async fn run(global: &GlobalArgs, args: ServiceArg) -> anyhow::Result<Outcome> {
    let target = open_target(global, None).await?;
    let service = resolve_service(&target, args.service).await?;
    let done = finish_now(&target, &service, Ending::Promoted, &context::holder()).await?;
    output::finished(
        &mut std::io::stdout().lock(),
        context::format(global),
        &service,
        &done,
    )?;
    Ok(Outcome::Success)
}
