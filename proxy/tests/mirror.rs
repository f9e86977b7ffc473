//! Issue 7 in the proxy: shadow traffic (`mirror`, `mirrorPercentage`) and
//! sticky sessions (`--sticky-cookie`).

use std::time::Duration;

use bytes::Bytes;

use crate::util::*;

fn mirrored(percent: f64) -> String {
    format!(
        "  - route: [{{destination: {{host: svc, subset: v1}}}}]\n    mirror: {{host: svc, subset: v2}}\n    mirrorPercentage: {{value: {percent}}}\n"
    )
}

#[tokio::test]
async fn mirrored_requests_reach_v2_while_clients_only_see_v1() {
    let v1 = upstream().body("v1").run().await;
    let v2 = upstream().echo().run().await;
    let cfg = ConfigDir::new(&mirrored(100.0), &[v1.addr], &[v2.addr]);
    let p = proxy(cfg.path()).await;
    let c = client();
    for _ in 0..20 {
        let r = send(
            &c,
            p.listen_addr(),
            http::Request::post("/orders").header("host", "svc"),
            Bytes::from_static(b"payload"),
        )
        .await;
        assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "v1"));
    }
    assert_eq!(v1.hits(), 20);
    eventually("all 20 copies reach v2", || async { v2.hits() == 20 }).await;
    eventually(
        "copies are counted for v2 as reporter=destination",
        || async {
            let m = admin_get(p.admin_addr(), "/metrics").await.body;
            metric_value(
                &m,
                "istio_requests_total",
                &[
                    ("reporter", "destination"),
                    ("destination_version", "v2"),
                    ("response_code", "200"),
                ],
            ) == 20.0
        },
    )
    .await;
    let m = admin_get(p.admin_addr(), "/metrics").await.body;
    assert_eq!(
        metric_value(
            &m,
            "istio_requests_total",
            &[("reporter", "source"), ("destination_version", "v2")]
        ),
        0.0,
        "{m}"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn a_hung_or_failing_mirror_never_delays_or_fails_clients() {
    let v1 = upstream().body("v1").run().await;
    // v2 never answers: if the proxy waited for the copy, every request
    // would hang until the client's own timeout and this test would fail.
    let hung = upstream().hang_first(usize::MAX).run().await;
    let cfg = ConfigDir::new(&mirrored(100.0), &[v1.addr], &[hung.addr]);
    let p = proxy_with(cfg.path(), |s| {
        s.forward.default_timeout = Duration::from_secs(60)
    })
    .await;
    let c = client();
    for _ in 0..10 {
        let r = get(&c, p.listen_addr(), "svc", "/").await;
        assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "v1"));
    }
    eventually("copies reached the hung mirror", || async {
        hung.hits() == 10
    })
    .await;

    // A mirror that refuses connections: clients still get v1's answer.
    cfg.write_endpoints(&[v1.addr], &[closed_port().await]);
    eventually("reload", || async { p.live().generation() == 2 }).await;
    for _ in 0..10 {
        assert_eq!(get(&c, p.listen_addr(), "svc", "/").await.status, 200);
    }
    eventually("failed copies counted as UF", || async {
        let m = admin_get(p.admin_addr(), "/metrics").await.body;
        metric_value(
            &m,
            "istio_requests_total",
            &[("reporter", "destination"), ("response_flags", "UF")],
        ) == 10.0
    })
    .await;
    p.shutdown().await;
}

#[tokio::test]
async fn mirror_percentage_mirrors_a_share() {
    let v1 = upstream().run().await;
    let v2 = upstream().run().await;
    let cfg = ConfigDir::new(&mirrored(25.0), &[v1.addr], &[v2.addr]);
    let p = proxy(cfg.path()).await;
    let c = client();
    for _ in 0..1_000 {
        assert_eq!(get(&c, p.listen_addr(), "svc", "/").await.status, 200);
    }
    // Copies run in the background: wait until the counts settle.
    let mut last = usize::MAX;
    eventually("mirror copies settle", || {
        let now = v2.hits();
        let settled = now == last;
        last = now;
        async move { settled }
    })
    .await;
    // 25% of 1,000; binomial sd ~14, so ±75 is > 5 sd.
    assert!(
        (175..=325).contains(&v2.hits()),
        "mirrored {} of 1000",
        v2.hits()
    );
    p.shutdown().await;
}

#[tokio::test]
async fn sticky_cookie_keeps_a_client_on_its_version_across_weight_changes() {
    let v1 = upstream().body("v1").run().await;
    let v2 = upstream().body("v2").run().await;
    let cfg = ConfigDir::new(&split(50, 50), &[v1.addr], &[v2.addr]);
    let p = proxy_with(cfg.path(), |s| {
        s.forward.sticky_cookie = Some("mesh-version".into())
    })
    .await;
    let c = client();
    let a = p.listen_addr();
    // Two new clients: alternate picks give one v1 and one v2, each pinned.
    let mut pinned = Vec::new();
    for _ in 0..2 {
        let r = get(&c, a, "svc", "/").await;
        let set = r.headers["set-cookie"].to_str().unwrap().to_owned();
        assert_eq!(
            set,
            format!("mesh-version={}; Path=/; HttpOnly; SameSite=Lax", r.body)
        );
        pinned.push((r.body, set.split(';').next().unwrap().to_owned()));
    }
    let versions: Vec<&str> = pinned.iter().map(|(v, _)| v.as_str()).collect();
    assert!(
        versions.contains(&"v1") && versions.contains(&"v2"),
        "{versions:?}"
    );

    let check = |weights: &'static str| {
        let c = c.clone();
        let pinned = pinned.clone();
        async move {
            for (version, cookie) in &pinned {
                for _ in 0..50 {
                    let r = send(
                        &c,
                        a,
                        http::Request::get("/")
                            .header("host", "svc")
                            .header("cookie", cookie.as_str()),
                        Bytes::new(),
                    )
                    .await;
                    assert_eq!(&r.body, version, "at weights {weights}");
                    assert!(r.headers.get("set-cookie").is_none());
                }
            }
        }
    };
    check("50/50").await;
    cfg.write_routes(&split(90, 10));
    eventually("reload", || async { p.live().generation() == 2 }).await;
    check("90/10").await;

    // Rolled back (v2 at weight 0): v2's clients move to v1 and are re-pinned.
    cfg.write_routes(&split(100, 0));
    eventually("reload", || async { p.live().generation() == 3 }).await;
    let r = send(
        &c,
        a,
        http::Request::get("/")
            .header("host", "svc")
            .header("cookie", "mesh-version=v2"),
        Bytes::new(),
    )
    .await;
    assert_eq!(r.body, "v1");
    assert!(
        r.headers["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("mesh-version=v1;")
    );
    p.shutdown().await;
}
