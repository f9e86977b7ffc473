//! One file per subcommand. This is where raw arguments become validated
//! domain types, and the only place (with `main`) that uses `anyhow` context.

pub mod apply;

use crate::Outcome;
use crate::cli::{Cli, Command};

/// Dispatches a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let Cli { global, command } = cli;
    let _ = &global;
    match command {
        Command::Completions(args) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut cmd, "meshctl", &mut std::io::stdout());
            Ok(Outcome::Success)
        }
        other => anyhow::bail!("{other:?} is not implemented yet"),
    }
}
