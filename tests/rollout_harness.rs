//! Harness for the rollout end-to-end tests: a `discounts` service on either
//! target (a local directory, or the fake Kubernetes API server on
//! 127.0.0.1 with a generated kubeconfig), a traffic simulator that follows
//! the weights, the `meshctl-ab` match route and the route's mirror that
//! meshctl writes (as a proxy would: real requests `reporter="source"`,
//! mirrored copies `reporter="destination"`), and a real HTTP server on
//! 127.0.0.1:0 serving the simulated Istio counters as Prometheus text.
//!
//! The simulator stands in for meshproxy so these tests exercise meshctl's
//! driver alone; [`Proxied`] runs the real meshproxy (in process) in front
//! of real upstreams instead, on either target. [`on_both_targets!`] runs a
//! test body on both. Every loop is bounded in time.

/// Runs each test body (a `fn(Backend)`) on both targets: `name::local` and
/// `name::kube`, or with `body => local_name, kube_name;` under those names.
macro_rules! on_both_targets {
    ($($body:ident => $local:ident, $kube:ident);+ $(;)?) => {$(
        #[test]
        fn $local() {
            $body(crate::rollout_harness::Backend::Local);
        }

        #[test]
        fn $kube() {
            $body(crate::rollout_harness::Backend::Kube);
        }
    )+};
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn local() {
                super::$name(crate::rollout_harness::Backend::Local);
            }

            #[test]
            fn kube() {
                super::$name(crate::rollout_harness::Backend::Kube);
            }
        }
    )*};
}

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mesh_test_support::cluster::{Cluster, NS, blocking_cluster};
use mesh_test_support::fixture::discounts_endpoints_on;
use meshctl::metrics::MetricsSource;
use meshctl::metrics::proxy::ProxyMetrics;
use meshctl::rollout::state::{Phase, RolloutState};
use meshctl::target::{ApplyOptions, Target};
use meshproxy::istio::VirtualService;

pub use mesh_test_support::meshctl::wait_exit;

use crate::kube_support::ClusterTarget;
use crate::util::Meshctl;

/// Istio's default duration buckets (ms).
const BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// The `discounts` service with v1 routed 100% and subsets v1, v2.
pub use mesh_test_support::fixture::DISCOUNTS as RESOURCES;

/// How each version behaves.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Requests to the service per 20 ms tick.
    pub per_tick: f64,
    /// Error share per version.
    pub errors: BTreeMap<String, f64>,
    /// Latency per version (ms).
    pub latency_ms: BTreeMap<String, f64>,
    /// Percent of requests that carry the `ab` match (default 20).
    pub match_percent: u8,
}

impl Behaviour {
    /// Healthy v1 and v2, 10 requests per tick, 3 ms.
    pub fn healthy() -> Self {
        Self {
            per_tick: 10.0,
            errors: BTreeMap::new(),
            latency_ms: BTreeMap::new(),
            match_percent: 20,
        }
    }

    /// `version` fails this share of requests.
    #[must_use]
    pub fn failing(mut self, version: &str, share: f64) -> Self {
        self.errors.insert(version.to_owned(), share);
        self
    }

    /// `version` answers in `ms`.
    #[must_use]
    pub fn slow(mut self, version: &str, ms: f64) -> Self {
        self.latency_ms.insert(version.to_owned(), ms);
        self
    }

    /// Percent of requests carrying the `ab` match.
    #[must_use]
    pub fn matching(mut self, percent: u8) -> Self {
        self.match_percent = percent;
        self
    }

    /// Requests per tick.
    #[must_use]
    pub fn rate(mut self, per_tick: f64) -> Self {
        self.per_tick = per_tick;
        self
    }
}

#[derive(Clone, Debug, Default)]
struct Counter {
    requests: u64,
    errors: u64,
    carry: f64,
    error_carry: f64,
    latency_ms: f64,
}

/// Counters per reporter (`source` for real requests, `destination` for
/// mirrored copies, as meshproxy reports them), then per version.
type Counters = Arc<Mutex<BTreeMap<(&'static str, String), Counter>>>;

/// Reads the VirtualService as stored by the target.
type ReadVs = Arc<dyn Fn() -> Option<VirtualService> + Send + Sync>;

/// Where the service lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `--target local:DIR`.
    Local,
    /// `--target kube` against the fake API server.
    Kube,
}

/// A fake cluster kept alive with the mesh.
struct Kube {
    cluster: Cluster,
    // Dropped last: the fake API server runs on it.
    runtime: tokio::runtime::Runtime,
}

/// A mesh: target, traffic simulator, metrics server.
pub struct Mesh {
    /// A scratch directory (the target itself for [`Backend::Local`]).
    pub dir: tempfile::TempDir,
    /// The metrics URL.
    pub metrics_url: String,
    read_vs: ReadVs,
    counters: Counters,
    kube: Option<Kube>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// The VirtualService in a local target's file.
pub fn read_local(path: &Path) -> Option<VirtualService> {
    let text = std::fs::read_to_string(path).ok()?;
    let res = meshproxy::istio::yaml::parse_resources(&text).ok()?;
    res.into_iter().find_map(|r| match r {
        meshproxy::istio::Resource::VirtualService(vs) => Some(vs),
        _ => None,
    })
}

impl Mesh {
    /// Starts everything on the local directory target.
    pub fn start(behaviour: Behaviour) -> Self {
        Self::start_on(Backend::Local, behaviour)
    }

    /// Starts everything on `backend`.
    pub fn start_on(backend: Backend, behaviour: Behaviour) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (read_vs, kube): (ReadVs, Option<Kube>) = match backend {
            Backend::Local => {
                std::fs::write(dir.path().join("discounts.yaml"), RESOURCES)
                    .expect("writing resources");
                let path = dir.path().join("discounts.yaml");
                (Arc::new(move || read_local(&path)), None)
            }
            Backend::Kube => {
                let (runtime, cluster) = blocking_cluster();
                runtime.block_on(seed(&cluster));
                let reader = cluster.server.clone();
                let read: ReadVs = Arc::new(move || {
                    let v =
                        reader.object("networking.istio.io", "virtualservices", NS, "discounts")?;
                    serde_json::from_value(v).ok()
                });
                (read, Some(Kube { cluster, runtime }))
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let counters: Counters = Arc::default();
        let has_traffic = behaviour.per_tick > 0.0;
        let sim = {
            let (stop, counters, read) = (stop.clone(), counters.clone(), read_vs.clone());
            std::thread::spawn(move || simulate(&read, &behaviour, &counters, &stop))
        };
        let (addr, server) = serve_metrics(counters.clone(), stop.clone());
        let mesh = Self {
            dir,
            metrics_url: format!("http://{addr}/metrics"),
            read_vs,
            counters,
            kube,
            stop,
            threads: vec![sim, server],
        };
        // A rollout's first scrape must find the service's series even on a
        // loaded machine where the simulator thread starts late.
        if has_traffic {
            mesh.wait_for_requests("v1");
        }
        mesh
    }

    /// Waits (bounded) until the simulator has served real requests of
    /// `version`, so a scrape right after a weight change finds its series
    /// even when the machine is loaded and the simulator thread ran late.
    pub fn wait_for_requests(&self, version: &str) {
        for _ in 0..500 {
            let served = self
                .counters
                .lock()
                .expect("counters")
                .get(&("source", version.to_owned()))
                .is_some_and(|c| c.requests > 0);
            if served {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the simulator served no request of {version} within 10 s");
    }

    /// The global flags selecting the target.
    pub fn target_args(&self) -> Vec<String> {
        match &self.kube {
            None => vec![
                "--target".into(),
                format!("local:{}", self.dir.path().display()),
            ],
            Some(k) => vec![
                "--target".into(),
                "kube".into(),
                "--kubeconfig".into(),
                k.cluster.kubeconfig.display().to_string(),
            ],
        }
    }

    /// The fake cluster of the [`Backend::Kube`] mesh.
    pub fn cluster(&self) -> &Cluster {
        &self
            .kube
            .as_ref()
            .expect("a mesh started on Backend::Kube")
            .cluster
    }

    /// The VirtualService as the target stores it.
    pub fn virtual_service(&self) -> VirtualService {
        (self.read_vs)().expect("a VirtualService")
    }

    /// The recorded rollout state.
    pub fn state(&self) -> Option<RolloutState> {
        RolloutState::read(&(self.read_vs)()?).ok()
    }

    /// The weights applied on the route now.
    pub fn weights(&self) -> BTreeMap<String, u8> {
        meshctl::rollout::routes::current_weights(&self.virtual_service())
    }

    /// Waits (bounded) until the state satisfies `pred`.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&RolloutState) -> bool) -> RolloutState {
        for _ in 0..600 {
            if let Some(s) = self.state()
                && pred(&s)
            {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "timed out after 60s waiting for {what}; state: {:?}",
            self.state()
        );
    }

    /// The `meshctl rollout start` command with fast settings (300 ms windows).
    pub fn rollout(&self, extra: &[&str]) -> Meshctl {
        rollout_start(self.meshctl(&[]), &self.metrics_url, "300ms", extra)
    }

    /// `rollout start` in the background with its output discarded: a driver
    /// for another process to promote, roll back or signal.
    pub fn drive(&self, extra: &[&str]) -> Child {
        self.rollout(extra).spawn_quiet()
    }

    /// A ten-step driver at 1 s a step (slow enough to interrupt), returned
    /// once it has passed the first step.
    pub fn drive_slowly(&self, extra: &[&str]) -> Child {
        let mut args = vec![
            "--steps",
            "10,20,30,40,50,60,70,80,90,100",
            "--interval",
            "1s",
        ];
        args.extend_from_slice(extra);
        let driver = self.drive(&args);
        self.wait_for("step 2", |s| s.step >= 1);
        driver
    }

    /// Another meshctl command against the same target.
    pub fn meshctl(&self, args: &[&str]) -> Meshctl {
        let mut cmd = crate::util::meshctl();
        cmd.args(self.target_args()).args(args);
        cmd
    }

    /// The scratch directory (the target directory on the local backend).
    pub fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(k) = self.kube.take() {
            drop(k.cluster);
            k.runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// The `RESOURCES` applied to the fake cluster through meshctl's target.
async fn seed(cluster: &Cluster) {
    let resources = meshproxy::istio::yaml::parse_resources(RESOURCES).expect("resources");
    cluster
        .target()
        .await
        .apply(&resources, ApplyOptions::default())
        .await
        .expect("seeding the cluster");
}

/// `cmd rollout start discounts --to v2` judged on `metrics_url`, then
/// `extra`; `--interval interval` and `--min-requests 10` unless `extra`
/// sets them, and `--metrics` unless `extra` names `--prometheus`.
pub fn rollout_start(
    mut cmd: Meshctl,
    metrics_url: &str,
    interval: &str,
    extra: &[&str],
) -> Meshctl {
    cmd.args(["rollout", "start", "discounts", "--to", "v2"]);
    if !extra.contains(&"--prometheus") {
        cmd.args(["--metrics", metrics_url]);
    }
    cmd.args(extra);
    for (flag, default) in [("--interval", interval), ("--min-requests", "10")] {
        if !extra.contains(&flag) {
            cmd.args([flag, default]);
        }
    }
    cmd
}

/// How meshproxy talks to the upstreams of [`Proxied`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1: the port undeclared (local) or named `http` (cluster).
    Http,
    /// gRPC: the port declared `grpc-api` in endpoints.yaml (local), or
    /// named `grpc` with `appProtocol: grpc` in the EndpointSlice (cluster).
    Grpc,
}

/// A multi-threaded runtime (two workers) for meshproxy and the upstreams.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// meshproxy (in process, one worker) in front of the `discounts` upstreams,
/// on either target: on [`Backend::Local`] it watches the directory that is
/// the target, on [`Backend::Kube`] it follows the fake cluster (`--kube`).
pub struct Proxied {
    /// The scratch directory (the target and meshproxy's config on Local).
    pub dir: tempfile::TempDir,
    /// meshproxy's listener.
    pub proxy: SocketAddr,
    /// meshproxy's `/metrics`.
    pub metrics_url: String,
    cluster: Option<Cluster>,
    handle: Option<meshproxy::Handle>,
    /// The runtime everything runs on; dropped last.
    pub rt: tokio::runtime::Runtime,
}

impl Proxied {
    /// Starts meshproxy on `rt` in front of `upstreams` (version, address),
    /// with the `discounts` resources on `backend`.
    pub fn start(
        rt: tokio::runtime::Runtime,
        backend: Backend,
        protocol: Protocol,
        upstreams: &[(&str, SocketAddr)],
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = meshproxy::Settings::local(dir.path());
        settings.workers = Some(1);
        let cluster = match backend {
            Backend::Local => {
                std::fs::write(dir.path().join("discounts.yaml"), RESOURCES).expect("resources");
                let port = (protocol == Protocol::Grpc).then_some("grpc-api");
                std::fs::write(
                    dir.path().join("endpoints.yaml"),
                    discounts_endpoints_on(port, upstreams),
                )
                .expect("endpoints");
                None
            }
            Backend::Kube => {
                let cluster = rt.block_on(Cluster::start());
                rt.block_on(seed(&cluster));
                for (version, addr) in upstreams {
                    match protocol {
                        Protocol::Http => cluster.add_workload("discounts", version, *addr),
                        Protocol::Grpc => cluster.add_grpc_workload("discounts", version, *addr),
                    }
                }
                settings.kube = Some(meshproxy::KubeSource {
                    namespace: Some(NS.to_owned()),
                    kubeconfig: Some(cluster.kubeconfig.clone()),
                });
                Some(cluster)
            }
        };
        let handle = rt
            .block_on(meshproxy::start(settings))
            .expect("meshproxy starts");
        Self {
            proxy: handle.listen_addr(),
            metrics_url: format!("http://{}/metrics", handle.admin_addr()),
            dir,
            cluster,
            handle: Some(handle),
            rt,
        }
    }

    /// The scratch directory (the target directory on the local backend).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A meshctl command against the target.
    pub fn meshctl(&self, args: &[&str]) -> Meshctl {
        let mut cmd = crate::util::meshctl();
        match &self.cluster {
            Some(c) => cmd.kubeconfig(&c.kubeconfig),
            None => cmd.local(self.path()),
        };
        cmd.args(args);
        cmd
    }

    /// `meshctl rollout start discounts --to v2` on meshproxy's metrics,
    /// 1 s windows unless `extra` says otherwise (see [`rollout_start`]).
    pub fn rollout(&self, extra: &[&str]) -> Meshctl {
        rollout_start(self.meshctl(&[]), &self.metrics_url, "1s", extra)
    }

    /// The VirtualService as the target stores it.
    pub fn virtual_service(&self) -> VirtualService {
        match &self.cluster {
            Some(c) => serde_json::from_value(c.istio_object("virtualservices", "discounts"))
                .expect("a VirtualService"),
            None => read_local(&self.path().join("discounts.yaml")).expect("the VirtualService"),
        }
    }

    /// The recorded rollout state.
    pub fn state(&self) -> RolloutState {
        RolloutState::read(&self.virtual_service()).expect("rollout state")
    }

    /// Waits (bounded: 30 s) until meshproxy's metrics count requests to
    /// `version` of `discounts` (in cluster mode meshproxy first syncs from
    /// the API server); whether it did.
    pub fn saw_requests(&self, version: &str) -> bool {
        let source = ProxyMetrics::new(&self.metrics_url, Duration::from_secs(2)).expect("source");
        for _ in 0..300 {
            if self
                .rt
                .block_on(source.scrape("discounts"))
                .is_ok_and(|s| s.version(version).requests > 0.0)
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Stops meshproxy (bounded: 20 s); [`Drop`] does it too.
    pub fn shutdown(&mut self) {
        if let Some(h) = self.handle.take() {
            self.rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(20), h.shutdown()).await;
            });
        }
    }
}

impl Drop for Proxied {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A weight per version, as [`Mesh::weights`] returns them.
pub fn weights(pairs: &[(&str, u8)]) -> BTreeMap<String, u8> {
    pairs.iter().map(|(v, w)| ((*v).to_owned(), *w)).collect()
}

/// Waits (bounded, 60 s) for a background driver; its exit code.
pub fn exit_code(driver: &mut Child) -> Option<i32> {
    wait_exit(driver, Duration::from_secs(60)).code()
}

/// Is the phase one a driver is still working on?
pub fn active(s: &RolloutState) -> bool {
    matches!(s.phase, Phase::Progressing | Phase::Paused)
}

/// Share of traffic per subset: the weighted route, except that under an
/// `ab` rollout (first route `meshctl-ab`) `matched` percent of the requests
/// (a fifth by default) carry the match and go to its destination.
fn traffic_shares(vs: &VirtualService, matched: u8) -> BTreeMap<String, u8> {
    use meshctl::rollout::strategy::AB_ROUTE;
    let mut weighted = vs.clone();
    weighted
        .spec
        .http
        .retain(|r| r.name.as_deref() != Some(AB_ROUTE));
    let mut shares = meshctl::rollout::routes::current_weights(&weighted);
    if let Some(ab) = vs
        .spec
        .http
        .iter()
        .find(|r| r.name.as_deref() == Some(AB_ROUTE))
    {
        for w in shares.values_mut() {
            *w = u8::try_from(u16::from(*w) * u16::from(100 - matched) / 100).unwrap_or(100);
        }
        if let Some(s) = ab.route.first().and_then(|d| d.destination.subset.clone()) {
            *shares.entry(s).or_default() += matched;
        }
    }
    shares
}

/// Does the VirtualService carry the `meshctl-ab` match route?
pub fn has_ab_route(vs: &VirtualService) -> bool {
    use meshctl::rollout::strategy::AB_ROUTE;
    vs.spec
        .http
        .iter()
        .any(|r| r.name.as_deref() == Some(AB_ROUTE))
}

/// The subset the weighted route mirrors to and the mirrored share of all
/// requests, percent (a mirror on the weighted route copies its requests).
fn mirror_share(vs: &VirtualService, matched: u8) -> Option<(String, f64)> {
    use meshctl::rollout::strategy::AB_ROUTE;
    let ab = has_ab_route(vs);
    let route = vs.spec.http.iter().find(|r| {
        r.name.as_deref() != Some(AB_ROUTE)
            && r.route.iter().any(|d| d.destination.subset.is_some())
    })?;
    let subset = route.mirror.as_ref()?.subset.clone()?;
    let percent = route.mirror_percentage.map_or(100.0, |p| p.value);
    let unmatched = if ab {
        f64::from(100 - matched) / 100.0
    } else {
        1.0
    };
    Some((subset, percent * unmatched))
}

fn simulate(read: &ReadVs, b: &Behaviour, counters: &Counters, stop: &AtomicBool) {
    // Bounded: at most 3 minutes of traffic.
    for _ in 0..9000 {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Some((weights, mirror)) = read().map(|vs| {
            let shares = traffic_shares(&vs, b.match_percent)
                .into_iter()
                .map(|(v, w)| ("source", v, f64::from(w)));
            let mirrored = mirror_share(&vs, b.match_percent).map(|(v, p)| ("destination", v, p));
            (shares.collect::<Vec<_>>(), mirrored)
        }) {
            let mut c = counters.lock().expect("counters");
            for (reporter, v, w) in weights.into_iter().chain(mirror) {
                let e = c.entry((reporter, v.clone())).or_default();
                e.latency_ms = b.latency_ms.get(&v).copied().unwrap_or(3.0);
                e.carry += b.per_tick * w / 100.0;
                let n = e.carry.floor();
                e.carry -= n;
                e.error_carry += n * b.errors.get(&v).copied().unwrap_or(0.0);
                let errs = e.error_carry.floor();
                e.error_carry -= errs;
                // Counts are small whole numbers; the casts are exact.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                {
                    e.requests += n as u64;
                    e.errors += errs as u64;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn exposition(counters: &Counters) -> String {
    let c = counters.lock().expect("counters");
    let mut out = String::from("# TYPE istio_requests_total counter\n");
    for ((reporter, v), k) in c.iter() {
        let l = format!(
            "reporter=\"{reporter}\",source_workload=\"meshproxy\",destination_service=\"discounts.default.svc.cluster.local\",destination_service_name=\"discounts\",destination_version=\"{v}\""
        );
        out.push_str(&format!(
            "istio_requests_total{{{l},response_code=\"200\"}} {}\n",
            k.requests - k.errors
        ));
        out.push_str(&format!(
            "istio_requests_total{{{l},response_code=\"500\"}} {}\n",
            k.errors
        ));
        for le in BUCKETS {
            let n = if k.latency_ms <= le { k.requests } else { 0 };
            out.push_str(&format!(
                "istio_request_duration_milliseconds_bucket{{{l},le=\"{le}\"}} {n}\n"
            ));
        }
        out.push_str(&format!(
            "istio_request_duration_milliseconds_bucket{{{l},le=\"+Inf\"}} {}\n",
            k.requests
        ));
    }
    out
}

fn serve_metrics(counters: Counters, stop: Arc<AtomicBool>) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the metrics server");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("address");
    let handle = std::thread::spawn(move || {
        for _ in 0..360_000 {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            match listener.accept() {
                Ok((mut conn, _)) => {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut buf = [0u8; 4096];
                    let mut req = Vec::new();
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = exposition(&counters);
                    let _ = write!(
                        conn,
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    (addr, handle)
}
