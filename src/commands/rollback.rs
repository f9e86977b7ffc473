//! `meshctl rollback [SERVICE]`: the stable version takes 100% again in one
//! write, from any process (a running driver notices and exits 3), or after
//! the driver was killed. The same write removes a mirror or match route
//! of a `mirror`, `ab` or `bluegreen` rollout (see [`crate::rollout::finish`]).

use crate::Outcome;
use crate::cli::{GlobalArgs, ServiceArg};
use crate::context::{self, open_target, resolve_service};
use crate::output;
use crate::rollout::finish::finish_now;
use crate::rollout::state::Ending;

/// `meshctl rollback`.
pub async fn run(global: &GlobalArgs, args: ServiceArg) -> anyhow::Result<Outcome> {
    let target = open_target(global, None).await?;
    let service = resolve_service(&target, args.service).await?;
    let done = finish_now(&target, &service, Ending::RolledBack, &context::holder()).await?;
    output::finished(
        &mut std::io::stdout().lock(),
        context::format(global),
        &service,
        &done,
    )?;
    Ok(Outcome::Success)
}
