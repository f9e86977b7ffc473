//! SIGINT and SIGTERM as a count a running command watches: the first
//! signal asks the rollout driver (or the demo) to stop as `--on-interrupt`
//! says; a second one exits the process at once with 130.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// A signal handler could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("installing the {signal} handler")]
pub struct SignalError {
    /// `SIGINT` or `SIGTERM`.
    pub signal: &'static str,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Counts SIGINT/SIGTERM; a second signal exits at once (130).
pub fn interrupts() -> Result<watch::Receiver<u32>, SignalError> {
    let (tx, rx) = watch::channel(0u32);
    let install = |kind, name| {
        signal(kind).map_err(|source| SignalError {
            signal: name,
            source,
        })
    };
    let mut int = install(SignalKind::interrupt(), "SIGINT")?;
    let mut term = install(SignalKind::terminate(), "SIGTERM")?;
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            n += 1;
            if n > 1 {
                #[allow(
                    clippy::print_stderr,
                    reason = "the process exits on the next line: no reporter outlives it"
                )]
                {
                    eprintln!("second signal: exiting now");
                }
                std::process::exit(130);
            }
            let _ = tx.send(n);
        }
    });
    Ok(rx)
}
