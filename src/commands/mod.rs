//! One file per subcommand. This is where raw arguments become validated
//! domain types, and the only place (with `main`) that uses `anyhow` context.

mod completions;
mod render;

use crate::Outcome;
use crate::cli::{Cli, Command};

/// Dispatches a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let Cli { global, command } = cli;
    match command {
        Command::Render(args) => render::run(&global, &args),
        Command::Completions(args) => completions::completions(&args),
        Command::Man => completions::man(),
        other => anyhow::bail!("{other:?} is not implemented yet"),
    }
}
