//! `meshctl demo` as a library: the workloads (small upstreams and load
//! generators that run on loopback next to an in-process meshproxy, and
//! what the load generators saw) and the [`lab`] that wires them to
//! meshproxy, the rendered resources and a local directory target.

pub mod grpc;
pub mod http;
pub mod lab;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use meshproxy::istio::Resource;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::MetricsSource;

/// `endpoints.yaml` for `service` with v1 at `v1` and v2 at `v2`; with
/// `grpc` the service port is declared `grpc`, so meshproxy reaches the
/// upstreams over HTTP/2, as Istio would.
#[must_use]
pub fn endpoints_yaml(service: &str, v1: SocketAddr, v2: SocketAddr, grpc: bool) -> String {
    let port = if grpc { "    port: {name: grpc}\n" } else { "" };
    format!(
        "# Written by `meshctl demo`: where the subsets' endpoints listen.\nservices:\n  {service}:\n{port}    endpoints:\n    - address: {v1}\n      labels: {{version: v1}}\n    - address: {v2}\n      labels: {{version: v2}}\n"
    )
}

/// Sets `ISTIO_MUTUAL` client TLS on every DestinationRule in `resources`,
/// so meshproxy reaches the subsets over mutual TLS (`meshctl demo --mtls`).
pub fn istio_mutual(resources: &mut [Resource]) {
    for r in resources {
        if let Resource::DestinationRule(dr) = r {
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

/// Polls `metrics` every 100 ms until it reports traffic for `service`:
/// true then, false when `within` has passed first.
pub async fn first_traffic(metrics: &impl MetricsSource, service: &str, within: Duration) -> bool {
    let tries = within.as_millis() / 100;
    for _ in 0..tries {
        if metrics.scrape(service).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Listens on 127.0.0.1, port chosen by the system, and serves each
/// accepted connection with `serve` on a task of its own (an upstream of
/// the demo). The returned task accepts until it is aborted.
async fn listen<F, Fut>(serve: F) -> std::io::Result<(SocketAddr, JoinHandle<()>)>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serve(stream));
        }
    });
    Ok((addr, task))
}

/// How a load generator sends.
#[derive(Clone, Debug)]
pub struct Load {
    /// meshproxy's listener.
    pub proxy: SocketAddr,
    /// The service's host (`Host`, or `:authority`).
    pub authority: String,
    /// Requests per second.
    pub rate: u64,
    /// The longest the load runs.
    pub max_run: Duration,
    /// Every `n`-th request carries the header `(name, value)` (for `--strategy ab`).
    pub mark: Option<(&'static str, &'static str, u64)>,
}

/// A header a load generator sets on a request: `(name, value)`.
type Header = (&'static str, &'static str);

impl Load {
    /// The pace of this load: [`Pace::next`] returns `rate` times per
    /// second until `stop` changes or `max_run` has passed.
    fn pace(&self, stop: watch::Receiver<bool>) -> Pace {
        let rate = self.rate.max(1);
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        Pace {
            tick,
            sent: 0,
            max: rate.saturating_mul(self.max_run.as_secs().max(1)),
            mark: self.mark,
            stop,
        }
    }
}

/// When a load generator sends its next request (see [`Load::pace`]).
struct Pace {
    tick: tokio::time::Interval,
    sent: u64,
    max: u64,
    mark: Option<(&'static str, &'static str, u64)>,
    stop: watch::Receiver<bool>,
}

impl Pace {
    /// Waits for the next request's turn: `Some` with the header to mark it
    /// with (every n-th request of the mark), `None` when the load is over.
    async fn next(&mut self) -> Option<Option<Header>> {
        if self.sent >= self.max {
            return None;
        }
        tokio::select! {
            _ = self.tick.tick() => {}
            _ = self.stop.changed() => return None,
        }
        let i = self.sent;
        self.sent += 1;
        Some(match self.mark {
            Some((k, v, every)) if i.is_multiple_of(every.max(1)) => Some((k, v)),
            _ => None,
        })
    }
}

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
