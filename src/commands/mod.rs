//! One file per subcommand. This is where raw arguments become validated
//! domain types, and the only place (with `main`) that uses `anyhow` context.

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
use crate::cli::{Cli, Command, RolloutCommand};

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
