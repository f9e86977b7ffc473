//! Requests in flight on one client connection, and since when it has
//! been idle: the idle timeout reads it, and a response body carries the
//! guard that marks its request finished.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Shared state of one client connection: requests in flight and since
/// when it has been idle.
#[derive(Debug)]
pub struct ConnState {
    epoch: Instant,
    inflight: AtomicUsize,
    /// Milliseconds after `epoch` when `inflight` last dropped to zero.
    idle_since_ms: AtomicU64,
}

/// Marks one request in flight on its connection until dropped.
#[derive(Debug)]
pub struct InflightGuard(Arc<ConnState>);

// === impl ConnState ===

impl ConnState {
    /// A connection with nothing in flight yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            inflight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
        })
    }

    /// Marks one request in flight until the guard is dropped.
    pub fn enter(self: &Arc<Self>) -> InflightGuard {
        self.inflight.fetch_add(1, Ordering::AcqRel);
        InflightGuard(self.clone())
    }

    /// How long nothing has been in flight (zero while a request is).
    pub fn idle_for(&self) -> Duration {
        if self.inflight.load(Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        let since = Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
        self.epoch.elapsed().saturating_sub(since)
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if self.0.inflight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let ms = u64::try_from(self.0.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.0.idle_since_ms.store(ms, Ordering::Release);
        }
    }
}
