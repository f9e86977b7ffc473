//! Where configuration comes from, and the live configuration it feeds.
//!
//! [`Live`] holds the current [`RouteTable`] behind an `ArcSwap`: requests
//! load it once and keep their `Arc` for their whole life, so a swap never
//! disturbs a request in flight. A rejected configuration leaves the old
//! table serving.
//!
//! With [`Live::with_client_tls`], a configuration whose DestinationRules ask
//! for upstream TLS it cannot set up (a certificate file missing or
//! unreadable, a field missing, no workload certificate for
//! `ISTIO_MUTUAL`) is rejected when it is loaded, naming the file, the rule
//! and the field, instead of failing requests later.

pub mod dir;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

use crate::istio::{ClientTlsSettings, Resource};
use crate::metrics::ProxyMetrics;
use crate::routes::{ConfigSnapshot, RouteTable};
use crate::tls::ClientTls;

/// The live configuration shared by the listener, the admin server and the source.
#[derive(Debug)]
pub struct Live {
    table: ArcSwap<RouteTable>,
    generation: AtomicU64,
    metrics: ProxyMetrics,
    client_tls: Option<Arc<ClientTls>>,
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
    /// A DestinationRule asks for upstream TLS that cannot be set up.
    #[error("{}", .0.join("; "))]
    Tls(Vec<String>),
}

// === impl Live ===

impl Live {
    /// An empty configuration (generation 0) that routes nothing.
    pub fn new(metrics: ProxyMetrics) -> Self {
        Self {
            table: ArcSwap::from_pointee(RouteTable::empty()),
            generation: AtomicU64::new(0),
            metrics,
            client_tls: None,
        }
    }

    /// Checks every DestinationRule's `trafficPolicy.tls` against `tls`
    /// (the proxy's upstream TLS setup) before a configuration is applied.
    #[must_use]
    pub fn with_client_tls(mut self, tls: Arc<ClientTls>) -> Self {
        self.client_tls = Some(tls);
        self
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
        if let Some(tls) = &self.client_tls {
            let problems = tls_problems(&snapshot, tls);
            if !problems.is_empty() {
                self.metrics.config_reload_failures.inc();
                return Err(ConfigError::Tls(problems));
            }
        }
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

/// `FILE: DestinationRule/NAME PATH: problem` for every TLS setting in the
/// snapshot that `tls` cannot use.
fn tls_problems(snapshot: &ConfigSnapshot, tls: &ClientTls) -> Vec<String> {
    let mut problems = Vec::new();
    for file in &snapshot.files {
        for resource in &file.resources {
            let Resource::DestinationRule(dr) = resource else {
                continue;
            };
            let mut check = |field: String, settings: Option<&ClientTlsSettings>| {
                if let Some(settings) = settings
                    && let Err(e) = tls.check(settings)
                {
                    problems.push(format!(
                        "{}: DestinationRule/{} {field}: {e}",
                        file.name, dr.metadata.name
                    ));
                }
            };
            check(
                "spec.trafficPolicy.tls".to_owned(),
                dr.spec.traffic_policy.as_ref().and_then(|p| p.tls.as_ref()),
            );
            for (i, subset) in dr.spec.subsets.iter().enumerate() {
                check(
                    format!("spec.subsets[{i}].trafficPolicy.tls"),
                    subset.traffic_policy.as_ref().and_then(|p| p.tls.as_ref()),
                );
            }
        }
    }
    problems
}
