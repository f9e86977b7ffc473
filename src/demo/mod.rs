//! Workloads of `meshctl demo`: small upstreams and load generators that
//! run on loopback next to an in-process meshproxy, and what the load
//! generators saw.

pub mod grpc;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a load generator saw.
#[derive(Debug, Default)]
pub struct LoadStats {
    /// Requests that succeeded.
    pub ok: AtomicU64,
    /// Requests that failed (an HTTP error status, a gRPC status other
    /// than `OK`, or no answer).
    pub failed: AtomicU64,
    /// Requests answered by v1 (the answers, also the bad canary's errors,
    /// name the version).
    pub v1: AtomicU64,
    /// Requests answered by v2.
    pub v2: AtomicU64,
    /// Failed requests per cause (`INTERNAL`, `HTTP 500`).
    causes: Mutex<BTreeMap<String, u64>>,
}

impl LoadStats {
    /// Counts one answer whose text is `answer`, failed with `failure`.
    pub fn record(&self, answer: &str, failure: Option<String>) {
        match failure {
            None => self.ok.fetch_add(1, Ordering::Relaxed),
            Some(cause) => {
                if let Ok(mut causes) = self.causes.lock() {
                    *causes.entry(cause).or_default() += 1;
                }
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
        if answer.contains("v1") {
            self.v1.fetch_add(1, Ordering::Relaxed);
        } else if answer.contains("v2") {
            self.v2.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Failed requests per cause: `INTERNAL ×12, UNAVAILABLE ×1` (empty
    /// without failures).
    pub fn failures(&self) -> String {
        self.causes
            .lock()
            .map(|causes| {
                causes
                    .iter()
                    .map(|(c, n)| format!("{c} ×{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    }

    /// `1200 ok, 30 failed (INTERNAL ×30); answered by v1 1000, v2 230`.
    pub fn summary(&self) -> String {
        let causes = self.failures();
        format!(
            "{} ok, {} failed{}; answered by v1 {}, v2 {}",
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            if causes.is_empty() {
                String::new()
            } else {
                format!(" ({causes})")
            },
            self.v1.load(Ordering::Relaxed),
            self.v2.load(Ordering::Relaxed)
        )
    }
}
