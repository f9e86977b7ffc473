//! Where configuration comes from, and the live configuration it feeds.
//!
//! [`Live`] holds the current [`RouteTable`] behind an `ArcSwap`: requests
//! load it once and keep their `Arc` for their whole life, so a swap never
//! disturbs a request in flight. A rejected configuration leaves the old
//! table serving.

pub mod dir;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

use crate::metrics::ProxyMetrics;
use crate::routes::{ConfigSnapshot, RouteTable};

/// The live configuration shared by the listener, the admin server and the source.
#[derive(Debug)]
pub struct Live {
    table: ArcSwap<RouteTable>,
    generation: AtomicU64,
    metrics: ProxyMetrics,
}

/// Why a new configuration was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading or parsing the source failed.
    #[error(transparent)]
    Load(#[from] dir::LoadError),
    /// The resources parsed but do not compile into routes.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Compile(Vec<crate::routes::CompileError>),
}

// === impl Live ===

impl Live {
    /// An empty configuration (generation 0) that routes nothing.
    pub fn new(metrics: ProxyMetrics) -> Self {
        Self {
            table: ArcSwap::from_pointee(RouteTable::empty()),
            generation: AtomicU64::new(0),
            metrics,
        }
    }

    /// The current table.
    pub fn table(&self) -> Arc<RouteTable> {
        self.table.load_full()
    }

    /// The generation of the current table (0 before the first load).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The metrics shared with the proxy.
    pub fn metrics(&self) -> &ProxyMetrics {
        &self.metrics
    }

    /// Compiles `snapshot` and swaps it in, or counts a reload failure and
    /// keeps the current table. Returns the new generation.
    pub fn apply(&self, mut snapshot: ConfigSnapshot) -> Result<u64, ConfigError> {
        let generation = self.generation() + 1;
        snapshot.generation = generation;
        match RouteTable::compile(snapshot, &self.metrics) {
            Ok(table) => {
                self.table.store(Arc::new(table));
                self.generation.store(generation, Ordering::Release);
                self.metrics
                    .config_generation
                    .set(i64::try_from(generation).unwrap_or(i64::MAX));
                Ok(generation)
            }
            Err(errors) => {
                self.metrics.config_reload_failures.inc();
                Err(ConfigError::Compile(errors))
            }
        }
    }

    /// Counts a configuration that could not even be loaded.
    pub fn reject(&self) {
        self.metrics.config_reload_failures.inc();
    }
}
