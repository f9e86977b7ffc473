//! `meshctl demo`: the whole product on one machine, no cluster. Starts
//! meshproxy in-process on loopback, two small upstreams (v1, v2), writes
//! the rendered resources and `endpoints.yaml` to a local directory target,
//! drives a bounded load through the proxy, and runs a real rollout through
//! the same code path as `meshctl rollout start`. `--bad-canary` makes v2
//! answer 20% of requests with a 500, so the rollout rolls back (exit 3).
//! Everything started here is stopped before returning, also on Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Outcome;
use crate::cli::{DemoArgs, GlobalArgs, SpecArgs, StrategyKind};
use crate::metrics::MetricsSource;
use crate::metrics::proxy::ProxyMetrics;
use crate::output::{Format, Reporter, Term, table};
use crate::render::{self, Overrides, Templates};
use crate::rollout::analysis::Thresholds;
use crate::rollout::strategy::{Preview, Strategy};
use crate::rollout::webhook::Webhooks;
use crate::spec::{self, RolloutDefaults};
use crate::target::local::{LocalTarget, write_atomic};
use crate::target::{ApplyOptions, Target};

use super::rollout::{StartRequest, drive, format, interrupts};

/// The demo's service name.
const SERVICE: &str = "discounts";
/// Requests per second of the load generator.
const RATE: u64 = 200;
/// Hard cap on the demo's duration (the load stops here at the latest).
const MAX_RUN: Duration = Duration::from_secs(120);

/// The header `--strategy ab` matches; the load generator sets it on every
/// [`AB_EVERY`]th request.
const AB_HEADER: &str = "x-canary";
const AB_EVERY: u64 = 4;

/// Analysis intervals of the `ab`, `mirror` and `bluegreen` demo stages.
const ITERATIONS: u32 = 2;

/// A loopback HTTP server answering `hello from VERSION`; with
/// `fail_every = Some(n)` every n-th request gets a 500.
async fn upstream(
    version: &'static str,
    fail_every: Option<u64>,
    tls: Option<Arc<meshproxy::tls::ServerTls>>,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding an upstream on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let count = Arc::new(AtomicU64::new(0));
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let count = count.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<hyper::body::Incoming>| {
                    let n = count.fetch_add(1, Ordering::Relaxed) + 1;
                    let fail = fail_every.is_some_and(|k| n.is_multiple_of(k));
                    async move {
                        let (status, body) = if fail {
                            (500, format!("{version} failed (bad canary)\n"))
                        } else {
                            (200, format!("hello from {version}\n"))
                        };
                        Response::builder()
                            .status(status)
                            .header("content-type", "text/plain")
                            .body(Full::new(Bytes::from(body)))
                    }
                });
                let http = hyper::server::conn::http1::Builder::new();
                match tls {
                    None => {
                        let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                    }
                    // --mtls: only clients with a certificate of the demo CA.
                    Some(tls) => {
                        if let Ok((stream, _)) = tls.accept(stream, Duration::from_secs(10)).await {
                            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                }
            });
        }
    });
    Ok((addr, task))
}

/// What the load generator saw.
#[derive(Debug, Default)]
struct LoadStats {
    ok: AtomicU64,
    failed: AtomicU64,
    v1: AtomicU64,
    v2: AtomicU64,
}

/// Sends `RATE` requests per second through the proxy until `stop` or `MAX_RUN`.
fn load(
    proxy: SocketAddr,
    mark: bool,
    stats: Arc<LoadStats>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(client) = crate::metrics::http_client(Duration::from_secs(2)) else {
            return;
        };
        let url = format!("http://{proxy}/");
        let mut tick = tokio::time::interval(Duration::from_millis(1000 / RATE));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let max = RATE * MAX_RUN.as_secs();
        for i in 0..max {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let mut req = client.get(&url).header("host", SERVICE);
            if mark && i % AB_EVERY == 0 {
                req = req.header(AB_HEADER, "true");
            }
            let req = req.send();
            match req.await {
                Ok(resp) => {
                    let okay = resp.status().is_success();
                    let body = resp.text().await.unwrap_or_default();
                    if okay {
                        stats.ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    if body.contains("v1") {
                        stats.v1.fetch_add(1, Ordering::Relaxed);
                    } else if body.contains("v2") {
                        stats.v2.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(_) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    })
}

fn endpoints_yaml(v1: SocketAddr, v2: SocketAddr) -> String {
    format!(
        "# Written by `meshctl demo`: where the subsets' endpoints listen.\nservices:\n  {SERVICE}:\n    endpoints:\n    - address: {v1}\n      labels: {{version: v1}}\n    - address: {v2}\n      labels: {{version: v2}}\n"
    )
}

/// `meshctl demo`.
pub async fn run(global: &GlobalArgs, args: DemoArgs) -> anyhow::Result<Outcome> {
    let DemoArgs {
        bad_canary,
        interval,
        mtls,
        dir,
        strategy,
    } = args;
    let strategy = match strategy {
        StrategyKind::Canary => Strategy::Canary,
        StrategyKind::Ab => Strategy::Ab {
            rule: format!("header:{AB_HEADER}=true").parse()?,
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
    };
    let mark = matches!(strategy, Strategy::Ab { .. });
    let rollout = RolloutDefaults {
        interval: humantime::parse_duration(&interval)
            .ok()
            .filter(|d| !d.is_zero())
            .with_context(|| {
                format!("--interval {interval:?} is not a duration: use e.g. 2s or 500ms")
            })?,
        ..RolloutDefaults::default()
    };

    // The target directory: --dir, or a temporary one removed on exit.
    let temp = match &dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("meshctl-demo-")
                .tempdir()
                .context("creating a temporary directory")?,
        ),
    };
    let dir = dir.unwrap_or_else(|| {
        temp.as_ref()
            .map(|t| t.path().to_owned())
            .unwrap_or_default()
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("creating --dir {}", dir.display()))?;
    let target = LocalTarget::new(&dir);

    // --mtls: a demo CA and workload certificates under `.meshctl/pki`
    // (meshproxy ignores dot-directories); the upstreams require client
    // certificates and the DestinationRule says ISTIO_MUTUAL, so the proxy
    // reaches them over mutual TLS with its own workload certificate.
    let pki = dir.join(".meshctl").join("pki");
    let upstream_tls = if mtls {
        let names = [
            crate::certs::WorkloadName::new("meshproxy")?,
            crate::certs::WorkloadName::new(SERVICE)?,
        ];
        crate::certs::issue(
            &pki,
            &names,
            &crate::certs::IdentityNamespace::new("default")?,
        )
        .with_context(|| format!("creating demo certificates in {}", pki.display()))?;
        let tls = meshproxy::tls::ServerTls::load(meshproxy::tls::ServerTlsFiles {
            cert: pki.join(format!("{SERVICE}.crt")),
            key: pki.join(format!("{SERVICE}.key")),
            client_ca: Some(pki.join("ca.crt")),
            allowed_identities: Vec::new(),
        })?;
        Some(Arc::new(tls))
    } else {
        None
    };

    // Upstreams, endpoints, rendered resources.
    let (v1, v1_task) = upstream("v1", None, upstream_tls.clone()).await?;
    let (v2, v2_task) = upstream("v2", bad_canary.then_some(5), upstream_tls).await?;
    let result = async {
        write_atomic(&dir.join("endpoints.yaml"), endpoints_yaml(v1, v2).as_bytes())
            .with_context(|| format!("writing {}", dir.join("endpoints.yaml").display()))?;
        // The spec lives under `.meshctl/` (meshproxy ignores dot-directories),
        // so a meshctl.yaml in the working directory cannot leak in.
        let spec_file = dir.join(".meshctl").join("meshctl.yaml");
        std::fs::create_dir_all(dir.join(".meshctl"))?;
        write_atomic(&spec_file, format!("service: {SERVICE}\nversions: [v1, v2]\n").as_bytes())
            .with_context(|| format!("writing {}", spec_file.display()))?;
        let spec_args = SpecArgs {
            file: Some(spec_file),
            ..SpecArgs::default()
        };
        let spec = spec::resolve(&spec_args, None)?;
        let mut resources = render::render(&spec, &Templates::load(None)?, &Overrides::default())?;
        if mtls {
            for r in &mut resources {
                if let meshproxy::istio::Resource::DestinationRule(dr) = r {
                    dr.spec.traffic_policy = Some(meshproxy::istio::TrafficPolicy {
                        tls: Some(meshproxy::istio::ClientTlsSettings {
                            mode: meshproxy::istio::TlsMode::IstioMutual,
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                }
            }
        }
        target.apply(&resources, ApplyOptions::default()).await?;

        // meshproxy, in-process.
        let mut settings = meshproxy::Settings::local(&dir);
        if mtls {
            settings.tls.mesh = Some(meshproxy::tls::MeshIdentityFiles {
                cert: pki.join("meshproxy.crt"),
                key: pki.join("meshproxy.key"),
                ca: pki.join("ca.crt"),
            });
        }
        let proxy = meshproxy::start(settings)
            .await
            .context("starting meshproxy")?;
        let metrics_url = format!("http://{}/metrics", proxy.admin_addr());
        let reporter = Reporter::new(format(global), Term::detect());
        if format(global) == Format::Text {
            reporter.line(&format!(
                "demo: meshproxy on {} (metrics {metrics_url}), v1 on {v1}, v2 on {v2}{}, files in {}",
                proxy.listen_addr(),
                if bad_canary { " (failing 20%: --bad-canary)" } else { "" },
                dir.display()
            ));
            if mtls {
                reporter.line(&format!(
                    "demo: meshproxy -> v1/v2 over mutual TLS (DestinationRule ISTIO_MUTUAL), certificates in {}",
                    pki.display()
                ));
            }
            reporter.line(&format!(
                "demo: sending {RATE} requests/s to http://{} (Host: {SERVICE}){}",
                proxy.listen_addr(),
                if mark { format!(", every {AB_EVERY}th with {AB_HEADER}: true") } else { String::new() }
            ));
        }
        let stats = Arc::new(LoadStats::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let load_task = load(proxy.listen_addr(), mark, stats.clone(), stop_rx);
        let metrics = ProxyMetrics::new(&metrics_url, Duration::from_secs(2))?;
        let mut signals = interrupts()?;

        // Wait (bounded) until the proxy reports traffic, so the first window has data.
        let ready = async {
            for _ in 0..100 {
                if metrics.scrape(SERVICE).await.is_ok() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        };
        let outcome = tokio::select! {
            ready = ready => {
                if !ready {
                    Err(anyhow::anyhow!("meshproxy reported no traffic for {SERVICE} within 10s at {metrics_url}"))
                } else {
                    let req = StartRequest {
                        strategy: strategy.clone(),
                        pace: None,
                        service: SERVICE.to_owned(),
                        to: "v2".parse()?,
                        from: Some("v1".parse()?),
                        steps: rollout.steps.clone(),
                        interval: rollout.interval,
                        threshold: rollout.threshold,
                        step_timeout: rollout.timeout,
                        manual_promotion: false,
                        thresholds: Thresholds {
                            success_rate: rollout.success_rate,
                            max_p99: rollout.max_p99,
                            min_requests: rollout.min_requests,
                            confidence: Thresholds::default().confidence,
                        },
                        on_interrupt: rollout.on_interrupt,
                        no_wait_on_pause: false,
                        webhooks: Webhooks::default(),
                        sticky_cookie: None,
                    };
                    let signals_for_driver = signals.clone();
                    drive(&target, &metrics, &reporter, req, signals_for_driver).await.map(|(o, state)| {
                        if format(global) == Format::Text {
                            reporter.line(&table::summary(&state));
                        }
                        o
                    })
                }
            }
            _ = signals.changed() => Ok(Outcome::Error),
        };
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), load_task).await;
        proxy.shutdown().await;
        if format(global) == Format::Text {
            reporter.line(&format!(
                "demo: load generator: {} ok, {} failed; answered by v1 {}, v2 {}",
                stats.ok.load(Ordering::Relaxed),
                stats.failed.load(Ordering::Relaxed),
                stats.v1.load(Ordering::Relaxed),
                stats.v2.load(Ordering::Relaxed)
            ));
        }
        outcome
    }
    .await;
    v1_task.abort();
    v2_task.abort();
    drop(temp);
    result
}
