//! Log set-up: tracing to stderr, quiet by default so stdout stays clean.

use tracing_subscriber::EnvFilter;

use crate::cli::GlobalArgs;

/// Installs the global tracing subscriber. `RUST_LOG` overrides `-v`/`-q`.
pub fn init(args: &GlobalArgs) {
    let level = if args.quiet {
        "error"
    } else {
        match args.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    // kube-client logs request failures at ERROR itself; meshctl reports them
    // (with server, context and fix), so its own lines only show with -v.
    let directives = if args.verbose == 0 {
        format!("{level},kube_client=off")
    } else {
        level.to_owned()
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(directives));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
