//! The executor hyper spawns its per-connection and per-stream tasks on.
//!
//! hyper's HTTP/2 client spawns two tasks per request (one pipes the
//! request body, one waits for the response), each typed as the enum of
//! everything it spawns, which includes the whole connection task, so
//! each is as large as the connection's state; its server spawns one
//! per stream. tokio keeps a task's future inline in the task and copies
//! it on spawn and again each time it replaces the task's stage (the
//! output stored, then consumed): several multi-KB `memcpy`s per call,
//! the largest single item in a worker's gRPC profile. [`Exec`] boxes
//! futures above [`BOX_ABOVE`] bytes first, so tokio moves a pointer.

use std::future::Future;

use hyper_util::rt::TokioExecutor;

/// Futures larger than this many bytes are boxed before they are spawned.
pub const BOX_ABOVE: usize = 512;

/// Spawns on the current tokio runtime, boxing large futures first.
#[derive(Clone, Copy, Debug, Default)]
pub struct Exec;

impl<F> hyper::rt::Executor<F> for Exec
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        if std::mem::size_of::<F>() > BOX_ABOVE {
            TokioExecutor::new().execute(Box::pin(fut));
        } else {
            TokioExecutor::new().execute(fut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Executor as _;

    #[tokio::test]
    async fn runs_small_and_boxed_futures() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let small = {
            let tx = tx.clone();
            async move { tx.send(1usize).unwrap() }
        };
        let big = {
            let payload = [7u8; 2 * BOX_ABOVE];
            async move {
                tokio::task::yield_now().await;
                tx.send(payload.iter().map(|b| usize::from(*b)).sum())
                    .unwrap();
            }
        };
        assert!(std::mem::size_of_val(&small) <= BOX_ABOVE);
        assert!(std::mem::size_of_val(&big) > BOX_ABOVE);
        Exec.execute(small);
        Exec.execute(big);
        let mut got = vec![rx.recv().await.unwrap(), rx.recv().await.unwrap()];
        got.sort_unstable();
        assert_eq!(got, vec![1, 7 * 2 * BOX_ABOVE]);
    }
}
