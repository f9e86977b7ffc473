//! The `meshctl` binary: parse, run, map the outcome to the exit-code contract.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = meshctl::cli::Cli::parse();
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
