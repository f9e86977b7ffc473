//! Upstream failures, timeouts, retries and fault injection.

use std::time::Duration;

use tokio::time::Instant;

use crate::util::*;

fn route(extra: &str) -> String {
    format!("  - route: [{{destination: {{host: svc, subset: v1}}}}]\n{extra}")
}

async fn metrics(p: &meshproxy::Handle) -> String {
    admin_get(p.admin_addr(), "/metrics").await.body
}

#[tokio::test]
async fn retries_5xx_until_the_upstream_answers() {
    let up = upstream().fail_first(2, 503).body("finally").run().await;
    let cfg = ConfigDir::new(
        &route("    retries: {attempts: 3, retryOn: 5xx}\n"),
        &[up.addr],
        &[],
    );
    let p = proxy(cfg.path()).await;
    let r = get(&client(), p.listen_addr(), "svc", "/").await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "finally"));
    assert_eq!(up.hits(), 3);
    // A POST with a small body is replayed too.
    let up2 = upstream().fail_first(1, 502).echo().run().await;
    cfg.write_endpoints(&[up2.addr], &[]);
    eventually("endpoints reload", || async { p.live().generation() == 2 }).await;
    let r = send(
        &client(),
        p.listen_addr(),
        http::Request::post("/").header("host", "svc"),
        bytes::Bytes::from_static(b"hello"),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("body-len: 5\n"), "{}", r.body);
    assert_eq!(up2.hits(), 2);
    p.shutdown().await;
}

#[tokio::test]
async fn retries_give_up_after_attempts_and_return_the_last_answer() {
    let up = upstream().fail_first(100, 500).run().await;
    let cfg = ConfigDir::new(
        &route("    retries: {attempts: 2, retryOn: \"gateway-error\"}\n"),
        &[up.addr],
        &[],
    );
    let p = proxy(cfg.path()).await;
    // 500 is not a gateway error: no retry.
    assert_eq!(
        get(&client(), p.listen_addr(), "svc", "/").await.status,
        500
    );
    assert_eq!(up.hits(), 1);
    cfg.write_routes(&route("    retries: {attempts: 2, retryOn: 5xx}\n"));
    eventually("reload", || async { p.live().generation() == 2 }).await;
    assert_eq!(
        get(&client(), p.listen_addr(), "svc", "/").await.status,
        500
    );
    assert_eq!(up.hits(), 1 + 3);
    p.shutdown().await;
}

#[tokio::test]
async fn per_try_timeout_retries_a_hung_upstream() {
    let up = upstream().hang_first(1).body("second try").run().await;
    let cfg = ConfigDir::new(
        &route("    retries: {attempts: 2, perTryTimeout: 300ms, retryOn: \"5xx\"}\n"),
        &[up.addr],
        &[],
    );
    let p = proxy(cfg.path()).await;
    let r = get(&client(), p.listen_addr(), "svc", "/").await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "second try"));
    assert_eq!(up.hits(), 2);
    p.shutdown().await;
}

#[tokio::test]
async fn route_timeout_gives_504_ut_in_bounded_time() {
    let up = upstream().hang_first(usize::MAX).run().await;
    let cfg = ConfigDir::new(&route("    timeout: 300ms\n"), &[up.addr], &[]);
    let p = proxy(cfg.path()).await;
    let start = Instant::now();
    let r = get(&client(), p.listen_addr(), "svc", "/").await;
    assert_eq!(r.status, 504);
    assert!(start.elapsed() < Duration::from_secs(10));
    let m = metrics(&p).await;
    assert_eq!(
        metric_value(
            &m,
            "istio_requests_total",
            &[
                ("destination_version", "v1"),
                ("response_code", "504"),
                ("response_flags", "UT")
            ]
        ),
        1.0,
        "{m}"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn upstream_down_gives_503_counted_with_uf() {
    let down = closed_port().await;
    let cfg = ConfigDir::new(&route(""), &[down], &[]);
    let p = proxy(cfg.path()).await;
    let r = get(&client(), p.listen_addr(), "svc", "/").await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("connection failure"), "{}", r.body);
    let m = metrics(&p).await;
    assert_eq!(
        metric_value(
            &m,
            "istio_requests_total",
            &[
                ("destination_service_name", "svc"),
                ("destination_version", "v1"),
                ("response_code", "503"),
                ("response_flags", "UF")
            ]
        ),
        1.0,
        "{m}"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn connection_reset_gives_503_uc_and_no_endpoints_gives_503_uh() {
    let reset = upstream().reset().run().await;
    let v2 = upstream().run().await;
    let cfg = ConfigDir::new(&route(""), &[reset.addr], &[v2.addr]);
    let p = proxy(cfg.path()).await;
    let r = get(&client(), p.listen_addr(), "svc", "/").await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("connection termination"), "{}", r.body);

    cfg.write_endpoints(&[], &[v2.addr]);
    eventually("reload", || async { p.live().generation() == 2 }).await;
    let r = get(&client(), p.listen_addr(), "svc", "/").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body, "no healthy upstream\n");
    let m = metrics(&p).await;
    assert_eq!(
        metric_value(&m, "istio_requests_total", &[("response_flags", "UC")]),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric_value(&m, "istio_requests_total", &[("response_flags", "UH")]),
        1.0,
        "{m}"
    );
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_abort_and_delay_hit_their_percentages() {
    let v1 = upstream().body("v1").run().await;
    let v2 = upstream().body("v2").run().await;
    // The demo's bad canary: v2 requests are aborted 30% of the time.
    let http = r#"
  - name: bad-canary
    match: [{headers: {x-version: {exact: v2}}}]
    fault: {abort: {httpStatus: 500, percentage: {value: 30}}}
    route: [{destination: {host: svc, subset: v2}}]
  - name: slow
    match: [{uri: {prefix: /slow}}]
    fault: {delay: {fixedDelay: 200ms, percentage: {value: 100}}}
    route: [{destination: {host: svc, subset: v1}}]
  - route: [{destination: {host: svc, subset: v1}}]
"#
    .trim_start_matches('\n');
    let cfg = ConfigDir::new(http, &[v1.addr], &[v2.addr]);
    let p = proxy(cfg.path()).await;
    let c = client();
    let mut aborted = 0;
    for _ in 0..2_000 {
        let r = send(
            &c,
            p.listen_addr(),
            http::Request::get("/")
                .header("host", "svc")
                .header("x-version", "v2"),
            bytes::Bytes::new(),
        )
        .await;
        match r.status.as_u16() {
            500 => aborted += 1,
            200 => assert_eq!(r.body, "v2"),
            s => panic!("unexpected status {s}"),
        }
    }
    // 30% of 2,000 = 600; binomial sd ~20, so ±100 is > 4.5 sd.
    assert!((500..=700).contains(&aborted), "aborted {aborted} of 2000");
    assert_eq!(v2.hits(), 2_000 - aborted);

    let start = Instant::now();
    let r = get(&c, p.listen_addr(), "svc", "/slow").await;
    assert_eq!(r.status, 200);
    assert!(start.elapsed() >= Duration::from_millis(200));

    let m = metrics(&p).await;
    assert_eq!(
        metric_value(
            &m,
            "istio_requests_total",
            &[
                ("destination_version", "v2"),
                ("response_code", "500"),
                ("response_flags", "FI")
            ]
        ),
        aborted as f64,
        "{m}"
    );
    assert_eq!(
        metric_value(
            &m,
            "istio_requests_total",
            &[
                ("destination_version", "v1"),
                ("response_code", "200"),
                ("response_flags", "DI")
            ]
        ),
        1.0,
        "{m}"
    );
    p.shutdown().await;
}
