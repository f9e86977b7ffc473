//! The `meshctl` binary: parse, run, map the outcome to the exit-code
//! contract. With the reporter (`output`), the one place that prints.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match meshctl::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match meshctl::cli::rejected_value(&e) {
            Some(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(meshctl::Outcome::Error.code());
            }
            None => e.exit(),
        },
    };
    meshctl::logging::init(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(meshctl::Outcome::Error.code());
        }
    };
    match runtime.block_on(meshctl::run(cli)) {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(e) if meshctl::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(meshctl::Outcome::Error.code())
        }
    }
}
