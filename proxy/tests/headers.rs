//! Istio header operations (`headers.request` / `headers.response` with
//! `set`, `add`, `remove`, on a route and on its destinations), and the
//! sticky-session VirtualService shape meshctl renders, served by a proxy
//! started without `--sticky-cookie`.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::util::*;

/// An upstream that echoes the request headers as its body and answers
/// with its own `set-cookie` and an `x-internal` header.
async fn echo_with_headers(version: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| async move {
                    let mut body = format!("version: {version}\n");
                    for (k, v) in req.headers() {
                        body.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
                    }
                    let resp = Response::builder()
                        .header("set-cookie", "session=abc; Path=/")
                        .header("x-internal", "secret")
                        .body(Full::new(Bytes::from(body)))
                        .unwrap();
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

const OPS: &str = "  - name: primary
    headers:
      request:
        remove: [x-debug]
      response:
        set: {x-route: primary}
    route:
    - destination: {host: svc, subset: v1}
      weight: 100
      headers:
        request:
          set: {x-version: v1}
          add: {x-trace: meshproxy}
        response:
          add: {set-cookie: \"ver=v1; Path=/; HttpOnly; SameSite=Lax\"}
          remove: [x-internal]
    - destination: {host: svc, subset: v2}
      weight: 0
";

#[tokio::test]
async fn virtual_service_header_operations_are_applied() {
    let v1 = echo_with_headers("v1").await;
    let v2 = echo_with_headers("v2").await;
    let cfg = ConfigDir::new(OPS, &[v1], &[v2]);
    let p = proxy(cfg.path()).await;
    let r = send(
        &client(),
        p.listen_addr(),
        Request::get("/")
            .header("host", "svc")
            .header("x-debug", "1")
            .header("x-version", "from-client")
            .header("x-trace", "client"),
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = r.body;
    // Request: route `remove`, destination `set` (replaces) and `add` (appends).
    assert!(seen.contains("version: v1\n"), "{seen}");
    assert!(!seen.contains("x-debug"), "{seen}");
    assert!(seen.contains("x-version: v1\n"), "{seen}");
    assert!(!seen.contains("from-client"), "{seen}");
    assert!(
        seen.contains("x-trace: client\n") && seen.contains("x-trace: meshproxy\n"),
        "{seen}"
    );
    // Response: the upstream's own cookie kept, ours added; x-internal
    // removed; the route's `set` present.
    let cookies: Vec<_> = r.headers.get_all("set-cookie").iter().collect();
    assert_eq!(
        cookies,
        [
            "session=abc; Path=/",
            "ver=v1; Path=/; HttpOnly; SameSite=Lax"
        ]
    );
    assert!(r.headers.get("x-internal").is_none(), "{:?}", r.headers);
    assert_eq!(r.headers["x-route"], "primary");

    // A route without operations changes nothing.
    cfg.write_routes(&split(100, 0));
    eventually("reload", || async { p.live().generation() == 2 }).await;
    let r = send(
        &client(),
        p.listen_addr(),
        Request::get("/")
            .header("host", "svc")
            .header("x-debug", "1"),
        Bytes::new(),
    )
    .await;
    assert!(r.body.contains("x-debug: 1\n"), "{}", r.body);
    assert_eq!(r.headers["x-internal"], "secret");
    assert_eq!(r.headers.get_all("set-cookie").iter().count(), 1);
    p.shutdown().await;
}

#[tokio::test]
async fn invalid_header_operations_are_rejected() {
    let v1 = upstream().body("v1").run().await;
    let cfg = ConfigDir::new(&split(100, 0), &[v1.addr], &[v1.addr]);
    let p = proxy(cfg.path()).await;
    cfg.write_routes(
        "  - route: [{destination: {host: svc, subset: v1}}]\n    headers: {request: {set: {\":path\": /admin}}}\n",
    );
    eventually("reload failure counted", || async {
        let m = admin_get(p.admin_addr(), "/metrics").await.body;
        metric_value(&m, "meshproxy_config_reload_failures_total", &[]) == 1.0
    })
    .await;
    assert_eq!(p.live().generation(), 1);
    assert_eq!(get(&client(), p.listen_addr(), "svc", "/").await.body, "v1");
    p.shutdown().await;
}

/// The sticky-session routes `meshctl rollout start --sticky-cookie` writes:
/// one cookie-matched route per version with traffic, then the weighted
/// route whose destinations set the cookie.
fn sticky(v1: u32, v2: u32) -> String {
    let mut s = String::new();
    for (v, w) in [("v1", v1), ("v2", v2)] {
        if w > 0 {
            s.push_str(&format!(
                "  - name: meshctl-sticky-{v}\n    match:\n    - headers:\n        cookie: {{regex: \"^(.*?;\\\\s*)?ver={v}(;.*)?$\"}}\n    route: [{{destination: {{host: svc, subset: {v}}}}}]\n"
            ));
        }
    }
    s.push_str("  - name: primary\n    route:\n");
    for (v, w) in [("v1", v1), ("v2", v2)] {
        s.push_str(&format!(
            "    - destination: {{host: svc, subset: {v}}}\n      weight: {w}\n      headers: {{response: {{add: {{set-cookie: \"ver={v}; Path=/; HttpOnly; SameSite=Lax\"}}}}}}\n"
        ));
    }
    s
}

#[tokio::test]
async fn rendered_sticky_routes_pin_clients_without_the_proxy_flag() {
    let v1 = upstream().body("v1").run().await;
    let v2 = upstream().body("v2").run().await;
    let cfg = ConfigDir::new(&sticky(50, 50), &[v1.addr], &[v2.addr]);
    let p = proxy(cfg.path()).await;
    let c = client();
    let a = p.listen_addr();
    let with_cookie = |cookie: &'static str| {
        let c = c.clone();
        async move {
            send(
                &c,
                a,
                Request::get("/")
                    .header("host", "svc")
                    .header("cookie", cookie),
                Bytes::new(),
            )
            .await
        }
    };
    // A new client is told the version it got.
    let r = get(&c, a, "svc", "/").await;
    assert_eq!(
        r.headers["set-cookie"].to_str().unwrap(),
        format!("ver={}; Path=/; HttpOnly; SameSite=Lax", r.body)
    );
    // Pinned clients stay, among other cookies, and get no new cookie.
    for _ in 0..20 {
        let r = with_cookie("a=1; ver=v2; b=2").await;
        assert_eq!(r.body, "v2");
        assert!(r.headers.get("set-cookie").is_none());
        assert_eq!(with_cookie("ver=v1").await.body, "v1");
    }
    // Rolled back: no sticky route for v2, so its clients fall through to
    // the weighted route and are re-pinned to v1.
    cfg.write_routes(&sticky(100, 0));
    eventually("reload", || async { p.live().generation() == 2 }).await;
    let r = with_cookie("ver=v2").await;
    assert_eq!(r.body, "v1");
    assert_eq!(
        r.headers["set-cookie"].to_str().unwrap(),
        "ver=v1; Path=/; HttpOnly; SameSite=Lax"
    );
    p.shutdown().await;
}
