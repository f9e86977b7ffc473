//! The `meshproxy` binary: parse flags, set up logging and the runtime, run.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc's malloc: a proxied gRPC call allocates and
/// frees tens of blocks (HPACK header maps, stream state, a task per stream
/// on each side); with glibc these cost 13–15% of a worker's CPU
/// (`malloc_consolidate`, `unlink_chunk` for the multi-KB per-stream
/// futures). Only the binary: the library (meshctl's in-process demo proxy)
/// keeps its host's allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = meshproxy::Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let settings = match args.into_settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("meshproxy: {e}");
            return ExitCode::from(2);
        }
    };
    // The proxy's workers run their own event loops (see `Settings::workers`);
    // this one only runs the admin listener, the config watcher and signals.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meshproxy: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(meshproxy::run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meshproxy: {:#}", anyhow_like(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error with its causes, `: `-separated.
fn anyhow_like(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let c_s = c.to_string();
        if !s.contains(&c_s) {
            s.push_str(": ");
            s.push_str(&c_s);
        }
        cur = c.source();
    }
    s
}
