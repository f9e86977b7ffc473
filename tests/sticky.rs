//! Sticky sessions end to end (issue 7): the real `meshctl` binary runs
//! `rollout start --sticky-cookie ver` on a local directory target; meshproxy
//! (in process, the library the binary runs, started without its own
//! `--sticky-cookie`) serves that directory in front of real v1 and v2
//! upstreams on 127.0.0.1. A client that keeps its cookie stays on its
//! version while the weights move from 10 to 50; new clients still split by
//! the weights; after `meshctl rollback` every client ends on v1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mesh_test_support::upstream::{client, send};
use mesh_test_support::{discounts_endpoints, upstream, wait_exit};
use meshctl::rollout::state::{Phase, RolloutState};
use meshproxy::istio::{Resource, VirtualService};
use tokio::time::Instant;

use mesh_test_support::meshctl::words;

use crate::util::meshctl;

/// Bound on every wait in this test.
const WAIT: Duration = Duration::from_secs(60);

/// One response: the body (the version) and the `set-cookie` value, if any.
#[derive(Debug)]
struct Reply {
    body: String,
    set_cookie: Option<String>,
}

/// `GET /` with `Host: discounts` and an optional `Cookie` header, on a
/// new connection.
async fn get(proxy: SocketAddr, cookie: Option<&str>) -> Reply {
    let mut req = http::Request::get("/").header("host", "discounts");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let reply = send(&client(), proxy, req, "").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    Reply {
        body: reply.body,
        set_cookie: reply
            .headers
            .get("set-cookie")
            .map(|v| v.to_str().expect("an ASCII set-cookie").to_owned()),
    }
}

/// A client with a one-cookie jar: it sends what it was last told to set.
struct Client {
    cookie: Option<String>,
}

impl Client {
    async fn get(&mut self, proxy: SocketAddr) -> Reply {
        let r = get(proxy, self.cookie.as_deref()).await;
        if let Some(set) = &r.set_cookie {
            assert_eq!(
                set,
                &format!("ver={}; Path=/; HttpOnly; SameSite=Lax", r.body),
                "the cookie names the version that answered"
            );
            self.cookie = set.split(';').next().map(str::to_owned);
        }
        r
    }
}

fn read_vs(dir: &Path) -> Option<VirtualService> {
    let text = std::fs::read_to_string(dir.join("discounts.yaml")).ok()?;
    meshproxy::istio::yaml::parse_resources(&text)
        .ok()?
        .into_iter()
        .find_map(|r| match r {
            Resource::VirtualService(vs) => Some(vs),
            _ => None,
        })
}

fn route_names(dir: &Path) -> Vec<String> {
    read_vs(dir)
        .expect("a VirtualService")
        .spec
        .http
        .iter()
        .map(|r| r.name.clone().unwrap_or_default())
        .collect()
}

async fn wait_for_state(dir: &Path, what: &str, pred: impl Fn(&RolloutState) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(s) = read_vs(dir).and_then(|vs| RolloutState::read(&vs).ok())
            && pred(&s)
        {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_cookie_keeps_each_client_on_one_version_across_weight_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_path: PathBuf = dir.path().to_owned();
    let (v1, v2) = (
        upstream().body("v1").run().await.addr,
        upstream().body("v2").run().await.addr,
    );
    std::fs::write(
        dir.path().join("endpoints.yaml"),
        discounts_endpoints(&[("v1", v1), ("v2", v2)]),
    )
    .expect("endpoints");
    meshctl()
        .local(&dir_path)
        .args(["apply", "discounts", "--versions", "v1,v2"])
        .run_ok();

    let mut settings = meshproxy::Settings::local(dir.path());
    settings.workers = Some(1);
    settings.reload_debounce = Duration::from_millis(20);
    assert_eq!(settings.forward.sticky_cookie, None);
    let proxy = meshproxy::start(settings).await.expect("meshproxy starts");
    let p = proxy.listen_addr();
    assert_eq!(get(p, None).await.body, "v1");

    // Background traffic from new clients, so each step has data to judge.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + WAIT;
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                get(p, None).await;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };

    let log = std::fs::File::create(dir.path().join(".driver.log")).expect("log");
    let mut driver = meshctl()
        .local(dir.path())
        .args(["rollout", "start", "discounts", "--to", "v2"])
        .args(["--steps", "10,50", "--interval", "1s", "--manual-promotion"])
        .args(["--min-requests", "5", "--sticky-cookie", "ver"])
        .arg("--metrics")
        .arg(format!("http://{}/metrics", proxy.admin_addr()))
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawning meshctl rollout start");

    wait_for_state(&dir_path, "step 1 (v2 at 10%)", |s| {
        s.weights.get("v2") == Some(&10)
    })
    .await;
    assert_eq!(
        route_names(&dir_path),
        ["meshctl-sticky-v1", "meshctl-sticky-v2", "primary"]
    );
    // Two new clients, one pinned to each version (v2 takes 10%: bounded).
    let (mut on_v1, mut on_v2) = (None, None);
    for _ in 0..2_000 {
        let mut c = Client { cookie: None };
        let r = c.get(p).await;
        if r.set_cookie.is_none() {
            // The proxy has not loaded the sticky routes yet.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        match r.body.as_str() {
            "v1" if on_v1.is_none() => on_v1 = Some(c),
            "v2" if on_v2.is_none() => on_v2 = Some(c),
            _ => {}
        }
        if on_v1.is_some() && on_v2.is_some() {
            break;
        }
    }
    let (mut on_v1, mut on_v2) = (
        on_v1.expect("a client pinned to v1"),
        on_v2.expect("a client pinned to v2"),
    );

    // Across the weight change 10 → 50, every request of each stays put.
    let mut sent = 0;
    let mut after = 0;
    let deadline = Instant::now() + WAIT;
    while after < 50 {
        assert!(Instant::now() < deadline, "the rollout never reached 50%");
        for (c, version) in [(&mut on_v1, "v1"), (&mut on_v2, "v2")] {
            let r = c.get(p).await;
            assert_eq!(
                r.body, version,
                "a pinned client moved after {sent} requests"
            );
            assert_eq!(r.set_cookie, None, "a pinned client is not re-pinned");
        }
        sent += 2;
        let paused = read_vs(&dir_path)
            .and_then(|vs| RolloutState::read(&vs).ok())
            .is_some_and(|s| s.phase == Phase::Paused);
        if paused {
            after += 1;
        }
    }
    let state = read_vs(&dir_path)
        .and_then(|vs| RolloutState::read(&vs).ok())
        .expect("state");
    assert_eq!(state.weights_text(), "v1=50 v2=50");
    assert_eq!(state.sticky_cookie.expect("recorded").as_str(), "ver");

    // New clients still split by the weights (50/50; ±80 is > 5 sd).
    let mut fresh_v2 = 0;
    for _ in 0..400 {
        let mut c = Client { cookie: None };
        if c.get(p).await.body == "v2" {
            fresh_v2 += 1;
        }
    }
    println!(
        "pinned clients: {sent} requests across 10% -> 50%, none moved; new clients at 50/50: {fresh_v2}/400 on v2"
    );
    assert!(
        (120..=280).contains(&fresh_v2),
        "{fresh_v2} of 400 new clients on v2 at 50/50"
    );

    // Rollback from another process: v2's sticky route goes in the same write.
    meshctl()
        .local(&dir_path)
        .args(["rollback", "discounts"])
        .run_ok();
    assert_eq!(
        tokio::task::block_in_place(|| wait_exit(&mut driver, WAIT)).code(),
        Some(3),
        "the driver exits 3 after a rollback"
    );
    assert_eq!(route_names(&dir_path), ["meshctl-sticky-v1", "primary"]);
    let deadline = Instant::now() + WAIT;
    while get(p, Some("ver=v2")).await.body != "v1" {
        assert!(
            Instant::now() < deadline,
            "meshproxy never loaded the rollback"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The v2 client falls through to the weighted route and is re-pinned.
    let r = on_v2.get(p).await;
    assert_eq!(
        (r.body.as_str(), r.set_cookie.as_deref()),
        ("v1", Some("ver=v1; Path=/; HttpOnly; SameSite=Lax"))
    );
    let mut fresh = Client { cookie: None };
    for c in [&mut on_v1, &mut on_v2, &mut fresh] {
        for _ in 0..20 {
            assert_eq!(c.get(p).await.body, "v1");
        }
    }
    stop.store(true, Ordering::SeqCst);
    load.await.expect("load task");
    proxy.shutdown().await;
}

#[test]
fn rollout_start_rejects_a_bad_cookie_name_before_touching_the_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, err) = meshctl()
        .local(dir.path())
        .args([
            "rollout",
            "start",
            "discounts",
            "--to",
            "v2",
            "--sticky-cookie",
            "my;cookie",
        ])
        .run_code(1);
    assert_eq!(
        format!("{out}{err}"),
        "error: --sticky-cookie \"my;cookie\": \"my;cookie\" is not a valid cookie name: it holds a character not allowed in a cookie name (space, quote, `=`, `;`, `,`, `/`, brackets or a control character); use letters, digits and !#$%&'*+-.^_`|~ (e.g. meshctl-version)\n"
    );
    assert!(
        std::fs::read_dir(dir.path()).expect("dir").next().is_none(),
        "nothing written"
    );
}

/// On Kubernetes (the fake API server, validating against Istio's CRDs when
/// they are available): the sticky routes and `set-cookie` operations are
/// accepted, and `promote` from another process rewrites them in the same
/// write as the weights.
#[test]
fn sticky_rollout_on_kubernetes_is_accepted_and_promote_keeps_it_consistent() {
    use crate::rollout_harness::{Backend, Behaviour, Mesh};

    let names = |mesh: &Mesh| -> Vec<String> {
        mesh.virtual_service()
            .spec
            .http
            .iter()
            .map(|r| r.name.clone().unwrap_or_default())
            .collect()
    };
    let cookies = |mesh: &Mesh| -> Vec<String> {
        let vs = mesh.virtual_service();
        let weighted = vs.spec.http.last().expect("the weighted route");
        weighted
            .route
            .iter()
            .map(|d| {
                d.headers
                    .as_ref()
                    .expect("headers")
                    .response
                    .as_ref()
                    .expect("response")
                    .add["set-cookie"]
                    .clone()
            })
            .collect()
    };
    let mesh = Mesh::start_on(Backend::Kube, Behaviour::healthy());
    mesh.rollout(&words(
        "--steps 50 --manual-promotion --no-wait-on-pause --sticky-cookie ver",
    ))
    .run_code(5);
    assert_eq!(names(&mesh), ["meshctl-sticky-v1", "meshctl-sticky-v2", ""]);
    assert_eq!(
        cookies(&mesh),
        [
            "ver=v1; Path=/; HttpOnly; SameSite=Lax",
            "ver=v2; Path=/; HttpOnly; SameSite=Lax"
        ]
    );
    mesh.meshctl(&["promote", "discounts"]).run_code(0);
    assert_eq!(names(&mesh), ["meshctl-sticky-v2", ""]);
    assert_eq!(cookies(&mesh).len(), 2);
    let state = mesh.state().expect("state");
    assert_eq!(state.phase, Phase::Promoted);
    assert_eq!(state.sticky_cookie.expect("cookie").as_str(), "ver");

    // The next rollout, without the flag, keeps the cookie it finds.
    let mut next = mesh.meshctl(&[
        "rollout",
        "start",
        "discounts",
        "--to",
        "v1",
        "--from",
        "v2",
        "--metrics",
        &mesh.metrics_url,
        "--interval",
        "300ms",
        "--min-requests",
        "10",
    ]);
    next.args(["--steps", "50", "--manual-promotion", "--no-wait-on-pause"]);
    next.run_code(5);
    let state = mesh.state().expect("state");
    assert_eq!(state.sticky_cookie.expect("cookie kept").as_str(), "ver");
    assert_eq!(names(&mesh), ["meshctl-sticky-v1", "meshctl-sticky-v2", ""]);
}
