//! One file per subcommand, each thin: it resolves its inputs once (through
//! `spec` and `context`), calls the library, and reports. What several
//! commands share lives in modules named for it: `context` (target, output
//! format, holder identity, service), `metrics::any` (the metrics source),
//! `signal`, `drive` (one rollout) and `rollout::finish` (promote and
//! rollback). With `context` and `drive`, the only place (besides `main`)
//! that uses `anyhow` context.

pub mod analyze;
pub mod apply;
mod certs;
mod completions;
pub mod demo;
pub mod diff;
pub mod doctor;
pub mod promote;
mod render;
pub mod rollback;
pub mod rollout;

use crate::Outcome;
use crate::cli::{Cli, Command, GlobalArgs, RolloutCommand, ServiceArg};
use crate::context::{self, open_target, resolve_service};
use crate::output;
use crate::rollout::finish::finish_now;
use crate::rollout::state::Ending;

/// Dispatches a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let Cli { global, command } = cli;
    match command {
        Command::Rollout(RolloutCommand::Start(args)) => rollout::start(&global, args).await,
        Command::Rollout(RolloutCommand::Status(args)) => rollout::status(&global, args).await,
        Command::Promote(args) => promote::run(&global, args).await,
        Command::Rollback(args) => rollback::run(&global, args).await,
        Command::Demo(args) => demo::run(&global, args).await,
        Command::Analyze(args) => analyze::run(&global, args).await,
        Command::Render(args) => render::run(&global, &args),
        Command::Apply(args) => apply::run(&global, args).await,
        Command::Diff(args) => diff::run(&global, &args).await,
        Command::Doctor(args) => doctor::run(&global, &args).await,
        Command::Completions(args) => completions::completions(&args),
        Command::Man => completions::man(),
        Command::Certs(args) => certs::run(args, &global),
    }
}

/// `promote` and `rollback`: ends the rollout of the service (the argument,
/// else the only active rollout) as `ending` now, and reports it.
async fn finish(global: &GlobalArgs, args: ServiceArg, ending: Ending) -> anyhow::Result<Outcome> {
    let target = open_target(global, None).await?;
    let service = resolve_service(&target, args.service).await?;
    let done = finish_now(&target, &service, ending, &context::holder()).await?;
    output::finished(
        &mut std::io::stdout().lock(),
        context::format(global),
        &service,
        &done,
    )?;
    Ok(Outcome::Success)
}
