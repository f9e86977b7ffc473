//! Routing: weighted split, match rules, hosts, HTTP/2, forwarded headers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::Request;

use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_90_10_is_within_one_point_over_10000_requests() {
    let v1 = upstream().body("v1").run().await;
    let v2 = upstream().body("v2").run().await;
    let cfg = ConfigDir::new(&split(90, 10), &[v1.addr], &[v2.addr]);
    let p = proxy(cfg.path()).await;
    let addr = p.listen_addr();
    let v2_count = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let v2_count = v2_count.clone();
        tasks.push(tokio::spawn(async move {
            let c = client();
            for _ in 0..625 {
                let r = get(&c, addr, "svc", "/").await;
                assert_eq!(r.status, 200, "{r:?}");
                if r.body == "v2" {
                    v2_count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let share = v2_count.load(Ordering::Relaxed) as f64 / 100.0;
    assert!((share - 10.0).abs() <= 1.0, "v2 got {share}% of 10,000");
    assert_eq!(v1.hits() + v2.hits(), 10_000);
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_99_1_is_within_one_point() {
    let v1 = upstream().body("v1").run().await;
    let v2 = upstream().body("v2").run().await;
    let cfg = ConfigDir::new(&split(99, 1), &[v1.addr], &[v2.addr]);
    let p = proxy(cfg.path()).await;
    let c = client();
    for _ in 0..2_000 {
        assert_eq!(get(&c, p.listen_addr(), "svc", "/").await.status, 200);
    }
    let share = v2.hits() as f64 / 20.0;
    assert!((share - 1.0).abs() <= 1.0, "v2 got {share}%");
    assert_eq!(v2.hits(), 20, "smooth WRR is exact over whole cycles");
    p.shutdown().await;
}

#[tokio::test]
async fn match_rules_pick_the_first_matching_route() {
    let v1 = upstream().body("v1").run().await;
    let v2 = upstream().body("v2").run().await;
    let http = r#"
  - name: canary-header
    match:
    - headers: {x-canary: {exact: "always"}}
    - headers: {cookie: {regex: ".*canary=yes.*"}}
    route: [{destination: {host: svc, subset: v2}}]
  - name: items-post
    match: [{uri: {regex: "/items/[0-9]+"}, method: {exact: POST}}]
    route: [{destination: {host: svc, subset: v2}}]
  - name: beta-prefix
    match: [{uri: {prefix: /beta/}}]
    route: [{destination: {host: svc, subset: v2}}]
  - name: default
    route: [{destination: {host: svc, subset: v1}}]
"#
    .trim_start_matches('\n');
    let cfg = ConfigDir::new(http, &[v1.addr], &[v2.addr]);
    let p = proxy(cfg.path()).await;
    let a = p.listen_addr();
    let c = client();
    let body = |b: http::request::Builder| {
        let c = c.clone();
        async move { send(&c, a, b, Bytes::new()).await.body }
    };
    let host = |m: &str, path: &str| Request::builder().method(m).uri(path).header("host", "svc");
    assert_eq!(
        body(host("GET", "/x").header("x-canary", "always")).await,
        "v2"
    );
    assert_eq!(
        body(host("GET", "/x").header("x-canary", "sometimes")).await,
        "v1"
    );
    assert_eq!(
        body(host("GET", "/x").header("cookie", "a=1; canary=yes")).await,
        "v2"
    );
    assert_eq!(body(host("POST", "/items/17")).await, "v2");
    assert_eq!(body(host("GET", "/items/17")).await, "v1");
    assert_eq!(
        body(host("POST", "/items/17/extra")).await,
        "v1",
        "regex is a full match"
    );
    assert_eq!(body(host("GET", "/beta/x?y=1")).await, "v2");
    assert_eq!(body(host("GET", "/betamax")).await, "v1");
    p.shutdown().await;
}

#[tokio::test]
async fn hosts_route_by_host_header_and_unknown_hosts_get_404_nr() {
    let v1 = upstream().body("v1").run().await;
    let cfg = ConfigDir::new(&split(100, 0), &[v1.addr], &[]);
    let p = proxy(cfg.path()).await;
    let c = client();
    for host in [
        "svc",
        "svc:15001",
        "SVC.example.com",
        "svc.default.svc.cluster.local",
    ] {
        let r = get(&c, p.listen_addr(), host, "/").await;
        assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "v1"), "{host}");
    }
    let r = get(&c, p.listen_addr(), "other.example.com", "/").await;
    assert_eq!(r.status, 404);
    let m = admin_get(p.admin_addr(), "/metrics").await.body;
    assert_eq!(
        metric_value(
            &m,
            "istio_requests_total",
            &[("response_code", "404"), ("response_flags", "NR")]
        ),
        1.0,
        "{m}"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn h2c_clients_are_proxied_with_forwarded_headers_and_streamed_bodies() {
    let echo = upstream().echo().run().await;
    let cfg = ConfigDir::new(&split(100, 0), &[echo.addr], &[]);
    let p = proxy(cfg.path()).await;
    let a = p.listen_addr();
    // HTTP/2 with prior knowledge over a raw connection to the proxy, so
    // :authority is the service's host: it selects the route, and the
    // upstream gets HTTP/1.1 with a Host header.
    let tcp = tokio::net::TcpStream::connect(a).await.unwrap();
    let (mut send_req, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = Request::post("http://svc.example.com/echo?q=1")
        .header("x-forwarded-for", "10.0.0.1")
        .body(http_body_util::Full::new(Bytes::from(vec![b'a'; 100_000])))
        .unwrap();
    let resp = tokio::time::timeout(WAIT, send_req.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let text = String::from_utf8(
        http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(text.starts_with("POST /echo?q=1 HTTP/1.1\n"), "{text}");
    assert!(
        text.contains("x-forwarded-for: 10.0.0.1, 127.0.0.1\n"),
        "{text}"
    );
    assert!(text.contains("x-request-id: "), "{text}");
    assert!(text.contains("x-forwarded-proto: http\n"), "{text}");
    assert!(text.contains("body-len: 100000\n"), "{text}");
    // The lean HTTP/1.1 lane saw the preface and handed the connection over.
    let m = admin_get(p.admin_addr(), "/metrics").await.body;
    assert_eq!(
        metric_value(
            &m,
            "meshproxy_http1_handoffs_total",
            &[("reason", "h2_prior_knowledge")]
        ),
        1.0,
        "{m}"
    );

    // HTTP/1.1: the client's request id is kept, Host is passed through,
    // hop-by-hop headers (and those named in Connection) are not.
    let r = send(
        &client(),
        a,
        Request::get("/h1")
            .header("host", "svc")
            .header("x-request-id", "abc-123")
            .header("connection", "x-drop-me")
            .header("x-drop-me", "secret"),
        Bytes::new(),
    )
    .await;
    assert!(!r.body.contains("x-drop-me"), "{}", r.body);
    assert!(r.body.contains("x-request-id: abc-123\n"), "{}", r.body);
    assert!(r.body.contains("host: svc\n"), "{}", r.body);
    p.shutdown().await;
}
