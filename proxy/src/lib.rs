//! meshproxy: meshctl's data plane.
//!
//! A lightweight HTTP proxy that routes by Istio's `VirtualService` and
//! `DestinationRule`, and exports Istio's standard metrics. This crate is the
//! bottom layer of the workspace: it owns the Istio resource model
//! ([`istio`]) that `meshctl` renders and applies.
//!
//! [`start`] runs a proxy in-process and returns a [`Handle`] (tests use it);
//! [`run`] is what the binary calls: start, wait for SIGTERM/SIGINT, drain.

#![warn(missing_docs)]

pub mod admin;
pub mod args;
pub mod body;
#[cfg(feature = "kube")]
pub mod cluster;
pub(crate) mod codec;
pub mod conn;
pub mod endpoints;
pub(crate) mod exec;
pub mod forward;
pub mod grpc;
pub mod h1;
pub mod headers;
pub mod hyper_lane;
pub mod inflight;
pub mod istio;
pub mod metrics;
pub mod routes;
pub mod send_h2;
pub mod send_hyper;
pub mod server;
pub mod signal;
pub mod source;
pub mod split;
pub mod tls;
pub(crate) mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::sync::{Semaphore, oneshot, watch};

pub use args::Args;

use crate::forward::{ForwardSettings, Forwarder};
use crate::metrics::ProxyMetrics;
use crate::server::Limits;
use crate::source::Live;

/// Cluster mode (`meshproxy --kube`): where the resources and endpoints come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeSource {
    /// Namespace to watch (default: the kubeconfig context's, else `default`).
    pub namespace: Option<String>,
    /// Kubeconfig file (default: `KUBECONFIG`, `~/.kube/config`, in-cluster).
    pub kubeconfig: Option<PathBuf>,
}

/// Validated settings of one proxy.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The watched configuration directory (unused in cluster mode).
    pub config_dir: PathBuf,
    /// Cluster mode: watch a Kubernetes namespace instead of `config_dir`.
    pub kube: Option<KubeSource>,
    /// Proxy listener address (port 0 picks one).
    pub listen: SocketAddr,
    /// Admin listener address (port 0 picks one).
    pub admin: SocketAddr,
    /// Proxy worker threads, each with its own event loop, listener and
    /// upstream connection pool (`None`: one per CPU).
    pub workers: Option<usize>,
    /// Client connection limits.
    pub limits: Limits,
    /// Request path settings.
    pub forward: ForwardSettings,
    /// How long a drain may take.
    pub drain_timeout: Duration,
    /// Quiet time after a file change before reloading.
    pub reload_debounce: Duration,
    /// Inbound and outbound TLS.
    pub tls: tls::TlsSettings,
}

// === impl Settings ===

impl Settings {
    /// Settings for a proxy on ephemeral loopback ports with default limits.
    pub fn local(config_dir: impl Into<PathBuf>) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            config_dir: config_dir.into(),
            kube: None,
            listen: any,
            admin: any,
            workers: None,
            limits: Limits::default(),
            forward: ForwardSettings::default(),
            drain_timeout: Duration::from_secs(15),
            reload_debounce: Duration::from_millis(100),
            tls: tls::TlsSettings::default(),
        }
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener address could not be bound.
    #[error(
        "--{flag} {addr}: cannot listen: {source} (pick a free port or stop the process using it)"
    )]
    Bind {
        /// `listen` or `admin`.
        flag: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A certificate, key or CA file is unusable.
    #[error("{what}: {source}")]
    Tls {
        /// Which flags.
        what: &'static str,
        /// What is wrong, naming the file and the fix.
        #[source]
        source: tls::TlsError,
    },
    /// A worker thread's event loop could not be created.
    #[error("cannot start worker thread: {0}")]
    Worker(#[source] std::io::Error),
    /// Cluster mode could not start (API server unreachable, Istio CRDs
    /// missing, invalid resources, or a build without the `kube` feature).
    #[error("--kube: {0}")]
    Cluster(String),
    /// The initial configuration is invalid.
    #[error("--config {}: {source}", dir.display())]
    Config {
        /// The directory.
        dir: PathBuf,
        /// What is wrong, naming the file.
        #[source]
        source: source::ConfigError,
    },
}

/// A running proxy.
#[derive(Debug)]
pub struct Handle {
    listen_addr: SocketAddr,
    admin_addr: SocketAddr,
    live: Arc<Live>,
    admin: Arc<admin::Admin>,
    shutdown: watch::Sender<bool>,
    force: watch::Sender<bool>,
    workers: Vec<oneshot::Receiver<()>>,
    balancer: Arc<server::Balancer>,
    drain_timeout: Duration,
}

// === impl Handle ===

impl Handle {
    /// The proxy listener's bound address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// The admin listener's bound address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Open client connections per worker thread.
    pub fn worker_connections(&self) -> Vec<usize> {
        self.balancer.active()
    }

    /// The live configuration.
    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// Stops accepting, lets in-flight requests finish up to the drain
    /// timeout, then stops. Returns whether every connection drained in time.
    pub async fn shutdown(self) -> bool {
        self.admin.draining.store(true, Ordering::Release);
        let _ = self.shutdown.send(true);
        let mut workers = futures_util::future::join_all(self.workers);
        let drained = tokio::time::timeout(self.drain_timeout, &mut workers)
            .await
            .is_ok();
        if drained {
            tracing::info!("drained");
        } else {
            tracing::warn!(timeout = ?self.drain_timeout, "drain deadline passed; closing remaining connections");
            let _ = self.force.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), workers).await;
        }
        drained
    }
}

/// Loads the configuration, binds both listeners and starts serving.
pub async fn start(settings: Settings) -> Result<Handle, Error> {
    let mut registry = Registry::default();
    let metrics = ProxyMetrics::register(&mut registry);
    let client_tls = Arc::new(
        tls::ClientTls::new(settings.tls.mesh.clone(), Some(settings.config_dir.clone())).map_err(
            |source| Error::Tls {
                what: "--workload-cert/--workload-key/--mesh-ca",
                source,
            },
        )?,
    );
    // DestinationRules naming TLS files that do not load are rejected at load.
    let live = Arc::new(Live::new(metrics.clone()).with_client_tls(client_tls.clone()));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let fingerprint = match &settings.kube {
        None => {
            let (generation, fingerprint) = source::dir::load_into(&live, &settings.config_dir)
                .map_err(|source| Error::Config {
                    dir: settings.config_dir.clone(),
                    source,
                })?;
            tracing::info!(dir = %settings.config_dir.display(), generation, "configuration loaded");
            Some(fingerprint)
        }
        Some(kube) => {
            start_cluster(&live, kube, shutdown_rx.clone()).await?;
            None
        }
    };

    let workers = settings
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
        .max(1);
    let bind_err = |flag, addr| move |source| Error::Bind { flag, addr, source };
    let first =
        server::reuseport_listener(settings.listen).map_err(bind_err("listen", settings.listen))?;
    let listen_addr = first
        .local_addr()
        .map_err(bind_err("listen", settings.listen))?;
    let mut listeners = vec![first];
    for _ in 1..workers {
        listeners.push(
            server::reuseport_listener(listen_addr).map_err(bind_err("listen", listen_addr))?,
        );
    }
    let admin_listener = tokio::net::TcpListener::bind(settings.admin)
        .await
        .map_err(bind_err("admin", settings.admin))?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(bind_err("admin", settings.admin))?;

    let server_tls = settings
        .tls
        .inbound
        .clone()
        .map(|files| tls::ServerTls::load(files).map(Arc::new))
        .transpose()
        .map_err(|source| Error::Tls {
            what: "--tls-cert/--tls-key/--tls-client-ca",
            source,
        })?;
    // Certificate rotation: poll the files until shutdown.
    let mut watchers = vec![tls::spawn_watcher(
        client_tls.clone(),
        settings.tls.reload_interval,
    )];
    if let Some(server_tls) = &server_tls {
        watchers.push(tls::spawn_watcher(
            server_tls.reloadable(),
            settings.tls.reload_interval,
        ));
    }
    let mut watch_shutdown = shutdown_rx.clone();
    tokio::spawn(async move {
        let _ = watch_shutdown.changed().await;
        watchers.iter().for_each(tokio::task::JoinHandle::abort);
    });
    let (force, force_rx) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(settings.limits.max_connections));
    let mut done = Vec::new();
    let slots = server::Balancer::slots(listeners.len());
    let balancer = slots[0].balancer.clone();
    for ((i, listener), slot) in listeners.into_iter().enumerate().zip(slots) {
        // Thread per core: each worker owns its event loop, listener and
        // upstream pool, so a request never hops threads.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Worker)?;
        let (tx, rx) = oneshot::channel();
        done.push(rx);
        let live = live.clone();
        let forward = settings.forward.clone();
        let metrics = metrics.clone();
        let limits = settings.limits.clone();
        let permits = permits.clone();
        let (shutdown_rx, force_rx) = (shutdown_rx.clone(), force_rx.clone());
        // TLS configs are shared; each worker has its own upstream TLS pool.
        let (server_tls, client_tls) = (server_tls.clone(), client_tls.clone());
        std::thread::Builder::new()
            .name(format!("meshproxy-worker-{i}"))
            .spawn(move || {
                rt.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
                            let forwarder =
                                Arc::new(Forwarder::new(live, forward).with_tls(client_tls));
                            let mut shared = server::Shared::new(forwarder, metrics, limits);
                            if let Some(server_tls) = server_tls {
                                shared = shared.with_tls(server_tls);
                            }
                            server::serve(
                                listener,
                                Arc::new(shared),
                                permits,
                                shutdown_rx,
                                force_rx,
                                slot,
                            )
                            .await;
                        }
                        Err(e) => tracing::error!(error = %e, "worker cannot use its listener"),
                    }
                });
                let _ = tx.send(());
            })
            .map_err(Error::Worker)?;
    }
    let admin = Arc::new(admin::Admin {
        registry,
        live: live.clone(),
        draining: AtomicBool::new(false),
    });
    if let Some(fingerprint) = fingerprint {
        tokio::spawn(source::dir::watch(
            live.clone(),
            settings.config_dir.clone(),
            fingerprint,
            settings.reload_debounce,
            shutdown_rx.clone(),
        ));
    }
    tokio::spawn(admin::serve(admin_listener, admin.clone(), shutdown_rx));
    tracing::info!(%listen_addr, %admin_addr, "meshproxy listening");
    Ok(Handle {
        listen_addr,
        admin_addr,
        live,
        admin,
        shutdown,
        force,
        workers: done,
        balancer,
        drain_timeout: settings.drain_timeout,
    })
}

/// Loads the first configuration from the cluster and keeps following it.
#[cfg(feature = "kube")]
async fn start_cluster(
    live: &Arc<Live>,
    kube: &KubeSource,
    shutdown: watch::Receiver<bool>,
) -> Result<(), Error> {
    let generation = cluster::start(live.clone(), kube, shutdown)
        .await
        .map_err(|e| Error::Cluster(e.to_string()))?;
    tracing::info!(generation, "configuration loaded from the cluster");
    Ok(())
}

#[cfg(not(feature = "kube"))]
async fn start_cluster(
    _live: &Arc<Live>,
    _kube: &KubeSource,
    _shutdown: watch::Receiver<bool>,
) -> Result<(), Error> {
    Err(Error::Cluster(
        "this meshproxy was built without cluster mode; rebuild it with `cargo build -p meshproxy --features kube`".into(),
    ))
}

/// Runs the proxy until SIGTERM or SIGINT, then drains. A second signal
/// during the drain stops at once.
pub async fn run(settings: Settings) -> Result<(), Error> {
    let handle = start(settings).await?;
    signal::shutdown().await;
    tokio::select! {
        _ = handle.shutdown() => {}
        () = signal::shutdown() => tracing::warn!("second signal: stopping without waiting for the drain"),
    }
    Ok(())
}
