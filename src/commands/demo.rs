//! `meshctl demo`: the whole product on one machine, no cluster. Starts
//! meshproxy in-process on loopback, two small upstreams (v1, v2), writes
//! the rendered resources and `endpoints.yaml` to a local directory target,
//! drives a bounded load through the proxy, and runs a real rollout through
//! the same code path as `meshctl rollout start`. `--bad-canary` makes v2
//! answer 20% of requests with a 500, so the rollout rolls back (exit 3).
//! `--protocol grpc` does the same with gRPC upstreams and unary calls: the port is declared `grpc`, so meshproxy
//! speaks HTTP/2 to them, and the bad canary's calls fail with `INTERNAL`.
//! Everything started here is stopped before returning, also on Ctrl-C.
//! The workloads (upstreams, load generators) live in [`crate::demo`]; this
//! file resolves the flags, wires the pieces together and reports.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::Outcome;
use crate::cli::{DemoArgs, DemoProtocol, GlobalArgs, SpecArgs, StrategyKind};
use crate::context;
use crate::demo::{self, Load, LoadStats, grpc, http};
use crate::drive::drive;
use crate::metrics::any::Endpoint;
use crate::metrics::proxy::ProxyMetrics;
use crate::output::{Format, table};
use crate::render::{self, Overrides, Templates};
use crate::rollout::strategy::{Preview, Strategy};
use crate::rollout::webhook::Webhooks;
use crate::signal::interrupts;
use crate::spec::start::StartSettings;
use crate::spec::{self, RolloutDefaults};
use crate::target::local::{LocalTarget, write_atomic};
use crate::target::{ApplyOptions, Target};

/// The demo's service name.
const SERVICE: &str = "discounts";
/// Requests per second of the load generator.
const RATE: u64 = 200;
/// Hard cap on the demo's duration (the load stops here at the latest).
const MAX_RUN: Duration = Duration::from_secs(120);
/// How long the demo waits for the proxy to report the first traffic.
const READY_WAIT: Duration = Duration::from_secs(10);

/// The header `--strategy ab` matches; the load generator sets it on every
/// [`AB_EVERY`]th request.
const AB_HEADER: &str = "x-canary";
const AB_EVERY: u64 = 4;

/// Analysis intervals of the `ab`, `mirror` and `bluegreen` demo stages.
const ITERATIONS: u32 = 2;

/// `meshctl demo`.
pub async fn run(global: &GlobalArgs, args: DemoArgs) -> anyhow::Result<Outcome> {
    let DemoArgs {
        bad_canary,
        interval,
        mtls,
        dir,
        strategy,
        protocol,
    } = args;
    if protocol == DemoProtocol::Grpc && mtls {
        anyhow::bail!(
            "--protocol grpc does not combine with --mtls: the demo's gRPC upstreams serve plain-text HTTP/2 (run one or the other)"
        );
    }
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
        interval,
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
    let fail_every = bad_canary.then_some(5);
    let ((v1, v1_task), (v2, v2_task)) = match protocol {
        DemoProtocol::Http => (
            http::upstream("v1", None, upstream_tls.clone())
                .await
                .context("binding an upstream on 127.0.0.1")?,
            http::upstream("v2", fail_every, upstream_tls)
                .await
                .context("binding an upstream on 127.0.0.1")?,
        ),
        DemoProtocol::Grpc => (
            grpc::upstream("v1", None)
                .await
                .context("binding a gRPC upstream on 127.0.0.1")?,
            grpc::upstream("v2", fail_every)
                .await
                .context("binding a gRPC upstream on 127.0.0.1")?,
        ),
    };
    let result = async {
        write_atomic(&dir.join("endpoints.yaml"), demo::endpoints_yaml(SERVICE, v1, v2, protocol == DemoProtocol::Grpc).as_bytes())
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
            demo::istio_mutual(&mut resources);
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
        let reporter = context::reporter(global);
        let text = context::format(global) == Format::Text;
        if text {
            reporter.line(&format!(
                "demo: meshproxy on {} (metrics {metrics_url}), v1 on {v1}, v2 on {v2}{}, files in {}",
                proxy.listen_addr(),
                match (bad_canary, protocol) {
                    (false, _) => "",
                    (true, DemoProtocol::Http) => " (failing 20%: --bad-canary)",
                    (true, DemoProtocol::Grpc) => " (failing 20% with INTERNAL: --bad-canary)",
                },
                dir.display()
            ));
            if mtls {
                reporter.line(&format!(
                    "demo: meshproxy -> v1/v2 over mutual TLS (DestinationRule ISTIO_MUTUAL), certificates in {}",
                    pki.display()
                ));
            }
            let what = match protocol {
                DemoProtocol::Http => format!("{RATE} requests/s to http://{} (Host: {SERVICE})", proxy.listen_addr()),
                DemoProtocol::Grpc => format!("{RATE} gRPC calls/s ({}) to {} (:authority {SERVICE}, HTTP/2)", grpc::METHOD, proxy.listen_addr()),
            };
            reporter.line(&format!(
                "demo: sending {what}{}",
                if mark { format!(", every {AB_EVERY}th with {AB_HEADER}: true") } else { String::new() }
            ));
        }
        let stats = Arc::new(LoadStats::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let load = Load {
            proxy: proxy.listen_addr(),
            authority: SERVICE.to_owned(),
            rate: RATE,
            max_run: MAX_RUN,
            mark: mark.then_some((AB_HEADER, "true", AB_EVERY)),
        };
        let load_task = match protocol {
            DemoProtocol::Http => http::load(load, stats.clone(), stop_rx),
            DemoProtocol::Grpc => grpc::load(load, stats.clone(), stop_rx),
        };
        let metrics = ProxyMetrics::new(&metrics_url, Duration::from_secs(2))?;
        let mut signals = interrupts()?;

        // Wait (bounded) until the proxy reports traffic, so the first window has data.
        let outcome = tokio::select! {
            ready = demo::first_traffic(&metrics, SERVICE, READY_WAIT) => {
                if !ready {
                    Err(anyhow::anyhow!("meshproxy reported no traffic for {SERVICE} within 10s at {metrics_url}"))
                } else {
                    let req = StartSettings {
                        service: SERVICE.to_owned(),
                        to: "v2".parse()?,
                        from: Some("v1".parse()?),
                        rollout: rollout.clone(),
                        strategy: strategy.clone(),
                        sticky_cookie: None,
                        metrics: Endpoint::Proxy(metrics_url.parse()?),
                        webhooks: Webhooks::default(),
                        istio_api: None,
                        no_wait_on_pause: false,
                    };
                    let signals_for_driver = signals.clone();
                    drive(&target, &metrics, &reporter, req, None, signals_for_driver).await.map(|(o, state)| {
                        if text {
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
        if text {
            reporter.line(&format!("demo: load generator: {}", stats.summary()));
        }
        outcome
    }
    .await;
    v1_task.abort();
    v2_task.abort();
    drop(temp);
    result
}
