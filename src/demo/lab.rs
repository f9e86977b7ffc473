//! The demo's lab: the workloads of this module wired to an in-process
//! meshproxy on loopback. [`Lab::start`] makes the directory (`--dir`, or a
//! temporary one), the mTLS certificates (`--mtls`), the v1 and v2
//! upstreams (v2 failing with `--bad-canary`), `endpoints.yaml`, the
//! rendered resources (applied to a local directory target), meshproxy and
//! the load generator; [`Lab::run`] waits until the proxy reports traffic,
//! runs the caller's rollout and stops everything again, also on Ctrl-C
//! and on errors. The rollout it asks for ([`Lab::rollout`]) is v1 → v2 of
//! [`SERVICE`] with the `--strategy` chosen, so the caller drives it the
//! way `meshctl rollout start` does.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Load, LoadStats, grpc, http};
use crate::Outcome;
use crate::certs::{self, CertsError, IdentityNamespace, WorkloadName};
use crate::metrics::MetricsError;
use crate::metrics::any::Endpoint;
use crate::metrics::proxy::ProxyMetrics;
use crate::render::{self, Overrides, Templates};
use crate::rollout::strategy::{Match, MatchKind, Preview, Strategy};
use crate::rollout::webhook::Webhooks;
use crate::spec::flags::{SpecArgs, StrategyKind, humantime_flag};
use crate::spec::start::StartSettings;
use crate::spec::{self, RolloutDefaults, SpecError};
use crate::target::local::{LocalTarget, write_atomic};
use crate::target::{ApplyOptions, Target};

/// The demo's service name.
pub const SERVICE: &str = "discounts";
/// Requests per second of the load generator.
const RATE: u64 = 200;
/// Hard cap on the demo's duration (the load stops here at the latest).
const MAX_RUN: Duration = Duration::from_secs(120);
/// How long the demo waits for the proxy to report the first traffic.
const READY_WAIT: Duration = Duration::from_secs(10);
/// With `--bad-canary`, v2 fails every 5th request (20%).
const FAIL_EVERY: u64 = 5;
/// The header `--strategy ab` matches; the load generator sets it on every
/// [`AB_EVERY`]th request.
const AB_HEADER: &str = "x-canary";
const AB_EVERY: u64 = 4;
/// Analysis intervals of the `ab`, `mirror` and `bluegreen` demo stages.
const ITERATIONS: u32 = 2;

/// `meshctl demo --protocol`: what the upstreams and the load generator speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// HTTP/1.1 upstreams and requests.
    Http,
    /// gRPC upstreams (a port named `grpc`) and unary calls.
    Grpc,
}

/// What the demo was asked for: `meshctl demo`'s flags (the command line
/// declares them here, beside their use; `cli` re-exports them as
/// `DemoArgs`).
#[derive(Clone, Debug, Args)]
pub struct Settings {
    /// Make v2 fail (fault injection) so the rollout rolls back.
    #[arg(long)]
    pub bad_canary: bool,
    /// Analysis interval.
    #[arg(long, default_value = "2s", value_parser = interval_flag)]
    pub interval: Duration,
    /// Encrypt proxy traffic with mTLS (certificates from `meshctl certs`).
    #[arg(long)]
    pub mtls: bool,
    /// Keep the demo's files here instead of a temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// How v2 gets traffic: `canary` steps; `ab` (every 4th request carries
    /// `x-canary: true`, only those reach v2); `mirror` (v2 judged on copies
    /// of every request first, clients see v1, then the steps); `bluegreen`
    /// (mirror preview, then 100% in one write).
    #[arg(long, value_enum, default_value_t = StrategyKind::Canary)]
    pub strategy: StrategyKind,
    /// What the upstreams and the load generator speak: `http` (HTTP/1.1),
    /// or `grpc` (unary gRPC calls over HTTP/2; `--bad-canary` makes v2
    /// answer 20% of the calls with `INTERNAL`).
    #[arg(long, value_enum, default_value_t = Protocol::Http)]
    pub protocol: Protocol,
}

/// Parses `demo --interval`.
fn interval_flag(v: &str) -> Result<Duration, SpecError> {
    humantime_flag("--interval", v, "2s or 500ms")
}

/// Why the lab could not start, or found no traffic. The messages name the
/// flag, file or address involved; the variants follow the lab's start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// `--protocol grpc` with `--mtls`.
    #[error(
        "--protocol grpc does not combine with --mtls: the demo's gRPC upstreams serve plain-text HTTP/2 (run one or the other)"
    )]
    GrpcWithMtls,
    /// The temporary directory could not be created.
    #[error("creating a temporary directory")]
    TempDir(#[source] std::io::Error),
    /// `--dir` could not be created.
    #[error("creating --dir {}", dir.display())]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A certificate name or namespace was refused.
    #[error(transparent)]
    Certs(#[from] CertsError),
    /// The demo CA or a workload certificate could not be written.
    #[error("creating demo certificates in {}", dir.display())]
    Certificates {
        /// `.meshctl/pki` under the demo's directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: CertsError,
    },
    /// The upstreams' TLS setup did not load.
    #[error(transparent)]
    Tls(#[from] meshproxy::tls::TlsError),
    /// An upstream could not listen.
    #[error("binding {what} on 127.0.0.1")]
    Bind {
        /// `an upstream` or `a gRPC upstream`.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file of the demo could not be written.
    #[error("writing {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The demo's spec did not resolve or render, or the resources could
    /// not be applied to its directory.
    #[error("applying the demo's resources to {}", dir.display())]
    Resources {
        /// The demo's directory.
        dir: PathBuf,
        /// A `SpecError`, `RenderError` or `TargetError`.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// meshproxy did not start.
    #[error("starting meshproxy")]
    Proxy(#[source] meshproxy::Error),
    /// The metrics client for meshproxy's admin endpoint.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// meshproxy's admin address did not make a URL.
    #[error("{0}")]
    MetricsUrl(String),
    /// meshproxy reported no traffic in time.
    #[error("meshproxy reported no traffic for {service} within 10s at {url}")]
    NoTraffic {
        /// The service.
        service: &'static str,
        /// meshproxy's metrics endpoint.
        url: String,
    },
}

/// A task aborted when dropped (an upstream accepts until then).
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Everything the demo started; [`Lab::run`] stops it.
pub struct Lab {
    settings: Settings,
    dir: PathBuf,
    target: LocalTarget,
    metrics: ProxyMetrics,
    metrics_url: String,
    rollout: StartSettings,
    proxy: meshproxy::Handle,
    upstreams: [SocketAddr; 2],
    stats: Arc<LoadStats>,
    stop: watch::Sender<bool>,
    load: JoinHandle<()>,
    /// Aborted after the proxy has stopped.
    tasks: [Task; 2],
    /// Removed last (a temporary directory, without `--dir`).
    temp: Option<tempfile::TempDir>,
}

// === impl Lab ===

impl Lab {
    /// Starts the lab `settings` describe: directory, certificates,
    /// upstreams, files, meshproxy and the load generator. What was started
    /// before an error is stopped again.
    pub async fn start(settings: Settings) -> Result<Self, DemoError> {
        if settings.protocol == Protocol::Grpc && settings.mtls {
            return Err(DemoError::GrpcWithMtls);
        }
        let (dir, temp) = match &settings.dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("meshctl-demo-")
                    .tempdir()
                    .map_err(DemoError::TempDir)?;
                (t.path().to_owned(), Some(t))
            }
        };
        std::fs::create_dir_all(&dir).map_err(|source| DemoError::Dir {
            dir: dir.clone(),
            source,
        })?;
        let upstream_tls = if settings.mtls {
            Some(Arc::new(certificates(&pki(&dir))?))
        } else {
            None
        };
        let fail_every = settings.bad_canary.then_some(FAIL_EVERY);
        let (v1, v1_task) = upstream(settings.protocol, "v1", None, upstream_tls.clone()).await?;
        let (v2, v2_task) = upstream(settings.protocol, "v2", fail_every, upstream_tls).await?;
        let tasks = [v1_task, v2_task];
        let target = LocalTarget::new(&dir);
        let spec = files(&dir, &target, &settings, v1, v2).await?;

        let (proxy, metrics, metrics_url, endpoint) = proxy(&dir, settings.mtls).await?;
        let rollout = StartSettings {
            service: SERVICE.to_owned(),
            to: spec.canary().clone(),
            from: Some(spec.stable().clone()),
            rollout: RolloutDefaults {
                interval: settings.interval,
                ..RolloutDefaults::default()
            },
            strategy: strategy(settings.strategy),
            sticky_cookie: None,
            metrics: endpoint,
            webhooks: Webhooks::default(),
            istio_api: None,
            no_wait_on_pause: false,
        };

        let stats = Arc::new(LoadStats::default());
        let (stop, stop_rx) = watch::channel(false);
        let load = Load {
            proxy: proxy.listen_addr(),
            authority: SERVICE.to_owned(),
            rate: RATE,
            max_run: MAX_RUN,
            mark: marks(settings.strategy).then_some((AB_HEADER, "true", AB_EVERY)),
        };
        let load = match settings.protocol {
            Protocol::Http => http::load(load, stats.clone(), stop_rx),
            Protocol::Grpc => grpc::load(load, stats.clone(), stop_rx),
        };
        Ok(Self {
            settings,
            dir,
            target,
            metrics,
            metrics_url,
            rollout,
            proxy,
            upstreams: [v1, v2],
            stats,
            stop,
            load,
            tasks,
            temp,
        })
    }

    /// What the lab runs, one line each: meshproxy, the upstreams and the
    /// directory; the mutual TLS (with `--mtls`); the load.
    pub fn describe(&self) -> Vec<String> {
        let [v1, v2] = self.upstreams;
        let s = &self.settings;
        let proxy = self.proxy.listen_addr();
        let mut lines = vec![format!(
            "demo: meshproxy on {proxy} (metrics {}), v1 on {v1}, v2 on {v2}{}, files in {}",
            self.metrics_url,
            match (s.bad_canary, s.protocol) {
                (false, _) => "",
                (true, Protocol::Http) => " (failing 20%: --bad-canary)",
                (true, Protocol::Grpc) => " (failing 20% with INTERNAL: --bad-canary)",
            },
            self.dir.display()
        )];
        if s.mtls {
            lines.push(format!(
                "demo: meshproxy -> v1/v2 over mutual TLS (DestinationRule ISTIO_MUTUAL), certificates in {}",
                pki(&self.dir).display()
            ));
        }
        let what = match s.protocol {
            Protocol::Http => format!("{RATE} requests/s to http://{proxy} (Host: {SERVICE})"),
            Protocol::Grpc => format!(
                "{RATE} gRPC calls/s ({}) to {proxy} (:authority {SERVICE}, HTTP/2)",
                grpc::METHOD
            ),
        };
        lines.push(format!(
            "demo: sending {what}{}",
            if marks(s.strategy) {
                format!(", every {AB_EVERY}th with {AB_HEADER}: true")
            } else {
                String::new()
            }
        ));
        lines
    }

    /// The directory target the resources were applied to.
    pub fn target(&self) -> &LocalTarget {
        &self.target
    }

    /// meshproxy's metrics, as a rollout reads them.
    pub fn metrics(&self) -> &ProxyMetrics {
        &self.metrics
    }

    /// The rollout the demo runs: v1 → v2 of [`SERVICE`] with `--strategy`
    /// and `--interval`, judged on meshproxy's metrics.
    pub fn rollout(&self) -> StartSettings {
        self.rollout.clone()
    }

    /// Waits (bounded) until meshproxy reports traffic, so the first window
    /// has data, then runs `rollout` on this lab; then stops the load,
    /// meshproxy and the upstreams, and removes a temporary directory.
    /// A signal on `interrupts` while waiting ends the demo with
    /// [`Outcome::Error`] (once the rollout runs, it watches the signals
    /// itself). Returns the rollout's result and what the load saw.
    pub async fn run<E: From<DemoError>>(
        self,
        mut interrupts: watch::Receiver<u32>,
        rollout: impl AsyncFnOnce(&Self) -> Result<Outcome, E>,
    ) -> (Result<Outcome, E>, Arc<LoadStats>) {
        let outcome = tokio::select! {
            ready = super::first_traffic(&self.metrics, SERVICE, READY_WAIT) => {
                if ready {
                    rollout(&self).await
                } else {
                    let url = self.metrics_url.clone();
                    Err(DemoError::NoTraffic { service: SERVICE, url }.into())
                }
            }
            _ = interrupts.changed() => Ok(Outcome::Error),
        };
        (outcome, self.stop().await)
    }

    /// Stops the load generator (waiting up to 5 s for it), meshproxy and
    /// the upstreams, then removes a temporary directory.
    async fn stop(self) -> Arc<LoadStats> {
        let Self {
            stop,
            load,
            proxy,
            tasks,
            temp,
            stats,
            ..
        } = self;
        let _ = stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), load).await;
        proxy.shutdown().await;
        drop(tasks);
        drop(temp);
        stats
    }
}

/// meshproxy in-process on the files in `dir` (with `mtls`, reaching the
/// upstreams with its workload certificate), and a client of its metrics:
/// the proxy, the client, the metrics URL and the same as an [`Endpoint`].
async fn proxy(
    dir: &Path,
    mtls: bool,
) -> Result<(meshproxy::Handle, ProxyMetrics, String, Endpoint), DemoError> {
    let mut settings = meshproxy::Settings::local(dir);
    if mtls {
        let pki = pki(dir);
        settings.tls.mesh = Some(meshproxy::tls::MeshIdentityFiles {
            cert: pki.join("meshproxy.crt"),
            key: pki.join("meshproxy.key"),
            ca: pki.join("ca.crt"),
        });
    }
    let proxy = meshproxy::start(settings).await.map_err(DemoError::Proxy)?;
    let url = format!("http://{}/metrics", proxy.admin_addr());
    let client = ProxyMetrics::new(&url, Duration::from_secs(2))
        .map_err(DemoError::from)
        .and_then(|m| {
            let endpoint = reqwest::Url::parse(&url)
                .map(Endpoint::Proxy)
                .map_err(|e| DemoError::MetricsUrl(e.to_string()))?;
            Ok((m, endpoint))
        });
    match client {
        Ok((metrics, endpoint)) => Ok((proxy, metrics, url, endpoint)),
        Err(e) => {
            proxy.shutdown().await;
            Err(e)
        }
    }
}

/// Where `--mtls` keeps the demo CA and the workload certificates:
/// `.meshctl/pki` (meshproxy ignores dot-directories).
fn pki(dir: &Path) -> PathBuf {
    dir.join(".meshctl").join("pki")
}

/// `--mtls`: a demo CA and workload certificates for meshproxy and the
/// service under `pki`; the upstreams' TLS, which requires client
/// certificates of that CA (the proxy's own workload certificate).
fn certificates(pki: &Path) -> Result<meshproxy::tls::ServerTls, DemoError> {
    let names = [WorkloadName::new("meshproxy")?, WorkloadName::new(SERVICE)?];
    certs::issue(pki, &names, &IdentityNamespace::new("default")?).map_err(|source| {
        DemoError::Certificates {
            dir: pki.to_owned(),
            source,
        }
    })?;
    Ok(meshproxy::tls::ServerTls::load(
        meshproxy::tls::ServerTlsFiles {
            cert: pki.join(format!("{SERVICE}.crt")),
            key: pki.join(format!("{SERVICE}.key")),
            client_ca: Some(pki.join("ca.crt")),
            allowed_identities: Vec::new(),
        },
    )?)
}

/// Upstream `version` in `protocol`, failing every `fail_every`th
/// request; with `tls` (HTTP only) it requires client certificates.
async fn upstream(
    protocol: Protocol,
    version: &'static str,
    fail_every: Option<u64>,
    tls: Option<Arc<meshproxy::tls::ServerTls>>,
) -> Result<(SocketAddr, Task), DemoError> {
    let (addr, task) = match protocol {
        Protocol::Http => http::upstream(version, fail_every, tls)
            .await
            .map_err(|source| DemoError::Bind {
                what: "an upstream",
                source,
            })?,
        Protocol::Grpc => grpc::upstream(version, fail_every)
            .await
            .map_err(|source| DemoError::Bind {
                what: "a gRPC upstream",
                source,
            })?,
    };
    Ok((addr, Task(task)))
}

/// Writes `endpoints.yaml` (v1 at `v1`, v2 at `v2`) and the demo's spec
/// into `dir`, renders the spec (over mutual TLS with `--mtls`) and applies
/// it to `target`. The spec lives under `.meshctl/` (meshproxy ignores
/// dot-directories), so a `meshctl.yaml` in the working directory cannot
/// leak in.
async fn files(
    dir: &Path,
    target: &LocalTarget,
    settings: &Settings,
    v1: SocketAddr,
    v2: SocketAddr,
) -> Result<spec::ServiceSpec, DemoError> {
    let write = |path: PathBuf, text: String| {
        write_atomic(&path, text.as_bytes()).map_err(|source| DemoError::Write { path, source })
    };
    let grpc = settings.protocol == Protocol::Grpc;
    write(
        dir.join("endpoints.yaml"),
        super::endpoints_yaml(SERVICE, v1, v2, grpc),
    )?;
    let spec_file = dir.join(".meshctl").join("meshctl.yaml");
    std::fs::create_dir_all(dir.join(".meshctl")).map_err(|source| DemoError::Write {
        path: spec_file.clone(),
        source,
    })?;
    write(
        spec_file.clone(),
        format!("service: {SERVICE}\nversions: [v1, v2]\n"),
    )?;
    let resources = |source: Box<dyn std::error::Error + Send + Sync>| DemoError::Resources {
        dir: dir.to_owned(),
        source,
    };
    let spec_args = SpecArgs {
        file: Some(spec_file),
        ..SpecArgs::default()
    };
    let spec = spec::resolve(&spec_args, None).map_err(|e| resources(e.into()))?;
    let mut rendered = Templates::load(None)
        .and_then(|t| render::render(&spec, &t, &Overrides::default()))
        .map_err(|e| resources(e.into()))?;
    if settings.mtls {
        super::istio_mutual(&mut rendered);
    }
    target
        .apply(&rendered, ApplyOptions::default())
        .await
        .map_err(|e| resources(e.into()))?;
    Ok(spec)
}

/// Does the load mark requests for `--strategy ab`?
fn marks(kind: StrategyKind) -> bool {
    kind == StrategyKind::Ab
}

/// The demo's strategy for `--strategy`: `ab` matches the header the load
/// generator sets; `mirror` and `bluegreen` mirror every request; the
/// stages before the steps last [`ITERATIONS`] intervals.
fn strategy(kind: StrategyKind) -> Strategy {
    match kind {
        StrategyKind::Canary => Strategy::Canary,
        StrategyKind::Ab => Strategy::Ab {
            rule: Match {
                kind: MatchKind::Header,
                name: AB_HEADER.to_owned(),
                value: "true".to_owned(),
            },
            iterations: ITERATIONS,
        },
        StrategyKind::Mirror => Strategy::Mirror {
            percent: 100,
            iterations: ITERATIONS,
        },
        StrategyKind::Bluegreen => Strategy::BlueGreen {
            preview: Preview::Mirror { percent: 100 },
            iterations: ITERATIONS,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::metrics::MetricsSource;

    fn settings(dir: Option<PathBuf>) -> Settings {
        Settings {
            bad_canary: false,
            interval: Duration::from_millis(500),
            mtls: false,
            dir,
            strategy: StrategyKind::Ab,
            protocol: Protocol::Http,
        }
    }

    #[tokio::test]
    async fn the_lab_serves_the_rollout_it_describes_then_stops_everything() {
        let lab = match Lab::start(settings(None)).await {
            Ok(lab) => lab,
            Err(e) => panic!("the lab did not start: {e}"),
        };
        let (dir, proxy) = (lab.dir.clone(), lab.proxy.listen_addr());
        let lines = lab.describe();
        assert!(
            lines[0].starts_with(&format!("demo: meshproxy on {proxy} (metrics http://")),
            "{lines:?}"
        );
        assert!(
            lines[1].ends_with(", every 4th with x-canary: true"),
            "{lines:?}"
        );
        assert!(dir.join("endpoints.yaml").is_file());
        let (_signal, interrupts) = watch::channel(0u32);
        let (outcome, load) = lab
            .run(interrupts, async |lab: &Lab| {
                let req = lab.rollout();
                assert_eq!(req.service, SERVICE);
                assert_eq!(
                    (req.from.as_ref().map(|v| v.as_str()), req.to.as_str()),
                    (Some("v1"), "v2")
                );
                assert!(matches!(req.strategy, Strategy::Ab { .. }));
                assert_eq!(req.metrics.url().as_str(), lab.metrics().describe());
                // The resources are applied and the load reaches v1 (the
                // rendered route sends everything there).
                let vs = lab.target().virtual_service(SERVICE).await;
                assert!(vs.is_ok(), "{vs:?}");
                let seen = lab.metrics().scrape(SERVICE).await?;
                assert!(seen.version("v1").requests > 0.0, "{seen:?}");
                Ok::<_, DemoError>(Outcome::Success)
            })
            .await;
        assert!(matches!(outcome, Ok(Outcome::Success)), "{outcome:?}");
        assert!(load.ok.load(Ordering::Relaxed) > 0, "{}", load.summary());
        assert_eq!(load.failed.load(Ordering::Relaxed), 0, "{}", load.summary());
        assert!(!dir.exists(), "the temporary directory is removed");
        assert!(
            tokio::net::TcpStream::connect(proxy).await.is_err(),
            "meshproxy still listens on {proxy}"
        );
    }

    #[tokio::test]
    async fn grpc_with_mtls_is_refused_before_anything_starts() {
        let parent = tempfile::tempdir().expect("a temporary directory");
        let dir = parent.path().join("demo");
        let refused = Lab::start(Settings {
            mtls: true,
            protocol: Protocol::Grpc,
            ..settings(Some(dir.clone()))
        })
        .await;
        assert!(
            matches!(refused, Err(DemoError::GrpcWithMtls)),
            "{:?}",
            refused.err()
        );
        assert!(!dir.exists(), "nothing was created");
    }
}
